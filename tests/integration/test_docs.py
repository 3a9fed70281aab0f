"""The documentation names everything the programs offer.

Checks docs/ against the programs as built (their --help and --list-keys) and
against the status table in common/proto.c, so a new key, option or status
cannot ship undocumented. Reads the roff sources directly: no groff needed.
"""
import re
import subprocess

import pytest

from conftest import NETLABCTL, NETLABD, REPO

DOCS = REPO / "docs"


def run(*cmd):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}: {p.stderr}"
    return p.stdout


def roff_text(path):
    """A man page's source with the escapes that can sit inside a name undone."""
    s = path.read_text()
    s = re.sub(r"\\f[BIRP]|\\f\(..|\\f\[[^]]*\]", "", s)
    for esc, plain in (("\\-", "-"), ("\\(aq", "'"), ("\\(dq", '"'), ("\\(ga", "`"),
                       ("\\&", ""), ("\\c", ""), ("\\e", "\\")):
        s = s.replace(esc, plain)
    return s


def long_options(text):
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text)))


def has_option(page, opt):
    return re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", page) is not None


def test_every_config_key_is_in_netlabd_conf_5():
    keys = [line.split("\t")[0].rsplit(".", 1)[-1]
            for line in run(NETLABD, "--list-keys").splitlines() if line.strip()]
    assert len(keys) >= 10, keys
    page = roff_text(DOCS / "netlabd.conf.5")
    # Each key must be a tagged paragraph of its own (".TP" then ".B key"),
    # not just a word that happens to occur in the text.
    tagged = set(re.findall(r"^\.TP\n\.B (\S+)$", page, re.M))
    missing = sorted(set(keys) - tagged)
    assert not missing, f"keys without a .TP/.B entry in netlabd.conf.5: {missing}"


def test_every_netlabd_option_is_in_netlabd_8():
    opts = long_options(run(NETLABD, "--help"))
    assert "--config" in opts and "--check-config" in opts, opts
    page = roff_text(DOCS / "netlabd.8")
    missing = [o for o in opts if not has_option(page, o)]
    assert not missing, f"options missing from netlabd.8: {missing}"


def test_every_netlabctl_option_is_in_netlabctl_1():
    opts = set(long_options(run(NETLABCTL, "--help")))
    for command in ("send", "fetch", "ls", "echo", "guess"):
        opts |= set(long_options(run(NETLABCTL, command, "--help")))
    assert {"--config", "--host", "--lab", "--count", "--guess", "--retries"} <= opts, opts
    page = roff_text(DOCS / "netlabctl.1")
    missing = sorted(o for o in opts if not has_option(page, o))
    assert not missing, f"options missing from netlabctl.1: {missing}"


def status_table():
    """[(code, name, text)] from common/proto.h's enum and common/proto.c's table."""
    header = (REPO / "common" / "proto.h").read_text()
    codes = {m.group(1): int(m.group(2))
             for m in re.finditer(r"^\s*(NL_STATUS_[A-Z_]+)\s*=\s*(\d+)\s*,", header, re.M)}
    source = (REPO / "common" / "proto.c").read_text()
    rows = [(codes[m.group(1)], m.group(2), m.group(3))
            for m in re.finditer(r'\[(NL_STATUS_[A-Z_]+)\]\s*=\s*\{\s*"([^"]+)"\s*,\s*"([^"]+)"\s*\}',
                                 source)]
    assert len(rows) == len(codes) and len(rows) >= 8, (rows, codes)
    return rows


def test_every_status_is_in_protocol_md():
    doc = (DOCS / "PROTOCOL.md").read_text()
    missing = []
    for code, name, text in status_table():
        # A row of the status table: | code | `name` | default text | ...
        row = re.compile(r"^\|\s*" + str(code) + r"\s*\|\s*`" + re.escape(name) + r"`\s*\|\s*"
                         + re.escape(text) + r"\s*\|", re.M)
        if not row.search(doc):
            missing.append(f"{code} {name} ({text})")
    assert not missing, f"statuses missing from the PROTOCOL.md table: {missing}"


@pytest.mark.parametrize("page,example", [("netlabd.conf.5", "netlabd.conf"),
                                          ("netlabctl.1", "netlabctl.ini")])
def test_man_page_example_is_the_shipped_file(page, example):
    text = roff_text(DOCS / page)
    shipped = (REPO / "conf" / example).read_text().rstrip("\n")
    blocks = [b.strip("\n") for b in re.findall(r"^\.EX\n(.*?)^\.EE$", text, re.M | re.S)]
    assert shipped in blocks, f"{page} has no .EX block identical to conf/{example}"
