"""netlabd started as root drops to the config's `user` once its sockets are
bound (issue 6; daemon/privs.c, netlabd(8) PRIVILEGES, netlabd.conf(5)).

With user = "nobody" (Debian's nobody/nogroup, uid and gid 65534): every id
of the supervisor and of its children is 65534, the supplementary groups are
nobody's, no capability is left and no_new_privs is set; it still serves
messages, TCP downloads and UDP downloads, and a UDP transfer still shares
the listener's port (its socket was made with the user as owner, so
SO_REUSEPORT lets the child join); a listener on a port below 1024 is bound
before the drop and works; a root the user cannot read is a clear refusal;
SIGHUP reloads as the user and refuses to change the user.  Without `user`,
root gets a warning; an unknown user stops netlabd and fails --check-config
with the line; not started as root, `user` is ignored.

Needs root.  The daemons' directory is world-searchable and their notify
socket writable by others: after the drop netlabd reads its config and sends
READY=1 as nobody.  Every daemon is stopped by pid and its log checked at
teardown; every loop is bounded.
"""
import os
import pwd
import random
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import (NETLABD, Netlabd, file_exchange, file_get, file_listener, free_port,
                      hold_child, make_config, message_listener, netlabctl, stop_and_check,
                      udp_file_listener)
from test_xfer import ACCEPT, NAMES, XClient, wait_children

NOBODY = "nobody"


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root: only netlabd started as root drops privileges"
    try:
        pw = pwd.getpwnam(NOBODY)
    except KeyError:
        return f"needs a user {NOBODY!r} to drop to"
    if pw.pw_uid == 0:
        return f"user {NOBODY!r} is uid 0 here"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

NOT_PERMITTED = 5


def nobody():
    return pwd.getpwnam(NOBODY)


class RootNetlabd(Netlabd):
    """A netlabd that will become nobody: its notify socket must stay
    writable for it, so the socket is made under a umask that leaves others
    write permission."""

    def start(self, timeout=10.0, wait_ready=True):
        old = os.umask(0o011)
        try:
            return super().start(timeout, wait_ready)
        finally:
            os.umask(old)


@pytest.fixture
def pdir():
    """A directory the user nobody can search and read (pytest's tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="netlab-privdrop-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemons(pdir):
    """Make (and start) RootNetlabd instances in pdir; all are stopped by pid
    and their logs checked for crashes at teardown."""
    made = []

    def make(config_text, start=True, extra_args=("--log-target=stderr",)):
        w = pdir / f"d{len(made)}"
        w.mkdir(mode=0o755)
        w.chmod(0o755)
        n = RootNetlabd(w, config_text, extra_args)
        n.config.chmod(0o644)
        made.append(n)
        if start:
            n.start()
        return n

    yield make
    stop_and_check(made)


def config(listeners, user=NOBODY, group=None, **kw):
    """make_config() with user (and group) first; None leaves them out."""
    head = ""
    if user is not None:
        head += f'user = "{user}";\n'
    if group is not None:
        head += f'group = "{group}";\n'
    return head + make_config(listeners, **kw)


def proc_status(pid):
    """/proc/PID/status as {field: value}."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def assert_dropped(pid, pw):
    """Every id is pw's, the groups are the user's own, nothing privileged is left."""
    s = proc_status(pid)
    assert s["Uid"].split() == [str(pw.pw_uid)] * 4, s["Uid"]
    assert s["Gid"].split() == [str(pw.pw_gid)] * 4, s["Gid"]
    want_groups = sorted(set(os.getgrouplist(pw.pw_name, pw.pw_gid)))
    assert sorted(int(g) for g in s["Groups"].split()) == want_groups, s["Groups"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(s[cap], 16) == 0, (cap, s[cap])
    assert s["NoNewPrivs"] == "1", s["NoNewPrivs"]


def world_readable_root(pdir, files):
    root = pdir / "root"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    for name, data in files.items():
        (root / name).write_bytes(data)
        (root / name).chmod(0o644)
    return root


def out_path(pdir, name):
    d = pdir / "out"
    d.mkdir(exist_ok=True)
    return d / name


# ---------------------------------------------------------------------------
# the drop itself, and serving after it

def test_drops_to_user_and_serves(daemons, pdir, ctl_ini):
    data = bytes(random.Random(6).randrange(256) for _ in range(300_000))
    root = world_readable_root(pdir, {"f": data})
    mport, fport = free_port(), free_port()
    d = daemons(config([message_listener(mport), file_listener(fport, root),
                        udp_file_listener(fport, root)]))
    pw = nobody()
    assert_dropped(d.pid, pw)

    log = d.log()
    line = (f"dropped privileges to user {NOBODY} (uid {pw.pw_uid}, gid {pw.pw_gid}) [EVENT=privileges "
            f"USER={NOBODY} UID={pw.pw_uid} GID={pw.pw_gid} GROUPS=")
    assert log.count("dropped privileges") == 1 and line in log, log
    assert log.index("dropped privileges") < log.index(" ready: "), log  # before READY=1
    assert "running as root" not in log

    r = netlabctl("send", "-p", mport, "hello", ini=ctl_ini)
    assert (r.returncode, r.stdout) == (0, b"message received: hello\n"), r
    for how in ([], ["--udp"]):
        out = out_path(pdir, "tcp" if not how else "udp")
        r = netlabctl("fetch", *how, "-p", fport, "-o", out, "--verify", "f", ini=ctl_ini)
        assert r.returncode == 0, r
        assert out.read_bytes() == data
    e = d.wait_requests(listener="files-udp", pred=lambda es: len(es) >= 1)[-1]
    assert e["RESULT"] == "ok" and "shared port" in d.log(), d.log()[-2000:]
    assert "own port" not in d.log()


def test_children_run_as_the_user(daemons, pdir):
    """A TCP child and a UDP transfer child: nobody too, and the transfer's
    datagrams come from the listener's own port (SO_REUSEPORT joined)."""
    data = bytes(range(256)) * 2000
    root = world_readable_root(pdir, {"f": data})
    mport, fport = free_port(), free_port()
    d = daemons(config([message_listener(mport), udp_file_listener(fport, root)]))
    pw = nobody()

    s = hold_child(d, mport)
    try:
        for pid in d.children():
            assert_dropped(pid, pw)
    finally:
        s.close()
    d.wait_no_children(10)

    c = XClient(fport)
    try:
        p = c.handshake("f")
        assert p.type == ACCEPT, (NAMES[p.type], getattr(p, "text", None))
        assert c.peer == ("127.0.0.1", fport), c.peer  # the ACCEPT: from the listener's port
        for pid in wait_children(d, 1):
            assert_dropped(pid, pw)
        got, end, _ = c.download()  # asserts every DATA comes from c.peer
        assert got == data and end.status == 0
    finally:
        c.close()
    e = d.wait_requests(listener="files-udp", pred=lambda es: len(es) >= 1)[-1]
    assert e["RESULT"] == "ok", e
    assert "shared port" in d.log() and "own port" not in d.log(), d.log()[-2000:]


def test_root_the_user_cannot_read(daemons, pdir, ctl_ini):
    """A root directory only root may enter, and a file only root may read:
    the client is told "permission denied"; nothing crashes."""
    closed = pdir / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    (closed / "f").write_bytes(b"secret\n")
    open_root = world_readable_root(pdir, {"ok": b"fine\n", "private": b"secret\n"})
    (open_root / "private").chmod(0o600)
    p1, p2 = free_port(), free_port()
    d = daemons(config([file_listener(p1, closed, name="closed"), file_listener(p2, open_root, name="open")]))

    a = file_exchange(p1, file_get("f"))
    assert (a.status, a.text) == (NOT_PERMITTED, "cannot open: permission denied"), (a.status, a.text)
    a = file_exchange(p2, file_get("private"))
    assert (a.status, a.text) == (NOT_PERMITTED, "cannot open: permission denied"), (a.status, a.text)
    r = netlabctl("fetch", "-p", p2, "-o", out_path(pdir, "x"), "private", ini=ctl_ini)
    assert r.returncode != 0 and b"permission denied" in r.stderr, r
    a = file_exchange(p2, file_get("ok"))  # and it goes on serving
    assert a.status == 0 and a.data == b"fine\n"
    es = d.wait_requests(pred=lambda es: len(es) >= 4)
    assert [e["RESULT"] for e in es] == ["not-permitted"] * 3 + ["ok"], es


# ---------------------------------------------------------------------------
# privileged ports

def free_privileged_port(exclude=()):
    """A port below 1024 that nothing on 127.0.0.1 uses over TCP or UDP,
    tried in a random order from 600..1023 (bounded: at most 848 binds)."""
    ports = [p for p in range(600, 1024) if p not in exclude]
    random.shuffle(ports)
    for p in ports:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", p))
                u.bind(("127.0.0.1", p))
        except OSError:
            continue
        return p
    pytest.skip("no free port below 1024 on 127.0.0.1")


def unprivileged_port_start():
    return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())


def test_privileged_port_bound_before_the_drop(daemons, pdir, ctl_ini):
    """TCP and UDP listeners on a port below 1024 serve after the drop.  A UDP
    transfer there cannot join the port (binding it needs a privilege the
    child does not have) and uses a port of its own, as documented."""
    if unprivileged_port_start() <= 600:
        pytest.skip("net.ipv4.ip_unprivileged_port_start lets anyone bind ports from 600 here")
    root = world_readable_root(pdir, {"f": b"low port\n" * 1000})
    low = free_privileged_port()
    d = daemons(config([message_listener(low, name="low"), udp_file_listener(low, root)]))
    assert_dropped(d.pid, nobody())
    r = netlabctl("send", "-p", low, "hi", ini=ctl_ini)
    assert (r.returncode, r.stdout) == (0, b"message received: hi\n"), r
    out = out_path(pdir, "low")
    r = netlabctl("fetch", "--udp", "-p", low, "-o", out, "f", ini=ctl_ini)
    assert r.returncode == 0 and out.read_bytes() == b"low port\n" * 1000, r
    d.wait_requests(listener="files-udp", pred=lambda es: len(es) >= 1)
    assert "own port" in d.log() and "shared port" not in d.log(), d.log()[-2000:]

    # A new listener on another privileged port needs root, which is gone:
    # the reload is refused with the listener's error; the old one serves on.
    other = free_privileged_port(exclude=(low,))
    d.reload(config([message_listener(low, name="low"), udp_file_listener(low, root),
                     message_listener(other, name="low2")]))
    log = d.log()
    assert re.search(rf"listener 'low2': cannot listen on tcp/127\.0\.0\.1:{other}: Permission denied "
                     r"\(ports below 1024 need privileges\)", log), log
    assert "reload refused: could not set up the new listeners" in log
    r = netlabctl("send", "-p", low, "still", ini=ctl_ini)
    assert (r.returncode, r.stdout) == (0, b"message received: still\n"), r


# ---------------------------------------------------------------------------
# reload after the drop

def test_reload_after_drop(daemons, ctl_ini):
    port = free_port()
    d = daemons(config([message_listener(port)]))
    pw = nobody()

    # Another reply applies; another user (and a group) does not.
    d.reload(config([message_listener(port, reply="changed: %m")], user="daemon", group="daemon"))
    log = d.log()
    assert re.search(r':1: user = "daemon" needs a restart; keeping "nobody"', log), log
    assert re.search(r":2: group = \"daemon\" needs a restart; keeping the user's primary group", log), log
    assert "reloaded " in log
    r = netlabctl("send", "-p", port, "x", ini=ctl_ini)
    assert (r.returncode, r.stdout) == (0, b"changed: x\n"), r
    assert_dropped(d.pid, pw)

    # The kept user is what the next reload compares with: back to nobody
    # without group is no change at all.
    n_warnings = d.log().count("needs a restart")
    d.reload(config([message_listener(port, reply="again: %m")]))
    assert d.log().count("needs a restart") == n_warnings, d.log()
    r = netlabctl("send", "-p", port, "y", ini=ctl_ini)
    assert r.stdout == b"again: y\n", r

    # Removing user is refused the same way.
    d.reload(config([message_listener(port)], user=None))
    assert re.search(r': user removed: that needs a restart; keeping "nobody"', d.log()), d.log()

    # The config is read as the user: one it cannot read is refused, and the
    # previous config keeps serving.
    d.config.write_text(config([message_listener(port, reply="unread: %m")]))
    d.config.chmod(0o600)
    d.reload()
    assert re.search(re.escape(str(d.config)) + r": cannot open: Permission denied", d.log()), d.log()
    assert "reload refused" in d.log()
    r = netlabctl("send", "-p", port, "z", ini=ctl_ini)
    assert r.stdout == b"message received: z\n", r
    assert_dropped(d.pid, pw)


def test_group_replaces_the_primary_group(daemons, ctl_ini):
    """group = NAME: that group instead of the user's primary one (and the
    user's own supplementary groups, as systemd's Group= gives)."""
    import grp
    g = grp.getgrnam("users")
    port = free_port()
    d = daemons(config([message_listener(port)], group="users"))
    s = proc_status(d.pid)
    pw = nobody()
    assert s["Uid"].split() == [str(pw.pw_uid)] * 4
    assert s["Gid"].split() == [str(g.gr_gid)] * 4, s["Gid"]
    assert sorted(int(x) for x in s["Groups"].split()) == sorted(set(os.getgrouplist(NOBODY, g.gr_gid)))
    assert f"(uid {pw.pw_uid}, gid {g.gr_gid})" in d.log(), d.log()
    r = netlabctl("send", "-p", port, "grouped", ini=ctl_ini)
    assert (r.returncode, r.stdout) == (0, b"message received: grouped\n"), r


# ---------------------------------------------------------------------------
# refusals and warnings

def check_config(path):
    return subprocess.run([str(NETLABD), "--check-config", "-c", str(path)], capture_output=True, text=True,
                          timeout=10)


@pytest.mark.parametrize("head,line,message", [
    ('user = "no-such-user-nl";\n', 1, 'user: no user "no-such-user-nl" on this system'),
    (f'user = "{NOBODY}";\ngroup = "no-such-group-nl";\n', 2,
     'group: no group "no-such-group-nl" on this system'),
    ('user = "root";\n', 1, 'user: "root" is uid 0, so netlabd would keep every privilege'),
    (f'user = "{NOBODY}";\ngroup = "root";\n', 2,
     "group: netlabd would run with group id 0 (root's group); name an unprivileged group"),
])
def test_unusable_user_stops_netlabd(daemons, head, line, message):
    port = free_port()
    d = daemons(head + make_config([message_listener(port)]), start=False)
    r = check_config(d.config)
    assert r.returncode == 1 and f"{d.config}:{line}: {message}" in r.stderr, r
    assert r.stdout == ""

    d.start(wait_ready=False)
    d.proc.wait(10)
    assert d.proc.returncode == 1, d.log()
    assert f"error: {d.config}:{line}: {message}" in d.log() and "; not starting" in d.log(), d.log()
    assert "READY=1" not in "".join(d.read_notifications(0.1))
    with pytest.raises(OSError):  # never bound
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_root_without_user_warns(daemons, ctl_ini):
    port = free_port()
    d = daemons(config([message_listener(port)], user=None))
    assert re.search(r"warning: running as root, and staying root while serving: "
                     r"set user = \"netlab\"; .* in " + re.escape(str(d.config)), d.log()), d.log()
    assert "dropped privileges" not in d.log()
    assert proc_status(d.pid)["Uid"].split() == ["0"] * 4
    r = netlabctl("send", "-p", port, "root", ini=ctl_ini)
    assert r.returncode == 0, r
    r = check_config(d.config)
    assert (r.returncode, r.stderr) == (0, ""), r


def test_not_root_ignores_user(daemons, ctl_ini):
    """Started as nobody already (as systemd's User= does): user = "nobody"
    is what we are (debug only); another user is ignored with a notice; an
    unknown one is not looked for by --check-config."""
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv (util-linux) to start netlabd as another user")
    pw = nobody()
    as_nobody = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
    for user, notice in ((NOBODY, False), ("daemon", True)):
        port = free_port()
        d = daemons(config([message_listener(port)], user=user), start=False)
        d.prefix = as_nobody
        d.start()
        assert proc_status(d.pid)["Uid"].split() == [str(pw.pw_uid)] * 4
        log = d.log()
        ignored = f'notice: not root: user = "daemon" ignored (running as uid {pw.pw_uid})'
        assert (ignored in log) == notice, log
        assert "dropped privileges" not in log and "running as root" not in log, log
        r = netlabctl("send", "-p", port, "hi", ini=ctl_ini)
        assert r.returncode == 0, r
        d.stop()

    cfg = Path(d.workdir) / "unknown.conf"
    cfg.write_text(config([message_listener(free_port())], user="no-such-user-nl"))
    cfg.chmod(0o644)
    r = subprocess.run([*as_nobody, str(NETLABD), "--check-config", "-c", str(cfg)], capture_output=True,
                       text=True, timeout=10)
    assert (r.returncode, r.stderr) == (0, ""), r


def test_shutdown_after_drop(daemons):
    """The supervisor, now nobody, still ends its children (nobody too) at
    SIGTERM and exits 0."""
    port = free_port()
    d = daemons(config([message_listener(port)], limits={"grace_period": 0}))
    s = hold_child(d, port)
    try:
        kids = d.children()
        assert kids
        assert d.stop() == 0
        assert not [pid for pid in kids if os.path.exists(f"/proc/{pid}")], kids
    finally:
        s.close()
    assert "ended by shutdown" in d.log(), d.log()
