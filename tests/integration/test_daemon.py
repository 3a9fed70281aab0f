"""netlabd as a supervisor: limits, deadlines, reload, shutdown, config errors, sd_notify.

Each test starts its own netlabd on free loopback ports (conftest.daemon_factory)."""
import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import (NETLABD, NETLABCTL, frame, free_port, make_config, message_listener,
                      netlabctl, parse_frame, raw_exchange, recv_all)

BUSY_TOTAL = re.compile(rb"^error: server busy: all (\d+) client slots are in use, try again later\n$")


def hold_connection(port, data=b"\x00NL\x01"):
    """A client whose request is incomplete (a partial frame header): its child waits."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        s.sendall(data)
    return s


def finish_frame(s, body=b"hi"):
    """Complete the partial header sent by hold_connection and read the reply frame."""
    s.sendall(b"\x01\x00\x00\x00" + len(body).to_bytes(4, "big") + body)
    return recv_all(s)


def wait_children(d, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(d.children()) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"expected {n} children, have {d.children()}")


# ---- limits ----

def test_busy_past_max_children_text_and_frame(daemon_factory, ctl_ini):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)], limits={"max_children": 2}))
    held = [hold_connection(port) for _ in range(2)]
    try:
        wait_children(d, 2)
        # Text client: a line in its own form.
        assert re.match(BUSY_TOTAL, raw_exchange(port, b"hello\n")), d.log()
        # Frame client: a MSG_REPLY with status busy (3) and the text.
        v, t, st, body = parse_frame(raw_exchange(port, frame(1, b"hello")))
        assert (v, t, st) == (1, 2, 3)
        assert body == b"server busy: all 2 client slots are in use, try again later"
        # netlabctl maps it to exit code 5 and prints the server's text.
        r = netlabctl("send", "-H", "127.0.0.1", "-p", port, "hi", ini=ctl_ini)
        assert r.returncode == 5, r
        assert b"server refused (busy): server busy: all 2 client slots" in r.stderr
    finally:
        for s in held:
            s.close()
    # Once the held clients are gone, the service is back.
    d.wait_no_children()
    assert raw_exchange(port, b"back\n") == b"message received: back\n"
    busy = [r for r in d.requests() if r["RESULT"] == "busy"]
    assert len(busy) == 3


def test_busy_refusal_waits_for_first_byte(daemon_factory):
    """A busy client that connects and only then sends still gets the answer in its own form."""
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)], limits={"max_children": 1}))
    held = hold_connection(port)
    try:
        wait_children(d, 1)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            time.sleep(0.3)  # the supervisor has accepted us and is waiting for a byte
            s.sendall(frame(1, b"late"))
            assert parse_frame(recv_all(s))[2] == 3
    finally:
        held.close()


def test_per_source_limit(daemon_factory):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port, address="0.0.0.0")],
                                   limits={"max_per_source": 1}))
    held = hold_connection(port)
    try:
        wait_children(d, 1)
        out = raw_exchange(port, b"again\n")
        assert out == (b"error: server busy: 127.0.0.1 already has 1 connection(s) being served, "
                       b"the most one address may have; try again later\n")
        # Another source address is not affected.
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            s.sendall(b"other source\n")
            assert s.recv(4096) == b"message received: other source\n"
    finally:
        held.close()


def test_200_clients_at_once_past_max_children(daemon_factory):
    """Every client is served or told it is busy; nobody hangs; the daemon keeps serving."""
    port = free_port()
    d = daemon_factory(make_config([message_listener(port, backlog=512)],
                                   limits={"max_children": 16, "max_per_source": 16}))

    def client(i):
        msg = f"client {i}\n".encode()
        out = raw_exchange(port, msg, timeout=20)
        if out == b"message received: " + msg:
            return "ok"
        assert re.match(rb"^error: server busy: ", out), out
        return "busy"

    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as ex:
        results = list(ex.map(client, range(200), timeout=60))
    assert results.count("ok") + results.count("busy") == 200
    assert results.count("ok") >= 16
    d.wait_no_children()
    assert d.zombies() == []
    assert raw_exchange(port, b"after\n") == b"message received: after\n"


def test_total_deadline_cannot_be_extended_by_trickling(daemon_factory):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)],
                                   limits={"idle_timeout": 2, "total_timeout": 2}))
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\x00NL\x01\x01")  # a frame that never completes...
        out = b""
        for _ in range(20):           # ...fed one byte every 0.4 s (bounded)
            try:
                s.sendall(b"\x00")
            except OSError:
                break
            s.settimeout(0.4)
            try:
                b = s.recv(4096)
                if not b:
                    break
                out += b
            except socket.timeout:
                continue
    elapsed = time.monotonic() - t0
    assert parse_frame(out)[2] == 6, out  # timeout
    assert 1.5 < elapsed < 5, elapsed
    assert d.wait_requests(1)[0]["RESULT"] == "timeout"


# ---- reload ----

def test_reload_valid_changes_listeners_and_keeps_children(daemon_factory):
    a, b = free_port(), free_port()
    d = daemon_factory(make_config([message_listener(a, reply="v1 %m")]))
    assert raw_exchange(a, b"x\n") == b"v1 x\n"

    inflight = hold_connection(a)          # forked under the old config
    wait_children(d, 1)
    d.reload(make_config([message_listener(a, reply="v2 %m"),
                          message_listener(b, name="second", reply="B %m")]))
    assert raw_exchange(a, b"x\n") == b"v2 x\n"
    assert raw_exchange(b, b"y\n") == b"B y\n"
    # The child that started before the reload is untouched and answers as v1.
    _, _, st, body = parse_frame(finish_frame(inflight))
    assert (st, body) == (0, b"v1 hi")
    inflight.close()

    d.reload(make_config([message_listener(a, reply="v3 %m")]))
    with pytest.raises(ConnectionRefusedError):
        raw_exchange(b, b"gone\n")
    assert raw_exchange(a, b"x\n") == b"v3 x\n"


def test_reload_invalid_config_keeps_old(daemon_factory):
    a = free_port()
    d = daemon_factory(make_config([message_listener(a, reply="v1 %m")]))
    bad = make_config([message_listener(a, reply="v2 %m")]).replace("max_children", "max_chidlren")
    d.reload(bad)
    assert raw_exchange(a, b"x\n") == b"v1 x\n"
    log = d.log()
    assert re.search(r"netlabd\.conf:1: limits: unknown key 'max_chidlren'", log), log
    assert "reload refused" in log


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_include_of_a_non_file_is_refused_not_fatal(daemon_factory, tmp_path, kind):
    """libconfig would exit() on an @include of a directory and block on a
    FIFO (found by tests/fuzz/fuzz-config.c): both are refused with their
    line, by --check-config and by a reload, and the daemon keeps serving."""
    target = tmp_path / "inc-target"
    if kind == "directory":
        target.mkdir()
    else:
        os.mkfifo(target)
    a = free_port()
    d = daemon_factory(make_config([message_listener(a, reply="v1 %m")]))
    os.symlink(target, d.workdir / "inc")       # @include paths are taken from the config's dir
    bad = "\n" + '@include "inc"\n' + make_config([message_listener(a, reply="v2 %m")])
    cfg = d.workdir / "bad.conf"
    cfg.write_text(bad)
    r = subprocess.run([NETLABD, "--check-config", "-c", cfg], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and f'{cfg}:2: @include "inc": not a regular file' in r.stderr, r
    d.reload(bad)
    assert raw_exchange(a, b"x\n") == b"v1 x\n"
    assert '@include "inc": not a regular file' in d.log() and "reload refused" in d.log(), d.log()


def test_reload_with_port_taken_keeps_old(daemon_factory):
    a, b = free_port(), free_port()
    d = daemon_factory(make_config([message_listener(a, reply="v1 %m")]))
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", b))
    blocker.listen()
    try:
        d.reload(make_config([message_listener(a, reply="v2 %m"), message_listener(b, name="b")]))
        assert raw_exchange(a, b"x\n") == b"v1 x\n"
        assert "Address already in use" in d.log()
    finally:
        blocker.close()


# ---- shutdown ----

def test_sigterm_lets_client_in_flight_finish(daemon_factory):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)], limits={"grace_period": 10}))
    s = hold_connection(port)
    wait_children(d, 1)
    d.read_notifications()
    d.notify_cursor = len(d.notifications)
    d.signal(signal.SIGTERM)
    d.wait_notify(lambda m: "STOPPING=1" in m)
    # No new clients once stopping...
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            raw_exchange(port, b"new\n", timeout=1)
        except ConnectionRefusedError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("listener still accepting after SIGTERM")
    # ...but the one in flight completes and gets its reply.
    assert parse_frame(finish_frame(s))[3] == b"message received: hi"
    s.close()
    assert d.proc.wait(10) == 0


def test_sigterm_grace_period_ends_stuck_clients(daemon_factory):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)],
                                   limits={"grace_period": 1, "idle_timeout": 30}))
    s = hold_connection(port)
    wait_children(d, 1)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.proc.wait(10) == 0
    assert 0.8 < time.monotonic() - t0 < 5
    assert "ended by shutdown" in d.log()
    s.close()


# ---- config errors at startup ----

def test_check_config_reports_every_error_with_line(tmp_path):
    cfg = tmp_path / "bad.conf"
    cfg.write_text(
        'limits = { max_children = 0; };\n'                      # line 1
        'log = { level = "loud"; };\n'                           # line 2
        'listeners = (\n'
        '  { name = "m"; service = "message"; transport = "udp";\n'   # line 4
        '    address = "localhost"; port = 70000; colour = "red"; }\n'  # line 5
        ');\n')
    r = subprocess.run([NETLABD, "--check-config", "-c", cfg], capture_output=True, timeout=10)
    assert r.returncode == 1
    err = r.stderr.decode()
    for expected in [
        f"{cfg}:1: limits: max_children: 0 is out of range 1..65536",
        f"{cfg}:2: log: level: \"loud\" is not one of debug|info|notice|warning|error",
        f"{cfg}:5: listener 'm': port: 70000 is out of range 1..65535",
        f"{cfg}:5: listener 'm': unknown key 'colour' (for service message)",
        f"{cfg}:4: listener 'm': service message runs over tcp only, not udp",
        f"{cfg}:5: listener 'm': address: \"localhost\" is not a numeric IPv4 or IPv6 address",
    ]:
        assert expected in err, err


def test_check_config_syntax_error_and_ok(tmp_path):
    cfg = tmp_path / "syntax.conf"
    cfg.write_text('limits = { max_children = 4; };\nlisteners = ( { name = "m" ; } \n')
    r = subprocess.run([NETLABD, "--check-config", "-c", cfg], capture_output=True, timeout=10)
    assert r.returncode == 1 and re.search(rf"{cfg}:\d+: syntax error".encode(), r.stderr), r.stderr
    good = tmp_path / "good.conf"
    good.write_text(make_config([message_listener(free_port())]))
    r = subprocess.run([NETLABD, "--check-config", "-c", good], capture_output=True, timeout=10)
    assert r.returncode == 0 and r.stdout == f"{good}: ok, 1 listener(s)\n".encode()


def test_port_taken_at_startup_is_a_clear_error(tmp_path):
    port = free_port()
    cfg = tmp_path / "c.conf"
    cfg.write_text(make_config([message_listener(port)]))
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        r = subprocess.run([NETLABD, "-c", cfg, "--log-target=stderr"], capture_output=True, timeout=10)
    assert r.returncode == 1
    assert (f"listener 'message': cannot listen on tcp/127.0.0.1:{port}: Address already in use"
            in r.stderr.decode()), r.stderr


def test_missing_config_and_usage_errors(tmp_path):
    r = subprocess.run([NETLABD, "-c", tmp_path / "nope.conf"], capture_output=True, timeout=10)
    assert r.returncode == 1 and b"nope.conf: cannot open: No such file or directory" in r.stderr
    r = subprocess.run([NETLABD, "--bogus"], capture_output=True, timeout=10)
    assert r.returncode == 2 and r.stderr == b"netlabd: unknown option --bogus (see --help)\n"
    r = subprocess.run([NETLABD, "--log-target=syslog"], capture_output=True, timeout=10)
    assert r.returncode == 2 and b"--log-target" in r.stderr


# ---- sd_notify ----

def test_notify_status_and_watchdog(daemon_factory):
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)]), extra_args=("--log-target=stderr",),
                       env={"WATCHDOG_USEC": "400000"})
    ready = [m for m in d.notifications if "READY=1" in m][0]
    assert "STATUS=0 clients being served, 1 listeners" in ready
    d.wait_notify(lambda m: "WATCHDOG=1" in m, timeout=3)
    for i in range(3):
        raw_exchange(port, b"count\n")
    d.wait_notify(lambda m: "STATUS=" in m and "3 requests done" in m, timeout=5)


def test_no_zombies_after_many_requests(message_daemon):
    for i in range(100):
        assert raw_exchange(message_daemon.port, b"z\n") == b"message received: z\n"
    message_daemon.wait_no_children()
    assert message_daemon.zombies() == []
    assert len(message_daemon.wait_requests(100)) == 100


def test_children_do_not_inherit_unused_libraries(daemon_factory):
    """The supervisor maps libconfig (it parses the config); its children,
    which never call it, do not inherit it (children_trim_fork_image())."""
    port = free_port()
    d = daemon_factory(make_config([message_listener(port)]))
    s = hold_connection(port)
    try:
        wait_children(d, 1)
        child = d.children()[0]
        parent_maps = open(f"/proc/{d.pid}/maps").read()
        child_maps = open(f"/proc/{child}/maps").read()
        assert "libconfig.so" in parent_maps
        if "sanitize" in os.environ.get("NETLAB_BUILD", "") or "asan" in str(NETLABD):
            pytest.skip("sanitizer builds keep every library mapped")
        assert "libconfig.so" not in child_maps
        assert "libc.so" in child_maps and "libsystemd.so" in child_maps
        # ...and the child still serves.
        assert parse_frame(finish_frame(s))[3] == b"message received: hi"
    finally:
        s.close()
