"""Lab compatibility (BRIEF.md, "Lab wire formats"): the message service, and
the file service's broken download (at the end of this module).

Fresh C programs in labprogs/ speak the lab's message format byte for byte:
lab_client sends its text with strlen() (no terminator, no half-close) and does
ONE recv() of at most 31 bytes; lab_server does ONE recv() of up to 32 bytes,
prints it, sends one reply and closes.  netlabd must serve the unmodified lab
client, and `netlabctl send --lab` must work against the lab server.
"""
import hashlib
import json
import random
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

import conftest
from conftest import (file_exchange, file_get, file_listener, free_port, frame, hold_child, make_config,
                      message_listener, netlabctl, read_line, wait_entry)

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
        line = read_line(self.proc.stdout, timeout)
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


# ---------------------------------------------------------------------------
# The lab's broken download (BRIEF.md "Lab wire formats", PROTOCOL.md 9).
# labprogs/lab_download_client.c and lab_download_server.c are fresh programs
# that speak the lab's format byte for byte: a 2-byte command ("0", "1" or
# "2" and a NUL), for 1 and 2 a 10-byte NUL-terminated decimal offset, then
# the file's bytes until the server closes.

LAB_SOURCE_SIZE = 300_001  # not a multiple of the lab's 256-byte chunks


@pytest.fixture(scope="module")
def dlprogs(tmp_path_factory):
    cc = shutil.which("cc")
    assert cc, "a C compiler (cc) is needed to build the lab programs"
    out = tmp_path_factory.mktemp("dlprogs")
    progs = {}
    for name in ("lab_download_client", "lab_download_server"):
        exe = out / name
        r = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(LABPROGS / f"{name}.c")],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        progs[name] = exe
    return progs


@pytest.fixture
def lab_source():
    return random.Random(9).randbytes(LAB_SOURCE_SIZE)


@pytest.fixture
def lab_daemon(daemon_factory, tmp_path, lab_source):
    """netlabd with a file listener whose lab_file is source_file.txt, and one
    without lab_file."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "source_file.txt").write_bytes(lab_source)
    port, nolab = free_port(), free_port()
    d = daemon_factory(make_config([file_listener(port, root, name="lab-download", lab_file="source_file.txt"),
                                    file_listener(nolab, root, name="files")]))
    d.port, d.nolab_port, d.root = port, nolab, root
    return d


def run_download_client(progs, port, command, dest, offset=None):
    args = [str(progs["lab_download_client"]), "127.0.0.1", str(port), str(command)]
    if offset is not None:
        args.append(str(offset))
    args.append(str(dest))
    return subprocess.run(args, capture_output=True, timeout=30)


def log_line(d, remote_port):
    """The raw summary line a daemon logged for a client port."""
    wait_entry(d, remote_port)
    # The newest, like wait_entry(): a client port may have been used before.
    for line in reversed(d.log().splitlines()):
        if f" REMOTE_PORT={remote_port} " in line:
            return line
    raise AssertionError(remote_port)


def lab_entries(d, n):
    return [e for e in d.wait_requests(n) if e["LISTENER"] == "lab-download"]


# -- the fresh lab client against netlabd --

@pytest.mark.parametrize("command, offset, expect_from, result", [
    (0, None, 0, "ok"),
    (1, 0, 0, "ok"),
    (1, 1, 1, "ok"),
    (1, 256, 256, "ok"),
    (1, 123_457, 123_457, "ok"),
    (1, LAB_SOURCE_SIZE - 1, LAB_SOURCE_SIZE - 1, "ok"),
    # At the end: nothing to send, a clean close.
    (1, LAB_SOURCE_SIZE, LAB_SOURCE_SIZE, "ok"),
    # Past the end: nothing sent either (text would land in the file).
    (1, LAB_SOURCE_SIZE + 1, None, "range"),
    # Ten digits fill the 10-byte field: no NUL at all.
    (1, 9_999_999_999, None, "range"),
])
def test_lab_client_downloads(dlprogs, lab_daemon, lab_source, tmp_path, command, offset, expect_from, result):
    dest = tmp_path / "destination_file.txt"
    r = run_download_client(dlprogs, lab_daemon.port, command, dest, offset)
    assert r.returncode == 0, r.stderr
    want = lab_source[expect_from:] if expect_from is not None else b""
    assert dest.read_bytes() == want
    assert r.stdout == f"received {len(want)} bytes\n".encode()
    e = lab_entries(lab_daemon, 1)[0]
    assert (e["RESULT"], e["FILE"], e["OFFSET"]) == (result, "source_file.txt", str(offset or 0))
    assert e["BYTES_IN"] == ("2" if command == 0 else "12")
    assert e["BYTES_OUT"] == str(len(want))
    if result == "range":
        line = log_line(lab_daemon, e["REMOTE_PORT"])
        assert (f"range: offset {offset} is past the end of the file ({LAB_SOURCE_SIZE} bytes): nothing sent"
                in line), line


@pytest.mark.parametrize("have", [0, 1, 255, 256, 150_000, LAB_SOURCE_SIZE - 1, LAB_SOURCE_SIZE])
def test_lab_client_resumes_partial_file(dlprogs, lab_daemon, lab_source, tmp_path, have):
    """Command 2: the offset is the size of the local partial file; the client
    appends and ends with the whole file."""
    dest = tmp_path / "destination_file.txt"
    dest.write_bytes(lab_source[:have])
    r = run_download_client(dlprogs, lab_daemon.port, 2, dest)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == hashlib.sha256(lab_source).hexdigest()
    assert r.stdout == f"received {LAB_SOURCE_SIZE - have} bytes\n".encode()
    e = lab_entries(lab_daemon, 1)[0]
    assert (e["RESULT"], e["OFFSET"], e["BYTES_IN"]) == ("ok", str(have), "12")


def test_lab_client_interrupted_then_resumed(dlprogs, lab_daemon, lab_source, tmp_path):
    """The lab's story: a download cut short (here: the first 100000 bytes of a
    command 0), then command 2 completes it."""
    dest = tmp_path / "destination_file.txt"
    with socket.create_connection(("127.0.0.1", lab_daemon.port), timeout=10) as s:
        s.sendall(b"0\x00")
        got = b""
        while len(got) < 100_000:  # bounded by the socket timeout and the file size
            b = s.recv(100_000 - len(got))
            assert b
            got += b
    dest.write_bytes(got)
    r = run_download_client(dlprogs, lab_daemon.port, 2, dest)
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == lab_source


def test_lab_client_on_listener_without_lab_file(dlprogs, lab_daemon, tmp_path):
    dest = tmp_path / "destination_file.txt"
    r = run_download_client(dlprogs, lab_daemon.nolab_port, 0, dest)
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == b""  # no error text in the student's file
    e = lab_daemon.wait_requests(1)[0]
    assert (e["LISTENER"], e["RESULT"]) == ("files", "not-permitted")


def test_netlab_requests_on_lab_listener(lab_daemon, lab_source):
    """The same port still speaks netlab's form."""
    a = file_exchange(lab_daemon.port, file_get("source_file.txt", offset=5))
    assert (a.status, a.data, a.end) == (0, lab_source[5:], (0, b"\x00"))


# -- the preamble split anywhere (raw sockets) --

PREAMBLE = b"1\x00" + b"123457\x00\x5a\x5a\x5a"  # as the lab client sends it: 12 bytes


def raw_lab(port, pieces, pause=0.05):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lport = s.getsockname()[1]
        for i, p in enumerate(pieces):
            if i:
                time.sleep(pause)
            s.sendall(p)
        out = b""
        while True:  # bounded by the socket timeout and the file size
            b = s.recv(65536)
            if not b:
                return out, lport
            out += b


@pytest.mark.parametrize("cut", range(1, len(PREAMBLE)))
def test_lab_preamble_split(lab_daemon, lab_source, cut):
    out, lport = raw_lab(lab_daemon.port, [PREAMBLE[:cut], PREAMBLE[cut:]])
    assert out == lab_source[123_457:]
    e = wait_entry(lab_daemon, lport)
    assert (e["RESULT"], e["OFFSET"], e["BYTES_IN"]) == ("ok", "123457", "12")


def test_lab_preamble_byte_by_byte(lab_daemon, lab_source):
    out, _ = raw_lab(lab_daemon.port, [PREAMBLE[i:i + 1] for i in range(len(PREAMBLE))], pause=0.02)
    assert out == lab_source[123_457:]
    out, _ = raw_lab(lab_daemon.port, [b"0", b"\x00"], pause=0.05)
    assert out == lab_source


# (id, bytes sent, half-close?, RESULT, reason in the log line or None)
LAB_REFUSALS = [
    ("command-3", b"3\x00", False, "bad-request", "the command must be an ASCII 0, 1 or 2 followed by a NUL"),
    ("command-9", b"9\x00" + b"0" * 10, False, "bad-request",
     "the command must be an ASCII 0, 1 or 2 followed by a NUL"),
    ("no-nul-after-command", b"1\x01" + b"5\x00" + b"\x00" * 8, False, "bad-request",
     "the command must be an ASCII 0, 1 or 2 followed by a NUL"),
    ("newline-after-command", b"0\n", False, "bad-request",
     "the command must be an ASCII 0, 1 or 2 followed by a NUL"),
    ("negative-offset", b"1\x00-5\x00ZZZZZZ", False, "bad-request", "negative offset"),
    ("plus-offset", b"1\x00+5\x00ZZZZZZ", False, "bad-request", "offset is not a decimal number"),
    ("hex-offset", b"2\x000x10\x00ZZZZ", False, "bad-request", "offset is not a decimal number"),
    ("space-offset", b"1\x00 5\x00ZZZZZZ", False, "bad-request", "offset is not a decimal number"),
    ("empty-offset", b"1\x00\x00ZZZZZZZZZ", False, "bad-request", "empty offset"),
    ("closed-after-command", b"1\x00", True, "no-request", "the client closed before its lab request was complete"),
    ("closed-inside-offset", b"2\x0012", True, "no-request",
     "the client closed before its lab request was complete"),
]


@pytest.mark.parametrize("sent, shut_wr, result, reason", [c[1:] for c in LAB_REFUSALS],
                         ids=[c[0] for c in LAB_REFUSALS])
def test_lab_refusals_send_nothing(lab_daemon, sent, shut_wr, result, reason):
    """A lab client writes every byte it receives into its file: a refusal is
    a clean close with nothing sent, and the reason goes to the log."""
    with socket.create_connection(("127.0.0.1", lab_daemon.port), timeout=10) as s:
        lport = s.getsockname()[1]
        s.sendall(sent)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        assert s.recv(65536) == b""  # EOF, not a reset
    e = wait_entry(lab_daemon, lport)
    assert e["RESULT"] == result
    assert e["BYTES_OUT"] == "0"
    line = log_line(lab_daemon, lport)
    assert re.search(r": " + re.escape(result) + r": (lab download refused: )?" + re.escape(reason), line), line


# -- netlabctl fetch --lab against the fresh lab server --

class DownloadServer(LabServer):
    """One lab_download_server: serves `count` connections, then exits.  It
    picks its own port and says "ready PORT"."""

    def __init__(self, progs, path, count=1):
        self.proc = subprocess.Popen([str(progs["lab_download_server"]), "0", str(path), str(count)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = read_line(self.proc.stdout, timeout=10.0)
        m = re.fullmatch(rb"ready (\d+)\n", line)
        assert m, (line, self.proc.poll())
        self.port = int(m.group(1))


@pytest.fixture
def download_server(dlprogs):
    made = []

    def make(path, count=1):
        s = DownloadServer(dlprogs, path, count)
        made.append(s)
        return s

    yield make
    for s in made:
        s.kill()


@pytest.fixture
def lab_source_file(tmp_path, lab_source):
    p = tmp_path / "served" / "source_file.txt"
    p.parent.mkdir()
    p.write_bytes(lab_source)
    return p


def test_netlabctl_lab_fetch_whole(download_server, lab_source_file, lab_source, ctl_ini, tmp_path):
    srv = download_server(lab_source_file)
    out = tmp_path / "got.txt"
    r = netlabctl("fetch", "--lab", "-H", "127.0.0.1", "-p", srv.port, "-o", out, ini=ctl_ini)
    rc, served, err = srv.finish()
    assert rc == 0, err
    assert served == f"command 0 offset 0 sent {LAB_SOURCE_SIZE}\n".encode()
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    assert out.read_bytes() == lab_source
    assert not (tmp_path / "got.txt.netlab-part").exists()
    assert not (tmp_path / "got.txt.netlab-meta").exists()


def test_netlabctl_lab_fetch_default_name(download_server, lab_source_file, lab_source, ctl_ini, tmp_path):
    """With neither PATH nor -o the file is called source_file.txt, like the lab's."""
    srv = download_server(lab_source_file)
    work = tmp_path / "cwd"
    work.mkdir()
    cmd = [str(conftest.NETLABCTL), f"--config={ctl_ini}", "fetch", "--lab", "-H", "127.0.0.1", "-p", str(srv.port)]
    r = subprocess.run(cmd, capture_output=True, timeout=30, cwd=work)
    assert srv.finish()[0] == 0
    assert r.returncode == 0, r.stderr
    assert (work / "source_file.txt").read_bytes() == lab_source


@pytest.mark.parametrize("offset", [1, 4096, 299_999])
def test_netlabctl_lab_fetch_offset(download_server, lab_source_file, lab_source, ctl_ini, tmp_path, offset):
    srv = download_server(lab_source_file)
    out = tmp_path / "got.txt"
    r = netlabctl("fetch", "--lab", "--offset", offset, "-H", "127.0.0.1", "-p", srv.port, "-o", out,
                  ini=ctl_ini)
    rc, served, _ = srv.finish()
    assert rc == 0
    assert served == f"command 1 offset {offset} sent {LAB_SOURCE_SIZE - offset}\n".encode()
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == lab_source[offset:]


def test_netlabctl_lab_fetch_resume(download_server, lab_source_file, lab_source, ctl_ini, tmp_path):
    """--resume --lab on an existing (lab-style) destination: command 2 with its
    size; the result is the whole file.  Then again from a .netlab-part left by
    an interrupted netlabctl."""
    srv = download_server(lab_source_file, count=2)
    out = tmp_path / "got.txt"
    out.write_bytes(lab_source[:77_777])
    r = netlabctl("fetch", "--lab", "--resume", "-H", "127.0.0.1", "-p", srv.port, "-o", out, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == lab_source
    assert b"blindly" in r.stderr  # it says the lab format cannot prove the partial data

    out2 = tmp_path / "got2.txt"
    Path(str(out2) + ".netlab-part").write_bytes(lab_source[:200_000])
    r = netlabctl("fetch", "--lab", "--resume", "-H", "127.0.0.1", "-p", srv.port, "-o", out2, ini=ctl_ini)
    rc, served, _ = srv.finish()
    assert rc == 0
    assert served == (f"command 2 offset 77777 sent {LAB_SOURCE_SIZE - 77_777}\n"
                      f"command 2 offset 200000 sent {LAB_SOURCE_SIZE - 200_000}\n").encode()
    assert r.returncode == 0, r.stderr
    assert out2.read_bytes() == lab_source
    assert not Path(str(out2) + ".netlab-part").exists()


def test_netlabctl_netlab_form_against_lab_download_server(download_server, lab_source_file, ctl_ini, tmp_path):
    """Without --lab, the lab server does not understand the frame and closes:
    a protocol error (exit 6), no file left behind."""
    srv = download_server(lab_source_file)
    out = tmp_path / "got.txt"
    r = netlabctl("fetch", "-H", "127.0.0.1", "-p", srv.port, "-o", out, "source_file.txt", ini=ctl_ini)
    rc, served, _ = srv.finish()
    assert rc == 0 and served == b"command ? offset 0 sent 0\n"
    assert r.returncode == 6, r.stderr
    assert r.stderr.startswith(b"netlabctl: ")
    assert not out.exists() and not Path(str(out) + ".netlab-part").exists()


# -- netlabctl fetch --lab against netlabd --

def test_netlabctl_lab_fetch_refused_looks_empty(lab_daemon, ctl_ini, tmp_path):
    """An offset past the end: netlabd sends nothing (RESULT=range); the lab
    format cannot tell that from an empty file, and netlabctl says so."""
    out = tmp_path / "got.txt"
    r = netlabctl("fetch", "--lab", "--offset", LAB_SOURCE_SIZE + 1, "-H", "127.0.0.1", "-p", lab_daemon.port,
                  "-o", out, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b""
    assert r.stderr == (b"netlabctl: the server sent no data (in the lab format an empty file, an offset at the end "
                        b"and a refusal look the same)\n")
    e = lab_entries(lab_daemon, 1)[0]
    assert (e["RESULT"], e["OFFSET"]) == ("range", str(LAB_SOURCE_SIZE + 1))


def test_netlabctl_lab_fetch_from_netlabd(lab_daemon, lab_source, ctl_ini, tmp_path):
    out = tmp_path / "got.txt"
    base = ["fetch", "--lab", "-H", "127.0.0.1", "-p", lab_daemon.port, "-o", out]
    r = netlabctl(*base, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == lab_source
    r = netlabctl(*base[:2], "--offset", 300_000, *base[2:], ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == lab_source[300_000:]
    out.write_bytes(lab_source[:1234])
    r = netlabctl(*base, "--resume", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == lab_source
    reqs = lab_entries(lab_daemon, 3)
    assert [(e["RESULT"], e["OFFSET"], e["BYTES_IN"]) for e in reqs] == [("ok", "0", "2"), ("ok", "300000", "12"),
                                                                        ("ok", "1234", "12")]


# ---------------------------------------------------------------------------
# The lab's echo client (BRIEF.md "Lab wire formats": datagrams of up to 512
# bytes, echoed verbatim; PROTOCOL.md 10.1).  labprogs/lab_echo_client.c is a
# fresh program written like the lab's: one AF_INET UDP socket, a 512-byte
# buffer, each stdin line sent with strlen() (no newline, no terminator), one
# recvfrom() of at most 512 bytes, and the reply put()s on stdout.

@pytest.fixture(scope="module")
def echoprog(tmp_path_factory):
    cc = shutil.which("cc")
    assert cc, "a C compiler (cc) is needed to build the lab programs"
    exe = tmp_path_factory.mktemp("echoprog") / "lab_echo_client"
    r = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                        str(LABPROGS / "lab_echo_client.c")], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return exe


@pytest.fixture
def brief_echo_daemon(daemon_factory):
    """netlabd with an echo listener configured like the brief's example (only
    name, service, transport, address and port: every guard default applies)."""
    port = free_port(socket.SOCK_DGRAM)
    d = daemon_factory(make_config([{"name": "echo", "service": "echo", "transport": "udp",
                                     "address": "127.0.0.1", "port": port}]))
    d.port = port
    return d


def run_echo_client(prog, port, stdin, host="127.0.0.1"):
    return subprocess.run([str(prog), host, str(port)], input=stdin, capture_output=True, timeout=60)


@pytest.mark.parametrize("lines", [
    [b"hello"],
    [b"hello", b"world with  spaces", b"", b"tab\there", "grüße ✓".encode()],
    [b"x" * 510],  # the longest line the 512-byte fgets() buffer takes whole
    [b"%s %n %d", b"\x01\x02 bytes below space", b"\xff\xfe not utf-8"],
])
def test_lab_echo_client(echoprog, brief_echo_daemon, lines):
    r = run_echo_client(echoprog, brief_echo_daemon.port, b"".join(l + b"\n" for l in lines))
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    # Each line went out without its newline and came back verbatim; puts() adds one.
    assert r.stdout == b"".join(l + b"\n" for l in lines)


def test_lab_echo_client_many_lines(echoprog, brief_echo_daemon):
    """150 lines as fast as the client goes: within the default burst of 200,
    every one is answered (the lab client would wait forever for a lost one)."""
    lines = [b"line %03d %s" % (i, b"." * (i % 97)) for i in range(150)]
    r = run_echo_client(echoprog, brief_echo_daemon.port, b"".join(l + b"\n" for l in lines))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(b"\n")[:-1] == lines


def test_lab_echo_raw_socket(brief_echo_daemon):
    """What the lab client does, from Python: the text with no terminator,
    one recvfrom of 512 bytes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"no terminator", ("127.0.0.1", brief_echo_daemon.port))
        data, addr = s.recvfrom(512)
    assert (data, addr) == (b"no terminator", ("127.0.0.1", brief_echo_daemon.port))
    assert conftest.udp_exchange(brief_echo_daemon.port, b"y" * 512) == b"y" * 512
