"""Fixtures for netlab's black-box integration suite.

Run with Debian's Python: /usr/bin/python3 -m pytest tests/integration
(the python3 on PATH may be a build that cannot see python3-pytest).

NETLAB_BUILD names the Meson build directory to test (default: build/), so the
same suite runs against the ASan/UBSan build. Every daemon is started on free
loopback ports from a temporary config, waited for through its NOTIFY_SOCKET
(READY=1), stopped by pid at teardown, and its log is checked for sanitizer
reports and children killed by a signal.
"""
import os
import re
import select
import signal
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("NETLAB_BUILD", REPO / "build")).resolve()
NETLABD = BUILD / "daemon" / "netlabd"
NETLABCTL = BUILD / "cli" / "netlabctl"

# Lines in a daemon log that mean a test must fail even if it passed.
BAD_LOG = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|"
                     r"killed by signal|exited with status")


def require_tools(*tools, package=None):
    """Skip the calling test when a tool is missing, naming what to install;
    under CI (CI=true, where tests/setup-deps.sh --test installed them all) a
    missing tool fails the test instead: a tier that silently skips proves
    nothing."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    why = f"{', '.join(missing)} not installed" + (f" (apt-get install {package})" if package else "")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why}: CI must run this test (tests/setup-deps.sh --test installs it)", pytrace=False)
    pytest.skip(why)


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    """A port that was free a moment ago, for both TCP and UDP if possible."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET, other) as s2:
                s2.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def _value(v):
    """libconfig text for one value.  A list of scalars is an array ([1, 2],
    ["a", "b"]); a list of dicts is a list of groups (( { k = v; }, ... ))."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{ " + " ".join(f"{k} = {_value(x)};" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, dict) for x in v):
            return "( " + ", ".join(_value(x) for x in v) + " )"
        return "[" + ", ".join(_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def make_config(listeners, limits=None, log=None):
    """libconfig text for netlabd from plain dicts."""
    lim = {"max_children": 64, "max_per_source": 64, "idle_timeout": 5, "total_timeout": 30,
           "grace_period": 5}
    lim.update(limits or {})
    lg = {"target": "stderr", "level": "info"}
    lg.update(log or {})
    out = ["limits = { " + " ".join(f"{k} = {_value(v)};" for k, v in lim.items()) + " };",
           "log = { " + " ".join(f"{k} = {_value(v)};" for k, v in lg.items()) + " };",
           "listeners = ("]
    body = []
    for l in listeners:
        body.append("  { " + " ".join(f"{k} = {_value(v)};" for k, v in l.items()) + " }")
    out.append(",\n".join(body))
    out.append(");")
    return "\n".join(out) + "\n"


def message_listener(port, name="message", **extra):
    l = {"name": name, "service": "message", "transport": "tcp", "address": "127.0.0.1", "port": port}
    l.update(extra)
    return l


def echo_listener(port, name="echo", **extra):
    l = {"name": name, "service": "echo", "transport": "udp", "address": "127.0.0.1", "port": port}
    l.update(extra)
    return l


def guess_listener(port, name="guess", **extra):
    l = {"name": name, "service": "guess", "transport": "udp", "address": "127.0.0.1", "port": port}
    l.update(extra)
    return l


def udp_exchange(port, data, timeout=2.0, host="127.0.0.1", bind=None):
    """Send one datagram from a fresh socket (bound to bind, an (addr, port),
    if given) and return the first reply, or None if none came in timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        if bind is not None:
            s.bind(bind)
        s.settimeout(timeout)
        s.sendto(data, (host, port))
        try:
            return s.recvfrom(65536)[0]
        except socket.timeout:
            return None


REQUEST_FIELDS = re.compile(r"\[(LISTENER=.*)\]$")


class Netlabd:
    """One netlabd process under test."""

    def __init__(self, workdir: Path, config_text: str, extra_args=(), env=None, prefix=()):
        self.workdir = workdir
        # A command netlabd runs under, e.g. ["ip", "netns", "exec", NS] (ip
        # execs it: the pid stays netlabd's).
        self.prefix = list(prefix)
        self.config = workdir / "netlabd.conf"
        self.config.write_text(config_text)
        self.logfile = workdir / "netlabd.log"
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.notify_sock = None
        self.notifications = []
        self.notify_cursor = 0  # wait_notify() looks only at messages after this
        self.ready_seconds = None

    # -- process control --
    def start(self, timeout=10.0, wait_ready=True):
        npath = self.workdir / "notify.sock"
        if npath.exists():
            npath.unlink()
        self.notify_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_sock.bind(str(npath))
        env = dict(self.env)
        env["NOTIFY_SOCKET"] = str(npath)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self._log = open(self.logfile, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([*self.prefix, str(NETLABD), "-c", str(self.config), *self.extra_args],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     env=env)
        if wait_ready:
            self.wait_notify(lambda m: "READY=1" in m, timeout)
            self.ready_seconds = time.monotonic() - t0
        return self

    def read_notifications(self, timeout=0.0):
        """Collect notify messages that arrived, waiting up to timeout for the first."""
        got = []
        self.notify_sock.settimeout(timeout if timeout > 0 else 0.0001)
        while True:
            try:
                data = self.notify_sock.recv(4096)
            except (BlockingIOError, socket.timeout):
                break
            got.append(data.decode(errors="replace"))
            self.notify_sock.settimeout(0.0001)
        self.notifications.extend(got)
        return got

    def wait_notify(self, pred, timeout=10.0):
        """Wait for a notify message after the last one matched; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self.notify_cursor < len(self.notifications):
                m = self.notifications[self.notify_cursor]
                self.notify_cursor += 1
                if pred(m):
                    return m
            self.read_notifications(timeout=0.05)
            if self.notify_cursor < len(self.notifications):
                continue
            if self.proc.poll() is not None:
                raise AssertionError(f"netlabd exited with {self.proc.returncode}:\n{self.log()}")
        raise AssertionError(f"no matching sd_notify message in {timeout}s; got {self.notifications}\n"
                             f"{self.log()}")

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, config_text=None, timeout=10.0):
        """SIGHUP with an optional new config; wait for READY=1 after RELOADING=1."""
        if config_text is not None:
            self.config.write_text(config_text)
        self.read_notifications()
        self.notify_cursor = len(self.notifications)
        self.signal(signal.SIGHUP)
        self.wait_notify(lambda m: "RELOADING=1" in m, timeout)
        self.wait_notify(lambda m: "READY=1" in m, timeout)

    def stop(self, timeout=20.0):
        """SIGTERM, then wait; SIGKILL if it does not exit. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("netlabd did not stop within %ss of SIGTERM" % timeout)
        self._log.close()
        if self.notify_sock:
            self.notify_sock.close()
        return self.proc.returncode

    # -- observation --
    def log(self):
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def requests(self):
        """Parsed request summary entries from the stderr log, oldest first."""
        out = []
        for line in self.log().splitlines():
            m = REQUEST_FIELDS.search(line)
            if m:
                out.append(dict(kv.split("=", 1) for kv in m.group(1).split(" ")))
        return out

    def wait_requests(self, n=1, timeout=10.0, pred=None, listener=None):
        """The request entries (only those of listener, if given) once there
        are n of them, or, with pred, once pred(entries) holds (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            reqs = [e for e in self.requests() if listener is None or e.get("LISTENER") == listener]
            if pred(reqs) if pred else len(reqs) >= n:
                return reqs
            if time.monotonic() > deadline:
                want = "never matched" if pred else f"expected {n}, got {len(reqs)}"
                raise AssertionError(f"request log entries of {listener or 'every listener'}: {want}: {reqs}\n"
                                     f"{self.log()[-4000:]}")
            time.sleep(0.02)

    def children(self):
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except FileNotFoundError:
            return []
        return [int(p) for p in text.split()]

    def zombies(self):
        out = []
        for pid in self.children():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except FileNotFoundError:
                continue
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                out.append(pid)
        return out

    def wait_no_children(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.children():
                return
            time.sleep(0.02)
        raise AssertionError(f"children still present: {self.children()}")

    def rss_kib(self):
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))


@pytest.fixture
def daemon_factory(tmp_path):
    """Make and start netlabd instances; all are stopped and their logs checked at teardown."""
    made = []

    def make(config_text, extra_args=("--log-target=stderr",), env=None, start=True, name=None, prefix=()):
        d = tmp_path / (name or f"d{len(made)}")
        d.mkdir()
        n = Netlabd(d, config_text, extra_args, env, prefix)
        made.append(n)
        if start:
            n.start()
        return n

    yield make
    stop_and_check(made)


def stop_and_check(made):
    """Stop every daemon a fixture made; fail if one did not stop cleanly or its
    log shows a crash or a sanitizer report."""
    problems = []
    for n in made:
        try:
            n.stop()
        except AssertionError as e:
            problems.append(str(e))
        bad = [l for l in n.log().splitlines() if BAD_LOG.search(l)]
        if bad and not getattr(n, "allow_bad_log", False):
            problems.append("daemon log shows a crash or sanitizer report:\n" + "\n".join(bad[:20]))
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def message_daemon(daemon_factory):
    """netlabd with one message listener on a free loopback port."""
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)]))
    d.port = port
    return d


@pytest.fixture
def ctl_ini(tmp_path):
    """An empty INI file so netlabctl ignores the machine's and user's files."""
    p = tmp_path / "empty.ini"
    p.write_text("")
    return p


def netlabctl(*args, ini=None, input=None, timeout=30, env=None):
    cmd = [str(NETLABCTL)]
    if ini is not None:
        cmd.append(f"--config={ini}")
    cmd.extend(str(a) for a in args)
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=e)


def raw_exchange(port, data, shut_wr=False, timeout=10.0, host="127.0.0.1"):
    """Connect, send data, optionally half-close, read until EOF. Returns the bytes."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        return recv_all(s)


def recv_all(s):
    """Read from a connected socket until EOF (bounded by its timeout)."""
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def hold_child(d, port, data=b"\x00NL\x01", n=1, timeout=5.0):
    """Open a connection whose request is incomplete (a partial frame header),
    so its child waits; returns the socket once d has n children."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        s.sendall(data)
    deadline = time.monotonic() + timeout
    while len(d.children()) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(d.children()) >= n, d.children()
    return s


def frame(type_, body=b"", status=0, version=1, reserved=0):
    """A netlab frame (docs/PROTOCOL.md)."""
    return (b"\x00NL" + bytes([version, type_, status]) + reserved.to_bytes(2, "big")
            + len(body).to_bytes(4, "big") + body)


def parse_frame(data):
    """(version, type, status, body) of one frame; asserts it is whole."""
    assert data[:3] == b"\x00NL", data[:16]
    length = int.from_bytes(data[8:12], "big")
    assert len(data) == 12 + length, (len(data), length)
    return data[3], data[4], data[5], data[12:]


# ---------------------------------------------------------------------------
# the file service (docs/PROTOCOL.md sections 8 and 9)

FILE_GET, FILE_STAT, FILE_LIST = 0x10, 0x11, 0x12
FILE_INFO, FILE_END, FILE_ENTRIES = 0x20, 0x21, 0x22
FILE_INFO_SIZE = 70


def file_listener(port, root, name="files", **extra):
    l = {"name": name, "service": "file", "transport": "tcp", "address": "127.0.0.1", "port": port,
         "root": str(root)}
    l.update(extra)
    return l


def udp_file_listener(port, root, name="files-udp", **extra):
    """A file listener over UDP (docs/PROTOCOL.md section 11)."""
    return file_listener(port, root, name=name, transport="udp", **extra)


def start_file_daemon(daemon_factory, tmp_path, limits=None, **extra):
    """netlabd with one file listener on a free loopback port, rooted at a new
    empty tmp_path/root; d.port and d.root say where.  extra: listener keys."""
    root = tmp_path / "root"
    root.mkdir()
    port = free_port()
    d = daemon_factory(make_config([file_listener(port, root, **extra)], limits=limits))
    d.port = port
    d.root = root
    return d


@pytest.fixture
def file_daemon(daemon_factory, tmp_path):
    """netlabd with one file listener (lab_file = "source_file.txt")."""
    return start_file_daemon(daemon_factory, tmp_path, lab_file="source_file.txt")


def _path_field(path):
    p = path.encode() if isinstance(path, str) else bytes(path)
    return len(p).to_bytes(2, "big") + p


def file_get_body(path, offset=0, flags=0, validator=None, tail_len=0, tail_hash=None):
    """The body of a FILE_GET request (PROTOCOL.md 8.1)."""
    body = bytes([flags]) + offset.to_bytes(8, "big")
    if validator is None:
        body += b"\x00"
    else:
        body += bytes([len(validator)]) + validator
    body += tail_len.to_bytes(4, "big")
    if tail_len:
        body += tail_hash
    return body + _path_field(path)


def file_get(path, **kw):
    return frame(FILE_GET, file_get_body(path, **kw))


def file_stat(path):
    return frame(FILE_STAT, _path_field(path))


def file_list(path):
    return frame(FILE_LIST, _path_field(path))


def recv_exact(s, n):
    """Up to n bytes from s: fewer only at EOF."""
    chunks, got = [], 0
    while got < n:
        b = s.recv(min(n - got, 1 << 20))
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def read_frame(s):
    """(version, type, status, body) of the next frame; None at a clean EOF
    before any byte.  Asserts the frame is whole."""
    hdr = recv_exact(s, 12)
    if not hdr:
        return None
    assert len(hdr) == 12 and hdr[:3] == b"\x00NL", hdr
    length = int.from_bytes(hdr[8:12], "big")
    body = recv_exact(s, length)
    assert len(body) == length, (len(body), length)
    return hdr[3], hdr[4], hdr[5], body


def parse_file_info(body):
    assert len(body) == FILE_INFO_SIZE, len(body)
    return {
        "kind": body[0], "flags": body[1],
        "size": int.from_bytes(body[2:10], "big"),
        "offset": int.from_bytes(body[10:18], "big"),
        "length": int.from_bytes(body[18:26], "big"),
        "mtime_sec": int.from_bytes(body[26:34], "big", signed=True),
        "mtime_nsec": int.from_bytes(body[34:38], "big"),
        "validator": body[38:70],
    }


def parse_entries(body):
    """[(kind, size, mtime_sec, name bytes)] of one FILE_ENTRIES body."""
    out, i = [], 0
    while i < len(body):
        kind = body[i]
        size = int.from_bytes(body[i + 1:i + 9], "big")
        mtime = int.from_bytes(body[i + 9:i + 17], "big", signed=True)
        n = int.from_bytes(body[i + 17:i + 19], "big")
        name = body[i + 19:i + 19 + n]
        assert len(name) == n and 1 <= n <= 255, body[i:i + 40]
        out.append((kind, size, mtime, name))
        i += 19 + n
    return out


class FileAnswer:
    """What a file listener answered to one netlab request."""
    status = None       # FILE_INFO status
    text = None         # the error text (status != 0)
    info = None         # parse_file_info() (status 0)
    data_len = 0        # raw bytes received after FILE_INFO
    data = None         # those bytes (when kept)
    sha256 = None       # hexdigest of those bytes
    end = None          # (status, body) of FILE_END, None if it never came
    entries = None      # LIST: all entries
    entry_frames = 0    # LIST: number of FILE_ENTRIES frames
    eof_after = None    # True when the server closed right after its last frame
    raw_len = 0         # all bytes received
    local_port = None   # the client's port (REMOTE_PORT= in the daemon's log)


def file_exchange(port, request, keep_data=True, sink=None, timeout=20.0, host="127.0.0.1",
                  shut_wr=False, sock_setup=None):
    """Send one request (bytes) to a file listener and decode the whole answer.
    Data is hashed as it arrives (never held when keep_data is False); sink, if
    given, is called with each chunk."""
    import hashlib
    a = FileAnswer()
    with socket.create_connection((host, port), timeout=timeout) as s:
        a.local_port = s.getsockname()[1]
        if sock_setup:
            sock_setup(s)
        if request:
            s.sendall(request)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        f = read_frame(s)
        assert f is not None, "the server closed without answering"
        version, type_, a.status, body = f
        assert (version, type_) == (1, FILE_INFO), f
        a.raw_len += 12 + len(body)
        if a.status != 0:
            a.text = body.decode(errors="replace")
            a.eof_after = s.recv(1) == b""
            return a
        a.info = parse_file_info(body)
        h = hashlib.sha256()
        chunks = [] if keep_data else None
        left = a.info["length"]
        buf = bytearray(4 << 20)
        view = memoryview(buf)
        while left > 0:
            n = s.recv_into(view, min(left, len(buf)))
            if not n:
                break
            h.update(view[:n])
            if sink:
                sink(bytes(view[:n]))
            if chunks is not None:
                chunks.append(bytes(view[:n]))
            left -= n
            a.data_len += n
        a.raw_len += a.data_len
        a.sha256 = h.hexdigest()
        if chunks is not None:
            a.data = b"".join(chunks)
        if left > 0:
            a.eof_after = True
            return a
        if a.info["kind"] == 2:
            a.entries = []
        while True:
            f = read_frame(s)
            if f is None:
                break
            version, type_, status, body = f
            a.raw_len += 12 + len(body)
            assert version == 1, f
            if type_ == FILE_ENTRIES:
                assert status == 0 and len(body) <= 65536, (status, len(body))
                a.entry_frames += 1
                a.entries.extend(parse_entries(body))
                continue
            assert type_ == FILE_END, f
            a.end = (status, body)
            break
        a.eof_after = s.recv(1) == b""
    return a


def wait_entry(d, remote_port, timeout=10.0, settle=0.1):
    """The request summary entry a daemon logged for the client port given.

    The kernel may hand the same client port to several connections over one
    daemon's life, so this returns the newest matching entry, after giving a
    request that just ended `settle` seconds for its entry to land behind an
    older one."""
    deadline = time.monotonic() + timeout
    first_seen = None
    while time.monotonic() < deadline:
        matches = [e for e in d.requests() if e.get("REMOTE_PORT") == str(remote_port)]
        if matches:
            now = time.monotonic()
            first_seen = now if first_seen is None else first_seen
            if now - first_seen >= settle:
                return matches[-1]
        time.sleep(0.02)
    raise AssertionError(f"no request entry for client port {remote_port}:\n{d.log()[-4000:]}")


def read_line(stream, timeout):
    """The first line a child writes on the pipe stream, read byte by byte
    so that nothing after it is taken, bounded in time: shorter (no newline)
    if the child closes it or the time runs out first."""
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.1)
        if ready:
            b = os.read(stream.fileno(), 1)
            if not b:
                break
            line += b
    return line


def sha256_file(path, chunk=1 << 20):
    """Hex SHA-256 of a file, streamed (never holding it in memory)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


# A sparse file: `size` bytes of zeros except `marks` {offset: bytes}.
_ZEROS = bytes(1 << 20)


def make_sparse(path, size, marks):
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in marks.items():
            f.seek(off)
            f.write(data)


def sparse_sha256(size, marks, start=0):
    """SHA-256 of bytes [start, size) of such a file, without reading it."""
    import hashlib
    h = hashlib.sha256()
    pos = start
    zeros = memoryview(_ZEROS)
    for off in sorted(marks):
        data = marks[off]
        end = off + len(data)
        if end <= pos:
            continue
        while pos < off:
            n = min(off - pos, len(zeros))
            h.update(zeros[:n])
            pos += n
        h.update(data[pos - off:])
        pos = end
    while pos < size:
        n = min(size - pos, len(zeros))
        h.update(zeros[:n])
        pos += n
    return h.hexdigest()


def flood_from_sources(port, prefix, payload, n=3000, batch=200, limit=60.0):
    """One datagram from each of n loopback source addresses prefix.X.Y (e.g.
    "127.1"), a socket each, opened and closed in batches; payload(k) gives the
    k-th datagram. Bounded in count and time."""
    t0 = time.monotonic()
    k = 0
    while k < n:
        socks = []
        try:
            for _ in range(min(batch, n - k)):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((f"{prefix}.{k // 250}.{k % 250 + 1}", 0))
                s.sendto(payload(k), ("127.0.0.1", port))
                k += 1
            time.sleep(0.02)
        finally:
            for s in socks:
                s.close()
        assert time.monotonic() - t0 < limit, "flood took too long"
    return k
