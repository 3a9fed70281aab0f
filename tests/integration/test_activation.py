"""Socket activation: netlabd takes its listeners by FileDescriptorName= from
LISTEN_FDS/LISTEN_FDNAMES (systemd-socket-activate passes them like systemd),
binds those it is not given, and closes passed sockets no listener wants."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import NETLABD, free_port, make_config, message_listener, raw_exchange

ACTIVATE = shutil.which("systemd-socket-activate")
pytestmark = pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate is not installed")


class Activated:
    def __init__(self, tmp_path, config_text, listen, fdnames):
        self.cfg = tmp_path / "netlabd.conf"
        self.cfg.write_text(config_text)
        self.logfile = tmp_path / "activate.log"
        args = [ACTIVATE]
        for addr in listen:
            args += ["-l", addr]
        args += [f"--fdname={':'.join(fdnames)}"]
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "PATH"):
            if var in os.environ:
                args += ["-E", f"{var}={os.environ[var]}"]
        args += [str(NETLABD), "-c", str(self.cfg), "--log-target=stderr"]
        self.log_fh = open(self.logfile, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log_fh, stderr=self.log_fh,
                                     stdin=subprocess.DEVNULL)
        # systemd-socket-activate prints "Listening on ..." once its sockets exist.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.log().count("Listening on") < len(listen):
            time.sleep(0.01)

    def log(self):
        return self.logfile.read_text(errors="replace")

    def wait_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not in log:\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # after exec this pid is netlabd
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log_fh.close()
        return self.proc.returncode


@pytest.fixture
def activated(tmp_path):
    made = []

    def make(*args):
        a = Activated(tmp_path, *args)
        made.append(a)
        return a

    yield make
    for a in made:
        a.stop()
        for line in a.log().splitlines():
            assert "killed by signal" not in line and "Sanitizer" not in line, line


def test_passed_socket_by_name_and_bound_one(activated):
    p_passed, p_bound = free_port(), free_port()
    cfg = make_config([message_listener(p_passed, name="message", reply="passed %m"),
                       message_listener(p_bound, name="other", reply="bound %m")])
    a = activated(cfg, [f"127.0.0.1:{p_passed}"], ["message"])
    # The first connection makes systemd-socket-activate exec netlabd, which accepts it.
    assert raw_exchange(p_passed, b"one\n") == b"passed one\n"
    a.wait_log("listener 'message': message on tcp/127.0.0.1:%d (socket from systemd)" % p_passed)
    assert raw_exchange(p_bound, b"two\n") == b"bound two\n"
    assert a.stop() == 0


def test_unmatched_passed_socket_is_logged_and_closed(activated):
    p1, p2 = free_port(), free_port()
    cfg = make_config([message_listener(p1, name="message")])
    a = activated(cfg, [f"127.0.0.1:{p1}", f"127.0.0.1:{p2}"], ["message", "stray"])
    assert raw_exchange(p1, b"hi\n") == b"message received: hi\n"
    a.wait_log("passed socket 'stray' matches no listener in the config, closing it")
    # systemd-socket-activate itself keeps its copy of the socket; our copy is closed.
    fds = os.listdir(f"/proc/{a.proc.pid}/fd")
    names = {os.readlink(f"/proc/{a.proc.pid}/fd/{fd}") for fd in fds}
    assert len([n for n in names if n.startswith("socket:")]) >= 1
    assert a.stop() == 0


def test_passed_socket_with_wrong_port_is_refused(activated):
    p_cfg, p_real = free_port(), free_port()
    cfg = make_config([message_listener(p_cfg, name="message")])
    a = activated(cfg, [f"127.0.0.1:{p_real}"], ["message"])
    try:
        socket.create_connection(("127.0.0.1", p_real), timeout=2).close()
    except OSError:
        pass
    a.proc.wait(10)
    assert a.proc.returncode == 1
    assert (f"listener 'message': the socket systemd passed is bound to port {p_real}, "
            f"the listener says {p_cfg}") in a.log()


def test_passed_datagram_socket_for_stream_listener_is_refused(tmp_path):
    port = free_port()
    cfg = tmp_path / "netlabd.conf"
    cfg.write_text(make_config([message_listener(port, name="message")]))
    log = tmp_path / "a.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([ACTIVATE, "--datagram", "-l", f"127.0.0.1:{port}", "--fdname=message",
                                 str(NETLABD), "-c", str(cfg), "--log-target=stderr"],
                                stdout=fh, stderr=fh, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while "Listening on" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.01)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.sendto(b"wake up", ("127.0.0.1", port))  # makes it exec netlabd
            assert proc.wait(10) == 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    assert "listener 'message': the socket systemd passed is not a listening stream socket" in log.read_text()


def test_reload_keeps_passed_socket(activated, tmp_path):
    port = free_port()
    a = activated(make_config([message_listener(port, reply="v1 %m")]), [f"127.0.0.1:{port}"],
                  ["message"])
    assert raw_exchange(port, b"x\n") == b"v1 x\n"
    a.cfg.write_text(make_config([message_listener(port, reply="v2 %m")]))
    a.proc.send_signal(signal.SIGHUP)
    a.wait_log("reloaded")
    assert raw_exchange(port, b"x\n") == b"v2 x\n"
    assert a.stop() == 0


def test_reload_removes_and_readds_passed_socket(activated):
    """A passed socket whose listener a reload removes is kept (we could not
    bind its port ourselves: systemd holds it) and adopted again when a later
    reload brings the listener back."""
    port, other = free_port(), free_port()
    a = activated(make_config([message_listener(port)]), [f"127.0.0.1:{port}"], ["message"])
    assert raw_exchange(port, b"x\n") == b"message received: x\n"

    a.cfg.write_text(make_config([message_listener(other, name="other")]))
    a.proc.send_signal(signal.SIGHUP)
    a.wait_log("listener 'message' removed")
    assert raw_exchange(other, b"y\n") == b"message received: y\n"

    a.cfg.write_text(make_config([message_listener(port, reply="back %m")]))
    a.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while a.log().count("(socket from systemd)") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert a.log().count(f"listener 'message': message on tcp/127.0.0.1:{port} (socket from systemd)") == 2
    assert raw_exchange(port, b"z\n") == b"back z\n"
    assert a.stop() == 0
