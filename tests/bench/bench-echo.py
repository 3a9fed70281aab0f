#!/usr/bin/python3
"""Round-trip benchmark of netlabd's UDP echo service (a benchmark, not a test).

Measures echo round trips per second with 64-byte datagrams, from a closed-loop
load generator (tests/bench/echoload.c: one datagram in flight per client,
every reply checked byte for byte), with 1 client and with 8 concurrent
clients, against two servers started side by side on loopback:

  plain    tests/bench/plainecho.c, a single-threaded blocking recvfrom/sendto
           echo server: the peer
  netlabd  build/daemon/netlabd with one echo listener (transport udp), its
           reflector guard's rate limits raised out of the way

The runs alternate (1 client, then 8, in every round; round i starts with a
different server), so machine noise hits both alike. The medians give the
ratios netlabd/plain, with targets from the issue: >= 1.0 with 1 client,
>= 1.5 with 8 clients, and no lost replies.

Run:  /usr/bin/python3 tests/bench/bench-echo.py [--runs 5] [--seconds 3] [--build build]
      [--peers plain,netlabd] [--no-pin] [--json FILE] [--strict] [--quick]

Exit status: 0 when measured (and, with --strict, every target met); 1 with
--strict when a target is missed, netlabd lost or garbled a reply, or netlabd
did not exit 0 on SIGTERM; 2 when the bench could not run (missing binary, a
server that did not start, a load generator that failed).
"""

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import (PROBLEMS, BenchError, Netlabd, Server, build_exe, free_ports, log, pid_has_socket,
                      run_main, stop_all, warn_sigterm_status)

HERE = Path(__file__).resolve().parent
TOP = HERE.parent.parent
ALL_PEERS = ("plain", "netlabd")
CLIENT_COUNTS = (1, 8)
TARGETS = {1: 1.0, 8: 1.5}  # minimum netlabd/plain ratios of the medians, from the issue
SIZE = 64  # payload bytes, from the issue
TIMEOUT_MS = 200  # echoload: a reply later than this counts as lost
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The reflector guard (docs/PROTOCOL.md section 10) would rightly cap one
# source at 100 replies/s; every bench client is 127.0.0.1, so the bench's
# config raises the limits far above what loopback can carry.
GUARD = {
    "rate_per_source": 10000000,
    "burst_per_source": 10000000,
    "rate_total": 10000000,
    "bytes_total": 2000000000,
}


def compile_helpers(workdir):
    """Build echoload and plainecho into workdir; returns {name: path}."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise BenchError(f"no C compiler '{cc}' (apt-get install gcc, or set CC)")
    out = {}
    for name in ("echoload", "plainecho"):
        exe = workdir / name
        cmd = [cc, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
               str(HERE / f"{name}.c")]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise BenchError(f"compiling {name}.c failed:\n{res.stderr}")
        out[name] = exe
    return out



def udp_inode(port):
    """Inode of a UDP socket bound to 127.0.0.1:port (or the wildcard), or None."""
    wants = (f"0100007F:{port:04X}", f"00000000:{port:04X}")
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] in wants:
                return fields[9]
    return None


def cpu_seconds(pid):
    """utime + stime of every thread of pid, in seconds (fields 14 and 15 of stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class UdpServer(Server):
    """An echo server under test: started and stopped by pid (benchlib), ready once
    our own process (not a system daemon) has the UDP socket on its port."""

    def listening(self):
        inode = udp_inode(self.port)
        return inode is not None and pid_has_socket(self.proc.pid, inode)

    def awaited(self):
        return f"bind UDP 127.0.0.1:{self.port}"

    def pin(self, cpu):
        """Move every thread of the server to cpu."""
        try:
            for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
                os.sched_setaffinity(int(tid), {cpu})
        except OSError as e:
            self.check_alive()
            raise BenchError(f"cannot pin {self.name} (pid {self.proc.pid}) to CPU {cpu}: {e}") from None

    def cpu_seconds(self):
        self.check_alive()
        return cpu_seconds(self.proc.pid)


class PlainServer(UdpServer):
    def __init__(self, port, workdir, exe):
        super().__init__("plain", port, workdir)
        self.exe = exe

    def command(self):
        return [str(self.exe), str(self.port)]


class NetlabdServer(Netlabd, UdpServer):
    def __init__(self, port, workdir, exe):
        super().__init__("netlabd", port, workdir)
        # Level notice: the guard's aggregate entry (at most one per 10 s, and
        # only when something was dropped) tells why a reply went missing.
        guard = " ".join(f"{k} = {v};" for k, v in GUARD.items())
        self.write_config(
            exe, workdir / "netlabd.conf",
            'log = { target = "stderr"; level = "notice"; };\n'
            "listeners = (\n"
            f'  {{ name = "echo"; service = "echo"; transport = "udp"; address = "127.0.0.1";'
            f" port = {port};\n    {guard} }}\n"
            ");\n",
            hint=" (does this netlabd have the echo service and the guard keys? "
                 "'netlabd --list-keys | grep -e echo -e udp')",
            advice="\nor run only the peer with --peers plain")


def find_netlabd(build, bindir):
    """netlabd from the build dir, copied into bindir (benchlib.build_exe())."""
    return build_exe(build, "daemon", "netlabd", ["--help"], "plain", bindir)


def children_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_load(echoload, server, clients, seconds, warmup, load_cpu):
    """One echoload run against server: its JSON result, plus the CPU share the
    server and the generator used over the whole run (warm-up and drain included)."""
    cmd = [str(echoload), "-w", str(warmup), "-t", str(TIMEOUT_MS)]
    if load_cpu is not None:
        cmd += ["-a", str(load_cpu)]
    cmd += ["127.0.0.1", str(server.port), str(clients), str(seconds), str(SIZE)]
    server_cpu0 = server.cpu_seconds()
    load_cpu0 = children_cpu_seconds()
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=warmup + seconds + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"echoload against {server.name} did not finish within "
                         f"{warmup + seconds + 30:.0f} s") from None
    wall = time.perf_counter() - t0
    server_busy = (server.cpu_seconds() - server_cpu0) / wall
    load_busy = (children_cpu_seconds() - load_cpu0) / wall
    if res.returncode not in (0, 1):
        raise BenchError(f"echoload against {server.name} failed (status {res.returncode}): "
                         f"{' '.join(cmd)}\n{res.stderr.strip()}")
    try:
        result = json.loads(res.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"echoload printed no JSON: {res.stdout!r} {res.stderr!r}") from None
    if result["clients"] != clients or result["size"] != SIZE:
        raise BenchError(f"echoload ran {result['clients']} clients of {result['size']} bytes, "
                         f"want {clients} of {SIZE}")
    bad = {k: result[k] for k in ("lost", "stale", "altered", "errors", "warmup_lost") if result[k]}
    if bad:
        log(f"warning: {server.name}, {clients} client(s): "
            + ", ".join(f"{k} {v}" for k, v in bad.items())
            + (f"\n{res.stderr.rstrip()}" if res.stderr.strip() else ""))
    result["server_cpu"] = round(server_busy, 3)
    result["load_cpu"] = round(load_busy, 3)
    # Server CPU time per round trip: what a server costs, whoever is the
    # bottleneck. The CPU share covers warm-up and drain too, at about the
    # same rate as the window.
    result["server_cpu_us_per_rt"] = round(server_busy * 1e6 / result["rate"], 2) if result["rate"] else None
    return result


def ratio(a, b):
    return a / b if a is not None and b else None


def summarize(runs):
    rates = [r["rate"] for r in runs]
    return {
        "median_rate": round(statistics.median(rates), 1),
        "min_rate": round(min(rates), 1),
        "max_rate": round(max(rates), 1),
        "rates": [round(r, 1) for r in rates],
        "round_trips": sum(r["round_trips"] for r in runs),
        # Every datagram sent from the warm-up on: a loss in the warm-up is a loss.
        "lost": sum(r["lost"] + r["warmup_lost"] for r in runs),
        "stale": sum(r["stale"] for r in runs),
        "altered": sum(r["altered"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "client_min": min(r["client_min"] for r in runs),
        "client_max": max(r["client_max"] for r in runs),
        "median_server_cpu": round(statistics.median(r["server_cpu"] for r in runs), 3),
        "median_load_cpu": round(statistics.median(r["load_cpu"] for r in runs), 3),
        "median_server_cpu_us_per_rt": median_or_none([r["server_cpu_us_per_rt"] for r in runs]),
    }


def median_or_none(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="measured runs per server and client count (default 5)")
    ap.add_argument("--seconds", type=float, default=3.0, help="measured window of one run (default 3)")
    ap.add_argument("--warmup", type=float, default=1.0,
                    help="seconds of load before each run's window, not counted (default 1)")
    ap.add_argument("--build", default="build", help="meson build dir, relative to the repository top (default build)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS),
                    help="comma-separated subset of " + ",".join(ALL_PEERS) + " (default both)")
    ap.add_argument("--no-pin", action="store_true",
                    help="let the scheduler place the load generator and the servers "
                         "(default: generator on CPU 0, servers on CPU 1; see the README)")
    ap.add_argument("--quick", action="store_true",
                    help="a short smoke run (1 run of 0.5 s): checks the bench works, not for figures")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--busy-poll", type=int, default=0, metavar="USEC",
                    help="set netlabd's busy_poll_usec (0..1000; default 0, netlabd's default)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if a ratio misses its target, netlabd lost or garbled a reply, "
                         "or netlabd did not exit 0 on SIGTERM")
    args = ap.parse_args()
    if not 0 <= args.busy_poll <= 1000:
        ap.error("--busy-poll: must be from 0 to 1000")
    GUARD["busy_poll_usec"] = args.busy_poll

    peers_wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers_wanted if p not in ALL_PEERS]
    if unknown or not peers_wanted or len(set(peers_wanted)) != len(peers_wanted):
        ap.error(f"--peers: want a comma-separated subset of {','.join(ALL_PEERS)}, got '{args.peers}'")
    if args.quick:
        args.runs, args.seconds, args.warmup = 1, 0.5, 0.2
    if not 1 <= args.runs <= 100:
        ap.error("--runs: want 1-100")
    if not 0.1 <= args.seconds <= 600:
        ap.error("--seconds: want 0.1-600")
    if not 0 <= args.warmup <= 60:
        ap.error("--warmup: want 0-60")
    peers_wanted = [p for p in ALL_PEERS if p in peers_wanted]
    # Pinned, a run is repeatable; unpinned, the 1-client rate is bimodal (see the README).
    allowed = sorted(os.sched_getaffinity(0))
    pin = None if args.no_pin or len(allowed) < 2 else (allowed[0], allowed[1])

    servers = []
    workdir = None
    report = None
    try:
        workdir = Path(tempfile.mkdtemp(prefix="netlab-bench-echo-"))
        os.chmod(workdir, 0o711)
        exes = compile_helpers(workdir)
        netlabd_exe = find_netlabd(args.build, workdir) if "netlabd" in peers_wanted else None
        ports = dict(zip(peers_wanted, free_ports(len(peers_wanted), socket.SOCK_DGRAM)))
        # All configs are checked before anything starts.
        for name in peers_wanted:
            if name == "plain":
                servers.append(PlainServer(ports[name], workdir, exes["plainecho"]))
            else:
                servers.append(NetlabdServer(ports[name], workdir, netlabd_exe))
        for server in servers:
            server.start()
            if pin is not None:
                server.pin(pin[1])
            log(f"started {server.name} (pid {server.proc.pid}) on UDP 127.0.0.1:{server.port}"
                + (f", pinned to CPU {pin[1]}" if pin else ""))

        results = {(s.name, c): [] for s in servers for c in CLIENT_COUNTS}
        t_start = time.monotonic()
        for i in range(args.runs):
            order = servers[i % len(servers):] + servers[:i % len(servers)]
            line = []
            for clients in CLIENT_COUNTS:
                for server in order:
                    r = run_load(exes["echoload"], server, clients, args.seconds, args.warmup,
                                 pin[0] if pin else None)
                    results[(server.name, clients)].append(r)
                line.append(f"{clients} client{'s' if clients > 1 else ''}: " + ", ".join(
                    f"{s.name} {results[(s.name, clients)][-1]['rate']:.0f}" for s in servers))
            log(f"run {i + 1}/{args.runs}: " + "; ".join(line) + " round trips/s")
        elapsed = time.monotonic() - t_start

        report = {
            "size": SIZE,
            "runs": args.runs,
            "seconds_per_run": args.seconds,
            "warmup_per_run": args.warmup,
            "timeout_ms": TIMEOUT_MS,
            "quick": args.quick,
            "seconds": round(elapsed, 3),
            "pinning": None if pin is None else {"load_generator_cpu": pin[0], "server_cpu": pin[1]},
            "machine": {"nproc": os.cpu_count(), "kernel": platform.release()},
            "guard": GUARD,
            "cases": {},
            "targets": {f"netlabd/plain, {c} client{'s' if c > 1 else ''}": t for c, t in TARGETS.items()},
            "ratios": {},
        }
        for clients in CLIENT_COUNTS:
            case = {s.name: {**summarize(results[(s.name, clients)]),
                             "runs": results[(s.name, clients)]} for s in servers}
            report["cases"][str(clients)] = case
            if "netlabd" in case and "plain" in case:
                r = ratio(case["netlabd"]["median_rate"], case["plain"]["median_rate"])
                report["ratios"][str(clients)] = {
                    "value": None if r is None else round(r, 3), "target": TARGETS[clients],
                    "met": r is not None and r >= TARGETS[clients]}
    except BenchError as e:
        log(f"bench-echo: {e}")
        return 2
    finally:
        stopped_ok = stop_all(servers, "bench-echo")
        nl = next((s for s in servers if s.name == "netlabd"), None)
        if nl is not None:
            # The guard's aggregate entries say why replies were dropped.
            nl.log_problems(400, "dropped|" + PROBLEMS)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    nl = next((s for s in servers if s.name == "netlabd"), None)
    if nl is not None:
        report["netlabd_exit_status_on_sigterm"] = None if nl.killed else nl.proc.returncode
        if nl.killed or nl.proc.returncode != 0:
            stopped_ok = False
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    missed = [k for k, v in report["ratios"].items() if v["met"] is False]
    garbled = sum(case["netlabd"][k] for case in report["cases"].values() if "netlabd" in case
                  for k in ("lost", "stale", "altered", "errors"))
    if args.strict and (missed or garbled or not stopped_ok):
        return 1
    return 0


def print_report(report):
    pin = report["pinning"]
    print(f"netlab echo bench: {report['size']}-byte datagrams over 127.0.0.1, closed loop (one in "
          f"flight per client), {report['seconds_per_run']:g} s per run after "
          f"{report['warmup_per_run']:g} s of warm-up, median of {report['runs']} runs, servers "
          f"interleaved ({report['machine']['nproc']} CPUs, Linux {report['machine']['kernel']}, "
          + ("unpinned" if pin is None else
             f"load generator on CPU {pin['load_generator_cpu']}, servers on CPU {pin['server_cpu']}")
          + f"; {report['seconds']:.1f} s in all)")
    if report["quick"]:
        print("QUICK SMOKE RUN: these numbers are not figures")
    print(f"{'clients':<8}{'server':<9}{'median rt/s':>12}{'min':>10}{'max':>10}{'lost':>7}"
          f"{'stale':>7}{'altered':>8}{'errors':>7}{'server CPU':>11}{'us/rt':>7}{'load CPU':>9}")
    for clients, case in report["cases"].items():
        for name, p in case.items():
            us = p["median_server_cpu_us_per_rt"]
            print(f"{clients:<8}{name:<9}{p['median_rate']:>12.0f}{p['min_rate']:>10.0f}"
                  f"{p['max_rate']:>10.0f}{p['lost']:>7}{p['stale']:>7}{p['altered']:>8}"
                  f"{p['errors']:>7}{p['median_server_cpu'] * 100:>10.0f}%"
                  f"{'-' if us is None else f'{us:.2f}':>7}{p['median_load_cpu'] * 100:>8.0f}%")
        r = report["ratios"].get(clients)
        if r is None:
            continue
        if r["value"] is None:
            print(f"        ratio netlabd/plain    n/a   (a server answered nothing)   "
                  f"target >= {r['target']:.2f}   MISSED")
        else:
            print(f"        ratio netlabd/plain {r['value']:6.2f}   target >= {r['target']:.2f}   "
                  f"{'MET' if r['met'] else 'MISSED'}")
    nl_bad = {k: sum(c["netlabd"][k] for c in report["cases"].values())
              for k in ("lost", "stale", "altered", "errors")} if any(
        "netlabd" in c for c in report["cases"].values()) else None
    if nl_bad is None:
        print("netlabd not measured (--peers): no ratios against the targets")
    else:
        total = sum(nl_bad.values())
        print(f"netlabd replies lost {nl_bad['lost']}, stale {nl_bad['stale']}, altered "
              f"{nl_bad['altered']}, errors {nl_bad['errors']}   target 0   "
              f"{'MET' if total == 0 else 'MISSED'}")
    warn_sigterm_status(report)


if __name__ == "__main__":
    run_main(main)
