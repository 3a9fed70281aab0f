"""Two network namespaces joined by a veth pair, for tests across a real
(and, with nftables, lossy) link; integration-recipes.md section 6.

    pair = NetnsPair()          # unique names per process and pair
    pair.create()
    pair.set_loss(pair.server_ns, 2.0)     # 2% of what arrives in that namespace
    subprocess.run(pair.cmd(pair.client_ns, "netlabctl", ...))
    pair.destroy()              # asserts no process is left in either namespace first

Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), `ip` (iproute2) and `nft`
(nftables).  skip_reason() says why not when a test cannot run here.  Loss
is dropped on the receiving namespace's prerouting hook (dropping on the
sender's output hook makes sendmsg() fail with EPERM instead).  These
kernels have no netem; delay, reordering and duplication come from
udprelay.py.
"""
import ctypes
import itertools
import os
import re
import shutil
import socket
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
_pairs = itertools.count()
_skip = None


def run(cmd, input=None, check=True, timeout=20):
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r


def skip_reason():
    """None when namespaces, veth and nftables work here; else why not (cached)."""
    global _skip
    if _skip is not None:
        return _skip or None
    if os.geteuid() != 0:
        _skip = "needs root (network namespaces, veth, nftables)"
    elif not shutil.which("ip") or not shutil.which("nft"):
        _skip = "needs ip (iproute2) and nft (nftables): tests/setup-deps.sh --test installs them"
    else:
        name = f"nlprobe{os.getpid()}"
        r = subprocess.run(["ip", "netns", "add", name], capture_output=True, timeout=20)
        if r.returncode != 0:
            _skip = f"cannot create a network namespace: {r.stderr.decode(errors='replace').strip()}"
        else:
            try:
                r = subprocess.run(["ip", "netns", "exec", name, "nft", "-f", "-"], capture_output=True,
                                   timeout=20, input=b"table inet probe { chain pre { type filter hook prerouting "
                                                     b"priority -300; numgen random mod 100 < 1 drop; }; }\n")
                if r.returncode != 0:
                    _skip = f"nftables numgen does not work here: {r.stderr.decode(errors='replace').strip()}"
                else:
                    _skip = ""
            finally:
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
    return _skip or None



def sockets_in_netns(ns_path, count, family=socket.AF_INET, type_=socket.SOCK_DGRAM):
    """count sockets created inside the network namespace at ns_path (a
    /run/netns/NAME or /proc/PID/ns/net), usable from any thread: setns()
    changes only the calling thread, so a short-lived thread joins the
    namespace and makes them, and a socket keeps the namespace it was made in."""
    box = {}

    def make():
        socks = []
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            for _ in range(count):
                socks.append(socket.socket(family, type_))
            box["socks"] = socks
        except BaseException as e:  # reported in the caller's thread
            for s in socks:
                s.close()
            box["error"] = e

    t = threading.Thread(target=make, name="setns")
    t.start()
    t.join(10)
    if "error" in box:
        raise box["error"]
    if "socks" not in box:
        raise RuntimeError("the setns thread did not finish")
    return box["socks"]

class NetnsPair:
    """server_ns (server_addr on server_if) <-veth-> client_ns (client_addr on client_if)."""

    def __init__(self, server_addr="10.213.0.1", client_addr="10.213.0.2", prefixlen=24, mtu=1500):
        tag = f"{os.getpid()}{next(_pairs)}"
        self.server_ns, self.client_ns = f"nlx{tag}s", f"nlx{tag}c"
        self.server_if, self.client_if = f"nx{tag}s"[-15:], f"nx{tag}c"[-15:]
        self.server_addr, self.client_addr = server_addr, client_addr
        self.prefixlen = prefixlen
        self.mtu = mtu
        self.made = []

    def cmd(self, ns, *args):
        """A command line that runs args inside ns (ip execs: same pid)."""
        return ["ip", "netns", "exec", ns, *map(str, args)]

    def create(self):
        for ns in (self.server_ns, self.client_ns):
            if os.path.exists(f"/run/netns/{ns}") and not self.pids(ns):
                run(["ip", "netns", "del", ns])  # left by a crashed run that had our pid
            run(["ip", "netns", "add", ns])
            self.made.append(ns)
        run(["ip", "link", "add", self.server_if, "netns", self.server_ns, "mtu", str(self.mtu), "type", "veth",
             "peer", "name", self.client_if, "netns", self.client_ns, "mtu", str(self.mtu)])
        for ns, dev, addr in ((self.server_ns, self.server_if, self.server_addr),
                              (self.client_ns, self.client_if, self.client_addr)):
            run(["ip", "-n", ns, "addr", "add", f"{addr}/{self.prefixlen}", "dev", dev])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            # Segment GSO batches before the veth, as a NIC would on the wire:
            # otherwise a whole UDP_SEGMENT batch (up to 64 datagrams) crosses
            # the veth as one packet and the loss rule drops all or none.
            run(["ip", "-n", ns, "link", "set", dev, "gso_max_segs", "1"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        # A veth end can show DOWN for a few ms after "up" (bounded wait).
        deadline = time.monotonic() + 5
        for ns, dev in ((self.server_ns, self.server_if), (self.client_ns, self.client_if)):
            while True:
                out = run(["ip", "-n", ns, "-o", "link", "show", dev]).stdout.decode()
                if "LOWER_UP" in out and ",UP" in out:
                    break
                assert time.monotonic() < deadline, out
                time.sleep(0.01)
        return self

    def iface(self, ns):
        return self.server_if if ns == self.server_ns else self.client_if

    def set_loss(self, ns, percent, table="nlloss"):
        """Drop `percent` % of the datagrams arriving in ns over its veth, at
        random (nft numgen, prerouting); replaces an earlier rule."""
        self.clear_loss(ns, table)
        n = int(round(percent * 100))
        match = "" if n >= 10000 else f"numgen random mod 10000 < {n} "
        rules = (f"table inet {table} {{ chain pre {{ type filter hook prerouting priority -300; policy accept; "
                 f"iifname \"{self.iface(ns)}\" {match}counter drop; }}; }}\n")
        run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules.encode())

    def clear_loss(self, ns, table="nlloss"):
        run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", table], check=False)

    def dropped(self, ns, table="nlloss"):
        """Packets the loss rule of ns dropped so far (0 if there is none)."""
        r = run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet", table], check=False)
        m = re.search(rb"counter packets (\d+) bytes \d+ drop", r.stdout)
        return int(m.group(1)) if m else 0

    def pids(self, ns):
        return [int(p) for p in run(["ip", "netns", "pids", ns]).stdout.split()]

    def socket(self, ns, family=socket.AF_INET, type_=socket.SOCK_DGRAM):
        """A socket created inside ns, usable from here (sockets_in_netns)."""
        return sockets_in_netns(f"/run/netns/{ns}", 1, family, type_)[0]

    def destroy(self):
        """Delete both namespaces (their veth ends go with them), after
        asserting nothing runs in them any more."""
        left = {}
        try:
            for ns in self.made:
                p = self.pids(ns)
                if p:
                    left[ns] = p
        finally:
            for ns in self.made:
                run(["ip", "netns", "del", ns], check=False)
            self.made = []
        assert not left, f"processes left in the namespaces: {left}"


def pair_fixture(**kw):
    """Body of a pytest fixture: skip when namespaces cannot be made here,
    else yield a created NetnsPair(**kw) and destroy it afterwards."""
    import pytest
    why = skip_reason()
    if why:
        pytest.skip(why)
    pair = NetnsPair(**kw)
    try:
        pair.create()
        yield pair
    finally:
        pair.destroy()
