"""benchlib.py: what the benchmarks in tests/bench/ share: starting a server
under test from its own temporary config, checking that our own process (not
a system daemon) listens on its port, and stopping it by pid."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT = 10.0  # seconds for a server to listen
STOP_TIMEOUT = 5.0  # seconds after SIGTERM before SIGKILL


class BenchError(Exception):
    """The bench cannot go on; the message says why."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_ports(n, kind=socket.SOCK_STREAM):
    """n distinct free loopback ports (TCP, or UDP with kind=SOCK_DGRAM): all
    bound at once, then released."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, kind)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def listen_inode(port):
    """Inode of the socket in LISTEN state on 127.0.0.1:port, or None."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                return fields[9]
    return None


def pid_has_socket(pid, inode):
    target = f"socket:[{inode}]"
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


def tail(path, lines=15):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


class Server:
    """A server under test, started and stopped by pid."""

    def __init__(self, name, port, workdir):
        self.name = name
        self.port = port
        self.workdir = workdir
        self.proc = None
        self.logfile = workdir / f"{name}.log"
        self.killed = False  # True if SIGTERM was not enough

    def command(self):
        raise NotImplementedError

    def environment(self):
        return None

    def wait_started(self, deadline):
        """Wait until our own process listens on our port (not a system daemon)."""
        while time.monotonic() < deadline:
            self.check_alive()
            inode = listen_inode(self.port)
            if inode is not None and pid_has_socket(self.proc.pid, inode):
                return
            time.sleep(0.005)
        raise BenchError(f"{self.name} did not listen on 127.0.0.1:{self.port} within "
                         f"{START_TIMEOUT:.0f} s; its log ends with:\n{tail(self.logfile)}")

    def start(self):
        with open(self.logfile, "ab") as logf:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         env=self.environment(), close_fds=True,
                                         start_new_session=True)
        self.wait_started(time.monotonic() + START_TIMEOUT)

    def check_alive(self):
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} (pid {self.proc.pid}) exited with status "
                             f"{self.proc.returncode}; its log ends with:\n{tail(self.logfile)}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"{self.name} (pid {self.proc.pid}) ignored SIGTERM for {STOP_TIMEOUT:.0f} s, killing it")
            self.killed = True
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)


def warn_sigterm_status(report):
    """Say so when netlabd did not exit 0 on SIGTERM (report from Server.stop)."""
    status = report.get("netlabd_exit_status_on_sigterm", 0)
    if status != 0:
        print("warning: netlabd " + ("needed SIGKILL" if status is None else
                                     f"exited with status {status} on SIGTERM (want 0)"))


def run_main(main):
    """Run a bench's main() as a script: SIGTERM and Ctrl-C unwind through
    main()'s finally, which stops every server by pid."""
    def on_sigterm(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
