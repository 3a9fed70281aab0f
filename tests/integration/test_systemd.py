"""The systemd tier: a real systemd (PID 1 of a private PID namespace, see
sysbox.py and ../shared/notes/integration-recipes.md) runs the shipped units
from systemd/, pointed at the build under test. Needs root; on a machine
without it the tier says why and skips, but CI runs it."""
import json
import os
import re
import shutil
import socket
import time
import uuid

import pytest

import sysbox
from conftest import NETLABD, REPO, free_port, make_config, message_listener, raw_exchange, recv_all

ok, why = sysbox.can_boot()
pytestmark = pytest.mark.skipif(not ok, reason=f"cannot boot systemd here: {why}")


# The binary under test is copied into the box's private /run: the shipped
# unit's PrivateTmp=/ProtectHome= would hide a checkout under /tmp or /home.
BOX_NETLABD = "/run/netlab/netlabd"


def shipped_units(port):
    """systemd/netlabd.{service,socket} with paths pointed at the copy of the
    build and the socket limited to loopback (tests never listen on other
    addresses)."""
    svc = (REPO / "systemd" / "netlabd.service").read_text()
    sock = (REPO / "systemd" / "netlabd.socket").read_text()
    svc = svc.replace("/usr/sbin/netlabd", BOX_NETLABD).replace("/etc/netlab/netlabd.conf",
                                                                 "/run/netlab/netlabd.conf")
    assert "ListenStream=12345" in sock
    sock = sock.replace("ListenStream=12345", f"ListenStream=127.0.0.1:{port}")
    env = "".join(f"Environment={k}={os.environ[k]}\n" for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")
                  if k in os.environ)
    if env:
        svc = svc.replace("[Service]\n", "[Service]\n" + env)
    return {"netlabd.service": svc, "netlabd.socket": sock}


@pytest.fixture
def box():
    b = sysbox.SystemdBox(f"nltest-{uuid.uuid4().hex[:8]}")
    b.start()
    try:
        yield b
    finally:
        b.stop()


def write_config(box, text):
    d = box.root / "run" / "netlab"
    d.mkdir(parents=True, exist_ok=True)
    (d / "netlabd.conf").write_text(text)
    exe = d / "netlabd"
    if not exe.exists():
        shutil.copy2(NETLABD, exe)


def netlabd_pids(box):
    out = []
    for pid in box.host_pids():
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if exe == BOX_NETLABD:
            out.append(pid)
    return out


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_socket_activation_journal_reload_stop(box):
    port = free_port()
    write_config(box, make_config([message_listener(port, reply="v1 %m")],
                                  log={"target": "auto", "level": "info"}))
    for name, text in shipped_units(port).items():
        box.install_unit(name, text)
    box.systemctl("start", "netlabd.socket")
    assert box.systemctl("is-active", "netlabd.service", check=False).stdout.strip() == "inactive"

    # The first connection activates the service, which gets the socket by name.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"hello journald\n")
        client_port = s.getsockname()[1]
        reply = recv_all(s)
    assert reply == b"v1 hello journald\n"
    assert box.systemctl("is-active", "netlabd.service", check=False).stdout.strip() == "active"

    # One structured entry for the request, from journald itself.
    entries = box.journal(["SYSLOG_IDENTIFIER=netlabd", "NETLAB_EVENT=request"],
                          wait_for=lambda es: len(es) >= 1, timeout=10)
    assert len(entries) == 1, entries
    e = entries[0]
    assert {k: e[k] for k in ("LISTENER", "SERVICE", "REMOTE_ADDR", "REMOTE_PORT", "BYTES_IN",
                              "BYTES_OUT", "RESULT", "CLIENT_MESSAGE")} == {
        "LISTENER": "message", "SERVICE": "message", "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": str(client_port), "BYTES_IN": "15", "BYTES_OUT": str(len(reply)),
        "RESULT": "ok", "CLIENT_MESSAGE": "hello journald"}
    assert int(e["DURATION_USEC"]) > 0
    assert e["PRIORITY"] == "6"
    # The supervisor logged that it took the socket from systemd.
    msgs = box.messages(["SYSLOG_IDENTIFIER=netlabd"])
    assert any(f"listener 'message': message on tcp/127.0.0.1:{port} (socket from systemd)" in m
               for m in msgs), msgs

    # Live STATUS= in systemctl.
    wait_for(lambda: "1 requests done" in box.systemctl("show", "-p", "StatusText", "--value",
                                                         "netlabd.service").stdout,
             what="STATUS= with 1 request")

    # systemctl reload: a changed config takes effect on the same socket.
    write_config(box, make_config([message_listener(port, reply="v2 %m")],
                                  log={"target": "auto", "level": "info"}))
    box.systemctl("reload", "netlabd.service")
    assert raw_exchange(port, b"again\n") == b"v2 again\n"

    # A broken config is refused by reload, and the old one keeps serving.
    write_config(box, "listeners = ( { name = \"message\"; service = \"nope\"; } );\n")
    box.systemctl("reload", "netlabd.service", check=False)
    assert raw_exchange(port, b"still\n") == b"v2 still\n"
    msgs = box.messages(["SYSLOG_IDENTIFIER=netlabd"])
    assert any("unknown service \"nope\"" in m for m in msgs), msgs

    # Stop leaves no netlabd process behind.
    assert netlabd_pids(box)
    box.systemctl("stop", "netlabd.socket", "netlabd.service")
    wait_for(lambda: not netlabd_pids(box), what="netlabd to exit")
    assert box.systemctl("is-active", "netlabd.service", check=False).stdout.strip() == "inactive"
    bad = [m for m in box.messages(["SYSLOG_IDENTIFIER=netlabd"])
           if re.search(r"killed by signal|Sanitizer|runtime error", m)]
    assert not bad, bad
