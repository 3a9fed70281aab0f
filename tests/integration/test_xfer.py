"""The file service over UDP (docs/PROTOCOL.md section 11, issue 5) on
loopback: `netlabctl fetch --udp` downloads byte for byte (empty, 1 byte,
odd sizes, block edges, 64 MiB; small and large blocks), resume after the
client is killed, a file changed on the server, address validation (a
request that never echoes its cookie gets no data and at most 3x the bytes
it sent; a wrong cookie is dropped), busy limits, refusals with the TCP
service's statuses and texts, --verify, -o -, --json, the idle timeout that
frees a vanished client's child, cancel, the log entry's fields, IPv6.

The daemons here serve one root over TCP and UDP on the same port number,
so every UDP answer can be compared with what the TCP service says.

A raw client speaks the transfer protocol from Python (the codec below is
written from the layouts at the end of common/proto.h, so it cross-checks
the C codec): REQUEST, RETRY, ACCEPT, DATA, ACK with SACK ranges, END, DONE,
ERROR.  Every loop is bounded in count and in time; every process is
stopped by pid; the daemon's log is checked for sanitizer reports at
teardown (conftest.daemon_factory).
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from types import SimpleNamespace

import pytest

from conftest import (FILE_INFO_SIZE, NETLABCTL, file_get_body, file_listener, free_port, make_config, make_sparse,
                      netlabctl, parse_file_info, sha256_file, sparse_sha256, udp_file_listener)
from test_fetch import (EXIT_BUSY, EXIT_OK, EXIT_REFUSED, EXIT_TIMEOUT, EXIT_USAGE, RESULT_LINE,
                        check_resume_file_replaced, check_resumed_json, check_to_stdout, check_whole_fetch,
                        fetch_at_once, flip_bit, interrupted_fetch, kill_proc, out_dir, part_of, procs, ram, rand_bytes,
                        stopped_fetch)

__all__ = ["out_dir", "procs", "ram"]  # fixtures shared with test_fetch.py

MIB = 1 << 20
OK, BAD_REQUEST, TOO_LONG, BUSY, NOT_FOUND, NOT_PERMITTED, TIMEOUT, UNSUPPORTED, INTERNAL, CHANGED, \
    MISMATCH, RANGE, CANCELLED = range(13)

# ---------------------------------------------------------------------------
# the transfer codec (common/proto.h, "proto-xfer.c")

XMAGIC = b"\x00X\x01"
REQUEST, RETRY, ACCEPT, DATA, ACK, END, DONE, ERROR = range(1, 9)
REQUEST_MIN, REQUEST_MAX = 1200, 9216
AMPLIFY = 3
COOKIE_MAX = 32
BLOCK_MIN, BLOCK_MAX, BLOCK_SAFE = 512, 65464, 1200
DATA_HEADER = 16
WINDOW_MAX = 65536
SACK_MAX = 32
ACCEPT_SIZE = 22 + FILE_INFO_SIZE
ERROR_TEXT_MAX = 1024
NAMES = {REQUEST: "REQUEST", RETRY: "RETRY", ACCEPT: "ACCEPT", DATA: "DATA", ACK: "ACK", END: "END",
         DONE: "DONE", ERROR: "ERROR"}


def x_request(client_id, body, block_max=BLOCK_MAX, window=256, cookie=b"", pad_to=REQUEST_MIN):
    """REQUEST: 4 u32 client_id, 8 u16 block_max, 10 u32 window, 14 u8
    cookie_len, cookie, u16 body_len, body, zeros to pad_to."""
    d = (XMAGIC + bytes([REQUEST]) + struct.pack(">IHIB", client_id, block_max, window, len(cookie)) + cookie
         + struct.pack(">H", len(body)) + body)
    return d + bytes(max(0, pad_to - len(d)))


def x_ack(transfer_id, cum, echo, rwnd, ranges=()):
    """ACK: 4 u32 transfer_id, 8 u32 cum, 12 u32 echo, 16 u32 rwnd, 20 u8
    n_ranges, then (u32 start, u32 end) each."""
    return (XMAGIC + bytes([ACK]) + struct.pack(">IIIIB", transfer_id, cum, echo, rwnd, len(ranges))
            + b"".join(struct.pack(">II", a, b) for a, b in ranges))


def x_done(transfer_id):
    return XMAGIC + bytes([DONE]) + struct.pack(">I", transfer_id)


def x_error(client_id, transfer_id, status, text=b""):
    return XMAGIC + bytes([ERROR]) + struct.pack(">IIB", client_id, transfer_id, status) + text


def x_decode(d):
    """One datagram a server may send, checked against its layout (nothing
    after the fields).  Asserts on anything else."""
    assert d[:3] == XMAGIC and len(d) >= 4, d[:16]
    t = d[3]
    p = SimpleNamespace(type=t, size=len(d))
    if t == RETRY:
        assert len(d) >= 9, d
        p.client_id, n = struct.unpack_from(">IB", d, 4)
        assert 1 <= n <= COOKIE_MAX and len(d) == 9 + n, (n, len(d))
        p.cookie = d[9:]
    elif t == ACCEPT:
        assert len(d) == ACCEPT_SIZE, len(d)
        p.client_id, p.transfer_id, p.block_size, p.window, p.timestamp = struct.unpack_from(">IIHII", d, 4)
        assert p.transfer_id != 0
        p.info = parse_file_info(d[22:])
    elif t == DATA:
        assert len(d) > DATA_HEADER, len(d)
        p.transfer_id, p.seq, p.timestamp = struct.unpack_from(">III", d, 4)
        p.payload = d[DATA_HEADER:]
        assert len(p.payload) <= BLOCK_MAX
    elif t == END:
        assert len(d) >= 9, d
        p.transfer_id, p.status = struct.unpack_from(">IB", d, 4)
        p.body = d[9:]
        if p.status == OK:
            assert len(p.body) >= 1 and p.body[0] in (0, 32) and len(p.body) == 1 + p.body[0], p.body
            p.digest = p.body[1:].hex() or None
        else:
            assert len(p.body) <= ERROR_TEXT_MAX
            p.text = p.body.decode()
    elif t == ERROR:
        assert len(d) >= 13, d
        p.client_id, p.transfer_id, p.status = struct.unpack_from(">IIB", d, 4)
        assert p.status != OK
        p.text = d[13:].decode()
        assert len(d) - 13 <= ERROR_TEXT_MAX
    else:
        raise AssertionError(f"a server sent datagram type {t}: {d[:32]!r}")
    return p


def client_id():
    return random.randrange(1, 1 << 32)


class XClient:
    """A raw transfer client on one UDP socket.  Counts every byte it sent
    and received; remembers every datagram received."""

    def __init__(self, port, host="127.0.0.1", family=socket.AF_INET, bind=None, sock=None):
        self.s = sock or socket.socket(family, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        if bind is not None:
            self.s.bind(bind)
        elif sock is None:
            self.s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.server = (host, port)
        self.peer = None          # where the transfer lives (the ACCEPT's source)
        self.tx_bytes = self.rx_bytes = 0
        self.rx = []              # (packet, source address)

    @property
    def port(self):
        return self.s.getsockname()[1]

    def close(self):
        self.s.close()

    def send(self, data, to=None):
        self.s.sendto(data, to or self.server)
        self.tx_bytes += len(data)

    def recv(self, timeout):
        """The next datagram, decoded, with its source; None on timeout."""
        self.s.settimeout(max(timeout, 0.0001))
        try:
            d, a = self.s.recvfrom(65536)
        except socket.timeout:
            return None
        self.rx_bytes += len(d)
        p = x_decode(d)
        self.rx.append((p, a))
        return p, a

    def recv_all(self, quiet=0.5, limit=5.0, max_n=10000):
        """Everything that arrives until `quiet` seconds pass without a datagram."""
        out = []
        deadline = time.monotonic() + limit
        while len(out) < max_n and time.monotonic() < deadline:
            r = self.recv(min(quiet, deadline - time.monotonic()))
            if r is None:
                break
            out.append(r)
        return out

    def wait_for(self, types, cid=None, timeout=3.0, resend=None, every=0.5):
        """The first datagram of one of types (for client id cid); resend
        (bytes) is sent again every `every` seconds while waiting."""
        deadline = time.monotonic() + timeout
        next_send = time.monotonic() + every
        while time.monotonic() < deadline:
            r = self.recv(min(next_send, deadline) - time.monotonic())
            if r is None:
                if resend is not None and time.monotonic() >= next_send:
                    self.send(resend)
                    next_send = time.monotonic() + every
                continue
            p, a = r
            if p.type in types and (cid is None or getattr(p, "client_id", cid) == cid):
                return p, a
        return None

    def get_retry(self, cid, body, **kw):
        req = x_request(cid, body, **kw)
        self.send(req)
        r = self.wait_for((RETRY,), cid, resend=req)
        assert r is not None, "no RETRY"
        p, a = r
        assert a[1] == self.server[1], a  # from the listener
        return p.cookie

    def handshake(self, path, cid=None, timeout=5.0, **kw):
        """REQUEST, RETRY, REQUEST with the cookie: the ACCEPT or ERROR packet."""
        cid = cid or client_id()
        body = file_get_body(path, **{k: kw.pop(k) for k in list(kw) if k in
                                      ("offset", "flags", "validator", "tail_len", "tail_hash")})
        cookie = self.get_retry(cid, body, **kw)
        req = x_request(cid, body, cookie=cookie, **kw)
        self.send(req)
        r = self.wait_for((ACCEPT, ERROR), cid, timeout=timeout, resend=req)
        assert r is not None, f"no ACCEPT or ERROR for {path!r}; got {[NAMES[p.type] for p, _ in self.rx]}"
        p, a = r
        self.cid = cid
        if p.type == ACCEPT:
            assert socket.inet_pton(self.s.family, a[0]) == socket.inet_pton(self.s.family, self.server[0]), \
                (a, self.server)  # the server's address, any port
            self.peer = a
            self.accept = p
        return p

    def download(self, accept=None, window=None, skip=(), limit=30.0, bad_acks=0, send_done=True):
        """Receive the transfer ACCEPTed: ACKs with SACK ranges after each
        batch, DONE on END.  skip: blocks ignored the first time they come
        (they must be sent again).  bad_acks: ACKs the sender must refuse,
        sent once data flows.  Returns (data, end packet, counters)."""
        a = accept or self.accept
        tid, bs, length = a.transfer_id, a.block_size, a.info["length"]
        n_blocks = -(-length // bs)
        window = window or a.window
        blocks, out = {}, []
        cum, newest = 0, a.timestamp
        skip = set(skip)
        seen = {"data": 0, "dup": 0, "accept_again": 0, "end": 0, "skipped": 0}
        end = None

        def ack():
            ranges = []
            for s in sorted(blocks):
                if ranges and ranges[-1][1] == s:
                    ranges[-1][1] = s + 1
                elif len(ranges) < SACK_MAX:
                    ranges.append([s, s + 1])
            self.send(x_ack(tid, cum, newest, max(0, window - len(blocks)), [tuple(r) for r in ranges]),
                      self.peer)

        ack()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            r = self.recv(0.3)
            if r is None:
                ack()  # a lost ACK, or the sender waits for news
                continue
            batch = [r]
            while len(batch) < 1000:
                r = self.recv(0)
                if r is None:
                    break
                batch.append(r)
            for p, src in batch:
                if p.type == DATA:
                    assert p.transfer_id == tid, (p.transfer_id, tid)
                    assert src == self.peer, (src, self.peer)
                    assert p.seq < n_blocks, (p.seq, n_blocks)
                    want = bs if p.seq < n_blocks - 1 else length - bs * (n_blocks - 1)
                    assert len(p.payload) == want, (p.seq, len(p.payload), want)
                    seen["data"] += 1
                    newest = p.timestamp
                    if p.seq in skip:
                        skip.discard(p.seq)
                        seen["skipped"] += 1
                        continue
                    if p.seq < cum or p.seq in blocks:
                        seen["dup"] += 1
                        continue
                    assert p.seq < cum + window, (p.seq, cum, window)
                    blocks[p.seq] = p.payload
                elif p.type == ACCEPT:
                    seen["accept_again"] += 1
                elif p.type == END:
                    assert p.transfer_id == tid
                    seen["end"] += 1
                    end = p
                elif p.type == ERROR:
                    raise AssertionError(f"ERROR from the server: {p.status} {p.text}")
            while cum in blocks:
                out.append(blocks.pop(cum))
                cum += 1
            while bad_acks and cum > 4:
                bad_acks -= 1
                # A SACK range below cum, and one that ends before it starts.
                self.send(x_ack(tid, cum, newest, window, [(cum - 2, cum - 1)]), self.peer)
                self.send(x_ack(tid, cum, newest, window, [(cum + 5, cum + 3)]), self.peer)
            if end is not None:
                assert cum == n_blocks, f"END after {cum} of {n_blocks} blocks"
                if send_done:
                    self.send(x_done(tid), self.peer)
                break
            ack()
        else:
            raise AssertionError(f"download not done in {limit}s: {cum} of {n_blocks} blocks")
        return b"".join(out), end, seen


# ---------------------------------------------------------------------------
# daemons and clients

def start_both(daemon_factory, root, port=None, address="127.0.0.1", limits=None, udp=None, tcp=True):
    """netlabd serving root over TCP ("files") and UDP ("files-udp") on the
    same port number; d.port, d.root."""
    port = port or free_port()
    ls = []
    if tcp:
        ls.append(file_listener(port, root, name="files", address=address))
    ls.append(udp_file_listener(port, root, address=address, **(udp or {})))
    lim = {"idle_timeout": 3}
    lim.update(limits or {})
    d = daemon_factory(make_config(ls, limits=lim))
    d.port, d.root = port, root
    return d


@pytest.fixture
def usrv(daemon_factory, ram, request):
    """Both listeners, rooted in the tmpfs (64 MiB sources cost no disk)."""
    root = ram / ("root-" + re.sub(r"[^\w.-]", "_", request.node.name)[:90])
    root.mkdir()
    try:
        yield start_both(daemon_factory, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def ufetch(d, *args, ini, host="127.0.0.1", port=None, timeout=60):
    return netlabctl("fetch", "--udp", "-H", host, "-p", port or d.port, *args, ini=ini, timeout=timeout)


def tfetch(d, *args, ini, host="127.0.0.1", timeout=60):
    return netlabctl("fetch", "-H", host, "-p", d.port, *args, ini=ini, timeout=timeout)


def start_ufetch(d, *args, ini, host="127.0.0.1"):
    cmd = [str(NETLABCTL), f"--config={ini}", "fetch", "--udp", "-H", host, "-p", str(d.port), *map(str, args)]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def udp_entries(d, listener="files-udp"):
    return [e for e in d.requests() if e.get("LISTENER") == listener]


def wait_udp_entries(d, pred, timeout=10.0, listener="files-udp"):
    """The listener's entries once pred(entries) holds (bounded)."""
    return d.wait_requests(pred=pred, timeout=timeout, listener=listener)


def entry_for_port(d, port, timeout=10.0):
    es = wait_udp_entries(d, lambda es: any(e.get("REMOTE_PORT") == str(port) for e in es), timeout)
    return [e for e in es if e.get("REMOTE_PORT") == str(port)][-1]


def wait_gone(pids, timeout):
    """Wait until none of pids exists (reaped); returns the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not any(os.path.exists(f"/proc/{p}") for p in pids):
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError(f"still running after {timeout}s: {[p for p in pids if os.path.exists(f'/proc/{p}')]}")


def raw_get(c, path, want, **kw):
    """c asks for path (kw: the REQUEST's fields, as XClient.handshake()),
    is ACCEPTed and downloads want, byte for byte; c is closed after.
    Returns (the ACCEPT, the END, the download's counters)."""
    try:
        p = c.handshake(path, **kw)
        assert p.type == ACCEPT, (NAMES[p.type], getattr(p, "text", None))
        got, end, seen = c.download()
        assert got == want
        return p, end, seen
    finally:
        c.close()


def wait_children(d, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = d.children()
        if len(c) >= n:
            return c
        time.sleep(0.01)
    raise AssertionError(f"expected {n} children, have {d.children()}")


# ---------------------------------------------------------------------------
# whole files, byte for byte

WHOLE = {
    "empty": 0, "one": 1, "block": BLOCK_MAX, "block-plus-1": BLOCK_MAX + 1,
    "odd-3-blocks": BLOCK_MAX * 3 + 7, "odd-mtu-blocks": 1456 * 11 + 1, "64mib": 64 * MIB,
}


@pytest.mark.parametrize("name", list(WHOLE))
def test_whole_file(usrv, ctl_ini, out_dir, name):
    size = WHOLE[name]
    data = rand_bytes(size, size)
    (usrv.root / name).write_bytes(data)
    out = out_dir / "out.bin"
    r = ufetch(usrv, "-o", out, name, ini=ctl_ini)
    check_whole_fetch(r, name, out, size, hashlib.sha256(data).hexdigest())
    e = wait_udp_entries(usrv, lambda es: len(es) >= 1)[0]
    assert (e["SERVICE"], e["RESULT"], e["FILE"], e["OFFSET"]) == ("file", "ok", name, "0"), e
    assert int(e["BYTES_OUT"]) >= size, e
    assert udp_entries(usrv, "files") == []  # it really went over UDP


@pytest.mark.parametrize("block", [BLOCK_MIN, 1000, 1456, BLOCK_MAX])
def test_block_size(usrv, ctl_ini, out_dir, block):
    """--block-size: small and large blocks, each with a short last block."""
    data = rand_bytes(3 * MIB + 12345, block)
    (usrv.root / "f").write_bytes(data)
    out = out_dir / "b.bin"
    r = ufetch(usrv, "--block-size", block, "-o", out, "f", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    assert out.read_bytes() == data
    e = wait_udp_entries(usrv, lambda es: len(es) >= 1)[0]
    assert e["RESULT"] == "ok", e


@pytest.mark.parametrize("window", [1, 7, 65536])
def test_window(usrv, ctl_ini, out_dir, window):
    """--window: the most blocks in flight; the ACCEPT's window is at most
    that (and the listener's window_max, 4096 by default)."""
    data = rand_bytes(MIB + 5, window)
    (usrv.root / "f").write_bytes(data)
    out = out_dir / "w.bin"
    r = ufetch(usrv, "--window", window, "--block-size", 4096, "--json", "-o", out, "f", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    assert out.read_bytes() == data
    obj = json.loads(r.stdout)
    assert obj["block_size"] == 4096 and obj["window"] == min(window, 4096), obj
    line = next(l for l in usrv.log().splitlines() if "RESULT=ok" in l)
    assert f": ok: block 4096, window {min(window, 4096)}, " in line, line


@pytest.mark.parametrize("block_max, window, want_block", [
    (BLOCK_MAX, 64, BLOCK_MAX),   # loopback: IP_MTU 65536 allows the largest block
    (60000, 64, 60000),
    (1456, 64, 1456),
    (BLOCK_MIN, 1, BLOCK_MIN),
    (BLOCK_MIN, 3, BLOCK_MIN),
])
def test_raw_download(usrv, block_max, window, want_block):
    """The Python codec against the daemon: the ACCEPT's choices, every
    DATA's layout, END, DONE; the data byte for byte; the log entry."""
    data = rand_bytes(300_001, 21)
    (usrv.root / "f").write_bytes(data)
    c = XClient(usrv.port)
    try:
        p = c.handshake("f", block_max=block_max, window=window)
        assert p.type == ACCEPT, (p.status, getattr(p, "text", None))
        assert p.client_id == c.cid
        assert p.block_size == want_block
        assert 1 <= p.window <= window
        st = os.stat(usrv.root / "f")
        assert (p.info["kind"], p.info["flags"], p.info["size"], p.info["offset"], p.info["length"]) == \
            (1, 0, len(data), 0, len(data))
        assert (p.info["mtime_sec"], p.info["mtime_nsec"]) == (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9)
        got, end, seen = c.download()
        assert got == data
        assert (end.status, end.body) == (OK, b"\x00")
        assert seen["skipped"] == 0
        port = c.port
    finally:
        c.close()
    e = entry_for_port(usrv, port)
    assert (e["RESULT"], e["FILE"], e["OFFSET"], e["REMOTE_ADDR"]) == ("ok", "f", "0", "127.0.0.1"), e
    assert int(e["BYTES_OUT"]) >= len(data)
    usrv.wait_no_children(5)


def test_raw_download_same_validator_as_tcp(usrv):
    """The ACCEPT's FILE_INFO is the one the TCP service sends for the same
    file: same validator, so a resume may switch transports."""
    import conftest
    data = rand_bytes(100_000, 22)
    (usrv.root / "f").write_bytes(data)
    a = conftest.file_exchange(usrv.port, conftest.file_get("f"))
    assert a.status == OK
    p, _, _ = raw_get(XClient(usrv.port), "f", data)
    assert p.info == a.info


def test_raw_download_offset_and_digest(usrv):
    data = rand_bytes(500_000, 23)
    (usrv.root / "f").write_bytes(data)
    p, end, _ = raw_get(XClient(usrv.port), "f", data[123_457:], offset=123_457, flags=1, block_max=1000)
    assert (p.info["flags"], p.info["offset"], p.info["length"]) == (1, 123_457, len(data) - 123_457)
    assert end.status == OK and end.digest == hashlib.sha256(data).hexdigest()  # of the whole file


def test_raw_download_sack_and_bad_acks(usrv):
    """Blocks 'lost' on the way (ignored the first time) come again after
    SACKs that name the blocks around them; ACKs the sender must refuse
    (a range below cum, a range that ends before it starts) change nothing."""
    data = rand_bytes(200 * 1000 + 5, 24)
    (usrv.root / "f").write_bytes(data)
    c = XClient(usrv.port)
    try:
        p = c.handshake("f", block_max=1000, window=64)
        assert p.type == ACCEPT and p.block_size == 1000
        lost = {0, 3, 7, 8, 20, 21, 22, 150, 200}
        got, end, seen = c.download(skip=lost, bad_acks=2)
        assert got == data
        assert seen["skipped"] == len(lost)
        assert end.status == OK
        port = c.port
    finally:
        c.close()
    assert entry_for_port(usrv, port)["RESULT"] == "ok"


@pytest.mark.parametrize("how", ["silent", "closed"])
def test_lost_done_is_still_ok(usrv, how):
    """Every block delivered and END sent, but no DONE comes back (lost):
    the transfer is still "ok" ("no DONE from the client" in the detail),
    whether the client stays silent (END resent, then given up) or its port
    is closed by then (ICMP port unreachable answers the resent END)."""
    data = rand_bytes(100_000, 36)
    (usrv.root / "f").write_bytes(data)
    c = XClient(usrv.port)
    try:
        p = c.handshake("f")
        assert p.type == ACCEPT
        kids = wait_children(usrv, 1)
        got, end, _ = c.download(send_done=False)
        assert got == data and end.status == OK
        port = c.port
        if how == "closed":
            c.close()
        wait_gone(kids, 15)
        if how == "silent":
            c.recv_all(quiet=0.2, limit=2)
            ends = [x for x, _ in c.rx if x.type == END]
            assert 2 <= len(ends) <= 1 + 5, len(ends)  # resent, a bounded number of times
    finally:
        c.close()
    e = entry_for_port(usrv, port)
    assert e["RESULT"] == "ok", e
    line = next(l for l in usrv.log().splitlines() if f"REMOTE_PORT={port} " in l)
    assert "no DONE from the client" in line, line


def test_empty_file_raw(usrv):
    (usrv.root / "e").write_bytes(b"")
    p, end, seen = raw_get(XClient(usrv.port), "e", b"")
    assert p.info["length"] == 0 and end.status == OK and seen["data"] == 0


# ---------------------------------------------------------------------------
# address validation: the cookie

def test_no_cookie_no_data(usrv):
    """REQUESTs that never echo a cookie (none, or one made up) get at most
    3x the bytes sent back, only RETRYs, never an ACCEPT or DATA, and start
    no child."""
    (usrv.root / "f").write_bytes(rand_bytes(MIB, 25))
    c = XClient(usrv.port)
    try:
        body = file_get_body("f")
        for i in range(40):  # bounded
            cid = client_id()
            c.send(x_request(cid, body))
            c.send(x_request(cid, body, cookie=os.urandom(20)))
            c.send(x_request(cid, body, cookie=os.urandom(COOKIE_MAX), pad_to=REQUEST_MAX))
            if i % 10 == 9:
                time.sleep(0.05)
        got = c.recv_all(quiet=1.0, limit=10)
        assert c.rx_bytes <= AMPLIFY * c.tx_bytes, (c.rx_bytes, c.tx_bytes)
        assert {NAMES[p.type] for p, _ in got} <= {"RETRY"}, [NAMES[p.type] for p, _ in got]
        assert all(p.size <= AMPLIFY * REQUEST_MIN for p, _ in got)
        assert len(got) >= 1  # the listener answers (with cookies)
        assert usrv.children() == []
    finally:
        c.close()
    assert [e for e in udp_entries(usrv) if e["RESULT"] == "ok"] == []


# Datagrams that are not a valid first REQUEST: whatever the listener does,
# it never sends more than 3x and never data.
GARBAGE = [
    ("short-request", lambda cid: x_request(cid, file_get_body("f"), pad_to=0)),
    ("request-1199", lambda cid: x_request(cid, file_get_body("f"), pad_to=REQUEST_MIN - 1)),
    ("request-over-max", lambda cid: x_request(cid, file_get_body("f"), pad_to=REQUEST_MAX + 1)),
    ("nonzero-padding", lambda cid: x_request(cid, file_get_body("f"))[:-1] + b"\x01"),
    ("client-id-0", lambda cid: x_request(0, file_get_body("f"))),
    ("version-2", lambda cid: b"\x00X\x02" + x_request(cid, file_get_body("f"))[3:]),
    ("type-0", lambda cid: b"\x00X\x01\x00" + x_request(cid, file_get_body("f"))[4:]),
    ("type-9", lambda cid: b"\x00X\x01\x09" + x_request(cid, file_get_body("f"))[4:]),
    ("data-to-listener", lambda cid: XMAGIC + bytes([DATA]) + struct.pack(">III", cid, 0, 0) + bytes(1200)),
    ("ack-to-listener", lambda cid: x_ack(cid, 0, 0, 10)),
    ("done-to-listener", lambda cid: x_done(cid)),
    ("error-to-listener", lambda cid: x_error(cid, 5, CANCELLED, b"bye")),
    ("body-len-too-long", lambda cid: x_request(cid, file_get_body("f"))[:15] + b"\x20\x01"
     + x_request(cid, file_get_body("f"))[17:]),
    ("empty", lambda cid: b""),
    ("magic-only", lambda cid: b"\x00X"),
    ("tcp-frame", lambda cid: b"\x00NL\x01\x10\x00\x00\x00\x00\x00\x00\x00"),
]


@pytest.mark.parametrize("make", [g[1] for g in GARBAGE], ids=[g[0] for g in GARBAGE])
def test_garbage_is_not_amplified(usrv, make):
    (usrv.root / "f").write_bytes(b"x" * 10000)
    c = XClient(usrv.port)
    try:
        for _ in range(5):
            c.send(make(client_id()))
        got = c.recv_all(quiet=0.5, limit=5)
        assert c.rx_bytes <= AMPLIFY * c.tx_bytes, (c.rx_bytes, c.tx_bytes, got)
        assert {NAMES[p.type] for p, _ in got} <= {"RETRY", "ERROR"}, got
        assert usrv.children() == []
    finally:
        c.close()


def test_wrong_cookie_is_dropped(usrv):
    """A cookie with a bit flipped, cut short, for another client id, or
    echoed from another port or address: no reply at all; the right one
    then works."""
    data = rand_bytes(50_000, 26)
    (usrv.root / "f").write_bytes(data)
    body = file_get_body("f")
    c = XClient(usrv.port)
    others = [XClient(usrv.port), XClient(usrv.port, bind=("127.0.0.2", 0))]
    try:
        cid = client_id()
        cookie = c.get_retry(cid, body)
        flipped = bytes([cookie[0] ^ 1]) + cookie[1:]
        last_flipped = cookie[:-1] + bytes([cookie[-1] ^ 0x80])
        cases = [
            (c, cid, flipped), (c, cid, last_flipped), (c, cid, cookie[:-1]), (c, cid, cookie + b"\x00"),
            (c, cid ^ 1, cookie), (others[0], cid, cookie), (others[1], cid, cookie),
        ]
        for x, xcid, xcookie in cases:
            if not xcookie:
                continue
            x.send(x_request(xcid, body, cookie=xcookie))
        for x in [c] + others:
            got = x.recv_all(quiet=0.7, limit=3)
            assert got == [], [(NAMES[p.type], vars(p)) for p, _ in got]
        assert usrv.children() == []
        # The cookie itself was fine.
        c.send(x_request(cid, body, cookie=cookie))
        r = c.wait_for((ACCEPT, ERROR), cid, timeout=3)
        assert r is not None and r[0].type == ACCEPT
        c.peer, c.accept, c.cid = r[1], r[0], cid
        got, end, _ = c.download()
        assert got == data
    finally:
        for x in [c] + others:
            x.close()


def test_duplicate_request_starts_one_transfer(usrv):
    """The validated REQUEST sent three times: one child, one ACCEPT's
    transfer id (the child answers the repeats)."""
    make_sparse(usrv.root / "big", 256 * MIB, {0: b"x"})
    c = XClient(usrv.port)
    try:
        cid = client_id()
        body = file_get_body("big")
        cookie = c.get_retry(cid, body)
        req = x_request(cid, body, cookie=cookie)
        for _ in range(3):
            c.send(req)
        got = c.recv_all(quiet=0.5, limit=3)
        accepts = [p for p, _ in got if p.type == ACCEPT]
        assert accepts and len({p.transfer_id for p in accepts}) == 1, got
        assert len(usrv.children()) == 1
        # Cancel it: the child logs "cancelled" and ends.
        kids = usrv.children()
        src = next(a for p, a in got if p.type == ACCEPT)
        c.send(x_error(cid, accepts[0].transfer_id, CANCELLED, b"test is done"), src)
        wait_gone(kids, 3)
        port = c.port
    finally:
        c.close()
    assert entry_for_port(usrv, port)["RESULT"] == "cancelled"


def test_restart_on_the_same_port_supersedes(usrv):
    """A REQUEST with another client id on a running transfer's socket pair
    (the client restarted on the same port): the old child ends at once."""
    make_sparse(usrv.root / "big", 256 * MIB, {0: b"x"})
    c = XClient(usrv.port)
    try:
        p = c.handshake("big")
        assert p.type == ACCEPT
        kids = wait_children(usrv, 1)
        c.send(x_request(client_id(), file_get_body("big")))
        took = wait_gone(kids, 2.5)  # idle_timeout is 3 s: this is not the timeout
        assert took < 2.5
        port = c.port
    finally:
        c.close()
    e = entry_for_port(usrv, port)
    assert e["RESULT"] == "superseded", e


# ---------------------------------------------------------------------------
# resume

RESUMABLE = 256 * MIB


def make_resumable(root, name):
    """RESUMABLE bytes: 32 MiB of random data, then a hole, then a mark."""
    marks = {0: rand_bytes(32 * MIB, 27), RESUMABLE - 4: b"end!"}
    make_sparse(root / name, RESUMABLE, marks)
    return marks


def interrupted_ufetch(d, name, out, ini, procs):
    """test_fetch.interrupted_fetch() with --udp: the partial size."""
    return interrupted_fetch(d, name, out, ini, procs, start=start_ufetch)


def test_resume_after_client_killed(usrv, ctl_ini, out_dir, procs):
    marks = make_resumable(usrv.root, "r")
    out = out_dir / "r.bin"
    have = interrupted_ufetch(usrv, "r", out, ctl_ini, procs)
    assert 0 < have < RESUMABLE
    # The part file is a prefix of the file: in-order writes only.
    with open(part_of(out), "rb") as f, open(usrv.root / "r", "rb") as g:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(g.read(have)).digest()
    r = ufetch(usrv, "--resume", "--json", "-o", out, "r", ini=ctl_ini, timeout=120)
    check_resumed_json(r, out, have, RESUMABLE, sparse_sha256(RESUMABLE, marks))
    es = wait_udp_entries(usrv, lambda es: any(e["OFFSET"] == str(have) for e in es))
    assert [e["RESULT"] for e in es if e["OFFSET"] == str(have)] == ["ok"]


def test_resume_over_udp_after_tcp(usrv, ctl_ini, out_dir, procs):
    """A partial file from a TCP fetch, resumed over UDP (same validator,
    same tail hash)."""
    marks = make_resumable(usrv.root, "x")
    out = out_dir / "x.bin"
    have = interrupted_fetch(usrv, "x", out, ctl_ini, procs)  # over TCP
    r = ufetch(usrv, "--resume", "-o", out, "x", ini=ctl_ini, timeout=120)
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stderr == b""
    assert int(RESULT_LINE.fullmatch(r.stdout)["resumed"]) == have
    assert sha256_file(out) == sparse_sha256(RESUMABLE, marks)
    out.unlink()


@pytest.mark.parametrize("no_restart", [False, True])
def test_resume_file_changed(usrv, ctl_ini, out_dir, procs, no_restart):
    """The file is replaced after a partial download: CHANGED; the client
    starts over (or, with --no-restart, stops with 9 keeping the part), with
    the same texts as over TCP."""
    make_resumable(usrv.root, "f")
    out = out_dir / "c.bin"
    have = interrupted_ufetch(usrv, "f", out, ctl_ini, procs)
    check_resume_file_replaced(usrv, ufetch, "f", out, have, ctl_ini, no_restart, seed=28)
    es = wait_udp_entries(usrv, lambda es: any(e["OFFSET"] == str(have) for e in es))
    assert [e["RESULT"] for e in es if e["OFFSET"] == str(have)] == ["changed"]


def test_resume_corrupted_partial(usrv, ctl_ini, out_dir, procs):
    """A byte flipped near the end of the part file: mismatch (tail hash),
    the client starts over."""
    marks = make_resumable(usrv.root, "m")
    out = out_dir / "m.bin"
    have = interrupted_ufetch(usrv, "m", out, ctl_ini, procs)
    flip_bit(part_of(out), have - 1000)
    r = ufetch(usrv, "--resume", "-o", out, "m", ini=ctl_ini, timeout=120)
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stderr == b"netlabctl: the partial file's last bytes differ from the server's file; starting over\n"
    assert sha256_file(out) == sparse_sha256(RESUMABLE, marks)
    out.unlink()
    es = wait_udp_entries(usrv, lambda es: any(e["OFFSET"] == str(have) for e in es))
    assert [e["RESULT"] for e in es if e["OFFSET"] == str(have)] == ["mismatch"]


def test_changed_during_transfer(usrv, ctl_ini, out_dir, procs):
    """The file's contents change (same size) while the client is stopped:
    END says CHANGED, the client does not keep the data and starts over."""
    p_file = usrv.root / "f"
    make_sparse(p_file, 256 * MIB, {0: b"x"})
    out = out_dir / "d.bin"
    p, _ = stopped_fetch(usrv, "f", out, ctl_ini, procs, start=start_ufetch)
    with open(p_file, "r+b") as f:
        f.write(b"y")
    os.truncate(p_file, 256 * MIB)
    os.kill(p.pid, signal.SIGCONT)
    out_text, err = p.communicate(timeout=120)
    assert p.returncode == EXIT_OK, err
    assert err == b"netlabctl: the file changed on the server during the transfer; starting over\n"
    m = RESULT_LINE.fullmatch(out_text)
    assert m and m["restarted"], out_text
    assert sha256_file(out) == sparse_sha256(256 * MIB, {0: b"y"})
    out.unlink()
    es = wait_udp_entries(usrv, lambda es: len(es) >= 2)
    assert sorted(e["RESULT"] for e in es) == ["changed", "ok"]


# ---------------------------------------------------------------------------
# refusals: the TCP service's statuses and texts

REFUSALS = [
    ("not-found", "nope", EXIT_REFUSED, "not-found"),
    ("hidden", ".hidden", EXIT_REFUSED, "not-found"),
    ("fifo", "fifo", EXIT_REFUSED, "not-permitted"),
    ("outside-root", "passwd", EXIT_REFUSED, "not-permitted"),
    ("dotdot-link", "up", EXIT_REFUSED, "not-permitted"),
    ("directory", "sub", EXIT_REFUSED, "not-permitted"),
    ("offset-past-end", "--offset 2 one", EXIT_REFUSED, "range"),
]


@pytest.mark.parametrize("path, code, result", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_refusal_same_as_tcp(usrv, ctl_ini, out_dir, path, code, result):
    root = usrv.root
    (root / "one").write_bytes(b"1")
    (root / ".hidden").write_bytes(b"h")
    (root / "sub").mkdir()
    os.mkfifo(root / "fifo")
    os.symlink("/etc/passwd", root / "passwd")
    os.symlink("../..", root / "up")
    args = path.split()
    for fmt in ([], ["--json"]):
        r_tcp = tfetch(usrv, *fmt, "-o", out_dir / "t", *args, ini=ctl_ini)
        r_udp = ufetch(usrv, *fmt, "-o", out_dir / "u", *args, ini=ctl_ini)
        assert r_tcp.returncode == code, r_tcp.stderr
        assert (r_udp.returncode, r_udp.stderr, r_udp.stdout) == (r_tcp.returncode, r_tcp.stderr, r_tcp.stdout)
        assert os.listdir(out_dir) == []  # a refusal leaves nothing behind
    es = wait_udp_entries(usrv, lambda es: len(es) >= 2)
    tcp = [e for e in usrv.requests() if e["LISTENER"] == "files"]
    assert [e["RESULT"] for e in es] == [result, result]
    for key in ("RESULT", "FILE", "OFFSET"):
        assert [e.get(key) for e in es] == [e.get(key) for e in tcp], (es, tcp)
    usrv.wait_no_children(5)


def test_refusal_raw_error_datagram(usrv):
    """A refusal is one ERROR (client id, transfer id, status, text) from
    the transfer's side."""
    c = XClient(usrv.port)
    try:
        p = c.handshake("nope")
        assert p.type == ERROR
        assert (p.client_id, p.status, p.text) == (c.cid, NOT_FOUND, "cannot open: no such file or directory")
        # The path check: "." and "..", absolute paths.
        c2 = XClient(usrv.port)
        try:
            p = c2.handshake("../x")
            assert (p.type, p.status, p.text) == (ERROR, BAD_REQUEST, '"." or ".." in path')
        finally:
            c2.close()
    finally:
        c.close()


# ---------------------------------------------------------------------------
# output forms

def test_verify(usrv, ctl_ini, out_dir):
    data = rand_bytes(5 * MIB + 3, 29)
    (usrv.root / "v").write_bytes(data)
    out = out_dir / "v.bin"
    r = ufetch(usrv, "--verify", "-o", out, "v", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    m = RESULT_LINE.fullmatch(r.stdout)
    assert m and m["sha"], r.stdout
    assert m["sha"].decode() == hashlib.sha256(data).hexdigest() == sha256_file(out)


def test_to_stdout(usrv, ctl_ini, tmp_path):
    data = rand_bytes(3 * MIB + 17, 30)
    (usrv.root / "f").write_bytes(data)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    base = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "--udp", "-H", "127.0.0.1", "-p", str(usrv.port),
            "-o", "-"]
    check_to_stdout(base, data, cwd, timeout=60)
    assert os.listdir(cwd) == []


def test_json_same_as_tcp(usrv, ctl_ini, out_dir):
    data = rand_bytes(100_000, 31)
    (usrv.root / "j.bin").write_bytes(data)
    r_tcp = tfetch(usrv, "--json", "--verify", "-o", out_dir / "t.bin", "j.bin", ini=ctl_ini)
    r_udp = ufetch(usrv, "--json", "--verify", "-o", out_dir / "u.bin", "j.bin", ini=ctl_ini)
    assert r_tcp.returncode == r_udp.returncode == 0, r_udp.stderr
    assert r_udp.stderr == b""
    t, u = json.loads(r_tcp.stdout), json.loads(r_udp.stdout)
    assert set(t) <= set(u), set(t) - set(u)
    for k in t:
        if k in ("output", "duration_ms", "rate_bytes_per_sec"):
            continue
        assert u[k] == t[k], (k, u[k], t[k])
    assert u["output"] == str(out_dir / "u.bin")
    assert u.get("transport") == "udp", u
    assert u["block_size"] == BLOCK_MAX and 1 <= u["window"] <= WINDOW_MAX, u
    assert u["sha256"] == hashlib.sha256(data).hexdigest()
    assert u["duration_ms"] >= 0 and u["rate_bytes_per_sec"] >= 0
    # An error is one JSON object too, as over TCP (test_refusal_same_as_tcp
    # compares them byte for byte).


def test_usage_errors(ctl_ini, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for args in (["--udp", "--block-size", "x", "f"], ["--udp", "--window", "x", "f"],
                 ["--udp", "--block-size", "-1", "f"], ["--udp", "--block-size", "", "f"],
                 ["--udp", "--block-size", "511", "f"], ["--udp", "--block-size", "65465", "f"],
                 ["--udp", "--window", "0", "f"], ["--udp", "--window", "65537", "f"],
                 ["--block-size", "1000", "f"], ["--window", "10", "f"]):  # the last two: only with --udp
        cmd = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "-H", "127.0.0.1", "-p", "9", *args]
        r = subprocess.run(cmd, capture_output=True, timeout=30, cwd=cwd)
        assert r.returncode == EXIT_USAGE, (args, r.stderr)
        assert r.stderr.startswith(b"netlabctl: fetch: ") and r.stderr.count(b"\n") == 1, r.stderr
        assert r.stdout == b""
    assert os.listdir(cwd) == []


# ---------------------------------------------------------------------------
# concurrency and limits

def test_10_concurrent(daemon_factory, tmp_path, ctl_ini, out_dir):
    root = tmp_path / "root"
    root.mkdir()
    # All from 127.0.0.1: room for 10 on the listener and per source.
    usrv = start_both(daemon_factory, root, udp={"max_transfers": 16, "max_transfers_per_source": 16})
    data = rand_bytes(4 * MIB + 1, 32)
    (usrv.root / "f").write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    base = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "--udp", "-H", "127.0.0.1", "-p", str(usrv.port)]
    fetch_at_once(base, 10, out_dir, want, timeout=90)
    es = wait_udp_entries(usrv, lambda es: len(es) >= 10)
    assert [e["RESULT"] for e in es] == ["ok"] * 10
    assert len({e["REMOTE_PORT"] for e in es}) == 10


def hold(port, path, src="127.0.0.1"):
    """A transfer that is ACCEPTed and then never acknowledged: it holds its
    slot until the idle timeout.  Returns the client (close it after)."""
    c = XClient(port, bind=(src, 0))
    p = c.handshake(path)
    assert p.type == ACCEPT, (NAMES[p.type], getattr(p, "text", None))
    return c


def busy_error(port, path, src):
    """A raw REQUEST from src: the ERROR it gets (asserted BUSY), the client
    (for its byte counts)."""
    c = XClient(port, bind=(src, 0))
    try:
        p = c.handshake(path)
        assert p.type == ERROR, NAMES[p.type]
        assert (p.client_id, p.transfer_id, p.status) == (c.cid, 0, BUSY)
        assert p.text.startswith("server busy: "), p.text
        assert c.rx_bytes <= AMPLIFY * c.tx_bytes
        return p
    finally:
        c.close()


LISTENER_LIMITS = {"max_transfers": 2, "max_transfers_per_source": 1}


def test_busy_listener_limits(daemon_factory, tmp_path, ctl_ini, out_dir):
    """max_transfers_per_source, then max_transfers: the next client gets a
    busy ERROR; netlabctl says so with exit 5, as over TCP."""
    root = tmp_path / "root"
    root.mkdir()
    make_sparse(root / "big", 64 * MIB, {0: b"x"})
    (root / "small").write_bytes(b"small\n")
    d = start_both(daemon_factory, root, limits={"idle_timeout": 5}, udp=LISTENER_LIMITS)
    holders = []
    try:
        holders.append(hold(d.port, "big", "127.0.0.1"))
        r = ufetch(d, "-o", out_dir / "x", "small", ini=ctl_ini)
        assert r.returncode == EXIT_BUSY, r.stderr
        assert r.stderr.startswith(b"netlabctl: server refused (busy): server busy: "), r.stderr
        assert r.stderr.count(b"\n") == 1 and r.stdout == b""
        assert os.listdir(out_dir) == []
        per_source = busy_error(d.port, "small", "127.0.0.1")
        # Another source still gets in: the per-source limit is per source.
        holders.append(hold(d.port, "big", "127.0.0.2"))
        total = busy_error(d.port, "small", "127.0.0.3")
        assert per_source.text != total.text, (per_source.text, total.text)
        # TCP is not counted against the UDP listener's limits.
        r = tfetch(d, "-o", out_dir / "tcp", "small", ini=ctl_ini)
        assert r.returncode == 0, r.stderr
        assert len(d.children()) == 2
    finally:
        for h in holders:
            h.close()
    es = wait_udp_entries(d, lambda es: sum(e["RESULT"] == "busy" for e in es) >= 1)
    assert all(e["SERVICE"] == "file" for e in es)
    # The holders are closed: their children end (the port is closed:
    # client-gone; or, at the latest, the idle timeout).
    d.wait_no_children(10)
    es = wait_udp_entries(d, lambda es: sum(e["RESULT"] in ("client-gone", "timeout") for e in es) >= 2)


def test_busy_global_limit_shared_with_tcp(daemon_factory, tmp_path, ctl_ini, out_dir):
    """limits.max_children counts UDP transfers and TCP connections
    together; the busy texts are the TCP service's."""
    root = tmp_path / "root"
    root.mkdir()
    make_sparse(root / "big", 64 * MIB, {0: b"x"})
    (root / "small").write_bytes(b"small\n")
    d = start_both(daemon_factory, root, limits={"idle_timeout": 5, "max_children": 1})
    h = hold(d.port, "big")
    try:
        want = b"netlabctl: server refused (busy): server busy: all 1 client slots are in use, try again later\n"
        r = ufetch(d, "-o", out_dir / "x", "small", ini=ctl_ini)
        assert (r.returncode, r.stderr) == (EXIT_BUSY, want)
        r = tfetch(d, "-o", out_dir / "x", "small", ini=ctl_ini)
        assert (r.returncode, r.stderr) == (EXIT_BUSY, want)
    finally:
        h.close()
    d.wait_no_children(15)
    r = ufetch(d, "-o", out_dir / "x", "small", ini=ctl_ini)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------
# a vanished client, cancel

@pytest.fixture
def short_idle(daemon_factory, ram, request):
    root = ram / ("root-" + re.sub(r"[^\w.-]", "_", request.node.name)[:90])
    root.mkdir()
    make_sparse(root / "big", 1 << 30, {0: b"x"})
    try:
        yield start_both(daemon_factory, root, limits={"idle_timeout": 2})
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("how", ["SIGSTOP", "SIGKILL"])
def test_vanished_client_frees_child(short_idle, ctl_ini, out_dir, procs, how):
    """The client stops (or dies) mid-transfer: its child is gone within the
    idle timeout (2 s, plus slack), and its log entry says timeout.  (A dead
    client's port answers with ICMP port unreachable on loopback: the child
    takes that as the end, "client-gone", even sooner.)"""
    d = short_idle
    out = out_dir / "v.bin"
    p, _ = stopped_fetch(d, "big", out, ctl_ini, procs, start=start_ufetch)
    kids = d.children()
    assert len(kids) == 1, kids
    t0 = time.monotonic()
    if how == "SIGKILL":
        kill_proc(p)
    wait_gone(kids, 2 + 3)
    took = time.monotonic() - t0
    e = wait_udp_entries(d, lambda es: len(es) >= 1)[0]
    assert (e["FILE"], e["OFFSET"]) == ("big", "0"), e
    if how == "SIGSTOP" or e["RESULT"] == "timeout":
        assert e["RESULT"] == "timeout", e
        assert took > 1.5, f"the child ended after {took:.2f}s, before the idle timeout"
    else:
        assert e["RESULT"] == "client-gone", e
    if how == "SIGSTOP":
        # The client wakes up to the child's ERROR(TIMEOUT): a timeout
        # (exit 7, as when it times out itself), the part file kept.
        os.kill(p.pid, signal.SIGCONT)
        stdout, stderr = p.communicate(timeout=30)
        have = part_of(out).stat().st_size
        assert p.returncode == EXIT_TIMEOUT, (p.returncode, stderr)
        assert b"timeout" in stderr or b"no data" in stderr or b"no acknowledgement" in stderr, stderr
        assert 0 < have < (1 << 30)
        assert stderr.endswith(f"the partial file {part_of(out)} was kept: run again with --resume to "
                               f"continue\n".encode()), stderr
    assert 4 * MIB <= int(e["BYTES_OUT"]) < (1 << 30)


def test_never_acknowledged_accept_times_out(short_idle):
    c = XClient(short_idle.port)
    try:
        p = c.handshake("big")
        assert p.type == ACCEPT
        kids = wait_children(short_idle, 1)
        t0 = time.monotonic()
        wait_gone(kids, 2 + 3)
        assert time.monotonic() - t0 > 1.0
        # The ACCEPT was sent again while it waited (RTO from 1 s), and the
        # child said why it gave up.
        c.recv_all(quiet=0.3, limit=2)
        types = [NAMES[x.type] for x, _ in c.rx]
        assert types.count("ACCEPT") >= 2, types
        errors = [x for x, _ in c.rx if x.type == ERROR]
        assert errors and errors[-1].status == TIMEOUT, types
        assert not any(x.type == DATA for x, _ in c.rx)
        port = c.port
    finally:
        c.close()
    assert entry_for_port(short_idle, port)["RESULT"] == "timeout"


def test_sigint_cancels(short_idle, ctl_ini, out_dir, procs):
    """^C: the client tells the server (ERROR CANCELLED), keeps the part
    file with TCP's message; the child logs "cancelled" at once."""
    d = short_idle
    out = out_dir / "int.bin"
    p, _ = stopped_fetch(d, "big", out, ctl_ini, procs, start=start_ufetch)
    kids = d.children()
    os.kill(p.pid, signal.SIGINT)
    os.kill(p.pid, signal.SIGCONT)
    stdout, stderr = p.communicate(timeout=30)
    have = part_of(out).stat().st_size
    assert p.returncode == -signal.SIGINT, (p.returncode, stderr)
    assert stdout == b""
    assert stderr == (f"netlabctl: interrupted after {have} of {1 << 30} bytes; the partial file {part_of(out)} "
                      f"was kept: run again with --resume to continue\n").encode()
    assert wait_gone(kids, 1.5) < 1.5  # well before the idle timeout
    e = wait_udp_entries(d, lambda es: len(es) >= 1)[0]
    assert e["RESULT"] == "cancelled", e


# ---------------------------------------------------------------------------
# the log entry

def test_log_entry_fields(usrv, ctl_ini, out_dir):
    """A UDP transfer's entry has the fields of a TCP file request's, with
    the UDP listener's name."""
    data = rand_bytes(MIB + 1, 33)
    (usrv.root / "with space").write_bytes(data)
    r = tfetch(usrv, "-o", out_dir / "t", "with space", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    c = XClient(usrv.port)
    try:
        c.handshake("with space", offset=10)
        got, _, _ = c.download()
        assert got == data[10:]
        port = c.port
    finally:
        c.close()
    u = entry_for_port(usrv, port)
    t = [e for e in usrv.requests() if e["LISTENER"] == "files"][0]
    assert set(t) <= set(u), set(t) - set(u)
    assert (u["LISTENER"], u["SERVICE"], u["REMOTE_ADDR"], u["RESULT"], u["FILE"], u["OFFSET"]) == \
        ("files-udp", "file", "127.0.0.1", "ok", t["FILE"], "10")
    assert len(data) - 10 <= int(u["BYTES_OUT"]) <= 2 * len(data)
    assert int(u["BYTES_IN"]) > 0 and int(u["DURATION_USEC"]) > 0
    # The human part of the line names the listener and the client.
    line = next(l for l in usrv.log().splitlines() if f"REMOTE_PORT={port} " in l)
    assert f"listener files-udp (file) from 127.0.0.1:{port}: ok" in line, line
    # ... and the transfer's figures; on loopback the transfer keeps the
    # listener's port (SO_REUSEPORT).
    m = re.search(r": ok: (block 65464, window \d+, .*), file ", line)
    assert m and "retransmitted" in m[1] and "shared port" in m[1].split(", "), line


# ---------------------------------------------------------------------------
# IPv6

@pytest.mark.parametrize("address, host", [("::1", "::1"), ("::", "::1"), ("::", "127.0.0.1")])
def test_ipv6(daemon_factory, tmp_path, ctl_ini, out_dir, address, host):
    root = tmp_path / "root"
    root.mkdir()
    data = rand_bytes(2 * MIB + 99, 34)
    (root / "f").write_bytes(data)
    d = start_both(daemon_factory, root, address=address)
    out = out_dir / "6.bin"
    r = ufetch(d, "--verify", "-o", out, "f", host=host, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data
    r = tfetch(d, "-o", out_dir / "t.bin", "f", host=host, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    u = wait_udp_entries(d, lambda es: len(es) >= 1)[0]
    t = wait_udp_entries(d, lambda es: len(es) >= 1, listener="files")[0]
    assert u["RESULT"] == "ok" and u["REMOTE_ADDR"] == t["REMOTE_ADDR"], (u, t)
    # Raw: the ACCEPT comes from the server's address.
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    p, _, _ = raw_get(XClient(d.port, host=host, family=fam), "f", data, block_max=BLOCK_MAX)
    # loopback MTU 65536: the largest block under IPv6 too (40-byte header)
    assert p.block_size == BLOCK_MAX


# ---------------------------------------------------------------------------
# listener settings, reload

def test_listener_block_and_window_max(daemon_factory, tmp_path):
    """block_size_max and window_max cap what a client asks for."""
    root = tmp_path / "root"
    root.mkdir()
    data = rand_bytes(100_003, 35)
    (root / "f").write_bytes(data)
    d = start_both(daemon_factory, root, udp={"block_size_max": 1000, "window_max": 16})
    for block_max, window, want in ((BLOCK_MAX, 1000, (1000, 16)), (700, 8, (700, 8))):
        p, _, _ = raw_get(XClient(d.port), "f", data, block_max=block_max, window=window)
        assert (p.block_size, p.window) == want


def test_reload_keeps_transfers_and_cookies(usrv, ctl_ini, out_dir, procs):
    """SIGHUP mid-transfer: the transfer goes on; a cookie handed out before
    the reload is still good after it."""
    marks = make_resumable(usrv.root, "r")
    body = file_get_body("r")
    c = XClient(usrv.port)
    try:
        cid = client_id()
        cookie = c.get_retry(cid, body)
        out = out_dir / "r.bin"
        p, _ = stopped_fetch(usrv, "r", out, ctl_ini, procs, start=start_ufetch)
        usrv.reload()
        os.kill(p.pid, signal.SIGCONT)
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        assert sha256_file(out) == sparse_sha256(RESUMABLE, marks)
        out.unlink()
        c.send(x_request(cid, body, cookie=cookie))
        r = c.wait_for((ACCEPT, ERROR), cid, timeout=3)
        assert r is not None and r[0].type == ACCEPT, r
        c.send(x_error(cid, r[0].transfer_id, CANCELLED, b"enough"), r[1])
    finally:
        c.close()
    es = wait_udp_entries(usrv, lambda es: len(es) >= 2)
    assert sorted(e["RESULT"] for e in es) == ["cancelled", "ok"]
