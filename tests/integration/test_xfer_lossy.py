"""UDP transfers across a real, lossy link (issue 5): two network namespaces
joined by a veth pair (MTU 1500), netlabd in one, netlabctl in the other.
These kernels have no netem, so random loss comes from nftables on each
namespace's prerouting hook (both directions), and delay, reordering and
duplication from udprelay.py running in the server's namespace between the
client and netlabd (netns.py, integration-recipes.md section 6).

Needs root; skipped with the reason otherwise (CI runs as root).  The
namespaces are named after this process (parallel runs do not clash) and
deleted at the end of the module, after asserting nothing runs in them.
Every run is bounded: transfers of a few MiB, a client timeout, a
subprocess timeout.
"""
import hashlib
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import NETLABCTL, make_config, sha256_file, udp_file_listener
from netns import pair_fixture
from test_xfer import BLOCK_MAX, DATA, DATA_HEADER, XClient, rand_bytes, raw_get, udp_entries, wait_udp_entries
from udprelay import RelayProcess

MIB = 1 << 20
PORT = 5001                 # a namespace of our own: nothing else binds there
EXIT_OK, EXIT_TIMEOUT = 0, 7
MTU_BLOCK = 1500 - 20 - 8 - DATA_HEADER   # IPv4 header, UDP header, DATA header: 1456


@pytest.fixture(scope="module")
def net():
    yield from pair_fixture()


@pytest.fixture
def lossy(net):
    """net, with every loss rule removed after the test."""
    yield net
    for ns in (net.server_ns, net.client_ns):
        net.clear_loss(ns)


@pytest.fixture
def nsd(daemon_factory, tmp_path, net):
    """netlabd in the server namespace, a udp file listener on its veth
    address; d.root."""
    root = tmp_path / "root"
    root.mkdir()
    cfg = make_config([udp_file_listener(PORT, root, address=net.server_addr)], limits={"idle_timeout": 5})
    d = daemon_factory(cfg, prefix=net.cmd(net.server_ns))
    d.port, d.root = PORT, root
    return d


@pytest.fixture
def relays(net):
    """Start udprelay.py in the server namespace, in front of netlabd."""
    made = []

    def make(**opts):
        r = RelayProcess(f"{net.server_addr}:0", f"{net.server_addr}:{PORT}", prefix=net.cmd(net.server_ns),
                         max_seconds=120, **opts)
        made.append(r)
        return r

    yield make
    for r in made:
        r.kill()


def nsfetch(net, *args, ini, port=PORT, timeout=120):
    """netlabctl fetch --udp in the client namespace, against the server's
    veth address."""
    cmd = net.cmd(net.client_ns, NETLABCTL, f"--config={ini}", "fetch", "--udp", "-H", net.server_addr, "-p", port,
                  *args)
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    r.seconds = time.monotonic() - t0
    return r


def test_block_size_follows_the_path_mtu(nsd, net):
    """Asking for the largest block across an MTU 1500 link: the ACCEPT
    offers what fits one IPv4 packet, and every DATA fits."""
    data = rand_bytes(300_000, 40)
    (nsd.root / "f").write_bytes(data)
    c = XClient(PORT, host=net.server_addr, sock=net.socket(net.client_ns))
    p, _, _ = raw_get(c, "f", data, block_max=BLOCK_MAX)
    assert p.block_size == MTU_BLOCK
    assert all(len(x.payload) <= MTU_BLOCK for x, _ in c.rx if x.type == DATA)


@pytest.mark.parametrize("block", [None, 512], ids=["default-block", "block-512"])
def test_loss_2_percent(lossy, nsd, ctl_ini, tmp_path, block):
    net = lossy
    data = rand_bytes(4 * MIB + 7, 41)
    (nsd.root / "f").write_bytes(data)
    for ns in (net.server_ns, net.client_ns):
        net.set_loss(ns, 2.0)
    out = tmp_path / "out.bin"
    args = ["--block-size", block] if block else []
    r = nsfetch(net, *args, "--verify", "-o", out, "f", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    assert sha256_file(out) == hashlib.sha256(data).hexdigest()
    dropped = {ns: net.dropped(ns) for ns in (net.server_ns, net.client_ns)}
    assert all(n > 0 for n in dropped.values()), dropped  # the loss really happened, both ways
    e = wait_udp_entries(nsd, lambda es: len(es) >= 1)[0]
    assert e["RESULT"] == "ok", e
    assert int(e["BYTES_OUT"]) > len(data)  # retransmissions count
    print(f"2% loss, block {block or 'default'}: {len(data) / r.seconds / 1e6:.1f} MB/s, dropped {dropped}, "
          f"log {e}")


@pytest.mark.parametrize("loss", [0.0, 2.0], ids=["relay", "relay-and-2pct-loss"])
def test_delay_reorder_duplicate(lossy, nsd, relays, ctl_ini, tmp_path, loss):
    """5 ms each way, 3% of datagrams held back 3 ms more (reordered), 3%
    sent twice, through udprelay.py; optionally 2% loss on top."""
    net = lossy
    data = rand_bytes(2 * MIB + 3, 42)
    (nsd.root / "f").write_bytes(data)
    if loss:
        for ns in (net.server_ns, net.client_ns):
            net.set_loss(ns, loss)
    relay = relays(delay_up=5, delay_down=5, reorder=0.03, reorder_extra=3, dup=0.03, seed=7)
    out = tmp_path / "out.bin"
    r = nsfetch(net, "--verify", "-o", out, "f", port=relay.port, ini=ctl_ini)
    stats = relay.stop()
    assert r.returncode == EXIT_OK, (r.stderr, stats)
    assert sha256_file(out) == hashlib.sha256(data).hexdigest()
    assert stats["clients"] == 1, stats
    for d in ("up", "down"):
        assert stats[d]["received"] > 0 and stats[d]["overflow"] == 0, stats
    assert stats["down"]["reordered"] > 0 and stats["down"]["duplicated"] > 0, stats
    assert stats["up"]["duplicated"] > 0, stats
    e = wait_udp_entries(nsd, lambda es: len(es) >= 1)[0]
    assert e["RESULT"] == "ok", e
    print(f"relay (loss {loss}%): {len(data) / r.seconds / 1e6:.1f} MB/s in {r.seconds:.2f}s, relay {stats}, "
          f"log {e}")


TIMEOUT_TEXT = re.compile(rb"no data from the server for \d+ s|time(d)? ?out", re.I)


def test_loss_30_percent_never_a_wrong_file(lossy, nsd, ctl_ini, tmp_path):
    """30% loss each way: the download completes byte for byte or ends with
    a clear timeout error (exit 7); never a wrong file."""
    net = lossy
    data = rand_bytes(256 * 1024 + 5, 43)
    (nsd.root / "f").write_bytes(data)
    for ns in (net.server_ns, net.client_ns):
        net.set_loss(ns, 30.0)
    out = tmp_path / "out.bin"
    r = nsfetch(net, "-t", "5", "-o", out, "f", ini=ctl_ini, timeout=150)
    assert r.returncode in (EXIT_OK, EXIT_TIMEOUT), (r.returncode, r.stderr)
    if r.returncode == EXIT_OK:
        assert sha256_file(out) == hashlib.sha256(data).hexdigest()
    else:
        assert not out.exists()
        assert TIMEOUT_TEXT.search(r.stderr), r.stderr
        assert r.stderr.startswith(b"netlabctl: ") and r.stderr.count(b"\n") == 1, r.stderr
        part = tmp_path / "out.bin.netlab-part"
        if part.exists():  # whatever was kept is a prefix of the file
            assert data.startswith(part.read_bytes())
    print(f"30% loss: exit {r.returncode} after {r.seconds:.1f}s: {r.stderr!r}; dropped "
          f"{[net.dropped(ns) for ns in (net.server_ns, net.client_ns)]}; log {udp_entries(nsd)}")


def test_link_dies_mid_transfer(lossy, nsd, ctl_ini, tmp_path):
    """All traffic dropped both ways mid-transfer (no ICMP gets through
    either): the client stops with a clear timeout error, keeping a part
    file that is a prefix of the file; the server's child is freed by the
    idle timeout (5 s) and logs "timeout"."""
    net = lossy
    data = rand_bytes(64 * MIB, 44)
    (nsd.root / "f").write_bytes(data)
    out = tmp_path / "out.bin"
    part = tmp_path / "out.bin.netlab-part"
    cmd = net.cmd(net.client_ns, NETLABCTL, f"--config={ctl_ini}", "fetch", "--udp", "-t", "2", "-H", net.server_addr,
                  "-p", PORT, "-o", out, "f")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and p.poll() is None:
            if part.exists() and part.stat().st_size >= MIB:
                break
            time.sleep(0.002)
        assert p.poll() is None, (p.returncode, p.stderr.read())
        for ns in (net.server_ns, net.client_ns):
            net.set_loss(ns, 100.0)
        kids = nsd.children()
        t0 = time.monotonic()
        stdout, stderr = p.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            os.kill(p.pid, 9)
            p.communicate(timeout=10)
    assert p.returncode == EXIT_TIMEOUT, (p.returncode, stderr)
    assert 1.5 < took < 10, took
    assert TIMEOUT_TEXT.search(stderr), stderr
    assert stderr.startswith(b"netlabctl: ") and stderr.count(b"\n") == 1, stderr
    assert not out.exists()
    have = part.read_bytes()
    assert MIB <= len(have) < len(data) and data.startswith(have)
    # The child: gone within the idle timeout (plus slack), logged as a timeout.
    deadline = time.monotonic() + 5 + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{k}") for k in kids):
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{k}") for k in kids), kids
    e = wait_udp_entries(nsd, lambda es: len(es) >= 1)[0]
    assert (e["RESULT"], e["FILE"], e["OFFSET"]) == ("timeout", "f", "0"), e
    print(f"link died: client {stderr!r} after {took:.1f}s; server {e}")
    # The link comes back: --resume completes it.
    for ns in (net.server_ns, net.client_ns):
        net.clear_loss(ns)
    r = nsfetch(net, "--resume", "-o", out, "f", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    assert f", resumed at {len(have)}".encode() in r.stdout, r.stdout
    assert sha256_file(out) == hashlib.sha256(data).hexdigest()


def test_udprelay_follows_a_server_port(tmp_path):
    """udprelay.py itself (no namespaces needed): a server that answers from
    another port (TFTP style) is reached through a relay port of its own
    for that client, like a NAT."""
    from udprelay import RelayProcess as Relay
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    moved = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r = None
    try:
        for s in (srv, moved, cli):
            s.bind(("127.0.0.1", 0))
            s.settimeout(5)
        r = Relay("127.0.0.1:0", f"127.0.0.1:{srv.getsockname()[1]}", seed=1)
        cli.sendto(b"hello", ("127.0.0.1", r.port))
        data, relay_up = srv.recvfrom(100)
        assert data == b"hello"
        srv.sendto(b"from the listener", relay_up)
        moved.sendto(b"from a port of its own", relay_up)
        got = {}
        for _ in range(2):
            d, a = cli.recvfrom(100)
            got[d] = a
        assert got[b"from the listener"] == ("127.0.0.1", r.port)
        mapped = got[b"from a port of its own"]
        assert mapped[1] != r.port
        cli.sendto(b"to the moved port", mapped)
        d, a = moved.recvfrom(100)
        assert (d, a) == (b"to the moved port", relay_up)  # same upstream socket: same source
        stats = r.stop()
        assert (stats["clients"], stats["mapped_ports"]) == (1, 1), stats
        assert stats["up"]["sent"] == 2 and stats["down"]["sent"] == 2, stats
    finally:
        if r is not None:
            r.kill()
        for s in (srv, moved, cli):
            s.close()
