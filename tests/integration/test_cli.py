"""netlabctl: output, exit codes (cli/cli.h, netlabctl(1)) and INI handling.

Servers here are netlabd or small python servers in a thread (127.0.0.1, port
0, bounded waits) that answer with whatever a test needs, hostile or broken.
"""
import json
import os
import pty
import re
import select
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import hold_child, NETLABCTL, free_port, frame, make_config, message_listener, netlabctl

EXIT_OK, EXIT_USAGE, EXIT_CONNECT, EXIT_REFUSED, EXIT_BUSY, EXIT_PROTOCOL, EXIT_TIMEOUT = 0, 2, 3, 4, 5, 6, 7
MSG_SEND, MSG_REPLY = 0x01, 0x02


def header(length, type_=MSG_REPLY, status=0, version=1):
    return frame(type_, b"", status=status, version=version)[:8] + length.to_bytes(4, "big")


def send(port, *words, ini, args=(), **kw):
    return netlabctl("send", "-H", "127.0.0.1", "-p", port, *args, *words, ini=ini, **kw)


# ---------------------------------------------------------------------------
# a scripted python server

class FakeServer:
    """Accepts ONE client on 127.0.0.1, reads its request (a whole frame, or
    whatever arrives within a short quiet time), then acts:
      reply=b"...": send those bytes, then half-close and wait for the client
                     to close (close at once if close_at_once; neither
                     half-close nor close if hold);
      reply=None:    stay silent until stopped.
    reset: end the connection with a TCP reset (SO_LINGER 0) after the reply."""

    def __init__(self, reply=None, close_at_once=False, hold=False, reset=False):
        self.reply = reply
        self.reset = reset
        self.close_at_once = close_at_once
        self.hold = hold
        self.request = b""
        self.stopping = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _read_request(self, conn):
        conn.settimeout(0.3)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.request[:1] == b"\x00" and len(self.request) >= 12 and \
                    len(self.request) >= 12 + int.from_bytes(self.request[8:12], "big"):
                return
            try:
                b = conn.recv(65536)
            except socket.timeout:
                if self.request[:1] not in (b"", b"\x00"):
                    return  # bare text: complete once quiet
                continue
            if not b:
                return
            self.request += b

    def _run(self):
        conn = None
        try:
            deadline = time.monotonic() + 15
            while conn is None and not self.stopping.is_set() and time.monotonic() < deadline:
                try:
                    conn, _ = self.listener.accept()
                except socket.timeout:
                    continue
            if conn is None:
                return
            self._read_request(conn)
            if self.reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if self.reply is not None:
                conn.sendall(self.reply)
                if self.close_at_once:
                    return
                if not self.hold:
                    conn.shutdown(socket.SHUT_WR)
            # Wait for the client to go away (or for the test to end).
            conn.settimeout(0.1)
            while not self.stopping.is_set() and time.monotonic() < deadline:
                try:
                    if not conn.recv(65536):
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
        except OSError:
            pass
        finally:
            if conn is not None:
                conn.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(20)
        self.listener.close()
        assert not self.thread.is_alive()


@pytest.fixture
def fake_server():
    made = []

    def make(reply=None, close_at_once=False, hold=False, reset=False):
        s = FakeServer(reply, close_at_once, hold, reset)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


# ---------------------------------------------------------------------------
# against netlabd

def test_send_prints_reply(message_daemon, ctl_ini):
    r = send(message_daemon.port, "hello", ini=ctl_ini)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"message received: hello\n", b"")


def test_send_default_host_is_localhost(message_daemon, ctl_ini):
    r = netlabctl("send", "-p", message_daemon.port, "hi", ini=ctl_ini)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"message received: hi\n", b"")


@pytest.mark.parametrize("words, message", [
    (["a", "b", "c"], "a b c"),
    (["hello world", "again"], "hello world again"),
    (["ünï", "cödé ✓"], "ünï cödé ✓"),
    (["x" * 4000], "x" * 4000),
])
def test_send_joins_words(message_daemon, ctl_ini, words, message):
    r = send(message_daemon.port, *words, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"message received: " + message.encode() + b"\n"
    entry = message_daemon.wait_requests(1)[0]
    assert entry["BYTES_IN"] == str(12 + len(message.encode()))


def test_send_options_end_at_first_word(message_daemon, ctl_ini):
    """Options come before MESSAGE (send [OPTIONS] MESSAGE...): later dashes are words."""
    r = send(message_daemon.port, "hi", "-t", "3", "--json", ini=ctl_ini)
    assert (r.returncode, r.stdout) == (0, b"message received: hi -t 3 --json\n")


def test_send_long_options(message_daemon, ctl_ini):
    r = netlabctl("send", "--host=127.0.0.1", f"--port={message_daemon.port}", "--timeout=3", "hi",
                  ini=ctl_ini)
    assert (r.returncode, r.stdout) == (0, b"message received: hi\n")


def test_send_json(message_daemon, ctl_ini):
    r = send(message_daemon.port, "json", "please", ini=ctl_ini, args=["--json"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"\n") == 1 and r.stdout.endswith(b"\n")
    obj = json.loads(r.stdout)
    duration = obj.pop("duration_ms")
    assert isinstance(duration, (int, float)) and duration >= 0
    assert obj == {"command": "send", "status": "ok", "exit_code": 0, "format": "netlab",
                   "server": "127.0.0.1", "port": message_daemon.port,
                   "reply": "message received: json please"}
    assert r.stderr == b""


def test_send_lab_json_against_netlabd(message_daemon, ctl_ini):
    r = send(message_daemon.port, "hi", ini=ctl_ini, args=["--lab", "-j"])
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert (obj["status"], obj["format"], obj["reply"]) == ("ok", "lab", "message received: hi")


# ---------------------------------------------------------------------------
# usage errors: exit 2, one line on stderr, nothing on stdout

USAGE_CASES = [
    ("no-message", ["send", "-p", "1"], b"send: no MESSAGE given (see 'send --help')"),
    ("unknown-long-option", ["send", "--bogus", "hi"], b"send: unknown option --bogus (see 'send --help')"),
    ("unknown-short-option", ["send", "-z", "hi"], b"send: unknown option -z (see 'send --help')"),
    ("missing-value", ["send", "-p"], b"send: option -p needs a value"),
    ("missing-value-long", ["send", "--timeout"], b"send: option --timeout needs a value"),
    ("port-0", ["send", "-p", "0", "hi"], b'--port: "0" is not a port from 1 to 65535'),
    ("port-abc", ["send", "-p", "abc", "hi"], b'--port: "abc" is not a port from 1 to 65535'),
    ("port-65536", ["send", "-p", "65536", "hi"], b'--port: "65536" is not a port from 1 to 65535'),
    ("port-negative", ["send", "--port=-1", "hi"], b'--port: "-1" is not a port from 1 to 65535'),
    ("port-empty", ["send", "--port=", "hi"], b'--port: "" is not a port from 1 to 65535'),
    ("timeout-0", ["send", "-t", "0", "hi"], b'--timeout: "0" is not whole seconds from 1 to 86400'),
    ("timeout-abc", ["send", "-t", "abc", "hi"], b'--timeout: "abc" is not whole seconds from 1 to 86400'),
    ("timeout-fraction", ["send", "--timeout=1.5", "hi"],
     b'--timeout: "1.5" is not whole seconds from 1 to 86400'),
    ("timeout-too-big", ["send", "-t", "86401", "hi"],
     b'--timeout: "86401" is not whole seconds from 1 to 86400'),
    ("host-empty", ["send", "-H", "", "hi"], b'--host: "" is not a usable host name'),
    ("control-char", ["send", "a\x01b"],
     b"send: the message must be printable UTF-8 text (no control characters)"),
    ("no-command", [], b"no command given (see --help)"),
    ("unknown-command", ["frob"], b'unknown command "frob" (see --help)'),
]


@pytest.mark.parametrize("args, message", [c[1:] for c in USAGE_CASES], ids=[c[0] for c in USAGE_CASES])
def test_usage_errors(ctl_ini, args, message):
    r = netlabctl(*args, ini=ctl_ini)
    assert r.returncode == EXIT_USAGE
    assert r.stdout == b""
    assert r.stderr == b"netlabctl: " + message + b"\n"


def test_usage_unknown_global_option():
    r = netlabctl("--frob", "send", "hi")
    assert r.returncode == EXIT_USAGE
    assert r.stderr == b"netlabctl: unknown option --frob before the command (see --help)\n"


@pytest.mark.parametrize("n_words", [9, 10])
def test_usage_message_too_long_to_send(ctl_ini, n_words):
    # Words of 131000 bytes (about the most one argument may hold): nine make
    # 1,179,008 bytes, already over the 1 MiB a message may have.
    words = ["w" * 131000] * n_words
    r = netlabctl("send", "-H", "127.0.0.1", "-p", free_port(), *words, ini=ctl_ini)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == b"netlabctl: send: the message is longer than 1048576 bytes\n"


# ---------------------------------------------------------------------------
# exit 3: cannot connect

def test_connect_refused(ctl_ini):
    port = free_port()
    r = send(port, "hi", ini=ctl_ini)
    assert r.returncode == EXIT_CONNECT
    assert r.stdout == b""
    assert r.stderr == (b"netlabctl: cannot connect to 127.0.0.1 port %d: Connection refused "
                        b"(is netlabd running and listening there?)\n" % port)


def test_connect_refused_json(ctl_ini):
    port = free_port()
    r = send(port, "hi", ini=ctl_ini, args=["--json"])
    assert r.returncode == EXIT_CONNECT
    obj = json.loads(r.stdout)
    assert obj == {"command": "send", "status": "connect-failed", "exit_code": 3,
                   "error": f"cannot connect to 127.0.0.1 port {port}: Connection refused "
                            "(is netlabd running and listening there?)"}


# ---------------------------------------------------------------------------
# exit 4: refused; exit 5: busy

@pytest.fixture
def small_daemon(daemon_factory):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port, max_message=5)]))
    d.port = port
    return d


def test_refused_too_long(small_daemon, ctl_ini):
    r = send(small_daemon.port, "toolong", ini=ctl_ini)
    assert r.returncode == EXIT_REFUSED
    assert r.stdout == b""
    assert r.stderr == b"netlabctl: server refused (too-long): message too long: more than 5 bytes\n"
    assert small_daemon.wait_requests(1)[0]["RESULT"] == "too-long"


def test_refused_too_long_json(small_daemon, ctl_ini):
    r = send(small_daemon.port, "toolong", ini=ctl_ini, args=["--json"])
    assert r.returncode == EXIT_REFUSED
    assert json.loads(r.stdout) == {"command": "send", "status": "too-long", "exit_code": 4,
                                    "error": "server refused (too-long): message too long: more than 5 bytes"}


def test_refused_while_still_sending(small_daemon, ctl_ini):
    """A 1 MB message: the server refuses after the header; netlabctl stops
    sending and prints the refusal."""
    words = ["w" * 131000] * 8
    r = send(small_daemon.port, *words, ini=ctl_ini)
    assert r.returncode == EXIT_REFUSED
    assert r.stderr == b"netlabctl: server refused (too-long): message too long: more than 5 bytes\n"


def test_busy(daemon_factory, ctl_ini):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)], limits={"max_children": 1}))
    holder = hold_child(d, port, data=b"")
    try:
        r = send(port, "hi", ini=ctl_ini)
        assert r.returncode == EXIT_BUSY
        assert r.stdout == b""
        assert r.stderr == (b"netlabctl: server refused (busy): server busy: all 1 client slots are in use, "
                            b"try again later\n")
    finally:
        holder.close()
    d.wait_no_children()


# ---------------------------------------------------------------------------
# exit 6: protocol errors from a broken server; exit 7: timeouts

PROTOCOL_CASES = [
    ("text-answer", b"hello", False,
     b"the server did not answer in netlab's format (a lab-style server? try --lab); it sent \"hello\""),
    ("text-answer-escaped", b"\x1b[2J!", False,
     b"the server did not answer in netlab's format (a lab-style server? try --lab); it sent \"\\x1b[2J!\""),
    ("bad-magic", b"\x00NX\x01\x02\x00\x00\x00\x00\x00\x00\x02ok", False,
     b"the server sent a malformed reply header"),
    ("wrong-type", frame(MSG_SEND, b"ok"), False, b"the server sent a malformed reply header"),
    ("reserved-nonzero", frame(MSG_REPLY, b"ok", reserved=1), False,
     b"the server sent a malformed reply header"),
    ("version-2", frame(MSG_REPLY, b"ok", version=2), False,
     b"the server answered with protocol version 2; this netlabctl speaks 1"),
    ("1GB-body", header(1 << 30), False,
     b"the server announced a 1073741824-byte reply, more than the 262144 allowed"),
    ("body-cut-short", frame(MSG_REPLY, b"0123456789")[:15], False,
     b"the connection ended after 3 of the reply's 10 bytes"),
    ("header-cut-short", b"\x00NL\x01", False, b"the reply ended inside its header"),
    ("no-reply", b"", True, b"the server closed the connection without replying"),
]


@pytest.mark.parametrize("reply, at_once, message", [c[1:] for c in PROTOCOL_CASES],
                         ids=[c[0] for c in PROTOCOL_CASES])
def test_protocol_errors(fake_server, ctl_ini, reply, at_once, message):
    srv = fake_server(reply, close_at_once=at_once)
    r = send(srv.port, "hi", ini=ctl_ini)
    assert r.returncode == EXIT_PROTOCOL
    assert r.stdout == b""
    assert r.stderr == b"netlabctl: " + message + b"\n"
    srv.stop()
    assert srv.request == frame(MSG_SEND, b"hi")


def test_no_reply_connection_reset(fake_server, ctl_ini):
    srv = fake_server(b"", close_at_once=True, reset=True)
    r = send(srv.port, "hi", ini=ctl_ini)
    assert r.returncode == EXIT_PROTOCOL
    assert r.stderr == b"netlabctl: the server closed the connection without replying (connection reset)\n"


@pytest.mark.parametrize("status, name", [(1, "bad-request"), (6, "timeout"), (7, "unsupported"),
                                          (8, "internal-error"), (200, "unknown")])
def test_refusal_status_names(fake_server, ctl_ini, status, name):
    """Any non-zero status other than busy is a refusal: exit 4, with its name."""
    srv = fake_server(frame(MSG_REPLY, b"why not", status=status))
    r = send(srv.port, "hi", ini=ctl_ini)
    assert r.returncode == EXIT_REFUSED
    assert r.stdout == b""
    assert r.stderr == b"netlabctl: server refused (%s): why not\n" % name.encode()


def test_protocol_error_json(fake_server, ctl_ini):
    srv = fake_server(b"hello")
    r = send(srv.port, "hi", ini=ctl_ini, args=["--json"])
    assert r.returncode == EXIT_PROTOCOL
    obj = json.loads(r.stdout)
    assert (obj["command"], obj["status"], obj["exit_code"]) == ("send", "protocol-error", 6)


def test_lab_no_reply(fake_server, ctl_ini):
    srv = fake_server(b"", close_at_once=True)
    r = send(srv.port, "hi", ini=ctl_ini, args=["--lab"])
    assert r.returncode == EXIT_PROTOCOL
    assert r.stderr == b"netlabctl: the server closed the connection without replying\n"
    srv.stop()
    assert srv.request == b"hi"


@pytest.mark.parametrize("size, rc, stdout_suffix, stderr", [
    (256 * 1024, 0, b"\n", b""),
    # One byte more than a reply may have: an error, never a reply cut short.
    (256 * 1024 + 1, EXIT_PROTOCOL, None,
     b"netlabctl: the reply is longer than the 262144 bytes netlabctl accepts\n"),
    (300 * 1024, EXIT_PROTOCOL, None,
     b"netlabctl: the reply is longer than the 262144 bytes netlabctl accepts\n"),
])
def test_lab_long_reply(fake_server, ctl_ini, size, rc, stdout_suffix, stderr):
    body = b"z" * size
    srv = fake_server(body)
    r = send(srv.port, "hi", ini=ctl_ini, args=["--lab"])
    assert r.returncode == rc
    assert r.stderr == stderr
    assert r.stdout == (body + stdout_suffix if stdout_suffix is not None else b"")


@pytest.mark.parametrize("lab, reply, message", [
    (False, None, b"no reply within 1 s"),
    (True, None, b"no reply within 1 s"),
    (False, frame(MSG_REPLY, b"0123456789")[:15], b"the reply stopped arriving"),
])
def test_timeout(fake_server, ctl_ini, lab, reply, message):
    srv = fake_server(reply, hold=True)  # silent, or a partial reply, and the connection kept open
    t0 = time.monotonic()
    r = send(srv.port, "hi", ini=ctl_ini, args=["-t", "1"] + (["--lab"] if lab else []))
    elapsed = time.monotonic() - t0
    assert r.returncode == EXIT_TIMEOUT, r.stderr
    assert r.stdout == b""
    assert r.stderr == b"netlabctl: " + message + b"\n"
    assert 0.9 <= elapsed < 5, elapsed


# ---------------------------------------------------------------------------
# a hostile server's bytes

@pytest.mark.parametrize("body", [b"\x1b[31mred\x1b[0m", b"\x1b]0;title\x07bell", b"cr\rover"])
def test_hostile_reply_printed_raw_to_a_pipe(fake_server, ctl_ini, body):
    srv = fake_server(frame(MSG_REPLY, body))
    r = send(srv.port, "hi", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stdout == body + b"\n"


def test_hostile_reply_escaped_in_json(fake_server, ctl_ini):
    body = b"\x1b[31mred\x1b[0m \xff"
    srv = fake_server(frame(MSG_REPLY, body))
    r = send(srv.port, "hi", ini=ctl_ini, args=["--json"])
    assert r.returncode == 0, r.stderr
    assert b"\x1b" not in r.stdout and b"\xff" not in r.stdout
    assert json.loads(r.stdout)["reply"] == "\x1b[31mred\x1b[0m \xff"


@pytest.mark.parametrize("body, reply", [
    # A valid character next to a stray continuation byte stays a character.
    ("é".encode() + b"\x80 ok", "é\x80 ok"),
    (b"\x80" + "é".encode(), "\x80é"),
    ("✓".encode()[:2] + b"x", "\xe2\x9cx"),  # a cut 3-byte character: both bytes escaped
    (b"\xc0\xaf", "\xc0\xaf"),                  # overlong '/'
])
def test_json_keeps_valid_utf8_next_to_stray_bytes(fake_server, ctl_ini, body, reply):
    srv = fake_server(frame(MSG_REPLY, body))
    r = send(srv.port, "hi", ini=ctl_ini, args=["--json"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["reply"] == reply
    # Only ASCII and valid UTF-8 in the JSON text itself.
    r.stdout.decode("utf-8")


def test_hostile_reply_escaped_on_a_terminal(fake_server, ctl_ini):
    """On a terminal, control characters from the server are shown escaped."""
    srv = fake_server(frame(MSG_REPLY, b"\x1b[31mred\x1b[0m \x07 caf\xc3\xa9 \xc3\xa9\x80"))
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([str(NETLABCTL), f"--config={ctl_ini}", "send", "-H", "127.0.0.1",
                                 "-p", str(srv.port), "hi"], stdin=subprocess.DEVNULL, stdout=slave,
                                stderr=subprocess.PIPE)
        os.close(slave)
        slave = None
        out = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    b = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not b:
                    break
                out += b
            elif proc.poll() is not None:
                break
        assert proc.wait(10) == 0
        proc.stderr.close()
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    # The terminal turns "\n" into "\r\n"; valid UTF-8 passes through.
    assert out == b"\\x1b[31mred\\x1b[0m \\x07 caf\xc3\xa9 \xc3\xa9\\x80\r\n"


def test_hostile_refusal_text_escaped(fake_server, ctl_ini):
    srv = fake_server(frame(MSG_REPLY, b"no\x1b[2J", status=1))
    r = send(srv.port, "hi", ini=ctl_ini)
    assert r.returncode == EXIT_REFUSED
    assert r.stderr == b"netlabctl: server refused (bad-request): no\\x1b[2J\n"


# ---------------------------------------------------------------------------
# INI files

def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_ini_values_used(message_daemon, tmp_path):
    ini = write(tmp_path / "c.ini", f"; netlabctl defaults\n[defaults]\nhost = 127.0.0.1\ntimeout = 3\n"
                                    f"\n[send]\nport = {message_daemon.port}\n")
    r = netlabctl("send", "from ini", ini=ini)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"message received: from ini\n", b"")


def test_ini_json_and_lab(message_daemon, tmp_path):
    ini = write(tmp_path / "c.ini", f"[defaults]\nhost = 127.0.0.1\njson = yes\n[send]\n"
                                    f"port = {message_daemon.port}\nlab = on\n")
    r = netlabctl("send", "hi", ini=ini)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert (obj["format"], obj["reply"]) == ("lab", "message received: hi")


def test_options_beat_ini(message_daemon, tmp_path):
    closed = free_port()
    ini = write(tmp_path / "c.ini", f"[defaults]\nhost = nonexistent.invalid\n[send]\nport = {closed}\n")
    r = netlabctl("send", "-H", "127.0.0.1", "-p", message_daemon.port, "hi", ini=ini)
    assert (r.returncode, r.stdout) == (0, b"message received: hi\n")


def test_ini_timeout_used(fake_server, tmp_path):
    srv = fake_server(None)
    ini = write(tmp_path / "c.ini", f"[defaults]\nhost = 127.0.0.1\ntimeout = 1\n[send]\nport = {srv.port}\n")
    t0 = time.monotonic()
    r = netlabctl("send", "hi", ini=ini)
    assert r.returncode == EXIT_TIMEOUT
    assert r.stderr == b"netlabctl: no reply within 1 s\n"
    assert time.monotonic() - t0 < 5


def user_env(tmp_path, xdg=True):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg") if xdg else ""}


def test_xdg_config_home_ini_read(message_daemon, tmp_path):
    env = user_env(tmp_path)
    write(tmp_path / "xdg" / "netlab" / "netlabctl.ini",
          f"[defaults]\nhost = 127.0.0.1\n[send]\nport = {message_daemon.port}\n")
    r = netlabctl("send", "xdg", env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"message received: xdg\n", b"")


def test_home_config_ini_read_without_xdg(message_daemon, tmp_path):
    env = user_env(tmp_path, xdg=False)
    write(tmp_path / "home" / ".config" / "netlab" / "netlabctl.ini",
          f"[defaults]\nhost = 127.0.0.1\n[send]\nport = {message_daemon.port}\n")
    r = netlabctl("send", "home", env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"message received: home\n", b"")


def test_xdg_ini_errors_reported(tmp_path):
    env = user_env(tmp_path)
    p = write(tmp_path / "xdg" / "netlab" / "netlabctl.ini", "[send]\nprot = 1\n")
    r = netlabctl("send", "hi", env=env)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == f'{p}:2: unknown key "prot" in section [send]\n'.encode()


def test_explicit_config_replaces_user_ini(message_daemon, tmp_path):
    env = user_env(tmp_path)
    write(tmp_path / "xdg" / "netlab" / "netlabctl.ini", "[send]\nprot = 1\n")  # would fail if read
    ini = write(tmp_path / "c.ini", f"[defaults]\nhost = 127.0.0.1\n[send]\nport = {message_daemon.port}\n")
    r = netlabctl("send", "hi", ini=ini, env=env)
    assert (r.returncode, r.stdout) == (0, b"message received: hi\n")


def test_explicit_config_missing(tmp_path):
    p = tmp_path / "nope.ini"
    r = netlabctl("send", "hi", ini=p)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == f"netlabctl: {p}: No such file or directory\n".encode()


SYNTAX = "syntax error (expected [section], key = value, or a ; comment)"
BAD_INI_CASES = [
    ("unknown-key", "[defaults]\nhost = 127.0.0.1\ncolour = red\n", 3,
     'unknown key "colour" in section [defaults]'),
    ("unknown-key-send", "[send]\nhost = 127.0.0.1\n", 2, 'unknown key "host" in section [send]'),
    ("unknown-section", "; comment\n[bogus]\nport = 1\n", 3,
     "unknown section [bogus] (known: [defaults], [send], [fetch], [echo], [guess])"),
    ("key-before-section", "port = 1\n", 1,
     "unknown section [] (known: [defaults], [send], [fetch], [echo], [guess])"),
    ("bad-port", "[send]\nport = 70000\n", 2, 'port: "70000" is not a port from 1 to 65535'),
    ("bad-port-text", "[send]\n\nport = http\n", 3, 'port: "http" is not a port from 1 to 65535'),
    ("bad-timeout", "[defaults]\ntimeout = 0\n", 2, 'timeout: "0" is not whole seconds from 1 to 86400'),
    ("bad-bool", "[defaults]\njson = maybe\n", 2, 'json: "maybe" is not true or false'),
    ("bad-lab-bool", "[send]\nlab = 2\n", 2, 'lab: "2" is not true or false'),
    ("bad-fetch-port", "[fetch]\nport = 0\n", 2, 'port: "0" is not a port from 1 to 65535'),
    ("bad-fetch-verify", "[fetch]\nverify = sometimes\n", 2, 'verify: "sometimes" is not true or false'),
    ("unknown-key-fetch", "[fetch]\ntimeout = 3\n", 2, 'unknown key "timeout" in section [fetch]'),
    ("empty-host", "[defaults]\nhost =\n", 2, 'host: "" is not a host name or address'),
    ("syntax-error", "[send]\nport = 12345\nthis line is junk\n", 3, SYNTAX),
    ("unclosed-section", "[send\nport = 1\n", 1, SYNTAX),
    ("first-problem-wins", "[send]\nport = 0\nbogus = 1\n", 2, 'port: "0" is not a port from 1 to 65535'),
    ("syntax-before-key-problem", "[send]\njunk\nbogus = 1\n", 2, SYNTAX),
]


@pytest.mark.parametrize("text, line, message", [c[1:] for c in BAD_INI_CASES],
                         ids=[c[0] for c in BAD_INI_CASES])
def test_bad_ini(tmp_path, text, line, message):
    ini = write(tmp_path / "bad.ini", text)
    r = netlabctl("send", "-H", "127.0.0.1", "-p", "1", "hi", ini=ini)
    assert r.returncode == EXIT_USAGE
    assert r.stdout == b""
    assert r.stderr == f"{ini}:{line}: {message}\n".encode()


LONG_COMMENT = "; " + "c" * 300 + "\n"


def test_ini_long_comment_line(message_daemon, tmp_path):
    """A comment longer than the INI reader's line buffer is still a comment."""
    ini = write(tmp_path / "c.ini", LONG_COMMENT + f"[defaults]\nhost = 127.0.0.1\n[send]\n"
                                                  f"port = {message_daemon.port}\n")
    r = netlabctl("send", "hi", ini=ini)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"message received: hi\n", b"")


TOO_LONG_LINE = "line longer than 199 characters (the INI reader's limit)"


@pytest.mark.parametrize("text, line, message", [
    # 199 characters is the longest line; 200 is one too many.
    ("[defaults]\nhost = " + "h" * 192 + "\n", None, None),
    ("[defaults]\nhost = " + "h" * 193 + "\n", 2, TOO_LONG_LINE),
    ("[defaults]\nhost = " + "h" * 250 + "\n", 2, TOO_LONG_LINE),
    # Line numbers stay right after a long comment.
    (LONG_COMMENT + "[send]\nprot = 1\n", 3, 'unknown key "prot" in section [send]'),
    ("# " + "c" * 300 + "\n" + LONG_COMMENT + "[send]\n\nport = 0\n", 5,
     'port: "0" is not a port from 1 to 65535'),
])
def test_ini_long_lines(tmp_path, text, line, message):
    ini = write(tmp_path / "c.ini", text)
    # `send --help` reads the INI first, then just prints the help.
    r = netlabctl("send", "--help", ini=ini)
    if line is None:
        assert (r.returncode, r.stderr) == (0, b"")
    else:
        assert r.returncode == EXIT_USAGE
        assert r.stderr == f"{ini}:{line}: {message}\n".encode()


# ---------------------------------------------------------------------------
# --help and --version

GLOBAL_OPTIONS = ["--config", "--help", "-h", "--version", "-V", "--host", "-H", "--port", "-p",
                  "--timeout", "-t", "--json", "-j", "send"]
SEND_OPTIONS = ["--lab", "-l", "--host", "-H", "--port", "-p", "--timeout", "-t", "--json", "-j",
                "--help", "-h"]


@pytest.mark.parametrize("args, mentions", [
    (["--help"], GLOBAL_OPTIONS),
    (["-h"], GLOBAL_OPTIONS),
    (["send", "--help"], SEND_OPTIONS),
    (["send", "-h"], SEND_OPTIONS),
])
def test_help(ctl_ini, args, mentions):
    r = netlabctl(*args, ini=ctl_ini)
    assert r.returncode == 0
    assert r.stderr == b""
    text = r.stdout.decode()
    assert text.startswith("Usage: netlabctl ")
    missing = [o for o in mentions if not re.search(rf"(^|[\s,]){re.escape(o)}([\s,=]|$)", text, re.M)]
    assert missing == []


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    r = netlabctl(flag)
    assert r.returncode == 0
    assert re.fullmatch(rb"netlabctl \d+\.\d+\.\d+\S*\n", r.stdout), r.stdout
    assert r.stderr == b""


# ---------------------------------------------------------------------------
# options that undo INI settings

def test_no_json_and_no_lab_override_the_ini(message_daemon, tmp_path):
    ini = write(tmp_path / "c.ini", f"[defaults]\nhost = 127.0.0.1\njson = true\n"
                                    f"[send]\nport = {message_daemon.port}\nlab = true\n")
    r = netlabctl("send", "hi", ini=ini)
    assert r.returncode == 0
    assert json.loads(r.stdout)["format"] == "lab"
    r = netlabctl("send", "--no-json", "--no-lab", "hi", ini=ini)
    assert (r.returncode, r.stdout) == (0, b"message received: hi\n")
    assert message_daemon.wait_requests(2)[1]["BYTES_IN"] == str(12 + 2)  # a frame, not bare text
