"""`netlabctl fetch` and `netlabctl ls` against netlabd (and a few scripted
servers): byte-identical downloads, resume that never corrupts (after the
client or the server's child is killed, after the file changed, with a
corrupted partial file), the temporary files, exit codes, --json, -o -,
--offset, --discard, --verify, ENOSPC, and ls.

Large outputs go to a private tmpfs (module scope, unmounted at teardown) so
that a 1 GiB download costs memory bandwidth, not disk writes; each is
removed as soon as it has been checked.
"""
import hashlib
import json
import os
import pty
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import conftest
from conftest import (BAD_LOG, NETLABCTL, file_listener, free_port, frame, hold_child, make_config, make_sparse,
                      netlabctl, sha256_file, sparse_sha256, start_file_daemon)

EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_CONNECT, EXIT_REFUSED, EXIT_BUSY, EXIT_PROTOCOL, EXIT_TIMEOUT, \
    EXIT_LOCAL_IO, EXIT_CHANGED, EXIT_VERIFY = range(11)
MIB = 1 << 20
GIB = 1 << 30
SPARSE_MARKS = {0: b"first bytes", 65535: b"edge", 300 * MIB + 1: b"in the middle", GIB - 3: b"end"}
SPARSE_SHA = None  # computed once


def sparse_sha():
    global SPARSE_SHA
    if SPARSE_SHA is None:
        SPARSE_SHA = sparse_sha256(GIB, SPARSE_MARKS)
    return SPARSE_SHA


RESULT_LINE = re.compile(rb"fetched (?P<path>\S+) -> (?P<out>\S+): (?P<bytes>\d+) bytes in \d+\.\d\d s "
                         rb"\(\d+\.\d MB/s\)(?:, resumed at (?P<resumed>\d+))?(?P<restarted>, started over)?"
                         rb"(?:, sha256 (?P<sha>[0-9a-f]{64}))?\n")


@pytest.fixture(scope="module")
def ram(tmp_path_factory):
    """A private tmpfs for outputs (we are root); unmounted at teardown."""
    d = tmp_path_factory.mktemp("ram")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3g,mode=0755", "tmpfs", str(d)], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], timeout=30)


@pytest.fixture
def out_dir(ram, request):
    d = ram / re.sub(r"[^\w.-]", "_", request.node.name)[:100]
    d.mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def srv(daemon_factory, tmp_path):
    """netlabd with one file listener; d.root is its root."""
    return start_file_daemon(daemon_factory, tmp_path, limits={"idle_timeout": 10})


def fetch(d, *args, ini, port=None, **kw):
    return netlabctl("fetch", "-H", "127.0.0.1", "-p", port or d.port, *args, ini=ini, **kw)


def start_fetch(d, *args, ini):
    cmd = [str(NETLABCTL), f"--config={ini}", "fetch", "-H", "127.0.0.1", "-p", str(d.port), *map(str, args)]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def part_of(out):
    return Path(str(out) + ".netlab-part")


def meta_of(out):
    return Path(str(out) + ".netlab-meta")


def stop_mid_transfer(proc, part, min_bytes=4 * MIB, timeout=20.0):
    """Wait until part holds at least min_bytes, then SIGSTOP proc.  Returns
    the size then.  Bounded: fails if proc ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            size = part.stat().st_size
        except FileNotFoundError:
            size = -1
        if size >= min_bytes:
            os.kill(proc.pid, signal.SIGSTOP)
            wait_stopped(proc.pid)
            return part.stat().st_size
        if proc.poll() is not None:
            raise AssertionError(f"fetch ended before it was stopped mid-transfer: {proc.returncode} "
                                 f"{proc.stderr.read()!r}")
        time.sleep(0.0005)
    raise AssertionError(f"{part} did not reach {min_bytes} bytes in {timeout}s")


def wait_stopped(pid, timeout=10.0):
    """Wait until pid is in the stopped state (a write in progress when
    SIGSTOP came has then completed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("T", "t"):
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} did not stop")


def finish(proc, timeout=30):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def kill_proc(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture
def procs():
    """Processes a test starts; killed (by pid) at teardown if still running."""
    made = []
    yield made
    for p in made:
        try:
            os.kill(p.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        kill_proc(p)
        for f in (p.stdout, p.stderr):
            if f and not f.closed:
                f.close()


def stopped_fetch(d, name, out, ini, procs, min_bytes=4 * MIB, start=None):
    """A fetch of `name` into out, started by start (start_fetch() by
    default; test_xfer.py passes its --udp one) and SIGSTOPped mid-transfer
    (stop_mid_transfer()): (the process, the partial size then)."""
    p = (start or start_fetch)(d, "-o", out, name, ini=ini)
    procs.append(p)
    return p, stop_mid_transfer(p, part_of(out), min_bytes)


def interrupted_fetch(d, name, out, ini, procs, min_bytes=4 * MIB, start=None):
    """A fetch of `name` (see stopped_fetch()) SIGKILLed mid-transfer:
    returns the partial size."""
    p, size = stopped_fetch(d, name, out, ini, procs, min_bytes, start)
    kill_proc(p)
    assert part_of(out).stat().st_size == size
    assert meta_of(out).exists() and not out.exists()
    return size


def flip_bit(path, pos, bit=0x40):
    """Flip one bit of the byte at pos in the file at path, in place."""
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ bit]))


def entry_at(d, offset, timeout=10.0):
    """The request entry with OFFSET=offset (log order is not request order:
    a killed client's child may log late)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in d.requests() if e.get("OFFSET") == str(offset)]
        if found:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no entry at offset {offset}:\n{d.log()[-3000:]}")


def rand_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def check_whole_fetch(r, name, out, size, sha):
    """r, a finished `fetch -o out name` (not on a terminal), got the whole
    file: exit 0, nothing at all on stderr (no progress bar), the result
    line, size bytes with SHA-256 sha in out, no temporary files left."""
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stderr == b""
    m = RESULT_LINE.fullmatch(r.stdout)
    assert m, r.stdout
    assert (m["path"], m["out"], int(m["bytes"])) == (name.encode(), str(out).encode(), size)
    assert m["resumed"] is None and m["restarted"] is None
    assert out.stat().st_size == size
    assert sha256_file(out) == sha
    assert not part_of(out).exists() and not meta_of(out).exists()


def check_to_stdout(base, data, cwd, timeout):
    """base (a fetch command line ending in `-o -`) run on file "f", whole
    and from offset 1000: the data on stdout, nothing on stderr."""
    r = subprocess.run(base + ["f"], capture_output=True, timeout=timeout, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data and r.stderr == b""
    r = subprocess.run(base + ["--offset", "1000", "f"], capture_output=True, timeout=timeout, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data[1000:]


def fetch_at_once(base, n, out_dir, sha, timeout):
    """n fetches of file "f" (base: the command line up to its options),
    each with --verify into out_dir/fI, all started at once: every one
    ends with 0, nothing on stderr and an output with SHA-256 sha."""
    cmds = [base + ["--verify", "-o", str(out_dir / f"f{i}"), "f"] for i in range(n)]
    ps = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in cmds]
    try:
        results = [(p.wait(timeout), p.stderr.read()) for p in ps]
    finally:
        for p in ps:
            kill_proc(p)
            p.stdout.close()
            p.stderr.close()
    assert results == [(0, b"")] * n
    for i in range(n):
        assert sha256_file(out_dir / f"f{i}") == sha


def check_resumed_json(r, out, have, size, sha):
    """r, a finished `fetch --resume --json -o out` after a partial download
    of have bytes, completed the size-byte file (SHA-256 sha): removes out."""
    assert r.returncode == EXIT_OK, r.stderr
    obj = json.loads(r.stdout)
    assert (obj["resumed"], obj["restarted"], obj["offset"], obj["bytes"], obj["size"]) == \
        (True, False, have, size - have, size)
    assert sha256_file(out) == sha
    assert not part_of(out).exists() and not meta_of(out).exists()
    out.unlink()


def check_resume_file_replaced(d, fetch_fn, name, out, have, ini, no_restart, seed):
    """The server's file `name` is replaced (200000 new bytes) after a
    partial download of have bytes into out, then fetch_fn (fetch() here,
    test_xfer.py's ufetch()) resumes: by default the client says so and
    starts over (getting the new file); with --no-restart it stops with 9
    and keeps the partial file untouched.  The same texts both ways."""
    part_sha = sha256_file(part_of(out))
    new = rand_bytes(200_000, seed)
    tmp = d.root / (name + ".new")
    tmp.write_bytes(new)
    os.rename(tmp, d.root / name)
    args = ["--resume"] + (["--no-restart"] if no_restart else [])
    r = fetch_fn(d, *args, "-o", out, name, ini=ini)
    if no_restart:
        assert r.returncode == EXIT_CHANGED, r.stderr
        assert r.stderr == (b"netlabctl: server refused (changed): the file changed on the server since the partial "
                            b"download (now 200000 bytes); the partial file " + bytes(part_of(out))
                            + b" was kept (run without --resume to start over)\n")
        assert r.stdout == b""
        assert part_of(out).stat().st_size == have and sha256_file(part_of(out)) == part_sha
        assert meta_of(out).exists() and not out.exists()
    else:
        assert r.returncode == EXIT_OK, r.stderr
        assert r.stderr == b"netlabctl: the file changed on the server; starting over\n"
        m = RESULT_LINE.fullmatch(r.stdout)
        assert m and m["restarted"] and int(m["bytes"]) == 200_000, r.stdout
        assert out.read_bytes() == new
        assert not part_of(out).exists() and not meta_of(out).exists()


# ---------------------------------------------------------------------------
# whole files, offsets, output forms

@pytest.mark.parametrize("name", ["empty", "one", "mib", "sparse"])
def test_fetch_whole(srv, ctl_ini, out_dir, name):
    data = {"empty": b"", "one": b"1", "mib": rand_bytes(MIB, 3)}.get(name)
    if data is None:
        make_sparse(srv.root / name, GIB, SPARSE_MARKS)
        want, size = sparse_sha(), GIB
    else:
        (srv.root / name).write_bytes(data)
        want, size = hashlib.sha256(data).hexdigest(), len(data)
    out = out_dir / "out.bin"
    r = fetch(srv, "-o", out, name, ini=ctl_ini, timeout=60)
    check_whole_fetch(r, name, out, size, want)
    out.unlink()
    e = srv.wait_requests(1)[0]
    assert (e["RESULT"], e["FILE"], e["OFFSET"]) == ("ok", name, "0")


def test_fetch_default_output_name(srv, ctl_ini, tmp_path):
    (srv.root / "sub").mkdir()
    (srv.root / "sub" / "f.txt").write_bytes(b"in sub\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cmd = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "-H", "127.0.0.1", "-p", str(srv.port), "sub/f.txt"]
    r = subprocess.run(cmd, capture_output=True, timeout=30, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert os.listdir(cwd) == ["f.txt"]
    assert (cwd / "f.txt").read_bytes() == b"in sub\n"
    # -o DIR/ puts the default name in DIR.
    (cwd / "into").mkdir()
    r = subprocess.run(cmd[:-1] + ["-o", "into", "sub/f.txt"], capture_output=True, timeout=30, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert (cwd / "into" / "f.txt").read_bytes() == b"in sub\n"


@pytest.mark.parametrize("offset", [0, 1, 65536, MIB - 1, MIB])
def test_fetch_offset(srv, ctl_ini, out_dir, offset):
    data = rand_bytes(MIB, 4)
    (srv.root / "mib").write_bytes(data)
    out = out_dir / "part.bin"
    r = fetch(srv, "--offset", offset, "-o", out, "mib", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    assert out.read_bytes() == data[offset:]
    assert srv.wait_requests(1)[0]["OFFSET"] == str(offset)


def test_fetch_offset_sparse(srv, ctl_ini, out_dir):
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    out = out_dir / "tail.bin"
    r = fetch(srv, "--offset", GIB - 70000, "-o", out, "sparse", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert sha256_file(out) == sparse_sha256(GIB, SPARSE_MARKS, GIB - 70000)


def test_fetch_offset_past_end(srv, ctl_ini, out_dir):
    (srv.root / "one").write_bytes(b"1")
    out = out_dir / "x"
    r = fetch(srv, "--offset", 2, "-o", out, "one", ini=ctl_ini)
    assert r.returncode == EXIT_REFUSED
    assert r.stderr == b"netlabctl: server refused (range): offset 2 is past the end of the file (1 bytes)\n"
    assert os.listdir(out_dir) == []  # nothing left behind


def test_fetch_to_stdout(srv, ctl_ini, tmp_path):
    data = rand_bytes(MIB + 17, 5)
    (srv.root / "f").write_bytes(data)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    base = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "-H", "127.0.0.1", "-p", str(srv.port), "-o", "-"]
    check_to_stdout(base, data, cwd, timeout=30)
    # Through a pipe to another process, too.
    with subprocess.Popen(base + ["f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd) as p:
        got = hashlib.sha256()
        while True:
            b = p.stdout.read(65536)
            if not b:
                break
            got.update(b)
        assert p.wait(30) == 0
    assert got.hexdigest() == hashlib.sha256(data).hexdigest()
    assert os.listdir(cwd) == []


def test_fetch_discard(srv, ctl_ini, tmp_path):
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cmd = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "-H", "127.0.0.1", "-p", str(srv.port), "--discard",
           "sparse"]
    r = subprocess.run(cmd, capture_output=True, timeout=60, cwd=cwd)
    assert r.returncode == 0, r.stderr
    m = RESULT_LINE.fullmatch(r.stdout)
    assert m and m["out"] == b"(discarded)" and int(m["bytes"]) == GIB, r.stdout
    assert r.stderr == b""
    assert os.listdir(cwd) == []
    e = srv.wait_requests(1)[0]
    assert e["RESULT"] == "ok" and int(e["BYTES_OUT"]) > GIB


@pytest.mark.parametrize("name", ["mib", "sparse"])
def test_fetch_verify(srv, ctl_ini, out_dir, name):
    if name == "mib":
        (srv.root / name).write_bytes(rand_bytes(MIB, 6))
    else:
        make_sparse(srv.root / name, GIB, SPARSE_MARKS)
    out = out_dir / "v.bin"
    r = fetch(srv, "--verify", "-o", out, name, ini=ctl_ini, timeout=60)
    assert r.returncode == 0, r.stderr
    m = RESULT_LINE.fullmatch(r.stdout)
    assert m and m["sha"], r.stdout
    if name == "sparse":
        assert m["sha"].decode() == sparse_sha() == sha256_file(out)
    else:
        # The digest printed is what sha256sum says of the result and of the source.
        s = subprocess.run(["sha256sum", str(out), str(srv.root / name)], capture_output=True, timeout=60,
                           check=True)
        assert [l.split()[0] for l in s.stdout.splitlines()] == [m["sha"], m["sha"]]
    out.unlink()


def test_fetch_json(srv, ctl_ini, out_dir):
    data = rand_bytes(100_000, 7)
    (srv.root / "j.bin").write_bytes(data)
    out = out_dir / "j.bin"
    r = fetch(srv, "--json", "--verify", "-o", out, "j.bin", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    obj = json.loads(r.stdout)
    assert set(obj) == {"command", "status", "exit_code", "format", "server", "port", "path", "output", "size",
                        "offset", "bytes", "resumed", "restarted", "duration_ms", "rate_bytes_per_sec", "sha256"}
    assert (obj["command"], obj["status"], obj["exit_code"], obj["format"]) == ("fetch", "ok", 0, "netlab")
    assert (obj["server"], obj["port"], obj["path"], obj["output"]) == ("127.0.0.1", srv.port, "j.bin", str(out))
    assert (obj["size"], obj["offset"], obj["bytes"], obj["resumed"], obj["restarted"]) == \
        (100_000, 0, 100_000, False, False)
    assert obj["sha256"] == hashlib.sha256(data).hexdigest()
    assert obj["duration_ms"] >= 0 and obj["rate_bytes_per_sec"] >= 0
    # An error is one JSON object too (and the message on stderr).
    r = fetch(srv, "--json", "-o", out_dir / "nope", "nope", ini=ctl_ini)
    assert r.returncode == EXIT_REFUSED
    obj = json.loads(r.stdout)
    assert obj == {"command": "fetch", "status": "not-found", "exit_code": 4,
                   "error": "server refused (not-found): cannot open: no such file or directory"}
    assert r.stderr == b"netlabctl: server refused (not-found): cannot open: no such file or directory\n"


def test_fetch_progress_bar_on_a_terminal(srv, ctl_ini, out_dir):
    """On a terminal, stderr shows the progress bar; the result line still
    goes to stdout."""
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    out = out_dir / "tty.bin"
    master, slave = pty.openpty()
    try:
        cmd = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "-H", "127.0.0.1", "-p", str(srv.port), "-o",
               str(out), "sparse"]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        slave = None
        seen = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    b = os.read(master, 4096)
                except OSError:  # EIO: the last writer is gone
                    break
                if not b:
                    break
                seen += b
            elif p.poll() is not None:
                break
        out_text, _ = p.communicate(timeout=30)
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    assert p.returncode == 0
    assert RESULT_LINE.fullmatch(out_text), out_text
    assert re.search(rb"\[=*>? *\] +\d+%.*B/s +ETA \d+:\d\d", seen), seen[-500:]
    out.unlink()


# ---------------------------------------------------------------------------
# the temporary files

def test_temp_files_during_and_after(srv, ctl_ini, out_dir, procs):
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    out = out_dir / "big.bin"
    p, _ = stopped_fetch(srv, "sparse", out, ctl_ini, procs)
    try:
        assert part_of(out).exists() and meta_of(out).exists() and not out.exists()
        meta = meta_of(out).read_text()
        assert meta.startswith("netlab-partial 1\n"), meta
        assert "\npath sparse\n" in meta
    finally:
        os.kill(p.pid, signal.SIGCONT)
    rc, stdout, stderr = finish(p, 60)
    assert rc == 0, stderr
    assert stderr == b""
    assert sorted(os.listdir(out_dir)) == ["big.bin"]
    assert sha256_file(out) == sparse_sha()
    out.unlink()


def test_second_fetch_into_same_output_refused(srv, ctl_ini, out_dir, procs):
    """While one fetch writes OUT.netlab-part (locked), a second one into the
    same OUT stops with exit 8 and leaves the first one's data alone."""
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    out = out_dir / "same.bin"
    p, _ = stopped_fetch(srv, "sparse", out, ctl_ini, procs)
    try:
        for args in ((), ("--resume",)):
            r = fetch(srv, *args, "-o", out, "sparse", ini=ctl_ini)
            assert r.returncode == EXIT_LOCAL_IO, r.stderr
            assert r.stderr == f"netlabctl: {part_of(out)} is in use by another netlabctl fetch\n".encode()
    finally:
        os.kill(p.pid, signal.SIGCONT)
    rc, _, stderr = finish(p, 60)
    assert rc == 0, stderr
    assert sha256_file(out) == sparse_sha()
    out.unlink()


def test_sigint_keeps_partial_then_resume(srv, ctl_ini, out_dir, procs):
    """^C mid-transfer: the bar is erased, the message says how far it got,
    the partial file is kept, netlabctl dies of SIGINT; --resume finishes."""
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    out = out_dir / "int.bin"
    p, _ = stopped_fetch(srv, "sparse", out, ctl_ini, procs)
    os.kill(p.pid, signal.SIGINT)
    os.kill(p.pid, signal.SIGCONT)
    rc, stdout, stderr = finish(p, 30)
    have = part_of(out).stat().st_size
    assert rc == -signal.SIGINT, (rc, stderr)
    assert stdout == b""
    assert stderr == (f"netlabctl: interrupted after {have} of {GIB} bytes; the partial file {part_of(out)} was "
                      f"kept: run again with --resume to continue\n").encode()
    assert meta_of(out).exists() and not out.exists()
    r = fetch(srv, "--resume", "-o", out, "sparse", ini=ctl_ini, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(RESULT_LINE.fullmatch(r.stdout)["resumed"]) == have
    assert sha256_file(out) == sparse_sha()
    out.unlink()


# ---------------------------------------------------------------------------
# resume that never corrupts

def test_resume_after_client_killed(srv, ctl_ini, out_dir, procs):
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    out = out_dir / "r.bin"
    have = interrupted_fetch(srv, "sparse", out, ctl_ini, procs)
    assert 0 < have < GIB
    r = fetch(srv, "--resume", "--json", "-o", out, "sparse", ini=ctl_ini, timeout=60)
    check_resumed_json(r, out, have, GIB, sparse_sha())
    assert entry_at(srv, have)["RESULT"] == "ok"


def test_resume_after_server_child_killed(srv, ctl_ini, out_dir, procs):
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    out = out_dir / "k.bin"
    p, _ = stopped_fetch(srv, "sparse", out, ctl_ini, procs)
    children = srv.children()
    assert len(children) == 1, children
    os.kill(children[0], signal.SIGKILL)
    srv.wait_no_children()
    os.kill(p.pid, signal.SIGCONT)
    rc, stdout, stderr = finish(p, 60)
    have = part_of(out).stat().st_size
    assert rc == EXIT_PROTOCOL, stderr
    assert stderr == (f"netlabctl: the connection closed after {have} of {GIB} bytes; the partial file "
                      f"{part_of(out)} was kept: run again with --resume to continue\n").encode()
    assert meta_of(out).exists() and not out.exists()

    r = fetch(srv, "--resume", "-o", out, "sparse", ini=ctl_ini, timeout=60)
    assert r.returncode == 0, r.stderr
    m = RESULT_LINE.fullmatch(r.stdout)
    assert m and int(m["resumed"]) == have and int(m["bytes"]) == GIB - have, r.stdout
    assert sha256_file(out) == sparse_sha()
    out.unlink()
    # The only bad line in the log is the child we killed.
    bad = [l for l in srv.log().splitlines() if BAD_LOG.search(l)]
    assert len(bad) == 1 and f"child {children[0]} " in bad[0] and "killed by signal 9" in bad[0], bad
    srv.allow_bad_log = True


@pytest.mark.parametrize("no_restart", [False, True])
def test_resume_file_changed(srv, ctl_ini, out_dir, procs, no_restart):
    """The server's file is replaced after a partial download: by default the
    client says so and starts over (getting the new file); with --no-restart
    it stops with 9 and keeps the partial file untouched."""
    make_sparse(srv.root / "f", GIB, SPARSE_MARKS)
    out = out_dir / "c.bin"
    have = interrupted_fetch(srv, "f", out, ctl_ini, procs)
    check_resume_file_replaced(srv, fetch, "f", out, have, ctl_ini, no_restart, seed=8)
    assert entry_at(srv, have)["RESULT"] == "changed"


def test_resume_file_rewritten_in_place(srv, ctl_ini, out_dir, procs):
    """The same inode, its first bytes unchanged but truncated and written
    past them: the validator changed, the client starts over and ends with
    the new whole file."""
    data = rand_bytes(MIB, 10)
    make_sparse(srv.root / "f", GIB, SPARSE_MARKS)
    out = out_dir / "a.bin"
    interrupted_fetch(srv, "f", out, ctl_ini, procs)
    os.truncate(srv.root / "f", 2 * MIB)  # smaller, so the restart is quick
    with open(srv.root / "f", "r+b") as f:
        f.seek(MIB)
        f.write(data)
    r = fetch(srv, "--resume", "-o", out, "f", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b"netlabctl: the file changed on the server; starting over\n"
    assert out.read_bytes() == (srv.root / "f").read_bytes()


@pytest.mark.parametrize("no_restart", [False, True])
def test_resume_corrupted_partial(srv, ctl_ini, out_dir, procs, no_restart):
    """A byte flipped in the last 64 KiB of the partial file: the server says
    mismatch; the client starts over (or stops with 9)."""
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    out = out_dir / "m.bin"
    have = interrupted_fetch(srv, "sparse", out, ctl_ini, procs)
    flip_bit(part_of(out), have - 1000)
    args = ["--resume"] + (["--no-restart"] if no_restart else [])
    r = fetch(srv, *args, "-o", out, "sparse", ini=ctl_ini, timeout=60)
    tail = min(have, 65536)
    if no_restart:
        assert r.returncode == EXIT_CHANGED, r.stderr
        assert r.stderr == (f"netlabctl: server refused (mismatch): the {tail} bytes before offset {have} differ "
                            f"from the server's; the partial file {part_of(out)} was kept (run without --resume "
                            f"to start over)\n").encode()
        assert part_of(out).stat().st_size == have and not out.exists()
    else:
        assert r.returncode == 0, r.stderr
        assert r.stderr == b"netlabctl: the partial file's last bytes differ from the server's file; starting over\n"
        assert RESULT_LINE.fullmatch(r.stdout)["restarted"]
        assert sha256_file(out) == sparse_sha()
        assert not part_of(out).exists() and not meta_of(out).exists()
        out.unlink()
    assert entry_at(srv, have)["RESULT"] == "mismatch"


def test_resume_without_meta_file(srv, ctl_ini, out_dir):
    """No OUT.netlab-meta (no validator): the resume rests on the tail hash
    alone, which still proves the partial data."""
    data = rand_bytes(3 * MIB, 13)
    (srv.root / "f").write_bytes(data)
    out = out_dir / "f"
    part_of(out).write_bytes(data[:MIB + 5])
    r = fetch(srv, "--resume", "-o", out, "f", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    assert int(RESULT_LINE.fullmatch(r.stdout)["resumed"]) == MIB + 5
    assert out.read_bytes() == data
    # A partial file longer than the server's file: range; with --no-restart, 9.
    part_of(out).write_bytes(data + b"more")
    r = fetch(srv, "--resume", "--no-restart", "-o", out, "f", ini=ctl_ini)
    assert r.returncode == EXIT_CHANGED, r.stderr
    assert r.stderr == (f"netlabctl: server refused (range): offset {len(data) + 4} is past the end of the file "
                        f"({len(data)} bytes); the partial file {part_of(out)} was kept (run without --resume to "
                        f"start over)\n").encode()
    # ... and by default the client starts over.
    r = fetch(srv, "--resume", "-o", out, "f", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b"netlabctl: the partial file is longer than the server's file; starting over\n"
    assert out.read_bytes() == data


def test_meta_for_another_path_is_ignored(srv, ctl_ini, out_dir, procs):
    """A meta file about another PATH is ignored with a message; the tail hash
    still decides."""
    make_sparse(srv.root / "sparse", GIB, SPARSE_MARKS)
    out = out_dir / "o.bin"
    have = interrupted_fetch(srv, "sparse", out, ctl_ini, procs)
    os.link(srv.root / "sparse", srv.root / "other")
    r = fetch(srv, "--resume", "-o", out, "other", ini=ctl_ini, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (f"netlabctl: ignoring {meta_of(out)}: it is about another file; resuming on the tail hash "
                        f"alone\n").encode()
    assert int(RESULT_LINE.fullmatch(r.stdout)["resumed"]) == have
    assert sha256_file(out) == sparse_sha()
    out.unlink()


def test_output_to_dev_null(srv, ctl_ini):
    (srv.root / "f").write_bytes(rand_bytes(MIB, 14))
    r = fetch(srv, "-o", "/dev/null", "f", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert RESULT_LINE.fullmatch(r.stdout)["out"] == b"/dev/null"
    assert not Path("/dev/null.netlab-part").exists()


def test_resume_without_partial_is_a_fresh_download(srv, ctl_ini, out_dir):
    (srv.root / "f").write_bytes(b"fresh\n")
    out = out_dir / "f"
    r = fetch(srv, "--resume", "-o", out, "f", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"fresh\n"
    m = RESULT_LINE.fullmatch(r.stdout)
    assert m and m["resumed"] is None


def test_changed_during_transfer(srv, ctl_ini, out_dir, procs):
    """The file is touched while the client is stopped mid-transfer: FILE_END
    says changed; the client does not keep the data and starts over."""
    p_file = srv.root / "f"
    make_sparse(p_file, 512 * MIB, {0: b"x"})
    out = out_dir / "d.bin"
    p, _ = stopped_fetch(srv, "f", out, ctl_ini, procs)
    # Replace the contents but keep the size: only the validator can tell.
    with open(p_file, "r+b") as f:
        f.write(b"y")
    os.truncate(p_file, 512 * MIB)
    os.kill(p.pid, signal.SIGCONT)
    rc, stdout, stderr = finish(p, 60)
    assert rc == 0, stderr
    assert stderr == b"netlabctl: the file changed on the server during the transfer; starting over\n"
    m = RESULT_LINE.fullmatch(stdout)
    assert m and m["restarted"], stdout
    assert sha256_file(out) == sparse_sha256(512 * MIB, {0: b"y"})
    out.unlink()
    assert [e["RESULT"] for e in srv.wait_requests(2)] == ["changed", "ok"]


def test_changed_during_transfer_to_stdout(srv, ctl_ini, procs):
    """With -o - the data cannot be taken back: exit 9 and a clear error."""
    p_file = srv.root / "f"
    make_sparse(p_file, 512 * MIB, {0: b"x"})
    cmd = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "-H", "127.0.0.1", "-p", str(srv.port), "-o", "-", "f"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(p)
    first = p.stdout.read(MIB)  # the client is now mid-transfer, held by this pipe
    assert len(first) == MIB
    with open(p_file, "ab") as f:
        f.write(b"more")
    got = len(first)
    while True:  # bounded: 512 MiB
        b = p.stdout.read(1 << 20)
        if not b:
            break
        got += len(b)
    assert p.wait(30) == EXIT_CHANGED
    assert got == 512 * MIB
    assert p.stderr.read() == (b"netlabctl: server refused (changed): the file changed on the server during the "
                               b"transfer; the data received cannot be trusted\n")


# ---------------------------------------------------------------------------
# local errors: ENOSPC keeps the partial file resumable

@pytest.fixture
def small_fs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], timeout=30)


def check_enospc_partial(r, out, data):
    """A fetch that ran out of space: exit 8, the message, and a partial file
    (with its meta file) that is a true prefix. Returns its length."""
    assert r.returncode == EXIT_LOCAL_IO, r.stderr
    have = part_of(out).stat().st_size
    assert 0 < have < len(data)
    assert r.stderr == (f"netlabctl: writing {part_of(out)} failed after {have} of {len(data)} bytes: No space "
                        f"left on device; the partial file {part_of(out)} was kept: run again with --resume to "
                        f"continue\n").encode()
    assert part_of(out).read_bytes() == data[:have]
    assert meta_of(out).exists() and not out.exists()
    return have


def test_enospc_keeps_partial(srv, ctl_ini, small_fs):
    data = rand_bytes(3 * MIB, 11)
    (srv.root / "big").write_bytes(data)
    out = small_fs / "big"
    r = fetch(srv, "-o", out, "big", ini=ctl_ini)
    have = check_enospc_partial(r, out, data)
    # Room again: the resume completes it.
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_fs)], check=True, timeout=30)
    r = fetch(srv, "--resume", "-o", out, "big", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert int(RESULT_LINE.fullmatch(r.stdout)["resumed"]) == have
    assert out.read_bytes() == data


# ---------------------------------------------------------------------------
# exit codes

class ScriptedServer:
    """Accepts one connection on 127.0.0.1, reads one netlab frame (bounded),
    sends `answer` (bytes), then closes (or stays silent if answer is None
    until stopped)."""

    def __init__(self, answer):
        self.answer = answer
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + 20
        conn = None
        while conn is None and time.monotonic() < deadline and not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
        if conn is None:
            return
        with conn:
            conn.settimeout(5)
            try:
                head = conftest.recv_exact(conn, 12)
                if len(head) == 12:
                    conftest.recv_exact(conn, int.from_bytes(head[8:12], "big"))
                if self.answer is None:
                    self.stop.wait(20)
                    return
                conn.sendall(self.answer)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def scripted():
    made = []

    def make(answer):
        s = ScriptedServer(answer)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def info_body(size, offset=0, flags=0, validator=b"\x07" * 32):
    return (bytes([1, flags]) + size.to_bytes(8, "big") + offset.to_bytes(8, "big")
            + (size - offset).to_bytes(8, "big") + (1_700_000_000).to_bytes(8, "big") + (0).to_bytes(4, "big")
            + validator)


def test_exit_verify_failed(scripted, ctl_ini, out_dir):
    """A server whose digest does not match the data: exit 10, nothing kept."""
    srv = scripted(frame(0x20, info_body(5, flags=1)) + b"hello" + frame(0x21, b"\x20" + b"\x00" * 32))
    out = out_dir / "v"
    r = netlabctl("fetch", "-H", "127.0.0.1", "-p", srv.port, "--verify", "-o", out, "v", ini=ctl_ini)
    assert r.returncode == EXIT_VERIFY, r.stderr
    want = hashlib.sha256(b"hello").hexdigest()
    assert r.stderr == (f"netlabctl: the downloaded data is wrong: its SHA-256 is {want}, the server's file has "
                        f"{'00' * 32}; {part_of(out)} was removed (run again to download it afresh)\n").encode()
    assert os.listdir(out_dir) == []


@pytest.mark.parametrize("answer, code, text", [
    (b"HTTP/1.0 400 Bad Request\r\n\r\n", EXIT_PROTOCOL,
     b"netlabctl: the server did not answer in netlab's format (a lab-style server? try --lab); it sent "
     b"\"HTTP/1.0 400\"\n"),
    (b"", EXIT_PROTOCOL, b"netlabctl: the server closed the connection without sending an answer\n"),
    (frame(0x20, info_body(10)) + b"12345", EXIT_PROTOCOL, None),  # cut short
    (frame(0x20, b"nope", status=99), EXIT_REFUSED, b"netlabctl: server refused (unknown): nope\n"),
    (frame(0x20, b"busy now", status=3), EXIT_BUSY, b"netlabctl: server refused (busy): busy now\n"),
    (frame(0x20, info_body(5), version=2), EXIT_PROTOCOL,
     b"netlabctl: the server answered with protocol version 2; this netlabctl speaks 1\n"),
    (frame(0x20, info_body(5)) + b"hello" + frame(0x21, b"\x00") + b"extra", EXIT_OK, b""),
])
def test_exit_scripted(scripted, ctl_ini, out_dir, answer, code, text):
    srv = scripted(answer)
    out = out_dir / "s"
    r = netlabctl("fetch", "-H", "127.0.0.1", "-p", srv.port, "-o", out, "s", ini=ctl_ini)
    assert r.returncode == code, r.stderr
    if text is not None:
        assert r.stderr == text
    if code == EXIT_OK:
        assert out.read_bytes() == b"hello"


def test_exit_timeout(scripted, ctl_ini, out_dir):
    srv = scripted(None)
    t0 = time.monotonic()
    r = netlabctl("fetch", "-H", "127.0.0.1", "-p", srv.port, "-t", "1", "-o", out_dir / "t", "t", ini=ctl_ini)
    assert r.returncode == EXIT_TIMEOUT, r.stderr
    assert r.stderr == b"netlabctl: no data from the server for 1 s while waiting for an answer\n"
    assert time.monotonic() - t0 < 5
    assert os.listdir(out_dir) == []


def test_exit_codes_netlabd(daemon_factory, tmp_path, ctl_ini, out_dir):
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_bytes(b"f")
    os.mkfifo(root / "fifo")
    os.symlink("/etc/passwd", root / "passwd")
    port = free_port()
    d = daemon_factory(make_config([file_listener(port, root)], limits={"max_children": 1}))

    def run(*args):
        return netlabctl("fetch", "-H", "127.0.0.1", "-p", port, *args, ini=ctl_ini)

    cases = [
        (("-o", out_dir / "x", "nope"), EXIT_REFUSED,
         b"netlabctl: server refused (not-found): cannot open: no such file or directory\n"),
        (("-o", out_dir / "x", "fifo"), EXIT_REFUSED, b"netlabctl: server refused (not-permitted): not a regular file\n"),
        (("-o", out_dir / "x", "passwd"), EXIT_REFUSED,
         b"netlabctl: server refused (not-permitted): cannot open: the path leads outside the root\n"),
        (("-o", out_dir / "x", ".hidden"), EXIT_REFUSED,
         b"netlabctl: server refused (not-found): cannot open: no such file or directory\n"),
        (("-o", tmp_path / "no" / "such" / "dir", "f"), EXIT_LOCAL_IO, None),
    ]
    for args, code, text in cases:
        d.wait_no_children()  # max_children = 1: the last child must be gone
        r = run(*args)
        assert r.returncode == code, (args, r.stderr)
        if text is not None:
            assert r.stderr == text, args
        assert r.stdout == b""
        assert os.listdir(out_dir) == [], args  # a refusal leaves no file behind

    d.wait_no_children()
    holder = hold_child(d, port)
    try:
        r = run("-o", out_dir / "x", "f")
        assert r.returncode == EXIT_BUSY, r.stderr
        assert r.stderr == (b"netlabctl: server refused (busy): server busy: all 1 client slots are in use, "
                            b"try again later\n")
    finally:
        holder.close()


def test_exit_connect(ctl_ini, out_dir):
    port = free_port()  # nothing listens there
    r = netlabctl("fetch", "-H", "127.0.0.1", "-p", port, "-o", out_dir / "x", "f", ini=ctl_ini)
    assert r.returncode == EXIT_CONNECT, r.stderr
    assert r.stderr.startswith(b"netlabctl: ") and b"refused" in r.stderr.lower()
    assert os.listdir(out_dir) == []


@pytest.mark.parametrize("args, text", [
    (["--udp", "--lab", "f"], b"netlabctl: fetch: --udp: the lab download has no UDP form\n"),
    (["--block-size", "1200", "f"], b"netlabctl: fetch: --block-size only applies with --udp\n"),
    (["--window", "8", "f"], b"netlabctl: fetch: --window only applies with --udp\n"),
    ([], b"netlabctl: fetch: no PATH given (see 'fetch --help')\n"),
    (["a", "b"], b"netlabctl: fetch: more than one PATH given (see 'fetch --help')\n"),
    (["../etc/passwd"], b"netlabctl: fetch: PATH \"../etc/passwd\": \".\" or \"..\" in path\n"),
    (["/etc/passwd"], b"netlabctl: fetch: PATH \"/etc/passwd\": absolute path (paths are relative to the root)\n"),
    (["--offset", "x", "f"], None),
    (["--offset", "5", "--resume", "f"], b"netlabctl: fetch: --offset and --resume exclude each other\n"),
    (["--no-restart", "f"], b"netlabctl: fetch: --no-restart only applies with --resume\n"),
    (["--discard", "-o", "x", "f"], b"netlabctl: fetch: --discard and --output exclude each other\n"),
    (["--resume", "-o", "-", "f"], b"netlabctl: fetch: --resume needs a regular output file (not -o -)\n"),
    (["--verify", "--discard", "f"], b"netlabctl: fetch: --verify needs a regular output file (not --discard, -o - or a device)\n"),
    (["--json", "-o", "-", "f"], None),
    (["--bogus", "f"], b"netlabctl: fetch: unknown option --bogus (see 'fetch --help')\n"),
])
def test_exit_usage(ctl_ini, tmp_path, args, text):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cmd = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "-H", "127.0.0.1", "-p", "9", *args]
    r = subprocess.run(cmd, capture_output=True, timeout=30, cwd=cwd)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert r.stdout == b""
    if text is not None:
        assert r.stderr == text
    else:
        assert r.stderr.startswith(b"netlabctl: fetch: ") and r.stderr.count(b"\n") == 1
    assert os.listdir(cwd) == []


# ---------------------------------------------------------------------------
# concurrency

def test_20_concurrent_fetches(daemon_factory, tmp_path, ctl_ini, out_dir):
    root = tmp_path / "root"
    root.mkdir()
    data = rand_bytes(4 * MIB, 12)
    (root / "f").write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    port = free_port()
    d = daemon_factory(make_config([file_listener(port, root)], limits={"max_children": 64, "max_per_source": 32}))
    base = [str(NETLABCTL), f"--config={ctl_ini}", "fetch", "-H", "127.0.0.1", "-p", str(port)]
    fetch_at_once(base, 20, out_dir, want, timeout=60)
    assert [e["RESULT"] for e in d.wait_requests(20)] == ["ok"] * 20


# ---------------------------------------------------------------------------
# ls

@pytest.fixture
def ls_srv(daemon_factory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "b.txt").write_bytes(b"12345")
    (root / "adir").mkdir()
    (root / "big").write_bytes(b"z" * 123456)
    (root / ".hidden").write_bytes(b"h")
    os.symlink("b.txt", root / "link")
    os.mkfifo(root / "pipe")
    for p, t in (("b.txt", 1_600_000_000), ("adir", 1_600_000_060), ("big", 1_700_000_000)):
        os.utime(root / p, (t, t))
    os.utime(root / "link", (1_650_000_000, 1_650_000_000), follow_symlinks=False)
    port = free_port()
    d = daemon_factory(make_config([file_listener(port, root)]))
    d.port, d.root = port, root
    return d


def ls(d, *args, ini):
    return netlabctl("ls", "-H", "127.0.0.1", "-p", d.port, *args, ini=ini, env={"TZ": "UTC"})


def test_ls_text(ls_srv, ctl_ini):
    r = ls(ls_srv, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""

    def when(name):
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.lstat(ls_srv.root / name).st_mtime_ns // 10**9))

    # Sorted by name; sizes right-aligned to the widest; "/" after directories.
    assert r.stdout.decode() == (
        f"d      0 {when('adir')} adir/\n"
        f"-      5 {when('b.txt')} b.txt\n"
        f"- 123456 {when('big')} big\n"
        f"l      0 {when('link')} link\n"
        f"?      0 {when('pipe')} pipe\n")
    assert when("big") == "2023-11-14 22:13"  # TZ=UTC


def test_ls_json(ls_srv, ctl_ini):
    r = ls(ls_srv, "--json", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert {k: obj[k] for k in ("command", "status", "exit_code", "server", "port", "path")} == \
        {"command": "ls", "status": "ok", "exit_code": 0, "server": "127.0.0.1", "port": ls_srv.port, "path": ""}
    entries = sorted(obj["entries"], key=lambda e: e["name"])
    pipe_mtime = int(os.lstat(ls_srv.root / "pipe").st_mtime)
    assert entries == [
        {"name": "adir", "kind": "directory", "size": 0, "mtime": 1_600_000_060},
        {"name": "b.txt", "kind": "file", "size": 5, "mtime": 1_600_000_000},
        {"name": "big", "kind": "file", "size": 123456, "mtime": 1_700_000_000},
        {"name": "link", "kind": "symlink", "size": 0, "mtime": 1_650_000_000},
        {"name": "pipe", "kind": "other", "size": 0, "mtime": pipe_mtime},
    ]


def test_ls_subdir_and_errors(ls_srv, ctl_ini):
    (ls_srv.root / "adir" / "inner").write_bytes(b"")
    r = ls(ls_srv, "adir", "--json", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["path"] == "adir" and [e["name"] for e in obj["entries"]] == ["inner"]
    for args, code, text in [
        (["nope"], EXIT_REFUSED, b"netlabctl: server refused (not-found): cannot open: no such file or directory\n"),
        (["b.txt"], EXIT_REFUSED, b"netlabctl: server refused (not-permitted): not a directory\n"),
        ([".hidden"], EXIT_REFUSED, b"netlabctl: server refused (not-found): cannot open: no such file or directory\n"),
    ]:
        r = ls(ls_srv, *args, ini=ctl_ini)
        assert (r.returncode, r.stderr, r.stdout) == (code, text, b""), args


@pytest.mark.parametrize("arg, path", [(".", ""), ("/", ""), ("adir/", "adir"), ("adir//", "adir")])
def test_ls_root_spellings(ls_srv, ctl_ini, arg, path):
    (ls_srv.root / "adir" / "inner").write_bytes(b"")
    r = ls(ls_srv, "--json", arg, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    names = sorted(e["name"] for e in obj["entries"])
    assert names == (["inner"] if path else ["adir", "b.txt", "big", "link", "pipe"])


def test_ls_3000_entries(daemon_factory, tmp_path, ctl_ini):
    root = tmp_path / "root"
    (root / "many").mkdir(parents=True)
    names = [f"file-with-a-long-enough-name-{i:04d}" for i in range(3000)]
    for n in names:
        (root / "many" / n).write_bytes(b"")
    port = free_port()
    daemon_factory(make_config([file_listener(port, root)]))
    r = netlabctl("ls", "-H", "127.0.0.1", "-p", port, "many", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert [l.rsplit(" ", 1)[1] for l in lines] == sorted(names)
    r = netlabctl("ls", "-H", "127.0.0.1", "-p", port, "--json", "many", ini=ctl_ini)
    assert sorted(e["name"] for e in json.loads(r.stdout)["entries"]) == sorted(names)
