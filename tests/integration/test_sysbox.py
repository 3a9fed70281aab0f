"""Self-test of the sysbox harness (tests/integration/sysbox.py + nsboot.sh).

Boots a real systemd as PID 1 of a private PID namespace several times (about 0.2 s
each) and checks that units run, the journal can be read, socket activation works from
the host, and that nothing leaks: host /tmp is intact, host /run/systemd/system never
appears, no process survives stop() and the cgroups are removed.

Run: cd /work/main && /usr/bin/python3 -m pytest -q tests/integration/test_sysbox.py
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sysbox  # noqa: E402
from sysbox import SystemdBox, SysboxCommandError, free_port  # noqa: E402

_OK, _WHY = sysbox.can_boot()
pytestmark = pytest.mark.skipif(not _OK, reason=f"cannot boot systemd here: {_WHY}")

HELLO_UNIT = """\
[Unit]
Description=sysbox self-test: log one line through systemd-cat

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'printf "hello\\n" | systemd-cat -t nltest-harness'
"""


def _ns_members(ns: tuple[int, int]) -> list[int]:
    found = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{e}/ns/pid")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == ns:
            found.append(int(e))
    return found


def test_journal_by_syslog_identifier():
    """A unit passed to the constructor runs; its line is read back by SYSLOG_IDENTIFIER."""
    with SystemdBox("journal", unit_files={"nltest-hello.service": HELLO_UNIT}) as box:
        assert box.boot_state in ("running", "degraded")
        box.systemctl("start", "nltest-hello.service")
        entries = box.journal(["SYSLOG_IDENTIFIER=nltest-harness"],
                              wait_for=lambda es: any(e.get("MESSAGE") == "hello" for e in es))
        assert [e.get("MESSAGE") for e in entries] == ["hello"], entries
        assert entries[0]["SYSLOG_IDENTIFIER"] == "nltest-harness"
        # PID 1's own messages about the unit are there too
        pid1 = box.messages(["_PID=1", "UNIT=nltest-hello.service"],
                            wait_for=lambda es: any("Finished" in (e.get("MESSAGE") or "") for e in es))
        assert any("Finished" in m for m in pid1), pid1


def test_socket_activation_from_host():
    """Accept=yes socket on a free host port: connect from the host, get the bytes back."""
    port = free_port()
    units = {
        "nltest-echo.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "nltest-echo@.service": "[Service]\nExecStart=/bin/cat\nStandardInput=socket\n",
    }
    with SystemdBox("socket") as box:
        for name, text in units.items():
            box.install_unit(name, text)
        box.systemctl("start", "nltest-echo.socket")
        payload = b"ping from the host\n" * 3
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := c.recv(4096):
                got += chunk
        rtt = time.monotonic() - t0
        assert got == payload
        assert rtt < 2.0
        # the per-connection instance ran and is gone again (or about to be)
        accepted = box.systemctl("show", "-p", "NAccepted", "--value", "nltest-echo.socket").stdout.strip()
        assert accepted == "1"


def test_main_pid_host_pids_and_run_timeout():
    with SystemdBox("pids") as box:
        box.install_unit("nltest-sleep.service",
                         "[Service]\nType=simple\nExecStart=/bin/sleep 30\n")
        box.systemctl("start", "nltest-sleep.service")
        ns_pid = box.main_pid("nltest-sleep.service")
        assert ns_pid > 1
        host = box.host_pid(ns_pid)
        assert host is not None and host in box.host_pids()
        assert box.pid in box.host_pids() and box.unshare_pid in box.host_pids()
        assert Path(f"/proc/{host}/comm").read_text().strip() == "sleep"
        assert box.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
        # check=True raises with stdout/stderr in the message
        with pytest.raises(SysboxCommandError, match="could not be found|not found|not loaded"):
            box.systemctl("start", "nltest-does-not-exist.service")
        # a command that overruns its timeout is killed (inside the box too), promptly,
        # without leaving a zombie that would stall the poweroff
        t0 = time.monotonic()
        with pytest.raises(sysbox.subprocess.TimeoutExpired):
            box.run("sleep 7.5 & sleep 7.6; echo never", timeout=0.5)
        assert time.monotonic() - t0 < 3
        for _ in range(50):
            ps = box.run(["ps", "-eo", "stat=,args="]).stdout
            if "sleep 7." not in ps and not any(line.lstrip().startswith("Z") for line in ps.splitlines()):
                break
            time.sleep(0.02)
        assert "sleep 7." not in ps, ps
        assert not any(line.lstrip().startswith("Z") for line in ps.splitlines()), ps
    assert box.stop_note is None      # clean poweroff, no SIGKILL fallback needed


def test_isolation_and_clean_stop():
    run_sys_before = os.path.exists("/run/systemd/system")
    marker = tempfile.NamedTemporaryFile(dir="/tmp", prefix="nltest-marker-", delete=False)
    marker.write(b"keep me\n")
    marker.close()
    rwdir = tempfile.mkdtemp(dir="/tmp", prefix="nltest-rw-")
    ns_fd = None
    try:
        box = SystemdBox("isolation", rw_paths=[rwdir])
        with box:
            ns_fd = os.open(f"/proc/{box.pid}/ns/pid", os.O_RDONLY)   # our own proof of identity
            st = os.fstat(ns_fd)
            ns = (st.st_dev, st.st_ino)
            cgroups = list(box.cgroups)
            assert all(d.is_dir() for d in cgroups)

            # only journald (and maybe dbus) run: no host services were started
            running = box.systemctl("list-units", "--type=service", "--state=running",
                                    "--no-legend", "--plain").stdout.split()
            services = {w for w in running if w.endswith(".service")}
            assert services <= {"systemd-journald.service", "dbus.service"}, running
            assert box.run(["systemd-detect-virt"], check=False).stdout.strip() == "container-other"
            # dangerous units are masked
            masked = box.systemctl("is-enabled", "systemd-tmpfiles-setup.service", check=False).stdout
            assert masked.strip() == "masked-runtime"
            # the private /run is not the host's
            assert box.run(["test", "-d", "/run/systemd/system"]).returncode == 0
            assert os.path.exists("/run/systemd/system") == run_sys_before
            # /tmp and /proc/sys are read-only inside; rw_paths are writable
            r = box.run(["touch", marker.name + ".inside"], check=False)
            assert r.returncode != 0 and "Read-only" in r.stderr, r
            r = box.run(["sh", "-c", "echo boxname > /proc/sys/kernel/hostname"], check=False)
            assert r.returncode != 0 and "Read-only" in r.stderr, r
            box.run(["sh", "-c", f"echo written-inside > {rwdir}/f"])
            assert Path(rwdir, "f").read_text() == "written-inside\n"
            # /dev/kmsg is /dev/null inside (major 1, minor 3)
            assert box.run(["stat", "-c", "%t,%T", "/dev/kmsg"]).stdout.strip() == "1,3"
            syspid = box.pid

        # after stop: clean poweroff (no SIGKILL fallback), nothing left, nothing wiped
        assert box.stop_note is None
        assert box.proc.returncode == -signal.SIGINT       # pid-ns "power off" (see recipe)
        assert _ns_members(ns) == []
        assert not any(d.exists() for d in cgroups)
        assert not os.path.exists(f"/proc/{syspid}") or _ns_members(ns) == []
        assert Path(marker.name).read_bytes() == b"keep me\n"
        assert os.path.exists("/run/systemd/system") == run_sys_before
        assert box.workdir is not None and not box.workdir.exists()
        box.stop()    # idempotent
    finally:
        if ns_fd is not None:
            os.close(ns_fd)
        os.unlink(marker.name)
        for f in Path(rwdir).iterdir():
            f.unlink()
        os.rmdir(rwdir)


def test_stop_without_start_and_name_sanitizing():
    box = SystemdBox("no start / weird name")
    box.stop()          # nothing created, nothing to do
    with SystemdBox("weird name/with:chars") as b2:
        assert all("/" not in d.name and ":" not in d.name for d in b2.cgroups)


def test_failed_start_and_sigkill_fallback_clean_up():
    # a boot that cannot finish in time: SysboxError, and nothing is left behind
    box = SystemdBox("too-slow")
    t0 = time.monotonic()
    with pytest.raises(sysbox.SysboxError, match="boot timeout"):
        box.start(timeout=0.02)
    assert time.monotonic() - t0 < 3
    assert box.cgroups and not any(d.exists() for d in box.cgroups)
    # a systemd that ignores poweroff (stopped with SIGSTOP): SIGKILL fallback, still clean
    with SystemdBox("wedged") as box:
        os.kill(box.pid, signal.SIGSTOP)      # our own recorded pid
        t0 = time.monotonic()
        box.stop(timeout=0.3)
        assert time.monotonic() - t0 < 3
        assert box.stop_note and "SIGKILL" in box.stop_note
        assert not any(d.exists() for d in box.cgroups)
