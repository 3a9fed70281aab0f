"""Faults while serving (issue 7): netlabd keeps serving and loses no data.

- SIGKILL of random children during 12 concurrent downloads (TCP, UDP): the
  clients whose child died keep their partial file, and --resume makes every
  file byte-identical (SHA-256).
- SIGHUP every 100 ms for 3 s under concurrent downloads (TCP, UDP), messages
  and echoes: every client that was accepted completes correctly.
- SIGTERM with downloads in flight: with a long grace period they all finish
  and netlabd exits 0 after the last; with a short one they are ended after it,
  netlabd exits 0, and their partial files resume byte-identically.
- ENOSPC on the client over UDP (TCP: test_fetch.py test_enospc_keeps_partial).
- The root renamed away or made unreadable while serving (netlabd as nobody,
  so that mode 000 means something): clear refusals, the daemon stays up, a
  transfer already running finishes, restoring the root restores service.
- EMFILE in the supervisor (RLIMIT_NOFILE lowered with prlimit): it logs,
  pauses the listener instead of spinning, and serves again once descriptors
  are free.

Downloads are held mid-transfer by SIGSTOPping their client (the server's
child then blocks on a full socket buffer, or waits for ACKs), so the fault
always lands while data flows.  Every loop is bounded in count and time;
every process is stopped by pid.
"""
import hashlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (BAD_LOG, NETLABCTL, echo_listener, file_listener, free_port, hold_child, make_config,
                      make_sparse, message_listener, netlabctl, sha256_file, sparse_sha256, udp_exchange,
                      udp_file_listener)
from test_fetch import (check_enospc_partial, EXIT_BUSY, EXIT_OK, EXIT_PROTOCOL, EXIT_REFUSED, EXIT_TIMEOUT, RESULT_LINE,
                        meta_of, out_dir, part_of, procs, ram, rand_bytes, small_fs, wait_stopped)
from test_privdrop import _skip_reason as privdrop_skip_reason, config as nobody_config, daemons, pdir, \
    world_readable_root

__all__ = ["out_dir", "procs", "ram", "small_fs", "daemons", "pdir"]  # fixtures from other modules

MIB = 1 << 20
BIG = 64 * MIB
# Random bytes at the start (what a wrong resume would garble first), a hole,
# marks around the middle and at the end.
BIG_MARKS = {0: rand_bytes(4 * MIB, 71), 30 * MIB + 7: b"middle mark", BIG - 4: b"end!"}
BIG_SHA = None


def big_sha():
    global BIG_SHA
    if BIG_SHA is None:
        BIG_SHA = sparse_sha256(BIG, BIG_MARKS)
    return BIG_SHA


def both_listeners(port, root, udp=None):
    """The file service over TCP ("files") and UDP ("files-udp") on one port."""
    return [file_listener(port, root), udp_file_listener(port, root, **(udp or {}))]


UDP_ROOMY = {"max_transfers": 32, "max_transfers_per_source": 32}
LIMITS = {"max_children": 64, "max_per_source": 64, "idle_timeout": 10}


def fetch_cmd(port, udp, *args, ini, timeout=3):
    return ([str(NETLABCTL), f"--config={ini}", "fetch"] + (["--udp"] if udp else [])
            + ["-H", "127.0.0.1", "-p", str(port), "-t", str(timeout)] + [str(a) for a in args])


def start_stopped(port, udp, out, ini, procs, min_bytes=MIB, limit=30.0):
    """A fetch of "big" into out, SIGSTOPped once its partial file holds
    min_bytes: the process.  Bounded in time."""
    p = subprocess.Popen(fetch_cmd(port, udp, "-o", out, "big", ini=ini), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(p)
    part = part_of(out)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            size = part.stat().st_size
        except FileNotFoundError:
            size = 0
        if size >= min_bytes:
            os.kill(p.pid, signal.SIGSTOP)
            wait_stopped(p.pid)
            return p
        if p.poll() is not None:
            raise AssertionError(f"fetch ended before it could be stopped: {p.returncode} {p.stderr.read()!r}")
        time.sleep(0.0005)
    raise AssertionError(f"{part} did not reach {min_bytes} bytes in {limit}s")


def finish_all(ps, timeout=60):
    """SIGCONT every process, then [(returncode, stdout, stderr)], bounded."""
    for p in ps:
        os.kill(p.pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    out = []
    for p in ps:
        stdout, stderr = p.communicate(timeout=max(1, deadline - time.monotonic()))
        out.append((p.returncode, stdout, stderr))
    return out


def check_complete(out):
    """out holds the whole file "big" and no temporary file is left; removed after."""
    assert sha256_file(out) == big_sha()
    assert not part_of(out).exists() and not meta_of(out).exists()
    out.unlink()


def resume(port, udp, out, ini):
    r = subprocess.run(fetch_cmd(port, udp, "--resume", "-o", out, "big", ini=ini, timeout=5), capture_output=True,
                       timeout=120)
    assert r.returncode == EXIT_OK, r.stderr
    return r


def bad_lines(d):
    return [l for l in d.log().splitlines() if BAD_LOG.search(l)]


def wait_log(d, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in d.log():
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in the log:\n{d.log()[-3000:]}")


@pytest.fixture
def big_root(ram, request):
    """A root in the tmpfs holding "big" (sparse: costs little)."""
    root = ram / ("root-" + request.node.name.replace("[", "_").replace("]", "_"))
    root.mkdir()
    make_sparse(root / "big", BIG, BIG_MARKS)
    try:
        yield root
    finally:
        subprocess.run(["rm", "-rf", str(root)], timeout=30)


# ---------------------------------------------------------------------------
# SIGKILL of random children, then resume

@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_sigkill_random_children_then_resume(daemon_factory, big_root, ctl_ini, out_dir, procs, udp):
    port = free_port()
    d = daemon_factory(make_config(both_listeners(port, big_root, UDP_ROOMY), limits=LIMITS))
    d.allow_bad_log = True  # the children we kill; checked below
    n = 12
    outs = [out_dir / f"k{i}" for i in range(n)]
    ps = [start_stopped(port, udp, o, ctl_ini, procs) for o in outs]
    children = d.children()
    assert len(children) == n, children
    rnd = random.Random(7 + udp)
    victims = rnd.sample(children, n // 2)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    results = finish_all(ps)

    failed = []
    for out, (rc, stdout, stderr) in zip(outs, results):
        if rc == EXIT_OK:
            check_complete(out)
            continue
        # TCP: the connection closed (6); UDP: no more data (7, after -t).
        assert rc == (EXIT_TIMEOUT if udp else EXIT_PROTOCOL), stderr
        assert stderr.endswith(f"the partial file {part_of(out)} was kept: run again with --resume to "
                               f"continue\n".encode()), stderr
        assert part_of(out).exists() and meta_of(out).exists() and not out.exists()
        failed.append(out)
    assert len(failed) == len(victims), [r[0] for r in results]

    for out in failed:
        have = part_of(out).stat().st_size
        r = resume(port, udp, out, ctl_ini)
        m = RESULT_LINE.fullmatch(r.stdout)
        assert m and int(m["resumed"]) == have, r.stdout
        check_complete(out)
    d.wait_no_children()
    # The only bad lines are the children we killed, one each.
    bad = bad_lines(d)
    assert len(bad) == len(victims), bad
    for pid in victims:
        assert sum(f"child {pid} " in l and "killed by signal 9" in l for l in bad) == 1, (pid, bad)


# ---------------------------------------------------------------------------
# SIGHUP every 100 ms under load

def test_sighup_storm_under_load(daemon_factory, tmp_path, ctl_ini, out_dir):
    root = tmp_path / "root"
    root.mkdir()
    data = rand_bytes(2 * MIB + 3, 72)
    (root / "f").write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    fport, mport, eport = free_port(), free_port(), free_port(socket.SOCK_DGRAM)

    def cfg(k):
        # Each reload really changes something (the reply template, a limit)
        # and keeps every endpoint.
        return make_config(both_listeners(fport, root, UDP_ROOMY)
                           + [message_listener(mport, reply=f"v{k} %m"), echo_listener(eport)],
                           limits={**LIMITS, "idle_timeout": 10 + k % 2})

    d = daemon_factory(cfg(0))
    stop = threading.Event()
    lock = threading.Lock()
    results = {"tcp": [], "udp": [], "send": [], "echo": []}

    def fetcher(i, udp):
        k = 0
        while not stop.is_set() and k < 200:
            out = out_dir / f"{'u' if udp else 't'}{i}-{k}"
            r = subprocess.run(fetch_cmd(fport, udp, "--verify", "-o", out, "f", ini=ctl_ini, timeout=5),
                               capture_output=True, timeout=60)
            ok = r.returncode == 0 and sha256_file(out) == want
            if ok:
                out.unlink()
            with lock:
                results["udp" if udp else "tcp"].append((ok, r.returncode, r.stderr))
            k += 1

    def sender(i):
        k = 0
        while not stop.is_set() and k < 500:
            msg = f"m{i}-{k}"
            r = netlabctl("send", "-H", "127.0.0.1", "-p", mport, msg, ini=ctl_ini, timeout=30)
            ok = r.returncode == 0 and r.stdout.startswith(b"v") and r.stdout.endswith(f" {msg}\n".encode())
            with lock:
                results["send"].append((ok, r.returncode, r.stdout + r.stderr))
            k += 1

    def echoer(i):
        k = 0
        while not stop.is_set() and k < 2000:
            payload = f"e{i}-{k}".encode()
            got = udp_exchange(eport, payload, timeout=2.0)
            with lock:
                results["echo"].append((got == payload, 0, got))
            k += 1
            time.sleep(0.01)

    threads = ([threading.Thread(target=fetcher, args=(i, False)) for i in range(3)]
               + [threading.Thread(target=fetcher, args=(i, True)) for i in range(3)]
               + [threading.Thread(target=sender, args=(i,)) for i in range(2)]
               + [threading.Thread(target=echoer, args=(i,)) for i in range(2)])
    for t in threads:
        t.start()
    try:
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < 3.0:
            k += 1
            tmp = d.config.with_suffix(".new")
            tmp.write_text(cfg(k))
            os.rename(tmp, d.config)  # never a half-written config
            d.signal(signal.SIGHUP)
            # Read what netlabd notifies (RELOADING=1, READY=1) as systemd
            # would: a notify socket left full blocks its sd_notify().
            d.read_notifications(timeout=0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(90)
    assert not any(t.is_alive() for t in threads)
    assert d.proc.poll() is None
    for kind, rs in results.items():
        bad = [r for r in rs if not r[0]]
        assert rs and not bad, (kind, len(rs), bad[:3])
    log = d.log()
    assert "reload refused" not in log
    assert log.count("reloaded ") >= 10, log.count("reloaded ")


# ---------------------------------------------------------------------------
# SIGTERM with downloads in flight

def test_sigterm_long_grace_lets_transfers_finish(daemon_factory, big_root, ctl_ini, out_dir, procs):
    port = free_port()
    d = daemon_factory(make_config(both_listeners(port, big_root, UDP_ROOMY),
                                   limits={**LIMITS, "grace_period": 60}))
    outs = [out_dir / f"g{i}" for i in range(8)]
    ps = [start_stopped(port, i % 2 == 1, o, ctl_ini, procs) for i, o in enumerate(outs)]
    assert len(d.children()) == 8
    d.signal(signal.SIGTERM)
    wait_log(d, "stopped accepting; waiting up to 60s for 8 client(s)")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    results = finish_all(ps)
    assert [r[0] for r in results] == [EXIT_OK] * 8, [r[2] for r in results]
    for o in outs:
        check_complete(o)
    assert d.proc.wait(20) == 0
    log = d.log()
    assert "grace period" not in log and "ended by shutdown" not in log
    es = d.requests()
    assert len(es) == 8 and all(e["RESULT"] == "ok" for e in es), es


def test_sigterm_short_grace_ends_transfers_then_resume(daemon_factory, big_root, tmp_path, ctl_ini, out_dir,
                                                       procs):
    port = free_port()
    d = daemon_factory(make_config(both_listeners(port, big_root, UDP_ROOMY),
                                   limits={**LIMITS, "grace_period": 1}))
    outs = [out_dir / f"s{i}" for i in range(6)]
    udps = [i % 2 == 1 for i in range(6)]
    ps = [start_stopped(port, u, o, ctl_ini, procs) for u, o in zip(udps, outs)]
    assert len(d.children()) == 6
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    # grace 1 s, then SIGTERM to the children (2 s more before SIGKILL).
    assert d.proc.wait(15) == 0
    took = time.monotonic() - t0
    assert took >= 0.9, took
    assert "grace period of 1s over, ending 6 client(s)" in d.log()
    results = finish_all(ps)
    for (rc, _, stderr), out, u in zip(results, outs, udps):
        # The connection closed (TCP); a UDP transfer's child says why
        # (ERROR busy: "server busy: shutting down"), unless that datagram
        # found the stopped client's buffer full: then its port is gone.
        if u:
            assert (rc == EXIT_BUSY and b"server busy: shutting down" in stderr
                    or rc == EXIT_PROTOCOL and b"(its port is unreachable)" in stderr), stderr
        else:
            assert rc == EXIT_PROTOCOL and b"the connection closed after" in stderr, stderr
        assert stderr.endswith(b"run again with --resume to continue\n"), stderr
    # Another netlabd on the same root: every partial file resumes.
    port2 = free_port()
    daemon_factory(make_config(both_listeners(port2, big_root, UDP_ROOMY), limits=LIMITS))
    for out, u in zip(outs, udps):
        resume(port2, u, out, ctl_ini)
        check_complete(out)


# ---------------------------------------------------------------------------
# ENOSPC on the client, over UDP

def test_enospc_udp_keeps_partial(daemon_factory, tmp_path, ctl_ini, small_fs):
    root = tmp_path / "root"
    root.mkdir()
    data = rand_bytes(3 * MIB, 73)
    (root / "big").write_bytes(data)
    port = free_port()
    daemon_factory(make_config(both_listeners(port, root), limits=LIMITS))
    out = small_fs / "big"
    r = subprocess.run(fetch_cmd(port, True, "-o", out, "big", ini=ctl_ini), capture_output=True, timeout=60)
    have = check_enospc_partial(r, out, data)
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_fs)], check=True, timeout=30)
    r = resume(port, True, out, ctl_ini)
    assert int(RESULT_LINE.fullmatch(r.stdout)["resumed"]) == have
    assert out.read_bytes() == data


# ---------------------------------------------------------------------------
# the root goes away while serving

ROOT_GONE = b"netlabctl: server refused (internal-error): the file root is not available\n"
DENIED = b"netlabctl: server refused (not-permitted): cannot open: permission denied\n"


@pytest.mark.skipif(privdrop_skip_reason() is not None, reason=privdrop_skip_reason() or "")
def test_root_removed_or_unreadable_while_serving(daemons, pdir, ctl_ini, procs):
    data = rand_bytes(300_000, 74)
    root = world_readable_root(pdir, {"f": data})
    make_sparse(root / "big", BIG, BIG_MARKS)
    (root / "big").chmod(0o644)
    port, mport = free_port(), free_port()
    d = daemons(nobody_config(both_listeners(port, root, UDP_ROOMY) + [message_listener(mport)],
                              limits=LIMITS))
    outd = pdir / "out"
    outd.mkdir()

    def get(udp, name="f", out=None):
        out = out or outd / "x"
        r = subprocess.run(fetch_cmd(port, udp, "-o", out, name, ini=ctl_ini), capture_output=True, timeout=60)
        if r.returncode == 0 and name == "f":
            assert out.read_bytes() == data
            out.unlink()
        return r

    def ls():
        return netlabctl("ls", "-H", "127.0.0.1", "-p", port, ini=ctl_ini)

    for udp in (False, True):
        assert get(udp).returncode == 0
    # A download is running when the root goes away: it finishes (its file is open).
    running = start_stopped(port, False, outd / "running", ctl_ini, procs)
    away = pdir / "away"
    os.rename(root, away)
    try:
        for udp in (False, True):
            r = get(udp)
            assert (r.returncode, r.stderr) == (EXIT_REFUSED, ROOT_GONE), (udp, r.stderr)
        r = ls()
        assert (r.returncode, r.stderr) == (EXIT_REFUSED, ROOT_GONE)
        # The daemon and its other listeners are fine.
        assert netlabctl("send", "-H", "127.0.0.1", "-p", mport, "still here", ini=ctl_ini).returncode == 0
        [(rc, _, stderr)] = finish_all([running])
        assert rc == 0, stderr
        check_complete(outd / "running")
    finally:
        os.rename(away, root)
    for udp in (False, True):
        assert get(udp).returncode == 0

    # Unreadable (nobody is not the owner): refused as permission denied.
    root.chmod(0)
    try:
        for udp in (False, True):
            r = get(udp)
            assert (r.returncode, r.stderr) == (EXIT_REFUSED, DENIED), (udp, r.stderr)
        assert ls().returncode == EXIT_REFUSED
    finally:
        root.chmod(0o755)
    for udp in (False, True):
        assert get(udp).returncode == 0
    assert ls().returncode == 0
    assert d.proc.poll() is None
    es = [e["RESULT"] for e in d.requests()]
    assert es.count("internal-error") == 3 and es.count("not-permitted") == 3, es


# ---------------------------------------------------------------------------
# EMFILE in the supervisor

def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_emfile_pauses_listener_and_recovers(daemon_factory, ctl_ini):
    """With max_children = 1 held by one client, every other connection is
    a busy refusal that the supervisor keeps open (up to 1 s) for the
    client's first byte: each holds a descriptor there.  Under a low
    RLIMIT_NOFILE that runs the supervisor out of descriptors: it must log,
    stop polling the listener instead of spinning, and accept again when
    the refusals are done."""
    port = free_port()
    # Learn the supervisor's descriptor count, then give it 12 more.
    probe = daemon_factory(make_config([message_listener(port)]), name="probe")
    base = probe.fd_count()
    probe.stop()
    nofile = base + 12
    d = daemon_factory(make_config([message_listener(port)], limits={"max_children": 1, "max_per_source": 1}),
                       prefix=["prlimit", f"--nofile={nofile}:{nofile}", "--"])
    holder = hold_child(d, port)
    socks = []
    try:
        for _ in range(40):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        wait_log(d, "accept failed: Too many open files; pausing it", timeout=5)
        c0 = cpu_seconds(d.pid)
        time.sleep(1.5)
        used = cpu_seconds(d.pid) - c0
        # Spinning on accept() would take ~1.5 s of CPU; the pause takes ~nothing.
        assert used < 0.5, used
        assert d.fd_count() <= nofile
    finally:
        for s in socks:
            s.close()
        holder.close()
    d.wait_no_children()
    # Descriptors are free again: the listener serves.
    deadline = time.monotonic() + 10
    while True:
        r = netlabctl("send", "-H", "127.0.0.1", "-p", port, "back", ini=ctl_ini)
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.returncode == 0 and r.stdout == b"message received: back\n", r.stderr
    assert d.proc.poll() is None
    # Bounded logging: at most one warning per 10 s, not one per pause.
    pauses = d.log().count("pausing it for 100 ms")
    assert 1 <= pauses <= 2, pauses
