"""bash completion for netlabctl offers what netlabctl --help says.

Sources cli/netlabctl.bash-completion in a non-interactive bash, sets
COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT as bash would for a command line
with the cursor at its end, calls _netlabctl and reads COMPREPLY.  Every check
runs twice: with the bash-completion package loaded (_init_completion,
_filedir, _known_hosts_real), skipped when it is not installed, and without it
(the script's own fallback), always.

The expected commands and options come from the built netlabctl's --help
output, so an option added to the program and not to the script fails here.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import NETLABCTL, REPO

SCRIPT = REPO / "cli" / "netlabctl.bash-completion"
BASH = shutil.which("bash")
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")

pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")

MODES = [
    "plain",
    pytest.param("bash-completion", marks=pytest.mark.skipif(
        not BASH_COMPLETION.exists(),
        reason=f"the bash-completion package is not installed ({BASH_COMPLETION} missing); "
               "the plain fallback is still tested")),
]

# Loads the script (after bash-completion, in that mode), then completes the
# line given as $2 from the words given after it, and prints COMPREPLY.
DRIVER = r"""
if [[ $1 == bash-completion ]]; then
        source /usr/share/bash-completion/bash_completion || exit 90
fi
source "$SCRIPT" || exit 91
if [[ $2 == --registration ]]; then
        complete -p netlabctl
        exit
fi
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
shift 2
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMPREPLY=()
_netlabctl netlabctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" || exit 92
printf '%s\0' "${COMPREPLY[@]}"
"""


def comp_words(line):
    """COMP_WORDS as bash splits line with the default COMP_WORDBREAKS, for
    the characters these tests use: blanks separate words, and "=" is a word
    of its own; a line ending in a blank has an empty word at the cursor."""
    words = []
    for w in line.split():
        parts = w.split("=")
        for i, p in enumerate(parts):
            if i:
                words.append("=")
            if p:
                words.append(p)
    if line.endswith(" "):
        words.append("")
    return words


@pytest.fixture
def sandbox(tmp_path):
    """A home and a working directory of our own: no ~/.bash_completion or
    ~/.ssh/known_hosts of the user's, and files that only the tests made."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.7 netlab-compl-test\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "HOSTFILE": str(hosts), "SCRIPT": str(SCRIPT), "LC_ALL": "C"}
    return work, env


def complete(mode, line, sandbox):
    """The set of words offered for line (cursor at its end)."""
    cwd, env = sandbox
    p = subprocess.run([BASH, "--norc", "--noprofile", "-c", DRIVER, "bash", mode, line,
                        *comp_words(line)],
                       cwd=cwd, env=env, capture_output=True, timeout=30)
    assert p.returncode == 0, f"{line!r}: exit {p.returncode}: {p.stderr.decode(errors='replace')}"
    return {w.decode() for w in p.stdout.split(b"\0") if w}


def run_help(*args):
    p = subprocess.run([str(NETLABCTL), *args, "--help"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, f"netlabctl {' '.join(args)} --help: exit {p.returncode}"
    return p.stdout


# An option line of --help: "  -o, --output=OUT  ..." or "      --udp  ...";
# description lines (indented further) may mention options but are not these.
OPTION_LINE = re.compile(r"^  (?:(-[A-Za-z0-9]), |    )(--[a-z][a-z0-9-]*)(=\S+)?(?=\s|$)", re.M)


def help_options(text):
    """The words a completion offers for the options text lists: each short
    option, and each long one with a "=" when it takes a value."""
    out = set()
    for short, long_, value in OPTION_LINE.findall(text):
        if short:
            out.add(short)
        out.add(long_ + ("=" if value else ""))
    return out


def option_table(text):
    """[(short or "", long, takes a value)] of the options text lists."""
    return [(short, long_, bool(value)) for short, long_, value in OPTION_LINE.findall(text)]


def global_help():
    """The commands and the global options of netlabctl --help."""
    text = run_help()
    commands = re.search(r"^Commands:\n((?:  \S.*\n)+)", text, re.M)
    assert commands, text
    names = [line.split()[0] for line in commands.group(1).splitlines()]
    section = re.search(r"^Global options.*\n((?:.*\n)*?)^Options every command", text, re.M)
    assert section, text
    return names, help_options(section.group(1))


def long_ones(words):
    return {w for w in words if w.startswith("--")}


@pytest.mark.parametrize("mode", MODES)
def test_registered_for_netlabctl(mode, sandbox):
    p = subprocess.run([BASH, "--norc", "--noprofile", "-c", DRIVER, "bash", mode, "--registration"],
                       env=sandbox[1], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["complete", "-F", "_netlabctl", "netlabctl"], p.stdout


@pytest.mark.parametrize("mode", MODES)
def test_every_command_completes(mode, sandbox):
    commands, _ = global_help()
    assert {"send", "fetch", "ls", "echo", "guess"} <= set(commands), commands
    assert complete(mode, "netlabctl ", sandbox) == set(commands)
    # After a global option and its value, COMMAND is still next.
    assert complete(mode, "netlabctl --config x.ini ", sandbox) == set(commands)
    assert complete(mode, "netlabctl --config=x.ini ", sandbox) == set(commands)
    for c in commands:
        prefix = c[:2]
        assert complete(mode, f"netlabctl {prefix}", sandbox) == \
            {d for d in commands if d.startswith(prefix)}, prefix


@pytest.mark.parametrize("mode", MODES)
def test_global_options_are_those_of_help(mode, sandbox):
    _, opts = global_help()
    assert {"--config=", "--help", "--version"} <= opts, opts
    assert complete(mode, "netlabctl -", sandbox) == opts
    assert complete(mode, "netlabctl --", sandbox) == long_ones(opts)


@pytest.mark.parametrize("mode", MODES)
def test_every_command_offers_exactly_its_help_options(mode, sandbox):
    commands, _ = global_help()
    wrong = []
    n_long = 0
    for c in commands:
        want = help_options(run_help(c))
        assert {"--host=", "--port=", "--json", "--help"} <= want, (c, want)
        n_long += len(long_ones(want))
        got = complete(mode, f"netlabctl {c} -", sandbox)
        if got != want:
            wrong.append(f"{c}: missing {sorted(want - got)}, not in --help {sorted(got - want)}")
        got = complete(mode, f"netlabctl {c} --", sandbox)
        if got != long_ones(want):
            wrong.append(f"{c} --: {sorted(got ^ long_ones(want))}")
    assert not wrong, "\n".join(wrong)
    assert n_long >= 40, n_long


@pytest.mark.parametrize("mode", MODES)
def test_a_prefix_narrows_the_options(mode, sandbox):
    fetch = long_ones(help_options(run_help("fetch")))
    no = {o for o in fetch if o.startswith("--no-")}
    assert len(no) >= 3, fetch
    assert complete(mode, "netlabctl fetch --no-", sandbox) == no
    assert complete(mode, "netlabctl fetch --ou", sandbox) == {"--output="}
    assert complete(mode, "netlabctl --c", sandbox) == {"--config="}


@pytest.mark.parametrize("mode", MODES)
def test_output_and_config_complete_local_files(mode, sandbox):
    work = sandbox[0]
    for name in ("alpha.bin", "alpine.txt", "beta"):
        (work / name).write_text("x")
    (work / "adir").mkdir()
    everything = {"alpha.bin", "alpine.txt", "beta", "adir"}
    for line in ("netlabctl fetch -o ", "netlabctl fetch --output ", "netlabctl fetch --output=",
                 "netlabctl fetch -jo ", "netlabctl fetch some/path -o ",
                 "netlabctl --config ", "netlabctl --config="):
        assert complete(mode, line, sandbox) == everything, line
    for line in ("netlabctl fetch -o al", "netlabctl fetch --output=al", "netlabctl --config al"):
        assert complete(mode, line, sandbox) == {"alpha.bin", "alpine.txt"}, line
    assert complete(mode, "netlabctl fetch -o alpi", sandbox) == {"alpine.txt"}
    # -o's value is not an option even when it starts with "-".
    assert complete(mode, "netlabctl fetch -o -", sandbox) == set()


@pytest.mark.parametrize("mode", MODES)
def test_host_completes_host_names(mode, sandbox):
    for line in ("netlabctl fetch -H netlab-com", "netlabctl send --host netlab-com",
                 "netlabctl echo --host=netlab-com", "netlabctl guess -jH netlab-com"):
        assert complete(mode, line, sandbox) == {"netlab-compl-test"}, line


@pytest.mark.parametrize("mode", MODES)
def test_values_and_operands_get_nothing(mode, sandbox):
    """Numbers, guesses and operands (a message, a remote PATH) complete to
    nothing: not local files, and nothing looked up on a server.  A netlabctl
    first on PATH proves the script never runs the program."""
    work, env = sandbox
    (work / "local-file").write_text("x")
    bindir = work.parent / "bin"
    bindir.mkdir()
    marker = work.parent / "netlabctl-ran"
    fake = bindir / "netlabctl"
    fake.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
    fake.chmod(0o755)
    env = dict(env, PATH=f"{bindir}:{env['PATH']}")
    sandbox = (work, env)

    commands, _ = global_help()
    file_or_host = {"--output=", "--config=", "--host="}
    for c in commands:
        for opt in help_options(run_help(c)) - file_or_host:
            if opt.endswith("="):
                assert complete(mode, f"netlabctl {c} {opt}", sandbox) == set(), (c, opt)
                assert complete(mode, f"netlabctl {c} {opt[:-1]} ", sandbox) == set(), (c, opt)
    for line in ("netlabctl fetch ", "netlabctl fetch lo", "netlabctl ls ", "netlabctl ls -j ",
                 "netlabctl send ", "netlabctl send hello ", "netlabctl echo ",
                 "netlabctl nosuch -"):
        assert complete(mode, line, sandbox) == set(), line
    assert not marker.exists(), "the completion ran netlabctl"


@pytest.mark.parametrize("mode", MODES)
def test_an_option_value_is_not_an_option(mode, sandbox):
    """The word after an option that takes a value is that value even when it
    starts with "-" (nothing here offers it), and after one that does not, the
    options go on."""
    commands, _ = global_help()
    wrong = []
    for c in commands:
        text = run_help(c)
        every = help_options(text)
        for short, long_, value in option_table(text):
            for opt in filter(None, (short, long_)):
                got = complete(mode, f"netlabctl {c} {opt} -", sandbox)
                if got != (set() if value else every):
                    wrong.append(f"{c} {opt} -: {sorted(got)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("mode", MODES)
def test_options_end_where_getopt_ends_them(mode, sandbox):
    # send, echo and guess stop at their first operand (free text follows);
    # fetch and ls take options anywhere, until "--".
    assert complete(mode, "netlabctl send hello -", sandbox) == set()
    assert complete(mode, "netlabctl echo -c 3 hello -", sandbox) == set()
    assert complete(mode, "netlabctl echo -c 3 -", sandbox) == help_options(run_help("echo"))
    assert complete(mode, "netlabctl echo -c3 --re", sandbox) == {"--retries="}
    assert complete(mode, "netlabctl fetch a/b --ud", sandbox) == {"--udp"}
    assert complete(mode, "netlabctl fetch -o out -", sandbox) == help_options(run_help("fetch"))
    assert complete(mode, "netlabctl fetch -- -", sandbox) == set()
    assert complete(mode, "netlabctl ls -- --j", sandbox) == set()
