#!/usr/bin/python3
"""Download-throughput benchmark of netlabd's TCP file service (a benchmark, not a test).

One file of random bytes (1 GiB by default), held in the page cache, is
downloaded over loopback in three ways, each against a named peer, all in one
run:

  write    netlabctl fetch -o OUT           vs  nginx (sendfile on) + curl -o OUT
  resume   netlabctl fetch --resume -o OUT  vs  nginx + curl -C - -o OUT
           (the second half; the first half is already on disk)
  discard  netlabctl fetch --discard        vs  iperf3, one stream of the same
           number of bytes: the loopback ceiling
           (plus nginx + curl -o /dev/null, for context only)

Every server is started by this script from a temporary directory with a
config of its own, on a free loopback port. Every output file is compared
with the source after each download (outside the timed region) and the run
stops at the first difference. The runs go round-robin (run i starts with a
different download each time) so machine noise hits every peer alike; the
medians give the ratios netlab/peer, with targets from the issue:
write >= 1.3, resume >= 1.3, discard >= 0.85 (of iperf3).

Run:  /usr/bin/python3 tests/bench/bench-file.py [--runs 5] [--size 1G] [--build build]
      [--peers nginx,iperf3,netlab] [--tmpdir DIR] [--json FILE] [--strict]

Exit status: 0 when measured (and, with --strict, every target met); 1 when a
download's output differed from the source, or with --strict when a target is
missed or netlabd did not exit 0 on SIGTERM; 2 when the bench could not run
(a missing binary, a server that did not start, a download that failed).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import (STOP_TIMEOUT, BenchError, Netlabd, Server, build_exe, free_ports, log, run_main,
                      stop_all, warn_sigterm_status)

HERE = Path(__file__).resolve().parent
TOP = HERE.parent.parent
ALL_PEERS = ("nginx", "iperf3", "netlab")
# Minimum netlab/peer ratios of the medians, from the issue.
TARGETS = {"write": ("curl-write", 1.3), "resume": ("curl-resume", 1.3), "discard": ("iperf3", 0.85)}
CLIENT_TIMEOUT = 300.0  # seconds for one download, whatever --size is
FILE_NAME = "big.bin"
MB = 1e6


class CorruptDownload(Exception):
    """A download finished but its output is not the source file."""


def parse_size(text):
    """'1G' -> 1073741824: K, M, G (and KiB, MiB, GiB) are powers of 1024."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgKMG]?)(i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"want a size such as 1G, 256M or 4096, got '{text}'")
    n = int(m.group(1)) * 1024 ** " KMG".index((m.group(2) or " ").upper())
    if not 2 <= n <= 64 * 1024 ** 3:
        raise argparse.ArgumentTypeError("want a size from 2 bytes to 64G")
    return n


def human_size(n):
    for unit, k in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= k and n % k == 0:
            return f"{n // k} {unit}"
    return f"{n} bytes"


def need_exe(name, hint):
    exe = shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None)
    if exe is None:
        raise BenchError(f"{name} is not installed ({hint})")
    return exe


DEPS_HINT = "run tests/bench/setup-bench-deps.sh"


class NginxServer(Server):
    """nginx serving the data dir with sendfile, one worker, no access log."""

    def __init__(self, port, workdir, root):
        super().__init__("nginx", port, workdir)
        self.exe = need_exe("nginx", DEPS_HINT + ", or leave it out with --peers iperf3,netlab")
        ndir = workdir / "nginx"
        ndir.mkdir()
        self.conf = ndir / "nginx.conf"
        temps = "".join(f"    {t}_temp_path {ndir / t};\n"
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # One worker: a download is one connection, which one worker serves
        # whatever worker_processes says (netlabd, too, serves it in one
        # forked child). sendfile and tcp_nopush on, as the issue says;
        # everything else is nginx's default (sendfile_max_chunk 2m, no
        # directio, no aio), the configuration the issue measured.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"{user}"
            "worker_processes 1;\n"
            "daemon off;\n"
            "master_process on;\n"
            f"pid {ndir / 'nginx.pid'};\n"
            f"error_log {self.logfile} warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "    access_log off;\n"
            "    sendfile on;\n"
            "    tcp_nopush on;\n"
            "    keepalive_timeout 0;\n"
            "    default_type application/octet-stream;\n"
            f"{temps}"
            "    server {\n"
            f"        listen 127.0.0.1:{port};\n"
            f"        root {root};\n"
            "        location / { }\n"
            "    }\n"
            "}\n")
        # -p: nothing of the system's /etc/nginx or /var/log/nginx is used.
        res = subprocess.run([self.exe, "-t", "-q", "-p", str(ndir), "-c", str(self.conf)],
                             capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise BenchError(f"nginx refuses the generated config {self.conf}:\n{res.stderr.strip()}")

    def command(self):
        return [self.exe, "-p", str(self.workdir / "nginx"), "-c", str(self.conf)]


class IperfServer(Server):
    """iperf3 -s -1: serves one test, then exits. Started afresh for every run."""

    def __init__(self, port, workdir):
        super().__init__("iperf3", port, workdir)
        self.exe = need_exe("iperf3", DEPS_HINT + ", or leave it out with --peers nginx,netlab")

    def command(self):
        return [self.exe, "-s", "-1", "-B", "127.0.0.1", "-p", str(self.port)]

    def finish(self):
        """After the client: the one-off server exits by itself."""
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()


class NetlabdServer(Netlabd, Server):
    def __init__(self, port, workdir, exe, root):
        super().__init__("netlabd", port, workdir)
        # Level info: one summary entry per download (bytes, duration), which
        # costs nothing next to a file of this size and tells the server's
        # side of the time.
        self.write_config(
            exe, workdir / "netlabd.conf",
            "limits = { max_children = 16; max_per_source = 16; idle_timeout = 30;"
            " total_timeout = 3600; grace_period = 2; };\n"
            'log = { target = "stderr"; level = "info"; };\n'
            "listeners = (\n"
            f'  {{ name = "files"; service = "file"; transport = "tcp"; address = "127.0.0.1";'
            f' port = {port}; root = "{root}"; }}\n'
            ");\n")


def find_build_exes(build, bindir, peers_hint="nginx,iperf3"):
    """netlabd and netlabctl, copied from the build dir into bindir: a rebuild
    during the bench (ninja replaces the files) must not change what is measured."""
    exes = {
        "netlabd": build_exe(build, "daemon", "netlabd", ["--help"], peers_hint, bindir),
        "netlabctl": build_exe(build, "cli", "netlabctl", ["fetch", "--help"], peers_hint, bindir),
    }
    help_text = subprocess.run([str(exes["netlabctl"]), "fetch", "--help"],
                               capture_output=True, text=True, timeout=10).stdout
    for opt in ("--discard", "--resume"):
        if opt not in help_text:
            raise BenchError(f"'netlabctl fetch --help' does not mention {opt}: this netlabctl "
                             "cannot run the bench")
    return exes


def make_source(path, size):
    """size random bytes (real data, not sparse): what the page cache must hold."""
    chunk = 16 * 1024 * 1024
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n
    os.chmod(path, 0o644)


def read_through(path):
    """cat > /dev/null: pull the file into the page cache."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(4 * 1024 * 1024)
        while f.readinto(buf):
            pass


def resident_bytes(path):
    """Bytes of path in the page cache (fincore), or None if unknown."""
    exe = shutil.which("fincore")
    if exe is None:
        return None
    res = subprocess.run([exe, "-b", "-n", "-o", "RES", str(path)], capture_output=True, text=True)
    try:
        return int(res.stdout.split()[0])
    except (IndexError, ValueError):
        return None


def copy_head(src, dst, n):
    """dst = the first n bytes of src (head -c N)."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        left = n
        while left:
            k = os.copy_file_range(fi.fileno(), fo.fileno(), left)
            if k == 0:
                raise BenchError(f"{src} is shorter than {n} bytes")
            left -= k


MADV_POPULATE_WRITE = 23  # Linux 5.14


def prefault(nbytes):
    """Touch nbytes of anonymous memory, then free it, just before a download
    that fills the page cache: see "Page-cache writes in a VM" in the README.
    Freed pages go to the head of the kernel's free lists, so the download's
    page cache gets pages the host still backs rather than ones the balloon's
    free page reporting has handed back to the host."""
    import mmap
    m = mmap.mmap(-1, nbytes)
    try:
        try:
            m.madvise(MADV_POPULATE_WRITE)
        except OSError:  # an older kernel: one write per page
            for off in range(0, nbytes, mmap.PAGESIZE):
                m[off] = 1
    finally:
        m.close()


def same_file(a, b):
    res = subprocess.run(["cmp", "-s", str(a), str(b)])
    if res.returncode > 1:
        raise BenchError(f"cmp {a} {b} failed with status {res.returncode}")
    return res.returncode == 0


def unlink(*paths):
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def failure_status(prog, e):
    """Log why prog stops at e, a CorruptDownload or a BenchError.

    Return: prog's exit status, 1 for a wrong output, 2 for a bench that could not run."""
    if isinstance(e, CorruptDownload):
        log(f"{prog}: WRONG OUTPUT: {e}")
        return 1
    log(f"{prog}: {e}")
    return 2


def check_netlabctl_json(label, proc, expect):
    """netlabctl --json's result in proc.stdout; raises CorruptDownload
    unless it has expect's fields."""
    try:
        res = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"{label} printed no JSON: {proc.stdout[:300]!r}") from None
    wrong = {k: res.get(k) for k, v in expect.items() if res.get(k) != v}
    if wrong:
        raise CorruptDownload(f"{label}: netlabctl reported {wrong}, want "
                              f"{ {k: expect[k] for k in wrong} }")
    return res


class Download:
    """One timed way of getting the bytes. prepare() and check() are not timed."""

    prefault_factor = 0  # set by main() for downloads that write a file

    def __init__(self, key, group, label, nbytes, expect_json=None):
        self.key = key  # unique name in the report
        self.group = group  # write | resume | discard
        self.label = label  # what the table shows
        self.nbytes = nbytes  # bytes that cross the socket
        self.writes_file = False
        # netlabctl --json: fields its result must have (a resume must really
        # resume: one that started over would still give the right file).
        self.expect_json = expect_json

    def check_json(self, proc):
        if self.expect_json is not None:
            check_netlabctl_json(self.label, proc, self.expect_json)

    def prepare(self):
        pass

    def command(self):
        raise NotImplementedError

    def check(self, proc, seconds):
        """Raise CorruptDownload if the result is wrong; return (MB/s, extra facts)."""
        raise NotImplementedError

    def cleanup(self):
        pass

    def measure(self, servers):
        """One timed download: returns MB/s (and the seconds it took)."""
        self.prepare()
        cmd = self.command()
        os.sync()  # earlier outputs' dirty pages must not be written back while we time
        if self.writes_file and Download.prefault_factor:
            prefault(int(self.nbytes * Download.prefault_factor) + 64 * 1024 ** 2)
        try:
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=CLIENT_TIMEOUT)
            seconds = time.perf_counter() - t0
        except subprocess.TimeoutExpired:
            raise BenchError(f"{self.label} did not finish within {CLIENT_TIMEOUT:.0f} s: "
                             f"{' '.join(cmd)}") from None
        except OSError as e:
            raise BenchError(f"{self.label}: cannot run {cmd[0]}: {e}") from None
        for s in servers:
            s.check_alive()
        if proc.returncode != 0:
            raise BenchError(f"{self.label} failed with status {proc.returncode}: {' '.join(cmd)}\n"
                             f"{(proc.stderr or proc.stdout).decode(errors='replace').strip()}")
        try:
            self.check_json(proc)
            rate, extra = self.check(proc, seconds)
        finally:
            self.cleanup()
        return rate, seconds, extra


class FileDownload(Download):
    """A download into OUT, compared with the source afterwards."""

    def __init__(self, key, group, label, nbytes, src, out, argv, half=None, part=None,
                 expect_json=None):
        super().__init__(key, group, label, nbytes, expect_json)
        self.src = src
        self.out = out
        self.argv = argv
        self.half = half  # resume: bytes already there
        self.part = part  # resume: where they are (OUT for curl, OUT.netlab-part for netlab)
        self.writes_file = True

    def leftovers(self):
        return [self.out, self.out.with_name(self.out.name + ".netlab-part"),
                self.out.with_name(self.out.name + ".netlab-meta")]

    def prepare(self):
        unlink(*self.leftovers())
        if self.half is not None:
            copy_head(self.src, self.part, self.half)

    def command(self):
        return self.argv

    def check(self, proc, seconds):
        if not self.out.exists():
            raise CorruptDownload(f"{self.label}: exit status 0 but no {self.out}")
        if not same_file(self.src, self.out):
            raise CorruptDownload(f"{self.label}: {self.out} ({self.out.stat().st_size} bytes) "
                                  f"differs from the source {self.src}")
        stale = [str(p) for p in self.leftovers()[1:] if p.exists()]
        if stale:
            raise CorruptDownload(f"{self.label}: left {', '.join(stale)} behind after a complete download")
        return self.nbytes / seconds / MB, {}

    def cleanup(self):
        # Dropped at once: a few GiB of outputs must not pile up in memory or on disk.
        unlink(*self.leftovers())


class DiscardDownload(Download):
    """A download whose bytes are thrown away: only the exit status is checked."""

    def __init__(self, key, group, label, nbytes, argv, expect_json=None):
        super().__init__(key, group, label, nbytes, expect_json)
        self.argv = argv

    def command(self):
        return self.argv

    def check(self, proc, seconds):
        return self.nbytes / seconds / MB, {}


class CurlNull(DiscardDownload):
    def check(self, proc, seconds):
        got = proc.stdout.decode(errors="replace").strip()
        if got != str(self.nbytes):
            raise CorruptDownload(f"{self.label}: curl received {got or 'no'} bytes, want {self.nbytes}")
        return self.nbytes / seconds / MB, {}


class Iperf3(Download):
    """iperf3 -c, one stream, -n bytes: its own receiver-side rate counts."""

    def __init__(self, nbytes, port, workdir):
        super().__init__("iperf3", "discard", "iperf3, 1 stream", nbytes)
        self.server = IperfServer(port, workdir)

    def prepare(self):
        self.server.start()

    def command(self):
        return [self.server.exe, "-c", "127.0.0.1", "-p", str(self.server.port),
                "-n", str(self.nbytes), "-J"]

    def measure(self, servers):
        try:
            return super().measure(servers)
        finally:
            self.server.stop()

    def check(self, proc, seconds):
        self.server.finish()
        try:
            res = json.loads(proc.stdout)
            recv = res["end"]["sum_received"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise BenchError(f"iperf3 printed no result: {proc.stdout[:500]!r}") from None
        sent = res["end"].get("sum_sent", {}).get("bytes")
        if sent != self.nbytes or not recv["bytes"] or not recv["seconds"]:
            raise BenchError(f"iperf3 sent {sent} bytes and its server counted {recv['bytes']} "
                             f"in {recv['seconds']} s; want {self.nbytes} sent")
        # The issue's ceiling is iperf3's own figure (it leaves out the control
        # connection); the wall-clock rate is kept for context in the JSON.
        return recv["bits_per_second"] / 8 / MB, {
            "wall_mb_per_sec": round(self.nbytes / seconds / MB, 1),
            "iperf3_seconds": recv["seconds"],
            # The server's count stops when the test ends; the last bytes in
            # flight may be left out of it (and out of its seconds).
            "iperf3_received_bytes": recv["bytes"],
            "retransmits": res["end"].get("sum_sent", {}).get("retransmits")}


def build_downloads(peers, exes, servers, data, src, size, workdir, iperf_port):
    half = size // 2
    rest = size - half
    downloads = []
    if "netlab" in peers:
        nl = servers["netlabd"]
        # --json only changes the summary line at the end; no progress bar
        # either way, since standard error is not a terminal.
        ctl = [str(exes["netlabctl"]), f"--config={workdir / 'netlabctl.ini'}", "fetch",
               "-H", "127.0.0.1", "-p", str(nl.port), "--json"]
        out = data / "netlab.out"
        whole = {"status": "ok", "offset": 0, "bytes": size, "resumed": False, "restarted": False}
        downloads += [
            FileDownload("netlab-write", "write", "netlabctl fetch -o", size, src, out,
                         [*ctl, "-o", str(out), FILE_NAME], expect_json=whole),
            FileDownload("netlab-resume", "resume", "netlabctl fetch --resume", rest, src, out,
                         [*ctl, "--resume", "-o", str(out), FILE_NAME],
                         half=half, part=out.with_name(out.name + ".netlab-part"),
                         expect_json={**whole, "offset": half, "bytes": rest, "resumed": True}),
            DiscardDownload("netlab-discard", "discard", "netlabctl fetch --discard", size,
                            [*ctl, "--discard", FILE_NAME], expect_json=whole),
        ]
    if "nginx" in peers:
        url = f"http://127.0.0.1:{servers['nginx'].port}/{FILE_NAME}"
        curl = [need_exe("curl", DEPS_HINT), "-sS", "--fail"]
        out = data / "curl.out"
        downloads += [
            FileDownload("curl-write", "write", "nginx + curl -o", size, src, out,
                         [*curl, "-o", str(out), url]),
            FileDownload("curl-resume", "resume", "nginx + curl -C -", rest, src, out,
                         [*curl, "-C", "-", "-o", str(out), url], half=half, part=out),
            CurlNull("curl-null", "discard", "nginx + curl -o /dev/null", size,
                     [*curl, "-o", "/dev/null", "-w", "%{size_download}", url]),
        ]
    if "iperf3" in peers:
        downloads.append(Iperf3(size, iperf_port, workdir))
    order = {"write": 0, "resume": 1, "discard": 2}
    downloads.sort(key=lambda d: order[d.group])
    return downloads


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="measured runs per download (default 5)")
    ap.add_argument("--size", type=parse_size, default=parse_size("1G"),
                    help="file size; K, M, G are powers of 1024 (default 1G)")
    ap.add_argument("--build", default="build", help="meson build dir, relative to the repository top (default build)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS),
                    help="comma-separated subset of " + ",".join(ALL_PEERS) + " (default all)")
    ap.add_argument("--tmpdir", metavar="DIR",
                    help="where the temporary directory goes (default $TMPDIR or /tmp); it needs "
                         "about 2.5 times --size free, and the source and outputs share its filesystem")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed first round")
    ap.add_argument("--prefault", type=float, default=2.0, metavar="F",
                    help="before each download that writes a file, touch and free F times its bytes "
                         "of memory (default 2; 0 turns it off; see the README)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if a ratio misses its target or netlabd did not exit 0 on SIGTERM")
    args = ap.parse_args()

    peers_wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers_wanted if p not in ALL_PEERS]
    if unknown or not peers_wanted or len(set(peers_wanted)) != len(peers_wanted):
        ap.error(f"--peers: want a comma-separated subset of {','.join(ALL_PEERS)}, got '{args.peers}'")
    if not 1 <= args.runs <= 100:
        ap.error("--runs: want 1-100")
    if not 0 <= args.prefault <= 8:
        ap.error("--prefault: want 0-8")
    Download.prefault_factor = args.prefault

    servers = {}
    downloads = []
    workdir = None
    report = None
    failed = None  # the exit status, once the bench cannot go on
    try:
        need_exe("cmp", "apt-get install diffutils")
        workdir = Path(tempfile.mkdtemp(prefix="netlab-bench-file-", dir=args.tmpdir))
        os.chmod(workdir, 0o755)
        exes = find_build_exes(args.build, workdir) if "netlab" in peers_wanted else {}
        free = shutil.disk_usage(workdir).free
        if free < args.size * 2.5 + 256 * 1024 ** 2:
            raise BenchError(f"{workdir} has {free // 1024 ** 2} MiB free; --size {human_size(args.size)} "
                             f"needs about {int(args.size * 2.5) // 1024 ** 2} MiB (use --tmpdir or --size)")
        (workdir / "netlabctl.ini").write_text("")  # no user's or system's defaults
        root = workdir / "root"  # what the servers serve
        data = workdir / "data"  # where the clients write; same filesystem as root
        root.mkdir(mode=0o755)
        data.mkdir(mode=0o755)
        src = root / FILE_NAME

        log(f"writing {human_size(args.size)} of random bytes to {src}")
        make_source(src, args.size)
        os.sync()
        read_through(src)
        cached = resident_bytes(src)
        if cached is not None and cached < args.size * 0.99:
            raise BenchError(f"only {cached} of {args.size} bytes of {src} stay in the page cache "
                             "after reading it: not enough memory for this --size?")

        ports = free_ports(3)
        if "nginx" in peers_wanted:
            servers["nginx"] = NginxServer(ports[0], workdir, root)
        if "netlab" in peers_wanted:
            servers["netlabd"] = NetlabdServer(ports[1], workdir, exes["netlabd"], root)
        for s in servers.values():
            s.start()
            log(f"started {s.name} (pid {s.proc.pid}) on 127.0.0.1:{s.port}")
        live = list(servers.values())
        downloads = build_downloads(peers_wanted, exes, servers, data, src, args.size, workdir, ports[2])

        if not args.no_warmup:
            for d in downloads:
                d.measure(live)
            log("warm-up done: every download ran once, untimed")

        results = {d.key: [] for d in downloads}
        extras = {d.key: [] for d in downloads}
        t_start = time.monotonic()
        for i in range(args.runs):
            k = i % len(downloads)
            for d in downloads[k:] + downloads[:k]:
                rate, seconds, extra = d.measure(live)
                results[d.key].append(rate)
                extras[d.key].append({"seconds": round(seconds, 4), **extra})
            log(f"run {i + 1}/{args.runs}: " + ", ".join(
                f"{d.key} {results[d.key][-1]:.0f}" for d in downloads) + " MB/s")
        elapsed = time.monotonic() - t_start

        cached = resident_bytes(src)
        report = {
            "size_bytes": args.size,
            "resume_bytes": args.size - args.size // 2,
            "runs": args.runs,
            "warmup": not args.no_warmup,
            "prefault_factor": args.prefault,
            "seconds": round(elapsed, 3),
            "mb": "10^6 bytes",
            "machine": {"nproc": os.cpu_count(), "kernel": platform.release()},
            "source_in_page_cache_bytes": cached,
            "downloads": {},
            "targets": {f"{k}: netlab/{v[0]}": v[1] for k, v in TARGETS.items()},
            "ratios": {},
        }
        for d in downloads:
            rates = results[d.key]
            report["downloads"][d.key] = {
                "group": d.group,
                "label": d.label,
                "bytes": d.nbytes,
                "median_mb_per_sec": round(statistics.median(rates), 1),
                "min_mb_per_sec": round(min(rates), 1),
                "max_mb_per_sec": round(max(rates), 1),
                "mb_per_sec": [round(r, 1) for r in rates],
                "runs": extras[d.key],
            }
        got = report["downloads"]
        for group, (peer, target) in TARGETS.items():
            nl = f"netlab-{group}"
            if nl in got and peer in got:
                r = ratio(got[nl]["median_mb_per_sec"], got[peer]["median_mb_per_sec"])
                report["ratios"][f"{nl}/{peer}"] = {
                    "group": group, "value": round(r, 3), "target": target, "met": r >= target}
        if "netlab-discard" in got and "curl-null" in got:
            r = ratio(got["netlab-discard"]["median_mb_per_sec"], got["curl-null"]["median_mb_per_sec"])
            report["ratios"]["netlab-discard/curl-null"] = {
                "group": "discard", "value": round(r, 3), "target": None, "met": None}
        if "nginx" in servers and "curl-write" in got and "curl-null" in got:
            # Context for the write target: what writing the file costs curl.
            report["curl_write_vs_null"] = round(got["curl-write"]["median_mb_per_sec"]
                                                 / got["curl-null"]["median_mb_per_sec"], 3)
    except (CorruptDownload, BenchError) as e:
        failed = failure_status("bench-file", e)
    finally:
        stopped_ok = stop_all(servers.values(), "bench-file")
        for d in downloads:
            if isinstance(d, Iperf3):
                d.server.stop()
        if "netlabd" in servers:
            servers["netlabd"].log_problems(400)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    if failed is not None:
        return failed
    nld = servers.get("netlabd")
    if nld is not None:
        report["netlabd_exit_status_on_sigterm"] = None if nld.killed else nld.proc.returncode
        if nld.killed or nld.proc.returncode != 0:
            stopped_ok = False
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    missed = [k for k, v in report["ratios"].items() if v["met"] is False]
    if args.strict and (missed or not stopped_ok):
        return 1
    return 0


def print_report(report):
    print(f"netlab file bench: {human_size(report['size_bytes'])} of random bytes in the page cache, "
          f"over 127.0.0.1, median of {report['runs']} runs, downloads interleaved "
          f"({report['machine']['nproc']} CPUs, Linux {report['machine']['kernel']}, "
          f"{report['seconds']:.1f} s measured; MB = 10^6 bytes; resume moves the second "
          f"{human_size(report['resume_bytes'])})")
    ratios_by_peer = {k.split("/")[1]: v for k, v in report["ratios"].items()}
    print(f"{'case':<9}{'download':<28}{'median MB/s':>12}{'min':>8}{'max':>8}"
          f"{'netlab/peer':>13}{'target':>9}  met?")
    last_group = None
    for key, d in report["downloads"].items():
        group = d["group"] if d["group"] != last_group else ""
        last_group = d["group"]
        r = ratios_by_peer.get(key)
        if r is None:
            rtxt, ttxt, mtxt = "", "", ""
        elif r["target"] is None:
            rtxt, ttxt, mtxt = f"{r['value']:.2f}", "-", "(context)"
        else:
            rtxt, ttxt, mtxt = f"{r['value']:.2f}", f">= {r['target']:.2f}", "MET" if r["met"] else "MISSED"
        print(f"{group:<9}{d['label']:<28}{d['median_mb_per_sec']:>12.0f}{d['min_mb_per_sec']:>8.0f}"
              f"{d['max_mb_per_sec']:>8.0f}{rtxt:>13}{ttxt:>9}  {mtxt}")
    if "curl_write_vs_null" in report:
        print(f"curl writing the file runs at {report['curl_write_vs_null']:.2f} of its /dev/null rate")
    if not any(k.startswith("netlab-") for k in report["downloads"]):
        print("netlab not measured (--peers): no ratios against the targets")
    c = report["source_in_page_cache_bytes"]
    # A few pages may go (memory pressure from other work, proactive reclaim):
    # worth a word only when a real part of the file had to be read from disk.
    if c is not None and c < report["size_bytes"] * 0.99:
        print(f"warning: only {c} of {report['size_bytes']} source bytes were in the page cache at the end")
    warn_sigterm_status(report)


if __name__ == "__main__":
    run_main(main)
