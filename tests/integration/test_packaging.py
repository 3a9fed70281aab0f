"""The packaging tier: the .deb and .rpm that packaging/build-packages.sh builds.

One build per session (pkgbuild.py, unit tests inside the builds skipped).
Checked here, without installing anything on the host:
  - lintian -EIL +pedantic on the .changes (source and binaries): no error, no
    warning that is not overridden, no stale override, and a comment above
    every override;
  - the .deb holds exactly the expected files (nothing in /srv), its conffiles
    are the /etc/netlab files, and its maintainer scripts, run against stub
    tools, create the user and /srv/netlab, enable and start nothing on a fresh
    install, try-restart only running units on upgrade, stop the units on
    remove, and on purge keep the user and an admin's files;
  - the extracted .deb runs: netlabd --check-config on its own config,
    netlabctl --help, the units' commands exist, and sysusers.d/tmpfiles.d
    create the user and the sample root inside the extracted tree;
  - rpm -qlp lists exactly what the spec promises, --configfiles the /etc
    files (noreplace), --scripts creates the user and /srv/netlab and enables
    nothing.
The expected units and man pages come from the tree (systemd/*.service,
systemd/*.socket, docs/*.[1-8]). Installing the .deb under a booted systemd is
test_systemd.py's job. Needs dpkg-dev, debhelper, fakeroot, rpm and lintian;
not root, except the sysusers/tmpfiles check, which chowns.
"""
import configparser
import io
import os
import pwd
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import pkgbuild
from conftest import require_tools

REPO = pkgbuild.REPO
UNITS = sorted(p.name for p in (REPO / "systemd").iterdir() if p.suffix in (".service", ".socket"))
MAN_PAGES = sorted(p.name for p in (REPO / "docs").iterdir() if re.fullmatch(r".+\.[1-8]", p.name))
ETC_FILES = ["guess-people.conf", "netlabctl.ini", "netlabd.conf"]
DOCS = ["ARCHITECTURE.md", "PROTOCOL.md", "README.md", "SYSTEMD.md"]
SAMPLE = REPO / "conf" / "srv" / "source_file.txt"
OVERRIDES = [REPO / "packaging/debian/netlab.lintian-overrides",
             REPO / "packaging/debian/source/lintian-overrides"]


def run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120, **kw)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def deb_unitdir():
    """Where the .deb's units are: meson asks systemd.pc (systemd/meson.build),
    /lib/systemd/system on bookworm, /usr/lib/systemd/system later."""
    if shutil.which("pkg-config"):
        proc = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                              capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return "/usr/lib/systemd/system"


def payload(unitdir):
    """The files both packages install from meson, by absolute path."""
    files = {"/usr/sbin/netlabd", "/usr/bin/netlabctl",
             "/usr/lib/sysusers.d/netlab.conf", "/usr/lib/tmpfiles.d/netlab.conf",
             "/usr/share/netlab/source_file.txt",
             "/usr/share/bash-completion/completions/netlabctl"}
    files |= {f"{unitdir}/{u}" for u in UNITS}
    files |= {f"/etc/netlab/{n}" for n in ETC_FILES}
    files |= {f"/usr/share/man/man{m[-1]}/{m}" for m in MAN_PAGES}
    return files


def uncompressed(path):
    """Man pages and docs without the compression suffix the packager adds."""
    if path.startswith(("/usr/share/man/", "/usr/share/doc/")):
        return re.sub(r"\.(gz|bz2|xz|zst)$", "", path)
    return path


def test_tree_has_what_the_packages_need():
    assert "netlabd.service" in UNITS and "netlabd.socket" in UNITS, UNITS
    assert MAN_PAGES == ["netlabctl.1", "netlabd.8", "netlabd.conf.5"], MAN_PAGES
    for name in ETC_FILES:
        assert (REPO / "conf" / name).is_file(), name
    assert SAMPLE.is_file()


# ---- lintian -----------------------------------------------------------------------------------

def test_every_lintian_override_is_justified():
    """Each override is preceded by a comment in its paragraph saying why."""
    for path in OVERRIDES:
        paragraph_has_comment = False
        for line in path.read_text().splitlines():
            if not line.strip():
                paragraph_has_comment = False
            elif line.startswith("#"):
                paragraph_has_comment = True
            else:
                assert paragraph_has_comment, f"{path.name}: no comment justifies {line!r}"


def test_lintian_clean():
    require_tools("lintian", package="lintian")
    pkgs = pkgbuild.packages()
    proc = subprocess.run(["lintian", "-EIL", "+pedantic", str(pkgs["changes"])],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    tags = [l for l in proc.stdout.splitlines() if re.match(r"[EWIPX]: ", l)]
    bad = [l for l in tags if l[0] in "EW" or re.search(r"\b(unused|mismatched)-override\b", l)]
    assert not bad, "lintian:\n" + proc.stdout
    # Info, pedantic and experimental tags are overridden with a reason too.
    assert not tags, "lintian tags without an override:\n" + "\n".join(tags)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- the .deb ----------------------------------------------------------------------------------

def deb_members(deb):
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True,
                          check=True, timeout=60).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {"/" + m.name.lstrip("./"): m for m in tar.getmembers() if m.name not in (".", "./")}


def test_deb_contents():
    pkgs = pkgbuild.packages()
    members = deb_members(pkgs["deb"])
    assert not [p for p in members if p == "/srv" or p.startswith("/srv/")], \
        "packages must not ship anything in /srv (tmpfiles.d creates /srv/netlab)"

    files = {uncompressed(p) for p, m in members.items() if not m.isdir()}
    expected = payload(deb_unitdir())
    expected |= {f"/usr/share/doc/netlab/{d}" for d in DOCS}
    expected |= {"/usr/share/doc/netlab/changelog.Debian", "/usr/share/doc/netlab/copyright",
                 "/usr/share/lintian/overrides/netlab"}
    assert sorted(files - expected) == [], "unexpected files in the .deb"
    assert sorted(expected - files) == [], "files missing from the .deb"

    for path, m in members.items():
        assert (m.uname, m.gname) == ("root", "root"), path
        if path in ("/usr/sbin/netlabd", "/usr/bin/netlabctl"):
            assert m.mode == 0o755, path
        elif m.isfile():
            assert m.mode == 0o644, f"{path}: {oct(m.mode)}"


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    pkgs = pkgbuild.packages()
    d = tmp_path_factory.mktemp("deb-control")
    run(["dpkg-deb", "-e", pkgs["deb"], d])
    return d


def test_deb_conffiles(control):
    assert (control / "conffiles").read_text().split() == [f"/etc/netlab/{n}" for n in ETC_FILES]


def test_deb_control_fields(control):
    fields = (control / "control").read_text()
    assert re.search(r"^Package: netlab$", fields, re.M)
    depends = re.search(r"^Depends: (.*)$", fields, re.M).group(1)
    # dh_installsysusers: postinst runs systemd-sysusers.
    assert "systemd | systemd-standalone-sysusers | systemd-sysusers" in depends, depends
    assert "libsystemd0" in depends and "libconfig9" in depends, depends


# Commands a maintainer script may run that change the system: all replaced by
# stubs that only log their arguments. deb-systemd-helper's "debian-installed"
# and "was-enabled" answer as told (has the admin enabled the units before?).
STUBS = ["systemd-sysusers", "systemd-tmpfiles", "systemctl", "deb-systemd-helper",
         "deb-systemd-invoke", "update-rc.d", "invoke-rc.d", "dpkg-maintscript-helper",
         "ldconfig", "adduser", "addgroup", "useradd", "groupadd", "deluser", "delgroup",
         "userdel", "groupdel"]


def run_script(control, tmp_path, script, *args, enabled=False, dpkg_root=None):
    """Run one maintainer script as dpkg would, on a "booted" systemd (a
    stand-in for /run/systemd/system), with STUBS in front of PATH. Returns
    the stub calls, one "command args" string each."""
    stubs = tmp_path / "stubs"
    log = tmp_path / "calls.log"
    booted = tmp_path / "run-systemd-system"
    stubs.mkdir(exist_ok=True)
    booted.mkdir(exist_ok=True)
    log.write_text("")
    answer = 0 if enabled else 1
    for name in STUBS:
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n'
                        f'case " $* " in *" debian-installed "*|*" was-enabled "*) exit {answer};; esac\n'
                        "exit 0\n")
        stub.chmod(0o755)
    text = (control / script).read_text()
    text = text.replace("/run/systemd/system", str(booted))
    text = text.replace("/usr/bin/deb-systemd-helper", str(stubs / "deb-systemd-helper"))
    # Never run the real thing: a tool called by absolute path would bypass the stubs.
    direct = re.search(r"/(usr/)?s?bin/(%s)\b" % "|".join(map(re.escape, STUBS)), text)
    assert not direct, f"{script} runs {direct.group(0)} directly: stub it here"
    path = tmp_path / script
    path.write_text(text)
    env = {"PATH": f"{stubs}:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    if dpkg_root is not None:
        env["DPKG_ROOT"] = str(dpkg_root)
    run(["/bin/sh", path, *args], env=env)
    return log.read_text().splitlines()


STARTS = re.compile(r"^(deb-systemd-helper|deb-systemd-invoke|systemctl)\b.*"
                    r"\b(enable|start|restart|try-restart|reload-or-restart|preset|reenable)\b")


def units_of(call):
    return sorted(w.strip("'") for w in call.split()[2:])


def test_postinst_fresh_install_creates_user_and_root_and_starts_nothing(control, tmp_path):
    calls = run_script(control, tmp_path, "postinst", "configure")
    assert "systemd-sysusers netlab.conf" in calls, calls
    assert "systemd-tmpfiles --create netlab.conf" in calls, calls
    # the user first: tmpfiles.d lines may name it
    assert calls.index("systemd-sysusers netlab.conf") < \
        calls.index("systemd-tmpfiles --create netlab.conf"), calls
    assert [c for c in calls if STARTS.search(c)] == [], calls


def test_postinst_upgrade_restarts_only_running_units(control, tmp_path):
    calls = run_script(control, tmp_path, "postinst", "configure", "0.0.1-1")
    restarts = [c for c in calls if STARTS.search(c)]
    assert len(restarts) == 1 and restarts[0].startswith("deb-systemd-invoke try-restart "), calls
    assert units_of(restarts[0]) == UNITS
    assert "systemd-sysusers netlab.conf" in calls, calls


def test_postinst_upgrade_keeps_the_admins_enablement(control, tmp_path):
    calls = run_script(control, tmp_path, "postinst", "configure", "0.0.1-1", enabled=True)
    enabled = sorted(c.split()[-1].strip("'") for c in calls
                     if c.startswith("deb-systemd-helper enable "))
    assert enabled == ["netlabd.service", "netlabd.socket"], calls
    assert not [c for c in calls if re.search(r"\bstart\b", c)], calls


def test_prerm_stops_every_unit_on_remove_only(control, tmp_path):
    calls = run_script(control, tmp_path, "prerm", "remove")
    stops = [c for c in calls if c.startswith("deb-systemd-invoke stop ")]
    assert len(stops) == 1 and units_of(stops[0]) == UNITS, calls
    assert run_script(control, tmp_path, "prerm", "upgrade", "0.1.0-1") == []


def test_postrm_remove_keeps_everything(control, tmp_path):
    calls = run_script(control, tmp_path, "postrm", "remove")
    assert not [c for c in calls if " purge " in f" {c} "], calls


@pytest.mark.parametrize("case", ["pristine", "admin-file", "edited-sample"])
def test_postrm_purge_removes_only_what_it_created(control, tmp_path, case):
    root = tmp_path / "root"
    srv = root / "srv" / "netlab"
    srv.mkdir(parents=True)
    sample = srv / "source_file.txt"
    shutil.copyfile(SAMPLE, sample)
    if case == "admin-file":
        (srv / "mine.txt").write_text("an admin's file\n")
    if case == "edited-sample":
        sample.write_text("edited by the admin\n")

    calls = run_script(control, tmp_path, "postrm", "purge", dpkg_root=root)

    purges = [c for c in calls if c.startswith("deb-systemd-helper purge ")]
    assert len(purges) == 1, calls
    assert not [c for c in calls if re.match(r"(deluser|userdel|delgroup|groupdel) ", c)]
    if case == "pristine":
        assert not srv.exists()
    elif case == "admin-file":
        assert sorted(p.name for p in srv.iterdir()) == ["mine.txt"]
    else:
        assert sample.read_text() == "edited by the admin\n"


def test_no_script_removes_the_user(control):
    for script in ("preinst", "postinst", "prerm", "postrm"):
        path = control / script
        if path.exists():
            assert not re.search(r"\b(deluser|userdel|delgroup|groupdel)\b", path.read_text()), script


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    pkgs = pkgbuild.packages()
    root = tmp_path_factory.mktemp("deb-root")
    run(["dpkg-deb", "-x", pkgs["deb"], root])
    return root


def check_config(root):
    """netlabd --check-config on a package's own config, from the extracted
    tree. The config names the user the package creates (user = "netlab"),
    which this host may lack: then that must be the only complaint."""
    conf = root / "etc/netlab/netlabd.conf"
    proc = subprocess.run([str(root / "usr/sbin/netlabd"), "--check-config", "-c", str(conf)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    try:
        pwd.getpwnam("netlab")
    except KeyError:
        errors = [l for l in out.splitlines() if l.startswith(f"{conf}:")]
        if proc.returncode != 0 and errors and all(re.fullmatch(
                rf'{re.escape(str(conf))}:\d+: user: no user "netlab" on this system', l)
                for l in errors):
            return
    assert proc.returncode == 0 and "ok" in out, out


def test_extracted_programs_run(extracted):
    check_config(extracted)
    out = run([extracted / "usr/bin/netlabctl", "--help"])
    assert "netlabctl" in out, out


def test_extracted_units_run_packaged_programs(extracted):
    """Every command a unit runs is a file of the package (or /bin/kill)."""
    unitdir = extracted / deb_unitdir().lstrip("/")
    assert sorted(p.name for p in unitdir.iterdir()) == UNITS
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read(unitdir / "netlabd.service")
    commands = [service["Service"][k].lstrip("-@:+!").split()[0]
                for k in ("ExecStartPre", "ExecStart", "ExecReload") if k in service["Service"]]
    assert "/usr/sbin/netlabd" in commands, commands
    for cmd in commands:
        assert cmd == "/bin/kill" or (extracted / cmd.lstrip("/")).is_file(), cmd


@pytest.mark.skipif(os.geteuid() != 0, reason="systemd-sysusers/-tmpfiles --root chown: needs root")
def test_extracted_sysusers_and_tmpfiles_create_user_and_root(extracted, tmp_path):
    """What postinst runs, applied to a copy of the extracted tree with --root."""
    require_tools("systemd-tmpfiles", "systemd-sysusers", package="systemd")
    root = tmp_path / "root"
    shutil.copytree(extracted, root, symlinks=True)
    run(["systemd-sysusers", f"--root={root}", "netlab.conf"])
    run(["systemd-tmpfiles", f"--root={root}", "--create", "netlab.conf"])
    users = {l.split(":")[0]: l.split(":") for l in (root / "etc/passwd").read_text().splitlines()}
    assert "netlab" in users, users
    assert users["netlab"][6] in ("/usr/sbin/nologin", "/sbin/nologin"), users["netlab"]
    assert int(users["netlab"][2]) < 1000, "a system user"
    assert (root / "srv/netlab/source_file.txt").read_bytes() == SAMPLE.read_bytes()


# ---- the .rpm ----------------------------------------------------------------------------------

def rpm_query(rpm, *args):
    return run(["rpm", "-qp", *args, rpm])


def test_rpm_files_are_what_the_spec_promises():
    pkgs = pkgbuild.packages()
    version = rpm_query(pkgs["rpm"], "--qf", "%{VERSION}")
    listing = {}
    for line in rpm_query(pkgs["rpm"], "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]").splitlines():
        perms, path = line.split(" ", 1)
        if not path.startswith("/usr/lib/.build-id"):   # rpm's own debug links
            listing[path] = perms
    assert not [p for p in listing if p == "/srv" or p.startswith("/srv/")]

    # Fedora names doc and license directories netlab, Debian's rpm netlab-VERSION.
    docdir = [p for p in listing if re.fullmatch(rf"/usr/share/doc/netlab(-{re.escape(version)})?", p)]
    licdir = [p for p in listing
              if re.fullmatch(rf"/usr/share/licenses/netlab(-{re.escape(version)})?", p)]
    assert len(docdir) == 1 and len(licdir) == 1, sorted(listing)
    license_file = "LICENSE" if (REPO / "LICENSE").is_file() else "copyright"

    files = {uncompressed(p) for p, perms in listing.items() if not perms.startswith("d")}
    expected = payload("/usr/lib/systemd/system")
    expected |= {f"{docdir[0]}/{d}" for d in DOCS}
    expected |= {f"{licdir[0]}/{license_file}"}
    assert sorted(files - expected) == [], "unexpected files in the .rpm"
    assert sorted(expected - files) == [], "files missing from the .rpm"
    dirs = {p for p, perms in listing.items() if perms.startswith("d")}
    assert dirs == {"/etc/netlab", "/usr/share/netlab", docdir[0], licdir[0]}, sorted(dirs)


def test_rpm_configfiles_are_noreplace():
    pkgs = pkgbuild.packages()
    assert rpm_query(pkgs["rpm"], "--configfiles").split() == [f"/etc/netlab/{n}" for n in ETC_FILES]
    flags = dict(l.split(" ", 1) for l in
                 rpm_query(pkgs["rpm"], "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]").splitlines()
                 if l.startswith("/etc/netlab/"))
    for name in ETC_FILES:
        assert set(flags[f"/etc/netlab/{name}"]) >= {"c", "n"}, flags


def test_rpm_scripts_create_user_and_root_and_enable_nothing():
    pkgs = pkgbuild.packages()
    scripts = rpm_query(pkgs["rpm"], "--scripts")
    post = re.search(r"^postinstall scriptlet.*?\n(.*?)(?=^\w+ scriptlet|\Z)", scripts,
                     re.M | re.S)
    assert post, scripts
    assert re.search(r"systemd-sysusers\b.*netlab\.conf", scripts), scripts
    assert re.search(r"systemd-tmpfiles\b.*--create\b.*netlab\.conf", post.group(1)), scripts
    assert not re.search(r"systemctl\b.*\b(enable|start)\b|--now", post.group(1)), post.group(1)
    # No scriptlet is empty (a bare %{?systemd_post:...} would leave one).
    for body in re.split(r"^\w+ scriptlet \(using /bin/sh\):\n", scripts, flags=re.M)[1:]:
        assert body.strip(), scripts


def test_rpm_extracted_daemon_checks_its_config(tmp_path):
    require_tools("rpm2cpio", "cpio", package="rpm cpio")
    pkgs = pkgbuild.packages()
    cpio = subprocess.run(["rpm2cpio", str(pkgs["rpm"])], capture_output=True, check=True,
                          timeout=60).stdout
    subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], input=cpio,
                   cwd=tmp_path, check=True, timeout=60)
    check_config(tmp_path)


def test_versions_agree():
    pkgs = pkgbuild.packages()
    meson_version = re.search(r"version\s*:\s*'([^']+)'", (REPO / "meson.build").read_text()).group(1)
    deb_version = run(["dpkg-deb", "-f", pkgs["deb"], "Version"]).strip()
    assert re.fullmatch(rf"{re.escape(meson_version)}-\d+", deb_version), deb_version
    assert rpm_query(pkgs["rpm"], "--qf", "%{VERSION}") == meson_version
