"""The echo service (RFC 862) and the reflector guard in front of every UDP
listener, over raw sockets (docs/PROTOCOL.md sections 10, 10.1 and 10.3).

Every datagram is answered byte for byte, unless the guard drops it: source
port 0, a blocked source port, a source over its token bucket, or the
listener over its global budget.  A drop is silent on the wire and counted in
an aggregate log entry.  The lab's echo client is in test_lab_compat.py.

All traffic is on loopback.  Linux routes the whole of 127.0.0.0/8 to lo, so a
client can bind 127.0.0.2 or 127.1.x.y and be a different source.  Every loop
is bounded in count and in time.
"""
import random
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import NETLABD, echo_listener, flood_from_sources, free_port, make_config, message_listener

BIG_BUF = 4 << 20  # SO_RCVBUF/SO_SNDBUF for clients that send or expect 64 KiB datagrams
IPV4_MAX = 65507   # largest UDP payload over IPv4
IPV6_MAX = 65527   # ... over IPv6
DEFAULT_BLOCKED = [7, 9, 13, 17, 19, 37, 53, 111, 123, 137, 161, 389, 1900, 5353, 8888, 8889, 11211]
GUARD_KEYS = {"rate_per_source": 100, "burst_per_source": 200, "rate_total": 20000,
              "bytes_total": 33554432, "sources_max": 16384, "blocked_source_ports": [7, 19]}

# Generous per-source limits for tests that are about echo, not about the guard.
OPEN = {"rate_per_source": 10000, "burst_per_source": 10000}

# The aggregate entry on stderr: the summary, then its journal fields in brackets.
AGGREGATE = re.compile(r"listener '(?P<listener>[^']+)': in the last \d+ s: (?P<answered>\d+) datagrams "
                       r"answered, (?P<dropped>\d+) dropped \((?P<reasons>[^)]*)\).* \[(?P<fields>EVENT=datagrams .*)\]$")
REASONS = {"over the per-source rate": "DROPPED_SOURCE_RATE", "over the total budget": "DROPPED_TOTAL_RATE",
           "from blocked source ports": "DROPPED_BLOCKED_PORT", "from port 0": "DROPPED_PORT_ZERO",
           "other": "DROPPED_OTHER"}


def udp_socket(host="127.0.0.1", port=0, bufsize=BIG_BUF, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
    s.bind((host, port))
    return s


def drain(s, quiet=0.5, limit=10.0, max_n=100_000):
    """Every datagram that arrives on s until it has been quiet for `quiet`
    seconds (or `limit` seconds passed, or max_n arrived): [(data, addr)]."""
    out = []
    deadline = time.monotonic() + limit
    while len(out) < max_n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(min(quiet, left))
        try:
            out.append(s.recvfrom(65536))
        except socket.timeout:
            break
    return out


def exchange(s, port, data, timeout=2.0, host="127.0.0.1"):
    """Send one datagram from s; the reply's bytes, or None."""
    s.sendto(data, (host, port))
    s.settimeout(timeout)
    try:
        return s.recvfrom(65536)[0]
    except socket.timeout:
        return None


def start_echo(daemon_factory, **extra):
    port = free_port(socket.SOCK_DGRAM)
    d = daemon_factory(make_config([echo_listener(port, **extra)]))
    d.port = port
    return d


@pytest.fixture
def echo_daemon(daemon_factory):
    """netlabd with one echo listener whose per-source limits stay out of the way."""
    return start_echo(daemon_factory, **OPEN)


def aggregates(d, listener="echo"):
    """The aggregate entries logged so far for a listener: a dict of the
    bracketed fields each (numbers as ints), plus "line".  Asserts the text
    and the fields agree."""
    out = []
    for line in d.log().splitlines():
        m = AGGREGATE.search(line)
        if not m or m["listener"] != listener:
            continue
        e = {k: int(v) if v.isdigit() else v for k, v in (kv.split("=", 1) for kv in m["fields"].split(" "))}
        assert (e["LISTENER"], e["REPLIES"], e["DROPPED"]) == (listener, int(m["answered"]), int(m["dropped"])), line
        for part in m["reasons"].split(", "):
            pm = re.fullmatch(r"(\d+) (.+)", part.strip())
            assert pm and e[REASONS[pm[2]]] == int(pm[1]), line
        e["line"] = line
        out.append(e)
    return out


def wait_aggregates(d, pred, timeout=25.0, listener="echo"):
    """Wait until the sums of a listener's aggregate entries satisfy pred;
    returns (entries, sums).  Entries come at most every 10 s."""
    deadline = time.monotonic() + timeout
    while True:
        entries = aggregates(d, listener)
        sums = {}
        for e in entries:
            for k, v in e.items():
                if isinstance(v, int):
                    sums[k] = sums.get(k, 0) + v
        if pred(sums) or time.monotonic() > deadline:
            return entries, sums
        time.sleep(0.2)


def check_config(tmp_path, text):
    cfg = tmp_path / "check.conf"
    cfg.write_text(text)
    r = subprocess.run([NETLABD, "--check-config", "-c", cfg], capture_output=True, timeout=10)
    return cfg, r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


# ---------------------------------------------------------------------------
# echo: byte for byte

@pytest.mark.parametrize("size", [0, 1, 512, 1472, IPV4_MAX])
def test_echo_sizes(echo_daemon, size):
    payload = random.Random(size).randbytes(size)
    with udp_socket() as s:
        s.sendto(payload, ("127.0.0.1", echo_daemon.port))
        s.settimeout(3)
        data, addr = s.recvfrom(65536)
    assert data == payload
    assert addr == ("127.0.0.1", echo_daemon.port)  # from the listener's address and port


def test_echo_largest_ipv6(daemon_factory):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    port = free_port(socket.SOCK_DGRAM)
    daemon_factory(make_config([echo_listener(port, address="::1", **OPEN)]))
    payload = random.Random(6).randbytes(IPV6_MAX)
    with udp_socket("::1", family=socket.AF_INET6) as s:
        for p in (payload, b"", b"v6"):
            assert exchange(s, port, p, host="::1") == p


def test_echo_binary_payloads_keep_order_and_identity(echo_daemon):
    """2000 random datagrams (NUL bytes, 0xff, any size up to 1500) from one
    socket, in windows of 40: each window comes back whole and in order."""
    rnd = random.Random(862)
    with udp_socket() as s:
        t0 = time.monotonic()
        for w in range(50):
            sent = [b"\x00" + rnd.randbytes(rnd.randrange(0, 1500)) if i % 7 == 0
                    else rnd.randbytes(rnd.randrange(0, 1500)) for i in range(40)]
            for p in sent:
                s.sendto(p, ("127.0.0.1", echo_daemon.port))
            got = drain(s, quiet=2.0, max_n=len(sent))
            assert [g[0] for g in got] == sent, f"window {w}"
            assert time.monotonic() - t0 < 60
        # And nothing extra arrives.
        assert drain(s, quiet=0.3) == []


def test_echo_several_clients_interleaved(echo_daemon):
    """Each reply goes to the socket that sent the datagram."""
    socks = [udp_socket() for _ in range(8)]
    try:
        for round_ in range(20):
            for i, s in enumerate(socks):
                s.sendto(b"client %d round %d" % (i, round_), ("127.0.0.1", echo_daemon.port))
            for i, s in enumerate(socks):
                s.settimeout(2)
                assert s.recvfrom(65536)[0] == b"client %d round %d" % (i, round_)
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------------------
# the guard: per-source token bucket

@pytest.mark.parametrize("address", ["127.0.0.1", "::"])
def test_rate_limit_engages_and_recovers(daemon_factory, address):
    """On "::" IPv4 clients arrive as ::ffff:a.b.c.d: each address is still
    its own source (not one /64 for all of IPv4)."""
    d = start_echo(daemon_factory, rate_per_source=10, burst_per_source=20, address=address)
    target = ("127.0.0.1", d.port)
    with udp_socket() as flood, udp_socket() as same_addr, udp_socket("127.0.0.2") as other:
        for i in range(200):
            flood.sendto(b"flood %03d" % i, target)
        # Another port on the same address is the same source: its bucket is empty too.
        for i in range(10):
            same_addr.sendto(b"same %d" % i, target)
        # Another address is another source, with its own full bucket.
        for i in range(10):
            other.sendto(b"other %d" % i, target)
        got = [g[0] for g in drain(flood)]
        got_same = [g[0] for g in drain(same_addr, quiet=0.1)]
        got_other = [g[0] for g in drain(other, quiet=0.1)]

    assert 15 <= len(got) < 60, len(got)
    # The answered ones are echoes of what was sent, in order: the first
    # burst, then the odd one a refilled token let through.
    assert got == sorted(got) and all(re.fullmatch(rb"flood \d{3}", g) for g in got), got
    assert got[:15] == [b"flood %03d" % i for i in range(15)], got
    assert len(got_same) <= 3, got_same
    assert got_other == [b"other %d" % i for i in range(10)]

    # 1.5 s refill 15 tokens: the source is answered again.
    time.sleep(1.5)
    with udp_socket() as s:
        for i in range(5):
            assert exchange(s, d.port, b"again %d" % i) == b"again %d" % i


def test_rate_limit_sustained_rate(daemon_factory):
    """Over 2 s of steady sending at 100/s, a source limited to 20/s with a
    burst of 5 gets about 5 + 2 * 20 answers."""
    d = start_echo(daemon_factory, rate_per_source=20, burst_per_source=5)
    with udp_socket() as s:
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 2.0 and n < 400:
            s.sendto(b"tick %d" % n, ("127.0.0.1", d.port))
            n += 1
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        got = drain(s, quiet=0.3)
    expect = 5 + 20 * elapsed
    assert 0.7 * expect <= len(got) <= 1.2 * expect + 3, (len(got), expect, n)


@pytest.mark.parametrize("budget, size", [
    ({"rate_total": 20}, 16),
    ({"bytes_total": 100_000}, 5000),  # 20 replies of 5000 bytes per second
])
def test_global_budget_bounds_all_sources(daemon_factory, budget, size):
    d = start_echo(daemon_factory, rate_per_source=100_000, burst_per_source=100_000, **budget)
    target = ("127.0.0.1", d.port)
    with udp_socket() as a, udp_socket("127.0.0.2") as b:
        t0 = time.monotonic()
        for i in range(100):
            a.sendto(b"a" * size, target)
            b.sendto(b"b" * size, target)
        elapsed = time.monotonic() - t0
        n_a, n_b = len(drain(a)), len(drain(b, quiet=0.1))
    # At most a second's worth of burst plus what refilled while sending.
    limit = 2 * 20 + 20 * elapsed + 5
    assert 1 <= n_a + n_b <= limit, (n_a, n_b, limit)

    time.sleep(1.5)
    with udp_socket("127.0.0.3") as c:
        assert exchange(c, d.port, b"c" * size) == b"c" * size


# ---------------------------------------------------------------------------
# the guard: source ports

def bind_or_skip(host, port):
    try:
        return udp_socket(host, port, bufsize=65536)
    except OSError as e:
        pytest.skip(f"cannot bind udp {host}:{port} for this test: {e}")


def test_default_blocked_source_ports_get_no_reply(echo_daemon):
    """Echo, daytime, qotd, chargen, time, DNS, NTP and netlab's own echo and
    guess ports: a reply there could start a reflector loop."""
    # 127.0.0.3: not an address anything else on this machine listens on.
    socks = {p: bind_or_skip("127.0.0.3", p) for p in DEFAULT_BLOCKED}
    try:
        for p, s in socks.items():
            for i in range(3):
                s.sendto(b"from port %d" % p, ("127.0.0.1", echo_daemon.port))
        time.sleep(0.5)
        with udp_socket("127.0.0.3") as control:
            assert exchange(control, echo_daemon.port, b"control") == b"control"
        answered = {p: drain(s, quiet=0.05) for p, s in socks.items()}
        assert all(v == [] for v in answered.values()), answered
    finally:
        for s in socks.values():
            s.close()


def test_custom_blocked_source_port(daemon_factory):
    blocked = free_port(socket.SOCK_DGRAM)
    d = start_echo(daemon_factory, blocked_source_ports=[blocked, 40000])
    with bind_or_skip("127.0.0.1", blocked) as s, udp_socket() as control:
        assert exchange(s, d.port, b"refused", timeout=1.0) is None
        assert exchange(control, d.port, b"fine") == b"fine"
        assert exchange(s, d.port, b"still refused", timeout=0.5) is None


def test_empty_blocked_list_answers_port_7(daemon_factory):
    """blocked_source_ports = [] blocks nothing but port 0."""
    d = start_echo(daemon_factory, blocked_source_ports=[])
    with bind_or_skip("127.0.0.3", 7) as s:
        assert exchange(s, d.port, b"from 7") == b"from 7"


def send_from_port_zero(dst_port, payload, src="127.0.0.1", dst="127.0.0.1"):
    """One UDP datagram with source port 0, built by hand on a raw socket (no
    ordinary socket can send from port 0).  UDP checksum 0: none, as IPv4 allows."""
    udp = struct.pack("!HHHH", 0, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as r:
        r.sendto(ip + udp, (dst, 0))


# ---------------------------------------------------------------------------
# drops are logged as aggregates, never one line per datagram

def test_drops_logged_as_aggregates(daemon_factory):
    d = start_echo(daemon_factory, rate_per_source=10, burst_per_source=20)
    target = ("127.0.0.1", d.port)
    with udp_socket() as flood:
        for i in range(200):
            flood.sendto(b"flood", target)
            if i % 50 == 49:
                time.sleep(0.005)  # keep well inside the daemon's receive buffer
        answered = len(drain(flood))
    with bind_or_skip("127.0.0.3", 19) as chargen:
        for i in range(4):
            chargen.sendto(b"blocked", target)
    try:
        for i in range(3):
            send_from_port_zero(d.port, b"zero")
        zeros = 3
    except PermissionError:
        zeros = 0  # not root: no raw socket; the other counts are still checked
    dropped_rate = 200 - answered

    entries, sums = wait_aggregates(d, lambda s: s.get("DROPPED_BLOCKED_PORT", 0) >= 4
                                    and s.get("DROPPED_PORT_ZERO", 0) >= zeros
                                    and s.get("DROPPED_SOURCE_RATE", 0) >= 0.9 * dropped_rate)
    assert entries, f"no aggregate entry within 25 s:\n{d.log()[-3000:]}"
    assert len(entries) <= 3, "\n".join(e["line"] for e in entries)
    assert sums["DROPPED_BLOCKED_PORT"] == 4, entries
    assert sums["DROPPED_PORT_ZERO"] == zeros, entries
    # Every datagram the guard refused is counted (the kernel may have lost a few).
    assert 0.9 * dropped_rate <= sums["DROPPED_SOURCE_RATE"] <= dropped_rate, (sums, answered)
    assert (sums["DROPPED_TOTAL_RATE"], sums["DROPPED_OTHER"]) == (0, 0), entries
    # An interval starts with its first drop: replies before it are not in it.
    assert 0 <= sums["REPLIES"] <= answered, (sums, answered)
    assert sums["REPLY_BYTES"] == 5 * sums["REPLIES"], sums  # every answered datagram was b"flood"
    assert sums["DROPPED"] == sum(sums[k] for k in REASONS.values()), sums
    for e in entries:
        assert " notice: " in e["line"] and e["SERVICE"] == "echo" and e["INTERVAL_SEC"] <= 11, e["line"]
    # No per-datagram lines: the log is short.
    assert sum(1 for l in d.log().splitlines() if "dropped" in l) <= 3, d.log()[-3000:]
    assert len(d.log().splitlines()) < 30, d.log()[-3000:]


# ---------------------------------------------------------------------------
# a flood of sources cannot grow memory

def test_flood_of_sources_keeps_memory_bounded(daemon_factory):
    """3000 source addresses (127.1.x.y), each one datagram from its own
    socket, against sources_max = 64: RSS stays flat and the daemon answers."""
    d = start_echo(daemon_factory, sources_max=64)
    with udp_socket() as s:
        assert exchange(s, d.port, b"warm") == b"warm"
    before = d.rss_kib()
    flood_from_sources(d.port, "127.1", lambda k: b"spoofed-ish %d" % k)
    time.sleep(0.3)
    after = d.rss_kib()
    assert after - before <= 4096, (before, after)
    # Still answering: a known client and a never-seen address.
    for host in ("127.0.0.1", "127.2.0.1"):
        with udp_socket(host) as s:
            assert exchange(s, d.port, b"still there") == b"still there", host


# ---------------------------------------------------------------------------
# config

def test_guard_keys_accepted_on_udp_listener(tmp_path):
    cfg, rc, out, err = check_config(tmp_path, make_config([echo_listener(9, **GUARD_KEYS)]))
    assert (rc, err) == (0, ""), err
    assert out == f"{cfg}: ok, 1 listener(s)\n"


@pytest.mark.parametrize("key", sorted(GUARD_KEYS))
def test_guard_key_refused_on_tcp_listener(tmp_path, key):
    # Line 4 is the listener's (make_config: limits, log, "listeners = (", then one per line).
    cfg, rc, _, err = check_config(tmp_path, make_config([message_listener(9, name="m", **{key: GUARD_KEYS[key]})]))
    assert rc == 1
    assert re.search(rf"^{re.escape(str(cfg))}:4: listener 'm': .*{key}", err, re.M), err


@pytest.mark.parametrize("ports, error", [
    ([0], "listener 'echo': .*blocked_source_ports"),
    ([70000], "listener 'echo': .*blocked_source_ports"),
    ([7, -1], "listener 'echo': .*blocked_source_ports"),
    (["x"], "listener 'echo': .*blocked_source_ports"),
    # libconfig itself refuses an array of mixed types, as a syntax error.
    ([7, "19"], "mismatched element type in array"),
], ids=["zero", "70000", "negative", "string", "mixed"])
def test_bad_blocked_source_ports_refused(tmp_path, ports, error):
    text = make_config([echo_listener(9, blocked_source_ports=ports)])
    cfg, rc, _, err = check_config(tmp_path, text)
    assert rc == 1
    assert re.search(rf"^{re.escape(str(cfg))}:4: {error}", err, re.M), err


@pytest.mark.parametrize("key, value", [("rate_per_source", 0), ("burst_per_source", 0), ("rate_total", 0),
                                        ("bytes_total", 1023), ("sources_max", 15), ("rate_per_source", "10")])
def test_guard_values_out_of_range_refused(tmp_path, key, value):
    cfg, rc, _, err = check_config(tmp_path, make_config([echo_listener(9, **{key: value})]))
    assert rc == 1
    assert re.search(rf"^{re.escape(str(cfg))}:4: listener 'echo': {key}: ", err, re.M), err


def test_echo_listener_refuses_tcp(tmp_path):
    cfg, rc, _, err = check_config(tmp_path, make_config([echo_listener(9, transport="tcp")]))
    assert rc == 1
    assert re.search(rf"^{re.escape(str(cfg))}:4: listener 'echo': .*udp", err, re.M), err


# ---------------------------------------------------------------------------
# reload

def test_reload_keeps_echo_answering(daemon_factory):
    port, port2 = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    d = daemon_factory(make_config([echo_listener(port)]))
    with udp_socket() as s:
        assert exchange(s, port, b"before") == b"before"
        # Changed guard settings and a second listener.
        d.reload(make_config([echo_listener(port, rate_per_source=50),
                              echo_listener(port2, name="echo2")]))
        assert exchange(s, port, b"after") == b"after"
        assert exchange(s, port2, b"second") == b"second"
        # A bad config is refused; the echo socket keeps answering.
        d.config.write_text(make_config([echo_listener(port, blocked_source_ports=[0])]))
        d.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "blocked_source_ports" not in d.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "blocked_source_ports" in d.log()
        assert exchange(s, port, b"after bad") == b"after bad"
        assert exchange(s, port2, b"second after bad") == b"second after bad"



def test_busy_polling_answers_and_stops_promptly(daemon_factory):
    """busy_poll_usec keeps the supervisor polling after a batch: replies are
    still byte-identical, other listeners are still served, and SIGTERM is
    still prompt."""
    d = start_echo(daemon_factory, busy_poll_usec=1000)
    with udp_socket() as s:
        for i in range(200):
            payload = b"busy %d" % i
            assert exchange(s, d.port, payload) == payload
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 5
