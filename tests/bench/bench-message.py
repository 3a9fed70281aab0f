#!/usr/bin/python3
"""Connection-rate benchmark of netlabd's TCP message service (a benchmark, not a test).

Measures connections per second for one message round trip per connection
(connect, send 16 bytes, read the reply until EOF, close), COUNT sequential
connections per run, against three peers started side by side on loopback:

  xinetd      xinetd with its own config, running tests/bench/xinetd-reply.c per connection
  forkserver  tests/bench/forkserver.c, a bare C fork-per-connection server (the ceiling)
  netlabd     build/daemon/netlabd with one "message" listener

Every peer gets a warm-up, then the runs go round-robin (run i starts with a
different peer each time) so machine noise hits all peers alike. The median
conn/s of each peer gives the ratios netlabd/xinetd (target >= 2.0) and
netlabd/forkserver (target >= 0.85). It also reports netlabd's supervisor RSS
after the runs and the time from exec to READY=1 on NOTIFY_SOCKET.

Run:  /usr/bin/python3 tests/bench/bench-message.py [--runs 5] [--count 2000] [--build build]
      [--peers xinetd,forkserver,netlabd] [--json FILE] [--strict]

Exit status: 0 when measured (and, with --strict, every target met); 1 with
--strict when a target is missed, a round trip failed, or netlabd did not exit 0
on SIGTERM; 2 when the bench could not run (missing binary, a peer that did not
start, a client that crashed).
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from benchlib import START_TIMEOUT, BenchError, Server, build_exe, free_ports, log, run_main, stop_all, tail

HERE = Path(__file__).resolve().parent
TOP = HERE.parent.parent
ALL_PEERS = ("xinetd", "forkserver", "netlabd")
TARGETS = {"xinetd": 2.0, "forkserver": 0.85}  # minimum netlabd/peer ratios, from the issue
CLIENT_TIMEOUT = 120.0  # seconds for one msgclient run, whatever COUNT is
WARMUP_MAX = 500


def compile_helpers(workdir):
    """Build the C helpers into workdir; returns ({name: path}, how xinetd-reply was linked)."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise BenchError(f"no C compiler '{cc}' (apt-get install gcc, or set CC)")

    def build(name, extra):
        exe = workdir / name
        cmd = [cc, "-O2", "-std=gnu11", "-Wall", "-Wextra", *extra, "-o", str(exe), str(HERE / f"{name}.c")]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if res.returncode == 0 and res.stderr.strip():
            log(res.stderr.rstrip())
        return exe, res

    out = {}
    # xinetd execs its server once per connection. A static binary skips the
    # dynamic loader on every exec, which makes xinetd ~15% faster here: the
    # peer gets the advantage, so the 2x target is not met against a straw man.
    for name, extra in (("msgclient", []), ("forkserver", []), ("xinetd-reply", ["-static"])):
        exe, res = build(name, extra)
        if res.returncode != 0 and extra:
            log(f"note: cannot link {name} with {' '.join(extra)} (no libc.a?), building it plainly")
            exe, res = build(name, [])
            extra = []
        if res.returncode != 0:
            raise BenchError(f"compiling {name}.c failed:\n{res.stderr}")
        out[name] = exe
    linkage = "static" if extra else "dynamic"
    return out, linkage


def vm_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Peer(Server):
    """A server under test, started and stopped by pid."""

    def __init__(self, name, port, workdir):
        super().__init__(name, port, workdir)
        self.ready_ms = None


class XinetdPeer(Peer):
    def __init__(self, port, workdir, reply_exe):
        super().__init__("xinetd", port, workdir)
        self.exe = shutil.which("xinetd") or "/usr/sbin/xinetd"
        if not os.access(self.exe, os.X_OK):
            raise BenchError("xinetd is not installed (apt-get install -y xinetd), "
                             "or leave it out with --peers forkserver,netlabd")
        self.conf = workdir / "xinetd.conf"
        self.pidfile = workdir / "xinetd.pid"
        # The peer gets every advantage: no rate limiter (cps), no instance caps,
        # no libwrap lookup and no per-connection log line, so what is left is
        # xinetd's own accept-fork-exec path.
        user = "\tuser        = root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            "defaults\n{\n"
            "\tinstances      = UNLIMITED\n"
            "\tper_source     = UNLIMITED\n"
            "\tcps            = 100000 1\n"
            f"\tlog_type       = FILE {workdir / 'xinetd-service.log'}\n"
            "\tlog_on_success =\n"
            "\tlog_on_failure = HOST\n"
            "}\n"
            "service netlab-bench\n{\n"
            "\ttype        = UNLISTED\n"
            "\tsocket_type = stream\n"
            "\tprotocol    = tcp\n"
            "\twait        = no\n"
            f"\tport        = {port}\n"
            "\tbind        = 127.0.0.1\n"
            "\tflags       = NOLIBWRAP\n"
            f"{user}"
            f"\tserver      = {reply_exe}\n"
            "}\n")

    def command(self):
        return [self.exe, "-dontfork", "-f", str(self.conf), "-pidfile", str(self.pidfile)]


class ForkserverPeer(Peer):
    def __init__(self, port, workdir, exe):
        super().__init__("forkserver", port, workdir)
        self.exe = exe

    def command(self):
        return [str(self.exe), str(self.port)]


class NotifyListener:
    """A NOTIFY_SOCKET for netlabd, drained by a thread for the whole bench.

    Draining matters after READY=1 too: sd_notify() blocks on a full socket, so a
    daemon sending live STATUS= updates must never find the queue full.
    """

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o666)  # in case netlabd ever drops privileges before notifying
        self.sock.settimeout(0.1)
        self.ready = threading.Event()
        self.ready_at = None
        self.n_messages = 0
        self.last_status = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.drain, name="notify", daemon=True)
        self.thread.start()

    def drain(self):
        while not self.stopping.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            self.n_messages += 1
            for line in data.decode("utf-8", "replace").splitlines():
                if line == "READY=1" and self.ready_at is None:
                    self.ready_at = now
                    self.ready.set()
                elif line.startswith("STATUS="):
                    self.last_status = line[len("STATUS="):]

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=2)
        self.sock.close()


class NetlabdPeer(Peer):
    def __init__(self, port, workdir, exe):
        super().__init__("netlabd", port, workdir)
        self.exe = exe
        self.conf = workdir / "netlabd.conf"
        self.notify = None
        self.conf.write_text(
            "limits = { max_children = 256; max_per_source = 256; idle_timeout = 5; grace_period = 2; };\n"
            'log = { target = "stderr"; level = "warning"; };\n'
            "listeners = (\n"
            f'  {{ name = "bench"; service = "message"; transport = "tcp"; address = "127.0.0.1"; port = {port}; }}\n'
            ");\n")

    def command(self):
        return [str(self.exe), "-c", str(self.conf), "--log-target=stderr"]

    def environment(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LISTEN_", "WATCHDOG_", "NOTIFY_SOCKET"))}
        env["NOTIFY_SOCKET"] = str(self.notify.path)
        return env

    def start(self):
        self.notify = NotifyListener(self.workdir / "notify.sock")
        with open(self.logfile, "wb") as logf:
            t0 = time.monotonic()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         env=self.environment(), close_fds=True,
                                         start_new_session=True)
        deadline = t0 + START_TIMEOUT
        while not self.notify.ready.wait(0.02):
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"netlabd sent no READY=1 within {START_TIMEOUT:.0f} s "
                                 f"({self.notify.n_messages} notify messages seen); its log ends with:\n"
                                 f"{tail(self.logfile)}")
        self.ready_ms = (self.notify.ready_at - t0) * 1000.0
        # READY=1 should mean "listening"; check it, and that the socket is netlabd's.
        self.wait_started(time.monotonic() + START_TIMEOUT)

    def stop(self):
        try:
            super().stop()
        finally:
            if self.notify is not None:
                self.notify.close()


def find_netlabd(build):
    return build_exe(build, "daemon", "netlabd", ["--help"], "xinetd,forkserver")


def run_client(msgclient, peer, count):
    peer.check_alive()
    try:
        res = subprocess.run([str(msgclient), "127.0.0.1", str(peer.port), str(count)],
                             capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"msgclient against {peer.name} did not finish within "
                         f"{CLIENT_TIMEOUT:.0f} s") from None
    if res.returncode not in (0, 1):
        raise BenchError(f"msgclient against {peer.name} failed (status {res.returncode}):\n"
                         f"{res.stderr.strip()}")
    try:
        result = json.loads(res.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"msgclient printed no JSON: {res.stdout!r} {res.stderr!r}") from None
    if result["failed"]:
        log(f"warning: {result['failed']} of {result['count']} round trips to {peer.name} failed:\n"
            f"{res.stderr.rstrip()}")
    peer.check_alive()
    return result


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="measured runs per peer (default 5)")
    ap.add_argument("--count", type=int, default=2000, help="connections per run (default 2000)")
    ap.add_argument("--build", default="build", help="meson build dir, relative to the repository top (default build)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS),
                    help="comma-separated subset of " + ",".join(ALL_PEERS) + " (default all)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if a ratio misses its target, a round trip failed, "
                         "or netlabd did not exit 0 on SIGTERM")
    args = ap.parse_args()

    peers_wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers_wanted if p not in ALL_PEERS]
    if unknown or not peers_wanted or len(set(peers_wanted)) != len(peers_wanted):
        ap.error(f"--peers: want a comma-separated subset of {','.join(ALL_PEERS)}, got '{args.peers}'")
    if not 1 <= args.runs <= 100:
        ap.error("--runs: want 1-100")
    if not 1 <= args.count <= 1000000:
        ap.error("--count: want 1-1000000")
    # Keep the table's order fixed whatever order --peers used.
    peers_wanted = [p for p in ALL_PEERS if p in peers_wanted]

    peers = []
    workdir = None
    try:
        netlabd_exe = find_netlabd(args.build) if "netlabd" in peers_wanted else None
        workdir = Path(tempfile.mkdtemp(prefix="netlab-bench-"))
        os.chmod(workdir, 0o711)
        exes, reply_linkage = compile_helpers(workdir)
        ports = dict(zip(peers_wanted, free_ports(len(peers_wanted))))
        for name in peers_wanted:
            if name == "xinetd":
                peer = XinetdPeer(ports[name], workdir, exes["xinetd-reply"])
            elif name == "forkserver":
                peer = ForkserverPeer(ports[name], workdir, exes["forkserver"])
            else:
                peer = NetlabdPeer(ports[name], workdir, netlabd_exe)
            peers.append(peer)
            peer.start()
            log(f"started {name} (pid {peer.proc.pid}) on 127.0.0.1:{peer.port}")

        warmup = min(args.count, WARMUP_MAX)
        for peer in peers:
            run_client(exes["msgclient"], peer, warmup)

        results = {p.name: [] for p in peers}
        t_start = time.monotonic()
        for i in range(args.runs):
            order = peers[i % len(peers):] + peers[:i % len(peers)]
            for peer in order:
                r = run_client(exes["msgclient"], peer, args.count)
                results[peer.name].append(r)
            log(f"run {i + 1}/{args.runs}: " + ", ".join(
                f"{p.name} {results[p.name][-1]['conn_per_sec']:.0f}" for p in peers) + " conn/s")
        elapsed = time.monotonic() - t_start

        report = {
            "count": args.count,
            "runs": args.runs,
            "warmup": warmup,
            "seconds": round(elapsed, 3),
            "machine": {"nproc": os.cpu_count(), "kernel": platform.release()},
            "xinetd_reply_linkage": reply_linkage if "xinetd" in peers_wanted else None,
            "peers": {},
            "targets": {f"netlabd/{k}": v for k, v in TARGETS.items()},
            "ratios": {},
        }
        for peer in peers:
            rates = [r["conn_per_sec"] for r in results[peer.name]]
            report["peers"][peer.name] = {
                "median_conn_per_sec": statistics.median(rates),
                "min_conn_per_sec": min(rates),
                "max_conn_per_sec": max(rates),
                "conn_per_sec": rates,
                "failed": sum(r["failed"] for r in results[peer.name]),
                "pid": peer.proc.pid,
                "rss_kib": vm_rss_kib(peer.proc.pid),
            }
        if "netlabd" in report["peers"]:
            nl = next(p for p in peers if p.name == "netlabd")
            report["netlabd"] = {
                "supervisor_rss_kib": report["peers"]["netlabd"]["rss_kib"],
                "exec_to_ready_ms": round(nl.ready_ms, 2),
                "notify_messages": nl.notify.n_messages,
                "last_status": nl.notify.last_status,
            }
            for other, target in TARGETS.items():
                if other in report["peers"]:
                    r = ratio(report["peers"]["netlabd"]["median_conn_per_sec"],
                              report["peers"][other]["median_conn_per_sec"])
                    # A peer with no successful connection has no ratio: count it as missed.
                    report["ratios"][f"netlabd/{other}"] = {
                        "value": None if r is None else round(r, 3), "target": target,
                        "met": r is not None and r >= target}
        else:
            # No netlabd: still show how the two peers compare, for context.
            if "xinetd" in report["peers"] and "forkserver" in report["peers"]:
                r = ratio(report["peers"]["forkserver"]["median_conn_per_sec"],
                          report["peers"]["xinetd"]["median_conn_per_sec"])
                report["ratios"]["forkserver/xinetd"] = {
                    "value": None if r is None else round(r, 3), "target": None, "met": None}
    except BenchError as e:
        log(f"bench-message: {e}")
        return 2
    finally:
        stopped_ok = stop_all(peers, "bench-message")
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    if "netlabd" in report:
        # The brief: netlabd exits 0 on SIGTERM. Worth a line if it did not.
        nl = next(p for p in peers if p.name == "netlabd")
        report["netlabd"]["exit_status_on_sigterm"] = None if nl.killed else nl.proc.returncode
        if nl.killed or nl.proc.returncode != 0:
            stopped_ok = False
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    missed = [k for k, v in report["ratios"].items() if v["met"] is False]
    failed = sum(p["failed"] for p in report["peers"].values())
    if args.strict and (missed or failed or not stopped_ok):
        return 1
    return 0


def print_report(report):
    print(f"netlab message bench: {report['count']} sequential connections per run, "
          f"median of {report['runs']} runs, peers interleaved "
          f"({report['machine']['nproc']} CPUs, Linux {report['machine']['kernel']}, "
          f"{report['seconds']:.1f} s measured)")
    print(f"{'peer':<12}{'median conn/s':>15}{'min':>10}{'max':>10}{'failed':>9}{'RSS KiB':>10}")
    for name, p in report["peers"].items():
        rss = "-" if p["rss_kib"] is None else str(p["rss_kib"])
        print(f"{name:<12}{p['median_conn_per_sec']:>15.0f}{p['min_conn_per_sec']:>10.0f}"
              f"{p['max_conn_per_sec']:>10.0f}{p['failed']:>9}{rss:>10}")
    for key, r in report["ratios"].items():
        if r["value"] is None:
            print(f"ratio {key:<20}    n/a   (a peer completed no connection)"
                  + ("" if r["target"] is None else f"   target >= {r['target']:.2f}   MISSED"))
        elif r["target"] is None:
            print(f"ratio {key:<20} {r['value']:6.2f}   (context only: netlabd not measured)")
        else:
            print(f"ratio {key:<20} {r['value']:6.2f}   target >= {r['target']:.2f}   "
                  f"{'MET' if r['met'] else 'MISSED'}")
    if "netlabd" in report:
        n = report["netlabd"]
        rss = "unknown" if n["supervisor_rss_kib"] is None else f"{n['supervisor_rss_kib']} KiB"
        print(f"netlabd supervisor RSS after the runs: {rss}")
        print(f"netlabd exec to READY=1: {n['exec_to_ready_ms']:.1f} ms")
        if n["exit_status_on_sigterm"] != 0:
            status = n["exit_status_on_sigterm"]
            print("warning: netlabd " + ("needed SIGKILL" if status is None else
                                         f"exited with status {status} on SIGTERM (want 0)"))
    else:
        print("netlabd not measured (--peers): no ratios against the targets")


if __name__ == "__main__":
    run_main(main)
