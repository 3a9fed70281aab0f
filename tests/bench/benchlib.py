"""benchlib.py: what the benchmarks in tests/bench/ share: starting a server
under test from its own temporary config, checking that our own process (not
a system daemon) listens on its port, and stopping it by pid."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT = 10.0  # seconds for a server to listen
STOP_TIMEOUT = 5.0  # seconds after SIGTERM before SIGKILL
PROBLEMS = r"\b(error|warning|crit|alert|emerg)\b"  # log entries worth showing


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


def pid_owns_any(pid, inodes):
    """Has pid a descriptor of one of the sockets with these inodes?"""
    targets = {f"socket:[{i}]" for i in inodes}
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


def pid_has_socket(pid, inode):
    return pid_owns_any(pid, [inode])


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

    def launch_command(self):
        """What start() runs: command(), or a subclass's wrapping of it."""
        return self.command()

    def listening(self):
        """Does our own process (not a system daemon) listen on our port?"""
        inode = listen_inode(self.port)
        return inode is not None and pid_has_socket(self.proc.pid, inode)

    def awaited(self):
        """What wait_started() waits for, in words for its error."""
        return f"listen on 127.0.0.1:{self.port}"

    def wait_started(self, deadline):
        """Wait until listening() says the server is ready."""
        while time.monotonic() < deadline:
            self.check_alive()
            if self.listening():
                return
            time.sleep(0.005)
        raise BenchError(f"{self.name} did not {self.awaited()} within "
                         f"{START_TIMEOUT:.0f} s; its log ends with:\n{tail(self.logfile)}")

    def start(self):
        with open(self.logfile, "ab") as logf:
            self.proc = subprocess.Popen(self.launch_command(), stdin=subprocess.DEVNULL,
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


class Netlabd:
    """Mixin for a Server that is netlabd: run from a config of its own, which
    write_config() checks with --check-config, logging to standard error,
    without the socket-activation and notify variables of whoever started
    the bench. Goes before Server (or a subclass of it) in the bases."""

    def write_config(self, exe, conf, text, hint="", advice=""):
        """Write text to conf. If netlabd refuses it, the error has hint
        before netlabd's words and advice after them."""
        self.exe = exe
        self.conf = conf
        conf.write_text(text)
        res = subprocess.run([str(exe), "--check-config", "-c", str(conf)],
                             capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise BenchError(f"netlabd --check-config refuses the generated {conf}{hint}:\n"
                             f"{(res.stderr + res.stdout).strip()}{advice}")

    def command(self):
        return [str(self.exe), "-c", str(self.conf), "--log-target=stderr"]

    def environment(self):
        return {k: v for k, v in os.environ.items()
                if not k.startswith(("LISTEN_", "WATCHDOG_", "NOTIFY_SOCKET"))}

    def log_problems(self, lines, pattern=PROBLEMS):
        """Log the last ten entries that match pattern (errors and warnings)
        among the last lines of its log."""
        problems = [ln for ln in tail(self.logfile, lines).splitlines() if re.search(pattern, ln, re.I)]
        if problems:
            log(f"{self.name} logged:\n" + "\n".join(problems[-10:]))


def build_exe(build, sub, name, probe, peers_hint, bindir=None):
    """The program `name` from the meson build dir `build` (relative to the
    repository top unless absolute), checked by running it with `probe`. With
    bindir it is copied there first, so that a rebuild during the bench (ninja
    replaces the file) cannot change what is measured. peers_hint names the
    --peers choice that leaves netlab out. Return: the path to run."""
    build = Path(build)
    if not build.is_absolute():
        build = Path(__file__).resolve().parents[2] / build
    built = build / sub / name
    if not built.exists():
        raise BenchError(f"{name} not found at {built}: build it first (meson setup {build} && "
                         f"meson compile -C {build}), point --build at the build dir, "
                         f"or run only the peers with --peers {peers_hint}")
    exe = built
    if bindir is not None:
        exe = Path(bindir) / name
        shutil.copy2(built, exe)
    try:
        res = subprocess.run([str(exe), *probe], capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise BenchError(f"'{exe} {' '.join(probe)}' did not finish within 10 s") from None
    except OSError as e:
        raise BenchError(f"cannot run {built} (copied to {exe}): {e}; is a build running?") from None
    if res.returncode != 0:
        raise BenchError(f"'{exe} {' '.join(probe)}' failed with status {res.returncode}:\n"
                         f"{(res.stderr or res.stdout).decode(errors='replace').strip()}")
    return exe


def stop_all(servers, prog):
    """Stop every server, the last started first, even when one of them
    fails to stop (prog names the bench in what is logged then).

    Return: True if every stop went through, False if one raised."""
    ok = True
    for s in reversed(list(servers)):
        try:
            s.stop()
        except Exception as e:  # keep stopping the others
            ok = False
            log(f"{prog}: stopping {s.name} (pid {s.proc.pid}): {e}")
    return ok


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
