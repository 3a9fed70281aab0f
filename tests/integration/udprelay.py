#!/usr/bin/python3
"""A small user-space UDP relay that makes a link worse: per-direction delay
and jitter, random loss, reordering and duplication, all decided by a seeded
random generator (the n-th datagram of a direction meets the same fate in
every run with the same seed; only the timing varies).  For kernels without
netem (tests/integration/test_xfer_lossy.py, integration-recipes.md section 6).

    udprelay.py --listen 10.213.0.1:0 --server 10.213.0.1:5001 \\
                --delay-up 5 --delay-down 5 --reorder 0.02 --dup 0.02 --seed 7

"up" is client -> server, "down" is server -> client.  Clients send to the
listen address; each client gets its own upstream socket, so the server sees
one stable source per client (its cookie stays valid).  The relay works like
a NAT that maps per client: a reply from the server's own port goes back
from the listen socket; a reply from any other server port (a server that
moves a transfer to a port of its own, TFTP style) goes back from a relay
socket made for that (client, server port) pair, and what the client sends
to that socket goes to that server port.

Prints "ready PORT" (the listen port) on standard output once bound, and one
JSON object of counters when it ends: on SIGTERM or SIGINT, or after
--max-seconds (the run is always bounded).  Memory is bounded too: at most
--max-queue-bytes wait in the delay queue, at most --max-clients clients and
--max-ports mapped server ports per client; the excess is dropped and counted.

Importable: RelayProcess starts it as a child (optionally under a command
prefix such as `ip netns exec NS`) and stops it by pid.
"""
import argparse
import heapq
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import time

UP, DOWN = 0, 1
BUF = 8 << 20  # socket buffers: a window of 64 KiB datagrams must fit


def parse_addr(text):
    """"1.2.3.4:5" or "[::1]:5" -> (family, host, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = text.rpartition(":")
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), host, int(port)


def relay_socket(family, addr):
    """A non-blocking UDP socket bound to addr, with big buffers."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # SO_RCVBUFFORCE, SO_SNDBUFFORCE
        try:
            s.setsockopt(socket.SOL_SOCKET, force, BUF)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, opt, BUF)
    s.bind(addr)
    s.setblocking(False)
    return s


class Direction:
    def __init__(self, seed, delay_ms, jitter_ms, loss, reorder, reorder_extra_ms, dup):
        self.rng = random.Random(seed)
        self.delay = delay_ms / 1000.0
        self.jitter = jitter_ms / 1000.0
        self.loss, self.reorder, self.dup = loss, reorder, dup
        self.reorder_extra = reorder_extra_ms / 1000.0
        self.stats = {"received": 0, "sent": 0, "lost": 0, "reordered": 0, "duplicated": 0, "overflow": 0,
                      "send_errors": 0, "bytes": 0}

    def fates(self, now):
        """The times (possibly none, possibly two) at which a datagram leaves.
        Every datagram draws the same number of random values, so fates do
        not depend on earlier outcomes."""
        r_loss, r_jit, r_reo, r_dup, r_dupdelay = (self.rng.random() for _ in range(5))
        if r_loss < self.loss:
            self.stats["lost"] += 1
            return []
        t = now + self.delay + r_jit * self.jitter
        if r_reo < self.reorder:
            self.stats["reordered"] += 1
            t += self.reorder_extra
        out = [t]
        if r_dup < self.dup:
            self.stats["duplicated"] += 1
            out.append(t + r_dupdelay * max(self.delay, 0.001))
        return out


class Client:
    def __init__(self, addr, up):
        self.addr = addr          # the client's address
        self.up = up              # socket toward the server
        self.down = {}            # server port -> relay socket facing the client (ports other than the listener's)


class Relay:
    def __init__(self, a):
        self.a = a
        fam, host, port = parse_addr(a.listen)
        self.sfam, self.shost, self.sport = parse_addr(a.server)
        self.listen_host = host
        self.fam = fam
        self.main = relay_socket(fam, (host, port))
        self.port = self.main.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.main, selectors.EVENT_READ, ("main", None, None))
        self.clients = {}
        self.queue = []           # (due, n, sock, data, dest, direction)
        self.queued_bytes = 0
        self.n = 0
        self.dirs = [Direction(a.seed * 2 + 1, a.delay_up, a.jitter_up, a.loss_up, a.reorder, a.reorder_extra,
                               a.dup),
                     Direction(a.seed * 2 + 2, a.delay_down, a.jitter_down, a.loss_down, a.reorder,
                               a.reorder_extra, a.dup)]
        self.other = {"clients": 0, "refused_clients": 0, "mapped_ports": 0, "refused_ports": 0, "strangers": 0}
        self.stop = False

    # -- mapping --
    def client(self, addr):
        c = self.clients.get(addr)
        if c is None:
            if len(self.clients) >= self.a.max_clients:
                self.other["refused_clients"] += 1
                return None
            up = relay_socket(self.sfam, ("::" if self.sfam == socket.AF_INET6 else "0.0.0.0", 0))
            c = Client(addr, up)
            self.clients[addr] = c
            self.sel.register(up, selectors.EVENT_READ, ("up", c, None))
            self.other["clients"] += 1
        return c

    def down_sock(self, c, server_port):
        s = c.down.get(server_port)
        if s is None:
            if len(c.down) >= self.a.max_ports:
                self.other["refused_ports"] += 1
                return None
            s = relay_socket(self.fam, (self.listen_host, 0))
            c.down[server_port] = s
            self.sel.register(s, selectors.EVENT_READ, ("down", c, server_port))
            self.other["mapped_ports"] += 1
        return s

    # -- the delay queue --
    def enqueue(self, direction, sock, data, dest, now):
        d = self.dirs[direction]
        d.stats["received"] += 1
        for t in d.fates(now):
            if self.queued_bytes + len(data) > self.a.max_queue_bytes:
                d.stats["overflow"] += 1
                continue
            self.n += 1
            heapq.heappush(self.queue, (t, self.n, sock, data, dest, direction))
            self.queued_bytes += len(data)

    def flush(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, _, sock, data, dest, direction = heapq.heappop(self.queue)
            self.queued_bytes -= len(data)
            st = self.dirs[direction].stats
            try:
                sock.sendto(data, dest)
                st["sent"] += 1
                st["bytes"] += len(data)
            except OSError:
                st["send_errors"] += 1

    # -- receiving --
    def drain(self, sock, kind, c, server_port, now):
        for _ in range(256):  # a batch, then let the timers run
            try:
                data, src = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error reported on the socket
                continue
            if kind == "main":  # a client, toward the server's own port
                cl = self.client(src)
                if cl is not None:
                    self.enqueue(UP, cl.up, data, (self.shost, self.sport), now)
            elif kind == "down":  # a client, toward a server port of its own
                if src != c.addr:
                    self.other["strangers"] += 1
                    continue
                self.enqueue(UP, c.up, data, (self.shost, server_port), now)
            else:  # "up": the server answered
                port = src[1]
                if port == self.sport:
                    self.enqueue(DOWN, self.main, data, c.addr, now)
                else:
                    s = self.down_sock(c, port)
                    if s is not None:
                        self.enqueue(DOWN, s, data, c.addr, now)

    def run(self):
        end = time.monotonic() + self.a.max_seconds
        while not self.stop:
            now = time.monotonic()
            if now >= end:
                break
            timeout = 0.05
            if self.queue:
                timeout = min(timeout, max(0.0, self.queue[0][0] - now))
            for key, _ in self.sel.select(timeout):
                kind, c, server_port = key.data
                self.drain(key.fileobj, kind, c, server_port, time.monotonic())
            self.flush(time.monotonic())

    def report(self):
        out = {"up": self.dirs[UP].stats, "down": self.dirs[DOWN].stats}
        out.update(self.other)
        return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", required=True, help="ADDR:PORT to receive clients on (port 0: any)")
    p.add_argument("--server", required=True, help="ADDR:PORT of the server")
    for way, link in (("up", "client -> server"), ("down", "server -> client")):
        p.add_argument(f"--delay-{way}", type=float, default=0.0, help=f"ms added {link}")
        p.add_argument(f"--jitter-{way}", type=float, default=0.0, help=f"up to this many more ms, uniformly ({link})")
        p.add_argument(f"--loss-{way}", type=float, default=0.0, help=f"probability a datagram is dropped ({link})")
    p.add_argument("--reorder", type=float, default=0.0, help="probability a datagram is held back")
    p.add_argument("--reorder-extra", type=float, default=3.0, help="ms a held-back datagram waits more")
    p.add_argument("--dup", type=float, default=0.0, help="probability a datagram is sent twice")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-seconds", type=float, default=120.0, help="end after this long, whatever happens")
    p.add_argument("--max-clients", type=int, default=64)
    p.add_argument("--max-ports", type=int, default=16, help="server ports mapped per client")
    p.add_argument("--max-queue-bytes", type=int, default=64 << 20)
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    r = Relay(a)

    def on_signal(signum, frame):
        r.stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"ready {r.port}", flush=True)
    r.run()
    print(json.dumps(r.report()), flush=True)
    return 0


class RelayProcess:
    """udprelay.py as a child process.  prefix: a command to run it under
    (["ip", "netns", "exec", NS] keeps the pid: ip execs).  Stop with
    stop(), which returns the counters."""

    def __init__(self, listen, server, prefix=(), ready_timeout=10.0, **opts):
        cmd = [*prefix, sys.executable, os.path.abspath(__file__), "--listen", listen, "--server", server]
        for k, v in opts.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.stats = None
        from conftest import read_line  # the tests' helpers: only this class needs them
        line = read_line(self.proc.stdout, ready_timeout)
        if not line.startswith(b"ready "):
            self.kill()
            raise RuntimeError(f"udprelay did not start: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(line.split()[1])

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=10.0):
        """SIGTERM by pid; returns the counters (dict)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("udprelay did not stop on SIGTERM")
        assert self.proc.returncode == 0, (self.proc.returncode, err)
        self.stats = json.loads(out.decode().strip().splitlines()[-1])
        return self.stats

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.communicate(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
