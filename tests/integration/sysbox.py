"""sysbox: boot a REAL systemd as PID 1 of a private PID namespace, for pytest.

WHAT
    SystemdBox starts /lib/systemd/systemd as PID 1 of a new PID, mount, UTS, IPC and
    cgroup namespace (the network namespace is the host's, so tests connect to sockets
    that units listen on via 127.0.0.1 directly).  Tests install unit files, start them
    with systemctl, run commands inside (nsenter) and read the box's own journald.

        with SystemdBox("mytest", unit_files={"x.service": TEXT}) as box:
            box.systemctl("start", "x.service")
            entries = box.journal(["SYSLOG_IDENTIFIER=x"], wait_for=lambda e: e)

WHY IT IS CAREFUL (see /work/shared/notes/integration-recipes.md, sections 0 and 4)
    The mount namespace shares the host's root filesystem.  A plain boot would wipe the
    host's /tmp (systemd-tmpfiles-setup), start every service enabled on the machine,
    and could make /run/systemd/system appear on the host.  nsboot.sh (the script that
    runs as PID 1 before exec'ing systemd) therefore mounts a private /run, makes /tmp and
    /proc/sys read-only, binds /dev/kmsg to /dev/null, masks the dangerous units, exports
    container= and boots only netlab-test.target.  Directories the units must write to
    are passed as rw_paths (kept writable inside).

HOW (lifecycle)
    start(): mkdir a unique cgroup (pure v2 host: /sys/fs/cgroup/NAME; hybrid host:
    /sys/fs/cgroup/unified/NAME and a cgroup2-only view inside, see box_cgroup_mode() for
    why this differs from the recipe and how to get the recipe's hybrid view),
    Popen(unshare ... nsboot.sh UNITDIR) whose child joins
    the cgroup(s) before exec (preexec_fn), find systemd's host pid in /proc/<unshare>/task/
    <unshare>/children, hold a pidfd on it (race-free signals) and an fd on its
    /proc/PID/ns/pid (keeps the ns inode from being reused by a parallel test), then poll
    `systemctl is-system-running` until running/degraded.
    stop(): SIGRTMIN+4 (= poweroff) to systemd, SIGKILL fallback (kills the whole pid
    namespace), then verify that the cgroups are empty and no process is in the saved pid
    namespace, and rmdir the cgroups depth-first.  Only pids we recorded or found in our
    own cgroup/namespace are ever signalled; nothing is killed by name.

ROBUSTNESS
    - Parallel use: the cgroup name embeds the caller's name, pid and a counter; each box
      has its own /run, so unit names need only be unique per box, but PORTS must be unique
      (use free_port()).
    - Every wait is bounded.  If the test process dies abruptly, the kernel SIGKILLs
      unshare (PR_SET_PDEATHSIG) which SIGKILLs systemd (--kill-child): the namespace dies.
      Empty cgroups left over by such crashes are swept by the next start().
      (PDEATHSIG fires when the *thread* that called start() exits: start boxes from a
      thread that outlives them, e.g. pytest's main thread.)
    - Debugging: NETLAB_SYSBOX_KEEP=1 keeps the work dir (boot.log = nsboot/unshare output);
      NETLAB_LOG_LEVEL=debug raises systemd's log level (read it with box.journal()).

Stdlib only; Python >= 3.9 (pidfd), tested with Debian 12's /usr/bin/python3 (3.11).
Needs root, util-linux unshare/nsenter and systemd.  Use can_boot() to skip otherwise.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

__all__ = ["SystemdBox", "SysboxError", "SysboxCommandError", "can_boot", "free_port",
           "cgroup_layout", "box_cgroup_mode"]

HERE = Path(__file__).resolve().parent
NSBOOT = HERE / "nsboot.sh"
SYSTEMD = "/lib/systemd/systemd"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "netlab-sysbox-"
# host dir for per-box work dirs (unit staging, boot.log); read-only /tmp inside is fine
WORK_PARENT = tempfile.gettempdir()
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# env vars that must not leak from a (possibly systemd-managed) test runner into the box
_ENV_DROP = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "INVOCATION_ID",
             "JOURNAL_STREAM", "WATCHDOG_PID", "WATCHDOG_USEC", "SYSTEMD_EXEC_PID",
             "MANAGERPID", "PIDFILE")

_counter = itertools.count()
_counter_lock = threading.Lock()

PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


class SysboxError(RuntimeError):
    """The box could not be started, or did not shut down cleanly."""


class SysboxCommandError(subprocess.CalledProcessError):
    """CalledProcessError whose message includes the command's stdout and stderr."""

    def __str__(self) -> str:
        return (f"{super().__str__()}\n--- stdout ---\n{self.stdout or ''}"
                f"--- stderr ---\n{self.stderr or ''}")


# --------------------------------------------------------------------------------------------
# host inspection helpers
# --------------------------------------------------------------------------------------------

def _mountinfo() -> list[tuple[str, str, str, str]]:
    """(mount point, root, fstype, super options) for each line of /proc/self/mountinfo."""
    result = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(fields) >= 5 and len(rfields) >= 3:
                result.append((fields[4], fields[3], rfields[0], rfields[2]))
    return result


def _mounts() -> dict[str, tuple[str, str]]:
    """mount point -> (fstype, super options); the last (top) mount wins."""
    return {mp: (fst, opts) for mp, _root, fst, opts in _mountinfo()}


def cgroup_layout() -> str | None:
    """The HOST's layout: 'unified' (pure cgroup v2), 'hybrid' (v1 name=systemd + v2 at
    unified/, this machine), 'legacy' (v1 only) or None if nothing usable is mounted."""
    m = _mounts()
    root = str(CGROUP_ROOT)
    if m.get(root, ("",))[0] == "cgroup2":
        return "unified"
    sd = m.get(f"{root}/systemd")
    has_sd = sd is not None and sd[0] == "cgroup" and "name=systemd" in sd[1].split(",")
    if has_sd and m.get(f"{root}/unified", ("",))[0] == "cgroup2":
        return "hybrid"
    if has_sd:
        return "legacy"
    return None


def box_cgroup_mode(host_layout: str | None = None) -> str | None:
    """The cgroupfs view mounted INSIDE the box (NETLAB_CGROUP_LAYOUT for nsboot.sh).

    On a hybrid host the recipe mounts tmpfs + name=systemd + cgroup2 at unified/.  With
    that view systemd also mounts every v1 controller hierarchy (pids, memory, devices...),
    which the cgroup namespace roots at the CALLER's v1 cgroups, and creates init.scope and
    system.slice there: on the host (observed: /sys/fs/cgroup/pids/system.slice), shared
    by parallel boxes and never removed.  So by default a hybrid host gets a pure cgroup2
    view instead (systemd follows an already-mounted cgroup2 /sys/fs/cgroup; the hybrid
    host's v2 hierarchy has no controllers, which systemd tolerates; verified with 252):
    one box cgroup, nothing outside it.  NETLAB_SYSBOX_CGROUP=hybrid selects the recipe's
    view; the box then also gets its own cgroup in every v1 controller hierarchy (under the
    caller's, so v1 limits still apply) so that systemd's sub-cgroups stay inside it."""
    host_layout = host_layout or cgroup_layout()
    if host_layout == "hybrid":
        return "hybrid" if os.environ.get("NETLAB_SYSBOX_CGROUP", "").strip() == "hybrid" else "unified"
    return host_layout


def _v1_controller_parents() -> list[Path]:
    """For each mounted v1 controller hierarchy, the caller's cgroup dir in it."""
    own: dict[frozenset[str], str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if hid != "0" and ctrls and not ctrls.startswith("name="):
                own[frozenset(ctrls.split(","))] = path
    parents: list[Path] = []
    seen_dev: set[int] = set()
    for mp, root, fstype, opts in _mountinfo():
        if fstype != "cgroup" or not mp.startswith(f"{CGROUP_ROOT}/"):
            continue
        optset = set(opts.split(","))
        for ctrls, path in own.items():
            if not ctrls <= optset:
                continue
            if path != root and not path.startswith(root.rstrip("/") + "/"):
                continue          # our cgroup is not visible through this mount
            try:
                dev = os.stat(mp).st_dev
            except OSError:
                continue
            if dev in seen_dev:
                continue
            seen_dev.add(dev)
            parents.append(Path(os.path.normpath(Path(mp) / os.path.relpath(path, root))))
    return parents


def _cgroup_parents(mode: str, host_layout: str) -> list[Path]:
    """Dirs in which the box's cgroup (NAME) is created and joined."""
    if mode == "unified":
        return [CGROUP_ROOT] if host_layout == "unified" else [CGROUP_ROOT / "unified"]
    named = [CGROUP_ROOT / "systemd"] + ([CGROUP_ROOT / "unified"] if mode == "hybrid" else [])
    return named + _v1_controller_parents()


def can_boot() -> tuple[bool, str]:
    """Whether this machine can run a SystemdBox: (ok, reason)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False, "needs root"
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool, path=SAFE_PATH) is None:
            return False, f"{tool} (util-linux) not found"
    if not os.access(SYSTEMD, os.X_OK):
        return False, f"{SYSTEMD} not present"
    if not NSBOOT.is_file():
        return False, f"{NSBOOT} missing"
    if not hasattr(os, "pidfd_open"):
        return False, "Python without os.pidfd_open"
    layout = cgroup_layout()
    if layout is None:
        return False, "no cgroup v2 or v1 name=systemd hierarchy mounted at /sys/fs/cgroup"
    mode = box_cgroup_mode(layout)
    for h in _cgroup_parents(mode, layout):
        if not os.access(h, os.W_OK):
            return False, f"cgroup dir {h} not writable"
    for p in ("/proc/self/ns/pid", "/proc/self/ns/mnt", "/proc/self/ns/cgroup"):
        if not os.path.exists(p):
            return False, f"kernel lacks {p}"
    return True, f"ok (host cgroup layout {layout}, box view {mode})"


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _read_ints(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return []


def _cgroup_tree_pids(top: Path) -> set[int]:
    """All pids in cgroup.procs of top and every descendant cgroup."""
    pids: set[int] = set()
    for dirpath, _dirs, _files in os.walk(top):
        pids.update(_read_ints(Path(dirpath) / "cgroup.procs"))
    return pids


def _rmdir_tree(top: Path) -> None:
    """rmdir a cgroup and its descendants, depth-first (cgroup dirs only contain files
    the kernel provides, so rmdir is the only way and the right one)."""
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        os.rmdir(dirpath)


def _sweep_stale_cgroups(parents: Iterable[Path]) -> None:
    """Remove EMPTY cgroups named netlab-sysbox-*-<pid>-<n> whose creating process is gone
    (left behind when a test process was killed).  Never touches non-empty cgroups."""
    pat = re.compile(re.escape(CGROUP_PREFIX) + r".*-(\d+)-\d+$")
    for h in parents:
        try:
            names = os.listdir(h)
        except OSError:
            continue
        for n in names:
            m = pat.match(n)
            if not m or os.path.exists(f"/proc/{m.group(1)}"):
                continue
            try:
                if not _cgroup_tree_pids(h / n):
                    _rmdir_tree(h / n)
            except OSError:
                pass


def _sweep_stale_workdirs() -> None:
    """Remove work dirs netlab-sysbox-*-<pid>-<n>-XXXX in WORK_PARENT whose creating
    process is gone (left behind when a test process was SIGKILLed)."""
    pat = re.compile(re.escape(CGROUP_PREFIX) + r".*-(\d+)-\d+-[A-Za-z0-9_]{8}$")
    try:
        names = os.listdir(WORK_PARENT)
    except OSError:
        return
    for n in names:
        m = pat.match(n)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        p = os.path.join(WORK_PARENT, n)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if st.st_uid == os.geteuid() and os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)


def _ns_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _describe(pids: Iterable[int]) -> str:
    """'pid comm state ppid' for diagnostics (a zombie re-parented to a lazy host init
    stays in the box's pid namespace and cgroup listing until that init reaps it)."""
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                head, _, tail = f.read().rpartition(")")
            comm, fields = head.partition("(")[2], tail.split()
            out.append(f"{pid}({comm} state={fields[0]} ppid={fields[1]})")
        except (OSError, IndexError):
            out.append(f"{pid}(gone)")
    return ", ".join(out)


def _sanitize(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]
    return s or "box"


# --------------------------------------------------------------------------------------------
# the box
# --------------------------------------------------------------------------------------------

class SystemdBox:
    """A real systemd as PID 1 of private namespaces.  Use as a context manager.

    Attributes after start(): pid (systemd's HOST pid), unshare_pid, root (Path of
    /proc/PID/root, the box's view of the filesystem), cgroups (host cgroup dirs),
    boot_state ('running' or 'degraded'), boot_seconds, workdir (host temp dir).
    """

    def __init__(self, name: str, unit_files: dict[str, str] | None = None,
                 rw_paths: Sequence[str | os.PathLike] | None = None,
                 overlay_root: bool = False, private_net: bool = False):
        """overlay_root: boot on a throwaway copy-on-write overlay of / (writes, package
        installs and new users stay in a tmpfs that dies with the box).  private_net: the
        box gets its own network namespace with only lo, so units may listen on their
        shipped addresses and ports; reach it with net_run() and net_socket()."""
        self.name = name
        self.overlay_root = overlay_root
        self.private_net = private_net
        self.unit_files = dict(unit_files or {})
        self.rw_paths = [os.path.realpath(p) for p in (rw_paths or [])]
        for p in self.rw_paths:
            if not os.path.isdir(p):
                raise ValueError(f"rw_paths entry {p!r} is not an existing directory")
            if any(c.isspace() for c in p):
                raise ValueError(f"rw_paths entry {p!r} contains whitespace (unsupported)")
        self.layout: str | None = None
        self.cgroups: list[Path] = []
        self.workdir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.unshare_pid: int | None = None
        self.boot_state: str | None = None
        self.boot_seconds: float | None = None
        self.poweroff_seconds: float | None = None
        self.stop_note: str | None = None      # set when poweroff needed the SIGKILL fallback
        self._pidfd: int | None = None
        self._nsfd: int | None = None
        self._ns: tuple[int, int] | None = None
        self._started = False
        self._stopped = False
        self._log = None

    # ---- context manager -------------------------------------------------------------------
    def __enter__(self) -> "SystemdBox":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self.stop()
        except Exception as e:
            if exc is None:
                raise
            # do not mask the test's own failure, but say that cleanup failed too
            exc.add_note(f"SystemdBox({self.name!r}).stop() also failed: {e}")
        return False

    # ---- boot ------------------------------------------------------------------------------
    def start(self, timeout: float = 10) -> "SystemdBox":
        """Boot systemd and wait (at most `timeout` s) until it is running or degraded."""
        if self._started:
            raise SysboxError("a SystemdBox can be started only once")
        self._started = True
        ok, why = can_boot()
        if not ok:
            raise SysboxError(f"cannot boot systemd here: {why}")
        t0 = time.monotonic()
        deadline = t0 + timeout
        try:
            self._prepare()
            self._launch()
            self._find_systemd(deadline)
            self._wait_running(deadline)
        except BaseException as e:
            # clean up whatever was created; keep the boot log in the error
            log = self._boot_log()
            try:
                self.stop()
            except Exception as e2:  # report both
                log += f"\n(stop after failed start also failed: {e2})"
            if isinstance(e, SysboxError):
                raise SysboxError(f"{e}\n--- boot.log ---\n{log}") from None
            raise
        self.boot_seconds = time.monotonic() - t0
        return self

    def _prepare(self) -> None:
        host_layout = cgroup_layout()
        assert host_layout is not None
        self.layout = box_cgroup_mode(host_layout)
        assert self.layout is not None
        parents = _cgroup_parents(self.layout, host_layout)
        _sweep_stale_cgroups(parents)
        with _counter_lock:
            n = next(_counter)
        cgname = f"{CGROUP_PREFIX}{_sanitize(self.name)}-{os.getpid()}-{n}"
        for h in parents:
            d = h / cgname
            d.mkdir(mode=0o755)        # FileExistsError = name clash: fail loudly
            self.cgroups.append(d)
            for knob in ("cpuset.cpus", "cpuset.mems"):   # v1 cpuset children start empty
                if (h / knob).exists():
                    (d / knob).write_text((h / knob).read_text().strip() or "\n")
        _sweep_stale_workdirs()
        self.workdir = Path(tempfile.mkdtemp(
            prefix=f"{CGROUP_PREFIX}{_sanitize(self.name)}-{os.getpid()}-{n}-", dir=WORK_PARENT))
        unitdir = self.workdir / "units"
        unitdir.mkdir()
        if self.overlay_root:
            (self.workdir / "overlay").mkdir()
        for uname, content in self.unit_files.items():
            self._write_unit_file(unitdir, uname, content)

    def _launch(self) -> None:
        assert self.workdir is not None
        procs_files = [str(d / "cgroup.procs") for d in self.cgroups]
        libc = _libc

        def child_setup() -> None:   # runs in the forked child before exec: keep it minimal
            for f in procs_files:
                fd = os.open(f, os.O_WRONLY)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)
            if libc is not None:     # die (and take the namespace with us) if our parent dies
                libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

        env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8",
               "NETLAB_HOST_MNTNS": str(os.stat("/proc/self/ns/mnt").st_ino),
               "NETLAB_RW_PATHS": " ".join(self.rw_paths),
               "NETLAB_CGROUP_LAYOUT": self.layout or ""}
        if self.overlay_root:
            env["NETLAB_OVERLAY_DIR"] = str(self.workdir / "overlay")
        if self.private_net:
            env["NETLAB_PRIVATE_NET"] = "1"
        for k in ("NETLAB_LOG_TARGET", "NETLAB_LOG_LEVEL"):
            if os.environ.get(k):
                env[k] = os.environ[k]
        cmd = ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--uts", "--ipc",
               "--cgroup", *(["--net"] if self.private_net else []),
               "--mount-proc", "--propagation", "private", "--",
               # via /bin/sh so a lost exec bit on nsboot.sh does not matter
               "/bin/sh", str(NSBOOT), str(self.workdir / "units")]
        self._log = open(self.workdir / "boot.log", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, cwd="/",
                                     start_new_session=True, preexec_fn=child_setup,
                                     close_fds=True)
        self.unshare_pid = self.proc.pid

    def _find_systemd(self, deadline: float) -> None:
        assert self.proc is not None
        up = self.proc.pid
        children = Path(f"/proc/{up}/task/{up}/children")
        while True:
            if self.proc.poll() is not None:
                raise SysboxError(f"unshare exited early with status {self.proc.returncode}")
            kids = _read_ints(children)
            if kids:
                break
            if time.monotonic() > deadline:
                raise SysboxError("boot timeout: unshare did not fork PID 1 in time")
            time.sleep(0.005)
        pid = kids[0]
        pidfd = os.pidfd_open(pid)
        # pid reuse guard: the pid cannot be recycled while it is our (unreaped) child's
        # child, so if its parent is still unshare now, the pidfd refers to PID 1 of the box.
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
        except (OSError, AttributeError, ValueError):
            ppid = -1
        if ppid != up:
            os.close(pidfd)
            raise SysboxError(f"PID 1 (host pid {pid}) vanished during boot")
        self._pidfd = pidfd
        self.pid = pid
        self._nsfd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(self._nsfd)
        self._ns = (st.st_dev, st.st_ino)
        if self._ns == _ns_id("/proc/self/ns/pid"):
            raise SysboxError("PID 1 candidate is in the host pid namespace")

    def _wait_running(self, deadline: float) -> None:
        state = ""
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise SysboxError(f"systemd exited during boot (status {self.proc.returncode})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SysboxError(f"boot timeout: systemd not running in time "
                                  f"(last is-system-running: {state!r})")
            try:
                r = self._nsexec(["systemctl", "is-system-running"],
                                 timeout=max(0.2, min(remaining, 5.0)))
                state = r.stdout.strip()       # stderr ("Failed to connect to bus") ignored
            except subprocess.TimeoutExpired:
                state = "(systemctl timed out)"
            if state in ("running", "degraded"):
                self.boot_state = state
                return
            time.sleep(0.05)

    # ---- running things inside ----------------------------------------------------------------
    def _nsenter(self, args: Sequence[str]) -> list[str]:
        if self.pid is None:
            raise SysboxError("box not started")
        return ["nsenter", "-t", str(self.pid), "-a", "--", *args]

    @staticmethod
    def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
        env.update({"PATH": SAFE_PATH, "SYSTEMD_PAGER": "", "PAGER": "cat",
                    "SYSTEMD_COLORS": "0", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
        env.update(extra or {})
        return env

    def _check_alive(self) -> None:
        if self.pid is None or self._stopped:
            raise SysboxError("box not running (not started, or stopped)")
        if self.proc is not None and self.proc.poll() is not None:
            raise SysboxError(f"box's systemd has exited (unshare status {self.proc.returncode})")

    def run(self, args: Sequence[str] | str, check: bool = True, timeout: float = 20,
            input: str | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
        """Run a command inside the box (nsenter -t PID -a): text mode, output captured.
        A str is run with /bin/sh -c.  On timeout the command's process group is killed
        (see _kill_nsenter_group) and subprocess.TimeoutExpired raised; check=True raises
        SysboxCommandError (a CalledProcessError showing stdout/stderr)."""
        self._check_alive()
        argv = ["/bin/sh", "-c", args] if isinstance(args, str) else [str(a) for a in args]
        res = self._nsexec(argv, timeout=timeout, input=input, env=env)
        if check and res.returncode != 0:
            raise SysboxCommandError(res.returncode, argv, res.stdout, res.stderr)
        return res

    def _nsexec(self, argv: list[str], timeout: float, input: str | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """nsenter -t PID -a -- ARGV, bounded by timeout (raises TimeoutExpired)."""
        p = subprocess.Popen(self._nsenter(argv),
                             stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env(env),
                             encoding="utf-8", errors="replace", start_new_session=True)
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_nsenter_group(p)
            out, err = p.communicate()
            raise subprocess.TimeoutExpired(argv, timeout, out, err) from None
        return subprocess.CompletedProcess(argv, p.returncode, out, err)

    @staticmethod
    def _kill_nsenter_group(p: subprocess.Popen) -> None:
        """Kill a timed-out command: SIGKILL every process of nsenter's process group
        EXCEPT nsenter, let nsenter reap its child and exit, and only then kill nsenter.

        Why not killpg(): nsenter forks the command into the box's pid namespace.  If
        nsenter dies first, the command (alive or zombie) is re-parented to the HOST's
        init, which in containers may reap lazily; that zombie stays visible in the box
        and systemd's poweroff waits for it (observed: 5 s stop + SIGKILL fallback in
        about half of the runs).  Members of the group are provably ours: the group id is
        the pid of nsenter, our unreaped child, made a session leader by start_new_session."""
        pg = p.pid
        for e in os.listdir("/proc"):
            if not e.isdigit() or int(e) == pg:
                continue
            try:
                with open(f"/proc/{e}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 2 and fields[2] == str(pg):       # state ppid PGRP ...
                try:
                    os.kill(int(e), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            p.kill()

    def systemctl(self, *args: str, check: bool = True, timeout: float = 20
                  ) -> subprocess.CompletedProcess:
        """systemctl ARGS inside the box."""
        return self.run(["systemctl", *args], check=check, timeout=timeout)

    # ---- the box's own network (private_net=True) -----------------------------------------
    def net_run(self, args: Sequence[str], check: bool = True, timeout: float = 30,
                input: str | bytes | None = None, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess:
        """Run a HOST program (host filesystem, host pid namespace) inside the box's network
        namespace only: clients that must reach units listening on the box's lo.  Output is
        captured as bytes; on timeout the process group is killed and TimeoutExpired raised."""
        self._check_alive()
        if not self.private_net:
            raise SysboxError("net_run() needs a box started with private_net=True")
        argv = [str(a) for a in args]
        full = ["nsenter", f"--net=/proc/{self.pid}/ns/net", "--", *argv]
        p = subprocess.Popen(full, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, **(env or {})}, start_new_session=True)
        data = input.encode() if isinstance(input, str) else input
        try:
            out, err = p.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)    # host pid namespace: the group is ours alone
            out, err = p.communicate()
            raise subprocess.TimeoutExpired(argv, timeout, out, err) from None
        res = subprocess.CompletedProcess(argv, p.returncode, out, err)
        if check and p.returncode != 0:
            raise SysboxCommandError(p.returncode, argv, out.decode(errors="replace"),
                                     err.decode(errors="replace"))
        return res

    def net_socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM
                   ) -> socket.socket:
        return self.net_sockets(1, family, type)[0]

    def net_sockets(self, count: int, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM
                    ) -> list[socket.socket]:
        """Sockets created in the box's network namespace (a socket keeps the namespace it
        was created in, whichever thread uses it later).  setns() affects only the calling
        thread, so a short-lived thread enters the namespace and makes the socket."""
        self._check_alive()
        if not self.private_net:
            raise SysboxError("net_sockets() needs a box started with private_net=True")
        from netns import sockets_in_netns     # the same directory
        return sockets_in_netns(f"/proc/{self.pid}/ns/net", count, family, type)

    @staticmethod
    def _write_unit_file(base: Path, name: str, content: str) -> Path:
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"bad unit file name {name!r}")
        dest = base / rel
        dest.parent.mkdir(parents=True, exist_ok=True)   # drop-ins: "x.service.d/y.conf"
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.write_text(content)
        os.replace(tmp, dest)
        return dest

    def install_unit(self, name: str, content: str, reload: bool = True) -> None:
        """Write a unit (or "x.service.d/y.conf" drop-in) into the box's private
        /run/systemd/system through /proc/PID/root, then systemctl daemon-reload."""
        self._check_alive()
        self._write_unit_file(self.root / "run/systemd/system", name, content)
        if reload:
            self.systemctl("daemon-reload")

    @property
    def root(self) -> Path:
        """The box's filesystem as seen from the host (/proc/PID/root)."""
        if self.pid is None:
            raise SysboxError("box not started")
        return Path(f"/proc/{self.pid}/root")

    def journal(self, match: Iterable[str] | None = None,
                wait_for: Callable[[list[dict]], bool] | None = None,
                timeout: float = 5.0) -> list[dict]:
        """Entries of the box's journal (journalctl -o json --all --no-pager MATCH...).

        match: extra journalctl arguments, typically field matches such as
        "SYSLOG_IDENTIFIER=netlabd" (prefer them over "-u UNIT": entries from processes
        that exit quickly may lack _SYSTEMD_UNIT), but options like "-u", "x" also work.
        wait_for: journald ingests asynchronously, so poll (every 0.1 s, up to `timeout`)
        until wait_for(entries) is true.  The last entries are returned either way: assert
        on them.  Without wait_for, one read is returned."""
        cmd = ["journalctl", "-o", "json", "--all", "--no-pager", *(match or [])]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            r = self.run(cmd, check=False, timeout=max(2.0, remaining))
            entries = []
            for line in r.stdout.splitlines():
                if line.startswith("{"):
                    entries.append(json.loads(line))
            if r.returncode != 0 and not entries and "No entries" not in r.stdout + r.stderr:
                raise SysboxCommandError(r.returncode, r.args, r.stdout, r.stderr)
            if wait_for is None or wait_for(entries) or time.monotonic() >= deadline:
                return entries
            time.sleep(0.1)

    def messages(self, match: Iterable[str] | None = None, **kw) -> list[str]:
        """Convenience: the MESSAGE fields of journal(match, **kw) (as str)."""
        out = []
        for e in self.journal(match, **kw):
            m = e.get("MESSAGE")
            if isinstance(m, list):          # non-UTF-8 messages come as byte arrays
                m = bytes(m).decode("utf-8", "replace")
            out.append(m if m is not None else "")
        return out

    def main_pid(self, unit: str) -> int:
        """MainPID of a unit as seen INSIDE the box's pid namespace (0 if none)."""
        r = self.systemctl("show", "-p", "MainPID", "--value", unit)
        return int(r.stdout.strip() or 0)

    def host_pid(self, ns_pid: int) -> int | None:
        """Translate a pid inside the box to the host pid (via NSpid in /proc/*/status of
        processes in our cgroups), or None."""
        for hp in self.host_pids():
            try:
                status = Path(f"/proc/{hp}/status").read_text()
            except OSError:
                continue
            m = re.search(r"^NSpid:\s+(.*)$", status, re.M)
            if m:
                ids = m.group(1).split()
                if len(ids) >= 2 and int(ids[-1]) == ns_pid and _ns_id(f"/proc/{hp}/ns/pid") == self._ns:
                    return hp
        return None

    def host_pids(self) -> list[int]:
        """Host pids of all processes in the box's cgroup(s) (includes unshare and systemd;
        processes started with run() stay in the caller's cgroup and are not listed)."""
        pids: set[int] = set()
        for d in self.cgroups:
            pids |= _cgroup_tree_pids(d)
        return sorted(pids)

    def _ns_members(self) -> list[int]:
        """Host pids of processes whose pid namespace is the box's (needs _nsfd held)."""
        if self._ns is None:
            return []
        found = []
        for e in os.listdir("/proc"):
            if e.isdigit() and _ns_id(f"/proc/{e}/ns/pid") == self._ns:
                found.append(int(e))
        return found

    def _boot_log(self) -> str:
        try:
            assert self.workdir is not None
            return (self.workdir / "boot.log").read_text(errors="replace")[-4000:]
        except (OSError, AssertionError):
            return "(no boot.log)"

    # ---- shutdown --------------------------------------------------------------------------
    def _signal_systemd(self, sig: int) -> None:
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 5.0) -> None:
        """Power the box off (SIGRTMIN+4), SIGKILL fallback, verify that nothing is left,
        remove the cgroups.  Idempotent.  Raises SysboxError if processes survived or the
        cgroups could not be removed."""
        if self._stopped:
            return
        self._stopped = True
        problems: list[str] = []
        try:
            if self.proc is not None and self.proc.poll() is None:
                t0 = time.monotonic()
                if self._pidfd is not None and self.boot_state is None:
                    # boot never completed: PID 1 of a pid ns ignores signals it has no
                    # handler for, so RTMIN+4 could be dropped; go straight to SIGKILL
                    self._signal_systemd(signal.SIGKILL)
                    try:
                        self.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        pass
                elif self._pidfd is not None:
                    self._signal_systemd(signal.SIGRTMIN + 4)      # = systemctl poweroff
                    try:
                        self.proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        self.stop_note = f"no poweroff within {timeout}s, used SIGKILL"
                        self._signal_systemd(signal.SIGKILL)       # kills the whole pid ns
                        try:
                            self.proc.wait(5)
                        except subprocess.TimeoutExpired:
                            pass
                if self.proc.poll() is None:
                    # systemd never found (or stuck): kill unshare, --kill-child does the rest
                    self.proc.kill()
                    try:
                        self.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        problems.append(f"unshare (pid {self.proc.pid}) did not exit after SIGKILL")
                self.poweroff_seconds = time.monotonic() - t0
            # verify: nothing left in our cgroups or our pid namespace
            left = self._leftovers(wait=2.0)
            if left:
                for pid in left:        # only pids found in OUR cgroup / OUR namespace
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                still = self._leftovers(wait=2.0)
                problems.append(f"processes survived poweroff and were SIGKILLed: {_describe(left)}"
                                + (f"; still present: {_describe(still)}" if still else ""))
            # rmdir depth-first (retry briefly: exiting tasks can keep a cgroup busy)
            for d in self.cgroups:
                end = time.monotonic() + 2.0
                while d.exists():
                    try:
                        _rmdir_tree(d)
                    except OSError as e:
                        if time.monotonic() > end:
                            problems.append(f"cannot remove cgroup {d}: {e}")
                            break
                        time.sleep(0.02)
        finally:
            for fd in (self._pidfd, self._nsfd):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._pidfd = self._nsfd = None
            if self._log is not None:
                self._log.close()
            if self.workdir is not None and not os.environ.get("NETLAB_SYSBOX_KEEP"):
                shutil.rmtree(self.workdir, ignore_errors=True)
        if problems:
            raise SysboxError(f"SystemdBox({self.name!r}) stop: " + "; ".join(problems))

    def _leftovers(self, wait: float) -> list[int]:
        """Poll up to `wait` s for the cgroups and the pid namespace to become empty;
        return the pids still there (host pids)."""
        end = time.monotonic() + wait
        while True:
            pids = set(self.host_pids()) | set(self._ns_members())
            pids.discard(os.getpid())
            if not pids or time.monotonic() >= end:
                return sorted(pids)
            time.sleep(0.02)
