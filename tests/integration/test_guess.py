"""The guess service (docs/PROTOCOL.md section 10.2) over raw UDP sockets, the
way a person plays it with `nc -u`, and through `netlabctl guess`.

Every exchange goes through Player.send(), which checks the size rule on
every reply: at most 3 times the request, an ERR at most the request, one
LF-terminated line.  Every loop is bounded in count and in time.
"""
import random
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import (NETLABD, REPO, echo_listener, flood_from_sources, free_port, guess_listener, make_config,
                      netlabctl, udp_exchange, wait_entry)

PAD = 176               # NL_GUESS_PAD: netlabctl's request size, a third of the longest reply
REQUEST_MAX = 1024      # NL_GUESS_REQUEST_MAX
VALUE_MAX = 128         # NL_GUESS_VALUE_MAX

EINSTEIN = {"name": "Albert Einstein", "hint": "relativity, E = mc^2, a patent clerk in Bern",
            "aliases": ["Einstein"]}
CURIE = {"name": "Marie Curie", "hint": "two Nobel prizes, radium and polonium", "aliases": ["Curie"]}

# Roomy per-source limits: these tests are about the game, not the guard.
OPEN = {"rate_per_source": 10000, "burst_per_source": 10000}

ROUND = re.compile(r"ROUND id=(?P<id>[0-9a-f]{8}) tries=(?P<tries>[1-9]\d*) "
                   r"(?:range=(?P<lo>-?\d+)\.\.(?P<hi>-?\d+)|hint=(?P<hint>.+))")
END = re.compile(r"(?P<kind>WIN|LOSE)(?: id=(?P<id>[0-9a-f]{8}))? answer=(?P<answer>.+)")
WRONG = re.compile(r"WRONG(?: id=(?P<id>[0-9a-f]{8}))? tries=(?P<tries>[1-9]\d*)(?: (?P<dir>higher|lower))?")
ERR = re.compile(r"ERR (?P<code>\d+)(?: (?P<text>.*))?")


def pad(line, size=PAD, style="hash"):
    """A request datagram: line, then padding to `size` bytes.  style "hash":
    " #...." then LF (how netlabctl pads); "lf": LF then dots (padding after
    the line's end)."""
    line = line.encode() if isinstance(line, str) else line
    if style == "hash":
        out = line + b" #" + b"." * max(0, size - len(line) - 3) + b"\n"
    else:
        out = line + b"\n" + b"." * max(0, size - len(line) - 1)
    assert len(out) == max(size, len(out))
    return out


def check_size_rule(request, reply):
    assert reply.endswith(b"\n") and reply.count(b"\n") == 1, reply
    assert len(reply) <= 3 * len(request), (len(request), reply)
    if reply.startswith(b"ERR"):
        assert len(reply) <= len(request), (len(request), reply)


class Player:
    """One client socket (its own source address and port)."""

    def __init__(self, port, host="127.0.0.1", bind_host="127.0.0.1", bind_port=0):
        self.port = port
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind_host, bind_port))
        self.addr = self.sock.getsockname()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data, timeout=2.0):
        """One datagram out; the reply bytes (size rule checked), or None."""
        self.sock.sendto(data, (self.host, self.port))
        self.sock.settimeout(timeout)
        try:
            reply, src = self.sock.recvfrom(65536)
        except socket.timeout:
            return None
        assert src == (self.host, self.port), src
        check_size_rule(data, reply)
        return reply

    def ask(self, line, size=PAD, style="hash"):
        """A padded request; the reply line without its LF (asserted to come)."""
        reply = self.send(pad(line, size, style))
        assert reply is not None, f"no reply to {line!r}"
        return reply[:-1].decode()

    def play(self, nonce=None):
        line = "play" if nonce is None else f"play nonce={nonce}"
        r = self.ask(line)
        m = ROUND.fullmatch(r)
        assert m, r
        return m

    def no_reply(self, data, timeout=0.5):
        return self.send(data, timeout=timeout) is None


def start_guess(daemon_factory, **extra):
    port = free_port(socket.SOCK_DGRAM)
    keys = dict(OPEN)
    keys.update(extra)
    d = daemon_factory(make_config([guess_listener(port, **keys)]))
    d.port = port
    return d


def round_entries(d, n=0, timeout=10.0):
    """The request entries of ended rounds, once there are at least n."""
    deadline = time.monotonic() + timeout
    while True:
        out = [e for e in d.requests() if e.get("SERVICE") == "guess" and "RESULT" in e]
        if len(out) >= n or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def check_config(tmp_path, text):
    cfg = tmp_path / "check.conf"
    cfg.write_text(text)
    r = subprocess.run([NETLABD, "--check-config", "-c", cfg], capture_output=True, timeout=10)
    return cfg, r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


# ---------------------------------------------------------------------------
# number mode, typed like a person

def test_number_win_typed(daemon_factory):
    d = start_guess(daemon_factory, min=4, max=4)
    with Player(d.port) as p:
        r = p.send(b"play ..............................\n")
        assert r is not None and ROUND.fullmatch(r[:-1].decode()), r
        m = ROUND.fullmatch(r[:-1].decode())
        assert (m["tries"], m["lo"], m["hi"]) == ("1", "4", "4")
        assert p.send(b"guess 4\n") == b"WIN answer=4\n"
        # The round is over.
        assert p.ask("guess 4") == "ERR 4 round over; send play"


def test_number_bare_guess_and_keywords(daemon_factory):
    """A bare value is a guess; keywords are case-insensitive; TAB is a space; CRLF works."""
    d = start_guess(daemon_factory, min=4, max=4)
    with Player(d.port) as p:
        assert p.send(b"PLAY\t.............................\r\n")[:6] == b"ROUND "
        assert p.send(b"4 #...........\n") == b"WIN answer=4\n"
        assert p.send(b"Play ...............................\n")[:6] == b"ROUND "
        assert p.send(b"  GuEsS\t 4  \r\n") == b"WIN answer=4\n"


def test_number_win_or_lose_reveals_answer(daemon_factory):
    """Range 1..2, one try: guessing 1 wins with answer 1 or loses revealing 2.
    Both outcomes turn up within 40 rounds (or the answer is not random)."""
    d = start_guess(daemon_factory, min=1, max=2, attempts=1)
    seen = set()
    with Player(d.port) as p:
        for _ in range(40):
            m = p.play()
            assert (m["tries"], m["lo"], m["hi"]) == ("1", "1", "2")
            r = p.ask("guess 1", size=12)
            assert r in ("WIN answer=1", "LOSE answer=2"), r
            seen.add(r)
            if len(seen) == 2:
                break
    assert seen == {"WIN answer=1", "LOSE answer=2"}


def test_number_wrong_higher_lower_consistent(daemon_factory):
    """attempts = 3 in 1..100: guess 1, then 100, then 50; each WRONG points
    toward the answer the final LOSE reveals (or a WIN names the guess)."""
    d = start_guess(daemon_factory, min=1, max=100, attempts=3)
    with Player(d.port) as p:
        for _ in range(5):
            m = p.play()
            assert (m["tries"], m["lo"], m["hi"]) == ("3", "1", "100")
            hints = []
            end = None
            for tries_left, value in ((2, 1), (1, 100), (0, 50)):
                r = p.ask(f"guess {value}")
                w = WRONG.fullmatch(r)
                if w:
                    assert tries_left > 0, r
                    assert w["tries"] == str(tries_left) and w["id"] is None, r
                    hints.append((value, w["dir"]))
                    continue
                end = END.fullmatch(r)
                assert end and end["id"] is None, r
                break
            if end["kind"] == "WIN":
                assert int(end["answer"]) == value
                continue
            answer = int(end["answer"])
            assert 1 <= answer <= 100 and answer != 50
            assert hints == [(1, "higher"), (100, "lower")], hints
            assert 1 < answer < 100
            return
    pytest.fail("won five rounds in a row by luck?")


def test_number_binary_search_always_wins(daemon_factory):
    """7 tries cover 1..100 when higher/lower are right: every round is won."""
    d = start_guess(daemon_factory, min=1, max=100, attempts=7)
    with Player(d.port) as p:
        for _ in range(10):
            m = p.play(nonce=f"{random.getrandbits(32):08x}")
            rid = m["id"]
            lo, hi = 1, 100
            for left in range(6, -1, -1):
                g = (lo + hi) // 2
                r = p.ask(f"guess id={rid} {g}")
                if r == f"WIN id={rid} answer={g}":
                    break
                w = WRONG.fullmatch(r)
                assert w and w["id"] == rid and w["tries"] == str(left) and w["dir"], r
                if w["dir"] == "higher":
                    lo = g + 1
                else:
                    hi = g - 1
                assert lo <= hi, (lo, hi, r)
            else:
                pytest.fail("binary search lost: higher/lower are wrong")


@pytest.mark.parametrize("value", ["0", "101", "01", "+5", "-0", "-3", "5.0", "five", "1 2", "0x10",
                                   "99999999999", "٣"])
def test_number_bad_value_costs_no_try(daemon_factory, value):
    d = start_guess(daemon_factory, min=1, max=100, attempts=2)
    with Player(d.port) as p:
        p.play()
        assert p.ask(f"guess {value}") == "ERR 1 guess a number from 1 to 100"
        assert p.ask("guess 1") in ("WIN answer=1", "WRONG tries=1 higher")


def test_negative_range(daemon_factory):
    d = start_guess(daemon_factory, min=-3, max=-3)
    with Player(d.port) as p:
        m = p.play()
        assert (m["lo"], m["hi"]) == ("-3", "-3")
        assert p.ask("guess -3") == "WIN answer=-3"


# ---------------------------------------------------------------------------
# person mode

@pytest.mark.parametrize("value", ["Albert Einstein", "albert EINSTEIN", "AlbertEinstein", "einstein",
                                   "EINSTEIN", "  albert \t einstein ", "Albert-Einstein", "'Einstein.'",
                                   "al.bert ein-stein"])
def test_person_win_variants(daemon_factory, value):
    d = start_guess(daemon_factory, mode="person", people=[EINSTEIN])
    with Player(d.port) as p:
        m = p.play()
        assert m["hint"] == EINSTEIN["hint"] and m["tries"] == "1", m.group(0)
        assert p.ask(f"guess {value}") == "WIN answer=Albert Einstein"


@pytest.mark.parametrize("value", ["Marie Curie", "Albert", "Einstein Albert", "Alberto Einstein",
                                   "x" * VALUE_MAX])
def test_person_lose_reveals_answer(daemon_factory, value):
    d = start_guess(daemon_factory, mode="person", people=[EINSTEIN, CURIE] if value == "Marie Curie"
                    else [EINSTEIN])
    with Player(d.port) as p:
        m = p.play()
        if m["hint"] == CURIE["hint"]:  # the round picked the other person
            assert p.ask(f"guess {value}") == "WIN answer=Marie Curie"
            return
        assert m["hint"] == EINSTEIN["hint"]
        assert p.ask(f"guess {value}") == "LOSE answer=Albert Einstein"


def test_person_several_tries(daemon_factory):
    d = start_guess(daemon_factory, mode="person", people=[EINSTEIN], attempts=3)
    with Player(d.port) as p:
        p.play()
        assert p.ask("guess Newton") == "WRONG tries=2"  # no higher/lower for people
        assert p.ask("Bohr") == "WRONG tries=1"
        assert p.ask("guess einstein") == "WIN answer=Albert Einstein"


def test_person_picks_from_the_whole_list(daemon_factory):
    people = [{"name": f"Person {c}", "hint": f"hint for {c}", "aliases": []} for c in "ABC"]
    d = start_guess(daemon_factory, mode="person", people=people)
    hints = set()
    with Player(d.port) as p:
        for _ in range(60):
            hints.add(p.play()["hint"])
            if len(hints) == 3:
                break
    assert hints == {"hint for A", "hint for B", "hint for C"}


# ---------------------------------------------------------------------------
# netlabctl guess

EXIT_OK, EXIT_REFUSED, EXIT_BUSY, EXIT_LOST = 0, 4, 5, 12  # netlabctl guess --help, netlabctl(1)


@pytest.fixture
def ctl_guess_daemon(daemon_factory):
    """A number listener (4..4), a person listener (Einstein) and a number
    listener whose one-round table a test can fill."""
    ports = [free_port(socket.SOCK_DGRAM) for _ in range(3)]
    d = daemon_factory(make_config([
        guess_listener(ports[0], min=4, max=4, **OPEN),
        guess_listener(ports[1], name="people", mode="person", people=[EINSTEIN], attempts=2, **OPEN),
        guess_listener(ports[2], name="small", min=1, max=100, attempts=3, max_rounds=1, **OPEN)]))
    d.number_port, d.person_port, d.small_port = ports
    return d


def ctl_guess(port, *values, ini):
    args = ["guess", "-H", "127.0.0.1", "-p", port]
    for v in values:
        args += ["--guess", v]
    return netlabctl(*args, ini=ini)


def test_netlabctl_guess_win(ctl_guess_daemon, ctl_ini):
    d = ctl_guess_daemon
    r = ctl_guess(d.number_port, "4", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    r = ctl_guess(d.person_port, "EINSTEIN", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    assert b"Albert Einstein" in r.stdout
    # A wrong guess first, then the right one: the second try wins.
    r = ctl_guess(d.person_port, "Newton", "albert einstein", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr


def test_netlabctl_guess_lose(ctl_guess_daemon, ctl_ini):
    d = ctl_guess_daemon
    r = ctl_guess(d.person_port, "Marie Curie", "Niels Bohr", ini=ctl_ini)
    assert r.returncode == EXIT_LOST, r
    assert b"Albert Einstein" in r.stdout + r.stderr  # the answer is revealed
    # The guesses run out before the tries do: a loss too.
    r = ctl_guess(d.person_port, "Marie Curie", ini=ctl_ini)
    assert r.returncode == EXIT_LOST, r
    time.sleep(0.2)
    ends = [e["RESULT"] for e in round_entries(d, 1)]
    assert ends == ["lose"], ends  # the unfinished round is not an ending


def test_netlabctl_guess_refused_and_busy(ctl_guess_daemon, ctl_ini):
    d = ctl_guess_daemon
    # Out of the range: the server's ERR 1, a refusal, not a loss.
    r = ctl_guess(d.number_port, "7", ini=ctl_ini)
    assert r.returncode == EXIT_REFUSED, r
    assert b"guess a number from 4 to 4" in r.stderr, r.stderr
    # The one-round table is held by another player: busy.
    with Player(d.small_port) as p:
        p.play()
        r = ctl_guess(d.small_port, "50", ini=ctl_ini)
    assert r.returncode == EXIT_BUSY, r
    assert b"busy" in r.stderr, r.stderr


def test_netlabctl_guess_three_tries(ctl_guess_daemon, ctl_ini):
    r = ctl_guess(ctl_guess_daemon.small_port, "1", "100", "50", ini=ctl_ini)
    assert r.returncode in (EXIT_OK, EXIT_LOST), r
    ends = [e["RESULT"] for e in round_entries(ctl_guess_daemon, 1)]
    assert ends == ["win" if r.returncode == EXIT_OK else "lose"], ends


# ---------------------------------------------------------------------------
# the size rule

LONG_HINT = "h" * 300  # makes a person-mode ROUND reply about 330 bytes


def test_short_play_is_told_how_much_to_pad(daemon_factory):
    d = start_guess(daemon_factory, mode="person",
                    people=[{"name": "Ada Lovelace", "hint": LONG_HINT, "aliases": []}])
    with Player(d.port) as p:
        # Under 6 bytes: not even "ERR 1\n" fits, so nothing comes back.
        assert p.no_reply(b"play\n")
        # Room for "ERR 1\n" but not for "ERR 1 pad to N\n".
        assert p.send(pad("play", 10)) == b"ERR 1\n"
        r = p.ask("play", size=20)
        m = re.fullmatch(r"ERR 1 pad to (\d+)", r)
        assert m, r
        n = int(m[1])
        # Nothing started: a guess has no round.
        assert p.ask("guess x") == "ERR 4 no round; send play"
        # One byte short of N is still refused; N itself works.
        assert p.ask("play", size=n - 1) == r
        reply = p.send(pad("play", n))
        assert reply is not None and reply.startswith(b"ROUND ") and LONG_HINT.encode() in reply, reply
        assert 3 * (n - 1) < len(reply) <= 3 * n
        # The same with padding after the LF.
        assert p.ask("play", size=n, style="lf").startswith("ROUND ")


def test_win_reply_needs_padding_too(daemon_factory):
    """A bare "4\\n" deserves "WIN answer=4\\n" (13 bytes > 3 * 2) and gets nothing:
    no try is used, so the padded guess still wins."""
    d = start_guess(daemon_factory, min=4, max=4)
    with Player(d.port) as p:
        p.play()
        assert p.no_reply(b"4\n")
        assert p.send(b"4 #..\n") == b"WIN answer=4\n"


@pytest.mark.parametrize("data", [b"", b"\n", b"x", b"play", b"play\n", b"\xff\xfe", b"guess", b"#####",
                                  b"\x00" * 5])
def test_tiny_datagrams_get_no_reply(daemon_factory, data):
    d = start_guess(daemon_factory)
    with Player(d.port) as p:
        assert p.no_reply(data)
        # Still serving.
        assert p.play()


@pytest.mark.parametrize("size, reply", [(5, None), (6, b"ERR 4\n"), (25, b"ERR 4\n"),
                                         (26, b"ERR 4 no round; send play\n"),
                                         (100, b"ERR 4 no round; send play\n")])
def test_err_text_cut_to_request_size(daemon_factory, size, reply):
    """The full refusal, "ERR 4 no round; send play" and LF, is 26 bytes: a
    smaller request gets the bare "ERR 4" line, one under 6 bytes nothing."""
    d = start_guess(daemon_factory)
    with Player(d.port) as p:
        data = b"3\n" + b"." * (size - 2)
        assert p.send(data, timeout=0.5 if reply is None else 2.0) == reply


# ---------------------------------------------------------------------------
# retransmissions

def test_play_with_same_nonce_is_idempotent(daemon_factory):
    d = start_guess(daemon_factory, min=1, max=6, attempts=2)
    with Player(d.port) as p:
        first = p.send(pad("play nonce=5c0ffee1"))
        again = p.send(pad("play nonce=5c0ffee1"))
        assert first == again and first.startswith(b"ROUND id="), (first, again)
        rid = ROUND.fullmatch(first[:-1].decode())["id"]
        # Another nonce: a new round.
        other = p.play(nonce="5c0ffee2")
        assert other["id"] != rid
        # Once a guess was made, the same nonce starts a new round.
        p.ask(f"guess id={other['id']} 1")
        fresh = p.play(nonce="5c0ffee2")
        assert fresh["id"] != other["id"]
        # Without a nonce every play is a new round.
        assert p.play()["id"] != p.play()["id"]


def test_guess_with_id_is_idempotent(daemon_factory):
    """attempts = 3 in 1..100: guess 50 (twice: one try), then two values the
    first hint proves wrong; the LOSE comes back the same when repeated."""
    d = start_guess(daemon_factory, min=1, max=100, attempts=3)
    with Player(d.port) as p:
        for _ in range(5):
            rid = p.play(nonce="00000001")["id"]
            first = p.ask(f"guess id={rid} 50")
            if first.startswith("WIN"):
                continue
            w = WRONG.fullmatch(first)
            assert w and w["id"] == rid and w["tries"] == "2" and w["dir"], first
            # A retransmitted guess gets the same WRONG and costs no try.
            assert p.ask(f"guess id={rid} 50") == first
            wrong2, wrong3 = ("1", "2") if w["dir"] == "higher" else ("100", "99")
            assert p.ask(f"guess id={rid} {wrong2}") == f"WRONG id={rid} tries=1 {w['dir']}"
            end = p.ask(f"guess id={rid} {wrong3}")
            m = END.fullmatch(end)
            assert m and m["kind"] == "LOSE" and m["id"] == rid, end
            answer = int(m["answer"])
            assert (answer > 50) if w["dir"] == "higher" else (answer < 50), (first, end)
            # After the end: the same guess gets the same answer, twice.
            assert p.ask(f"guess id={rid} {wrong3}") == end
            assert p.ask(f"guess id={rid} {wrong3}") == end
            # A different value, or no id, is a guess in a round that is over.
            assert p.ask(f"guess id={rid} {wrong2}") == "ERR 4 round over; send play"
            assert p.ask(f"guess {wrong3}") == "ERR 4 round over; send play"
            return
    pytest.fail("won every round by luck?")


def test_guess_without_id_always_counts(daemon_factory):
    """A person typing the same guess twice uses two tries."""
    d = start_guess(daemon_factory, min=1, max=100, attempts=3)
    with Player(d.port) as p:
        for _ in range(5):
            p.play()
            first = p.ask("guess 50")
            if first.startswith("WIN"):
                continue
            assert first in ("WRONG tries=2 higher", "WRONG tries=2 lower"), first
            assert p.ask("guess 50") == first.replace("tries=2", "tries=1")
            assert END.fullmatch(p.ask("guess 50"))["kind"] == "LOSE"
            return
    pytest.fail("won every round by luck?")


def test_ids_only_when_asked(daemon_factory):
    """WIN, LOSE and WRONG carry id= exactly when the request did."""
    d = start_guess(daemon_factory, min=4, max=4, attempts=2)
    with Player(d.port) as p:
        rid = p.play()["id"]
        assert p.ask("guess 5") == "ERR 1 guess a number from 4 to 4"
        assert p.ask(f"guess id={rid} 4") == f"WIN id={rid} answer=4"
        rid = p.play()["id"]
        assert p.ask("guess 4") == "WIN answer=4"
        rid = p.play()["id"]
        assert p.ask(f"guess id={rid.upper()} 4") == f"WIN id={rid} answer=4"


# ---------------------------------------------------------------------------
# rounds: expiry, ownership, the table

def test_expired_round(daemon_factory):
    d = start_guess(daemon_factory, round_timeout=1, attempts=3)
    with Player(d.port) as p:
        rid = p.play()["id"]
        time.sleep(1.5)
        assert p.ask("guess 3") == "ERR 6 round expired; send play"
        assert p.ask(f"guess id={rid} 3") == "ERR 6 round expired; send play"
        # A new play works.
        assert p.play()["id"] != rid


def test_ended_round_expires_too(daemon_factory):
    """A retransmitted guess gets the same WIN only until the round expires."""
    d = start_guess(daemon_factory, min=4, max=4, round_timeout=1)
    with Player(d.port) as p:
        rid = p.play()["id"]
        assert p.ask(f"guess id={rid} 4") == f"WIN id={rid} answer=4"
        time.sleep(1.5)
        assert p.ask(f"guess id={rid} 4") == "ERR 6 round expired; send play"


def test_guard_in_front_of_guess(daemon_factory):
    """The guard runs before the game: a blocked source port gets nothing, and
    a datagram over the source's rate gets nothing and changes nothing (no
    try is used)."""
    d = start_guess(daemon_factory, min=1, max=100, attempts=3, rate_per_source=1, burst_per_source=2)
    try:
        blocked = Player(d.port, bind_host="127.0.0.3", bind_port=19)
    except OSError as e:
        pytest.skip(f"cannot bind udp 127.0.0.3:19: {e}")
    with blocked:
        assert blocked.no_reply(pad("play"))
    with Player(d.port) as p:
        for _ in range(5):
            time.sleep(2.1)  # a full bucket: 2 requests
            p.play()
            first = p.ask("guess 50")
            if first.startswith("WIN"):
                continue
            assert first in ("WRONG tries=2 higher", "WRONG tries=2 lower"), first
            wrong = "1" if first.endswith("higher") else "100"
            assert p.no_reply(pad(f"guess {wrong}"), timeout=0.3)  # over the rate: dropped
            time.sleep(1.1)
            assert p.ask(f"guess {wrong}") == f"WRONG tries=1 {first.split()[-1]}"
            return
    pytest.fail("won every round by luck?")


def test_unknown_rounds(daemon_factory):
    d = start_guess(daemon_factory, min=4, max=4)
    with Player(d.port) as p, Player(d.port) as q:
        assert p.ask("guess 3") == "ERR 4 no round; send play"
        assert p.ask("4") == "ERR 4 no round; send play"
        rid = p.play()["id"]
        wrong = "00000000" if rid != "00000000" else "00000001"
        assert p.ask(f"guess id={wrong} 4") == "ERR 4 unknown round"
        # The round belongs to the source address and port: another port has none.
        assert q.ask("guess 4") == "ERR 4 no round; send play"
        assert q.ask(f"guess id={rid} 4") in ("ERR 4 no round; send play", "ERR 4 unknown round")
        # The unknown ids cost nothing: the owner still wins.
        assert p.ask(f"guess id={rid} 4") == f"WIN id={rid} answer=4"
        assert p.ask("guess 4") == "ERR 4 round over; send play"


def test_later_play_replaces_the_round(daemon_factory):
    d = start_guess(daemon_factory, min=4, max=4)
    with Player(d.port) as p:
        old = p.play()["id"]
        new = p.play()["id"]
        assert old != new
        assert p.ask(f"guess id={old} 4") == "ERR 4 unknown round"
        assert p.ask(f"guess id={new} 4") == f"WIN id={new} answer=4"


def test_full_table_refuses_new_rounds_and_keeps_live_ones(daemon_factory):
    d = start_guess(daemon_factory, min=4, max=4, max_rounds=8)
    players = [Player(d.port) for _ in range(9)]
    try:
        ids = [p.play()["id"] for p in players[:8]]
        assert len(set(ids)) == 8
        assert players[8].ask("play") == "ERR 3 busy, try again later"
        assert players[8].ask("guess 4") == "ERR 4 no round; send play"
        # A source that has a round may replace it even when the table is full.
        ids[0] = players[0].play()["id"]
        # No live round was evicted.
        for p, rid in zip(players[:8], ids):
            assert p.ask(f"guess id={rid} 4") == f"WIN id={rid} answer=4"
    finally:
        for p in players:
            p.close()


# ---------------------------------------------------------------------------
# malformed requests

@pytest.mark.parametrize("data, reply", [
    (pad("play", REQUEST_MAX + 1), b"ERR 2 request too long\n"),
    (b"x" * 4000, b"ERR 2 request too long\n"),
    (pad(b"play \xff\xfe"), b"ERR 1 not text\n"),
    (pad(b"guess \xc3\x28"), b"ERR 1 not text\n"),
    (pad(b"guess \xed\xa0\x80"), b"ERR 1 not text\n"),  # a surrogate
    (pad(b"gu\x00ess 3"), b"ERR 1 not text\n"),
    (pad(b"guess 3\x1b[0m"), b"ERR 1 not text\n"),
    (pad(b"guess \x7f"), b"ERR 1 not text\n"),
    (pad(b"guess \xc2\x85"), b"ERR 1 not text\n"),  # C1 control
    (pad(b"play\rnow"), b"ERR 1 not text\n"),
    (pad(""), b"ERR 1 empty; send play\n"),
    (pad("   \t "), b"ERR 1 empty; send play\n"),
    (b"#" + b"." * 40, b"ERR 1 empty; send play\n"),
    (pad("guess"), b"ERR 1 bad request\n"),
    (pad("guess   "), b"ERR 1 bad request\n"),
    (pad("guess id=12345678"), b"ERR 1 bad request\n"),
    (pad("guess id=1234567 3"), b"ERR 1 bad request\n"),
    (pad("guess id=12345678z 3"), b"ERR 1 bad request\n"),
    (pad("guess id=zzzzzzzz 3"), b"ERR 1 bad request\n"),
    (pad("guess " + "v" * (VALUE_MAX + 1)), b"ERR 1 bad request\n"),
    (pad("play nonce=xyz"), b"ERR 1 bad request\n"),
    (pad("play nonce=123456789"), b"ERR 1 bad request\n"),
    (pad("play nonce="), b"ERR 1 bad request\n"),
], ids=["1025-bytes", "4000-bytes", "not-utf8", "bad-utf8-pair", "surrogate", "nul", "escape", "del", "c1",
        "lone-cr", "empty", "spaces-only", "hash-only", "guess-no-value", "guess-spaces", "id-no-value",
        "id-7-digits", "id-9-chars", "id-not-hex", "value-129", "nonce-not-hex", "nonce-9-digits",
        "nonce-empty"])
def test_malformed(daemon_factory, data, reply):
    d = start_guess(daemon_factory)
    with Player(d.port) as p:
        assert p.send(data) == reply
        # Nothing started.
        assert p.ask("guess 3") == "ERR 4 no round; send play"


@pytest.mark.parametrize("data", [
    pad("play", REQUEST_MAX),                    # exactly the largest request
    b"play #\xff\xfe\x00\x01\x1b" + b"." * 40 + b"\n",  # padding is never read
    b"play\n\xff\x00\xc3" + b"." * 40,
    pad("play these dots are ignored ............"),
    pad("play nonce=DEADBEEF"),                  # hex in either case
])
def test_accepted_plays(daemon_factory, data):
    d = start_guess(daemon_factory)
    with Player(d.port) as p:
        r = p.send(data)
        assert r is not None and ROUND.fullmatch(r[:-1].decode()), r


# ---------------------------------------------------------------------------
# many players

def test_ten_concurrent_players(daemon_factory):
    """Ten threads, each its own address and socket, play 5 rounds each by
    binary search (7 tries cover 1..100): every round ends in WIN."""
    d = start_guess(daemon_factory, min=1, max=100, attempts=7)
    results, errors = {}, []

    def player(i):
        try:
            with Player(d.port, bind_host=f"127.0.0.{10 + i}") as p:
                wins, ids = 0, []
                for r_ in range(5):
                    rid = p.play(nonce=f"{i:04x}{r_:04x}")["id"]
                    ids.append(rid)
                    lo, hi = 1, 100
                    for _ in range(7):
                        g = (lo + hi) // 2
                        r = p.ask(f"guess id={rid} {g}")
                        if r == f"WIN id={rid} answer={g}":
                            wins += 1
                            break
                        w = WRONG.fullmatch(r)
                        assert w and w["id"] == rid, r
                        lo, hi = (g + 1, hi) if w["dir"] == "higher" else (lo, g - 1)
                results[i] = (wins, ids)
        except BaseException as e:  # reported by the main thread
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=player, args=(i,), daemon=True) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert sorted(results) == list(range(10))
    assert all(w == 5 for w, _ in results.values()), results
    all_ids = [rid for _, ids in results.values() for rid in ids]
    assert len(set(all_ids)) == len(all_ids)


def test_flood_of_plays_keeps_memory_bounded(daemon_factory):
    """3000 sources (127.3.x.y, a socket each) send a padded play against
    max_rounds = 16: RSS stays flat, a newcomer gets ERR 3 while the rounds
    live, and a round again once they expired."""
    d = start_guess(daemon_factory, max_rounds=16, round_timeout=2)
    with Player(d.port) as p:
        assert p.play()
    before = d.rss_kib()
    flood_from_sources(d.port, "127.3", lambda k: pad(f"play nonce={k:08x}", 64))
    time.sleep(0.3)
    after = d.rss_kib()
    assert after - before <= 4096, (before, after)
    with Player(d.port, bind_host="127.4.0.1") as p:
        assert p.ask("play") == "ERR 3 busy, try again later"
        time.sleep(2.5)
        assert p.play()


# ---------------------------------------------------------------------------
# logging

def test_rounds_are_logged(daemon_factory):
    d = start_guess(daemon_factory, min=1, max=2)
    outcomes = {}
    with Player(d.port) as p:
        port = p.addr[1]
        for _ in range(40):
            p.play()
            r = p.ask("guess 1")
            outcomes.setdefault(r.split()[0], 0)
            outcomes[r.split()[0]] += 1
            if len(outcomes) == 2:
                break
        # Refusals and unfinished rounds are not round entries.
        p.play()
        p.ask("guess 9")
    n = sum(outcomes.values())
    round_entries(d, n)
    time.sleep(0.2)
    entries = round_entries(d)
    assert len(entries) == n, d.log()[-3000:]
    assert sorted(e["RESULT"] for e in entries) == sorted(
        "win" if k == "WIN" else "lose" for k, v in outcomes.items() for _ in range(v))
    for e in entries:
        assert (e["LISTENER"], e["SERVICE"], e["REMOTE_ADDR"], e["REMOTE_PORT"]) == (
            "guess", "guess", "127.0.0.1", str(port)), e
        assert int(e["BYTES_IN"]) > 0 and int(e["BYTES_OUT"]) > 0, e
    assert wait_entry(d, port)["SERVICE"] == "guess"


def test_round_entry_duration_and_bytes(daemon_factory):
    """DURATION_USEC runs from the play to the end of the round; the bytes
    are the round's requests and replies."""
    d = start_guess(daemon_factory, min=4, max=4, attempts=2)
    with Player(d.port) as p:
        play = pad("play", 40)
        r1 = p.send(play)
        time.sleep(0.3)
        g1, g2 = pad("guess 5", 40), pad("guess 4", 30)
        r2, r3 = p.send(g1), p.send(g2)
        assert r2 == b"ERR 1 guess a number from 4 to 4\n" and r3 == b"WIN answer=4\n", (r2, r3)
        e = wait_entry(d, p.addr[1])
    assert e["RESULT"] == "win"
    assert int(e["DURATION_USEC"]) >= 300_000, e
    # At least the winning guess and its reply are counted.
    assert len(g2) <= int(e["BYTES_IN"]) <= len(play) + len(g1) + len(g2), e
    assert len(r3) <= int(e["BYTES_OUT"]) <= len(r1) + len(r2) + len(r3), e


def guess_aggregates(d, listener="guess"):
    """The bracketed fields of a listener's aggregate entries (ints)."""
    out = []
    for line in d.log().splitlines():
        m = re.search(r"\[(EVENT=datagrams .*)\]$", line)
        if m:
            e = dict(kv.split("=", 1) for kv in m[1].split(" "))
            if e["LISTENER"] == listener:
                out.append({k: int(v) if v.isdigit() else v for k, v in e.items()})
    return out


def test_round_entries_are_rate_limited(daemon_factory):
    """At most 50 round entries per second per listener; the rest are counted
    as SUPPRESSED in the aggregate entry (written at the latest when the
    listener is freed at stop)."""
    d = start_guess(daemon_factory, min=4, max=4)
    n = 150
    with Player(d.port) as p:
        t0 = time.monotonic()
        for _ in range(n):
            p.play()
            assert p.ask("guess 4") == "WIN answer=4"
        elapsed = time.monotonic() - t0
    assert d.stop() == 0
    logged = len(round_entries(d))
    assert 50 <= logged <= 50 * (int(elapsed) + 2), (logged, elapsed)
    agg = guess_aggregates(d)
    assert agg, d.log()[-3000:]
    assert sum(a["SUPPRESSED"] for a in agg) == n - logged, agg
    # Counted from the interval's first event (the first suppressed entry) on.
    assert 0 < sum(a["REPLIES"] for a in agg) <= 2 * n, agg
    assert any(f"; {n - logged} request entries not logged" in l for l in d.log().splitlines()) or len(agg) > 1


def test_reload_keeps_rounds_in_play(daemon_factory):
    """A reload that keeps the listener keeps its socket and the rounds whose
    answer still exists; a switch of mode drops them."""
    port = free_port(socket.SOCK_DGRAM)
    d = daemon_factory(make_config([guess_listener(port, min=4, max=4, attempts=3, **OPEN)]))
    with Player(port) as p, Player(port) as q:
        rid = p.play(nonce="0000beef")["id"]
        qid = q.play()["id"]
        assert q.ask(f"guess id={qid} 5") == "ERR 1 guess a number from 4 to 4"
        d.reload(make_config([guess_listener(port, min=1, max=6, attempts=3, round_timeout=60, **OPEN)]))
        assert p.ask(f"guess id={rid} 4") == f"WIN id={rid} answer=4"
        assert q.ask(f"guess id={qid} 4") == f"WIN id={qid} answer=4"
        rid = p.play()["id"]
        d.reload(make_config([guess_listener(port, mode="person", people=[EINSTEIN], **OPEN)]))
        assert p.ask(f"guess id={rid} 4") == "ERR 4 no round; send play"
        assert p.play()["hint"] == EINSTEIN["hint"]


# ---------------------------------------------------------------------------
# config

def listener_error(cfg, err, name="guess", line=4):
    return re.search(rf"^{re.escape(str(cfg))}:{line}: listener '{name}': .*", err, re.M)


def test_guess_config_accepts_every_key(tmp_path):
    text = make_config([guess_listener(9, mode="number", min=1, max=6, attempts=1, round_timeout=120,
                                       max_rounds=4096, rate_per_source=100),
                        guess_listener(10, name="people", mode="person", people=[EINSTEIN, CURIE])])
    cfg, rc, out, err = check_config(tmp_path, text)
    assert (rc, err) == (0, ""), err
    assert out == f"{cfg}: ok, 2 listener(s)\n"


@pytest.mark.parametrize("extra, mentions", [
    ({"mode": "person"}, "people"),
    ({"mode": "person", "people": []}, "people"),
    ({"mode": "person", "people": [EINSTEIN, dict(EINSTEIN, hint="again")]}, "Albert Einstein"),
    ({"mode": "person", "people": [{"name": "Nohint", "aliases": []}]}, "hint"),
    ({"mode": "person", "people": [{"name": "", "hint": "empty name", "aliases": []}]}, "name"),
    ({"mode": "bogus"}, "mode"),
    ({"min": 7, "max": 6}, "min"),
    ({"attempts": 0}, "attempts"),
    ({"max_rounds": 0}, "max_rounds"),
    ({"round_timeout": 0}, "round_timeout"),
    ({"colour": "red"}, "colour"),
], ids=["person-no-people", "person-empty-people", "duplicate-name", "no-hint", "empty-name", "bad-mode",
        "min-over-max", "attempts-0", "max-rounds-0", "round-timeout-0", "unknown-key"])
def test_guess_config_errors(tmp_path, extra, mentions):
    cfg, rc, _, err = check_config(tmp_path, make_config([guess_listener(9, **extra)]))
    assert rc == 1, err
    m = listener_error(cfg, err)
    assert m and mentions in m.group(0), err


def test_guess_keys_refused_on_echo(tmp_path):
    cfg, rc, _, err = check_config(tmp_path, make_config([echo_listener(9, mode="number")]))
    assert rc == 1
    assert listener_error(cfg, err, name="echo"), err


def test_shipped_config_has_echo_and_guess_and_passes(tmp_path):
    shipped = REPO / "conf" / "netlabd.conf"
    text = shipped.read_text()
    assert re.search(r'service\s*=\s*"echo"', text), "conf/netlabd.conf has no echo listener"
    assert re.search(r'service\s*=\s*"guess"', text), "conf/netlabd.conf has no guess listener"
    r = subprocess.run([NETLABD, "--check-config", "-c", shipped], capture_output=True, timeout=10,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""


def test_udp_exchange_helper(daemon_factory):
    """conftest.udp_exchange: one datagram from a fresh socket, its reply."""
    d = start_guess(daemon_factory, min=4, max=4)
    r = udp_exchange(d.port, pad("play"))
    assert r is not None and r.startswith(b"ROUND id=") and r.endswith(b" range=4..4\n")
    assert udp_exchange(d.port, b"play\n", timeout=0.3) is None
