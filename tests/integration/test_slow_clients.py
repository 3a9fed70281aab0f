"""Slow and broken TCP clients (issue 7): each one frees its child within the
configured timeouts, gets the protocol's refusal where it is still there to
read one, and leaves a log entry that says what happened.

* slowloris: part of a request, then a byte every 0.4 s, on every TCP
  request form (message frame and text, file request header and body, lab
  download preamble): refused at header_timeout, which trickling bytes cannot
  extend, long before idle_timeout or total_timeout;
* a request sent slowly but complete within header_timeout is served, and a
  transfer may then last longer than header_timeout;
* a reader that never reads a large download: the send blocks, the child
  ends after idle_timeout;
* a reset (SO_LINGER 0) inside the request or mid-download: the child ends at
  once with an error result, and the daemon keeps serving;
* half-open connections, in a pair of network namespaces whose link drops
  every packet from the client once it is connected (so no FIN or RST ever
  arrives): before the request the header deadline frees the child, during a
  download the idle timeout does.

The UDP side (a transfer client that stops acknowledging mid-transfer, or
never acknowledges the ACCEPT) is covered by test_xfer.py:
test_vanished_client_frees_child and test_never_acknowledged_accept_times_out.

Bounds are windows around a limit ("gone after the header deadline, before
the idle timeout could have fired"), never performance figures.  Every loop is
bounded in count and time.
"""
import socket
import struct
import time

import pytest

import conftest
from conftest import (FILE_INFO, FILE_END, file_get, file_listener, frame, free_port, make_config,
                      make_sparse, message_listener, parse_frame, read_frame, recv_exact)
from netns import pair_fixture

MSG_SEND, MSG_REPLY = 0x01, 0x02
OK, TIMEOUT = 0, 6
GIB = 1 << 30

HEADER_TIMEOUT = 2
IDLE_TIMEOUT = 5
LIMITS = {"header_timeout": HEADER_TIMEOUT, "idle_timeout": IDLE_TIMEOUT, "total_timeout": 30}
# The header deadline runs from the accept in the child; the first client
# byte goes out right after connect(), so "refused before the deadline" would
# be a bug, not jitter.  The small allowance is for clock granularity.
EARLY = 0.2


@pytest.fixture
def slow(daemon_factory, tmp_path):
    """netlabd with a message listener (frames and the default text form), a
    message listener whose text settles after 1 s (so a byte every 0.4 s keeps
    a text message open), a file listener whose lab_file has 16 KiB and one
    whose lab_file is a 1 GiB sparse file; header_timeout 2 s, idle_timeout
    5 s.  d.ports by listener name, d.root."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "one").write_bytes(b"x")
    (root / "lab.txt").write_bytes(bytes(range(256)) * 64)  # 16 KiB
    make_sparse(root / "big", GIB, {0: b"x"})
    ports = {"message": free_port(), "text": free_port(), "files": free_port(), "big": free_port()}
    d = daemon_factory(make_config([
        message_listener(ports["message"]),
        message_listener(ports["text"], name="text", text_settle_ms=1000),
        file_listener(ports["files"], root, lab_file="lab.txt"),
        file_listener(ports["big"], root, name="big", lab_file="big"),
    ], limits=LIMITS))
    d.ports, d.root = ports, root
    return d


def entry_line(d, port, timeout=10.0):
    """The daemon's request entry (the parsed fields) and its whole log line,
    for the client port given: the human part of the line carries DETAIL."""
    e = conftest.wait_entry(d, port, timeout=timeout)
    lines = [l for l in d.log().splitlines() if f" REMOTE_PORT={port} " in l and "[LISTENER=" in l]
    assert lines, d.log()[-2000:]
    return e, lines[-1]


def wait_gone(d, pids, limit):
    """Seconds until none of pids is d's child any more (bounded by limit;
    asserts they went)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if not set(pids) & set(d.children()):
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError(f"children {pids} still there after {limit} s: {d.children()}")


def wait_child(d, n=1, limit=5.0):
    """d's children once there are n (bounded)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        kids = d.children()
        if len(kids) >= n:
            return kids
        time.sleep(0.01)
    raise AssertionError(f"expected {n} children, got {d.children()}")


def answer_complete(form, out):
    """Has the whole refusal arrived (a frame, or a text line)?"""
    if form == "frame":
        return len(out) >= 12 and len(out) >= 12 + int.from_bytes(out[8:12], "big")
    return out.endswith(b"\n")


def trickle(port, first, rest, gap, form, limit=15.0, host="127.0.0.1", sock=None):
    """Send first, then rest one byte every gap seconds, reading between
    bytes, until the server answers and closes (or rest runs out).  Returns
    (bytes received, seconds from connect to the end of the answer, client port)."""
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    out = b""
    with s:
        s.settimeout(10)
        s.connect((host, port))
        t0 = time.monotonic()
        lport = s.getsockname()[1]
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(first)
        s.settimeout(gap)
        eof = False
        for i in range(len(rest) + 1):  # bounded: one pass per byte, and by limit
            try:
                b = s.recv(65536)
                if not b:
                    eof = True
                    break
                out += b
                if answer_complete(form, out):
                    break
                continue
            except socket.timeout:
                pass
            except ConnectionResetError:
                break
            if i == len(rest) or time.monotonic() - t0 > limit:
                break
            try:
                s.sendall(rest[i:i + 1])
            except OSError:
                break
        took = time.monotonic() - t0
        if not eof:
            # The answer is in (or nothing comes): the server closes next.
            s.settimeout(5)
            try:
                while len(out) < 1 << 16:
                    b = s.recv(65536)
                    if not b:
                        break
                    out += b
            except (socket.timeout, ConnectionResetError):
                pass
    return out, took, lport


# ---------------------------------------------------------------------------
# slowloris: part of the request, then a byte every 0.4 s

MSG = frame(MSG_SEND, b"x" * 40)
GET = file_get("one")

SLOWLORIS = {
    # name: (listener, first bytes, the rest trickled, answer form, expected answer)
    "message-frame-header": ("message", MSG[:5], MSG[5:], "frame",
                             (1, MSG_REPLY, TIMEOUT, b"the rest of the message did not arrive in time")),
    "message-frame-body": ("message", MSG[:14], MSG[14:], "frame",
                           (1, MSG_REPLY, TIMEOUT, b"the rest of the message did not arrive in time")),
    "message-text": ("text", b"h", b"ello, trickled world" * 2, "text",
                     b"error: the rest of the message did not arrive in time\n"),
    "file-header": ("files", GET[:5], GET[5:], "frame",
                    (1, FILE_INFO, TIMEOUT, b"the request did not arrive in time")),
    "file-body": ("files", GET[:13], GET[13:], "frame",
                  (1, FILE_INFO, TIMEOUT, b"the request did not arrive in time")),
    # The lab client writes every byte it receives into its file: no text,
    # a bare close.
    "lab-download": ("files", b"1", b"\x00" + b"0" * 9 + b"\x00", "lab", b""),
}


@pytest.mark.parametrize("case", list(SLOWLORIS))
def test_slowloris_refused_at_header_deadline(slow, case):
    d = slow
    listener, first, rest, form, want = SLOWLORIS[case]
    # The trickle must outlast the header deadline, or the case proves nothing.
    assert len(rest) * 0.4 > HEADER_TIMEOUT + 2
    out, took, lport = trickle(d.ports[listener], first, rest, 0.4, form)

    if form == "frame":
        assert parse_frame(out) == want, out
    else:
        assert out == want, out
    # Refused at the header deadline: a byte every 0.4 s would have kept the
    # idle timeout (5 s) away for ever, and total_timeout is 30 s.
    assert HEADER_TIMEOUT - EARLY <= took < IDLE_TIMEOUT, took
    d.wait_no_children(timeout=IDLE_TIMEOUT - HEADER_TIMEOUT)
    assert not d.zombies()

    e, line = entry_line(d, lport)
    assert e["RESULT"] == "timeout", line
    assert f"header deadline: no complete request {HEADER_TIMEOUT} s after the accept (header_timeout)" in line
    assert int(e["DURATION_USEC"]) < IDLE_TIMEOUT * 1_000_000, e


def test_nothing_sent_is_refused_at_header_deadline(slow):
    """A client that connects and sends nothing: the header deadline (2 s),
    not the idle timeout (5 s), ends it; the form is unknown, so a line."""
    d = slow
    cases = (("message", b"error: no message arrived in time\n"),
             ("files", b"error: no request arrived in time\n"))
    t0 = time.monotonic()
    socks = [socket.create_connection(("127.0.0.1", d.ports[name]), timeout=10) for name, _ in cases]
    try:
        for s, (name, want) in zip(socks, cases):
            out = conftest.recv_all(s)
            took = time.monotonic() - t0
            assert out == want
            assert HEADER_TIMEOUT - EARLY <= took < IDLE_TIMEOUT, took
            e, line = entry_line(d, s.getsockname()[1])
            assert e["RESULT"] == "timeout" and "header deadline" in line, line
    finally:
        for s in socks:
            s.close()
    d.wait_no_children(timeout=5)


# ---------------------------------------------------------------------------
# slow but within the deadline: served

@pytest.mark.parametrize("case", ["message-frame", "message-text", "file-get", "lab-download"])
def test_slow_complete_request_is_served(slow, case):
    """Request bytes 0.08 s apart, so the request takes about 1 s of the 2 s
    header deadline (far slower than any real client): served as usual."""
    d = slow
    if case == "message-frame":
        req, port = frame(MSG_SEND, b"slowly"), d.ports["message"]
    elif case == "message-text":
        req, port = b"slowly\n", d.ports["text"]
    elif case == "file-get":
        req, port = file_get("lab.txt")[:14], d.ports["files"]
    else:
        req, port = b"1\x00" + b"100\x00" + b"\x00" * 6, d.ports["files"]
    rest = file_get("lab.txt")[14:] if case == "file-get" else b""
    # At most 18 bytes 0.08 s apart (the frame header of a file request
    # among them), then the rest at once: 1.5 s at most.
    assert len(req) * 0.08 < HEADER_TIMEOUT - 0.5
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lport = s.getsockname()[1]
        for i in range(len(req)):
            s.sendall(req[i:i + 1])
            time.sleep(0.08)
        if rest:
            s.sendall(rest)
        out = conftest.recv_all(s)

    data = (d.root / "lab.txt").read_bytes()
    if case == "message-frame":
        assert parse_frame(out) == (1, MSG_REPLY, OK, b"message received: slowly")
    elif case == "message-text":
        assert out == b"message received: slowly\n"
    elif case == "file-get":
        assert parse_frame(out[:12 + 70])[:3] == (1, FILE_INFO, OK)
        assert out[12 + 70:12 + 70 + len(data)] == data
        assert parse_frame(out[12 + 70 + len(data):])[:3] == (1, FILE_END, OK)
    else:
        assert out == data[100:]
    e, line = entry_line(d, lport)
    assert e["RESULT"] == "ok", line


@pytest.mark.parametrize("case", ["file-get", "lab-download"])
def test_transfer_may_outlast_header_deadline(slow, case):
    """Once the request is in, the header deadline no longer applies: a
    download read slowly for longer than header_timeout goes on (bounded by
    the idle timeout only), and ends as the client wants."""
    d = slow
    req = file_get("big") if case == "file-get" else b"0\x00"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", d.ports["big"]))
        lport = s.getsockname()[1]
        s.sendall(req)
        if case == "file-get":
            assert read_frame(s)[:3] == (1, FILE_INFO, OK)
        got = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < HEADER_TIMEOUT + 1.5:  # bounded in time
            got += len(s.recv(1 << 16))
            time.sleep(0.05)
        assert got > 0
        kids = d.children()
        assert len(kids) == 1, kids  # still served past the header deadline
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wait_gone(d, kids, 3)
    e, line = entry_line(d, lport)
    assert e["RESULT"] == "send-failed", line


# ---------------------------------------------------------------------------
# a reader that never reads

@pytest.mark.parametrize("case", ["file-get", "lab-download"])
def test_reader_that_never_reads(daemon_factory, tmp_path, case):
    """A 1 GiB download to a client with a tiny receive buffer that never
    calls recv(): the server's send blocks, and the child ends after
    idle_timeout (2 s here), not before, and not never."""
    root = tmp_path / "root"
    root.mkdir()
    make_sparse(root / "big", GIB, {0: b"x"})
    port = free_port()
    idle = 2
    d = daemon_factory(make_config([file_listener(port, root, lab_file="big")],
                                   limits={"header_timeout": 2, "idle_timeout": idle, "total_timeout": 30}))
    req = file_get("big") if case == "file-get" else b"0\x00"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        lport = s.getsockname()[1]
        t0 = time.monotonic()
        s.sendall(req)
        kids = wait_child(d)
        wait_gone(d, kids, idle + 8)
        took = time.monotonic() - t0
        # The buffers fill at once; then idle_timeout without progress.
        assert took >= idle - EARLY, took
        assert not d.zombies()
    e, line = entry_line(d, lport)
    assert e["RESULT"] == "timeout", line
    assert f"the client stopped reading; idle for {idle} s (idle_timeout)" in line, line
    assert 0 < int(e["BYTES_OUT"]) < GIB, e


# ---------------------------------------------------------------------------
# resets

def reset(s):
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


@pytest.mark.parametrize("case", ["message-request", "file-request", "file-get", "lab-download"])
def test_reset_frees_child_at_once(daemon_factory, tmp_path, case):
    """The client resets the connection inside its request or mid-download:
    the child ends at once (long before the 10 s idle timeout) with an error
    result, and the daemon goes on serving."""
    root = tmp_path / "root"
    root.mkdir()
    make_sparse(root / "big", GIB, {0: b"x"})
    (root / "one").write_bytes(b"1")
    mport, fport = free_port(), free_port()
    d = daemon_factory(make_config([message_listener(mport), file_listener(fport, root, lab_file="big")],
                                   limits={"header_timeout": 10, "idle_timeout": 10, "total_timeout": 30}))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(("127.0.0.1", mport if case == "message-request" else fport))
    lport = s.getsockname()[1]
    if case == "message-request":
        s.sendall(frame(MSG_SEND, b"hello")[:8])
    elif case == "file-request":
        s.sendall(file_get("big")[:8])
    elif case == "file-get":
        s.sendall(file_get("big"))
        assert read_frame(s)[:3] == (1, FILE_INFO, OK)
        assert len(recv_exact(s, 1 << 20)) == 1 << 20
    else:
        s.sendall(b"0\x00")
        assert len(recv_exact(s, 1 << 20)) == 1 << 20
    kids = wait_child(d)
    reset(s)
    wait_gone(d, kids, 5)  # the idle timeout is 10 s: this is not it
    assert not d.zombies()

    e, line = entry_line(d, lport)
    want = {"message-request": "io-error", "file-request": "io-error"}.get(case, "send-failed")
    assert e["RESULT"] == want, line
    # Still serving.
    a = conftest.file_exchange(fport, file_get("one"))
    assert (a.status, a.data) == (OK, b"1")
    assert parse_frame(conftest.raw_exchange(mport, frame(MSG_SEND, b"hi")))[2] == OK


# ---------------------------------------------------------------------------
# half-open connections: the client vanishes without a FIN or a RST

@pytest.fixture(scope="module")
def net():
    yield from pair_fixture(server_addr="10.214.0.1", client_addr="10.214.0.2")


@pytest.fixture
def nsd(daemon_factory, tmp_path, net):
    """netlabd in the server namespace (message and file listeners on its
    veth address); every drop rule is removed after the test."""
    root = tmp_path / "root"
    root.mkdir()
    make_sparse(root / "big", GIB, {0: b"x"})
    d = daemon_factory(make_config([
        message_listener(12345, address=net.server_addr),
        file_listener(5001, root, address=net.server_addr, lab_file="big"),
    ], limits={"header_timeout": HEADER_TIMEOUT, "idle_timeout": 4, "total_timeout": 30}),
        prefix=net.cmd(net.server_ns))
    yield d
    net.clear_loss(net.server_ns)


def vanish(net, s):
    """The client host drops off the link: nothing it sends reaches the server
    any more (not its FIN, nor the RST its kernel answers the server's next
    segment with), then the socket goes."""
    net.set_loss(net.server_ns, 100)
    s.close()


@pytest.mark.parametrize("port,sent", [(12345, b""), (12345, frame(MSG_SEND, b"x")[:6]),
                                       (5001, file_get("big")[:6])],
                         ids=["message-nothing", "message-partial", "file-partial"])
def test_half_open_before_request(nsd, net, port, sent):
    """Connected, (part of) a request, then gone: the header deadline frees
    the child, before the idle timeout (4 s) could."""
    d = nsd
    s = net.socket(net.client_ns, type_=socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((net.server_addr, port))
    t0 = time.monotonic()
    lport = s.getsockname()[1]
    if sent:
        s.sendall(sent)
    kids = wait_child(d)
    vanish(net, s)
    wait_gone(d, kids, 10)
    took = time.monotonic() - t0
    assert HEADER_TIMEOUT - EARLY <= took < 4, took
    assert not d.zombies()
    e, line = entry_line(d, lport)
    assert e["RESULT"] == "timeout" and "header deadline" in line, line
    assert net.dropped(net.server_ns) > 0  # the client's FIN (and RSTs) really were dropped


@pytest.mark.parametrize("req", [file_get("big"), b"0\x00"], ids=["file-get", "lab-download"])
def test_half_open_during_download(nsd, net, req):
    """Mid-download the client vanishes: nothing it sends arrives, so no ACK
    either; the send stalls and the idle timeout (4 s) frees the child."""
    d = nsd
    s = net.socket(net.client_ns, type_=socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((net.server_addr, 5001))
    lport = s.getsockname()[1]
    s.sendall(req)
    assert len(recv_exact(s, 1 << 20)) == 1 << 20
    kids = wait_child(d)
    vanish(net, s)
    took = wait_gone(d, kids, 4 + 10)
    # The client's receive buffer and the server's send buffer fill first
    # (while it was still there), then 4 s pass without progress.
    assert took >= 4 - 1, took
    assert not d.zombies()
    e, line = entry_line(d, lport)
    assert e["RESULT"] == "timeout", line
    assert "the client stopped reading; idle for 4 s (idle_timeout)" in line, line
