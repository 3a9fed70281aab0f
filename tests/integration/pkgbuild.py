"""Build netlab's packages once per pytest session, for the tests that need them.

    import pkgbuild
    pkgs = pkgbuild.packages()   # {"deb", "dbgsym", "changes", "dsc", "rpm", "srpm", "dir"}

The first call runs packaging/build-packages.sh --no-check (the unit tests
inside the package builds are skipped: meson test runs them anyway) into a
directory under the system temp dir, removed when the Python process exits;
later calls return the same paths. It builds from the current tree,
uncommitted changes included, and writes nothing into the tree.

No root is needed (Rules-Requires-Root: no). NETLAB_PACKAGING=skip skips every
caller (run-all.sh sets it for the ASan+UBSan pass, which would only build the
same packages again). When a build tool is missing the
call skips the test and names the Debian packages to install; CI installs
them. A failed build fails every test that asks for the packages, with the end
of the build log, without building again.
"""
import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "packaging" / "build-packages.sh"

# program -> the Debian package that provides it
TOOLS = {
    "dpkg-buildpackage": "dpkg-dev",
    "dh": "debhelper",
    "fakeroot": "fakeroot",
    "rpmbuild": "rpm",
    "meson": "meson",
}
BUILD_TIMEOUT = 600

_cache = None   # ("ok", dict) or ("fail", message), once built


def missing_tools():
    """The Debian packages whose programs the build needs and cannot find."""
    return sorted({pkg for prog, pkg in TOOLS.items() if shutil.which(prog) is None})


def _one(outdir, pattern, exclude=None):
    found = sorted(p for p in outdir.glob(pattern) if not (exclude and p.match(exclude)))
    if len(found) != 1:
        raise RuntimeError(f"expected one {pattern} in {outdir}, found {[p.name for p in found]}")
    return found[0]


def _build():
    outdir = Path(tempfile.mkdtemp(prefix="netlab-pkgs-"))
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    try:
        proc = subprocess.run([str(SCRIPT), "--no-check", str(outdir)], cwd=REPO,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "fail", f"{SCRIPT.name} took more than {BUILD_TIMEOUT} s"
    if proc.returncode != 0:
        return "fail", f"{SCRIPT.name} failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}"
    try:
        return "ok", {
            "dir": outdir,
            "deb": _one(outdir, "netlab_*.deb"),
            "dbgsym": _one(outdir, "netlab-dbgsym_*.deb"),
            "changes": _one(outdir, "netlab_*.changes"),
            "dsc": _one(outdir, "netlab_*.dsc"),
            "rpm": _one(outdir, "netlab-[0-9]*.rpm", exclude="*.src.rpm"),
            "srpm": _one(outdir, "netlab-*.src.rpm"),
        }
    except RuntimeError as e:
        return "fail", f"{e}\n{proc.stdout[-3000:]}"


def packages():
    """Paths of the built packages (a dict of Path, see the module doc).

    Skips the calling test when build tools are missing; fails it when the
    build failed."""
    global _cache
    if os.environ.get("NETLAB_PACKAGING", "") == "skip":
        pytest.skip("packaging tier left to the normal pass (NETLAB_PACKAGING=skip): the "
                    "packages are built with the distribution's flags, not this build's")
    missing = missing_tools()
    if missing:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("cannot build the packages: install " + " ".join(missing) +
                        " (CI must run the packaging tier: tests/setup-deps.sh --test)", pytrace=False)
        pytest.skip("cannot build the packages: install " + " ".join(missing))
    if _cache is None:
        _cache = _build()
    state, value = _cache
    if state != "ok":
        pytest.fail(value, pytrace=False)
    return dict(value)
