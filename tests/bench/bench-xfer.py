#!/usr/bin/python3
"""Throughput benchmark of netlab's UDP transfer, `netlabctl fetch --udp` (a benchmark, not a test).

One file of random bytes (256 MiB by default) in tmpfs is downloaded, all in
one run, over three paths, each against named peers:

  loopback  127.0.0.1: netlabctl fetch --udp  vs  atftpd + atftp (blksize 65464,
            the best of windowsize 2 and 4, RFC 7440)  and  vs netlabctl fetch
            over TCP.  Targets: >= 1.5x atftpd, >= 0.5x TCP.
  veth      two network namespaces joined by a veth pair, MTU 1500:
            netlabctl fetch --udp  vs  atftpd + atftp at blksize 1468 with its
            best windowsize of 8, 16, 32, 64 (TCP for context).
            Target: >= 2x atftpd.
  lossy     the same veth pair with 2% random loss on each namespace's ingress
            (nftables numgen) and 5 ms added round-trip delay (nfqdelay.c, an
            NFQUEUE program: this kernel has no netem), segmentation offloads
            off so loss hits single packets: netlabctl fetch --udp  vs
            netlabctl fetch over TCP, same path.  Target: >= 0.5x TCP.

Every server (netlabd, atftpd) is started by this script from a temporary
directory with a config of its own, on a free port, and stopped by pid; every
namespace, veth and nft table it makes has a name of its own and is removed
at the end, whatever happens.  Outputs are compared with the source after
each download (outside the timed region).  Downloads go round-robin (run i
starts with a different one) so machine noise hits every peer alike; the
medians give the ratios.

Run (as root):  /usr/bin/python3 tests/bench/bench-xfer.py [--runs 5] [--size 256M]
                [--only loopback,veth,lossy] [--build build] [--json FILE] [--strict]

Exit status: 0 when measured (and, with --strict, every target met); 1 when a
download's output differed from the source, or with --strict when a target is
missed; 2 when the bench could not run.
"""

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import pwd
import grp
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (STOP_TIMEOUT, BenchError, Netlabd, Server, free_ports, log, pid_owns_any, run_main, stop_all,
                      tail)

HERE = Path(__file__).resolve().parent
TOP = HERE.parent.parent

# What bench-file.py already has: sizes, the source file, prefaulting, cmp,
# netlabctl's --json result.
_spec = importlib.util.spec_from_file_location("bench_file", HERE / "bench-file.py")
bf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bf)
parse_size, human_size, make_source, prefault, same_file, unlink, CorruptDownload = (
    bf.parse_size, bf.human_size, bf.make_source, bf.prefault, bf.same_file, bf.unlink, bf.CorruptDownload)

CASES = ("loopback", "veth", "lossy")
ALL_PEERS = ("netlab-udp", "netlab-tcp", "atftp")
TARGETS = {  # case: [(numerator, denominator, minimum ratio of the medians)]
    "loopback": [("netlab-udp", "atftp", 1.5), ("netlab-udp", "netlab-tcp", 0.5)],
    "veth": [("netlab-udp", "atftp", 2.0)],
    "lossy": [("netlab-udp", "netlab-tcp", 0.5)],
}
ATFTP_BLKSIZE = {"loopback": 65464, "veth": 1468}
FILE_NAME = "big.bin"
LOSSY_NAME = "lossy.bin"
MB = 1e6
CLK_TCK = os.sysconf("SC_CLK_TCK")
NETLAB_TIMEOUT = 600.0  # seconds for one netlabctl download
IDLE_TIMEOUT = 30.0  # seconds for a server to finish a transfer after its client exited
DEPS_HINT = "run tests/bench/setup-bench-deps.sh"
# Addresses inside the bench's own namespaces (nothing outside them sees them).
NET_PREFIX = "10.231"


def need_exe(name, hint=DEPS_HINT):
    return bf.need_exe(name, hint)


def ns_prefix(ns):
    """The words that run a command in network namespace ns (None: here)."""
    return [] if ns is None else [need_exe("nsenter", "apt-get install util-linux"),
                                  f"--net=/run/netns/{ns}", "--"]


def run(cmd, what, ns=None, stdin=None, check=True, timeout=30):
    full = ns_prefix(ns) + [str(c) for c in cmd]
    try:
        res = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what}: '{' '.join(full)}' did not finish within {timeout} s") from None
    if check and res.returncode != 0:
        raise BenchError(f"{what} failed (status {res.returncode}): {' '.join(full)}\n"
                         f"{(res.stderr or res.stdout).strip()}")
    return res


def proc_cpu_seconds(pid):
    """utime + stime + cutime + cstime of pid: its threads and its reaped children."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def children_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def socket_inodes(pid, proto, port, listen_only=False):
    """Inodes of pid's sockets (in pid's network namespace) bound to port."""
    found = []
    path = f"/proc/{pid}/net/{proto}"
    try:
        with open(path) as f:
            next(f)
            for line in f:
                fields = line.split()
                local_port = int(fields[1].split(":")[1], 16)
                if local_port == port and (not listen_only or fields[3] == "0A"):
                    found.append(fields[9])
    except OSError:
        return []
    return found


def udp_drops(ns):
    """UDP datagrams the kernel of namespace ns (None: ours) dropped at a full
    socket receive buffer so far (RcvbufErrors of /proc/net/snmp)."""
    text = run(["cat", "/proc/net/snmp"], "reading /proc/net/snmp", ns=ns).stdout
    lines = [ln.split() for ln in text.splitlines() if ln.startswith("Udp:")]
    if len(lines) < 2 or "RcvbufErrors" not in lines[0]:
        return 0
    return int(lines[1][lines[0].index("RcvbufErrors")])


class NsServer(Server):
    """A server started (through nsenter when ns is set) and stopped by pid.
    nsenter execs the server, so the pid is the server's own. Ready once our
    own process has a socket on each of its (proto, port) pairs."""

    def __init__(self, name, ns, sockets, workdir):
        super().__init__(name, sockets[0][1], workdir)
        self.ns = ns
        self.sockets = sockets  # [(proto "udp"|"tcp", port)]

    def launch_command(self):
        return ns_prefix(self.ns) + [str(c) for c in self.command()]

    def listening(self):
        return all(pid_owns_any(self.proc.pid, socket_inodes(self.proc.pid, proto, port, proto == "tcp"))
                   for proto, port in self.sockets)

    def awaited(self):
        return f"bind {self.sockets}"

    def busy(self):
        """Is a transfer still running in the server (a child, or a thread)?"""
        raise NotImplementedError

    def wait_idle(self, timeout=IDLE_TIMEOUT):
        """Wait until the transfer's child or thread is gone; False if it is not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if not self.busy():
                return True
            time.sleep(0.002)
        return False

    def cpu_seconds(self):
        self.check_alive()
        return proc_cpu_seconds(self.proc.pid)


class NetlabdServer(Netlabd, NsServer):
    """netlabd with a file listener over TCP and one over UDP on the same address."""

    def __init__(self, ns, address, tcp_port, udp_port, workdir, exe, root, tag):
        socks = [("tcp", tcp_port)] + ([("udp", udp_port)] if udp_port else [])
        super().__init__(f"netlabd-{tag}", ns, socks, workdir)
        self.address = address
        self.tcp_port = tcp_port
        self.udp_port = udp_port
        # Level info: one summary entry per download, with the server's own
        # figures (retransmissions, RTT, block size and window for UDP).
        self.write_config(
            exe, workdir / f"netlabd-{tag}.conf",
            "limits = { max_children = 16; max_per_source = 16; idle_timeout = 30;"
            " total_timeout = 3600; grace_period = 2; };\n"
            'log = { target = "stderr"; level = "info"; };\n'
            "listeners = (\n"
            f'  {{ name = "files"; service = "file"; transport = "tcp"; address = "{address}";'
            f' port = {tcp_port}; root = "{root}"; }}'
            + (f',\n  {{ name = "files-udp"; service = "file"; transport = "udp"; address = "{address}";'
               f' port = {udp_port}; root = "{root}"; }}' if udp_port else "")
            + "\n);\n",
            hint=" (has this netlabd the udp file listener?)")

    def busy(self):
        pid = self.proc.pid
        try:
            return any(Path(f"/proc/{pid}/task/{t}/children").read_text().strip()
                       for t in os.listdir(f"/proc/{pid}/task"))
        except OSError:
            return False


class AtftpdServer(NsServer):
    """atftpd in the foreground (--daemon --no-fork) on our own port and root,
    never the system's service. Multithreaded: one thread per transfer."""

    def __init__(self, ns, address, port, workdir, root, tag):
        super().__init__(f"atftpd-{tag}", ns, [("udp", port)], workdir)
        self.exe = need_exe("atftpd")
        self.address = address
        self.root = root
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.group = grp.getgrgid(os.getegid()).gr_name

    def command(self):
        # --no-multicast: plain unicast transfers only. The default
        # --retry-timeout (5 s) and the client's timeout are left alone.
        return [self.exe, "--daemon", "--no-fork", "--port", str(self.port),
                "--bind-address", self.address, "--user", self.user, "--group", self.group,
                "--logfile", "-", "--verbose=5", "--no-multicast", str(self.root)]

    def busy(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        return int(line.split()[1]) > 1
        except OSError:
            return False
        return False


class NfqDelay:
    """nfqdelay.c in a namespace, holding one direction's packets for delay_us."""

    def __init__(self, exe, ns, queue, delay_us, maxlen, logfile):
        self.cmd = ns_prefix(ns) + [str(exe), str(queue), str(delay_us), str(maxlen)]
        self.ns = ns
        self.queue = queue
        self.logfile = logfile
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=open(self.logfile, "ab"), text=True, close_fds=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise BenchError(f"nfqdelay did not start ({' '.join(self.cmd)}): {tail(self.logfile)}")

    def kernel_counts(self):
        """queue_dropped and user_dropped of our queue (nfnetlink_queue in the namespace)."""
        res = run(["cat", "/proc/net/netfilter/nfnetlink_queue"], "reading the queue stats", ns=self.ns)
        for line in res.stdout.splitlines():
            f = line.split()
            if f and int(f[0]) == self.queue:
                return {"queue_total": int(f[2]), "queue_dropped": int(f[5]), "user_dropped": int(f[6])}
        return {}

    def stop(self):
        """SIGTERM: nfqdelay accepts what it holds and prints its figures."""
        if self.proc is None:
            return {}
        stats = {}
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            out, _ = self.proc.communicate(timeout=STOP_TIMEOUT)
            for line in out.splitlines():
                if line.startswith("{"):
                    stats = json.loads(line)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None
        return stats


class Link:
    """Namespaces A (servers) and B (clients) joined by a veth pair, MTU 1500.
    With loss: an nft table in each namespace drops that fraction of what
    arrives on the veth (prerouting, priority -300) and counts what it sees.
    With delay: iptables sends what arrives in the delayed direction(s) to an
    NFQUEUE that nfqdelay holds; it runs only while a download is timed."""

    def __init__(self, kind, offload, loss_pct, rtt_us, delay_on, qlen, nfqdelay_exe, workdir, alt_cc=None):
        tag = f"{os.getpid() % 100000}{kind[0]}"
        self.kind = kind
        self.ns_a, self.ns_b = f"nlbx-{tag}-srv", f"nlbx-{tag}-cli"
        self.dev_a, self.dev_b = f"nbx{tag}s", f"nbx{tag}c"
        sub = {"veth": 1, "lossy": 2}[kind]
        self.addr_a, self.addr_b = f"{NET_PREFIX}.{sub}.1", f"{NET_PREFIX}.{sub}.2"
        # With alt_cc: second addresses, between which TCP uses alt_cc.
        self.alt_cc = alt_cc
        self.addr_a2, self.addr_b2 = f"{NET_PREFIX}.{sub}.11", f"{NET_PREFIX}.{sub}.12"
        self.offload = offload
        self.loss_pct = loss_pct
        self.rtt_us = rtt_us
        self.delay_on = delay_on
        self.qlen = qlen
        self.nfqdelay_exe = nfqdelay_exe
        self.workdir = workdir
        self.table = f"nlbx{tag}"
        self.made = []
        self.delays = []  # (direction, NfqDelay)
        self.offload_state = {}

    def delayed(self):
        """[(namespace, device, direction, microseconds)] of the delay elements."""
        if not self.rtt_us:
            return []
        ack = (self.ns_a, self.dev_a, "client->server", self.rtt_us)
        data = (self.ns_b, self.dev_b, "server->client", self.rtt_us)
        if self.delay_on == "ack":
            return [ack]
        if self.delay_on == "data":
            return [data]
        return [(ack[0], ack[1], ack[2], self.rtt_us // 2), (data[0], data[1], data[2], self.rtt_us - self.rtt_us // 2)]

    def up(self):
        for ns in (self.ns_a, self.ns_b):
            if Path(f"/run/netns/{ns}").exists():
                raise BenchError(f"network namespace {ns} exists already: another bench-xfer with pid "
                                 f"{os.getpid()}? Remove it with 'ip netns del {ns}' if it is stale")
        for ns in (self.ns_a, self.ns_b):
            run(["ip", "netns", "add", ns], "creating a namespace")
            self.made.append(ns)
        run(["ip", "link", "add", self.dev_a, "netns", self.ns_a, "mtu", "1500", "type", "veth",
             "peer", "name", self.dev_b, "netns", self.ns_b, "mtu", "1500"], "creating the veth pair")
        for ns, dev, addr in ((self.ns_a, self.dev_a, self.addr_a), (self.ns_b, self.dev_b, self.addr_b)):
            run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev], "addressing the veth")
            run(["ip", "-n", ns, "link", "set", "lo", "up"], "bringing lo up")
            if not self.offload:
                # Off, so that every packet crosses the veth (and the loss
                # rule) alone: no 64 KiB TSO/GSO/UDP-GSO skbs.
                run(["ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
                     "tx-udp-segmentation", "off"], "turning segmentation offloads off", ns=ns)
            run(["ip", "-n", ns, "link", "set", dev, "up"], "bringing the veth up")
        if self.alt_cc:
            run(["ip", "-n", self.ns_a, "addr", "add", f"{self.addr_a2}/32", "dev", self.dev_a], "addressing")
            run(["ip", "-n", self.ns_b, "addr", "add", f"{self.addr_b2}/32", "dev", self.dev_b], "addressing")
            # The client reaches addr_a2 from addr_b2; the server's route back
            # to addr_b2 names the congestion control its connections take.
            run(["ip", "-n", self.ns_b, "route", "add", f"{self.addr_a2}/32", "dev", self.dev_b,
                 "src", self.addr_b2], "adding a route")
            run(["ip", "-n", self.ns_a, "route", "add", f"{self.addr_b2}/32", "dev", self.dev_a,
                 "src", self.addr_a2, "congctl", self.alt_cc], "adding a route with congctl")
        res = run(["ethtool", "-k", self.dev_a], "reading the veth's offloads", ns=self.ns_a)
        for key in ("tcp-segmentation-offload", "generic-segmentation-offload",
                    "generic-receive-offload", "tx-udp-segmentation"):
            m = re.search(rf"^\s*{key}: (\w+)", res.stdout, re.M)
            self.offload_state[key] = m.group(1) if m else "?"
        deadline = time.monotonic() + 5
        for ns, dev in ((self.ns_a, self.dev_a), (self.ns_b, self.dev_b)):
            while "LOWER_UP" not in run(["ip", "-n", ns, "link", "show", dev], "veth state").stdout:
                if time.monotonic() > deadline:
                    raise BenchError(f"veth {dev} in {ns} did not come up")
                time.sleep(0.01)
        if self.loss_pct or self.rtt_us:
            for ns, dev in ((self.ns_a, self.dev_a), (self.ns_b, self.dev_b)):
                self.add_counters_and_loss(ns, dev)
        for ns, dev, direction, us in self.delayed():
            run(["iptables", "-t", "mangle", "-A", "PREROUTING", "-i", dev, "-j", "NFQUEUE",
                 "--queue-num", "0"], "adding the NFQUEUE rule (iptables)", ns=ns)
            self.delays.append((direction, NfqDelay(self.nfqdelay_exe, ns, 0, us, self.qlen,
                                                    self.workdir / f"nfqdelay-{ns}.log")))

    def add_counters_and_loss(self, ns, dev):
        threshold = round(self.loss_pct * 100)  # of 10000
        drop = (f'    iifname "{dev}" numgen random mod 10000 < {threshold} counter name "dropped" drop\n'
                if threshold else "")
        rules = (f"table inet {self.table} {{\n"
                 "  counter seen { }\n  counter big { }\n  counter dropped { }\n"
                 "  chain pre {\n    type filter hook prerouting priority -300; policy accept;\n"
                 f'    iifname "{dev}" counter name "seen"\n'
                 f'    iifname "{dev}" meta length > 1500 counter name "big"\n'
                 f"{drop}"
                 "  }\n}\n")
        run(["nft", "-f", "-"], "adding the loss rule (nft)", ns=ns, stdin=rules)

    def counters(self):
        """{direction: {seen, big, dropped}} packets, from the nft counters."""
        out = {}
        if not (self.loss_pct or self.rtt_us):
            return out
        for ns, direction in ((self.ns_b, "server->client"), (self.ns_a, "client->server")):
            res = run(["nft", "-j", "list", "counters", "table", "inet", self.table], "reading counters", ns=ns)
            c = {}
            for obj in json.loads(res.stdout)["nftables"]:
                if "counter" in obj:
                    c[obj["counter"]["name"]] = obj["counter"]["packets"]
            out[direction] = c
        return out

    def start_delay(self):
        for _, d in self.delays:
            d.start()

    def stop_delay(self):
        stats = {}
        for direction, d in self.delays:
            if d.proc is None:
                continue
            kernel = d.kernel_counts()
            stats[direction] = {**d.stop(), **kernel}
        return stats

    def down(self):
        for _, d in self.delays:
            try:
                d.stop()
            except Exception as e:  # keep tearing down
                log(f"bench-xfer: stopping nfqdelay: {e}")
        for ns in reversed(self.made):
            res = run(["ip", "netns", "pids", ns], "listing the namespace's processes", check=False)
            left = [p for p in res.stdout.split() if p.strip()]
            if left:
                log(f"bench-xfer: processes still in {ns}: {' '.join(left)} (the bench's own "
                    "servers' leftovers): stopping them")
                for p in left:
                    try:
                        os.kill(int(p), signal.SIGKILL)
                    except (OSError, ValueError):
                        pass
                time.sleep(0.1)
            run(["ip", "netns", "del", ns], "removing a namespace", check=False)
        self.made = []


@dataclasses.dataclass(eq=False)
class Download:
    """One timed download. The time is the client process's wall clock (exec,
    handshake and the closing rename count, as in bench-file.py)."""

    prefault_factor = 0  # a class attribute (no annotation), set by main()

    key: str  # unique within a case
    peer: str  # netlab-udp | netlab-tcp | atftp
    label: str
    ns: str  # the client's namespace, None: ours
    argv: list
    src: Path
    out: Path
    nbytes: int
    server: NsServer
    timeout: float
    expect_json: dict = None
    partial: list = ()  # files a complete download must not leave behind

    def __post_init__(self):
        self.argv = [str(a) for a in self.argv]
        self.partial = list(self.partial)

    def command(self):
        return ns_prefix(self.ns) + self.argv

    def shown(self):
        """The command as printed in the report."""
        return shown_argv(self.command())

    def measure(self, link=None):
        """Returns {mb_per_sec, seconds, client_cpu, server_cpu, ...}; raises
        BenchError (failed or timed out) or CorruptDownload."""
        unlink(self.out, *self.partial)
        os.sync()
        if Download.prefault_factor:
            prefault(int(self.nbytes * Download.prefault_factor) + 64 * 1024 ** 2)
        namespaces = [self.ns] + ([self.server.ns] if self.server.ns != self.ns else [])
        drops0 = sum(udp_drops(ns) for ns in namespaces)
        if link is not None:
            link.start_delay()
            before = link.counters()
        cmd = self.command()
        timed_out = False
        try:
            srv0 = self.server.cpu_seconds()
            cli0 = children_cpu_seconds()
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                      timeout=self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc = None
            seconds = time.perf_counter() - t0
            cli1 = children_cpu_seconds()
            idle = self.server.wait_idle()
            srv1 = self.server.cpu_seconds()
        finally:
            if link is not None:
                delay_stats = link.stop_delay()
                after = link.counters()
        drops = sum(udp_drops(ns) for ns in namespaces) - drops0
        if timed_out:
            unlink(self.out, *self.partial)
            raise BenchError(f"{self.label} did not finish within {self.timeout:.0f} s ({drops} UDP "
                             f"datagrams dropped at full receive buffers meanwhile): {self.shown()}")
        if proc.returncode != 0:
            unlink(self.out, *self.partial)
            raise BenchError(f"{self.label} failed with status {proc.returncode}: {self.shown()}\n"
                             f"{(proc.stderr or proc.stdout).decode(errors='replace').strip()[-2000:]}")
        extra = {}
        try:
            if self.expect_json is not None:
                extra["client"] = bf.check_netlabctl_json(self.label, proc, self.expect_json)
            if not self.out.exists():
                raise CorruptDownload(f"{self.label}: exit status 0 but no {self.out}")
            if not same_file(self.src, self.out):
                raise CorruptDownload(f"{self.label}: {self.out} ({self.out.stat().st_size} bytes) "
                                      f"differs from the source {self.src}")
            stale = [str(p) for p in self.partial if p.exists()]
            if stale:
                raise CorruptDownload(f"{self.label}: left {', '.join(stale)} behind")
        finally:
            unlink(self.out, *self.partial)
        res = {"mb_per_sec": self.nbytes / seconds / MB, "seconds": round(seconds, 4),
               "client_cpu": round(cli1 - cli0, 3), "server_cpu": round(srv1 - srv0, 3),
               "udp_rcvbuf_drops": drops, **extra}
        if not idle:
            res["server_still_busy"] = True
        if link is not None and (before or delay_stats):
            res["link"] = {d: {k: after[d].get(k, 0) - before[d].get(k, 0) for k in after[d]}
                           for d in after}
            res["delay"] = delay_stats
        return res


def compile_nfqdelay(workdir):
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise BenchError(f"no C compiler '{cc}' (apt-get install gcc, or set CC)")
    exe = workdir / "nfqdelay"
    cmd = [cc, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
           str(HERE / "nfqdelay.c"), "-lnetfilter_queue", "-lnfnetlink"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise BenchError(f"cannot build nfqdelay ({' '.join(cmd)}; is libnetfilter-queue-dev "
                         f"installed? {DEPS_HINT}):\n{res.stderr.strip()}")
    return exe


def find_netlab(build, bindir, need_udp):
    exes = bf.find_build_exes(build, bindir, peers_hint="atftp")
    if need_udp:
        help_text = subprocess.run([str(exes["netlabctl"]), "fetch", "--help"],
                                   capture_output=True, text=True, timeout=10).stdout
        line = next((ln for ln in help_text.splitlines() if "--udp" in ln), "")
        if not line or "not implemented" in line:
            raise BenchError("this netlabctl has no working 'fetch --udp' ('netlabctl fetch --help' "
                             f"says: {line.strip() or 'nothing'}); leave it out with "
                             "--peers netlab-tcp,atftp")
    return exes


def probe_rtt(ns_srv, ns_cli, addr, port, n=21):
    """Median TCP connect time from ns_cli to a throwaway listener in ns_srv, in ms:
    the path's round-trip time (SYN, SYN-ACK), loss and delay included."""
    server_code = ("import socket,sys\n"
                   "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                   "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64); s.settimeout(30)\n"
                   "print('ready', flush=True)\n"
                   f"for _ in range({n}):\n"
                   "    c, _ = s.accept(); c.close()\n")
    client_code = ("import socket,sys,time,statistics\n"
                   "r=[]\n"
                   f"for _ in range({n}):\n"
                   "    c=socket.socket(); t=time.perf_counter()\n"
                   "    c.connect((sys.argv[1], int(sys.argv[2]))); r.append(time.perf_counter()-t); c.close()\n"
                   "print(statistics.median(r)*1000)\n")
    srv = subprocess.Popen(ns_prefix(ns_srv) + [sys.executable, "-c", server_code, addr, str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           start_new_session=True)
    try:
        if srv.stdout.readline().strip() != "ready":
            return None
        res = run([sys.executable, "-c", client_code, addr, str(port)], "probing the RTT",
                  ns=ns_cli, check=False, timeout=60)
        return float(res.stdout) if res.returncode == 0 else None
    finally:
        if srv.poll() is None:
            srv.kill()
        srv.wait(timeout=STOP_TIMEOUT)


@dataclasses.dataclass(eq=False)
class Case:
    """One path (loopback, veth, lossy) with its servers and downloads."""

    name: str
    size: int
    src: Path
    link: Link = None
    servers: list = dataclasses.field(default_factory=list)
    downloads: list = dataclasses.field(default_factory=list)
    excluded: dict = dataclasses.field(default_factory=dict)  # key: why it was left out of the measured runs
    rtt_ms: float = None
    tcp_cc: str = None  # the namespaces' TCP congestion control


def build_case(case, args, peers, exes, workdir, root, data, nfqdelay_exe):
    """Set up case's path, servers and downloads. Whatever it made is in case
    (link, servers) as soon as it exists, so the caller can always undo it."""
    name = case.name
    size = case.size
    fname = case.src.name
    tag = name
    if name == "loopback":
        ns_srv = ns_cli = None
        srv_addr = "127.0.0.1"
    else:
        lossy = name == "lossy"
        case.link = Link(name, offload=(args.veth_offload == "on") and not lossy,
                         loss_pct=args.loss if lossy else 0.0,
                         rtt_us=round(args.delay_ms * 1000) if lossy else 0,
                         delay_on=args.delay_on, qlen=args.queue_len,
                         nfqdelay_exe=nfqdelay_exe, workdir=workdir,
                         alt_cc="cubic" if lossy and args.tcp_cubic and "netlab-tcp" in peers else None)
        case.link.up()
        ns_srv, ns_cli = case.link.ns_a, case.link.ns_b
        srv_addr = case.link.addr_a
    tcp_port, probe_port = free_ports(2)
    udp_port, tftp_port = free_ports(2, kind=socket.SOCK_DGRAM)
    nl = None
    if "netlab-udp" in peers or "netlab-tcp" in peers:
        nl = NetlabdServer(ns_srv, srv_addr, tcp_port, udp_port if "netlab-udp" in peers else None,
                           workdir, exes["netlabd"], root, tag)
        case.servers.append(nl)
    tftpd = None
    if "atftp" in peers and name != "lossy":
        tftpd = AtftpdServer(ns_srv, srv_addr, tftp_port, workdir, root, tag)
        case.servers.append(tftpd)
    for s in case.servers:
        s.start()
        log(f"[{name}] started {s.name} (pid {s.proc.pid}) on {srv_addr} {s.sockets}")
    cubic = None
    if case.link is not None:
        case.tcp_cc = run(["sysctl", "-n", "net.ipv4.tcp_congestion_control"], "reading the TCP "
                          "congestion control", ns=ns_srv).stdout.strip()
    if case.link is not None and case.link.alt_cc and case.tcp_cc != case.link.alt_cc:
        # Context: the same TCP download from a sender using cubic, a
        # loss-based congestion control. A second netlabd listens on the
        # server namespace's second address; the client reaches it from its
        # own second address, and the server's route back to that address
        # says "congctl cubic" (Link.up), which a passive connection takes.
        # (Setting net.ipv4.tcp_congestion_control in a namespace is refused
        # for an algorithm outside tcp_allowed_congestion_control, a global.)
        cubic = NetlabdServer(ns_srv, case.link.addr_a2, free_ports(1)[0], None, workdir,
                              exes["netlabd"], root, f"{tag}-cubic")
        case.servers.append(cubic)
        cubic.start()
        log(f"[{name}] started {cubic.name} (pid {cubic.proc.pid}) on {cubic.address} {cubic.sockets}, "
            "connections from the client's second address use cubic")
    if case.link is not None:
        case.link.start_delay()
        try:
            case.rtt_ms = probe_rtt(ns_srv, ns_cli, srv_addr, probe_port)
        finally:
            case.link.stop_delay()

    ctl = [exes.get("netlabctl"), f"--config={workdir / 'netlabctl.ini'}", "fetch", "--json"]
    whole = {"status": "ok", "offset": 0, "bytes": size}
    cc = f", {case.tcp_cc}" if case.tcp_cc else ""
    for peer, server, port, label in (
            ("netlab-udp", nl, udp_port, "netlabctl fetch --udp"),
            ("netlab-tcp", nl, tcp_port, f"netlabctl fetch (TCP{cc})"),
            ("netlab-tcp-cubic", cubic, cubic.port if cubic else None, "netlabctl fetch (TCP, cubic)")):
        if peer not in peers and not (peer == "netlab-tcp-cubic" and cubic):
            continue
        out = data / f"{peer}.out"
        part = out.with_name(out.name + ".netlab-part")
        meta = out.with_name(out.name + ".netlab-meta")
        argv = [*ctl, *(["--udp"] if peer == "netlab-udp" else []), "-H", server.address, "-p", str(port),
                "-o", str(out), fname]
        case.downloads.append(Download(peer, peer, label, ns_cli, argv, case.src, out, size, server,
                                       NETLAB_TIMEOUT, expect_json=whole, partial=(part, meta)))
    if tftpd is not None:
        atftp = need_exe("atftp")
        blk = ATFTP_BLKSIZE[name]
        # A windowsize that loses datagrams on this path stalls for atftp's
        # timeouts: give up on it after this long (it is then left out).
        limit = max(args.atftp_timeout, size / (10 * MB))
        for w in (args.loopback_windows if name == "loopback" else args.veth_windows):
            out = data / f"atftp-w{w}.out"
            argv = [atftp, "--option", f"blksize {blk}", "--option", f"windowsize {w}",
                    "-g", "-r", fname, "-l", str(out), srv_addr, str(tftp_port)]
            case.downloads.append(Download(f"atftp-w{w}", "atftp", f"atftp blksize {blk} windowsize {w}",
                                           ns_cli, argv, case.src, out, size, tftpd, limit))


def shown_argv(argv):
    return " ".join(f'"{a}"' if " " in a else a for a in argv)


def summarize(case, results):
    """Medians per download and the ratios against the targets."""
    rep = {"size_bytes": case.size, "downloads": {}, "ratios": {}, "excluded": case.excluded}
    if case.link is not None:
        link = case.link
        rep["link"] = {"veth_mtu": 1500, "offloads": link.offload_state,
                       "loss_percent_each_way": link.loss_pct,
                       "added_rtt_ms": link.rtt_us / 1000, "delay_on": link.delay_on if link.rtt_us else None,
                       "rtt_ms_tcp_connect_median": round(case.rtt_ms, 3) if case.rtt_ms else None,
                       "tcp_congestion_control": case.tcp_cc}
    for d in case.downloads:
        runs = results.get(d.key)
        if not runs:
            continue
        rates = [r["mb_per_sec"] for r in runs]
        rep["downloads"][d.key] = {
            "peer": d.peer, "label": d.label, "command": shown_argv(d.command()),
            "median_mb_per_sec": round(statistics.median(rates), 1),
            "min_mb_per_sec": round(min(rates), 1), "max_mb_per_sec": round(max(rates), 1),
            "client_cpu_s_median": round(statistics.median(r["client_cpu"] for r in runs), 3),
            "server_cpu_s_median": round(statistics.median(r["server_cpu"] for r in runs), 3),
            "udp_rcvbuf_drops_median": statistics.median(r["udp_rcvbuf_drops"] for r in runs),
            "runs": runs,
        }
    got = rep["downloads"]
    best = {}
    for key, d in got.items():  # per peer, the download with the best median (atftp: best windowsize)
        if d["peer"] not in best or d["median_mb_per_sec"] > got[best[d["peer"]]]["median_mb_per_sec"]:
            best[d["peer"]] = key
    rep["best"] = best
    for num, den, target in TARGETS[case.name]:
        if num in best and den in best:
            r = got[best[num]]["median_mb_per_sec"] / got[best[den]]["median_mb_per_sec"]
            rep["ratios"][f"{best[num]}/{best[den]}"] = {"value": round(r, 3), "target": target,
                                                        "met": r >= target}
    context = {"veth": ["netlab-tcp"], "lossy": ["netlab-tcp-cubic"]}.get(case.name, [])
    for den in context:
        if "netlab-udp" in best and den in best:
            r = got[best["netlab-udp"]]["median_mb_per_sec"] / got[best[den]]["median_mb_per_sec"]
            rep["ratios"][f"{best['netlab-udp']}/{best[den]}"] = {"value": round(r, 3), "target": None,
                                                                "met": None}
    return rep


def run_case(case, args):
    link = case.link
    live = list(case.downloads)
    # The untimed first round: warms up, and finds the atftp windowsizes
    # that cannot finish on this path in reasonable time.
    if not args.no_warmup:
        for d in list(live):
            try:
                d.measure(link)
            except BenchError as e:
                if d.peer != "atftp":
                    raise
                case.excluded[d.key] = str(e).splitlines()[0]
                live.remove(d)
                log(f"[{case.name}] {d.label}: left out of the measured runs: {case.excluded[d.key]}")
                if not d.server.wait_idle():
                    log(f"[{case.name}] {d.server.name} still busy {IDLE_TIMEOUT:.0f} s later")
        log(f"[{case.name}] warm-up done")
    results = {d.key: [] for d in live}
    for i in range(args.runs):
        k = i % len(live) if live else 0
        for d in live[k:] + live[:k]:
            if d.key in case.excluded:
                continue
            try:
                results[d.key].append(d.measure(link))
            except BenchError as e:
                if d.peer != "atftp":
                    raise
                case.excluded[d.key] = f"run {i + 1}: " + str(e).splitlines()[0]
                results.pop(d.key, None)
                log(f"[{case.name}] {d.label}: left out: {case.excluded[d.key]}")
                d.server.wait_idle()
        log(f"[{case.name}] run {i + 1}/{args.runs}: " + ", ".join(
            f"{key} {rate(rs[-1]['mb_per_sec'])}" for key, rs in results.items() if rs) + " MB/s")
    return results


def rate(mb):
    """MB/s as printed: no decimals from 100 on, one below."""
    return f"{mb:,.0f}" if mb >= 100 else f"{mb:.1f}"


def print_case(name, rep):
    size = human_size(rep["size_bytes"])
    if name == "loopback":
        where = "over 127.0.0.1"
    else:
        link = rep["link"]
        where = ("across a veth pair between two namespaces, MTU 1500, offloads "
                 + ", ".join(f"{k} {v}" for k, v in link["offloads"].items()))
        if link.get("tcp_congestion_control"):
            where += f"; TCP congestion control {link['tcp_congestion_control']}"
        if link["loss_percent_each_way"] or link["added_rtt_ms"]:
            where += (f"; {link['loss_percent_each_way']:g}% random loss on each namespace's ingress, "
                      f"{link['added_rtt_ms']:g} ms added round-trip delay ({link['delay_on']} direction)")
        if link.get("rtt_ms_tcp_connect_median") is not None:
            where += f"; path RTT (median TCP connect) {link['rtt_ms_tcp_connect_median']:.2f} ms"
    print(f"\n== {name}: {size}, {where}")
    for key, d in rep["downloads"].items():
        print(f"  {key:<17} {d['command']}")
    for key, why in rep["excluded"].items():
        print(f"  {key:<17} LEFT OUT: {why}")
    ratios_by_den = {k.split("/")[1]: v for k, v in rep["ratios"].items()}
    print(f"  {'download':<40}{'median MB/s':>12}{'min':>8}{'max':>8}{'cli CPU s':>10}{'srv CPU s':>10}"
          f"{'rcvbuf drops':>13}{'udp/this':>10}{'target':>9}  met?")
    for key, d in rep["downloads"].items():
        r = ratios_by_den.get(key)
        if r is None:
            rtxt = ttxt = mtxt = ""
        elif r["target"] is None:
            rtxt, ttxt, mtxt = f"{r['value']:.2f}", "-", "(context)"
        else:
            rtxt, ttxt, mtxt = f"{r['value']:.2f}", f">= {r['target']:.1f}", "MET" if r["met"] else "MISSED"
        best = " (best)" if d["peer"] == "atftp" and rep["best"].get("atftp") == key else ""
        print(f"  {d['label'] + best:<40}{rate(d['median_mb_per_sec']):>12}{rate(d['min_mb_per_sec']):>8}"
              f"{rate(d['max_mb_per_sec']):>8}{d['client_cpu_s_median']:>10.2f}{d['server_cpu_s_median']:>10.2f}"
              f"{d['udp_rcvbuf_drops_median']:>13.0f}{rtxt:>10}{ttxt:>9}  {mtxt}")
    for key, d in rep["downloads"].items():
        runs = d["runs"]
        if "link" in runs[0]:
            parts = []
            for direction in ("server->client", "client->server"):
                seen = statistics.median(r["link"][direction].get("seen", 0) for r in runs)
                dropped = statistics.median(r["link"][direction].get("dropped", 0) for r in runs)
                big = max(r["link"][direction].get("big", 0) for r in runs)
                parts.append(f"{direction} {seen:.0f} packets, {100 * dropped / seen if seen else 0:.2f}% "
                             f"dropped" + (f", {big} over 1500 bytes" if big else ""))
            for direction in runs[0].get("delay", {}):
                ds = [r["delay"][direction] for r in runs if direction in r.get("delay", {})]
                late = statistics.median(x.get("late_mean_us", 0) for x in ds)
                qd = sum(x.get("queue_dropped", 0) + x.get("user_dropped", 0) for x in ds)
                parts.append(f"{direction} delay element: held on average {late / 1000:.2f} ms beyond "
                             f"the delay, max {max(x.get('late_max_us', 0) for x in ds) / 1000:.1f} ms, "
                             f"queue peak {max(x.get('max_held', 0) for x in ds)}, {qd} queue drops")
            print(f"  {key}: (medians per run) " + "; ".join(parts))
        cl = runs[0].get("client")
        if isinstance(cl, dict):
            keys = [k for k in cl if k not in ("status", "offset", "bytes", "resumed", "restarted", "path",
                                                "output", "file", "command", "exit_code", "format",
                                                "server", "port", "size")]
            if keys:
                print(f"  {key} netlabctl --json (run 1): " + ", ".join(f"{k}={cl[k]}" for k in keys))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="measured runs per download (default 5)")
    ap.add_argument("--size", type=parse_size, default=parse_size("256M"),
                    help="file size for loopback and veth; K, M, G are powers of 1024 (default 256M)")
    ap.add_argument("--lossy-size", type=parse_size, default=parse_size("32M"),
                    help="file size for the lossy path (default 32M: a loss-based sender moves a "
                         "few MB/s there)")
    ap.add_argument("--only", default=",".join(CASES),
                    help="comma-separated subset of " + ",".join(CASES) + " (default all)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS),
                    help="comma-separated subset of " + ",".join(ALL_PEERS) + " (default all)")
    ap.add_argument("--build", default="build", help="meson build dir, relative to the repository top (default build)")
    ap.add_argument("--tmpdir", metavar="DIR",
                    help="where the temporary directory goes (default /dev/shm, a tmpfs, else $TMPDIR or /tmp)")
    ap.add_argument("--loopback-windows", default="2,4", help="atftp windowsizes on loopback (default 2,4)")
    ap.add_argument("--veth-windows", default="8,16,32,64", help="atftp windowsizes at MTU 1500 (default 8,16,32,64)")
    ap.add_argument("--atftp-timeout", type=float, default=30.0,
                    help="seconds after which an atftp download is given up and its windowsize left out "
                         "(at least size / 10 MB/s; default 30)")
    ap.add_argument("--veth-offload", choices=("on", "off"), default="on",
                    help="the clean veth's segmentation offloads (default on: as the kernel sets them up)")
    ap.add_argument("--loss", type=float, default=2.0, help="lossy path: percent dropped each way (default 2)")
    ap.add_argument("--delay-ms", type=float, default=5.0, help="lossy path: added round-trip delay (default 5)")
    ap.add_argument("--delay-on", choices=("ack", "data", "split"), default="ack",
                    help="which direction holds the delay: client->server (ack, default), "
                         "server->client (data), or half each (split)")
    ap.add_argument("--no-cubic", dest="tcp_cubic", action="store_false",
                    help="lossy path: leave out the context TCP download from a cubic sender")
    ap.add_argument("--queue-len", type=int, default=16384,
                    help="lossy path: packets the delay element holds at most (default 16384)")
    ap.add_argument("--prefault", type=float, default=2.0, metavar="F",
                    help="before each download, touch and free F times its bytes of memory (default 2; "
                         "0 turns it off; see bench-file.py in the README)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed first round")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a ratio misses its target")
    args = ap.parse_args()

    cases = [c.strip() for c in args.only.split(",") if c.strip()]
    if not cases or any(c not in CASES for c in cases) or len(set(cases)) != len(cases):
        ap.error(f"--only: want a comma-separated subset of {','.join(CASES)}, got '{args.only}'")
    cases = [c for c in CASES if c in cases]
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if not peers or any(p not in ALL_PEERS for p in peers):
        ap.error(f"--peers: want a comma-separated subset of {','.join(ALL_PEERS)}, got '{args.peers}'")
    if not 1 <= args.runs <= 100:
        ap.error("--runs: want 1-100")
    try:
        args.loopback_windows = [int(w) for w in args.loopback_windows.split(",")]
        args.veth_windows = [int(w) for w in args.veth_windows.split(",")]
    except ValueError:
        ap.error("--loopback-windows, --veth-windows: want numbers such as 2,4")
    if not 0 <= args.loss < 100 or not 0 <= args.delay_ms <= 1000:
        ap.error("--loss: 0 to 100 (percent); --delay-ms: 0 to 1000")
    Download.prefault_factor = args.prefault
    if any(c != "loopback" for c in cases) and os.geteuid() != 0:
        raise SystemExit("bench-xfer: the veth and lossy paths need root (network namespaces); "
                         "run as root or use --only loopback")

    tmpbase = args.tmpdir or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    workdir = None
    case_objs = []
    report = None
    failed = None  # the exit status, once the bench cannot go on
    try:
        need_exe("cmp", "apt-get install diffutils")
        if "atftp" in peers and any(c != "lossy" for c in cases):
            need_exe("atftpd")
            need_exe("atftp")
        if any(c != "loopback" for c in cases):
            for exe, pkg in (("ip", "iproute2"), ("nsenter", "util-linux"), ("ethtool", "ethtool")):
                need_exe(exe, f"apt-get install {pkg}")
        if "lossy" in cases:
            need_exe("nft")
            need_exe("iptables")
        workdir = Path(tempfile.mkdtemp(prefix="netlab-bench-xfer-", dir=tmpbase))
        os.chmod(workdir, 0o755)
        need_udp = "netlab-udp" in peers
        exes = (find_netlab(args.build, workdir, need_udp)
                if need_udp or "netlab-tcp" in peers else {})
        nfqdelay_exe = compile_nfqdelay(workdir) if "lossy" in cases else None
        big = args.size if any(c != "lossy" for c in cases) else 0
        small = args.lossy_size if "lossy" in cases and args.lossy_size != args.size else 0
        need = 2 * max(big, small) + big + small + 64 * 1024 ** 2
        free = shutil.disk_usage(workdir).free
        if free < need:
            raise BenchError(f"{workdir} has {free // 1024 ** 2} MiB free, the bench needs about "
                             f"{need // 1024 ** 2} MiB (use --tmpdir or --size)")
        (workdir / "netlabctl.ini").write_text("")
        root = workdir / "root"
        data = workdir / "data"
        root.mkdir(mode=0o755)
        data.mkdir(mode=0o755)
        sources = {}
        if big:
            log(f"writing {human_size(big)} of random bytes to {root / FILE_NAME}")
            make_source(root / FILE_NAME, big)
        for c in cases:
            sources[c] = root / (LOSSY_NAME if c == "lossy" and small else FILE_NAME)
        if small:
            log(f"writing {human_size(small)} of random bytes to {root / LOSSY_NAME}")
            make_source(root / LOSSY_NAME, small)
        os.sync()

        report = {"runs": args.runs, "warmup": not args.no_warmup, "prefault_factor": args.prefault,
                  "mb": "10^6 bytes", "tmpdir": str(workdir),
                  "machine": {"nproc": os.cpu_count(), "kernel": platform.release()},
                  "cases": {}}
        t_start = time.monotonic()
        for name in cases:
            case = Case(name, args.lossy_size if name == "lossy" else args.size, sources[name])
            case_objs.append(case)
            try:
                build_case(case, args, peers, exes, workdir, root, data, nfqdelay_exe)
                results = run_case(case, args)
                report["cases"][name] = summarize(case, results)
            finally:
                for s in reversed(case.servers):
                    s.stop()
                if case.link is not None:
                    case.link.down()
        report["seconds"] = round(time.monotonic() - t_start, 1)
    except (CorruptDownload, BenchError) as e:
        failed = bf.failure_status("bench-xfer", e)
    finally:
        for case in case_objs:
            stop_all(case.servers, "bench-xfer")
            if case.link is not None:
                try:
                    case.link.down()
                except Exception as e:
                    log(f"bench-xfer: removing the {case.name} namespaces: {e}")
            for s in case.servers:
                if isinstance(s, NetlabdServer):
                    s.log_problems(2000)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    if failed is not None:
        return failed
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    missed = [k for c in report["cases"].values() for k, v in c["ratios"].items() if v["met"] is False]
    return 1 if args.strict and missed else 0


def print_report(report):
    print(f"netlab UDP transfer bench: median of {report['runs']} runs, downloads interleaved, "
          f"files in {report['tmpdir']} (tmpfs), {report['machine']['nproc']} CPUs, Linux "
          f"{report['machine']['kernel']}, {report['seconds']:.0f} s; MB = 10^6 bytes; "
          "times are the client process's wall clock")
    sizes = {c["size_bytes"] for c in report["cases"].values()}
    if len(sizes) > 1:
        print("note: the lossy path moves a smaller file (--lossy-size) than the others")
    for name, rep in report["cases"].items():
        print_case(name, rep)
    print()
    for name, rep in report["cases"].items():
        for k, v in rep["ratios"].items():
            if v["target"] is not None:
                print(f"{name}: {k} = {v['value']:.2f} (target >= {v['target']}: "
                      f"{'MET' if v['met'] else 'MISSED'})")
            else:
                print(f"{name}: {k} = {v['value']:.2f} (context)")


if __name__ == "__main__":
    run_main(main)
