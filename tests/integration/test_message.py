"""The message service (lab 1) over raw sockets: netlab frames and the text form.

Scenario tables: client action -> exact reply bytes (or frame status and body)
and the RESULT of the one request summary entry netlabd logs for it.
"""
import re
import socket
import threading
import time

import pytest

from conftest import free_port, frame, make_config, message_listener, parse_frame, raw_exchange

MSG_SEND, MSG_REPLY = 0x01, 0x02
OK, BAD_REQUEST, TOO_LONG, BUSY, NOT_FOUND, NOT_PERMITTED, TIMEOUT, UNSUPPORTED = range(8)

DEFAULT_MAX = 4096
PREFIX = b"message received: "
ISO_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
LOG_FIELDS = {"LISTENER", "SERVICE", "REMOTE_ADDR", "REMOTE_PORT", "BYTES_IN", "BYTES_OUT",
              "DURATION_USEC", "RESULT"}


def header(length, type_=MSG_SEND, status=0, version=1, reserved=0):
    """A frame header announcing `length` body bytes, without the body."""
    return frame(type_, b"", status=status, version=version, reserved=reserved)[:8] + length.to_bytes(4, "big")


def check_entry(entry, result, bytes_in=None, bytes_out=None, remote_addr="127.0.0.1",
                listener="message"):
    assert set(entry) == LOG_FIELDS, entry
    assert entry["LISTENER"] == listener
    assert entry["SERVICE"] == "message"
    assert entry["REMOTE_ADDR"] == remote_addr
    assert re.fullmatch(r"[1-9]\d*", entry["REMOTE_PORT"]), entry
    assert re.fullmatch(r"\d+", entry["DURATION_USEC"]), entry
    assert entry["RESULT"] == result, entry
    if bytes_in is not None:
        assert entry["BYTES_IN"] == str(bytes_in), entry
    if bytes_out is not None:
        assert entry["BYTES_OUT"] == str(bytes_out), entry


def free_port_on(host, family):
    """A TCP port free on host (for the IPv6 listeners)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if family == socket.AF_INET6 and host == "::":
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((host, 0))
        return s.getsockname()[1]


def have_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# netlab frames

# (id, bytes sent, half-close?, reply status, reply body, RESULT, BYTES_IN or None)
FRAME_CASES = [
    ("good", frame(MSG_SEND, b"hello"), False, OK, PREFIX + b"hello", "ok", 17),
    ("good-half-close", frame(MSG_SEND, b"hello"), True, OK, PREFIX + b"hello", "ok", 17),
    ("good-utf8", frame(MSG_SEND, "héllo wörld ✓".encode()), False, OK,
     PREFIX + "héllo wörld ✓".encode(), "ok", 12 + len("héllo wörld ✓".encode())),
    ("good-tab", frame(MSG_SEND, b"a\tb"), False, OK, PREFIX + b"a\tb", "ok", 15),
    ("good-max", frame(MSG_SEND, b"m" * DEFAULT_MAX), False, OK, PREFIX + b"m" * DEFAULT_MAX, "ok",
     12 + DEFAULT_MAX),
    ("too-long-by-one", frame(MSG_SEND, b"m" * (DEFAULT_MAX + 1)), False, TOO_LONG,
     b"message too long: more than 4096 bytes", "too-long", None),
    # The header alone says too long: the server answers before any body byte.
    ("too-long-header-only", header(DEFAULT_MAX + 1), False, TOO_LONG,
     b"message too long: more than 4096 bytes", "too-long", 12),
    ("too-long-4GiB-header-only", header(0xFFFFFFFF), False, TOO_LONG,
     b"message too long: more than 4096 bytes", "too-long", 12),
    ("not-utf8", frame(MSG_SEND, b"ab\xffcd"), False, BAD_REQUEST,
     b"message is not printable UTF-8 text (bad byte at offset 2)", "bad-request", 17),
    ("control-char", frame(MSG_SEND, b"abc\ndef"), False, BAD_REQUEST,
     b"message is not printable UTF-8 text (bad byte at offset 3)", "bad-request", 19),
    ("nul-byte", frame(MSG_SEND, b"\x00"), False, BAD_REQUEST,
     b"message is not printable UTF-8 text (bad byte at offset 0)", "bad-request", 13),
    ("overlong-utf8", frame(MSG_SEND, b"ok\xc0\x80"), False, BAD_REQUEST,
     b"message is not printable UTF-8 text (bad byte at offset 2)", "bad-request", 16),
    ("surrogate", frame(MSG_SEND, b"x\xed\xa0\x80"), False, BAD_REQUEST,
     b"message is not printable UTF-8 text (bad byte at offset 1)", "bad-request", 16),
    ("truncated-utf8", frame(MSG_SEND, b"abc\xe2\x9c"), False, BAD_REQUEST,
     b"message is not printable UTF-8 text (bad byte at offset 3)", "bad-request", 17),
    ("wrong-type", frame(MSG_REPLY, b"hi"), False, BAD_REQUEST,
     b"unexpected frame type (expected MSG_SEND)", "bad-request", 14),
    ("wrong-type-0x7f", frame(0x7F, b"hi"), False, BAD_REQUEST,
     b"unexpected frame type (expected MSG_SEND)", "bad-request", 14),
    ("status-nonzero", frame(MSG_SEND, b"hi", status=3), False, BAD_REQUEST,
     b"status must be 0 in a request", "bad-request", 14),
    ("reserved-nonzero", frame(MSG_SEND, b"hi", reserved=1), False, BAD_REQUEST,
     b"malformed frame header", "bad-request", 14),
    ("reserved-high-byte", frame(MSG_SEND, b"hi", reserved=0x100), False, BAD_REQUEST,
     b"malformed frame header", "bad-request", 14),
    ("bad-magic", b"\x00NX" + frame(MSG_SEND, b"hi")[3:], False, BAD_REQUEST,
     b"malformed frame header", "bad-request", 14),
    ("version-2", frame(MSG_SEND, b"hi", version=2), False, UNSUPPORTED,
     b"unsupported protocol version 2 (this server speaks version 1)", "unsupported", 14),
    ("version-0", frame(MSG_SEND, b"hi", version=0), False, UNSUPPORTED,
     b"unsupported protocol version 0 (this server speaks version 1)", "unsupported", 14),
    ("version-255-header-only", header(5, version=255), False, UNSUPPORTED,
     b"unsupported protocol version 255 (this server speaks version 1)", "unsupported", 12),
    ("truncated-body-half-close", frame(MSG_SEND, b"hello")[:-2], True, BAD_REQUEST,
     b"connection closed before the whole message arrived", "bad-request", 15),
    ("truncated-header-half-close", frame(MSG_SEND, b"hello")[:5], True, BAD_REQUEST,
     b"connection closed inside the frame header", "bad-request", 5),
    ("lone-nul-half-close", b"\x00", True, BAD_REQUEST,
     b"connection closed inside the frame header", "bad-request", 1),
    ("empty-body", frame(MSG_SEND, b""), False, OK, PREFIX, "ok", 12),
    # The magic is checked byte by byte: no need to wait for the whole header.
    ("bad-magic-early", b"\x00X", False, BAD_REQUEST, b"malformed frame header", "bad-request", 2),
    ("bad-magic-third-byte-early", b"\x00NX", False, BAD_REQUEST, b"malformed frame header",
     "bad-request", 3),
    # Checks in the documented order: the first problem found is the one reported.
    ("version-before-reserved", frame(MSG_REPLY, b"hi", version=2, reserved=1, status=1), False, UNSUPPORTED,
     b"unsupported protocol version 2 (this server speaks version 1)", "unsupported", 14),
    ("reserved-before-type", frame(MSG_REPLY, b"hi", reserved=1, status=1), False, BAD_REQUEST,
     b"malformed frame header", "bad-request", 14),
    ("type-before-status", frame(MSG_REPLY, b"hi", status=1), False, BAD_REQUEST,
     b"unexpected frame type (expected MSG_SEND)", "bad-request", 14),
    ("status-before-length", header(DEFAULT_MAX + 1, status=1), False, BAD_REQUEST,
     b"status must be 0 in a request", "bad-request", 12),
    ("length-before-text", frame(MSG_SEND, b"\xff" * (DEFAULT_MAX + 1)), False, TOO_LONG,
     b"message too long: more than 4096 bytes", "too-long", None),
]


@pytest.mark.parametrize("sent, shut_wr, status, body, result, bytes_in",
                         [c[1:] for c in FRAME_CASES], ids=[c[0] for c in FRAME_CASES])
def test_frame(message_daemon, sent, shut_wr, status, body, result, bytes_in):
    d = message_daemon
    out = raw_exchange(d.port, sent, shut_wr=shut_wr)
    version, type_, got_status, got_body = parse_frame(out)
    assert (version, type_, got_status, got_body) == (1, MSG_REPLY, status, body)
    reqs = d.wait_requests(1)
    check_entry(reqs[0], result, bytes_in=bytes_in, bytes_out=len(out))


def test_frame_too_long_answered_before_body(message_daemon):
    """The refusal arrives while the client still holds the body back: it never
    has to send the 1 MB it announced."""
    d = message_daemon
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(header(1024 * 1024))
        t0 = time.monotonic()
        out = b""
        while len(out) < 12 or len(out) < 12 + int.from_bytes(out[8:12], "big"):
            b = s.recv(4096)
            if not b:
                break
            out += b
        assert time.monotonic() - t0 < 2.0
    assert parse_frame(out) == (1, MSG_REPLY, TOO_LONG, b"message too long: more than 4096 bytes")
    check_entry(d.wait_requests(1)[0], "too-long", bytes_in=12, bytes_out=len(out))


# ---------------------------------------------------------------------------
# text form (the lab's bare text, or a line from nc/telnet)

LONG = b"t" * (DEFAULT_MAX + 1)
ERR_TOO_LONG = b"error: message too long: more than 4096 bytes\n"

# (id, bytes sent, half-close?, exact reply, RESULT, BYTES_IN or None)
TEXT_CASES = [
    ("lf", b"hello\n", False, PREFIX + b"hello\n", "ok", 6),
    ("crlf", b"hello\r\n", False, PREFIX + b"hello\n", "ok", 7),
    ("no-terminator-settle", b"hello", False, PREFIX + b"hello", "ok", 5),
    ("no-terminator-half-close", b"hello", True, PREFIX + b"hello", "ok", 5),
    ("lf-half-close", b"hello\n", True, PREFIX + b"hello\n", "ok", 6),
    ("utf8", "grüße ✓\n".encode(), False, PREFIX + "grüße ✓\n".encode(), "ok", len("grüße ✓\n".encode())),
    ("first-line-only", b"first\nsecond\n", False, PREFIX + b"first\n", "ok", None),
    ("max", b"t" * DEFAULT_MAX + b"\n", False, PREFIX + b"t" * DEFAULT_MAX + b"\n", "ok", DEFAULT_MAX + 1),
    ("max-crlf", b"t" * DEFAULT_MAX + b"\r\n", False, PREFIX + b"t" * DEFAULT_MAX + b"\n", "ok",
     DEFAULT_MAX + 2),
    ("too-long-lf", LONG + b"\n", False, ERR_TOO_LONG, "too-long", None),
    ("too-long-no-terminator", LONG, False, ERR_TOO_LONG, "too-long", None),
    ("binary-garbage", b"abc\xff\xfe\n", False,
     b"error: message is not printable UTF-8 text (bad byte at offset 3)\n", "bad-request", 6),
    ("binary-garbage-no-terminator", b"\x01\x02\x03", False,
     b"error: message is not printable UTF-8 text (bad byte at offset 0)\n", "bad-request", 3),
    ("escape-sequence", b"ab\x1b[31mcd\n", False,
     b"error: message is not printable UTF-8 text (bad byte at offset 2)\n", "bad-request", 10),
    ("lone-cr-inside", b"a\rb\n", False,
     b"error: message is not printable UTF-8 text (bad byte at offset 1)\n", "bad-request", 4),
    ("del", b"ab\x7f\n", False,
     b"error: message is not printable UTF-8 text (bad byte at offset 2)\n", "bad-request", 4),
    ("c1-control", b"ab\xc2\x85\n", False,
     b"error: message is not printable UTF-8 text (bad byte at offset 2)\n", "bad-request", 5),
    ("nothing-then-half-close", b"", True, b"", "no-request", 0),
    ("empty-line", b"\n", False, PREFIX + b"\n", "ok", 1),
    ("empty-crlf-line", b"\r\n", False, PREFIX + b"\n", "ok", 2),
    ("percent-in-message", b"100%m %% %\n", False, PREFIX + b"100%m %% %\n", "ok", 11),
]


@pytest.mark.parametrize("sent, shut_wr, reply, result, bytes_in",
                         [c[1:] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES])
def test_text(message_daemon, sent, shut_wr, reply, result, bytes_in):
    d = message_daemon
    out = raw_exchange(d.port, sent, shut_wr=shut_wr)
    assert out == reply
    check_entry(d.wait_requests(1)[0], result, bytes_in=bytes_in, bytes_out=len(out))


def test_text_10mb_message_gets_too_long(message_daemon):
    """A 10 MB message is refused after max_message bytes; the client, still
    sending, receives the whole error line."""
    d = message_daemon
    payload = b"a" * (10 * 1024 * 1024)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    send_error = []

    def sender():
        try:
            s.sendall(payload)
        except OSError as e:  # the server may close before it is all sent
            send_error.append(e)

    t = threading.Thread(target=sender, daemon=True)
    try:
        t.start()
        out = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        assert out == ERR_TOO_LONG
    finally:
        try:
            s.shutdown(socket.SHUT_RDWR)  # wakes the sender if it is still blocked
        except OSError:
            pass
        t.join(15)
        s.close()
    assert not t.is_alive()
    entry = d.wait_requests(1)[0]
    check_entry(entry, "too-long", bytes_out=len(ERR_TOO_LONG))
    # The daemon read no more than max_message plus its small framing slack.
    assert int(entry["BYTES_IN"]) <= DEFAULT_MAX + 14


# ---------------------------------------------------------------------------
# idle timeout (1 s)

@pytest.fixture
def idle_daemon(daemon_factory):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)], limits={"idle_timeout": 1}))
    d.port = port
    return d


def test_idle_text_client_sends_nothing(idle_daemon):
    d = idle_daemon
    t0 = time.monotonic()
    out = raw_exchange(d.port, b"", timeout=10)
    elapsed = time.monotonic() - t0
    assert out == b"error: no message arrived in time\n"
    assert 0.8 <= elapsed < 4.0, elapsed
    check_entry(d.wait_requests(1)[0], "timeout", bytes_in=0, bytes_out=len(out))


def test_idle_frame_body_never_arrives(idle_daemon):
    d = idle_daemon
    sent = frame(MSG_SEND, b"hello")[:-3]
    out = raw_exchange(d.port, sent, timeout=10)
    assert parse_frame(out) == (1, MSG_REPLY, TIMEOUT, b"the rest of the message did not arrive in time")
    check_entry(d.wait_requests(1)[0], "timeout", bytes_in=len(sent), bytes_out=len(out))


def test_total_timeout_not_extended_by_trickling(daemon_factory):
    """total_timeout bounds the whole request: a byte every 0.3 s (well within
    idle_timeout) does not keep the connection alive past it."""
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)], limits={"idle_timeout": 5, "total_timeout": 1}))
    sent = frame(MSG_SEND, b"x" * 50)
    out = b""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(0.3)
        for i in range(len(sent)):  # bounded: 62 bytes, ~19 s at most
            try:
                s.sendall(sent[i:i + 1])
            except OSError:
                break
            try:
                b = s.recv(65536)
            except socket.timeout:
                continue
            if not b:
                break
            out += b
            if len(out) >= 12 and len(out) >= 12 + int.from_bytes(out[8:12], "big"):
                break
    assert time.monotonic() - t0 < 3.0
    assert parse_frame(out) == (1, MSG_REPLY, TIMEOUT, b"the rest of the message did not arrive in time")
    check_entry(d.wait_requests(1)[0], "timeout", bytes_out=len(out))


# ---------------------------------------------------------------------------
# reply template

TEMPLATE = "m=%m a=%a p=%p t=%t l=%l pct=%% 100%%"


@pytest.mark.parametrize("form", ["text", "frame"])
def test_template_escapes(daemon_factory, form):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port, name="tmpl-listener", reply=TEMPLATE)]))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        client_port = s.getsockname()[1]
        s.sendall(b"hi there\n" if form == "text" else frame(MSG_SEND, b"hi there"))
        out = b""
        for _ in range(100):
            b = s.recv(65536)
            if not b:
                break
            out += b
    if form == "frame":
        version, type_, status, out = parse_frame(out)
        assert (version, type_, status) == (1, MSG_REPLY, OK)
        end = ""
    else:
        end = "\n"
    pattern = (rf"m=hi there a=127\.0\.0\.1 p={client_port} t=({ISO_UTC}) l=tmpl-listener pct=% 100%"
               + re.escape(end))
    m = re.fullmatch(pattern.encode(), out)
    assert m, out
    # %t is now, in UTC.
    stamp = time.strptime(m.group(1).decode(), "%Y-%m-%dT%H:%M:%SZ")
    assert abs(time.mktime(stamp) - time.mktime(time.gmtime())) < 60
    entry = d.wait_requests(1)[0]
    check_entry(entry, "ok", listener="tmpl-listener")
    assert entry["REMOTE_PORT"] == str(client_port)


@pytest.mark.parametrize("template, reply", [
    ("%m", b"abc"),
    ("", b""),
    ("%%m", b"%m"),
    ("%m%m", b"abcabc"),
    ("<%m>", b"<abc>"),
])
def test_template_simple(daemon_factory, template, reply):
    port = free_port()
    daemon_factory(make_config([message_listener(port, reply=template)]))
    assert parse_frame(raw_exchange(port, frame(MSG_SEND, b"abc"))) == (1, MSG_REPLY, OK, reply)


# ---------------------------------------------------------------------------
# max_message

# (id, bytes sent, half-close?, exact reply or (status, body) for frames, RESULT)
MAX10_CASES = [
    ("text-10", b"0123456789\n", False, PREFIX + b"0123456789\n", "ok"),
    ("text-10-crlf", b"0123456789\r\n", False, PREFIX + b"0123456789\n", "ok"),
    ("text-10-no-terminator", b"0123456789", False, PREFIX + b"0123456789", "ok"),
    ("text-11", b"0123456789A\n", False, b"error: message too long: more than 10 bytes\n", "too-long"),
    ("text-11-no-terminator", b"0123456789A", False, b"error: message too long: more than 10 bytes\n",
     "too-long"),
    ("text-11-half-close", b"0123456789A", True, b"error: message too long: more than 10 bytes\n",
     "too-long"),
    ("frame-10", frame(MSG_SEND, b"0123456789"), False, (OK, PREFIX + b"0123456789"), "ok"),
    ("frame-11", frame(MSG_SEND, b"0123456789A"), False,
     (TOO_LONG, b"message too long: more than 10 bytes"), "too-long"),
]


@pytest.mark.parametrize("sent, shut_wr, expect, result", [c[1:] for c in MAX10_CASES],
                         ids=[c[0] for c in MAX10_CASES])
def test_max_message_10(daemon_factory, sent, shut_wr, expect, result):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port, max_message=10)]))
    out = raw_exchange(port, sent, shut_wr=shut_wr)
    if isinstance(expect, tuple):
        assert parse_frame(out) == (1, MSG_REPLY) + expect
    else:
        assert out == expect
    check_entry(d.wait_requests(1)[0], result, bytes_out=len(out))


# ---------------------------------------------------------------------------
# IPv6

@pytest.mark.skipif(not have_ipv6_loopback(), reason="this host has no IPv6 loopback")
def test_ipv6_loopback_listener(daemon_factory):
    port = free_port_on("::1", socket.AF_INET6)
    d = daemon_factory(make_config([message_listener(port, name="v6", address="::1")]))
    with socket.create_connection(("::1", port), timeout=10) as s:
        client_port = s.getsockname()[1]
        s.sendall(b"over six\n")
        out = b""
        for _ in range(100):
            b = s.recv(65536)
            if not b:
                break
            out += b
    assert out == PREFIX + b"over six\n"
    entry = d.wait_requests(1)[0]
    check_entry(entry, "ok", remote_addr="::1", listener="v6", bytes_in=9, bytes_out=len(out))
    assert entry["REMOTE_PORT"] == str(client_port)


@pytest.mark.skipif(not have_ipv6_loopback(), reason="this host has no IPv6 loopback")
def test_any_v6_listener_serves_ipv4_clients(daemon_factory):
    port = free_port_on("::", socket.AF_INET6)
    d = daemon_factory(make_config([message_listener(port, name="dual", address="::", reply="%a %m")]))
    out = raw_exchange(port, b"from four\n", host="127.0.0.1")
    # The client's address is shown as IPv4, not as ::ffff:127.0.0.1.
    assert out == b"127.0.0.1 from four\n"
    check_entry(d.wait_requests(1)[0], "ok", remote_addr="127.0.0.1", listener="dual")
    out6 = raw_exchange(port, b"from six\n", host="::1")
    assert out6 == b"::1 from six\n"
    check_entry(d.wait_requests(2)[1], "ok", remote_addr="::1", listener="dual")


# ---------------------------------------------------------------------------
# concurrency

def test_50_concurrent_clients(message_daemon):
    d = message_daemon
    n = 50
    results = [None] * n
    errors = []
    barrier = threading.Barrier(n, timeout=10)

    def client(i):
        try:
            barrier.wait()
            results[i] = raw_exchange(d.port, b"client %d says hi\n" % i, timeout=10)
        except Exception as e:  # reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    for i, out in enumerate(results):
        assert out == PREFIX + b"client %d says hi\n" % i
    reqs = d.wait_requests(n)
    assert len(reqs) == n
    assert all(r["RESULT"] == "ok" for r in reqs)
    assert len({r["REMOTE_PORT"] for r in reqs}) == n
    d.wait_no_children()
    assert d.zombies() == []


# ---------------------------------------------------------------------------
# the request summary log

def test_log_one_summary_per_request_with_exact_bytes(message_daemon):
    d = message_daemon
    exchanges = [
        (b"one\n", False),
        (frame(MSG_SEND, b"two"), False),
        (b"three", True),
        (frame(MSG_SEND, b"\xff"), False),
    ]
    seen = []
    for sent, shut in exchanges:
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
            client_port = s.getsockname()[1]
            s.sendall(sent)
            if shut:
                s.shutdown(socket.SHUT_WR)
            out = b""
            for _ in range(100):
                b = s.recv(65536)
                if not b:
                    break
                out += b
        seen.append((client_port, len(sent), len(out)))
        d.wait_requests(len(seen))  # one at a time, so the log order is ours
    time.sleep(0.2)  # a duplicate entry would have shown up by now
    reqs = d.requests()
    assert len(reqs) == len(exchanges)
    for entry, (client_port, n_in, n_out), result in zip(reqs, seen, ["ok", "ok", "ok", "bad-request"]):
        check_entry(entry, result, bytes_in=n_in, bytes_out=n_out)
        assert entry["REMOTE_PORT"] == str(client_port)
    # The human summary names the message, escaped.
    assert 'message "one"' in d.log()


# ---------------------------------------------------------------------------
# requests that arrive in pieces

def _send_in_pieces(port, pieces, gap, shut_wr=False):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for p in pieces:
            s.sendall(p)
            time.sleep(gap)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        out = b""
        for _ in range(100):
            b = s.recv(65536)
            if not b:
                break
            out += b
        return out


def test_frame_byte_by_byte(message_daemon):
    """A frame trickling in one byte at a time (slower than the text settle
    time) is still read whole: frames have explicit lengths."""
    d = message_daemon
    sent = frame(MSG_SEND, b"slow")
    out = _send_in_pieces(d.port, [sent[i:i + 1] for i in range(len(sent))], gap=0.06)
    assert parse_frame(out) == (1, MSG_REPLY, OK, PREFIX + b"slow")
    check_entry(d.wait_requests(1)[0], "ok", bytes_in=len(sent), bytes_out=len(out))


@pytest.mark.parametrize("pieces, reply", [
    # Pieces closer together than the 50 ms settle time make one message.
    ([b"hel", b"lo"], PREFIX + b"hello"),
    # A line split anywhere is one line.
    ([b"hel", b"lo wor", b"ld\r", b"\n"], PREFIX + b"hello world\n"),
])
def test_text_in_pieces(message_daemon, pieces, reply):
    d = message_daemon
    out = _send_in_pieces(d.port, pieces, gap=0.01)
    assert out == reply
    check_entry(d.wait_requests(1)[0], "ok", bytes_in=sum(map(len, pieces)), bytes_out=len(out))


def test_text_settle_ends_message(message_daemon):
    """The lab client's bare text is complete once it has been quiet for the
    settle time: a later piece is not part of it."""
    d = message_daemon
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        s.sendall(b"first")
        first = s.recv(65536)
        try:
            s.sendall(b"late")
        except OSError:
            pass
        rest = b""
        for _ in range(100):
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            rest += b
    assert first + rest == PREFIX + b"first"
    check_entry(d.wait_requests(1)[0], "ok", bytes_out=len(PREFIX + b"first"))


def test_text_settle_longer_than_idle_timeout_still_replies(daemon_factory):
    """Silence for the idle timeout after some text ends the message too; only
    the total deadline makes it a timeout."""
    port = free_port()
    daemon_factory(make_config([message_listener(port, text_settle_ms=1500)],
                               limits={"idle_timeout": 1, "total_timeout": 10}))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"lab text")
        assert s.recv(4096) == b"message received: lab text"
