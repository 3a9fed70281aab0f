"""The file service over TCP (docs/PROTOCOL.md sections 8 and 9), driven with
raw sockets: downloads byte for byte, resume checks, every refusal of section
8.7 with its exact status and text, the log fields RESULT=, FILE= and OFFSET=,
symlink confinement under both resolvers, FIFOs and devices, validators and
listings.

Most tests share one netlabd (module scope) whose root holds a prepared tree;
each request's log entry is found by the client's port (REMOTE_PORT=).
"""
import hashlib
import os
import random
import shutil
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

import conftest
from conftest import (BAD_LOG, FILE_END, FILE_GET, FILE_INFO, FILE_LIST, FILE_STAT, Netlabd, file_exchange,
                      file_get, file_list, file_listener, file_stat, frame, free_port, hold_child, make_config,
                      make_sparse, read_frame, recv_exact, sparse_sha256, start_file_daemon,
                      wait_entry)

OK, BAD_REQUEST, TOO_LONG, BUSY, NOT_FOUND, NOT_PERMITTED, TIMEOUT, UNSUPPORTED, INTERNAL, CHANGED, \
    MISMATCH, RANGE = range(12)
KIND_FILE, KIND_DIR, KIND_LINK, KIND_OTHER = 1, 2, 3, 4

GIB = 1 << 30
MIB = 1 << 20
# The 1 GiB sparse file: zeros except these bytes (a page boundary, the
# middle, the very end).
SPARSE_MARKS = {0: b"HEAD", 4094: b"page|edge", 512 * MIB + 7: b"middle of the gigabyte", GIB - 5: b"TAIL!"}

NOT_FOUND_TEXT = "cannot open: no such file or directory"
OUTSIDE_TEXT = "cannot open: the path leads outside the root"
NOFOLLOW_TEXT = "cannot open: symbolic links are not followed here"
ABSENT = object()  # a log field that must not be there


def rand_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def build_tree(base: Path):
    """The root every module test reads (nothing here is modified by tests)."""
    root = base / "root"
    root.mkdir()
    (base / "outside.txt").write_text("a secret outside the root\n")
    (root / "empty").write_bytes(b"")
    (root / "one").write_bytes(b"x")
    (root / "mib").write_bytes(rand_bytes(MIB, 1))
    make_sparse(root / "sparse", GIB, SPARSE_MARKS)
    (root / "source_file.txt").write_bytes(rand_bytes(300_000, 2))
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "inner.txt").write_bytes(b"inner file\n")
    (root / "sub" / "deeper" / "leaf.txt").write_bytes(b"leaf\n")
    (root / "sub" / ".hid").write_bytes(b"hidden in sub\n")
    (root / ".hidden").write_bytes(b"hidden\n")
    (root / "%2e%2e").write_bytes(b"just a name\n")
    (root / "back\\slash").write_bytes(b"backslash name\n")
    (root / "caf\u00e9").write_bytes(b"utf-8 name\n")
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(root / "sock"))
    os.symlink("/etc/passwd", root / "to_passwd")
    os.symlink("../outside.txt", root / "to_outside")
    os.symlink("/", root / "to_root")
    os.symlink(str(root / "one"), root / "abs_inside")      # absolute, even if it points inside
    os.symlink("sub/inner.txt", root / "inside_link")
    os.symlink("sub/../one", root / "up_inside")
    os.symlink("sub", root / "dirlink")
    os.symlink("sub/../../outside.txt", root / "sneaky")     # leaves through ".." inside the link
    os.symlink("nothing-here", root / "dangling")
    os.symlink("loop", root / "loop")
    # Names no request could ask for: never listed.
    os.close(os.open(bytes(root) + b"/ctl\x01name", os.O_CREAT | os.O_WRONLY, 0o644))
    os.close(os.open(bytes(root) + b"/bad\xffutf8", os.O_CREAT | os.O_WRONLY, 0o644))
    many = root / "many"
    many.mkdir()
    for i in range(3000):
        (many / f"entry-with-a-rather-long-name-{i:04d}.txt").write_bytes(b"m" * (i % 7))
    return root


class FileServer:
    pass


@pytest.fixture(scope="module")
def fs(tmp_path_factory):
    base = tmp_path_factory.mktemp("filesvc")
    root = build_tree(base)
    gone = base / "gone-root"
    gone.mkdir()
    ports = {n: free_port() for n in ("files", "walk", "dots", "nolab", "gone")}
    listeners = [
        file_listener(ports["files"], root, name="files", lab_file="source_file.txt"),
        file_listener(ports["walk"], root, name="walk", resolve="walk"),
        file_listener(ports["dots"], root, name="dots", hide_dotfiles=False),
        file_listener(ports["nolab"], root, name="nolab"),
        file_listener(ports["gone"], gone, name="gone"),
    ]
    ddir = base / "daemon"
    ddir.mkdir()
    d = Netlabd(ddir, make_config(listeners), ["--log-target=stderr"])
    d.start()
    gone.rmdir()
    f = FileServer()
    f.d, f.root, f.base, f.ports = d, root, base, ports
    f.port = ports["files"]
    yield f
    rc = d.stop()
    bad = [l for l in d.log().splitlines() if BAD_LOG.search(l)]
    assert rc == 0, d.log()[-3000:]
    assert not bad, "daemon log shows a crash or sanitizer report:\n" + "\n".join(bad[:20])


def check_fields(entry, result, file=None, offset=None, listener=None):
    """RESULT=, FILE= and OFFSET= of one request entry (None: not checked;
    ABSENT: must not be there)."""
    assert entry["SERVICE"] == "file", entry
    assert entry["RESULT"] == result, entry
    if listener is not None:
        assert entry["LISTENER"] == listener, entry
    for key, want in (("FILE", file), ("OFFSET", offset)):
        if want is ABSENT:
            assert key not in entry, entry
        elif want is not None:
            assert entry.get(key) == str(want), entry


# ---------------------------------------------------------------------------
# whole and partial downloads, byte for byte

def expected_sha(fs, name, offset):
    if name == "sparse":
        return sparse_sha256(GIB, SPARSE_MARKS, offset)
    return hashlib.sha256((fs.root / name).read_bytes()[offset:]).hexdigest()


def sizes(name):
    return {"empty": 0, "one": 1, "mib": MIB, "sparse": GIB}[name]


DOWNLOAD_CASES = [
    ("empty", 0), ("one", 0), ("one", 1), ("mib", 0), ("mib", 1), ("mib", MIB // 2 + 3), ("mib", MIB - 1),
    ("mib", MIB), ("sparse", 0), ("sparse", 512 * MIB + 10), ("sparse", GIB - 4097), ("sparse", GIB),
]


@pytest.mark.parametrize("name, offset", DOWNLOAD_CASES, ids=[f"{n}@{o}" for n, o in DOWNLOAD_CASES])
def test_download(fs, name, offset):
    size = sizes(name)
    a = file_exchange(fs.port, file_get(name, offset=offset), keep_data=size <= MIB, timeout=30)
    assert a.status == OK, a.text
    st = os.stat(fs.root / name)
    assert a.info["kind"] == KIND_FILE and a.info["flags"] == 0
    assert (a.info["size"], a.info["offset"], a.info["length"]) == (size, offset, size - offset)
    assert (a.info["mtime_sec"], a.info["mtime_nsec"]) == (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9)
    assert a.data_len == size - offset
    assert a.sha256 == expected_sha(fs, name, offset)
    # No digest asked: FILE_END status 0, body 00; then a clean close.
    assert a.end == (OK, b"\x00")
    assert a.eof_after
    e = wait_entry(fs.d, a.local_port)
    check_fields(e, "ok", file=name, offset=offset, listener="files")
    assert e["BYTES_OUT"] == str(a.raw_len)


@pytest.mark.parametrize("name, offset", [("empty", 0), ("one", 0), ("mib", 12345), ("sparse", 0)])
def test_download_digest(fs, name, offset):
    """FILE_GET_DIGEST: FILE_END carries the SHA-256 of the whole file, even
    when only a part was sent."""
    size = sizes(name)
    a = file_exchange(fs.port, file_get(name, offset=offset, flags=1), keep_data=False, timeout=60)
    assert a.status == OK, a.text
    assert a.info["flags"] == 1
    assert a.sha256 == expected_sha(fs, name, offset)
    whole = expected_sha(fs, name, 0)
    assert a.end == (OK, b"\x20" + bytes.fromhex(whole))
    assert a.data_len == size - offset


def test_concurrent_downloads(daemon_factory, tmp_path):
    """20 clients at once, each gets the whole 1 MiB file byte for byte."""
    root = tmp_path / "root"
    root.mkdir()
    data = rand_bytes(MIB, 20)
    (root / "f").write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    port = free_port()
    d = daemon_factory(make_config([file_listener(port, root)], limits={"max_children": 64,
                                                                      "max_per_source": 32}))
    results = [None] * 20
    start = threading.Barrier(20, timeout=10)

    def one(i):
        try:
            start.wait()
            a = file_exchange(port, file_get("f"), keep_data=False, timeout=30)
            results[i] = (a.status, a.sha256, a.end)
        except Exception as e:  # reported below
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert results == [(OK, want, (OK, b"\x00"))] * 20
    reqs = d.wait_requests(20)
    assert [r["RESULT"] for r in reqs] == ["ok"] * 20


# ---------------------------------------------------------------------------
# STAT, validators

def test_stat_file_and_dir(fs):
    a = file_exchange(fs.port, file_stat("mib"))
    st = os.stat(fs.root / "mib")
    assert a.status == OK
    assert (a.info["kind"], a.info["size"], a.info["offset"], a.info["length"]) == (KIND_FILE, MIB, 0, 0)
    assert a.info["mtime_sec"] * 10**9 + a.info["mtime_nsec"] == st.st_mtime_ns
    assert a.eof_after and a.end is None and a.data_len == 0
    check_fields(wait_entry(fs.d, a.local_port), "ok", file="mib", offset=ABSENT)
    for path, logged in (("sub", "sub"), ("", ".")):
        a = file_exchange(fs.port, file_stat(path))
        assert a.status == OK
        assert (a.info["kind"], a.info["size"], a.info["length"]) == (KIND_DIR, 0, 0)
        check_fields(wait_entry(fs.d, a.local_port), "ok", file=logged, offset=ABSENT)


def stat_validator(port, name):
    a = file_exchange(port, file_stat(name))
    assert a.status == OK, a.text
    return a.info["validator"]


def test_validator_stable_and_changes(fs):
    p = fs.root / "validated"
    p.write_bytes(b"version one\n")
    try:
        v1 = stat_validator(fs.port, "validated")
        assert len(v1) == 32
        assert stat_validator(fs.port, "validated") == v1
        # A GET's FILE_INFO carries the same validator.
        assert file_exchange(fs.port, file_get("validated")).info["validator"] == v1

        with open(p, "ab") as f:  # append
            f.write(b"more\n")
        v2 = stat_validator(fs.port, "validated")
        assert v2 != v1

        st = os.stat(p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touch: a new mtime
        v3 = stat_validator(fs.port, "validated")
        assert v3 not in (v1, v2)

        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # touch -d: the old mtime back
        v4 = stat_validator(fs.port, "validated")
        assert v4 not in (v1, v2, v3)  # the ctime moved on

        tmp = fs.root / "validated.new"
        tmp.write_bytes(p.read_bytes())
        shutil.copystat(p, tmp)
        os.rename(tmp, p)  # same bytes and mtime, a new inode
        assert stat_validator(fs.port, "validated") not in (v1, v2, v3, v4)
    finally:
        p.unlink()


# ---------------------------------------------------------------------------
# resume (PROTOCOL.md 8.5)

def tail_of(data, offset, n):
    return hashlib.sha256(data[offset - n:offset]).digest()


def resume_request(fs, name, offset, validator="good", tail_len=None, tail_hash=None, flags=0):
    data = (fs.root / name).read_bytes()
    v = stat_validator(fs.port, name) if validator == "good" else validator
    if tail_len is None:
        tail_len = min(offset, 65536)
    if tail_hash is None and tail_len:
        tail_hash = tail_of(data, offset, tail_len)
    return file_get(name, offset=offset, flags=flags, validator=v, tail_len=tail_len, tail_hash=tail_hash)


def test_resume_good(fs):
    data = (fs.root / "mib").read_bytes()
    for offset in (1, 65535, 65536, 700_001, MIB):
        a = file_exchange(fs.port, resume_request(fs, "mib", offset, flags=1))
        assert a.status == OK, (offset, a.text)
        assert (a.info["offset"], a.info["length"]) == (offset, MIB - offset)
        assert a.data == data[offset:]
        assert a.end == (OK, b"\x20" + hashlib.sha256(data).digest())
        check_fields(wait_entry(fs.d, a.local_port), "ok", file="mib", offset=offset)


def test_resume_full_tail(fs):
    """A tail hash may cover up to 1 MiB (NL_TAIL_MAX)."""
    a = file_exchange(fs.port, resume_request(fs, "mib", MIB, tail_len=MIB))
    assert a.status == OK, a.text
    assert (a.info["length"], a.data, a.end) == (0, b"", (OK, b"\x00"))


BAD_VALIDATOR = b"\x01" * 32

# (id, file, offset, validator ("good" or bytes or None), tail_len or None, tail hash or None,
#  status, text)
RESUME_REFUSALS = [
    ("changed", "mib", 1000, BAD_VALIDATOR, None, None, CHANGED,
     f"the file changed on the server since the partial download (now {MIB} bytes)"),
    # The validator is checked first, then the range, then the tail.
    ("changed-before-range", "mib", MIB + 1, BAD_VALIDATOR, 0, None, CHANGED,
     f"the file changed on the server since the partial download (now {MIB} bytes)"),
    ("changed-before-mismatch", "mib", 1000, BAD_VALIDATOR, 1000, b"\x00" * 32, CHANGED,
     f"the file changed on the server since the partial download (now {MIB} bytes)"),
    ("range", "mib", MIB + 1, "good", 0, None, RANGE, f"offset {MIB + 1} is past the end of the file ({MIB} bytes)"),
    ("range-before-mismatch", "mib", MIB + 1, "good", 100, b"\x00" * 32, RANGE,
     f"offset {MIB + 1} is past the end of the file ({MIB} bytes)"),
    ("range-no-validator", "one", 2, None, 0, None, RANGE, "offset 2 is past the end of the file (1 bytes)"),
    ("range-empty", "empty", 1, None, 0, None, RANGE, "offset 1 is past the end of the file (0 bytes)"),
    ("range-huge", "one", (1 << 63) - 1, None, 0, None, RANGE,
     f"offset {(1 << 63) - 1} is past the end of the file (1 bytes)"),
    ("mismatch", "mib", 70_000, "good", 65536, b"\x00" * 32, MISMATCH,
     "the 65536 bytes before offset 70000 differ from the server's"),
    ("mismatch-one-byte", "mib", 1, None, 1, b"\xff" * 32, MISMATCH,
     "the 1 bytes before offset 1 differ from the server's"),
]


@pytest.mark.parametrize("name, offset, validator, tail_len, tail_hash, status, text",
                         [c[1:] for c in RESUME_REFUSALS], ids=[c[0] for c in RESUME_REFUSALS])
def test_resume_refusal(fs, name, offset, validator, tail_len, tail_hash, status, text):
    req = resume_request(fs, name, offset, validator=validator, tail_len=tail_len, tail_hash=tail_hash)
    a = file_exchange(fs.port, req)
    # Never data: only the FILE_INFO refusal, then the close.
    assert (a.status, a.text) == (status, text)
    assert a.eof_after
    result = {CHANGED: "changed", RANGE: "range", MISMATCH: "mismatch"}[status]
    check_fields(wait_entry(fs.d, a.local_port), result, file=name, offset=offset)


def test_resume_tail_flip_in_last_64k(fs):
    """One flipped byte anywhere in the client's last 64 KiB is a mismatch."""
    data = bytearray((fs.root / "mib").read_bytes()[:500_000])
    v = stat_validator(fs.port, "mib")
    for pos in (500_000 - 65536, 500_000 - 30_000, 500_000 - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        req = file_get("mib", offset=500_000, validator=v, tail_len=65536,
                       tail_hash=hashlib.sha256(bad[-65536:]).digest())
        a = file_exchange(fs.port, req)
        assert (a.status, a.text) == (MISMATCH, "the 65536 bytes before offset 500000 differ from the server's")


# ---------------------------------------------------------------------------
# every refusal of PROTOCOL.md 8.7 (and the lexical rules of 8.6)

def get_body_raw(flags=0, offset=0, vlen=0, validator=b"", tail_len=0, tail=b"", path=b"one"):
    return (bytes([flags]) + offset.to_bytes(8, "big") + bytes([vlen]) + validator + tail_len.to_bytes(4, "big")
            + tail + len(path).to_bytes(2, "big") + path)


def header_only(type_, length, version=1, status=0, reserved=0):
    return frame(type_, b"", status=status, version=version, reserved=reserved)[:8] + length.to_bytes(4, "big")


LONG_COMPONENT = b"c" * 256
PATH_4096 = b"/".join([b"d" * 240] * 17)  # 17 components of 240 bytes: 4096 bytes, no rule broken
assert len(PATH_4096) == 4096
PATH_4095 = PATH_4096[:-1]
PATH_4097 = PATH_4096 + b"g"

# (id, listener, request bytes, status, text, RESULT, FILE, OFFSET)
REFUSALS = [
    # -- not found --
    ("missing", "files", file_get("nope"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", "nope", 0),
    ("missing-component", "files", file_get("nodir/one"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", "nodir/one", 0),
    ("file-as-dir", "files", file_get("one/x"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", "one/x", 0),
    ("hidden", "files", file_get(".hidden"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", ".hidden", 0),
    ("hidden-in-sub", "files", file_get("sub/.hid"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", "sub/.hid", 0),
    ("hidden-stat", "files", file_stat(".hidden"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", ".hidden", ABSENT),
    ("hidden-list", "files", file_list("sub/.nothing"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", "sub/.nothing",
     ABSENT),
    ("dangling-link", "files", file_get("dangling"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", "dangling", 0),
    ("percent-dotdot-is-a-name", "files", file_get("%2e%2e/one"), NOT_FOUND, NOT_FOUND_TEXT, "not-found",
     "%2e%2e/one", 0),
    ("backslash-is-a-name", "files", file_get("..\\one"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", "..\\\\one", 0),
    # The longest path the kernel takes (its PATH_MAX counts the NUL): a name
    # that does not exist, under both resolvers.
    ("path-4095-bytes", "files", file_get(PATH_4095), NOT_FOUND, NOT_FOUND_TEXT, "not-found", None, 0),
    ("walk-path-4095-bytes", "walk", file_get(PATH_4095), NOT_FOUND, NOT_FOUND_TEXT, "not-found", None, 0),
    # 4096 bytes passes the lexical check (NL_PATH_MAX) but not the resolvers,
    # which agree with each other (fileroot.c path_check).
    ("path-4096-bytes", "files", file_get(PATH_4096), TOO_LONG, "cannot open: name too long", "too-long", None, 0),
    ("walk-path-4096-bytes", "walk", file_get(PATH_4096), TOO_LONG, "cannot open: name too long", "too-long",
     None, 0),
    # -- symlinks (openat2 RESOLVE_BENEATH) --
    ("link-to-etc-passwd", "files", file_get("to_passwd"), NOT_PERMITTED, OUTSIDE_TEXT, "not-permitted",
     "to_passwd", 0),
    ("link-to-dotdot-outside", "files", file_get("to_outside"), NOT_PERMITTED, OUTSIDE_TEXT, "not-permitted",
     "to_outside", 0),
    ("dir-link-to-slash", "files", file_get("to_root/etc/passwd"), NOT_PERMITTED, OUTSIDE_TEXT, "not-permitted",
     "to_root/etc/passwd", 0),
    ("dir-link-to-slash-list", "files", file_list("to_root"), NOT_PERMITTED, OUTSIDE_TEXT, "not-permitted",
     "to_root", ABSENT),
    ("dir-link-to-slash-stat", "files", file_stat("to_root/etc"), NOT_PERMITTED, OUTSIDE_TEXT,
     "not-permitted", "to_root/etc", ABSENT),
    ("absolute-link-inside", "files", file_get("abs_inside"), NOT_PERMITTED, OUTSIDE_TEXT, "not-permitted",
     "abs_inside", 0),
    # A symlink loop is refused like a link that may not be followed.
    ("symlink-loop", "files", file_get("loop"), NOT_PERMITTED, NOFOLLOW_TEXT, "not-permitted", "loop", 0),
    ("dotdot-inside-link", "files", file_get("sneaky"), NOT_PERMITTED, OUTSIDE_TEXT, "not-permitted", "sneaky", 0),
    # -- resolve = "walk": every symlink refused --
    ("walk-link-to-etc-passwd", "walk", file_get("to_passwd"), NOT_PERMITTED, NOFOLLOW_TEXT, "not-permitted",
     "to_passwd", 0),
    ("walk-link-to-dotdot-outside", "walk", file_get("to_outside"), NOT_PERMITTED, NOFOLLOW_TEXT,
     "not-permitted", "to_outside", 0),
    ("walk-dir-link-to-slash", "walk", file_get("to_root/etc/passwd"), NOT_PERMITTED, NOFOLLOW_TEXT,
     "not-permitted", "to_root/etc/passwd", 0),
    ("walk-dir-link-to-slash-list", "walk", file_list("to_root"), NOT_PERMITTED, NOFOLLOW_TEXT,
     "not-permitted", "to_root", ABSENT),
    ("walk-inside-link", "walk", file_get("inside_link"), NOT_PERMITTED, NOFOLLOW_TEXT, "not-permitted",
     "inside_link", 0),
    ("walk-dir-link-inside", "walk", file_get("dirlink/inner.txt"), NOT_PERMITTED, NOFOLLOW_TEXT,
     "not-permitted", "dirlink/inner.txt", 0),
    ("walk-dangling", "walk", file_get("dangling"), NOT_PERMITTED, NOFOLLOW_TEXT, "not-permitted", "dangling", 0),
    ("walk-sneaky", "walk", file_get("sneaky"), NOT_PERMITTED, NOFOLLOW_TEXT, "not-permitted", "sneaky", 0),
    ("walk-missing", "walk", file_get("sub/nope"), NOT_FOUND, NOT_FOUND_TEXT, "not-found", "sub/nope", 0),
    # -- not a regular file / not a directory --
    ("get-directory", "files", file_get("sub"), NOT_PERMITTED, "not a regular file", "not-permitted", "sub", 0),
    ("get-fifo", "files", file_get("fifo"), NOT_PERMITTED, "not a regular file", "not-permitted", "fifo", 0),
    ("get-char-device", "files", file_get("null"), NOT_PERMITTED, "not a regular file", "not-permitted",
     "null", 0),
    ("get-socket", "files", file_get("sock"), NOT_PERMITTED, "not a regular file", "not-permitted", "sock", 0),
    ("walk-get-fifo", "walk", file_get("fifo"), NOT_PERMITTED, "not a regular file", "not-permitted", "fifo", 0),
    ("walk-get-char-device", "walk", file_get("null"), NOT_PERMITTED, "not a regular file", "not-permitted",
     "null", 0),
    ("walk-get-socket", "walk", file_get("sock"), NOT_PERMITTED, "not a regular file", "not-permitted", "sock", 0),
    ("list-file", "files", file_list("one"), NOT_PERMITTED, "not a directory", "not-permitted", "one", ABSENT),
    ("list-fifo", "files", file_list("fifo"), NOT_PERMITTED, "not a directory", "not-permitted", "fifo", ABSENT),
    ("list-device", "files", file_list("null"), NOT_PERMITTED, "not a directory", "not-permitted", "null", ABSENT),
    ("walk-list-fifo", "walk", file_list("fifo"), NOT_PERMITTED, "not a directory", "not-permitted", "fifo",
     ABSENT),
    ("stat-fifo", "files", file_stat("fifo"), NOT_PERMITTED, "not a file or directory", "not-permitted", "fifo",
     ABSENT),
    ("stat-device", "files", file_stat("null"), NOT_PERMITTED, "not a file or directory", "not-permitted",
     "null", ABSENT),
    # -- the root is gone --
    ("root-missing", "gone", file_get("one"), INTERNAL, "the file root is not available", "internal-error",
     "one", 0),
    ("root-missing-list", "gone", file_list(""), INTERNAL, "the file root is not available", "internal-error",
     ".", ABSENT),
    # -- lexical path rules (8.6): refused before anything is opened --
    ("empty-path-get", "files", file_get(""), BAD_REQUEST, "empty path", "bad-request", ABSENT, 0),
    ("absolute", "files", file_get("/etc/passwd"), BAD_REQUEST, "absolute path (paths are relative to the root)",
     "bad-request", ABSENT, 0),
    ("absolute-list", "files", file_list("/"), BAD_REQUEST, "absolute path (paths are relative to the root)",
     "bad-request", ABSENT, ABSENT),
    ("nul", "files", file_get(b"one\x00.txt"), BAD_REQUEST, "NUL byte in path", "bad-request", ABSENT, 0),
    ("control-char", "files", file_get(b"on\x01e"), BAD_REQUEST, "control character in path", "bad-request",
     ABSENT, 0),
    ("newline", "files", file_get(b"one\n"), BAD_REQUEST, "control character in path", "bad-request", ABSENT, 0),
    ("del", "files", file_get(b"one\x7f"), BAD_REQUEST, "control character in path", "bad-request", ABSENT, 0),
    ("dotdot", "files", file_get("../outside.txt"), BAD_REQUEST, '"." or ".." in path', "bad-request", ABSENT, 0),
    ("dotdot-inside", "files", file_get("sub/../one"), BAD_REQUEST, '"." or ".." in path', "bad-request",
     ABSENT, 0),
    ("dotdot-last", "files", file_list("sub/.."), BAD_REQUEST, '"." or ".." in path', "bad-request", ABSENT,
     ABSENT),
    ("dot", "files", file_get("./one"), BAD_REQUEST, '"." or ".." in path', "bad-request", ABSENT, 0),
    ("double-slash", "files", file_get("sub//inner.txt"), BAD_REQUEST,
     'empty path component ("//" or a trailing "/")', "bad-request", ABSENT, 0),
    ("trailing-slash", "files", file_get("sub/"), BAD_REQUEST, 'empty path component ("//" or a trailing "/")',
     "bad-request", ABSENT, 0),
    ("trailing-slash-list", "files", file_list("sub/"), BAD_REQUEST,
     'empty path component ("//" or a trailing "/")', "bad-request", ABSENT, ABSENT),
    ("bad-utf8", "files", file_get(b"caf\xe9"), BAD_REQUEST, "path is not valid UTF-8", "bad-request", ABSENT, 0),
    ("overlong-utf8-slash", "files", file_get(b"sub\xc0\xafinner.txt"), BAD_REQUEST, "path is not valid UTF-8",
     "bad-request", ABSENT, 0),
    ("surrogate-utf8", "files", file_get(b"a\xed\xa0\x80"), BAD_REQUEST, "path is not valid UTF-8",
     "bad-request", ABSENT, 0),
    ("component-256", "files", file_get(LONG_COMPONENT), BAD_REQUEST, "path component longer than 255 bytes",
     "bad-request", ABSENT, 0),
    ("path-4097-bytes", "files", file_get(PATH_4097), TOO_LONG, "path too long", "too-long", ABSENT, ABSENT),
    ("path-4097-bytes-stat", "files", file_stat(PATH_4097), TOO_LONG, "path too long", "too-long", ABSENT, ABSENT),
    # -- malformed request bodies --
    ("unknown-get-flags", "files", frame(FILE_GET, get_body_raw(flags=2)), BAD_REQUEST, "unknown GET flags",
     "bad-request", ABSENT, ABSENT),
    ("unknown-get-flags-high", "files", frame(FILE_GET, get_body_raw(flags=0x81)), BAD_REQUEST,
     "unknown GET flags", "bad-request", ABSENT, ABSENT),
    ("truncated-get", "files", frame(FILE_GET, get_body_raw()[:5]), BAD_REQUEST, "truncated GET request",
     "bad-request", ABSENT, ABSENT),
    ("empty-get-body", "files", frame(FILE_GET, b""), BAD_REQUEST, "truncated GET request", "bad-request",
     ABSENT, ABSENT),
    ("truncated-tail-len", "files", frame(FILE_GET, get_body_raw()[:12]), BAD_REQUEST, "truncated GET request",
     "bad-request", ABSENT, ABSENT),
    ("offset-over-int64", "files", frame(FILE_GET, get_body_raw(offset=1 << 63)), BAD_REQUEST,
     "offset out of range", "bad-request", ABSENT, ABSENT),
    ("validator-len-5", "files", frame(FILE_GET, get_body_raw(vlen=5, validator=b"12345")), BAD_REQUEST,
     "validator must be 0 or 32 bytes", "bad-request", ABSENT, ABSENT),
    ("truncated-validator", "files", frame(FILE_GET, get_body_raw(vlen=32)[:14]), BAD_REQUEST,
     "truncated validator", "bad-request", ABSENT, ABSENT),
    ("tail-over-1mib", "files", frame(FILE_GET, get_body_raw(offset=2 * MIB, tail_len=MIB + 1, tail=b"t" * 32)),
     BAD_REQUEST, "tail hash covers more than 1 MiB", "bad-request", ABSENT, ABSENT),
    ("tail-over-offset", "files", frame(FILE_GET, get_body_raw(offset=10, tail_len=11, tail=b"t" * 32)),
     BAD_REQUEST, "tail hash covers bytes before the start of the file", "bad-request", ABSENT, ABSENT),
    ("truncated-tail-hash", "files", frame(FILE_GET, get_body_raw(offset=10, tail_len=10, tail=b"t" * 31,
                                                                  path=b"")[:-2]),
     BAD_REQUEST, "truncated tail hash", "bad-request", ABSENT, ABSENT),
    ("truncated-path-len", "files", frame(FILE_STAT, b"\x00"), BAD_REQUEST, "truncated path length",
     "bad-request", ABSENT, ABSENT),
    ("truncated-path", "files", frame(FILE_STAT, b"\x00\x05one"), BAD_REQUEST, "truncated path", "bad-request",
     ABSENT, ABSENT),
    ("trailing-bytes-get", "files", frame(FILE_GET, get_body_raw() + b"X"), BAD_REQUEST,
     "trailing bytes after the request", "bad-request", ABSENT, ABSENT),
    ("trailing-bytes-list", "files", frame(FILE_LIST, b"\x00\x00\x00"), BAD_REQUEST,
     "trailing bytes after the request", "bad-request", ABSENT, ABSENT),
    ("body-8193-header-only", "files", header_only(FILE_GET, 8193), TOO_LONG,
     "request of 8193 bytes: more than the 8192 allowed", "too-long", ABSENT, ABSENT),
    ("body-4GiB-header-only", "files", header_only(FILE_LIST, 0xFFFFFFFF), TOO_LONG,
     "request of 4294967295 bytes: more than the 8192 allowed", "too-long", ABSENT, ABSENT),
    # -- wrong frames --
    ("type-msg-send", "files", frame(0x01, b"hello"), UNSUPPORTED,
     "frame type 0x01 is not a file request (this is a file listener)", "unsupported", ABSENT, ABSENT),
    ("type-file-info", "files", frame(FILE_INFO, b""), UNSUPPORTED,
     "frame type 0x20 is not a file request (this is a file listener)", "unsupported", ABSENT, ABSENT),
    ("type-0x13", "files", frame(0x13, b"\x00\x00"), UNSUPPORTED,
     "frame type 0x13 is not a file request (this is a file listener)", "unsupported", ABSENT, ABSENT),
    ("version-2", "files", frame(FILE_GET, get_body_raw(), version=2), UNSUPPORTED,
     "unsupported protocol version 2 (this server speaks version 1)", "unsupported", ABSENT, ABSENT),
    ("version-0-header-only", "files", header_only(FILE_GET, 100, version=0), UNSUPPORTED,
     "unsupported protocol version 0 (this server speaks version 1)", "unsupported", ABSENT, ABSENT),
    ("bad-magic", "files", b"\x00NX" + frame(FILE_GET, get_body_raw())[3:], BAD_REQUEST, "malformed frame header",
     "bad-request", ABSENT, ABSENT),
    ("reserved-nonzero", "files", frame(FILE_GET, get_body_raw(), reserved=1), BAD_REQUEST,
     "malformed frame header", "bad-request", ABSENT, ABSENT),
    # PROTOCOL.md 2 and 2.2: a request's status byte must be 0 (bad-request).
    ("status-nonzero", "files", frame(FILE_GET, get_body_raw(), status=3), BAD_REQUEST,
     "status must be 0 in a request", "bad-request", ABSENT, ABSENT),
]


@pytest.mark.parametrize("listener, request_, status, text, result, file, offset",
                         [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_refusal(fs, listener, request_, status, text, result, file, offset):
    t0 = time.monotonic()
    a = file_exchange(fs.ports[listener], request_, timeout=10)
    assert (a.status, a.text) == (status, text)
    assert a.eof_after  # the refusal, then end of file: no data, no reset
    assert time.monotonic() - t0 < 3.0
    e = wait_entry(fs.d, a.local_port)
    check_fields(e, result, file=file, offset=offset, listener=listener)
    assert e["BYTES_OUT"] == str(a.raw_len)


def test_not_a_netlab_request(fs):
    """A first byte neither 0x00 nor a digit: one text line, then the close."""
    with socket.create_connection(("127.0.0.1", fs.port), timeout=10) as s:
        lport = s.getsockname()[1]
        s.sendall(b"GET /one HTTP/1.0\r\n\r\n")
        out = conftest.recv_all(s)
    assert out == b"error: not a netlab file request\n"
    check_fields(wait_entry(fs.d, lport), "bad-request", file=ABSENT, offset=ABSENT)


def test_fifo_and_device_do_not_hang_or_leak(fs):
    """A FIFO with no writer and a character device are refused at once, the
    daemon keeps serving, and no child is left behind."""
    for name in ("fifo", "null", "fifo", "null"):
        t0 = time.monotonic()
        a = file_exchange(fs.port, file_get(name), timeout=5)
        assert (a.status, a.text) == (NOT_PERMITTED, "not a regular file")
        assert time.monotonic() - t0 < 1.0
    a = file_exchange(fs.port, file_get("one"))
    assert (a.status, a.data, a.end) == (OK, b"x", (OK, b"\x00"))
    deadline = time.monotonic() + 5
    while fs.d.children() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fs.d.children() == []


def test_fifo_with_a_writer_is_refused(fs, tmp_path):
    """Even with a writer holding the FIFO open (data waiting), nothing of it
    leaks to the client."""
    fifo = fs.root / "fifo"
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(fd, b"leaked bytes")
        a = file_exchange(fs.port, file_get("fifo"), timeout=5)
        assert (a.status, a.text) == (NOT_PERMITTED, "not a regular file")
        assert os.read(fd, 100) == b"leaked bytes"  # still all there: nobody read it
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# symlinks that stay inside the root are served (resolve = "auto")

@pytest.mark.parametrize("path, target", [
    ("inside_link", "sub/inner.txt"),
    ("up_inside", "one"),
    ("dirlink/inner.txt", "sub/inner.txt"),
    ("%2e%2e", "%2e%2e"),
    ("back\\slash", "back\\slash"),
    ("caf\u00e9", "caf\u00e9"),
    ("sub/deeper/leaf.txt", "sub/deeper/leaf.txt"),
])
def test_served_inside(fs, path, target):
    a = file_exchange(fs.port, file_get(path))
    assert a.status == OK, a.text
    assert a.data == (fs.root / target).read_bytes()
    assert a.end == (OK, b"\x00")


def test_walk_serves_plain_paths(fs):
    a = file_exchange(fs.ports["walk"], file_get("sub/deeper/leaf.txt"))
    assert (a.status, a.data, a.end) == (OK, b"leaf\n", (OK, b"\x00"))
    a = file_exchange(fs.ports["walk"], file_list("sub"))
    assert a.status == OK
    assert sorted(e[3] for e in a.entries) == [b"deeper", b"inner.txt"]


def test_dotfiles_served_when_not_hidden(fs):
    a = file_exchange(fs.ports["dots"], file_get(".hidden"))
    assert (a.status, a.data) == (OK, b"hidden\n")
    a = file_exchange(fs.ports["dots"], file_get("sub/.hid"))
    assert (a.status, a.data) == (OK, b"hidden in sub\n")
    # Still no "." or ".." component.
    a = file_exchange(fs.ports["dots"], file_get("sub/../.hidden"))
    assert (a.status, a.text) == (BAD_REQUEST, '"." or ".." in path')


def test_permission_denied(daemon_factory, tmp_path, monkeypatch):
    """A file the daemon may not read: not-permitted.  We are root, so the
    daemon runs without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (setpriv)."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    wrapper = tmp_path / "netlabd-nodac"
    wrapper.write_text(f"#!/bin/sh\nexec {setpriv} --bounding-set=-dac_override,-dac_read_search "
                       f"--inh-caps=-all -- {conftest.NETLABD} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(conftest, "NETLABD", wrapper)
    root = tmp_path / "root"
    root.mkdir()
    (root / "locked").write_bytes(b"no")
    (root / "locked").chmod(0)
    (root / "closed").mkdir()
    (root / "closed" / "f").write_bytes(b"f")
    (root / "closed").chmod(0)
    port = free_port()
    d = daemon_factory(make_config([file_listener(port, root)]))
    a = file_exchange(port, file_get("locked"))
    assert (a.status, a.text) == (NOT_PERMITTED, "cannot open: permission denied")
    check_fields(wait_entry(d, a.local_port), "not-permitted", file="locked", offset=0)
    a = file_exchange(port, file_get("closed/f"))
    assert (a.status, a.text) == (NOT_PERMITTED, "cannot open: permission denied")
    a = file_exchange(port, file_list("closed"))
    assert (a.status, a.text) == (NOT_PERMITTED, "cannot open: permission denied")


# ---------------------------------------------------------------------------
# LIST

def test_list_root(fs):
    a = file_exchange(fs.port, file_list(""))
    assert a.status == OK
    assert (a.info["kind"], a.info["size"], a.info["offset"], a.info["length"]) == (KIND_DIR, 0, 0, 0)
    assert a.end == (OK, b"\x00") and a.eof_after
    by_name = {e[3]: e for e in a.entries}
    assert len(by_name) == len(a.entries)  # no duplicates
    expect_kinds = {
        b"empty": KIND_FILE, b"one": KIND_FILE, b"mib": KIND_FILE, b"sparse": KIND_FILE, b"sub": KIND_DIR,
        b"many": KIND_DIR, b"fifo": KIND_OTHER, b"null": KIND_OTHER, b"sock": KIND_OTHER,
        b"to_passwd": KIND_LINK, b"to_root": KIND_LINK, b"inside_link": KIND_LINK, b"dangling": KIND_LINK,
        b"loop": KIND_LINK, b"%2e%2e": KIND_FILE, b"back\\slash": KIND_FILE, "caf\u00e9".encode(): KIND_FILE,
        b"source_file.txt": KIND_FILE,
    }
    for name, kind in expect_kinds.items():
        assert name in by_name, name
        k, size, mtime, _ = by_name[name]
        st = os.lstat(bytes(fs.root) + b"/" + name)
        assert k == kind, name
        assert size == (st.st_size if kind == KIND_FILE else 0), name
        assert mtime == st.st_mtime_ns // 10**9, name
    assert by_name[b"mib"][1] == MIB and by_name[b"sparse"][1] == GIB and by_name[b"one"][1] == 1
    # Never ".", "..", dotfiles, or names a request could not ask for.
    listed = set(by_name)
    assert not listed & {b".", b"..", b".hidden", b"ctl\x01name", b"bad\xffutf8"}
    # Exactly what is on disk, minus those.
    on_disk = {n for n in os.listdir(bytes(fs.root))
               if not n.startswith(b".") and n not in (b"ctl\x01name", b"bad\xffutf8")}
    assert listed == on_disk
    check_fields(wait_entry(fs.d, a.local_port), "ok", file=".", offset=ABSENT)


def test_list_sub_and_dotfiles(fs):
    a = file_exchange(fs.port, file_list("sub"))
    assert a.status == OK
    assert sorted((e[3], e[0], e[1]) for e in a.entries) == [(b"deeper", KIND_DIR, 0),
                                                             (b"inner.txt", KIND_FILE, 11)]
    a = file_exchange(fs.ports["dots"], file_list("sub"))
    assert sorted(e[3] for e in a.entries) == [b".hid", b"deeper", b"inner.txt"]
    a = file_exchange(fs.ports["dots"], file_list(""))
    assert b".hidden" in {e[3] for e in a.entries}
    # a symlink to a directory inside the root is listed through
    a = file_exchange(fs.port, file_list("dirlink"))
    assert a.status == OK
    assert sorted(e[3] for e in a.entries) == [b"deeper", b"inner.txt"]


def test_list_empty_directory(fs):
    d = fs.root / "sub" / "deeper"
    a = file_exchange(fs.port, file_list("sub/deeper"))
    assert a.status == OK
    assert [e[3] for e in a.entries] == [b"leaf.txt"]
    empty = fs.root / "emptydir"
    empty.mkdir()
    try:
        a = file_exchange(fs.port, file_list("emptydir"))
        assert (a.status, a.entries, a.entry_frames, a.end) == (OK, [], 0, (OK, b"\x00"))
    finally:
        empty.rmdir()
    assert d.is_dir()


def test_list_3000_entries(fs):
    a = file_exchange(fs.port, file_list("many"), timeout=30)
    assert a.status == OK
    names = sorted(e[3].decode() for e in a.entries)
    assert names == sorted(f"entry-with-a-rather-long-name-{i:04d}.txt" for i in range(3000))
    assert a.entry_frames >= 2  # 3000 entries of 54 bytes do not fit in one 64 KiB frame
    for kind, size, _, name in a.entries:
        assert kind == KIND_FILE and size == int(name[30:34]) % 7
    assert a.end == (OK, b"\x00")
    assert wait_entry(fs.d, a.local_port)["RESULT"] == "ok"


# ---------------------------------------------------------------------------
# request boundaries: split requests, unread bytes, timeouts, busy

def test_request_split_at_every_byte(fs):
    req = file_get("sub/inner.txt", offset=3)
    with socket.create_connection(("127.0.0.1", fs.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(req)):  # bounded: ~40 bytes
            s.sendall(req[i:i + 1])
            time.sleep(0.005)
        f = read_frame(s)
        assert f[:3] == (1, FILE_INFO, OK)
        info = conftest.parse_file_info(f[3])
        assert recv_exact(s, info["length"]) == b"er file\n"
        assert read_frame(s) == (1, FILE_END, OK, b"\x00")
        assert s.recv(1) == b""


def test_closed_inside_request(fs):
    """A client that half-closes inside its request gets a bad-request answer,
    never a silent close (PROTOCOL.md 5; BRIEF.md: every refusal reaches the
    client as an error it can print)."""
    req = file_get("one")
    for cut in (5, 12, len(req) - 1):
        a = file_exchange(fs.port, req[:cut], shut_wr=True, timeout=10)
        assert a.status == BAD_REQUEST, cut


@pytest.fixture
def short_timeouts(daemon_factory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    make_sparse(root / "big", GIB, {0: b"x"})
    (root / "one").write_bytes(b"x")
    port = free_port()
    d = daemon_factory(make_config([file_listener(port, root)], limits={"idle_timeout": 1, "total_timeout": 2}))
    d.port, d.root = port, root
    return d


def test_timeout_partial_request(short_timeouts):
    d = short_timeouts
    t0 = time.monotonic()
    a = file_exchange(d.port, file_get("one")[:20], timeout=10)
    assert (a.status, a.text) == (TIMEOUT, "the request did not arrive in time")
    assert 0.8 < time.monotonic() - t0 < 4
    check_fields(wait_entry(d, a.local_port), "timeout")


def test_timeout_trickled_request(short_timeouts):
    """total_timeout bounds the request even when each byte comes within the
    idle timeout."""
    d = short_timeouts
    req = file_get("one")
    out = b""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(0.4)
        for i in range(len(req) - 1):  # bounded: ~30 bytes, 0.4 s each
            try:
                s.sendall(req[i:i + 1])
                b = s.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not b:
                break
            out += b
            if len(out) >= 12 and len(out) >= 12 + int.from_bytes(out[8:12], "big"):
                break
    assert time.monotonic() - t0 < 5
    assert conftest.parse_frame(out) == (1, FILE_INFO, TIMEOUT, b"the request did not arrive in time")


def test_client_stops_reading(short_timeouts):
    """Once the data flows, a client that stops reading is dropped after
    idle_timeout (RESULT=timeout), the child exits."""
    d = short_timeouts
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", d.port))
        lport = s.getsockname()[1]
        s.sendall(file_get("big"))
        f = read_frame(s)
        assert f[:3] == (1, FILE_INFO, OK)
        # A transfer longer than total_timeout is fine while it progresses.
        got = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:  # slowly: ~1 MB/s, far from the end of the file
            got += len(s.recv(1 << 16))
            time.sleep(0.05)
        assert got > 0
        e = wait_entry(d, lport, timeout=8)  # then silence: idle timeout
    check_fields(e, "timeout", file="big", offset=0)
    d.wait_no_children()


def test_busy_is_a_file_info_frame(daemon_factory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "one").write_bytes(b"x")
    port = free_port()
    d = daemon_factory(make_config([file_listener(port, root, lab_file="one")], limits={"max_children": 1}))
    holder = hold_child(d, port)
    try:
        a = file_exchange(port, file_get("one"))
        assert (a.status, a.text) == (BUSY, "server busy: all 1 client slots are in use, try again later")
        # A lab client gets no text (it would land in its file): a bare close.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"0\x00")
            assert conftest.recv_all(s) == b""
    finally:
        holder.close()
    d.wait_no_children()
    assert [e["RESULT"] for e in d.requests()].count("busy") == 2


# ---------------------------------------------------------------------------
# files that change during the transfer

@pytest.fixture
def changing(daemon_factory, tmp_path):
    return start_file_daemon(daemon_factory, tmp_path, limits={"idle_timeout": 10})


def start_stalled_get(d, name, flags=0):
    """Start a GET and read its FILE_INFO and a little data, then stop
    reading: the server is blocked in sendfile with most of the file unsent."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(10)
    s.connect(("127.0.0.1", d.port))
    s.sendall(file_get(name, flags=flags))
    f = read_frame(s)
    assert f[:3] == (1, FILE_INFO, OK), f
    info = conftest.parse_file_info(f[3])
    assert len(recv_exact(s, 1000)) == 1000
    return s, info


def drain(s, left):
    h_len = 0
    while left > 0:
        b = s.recv(min(left, 1 << 20))
        if not b:
            break
        left -= len(b)
        h_len += len(b)
    return left


@pytest.mark.parametrize("flags", [0, 1])
def test_changed_during_transfer(changing, flags):
    """The file is appended to while it is being sent: FILE_END says changed."""
    d = changing
    p = d.root / "big"
    make_sparse(p, 256 * MIB, {0: b"start"})
    s, info = start_stalled_get(d, "big", flags)
    with s:
        with open(p, "ab") as f:
            f.write(b"appended")
        assert drain(s, info["length"] - 1000) == 0  # the promised length still comes
        assert read_frame(s) == (1, FILE_END, CHANGED, b"the file changed on the server during the transfer")
        assert s.recv(1) == b""
    check_fields(d.wait_requests(1)[0], "changed", file="big", offset=0)


def test_shrunk_during_transfer(changing):
    """The file shrinks while it is being sent: the connection ends early, no
    FILE_END (the client must not trust what it has)."""
    d = changing
    p = d.root / "big"
    make_sparse(p, 256 * MIB, {0: b"start"})
    s, info = start_stalled_get(d, "big")
    with s:
        os.truncate(p, 10 * MIB)
        left = drain(s, info["length"] - 1000)
        assert left > 0
    entry = d.wait_requests(1)[0]
    check_fields(entry, "changed", file="big", offset=0)
    assert int(entry["BYTES_OUT"]) < 256 * MIB


def test_client_gone_mid_transfer(changing):
    """A client that disappears mid-transfer (it closes with unread data: a
    reset) ends the transfer with RESULT=send-failed in the log; the child
    exits normally, it is not killed by SIGPIPE from sendfile(2).  (Whether
    the reset meets a blocked sendfile or the next call is timing: six
    tries.)"""
    d = changing
    make_sparse(d.root / "big", 256 * MIB, {0: b"start"})
    ports = []
    for _ in range(6):
        s, info = start_stalled_get(d, "big")
        ports.append(s.getsockname()[1])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # unread data: the kernel sends a reset
        d.wait_no_children()
    bad = [l for l in d.log().splitlines() if conftest.BAD_LOG.search(l)]
    assert bad == [], bad
    for lport in ports:
        e = wait_entry(d, lport, timeout=5)
        check_fields(e, "send-failed", file="big", offset=0)
        assert 1000 <= int(e["BYTES_OUT"]) < 256 * MIB


def test_log_fields_with_a_space_in_the_name(daemon_factory, tmp_path):
    """FILE= in the stderr summary stays one field when the name has a space
    (the [KEY=value ...] list is split on spaces by scripts)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "with space").write_bytes(b"s")
    port = free_port()
    d = daemon_factory(make_config([file_listener(port, root)]))
    a = file_exchange(port, file_get("with space"))
    assert (a.status, a.data) == (OK, b"s")
    deadline = time.monotonic() + 10
    line = None
    while line is None and time.monotonic() < deadline:
        line = next((l for l in d.log().splitlines() if f" REMOTE_PORT={a.local_port} " in l), None)
        time.sleep(0.02)
    assert line, d.log()
    fields = conftest.REQUEST_FIELDS.search(line).group(1).split(" ")
    assert all("=" in f for f in fields), fields
