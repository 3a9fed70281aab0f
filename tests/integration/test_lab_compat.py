"""Lab compatibility of the message service (BRIEF.md, "Lab wire formats").

Fresh C programs in labprogs/ speak the lab's message format byte for byte:
lab_client sends its text with strlen() (no terminator, no half-close) and does
ONE recv() of at most 31 bytes; lab_server does ONE recv() of up to 32 bytes,
prints it, sends one reply and closes.  netlabd must serve the unmodified lab
client, and `netlabctl send --lab` must work against the lab server.
"""
import json
import os
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import hold_child, free_port, frame, make_config, message_listener, netlabctl

LABPROGS = Path(__file__).resolve().parent / "labprogs"
LAB_BUFSIZE = 32  # the lab client's recv buffer; it reads at most BUFSIZE-1 bytes


@pytest.fixture(scope="module")
def labprogs(tmp_path_factory):
    """Compile lab_client and lab_server once for the module."""
    cc = shutil.which("cc")
    assert cc, "a C compiler (cc) is needed to build the lab programs"
    out = tmp_path_factory.mktemp("labprogs")
    progs = {}
    for name in ("lab_client", "lab_server"):
        exe = out / name
        r = subprocess.run([cc, "-O2", "-Wall", "-Werror", "-o", str(exe), str(LABPROGS / f"{name}.c")],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        progs[name] = exe
    return progs


def run_lab_client(progs, port, message, host="127.0.0.1"):
    return subprocess.run([str(progs["lab_client"]), host, str(port), message], capture_output=True,
                          timeout=20)


class LabServer:
    """One lab_server process: started, waited for ("ready"), stopped by pid."""

    def __init__(self, progs, reply):
        self.port = free_port()
        self.proc = subprocess.Popen([str(progs["lab_server"]), str(self.port), reply],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._wait_ready(timeout=10.0)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                b = os.read(self.proc.stdout.fileno(), 1)
                if not b:
                    break
                line += b
        assert line == b"ready\n", (line, self.proc.poll())

    def finish(self, timeout=10.0):
        """Wait for the server to exit; (exit code, stdout after "ready\\n", stderr)."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f and not f.closed:
                f.close()


@pytest.fixture
def lab_server(labprogs):
    made = []

    def make(reply):
        s = LabServer(labprogs, reply)
        made.append(s)
        return s

    yield make
    for s in made:
        s.kill()


@pytest.fixture
def brief_daemon(daemon_factory):
    """netlabd configured exactly like the brief's example message listener
    (only name, service, transport, address and port), on loopback."""
    port = free_port()
    listener = {"name": "message", "service": "message", "transport": "tcp", "address": "127.0.0.1",
                "port": port}
    d = daemon_factory(make_config([listener]))
    d.port = port
    return d


def lab_truncate(reply: bytes) -> bytes:
    """What the lab client prints: at most BUFSIZE-1 bytes of the reply, then LF."""
    return reply[:LAB_BUFSIZE - 1] + b"\n"


# -- the unmodified lab client against netlabd --

@pytest.mark.parametrize("message, printed", [
    # The default template "message received: %m" is longer than the lab's
    # 31-byte read: the lab client prints the first 31 bytes.
    ("hello from the lab", b"message received: hello from th\n"),
    ("hi", b"message received: hi\n"),
    # 31 characters: the longest message the lab's 32-byte gets() buffer holds.
    ("x" * 31, b"message received: xxxxxxxxxxxxx\n"),
])
def test_lab_client_default_reply(labprogs, brief_daemon, message, printed):
    r = run_lab_client(labprogs, brief_daemon.port, message)
    assert r.returncode == 0, r.stderr
    assert r.stdout == printed
    assert r.stdout == lab_truncate(b"message received: " + message.encode())
    reqs = brief_daemon.wait_requests(1)
    assert reqs[0]["RESULT"] == "ok"
    assert reqs[0]["BYTES_IN"] == str(len(message))


@pytest.mark.parametrize("template, message, printed", [
    ("ok %m", "hello", b"ok hello\n"),
    ("ok %m", "a b c", b"ok a b c\n"),
    ("[%l] %m!", "lab1", b"[short] lab1!\n"),
])
def test_lab_client_custom_reply(labprogs, daemon_factory, template, message, printed):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port, name="short", reply=template)]))
    r = run_lab_client(labprogs, port, message)
    assert r.returncode == 0, r.stderr
    assert r.stdout == printed
    reqs = d.wait_requests(1)
    assert reqs[0]["RESULT"] == "ok"
    assert reqs[0]["BYTES_OUT"] == str(len(printed) - 1)


def test_lab_client_settle_zero(labprogs, daemon_factory):
    """text_settle_ms = 0: netlabd answers after its first read, like the lab server."""
    port = free_port()
    daemon_factory(make_config([message_listener(port, reply="ok %m", text_settle_ms=0)]))
    r = run_lab_client(labprogs, port, "quick")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"ok quick\n"


def test_python_lab_client_gets_exact_reply(daemon_factory):
    """A raw-socket client doing exactly what the lab client does: send the text
    (no terminator, no shutdown), one recv of at most 31 bytes, close."""
    port = free_port()
    d = daemon_factory(make_config([message_listener(port, reply="ok %m")]))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.send(b"hello lab")
        got = s.recv(LAB_BUFSIZE - 1)
    assert got == b"ok hello lab"
    reqs = d.wait_requests(1)
    assert reqs[0]["RESULT"] == "ok"
    assert reqs[0]["BYTES_IN"] == "9"
    assert reqs[0]["BYTES_OUT"] == str(len(b"ok hello lab"))


# -- netlabctl against the lab server --

@pytest.mark.parametrize("message, reply", [
    ("hello", "hi back"),
    ("two words", "a reply longer than the 32-byte lab buffer"),
])
def test_netlabctl_lab_against_lab_server(lab_server, ctl_ini, message, reply):
    srv = lab_server(reply)
    r = netlabctl("send", "--lab", "-H", "127.0.0.1", "-p", srv.port, message, ini=ctl_ini)
    rc, out, err = srv.finish()
    assert rc == 0, err
    # The client prints exactly the reply (plus the newline it adds).
    assert r.returncode == 0, r.stderr
    assert r.stdout == reply.encode() + b"\n"
    assert r.stderr == b""
    # The lab server received exactly the message: no terminator, no framing.
    assert out == message.encode() + b"\n"


def test_netlabctl_lab_json_against_lab_server(lab_server, ctl_ini):
    srv = lab_server("json reply")
    r = netlabctl("send", "--lab", "--json", "-H", "127.0.0.1", "-p", srv.port, "hi", ini=ctl_ini)
    rc, out, _ = srv.finish()
    assert rc == 0
    assert out == b"hi\n"
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["status"] == "ok"
    assert obj["format"] == "lab"
    assert obj["reply"] == "json reply"


def test_netlabctl_netlab_form_against_lab_server(lab_server, ctl_ini):
    """Without --lab, a lab server's text answer is a protocol error (exit 6)
    that suggests --lab; the server saw netlabctl's frame."""
    srv = lab_server("lab says hi")
    r = netlabctl("send", "-H", "127.0.0.1", "-p", srv.port, "hello", ini=ctl_ini)
    rc, out, _ = srv.finish()
    assert rc == 0
    assert out == frame(0x01, b"hello") + b"\n"
    assert r.returncode == 6
    assert r.stdout == b""
    assert r.stderr == (b"netlabctl: the server did not answer in netlab's format "
                        b"(a lab-style server? try --lab); it sent \"lab says hi\"\n")


# -- netlabctl --lab against netlabd --

@pytest.mark.parametrize("args, printed", [
    (["hello"], b"message received: hello\n"),
    (["several", "words", "here"], b"message received: several words here\n"),
])
def test_netlabctl_lab_against_netlabd(brief_daemon, ctl_ini, args, printed):
    r = netlabctl("send", "--lab", "-H", "127.0.0.1", "-p", brief_daemon.port, *args, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stdout == printed
    reqs = brief_daemon.wait_requests(1)
    assert reqs[0]["RESULT"] == "ok"
    assert reqs[0]["BYTES_IN"] == str(len(" ".join(args)))
    assert reqs[0]["BYTES_OUT"] == str(len(printed) - 1)


def test_netlabctl_lab_refusal_from_netlabd(daemon_factory, ctl_ini):
    """A refusal in the text form reaches the --lab client as the server's line."""
    port = free_port()
    daemon_factory(make_config([message_listener(port, max_message=3)]))
    r = netlabctl("send", "--lab", "-H", "127.0.0.1", "-p", port, "toolong", ini=ctl_ini)
    # The lab format has no status: an "error: " line is taken as a refusal.
    assert (r.returncode, r.stdout) == (4, b"")
    assert r.stderr == b"netlabctl: server refused: message too long: more than 3 bytes\n"


def test_lab_client_gets_busy_line(labprogs, daemon_factory):
    """Over the limits, the lab client gets the busy refusal in the text form
    (its first 31 bytes, all its buffer holds)."""
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)], limits={"max_children": 1}))
    holder = hold_child(d, port, data=b"")
    try:
        r = run_lab_client(labprogs, port, "let me in")
        assert r.returncode == 0, r.stderr
        assert r.stdout == lab_truncate(b"error: server busy: all 1 client slots are in use, try again later\n")
        assert r.stdout == b"error: server busy: all 1 clien\n"
    finally:
        holder.close()
    d.wait_no_children()
    busy = [e for e in d.requests() if e["RESULT"] == "busy"]
    assert len(busy) == 1
