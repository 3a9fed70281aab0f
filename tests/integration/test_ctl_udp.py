"""netlabctl echo and guess (cli/cmd-echo.c, cli/cmd-guess.c, cli/udp.c).

The servers are python threads on 127.0.0.1 ephemeral ports, stopped at
teardown, every loop bounded in count and time: a lab-style echo server (one
recvfrom of 512 bytes, sendto back), servers that alter, drop, delay or never
answer, a closed port (ICMP port unreachable), and a guess server speaking
docs/PROTOCOL.md 10.2 with knobs for every misbehaviour the client must
handle.  A few tests at the end run against the real netlabd when it has the
echo and guess services.
"""
import json
import os
import pty
import re
import secrets
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import NETLABCTL, NETLABD, free_port, make_config, netlabctl

EXIT_OK, EXIT_USAGE, EXIT_CONNECT, EXIT_REFUSED, EXIT_BUSY, EXIT_PROTOCOL, EXIT_TIMEOUT = 0, 2, 3, 4, 5, 6, 7
EXIT_LOSS, EXIT_LOST = 11, 12
GUESS_PAD = 176


# ---------------------------------------------------------------------------
# fake servers

class UdpServer:
    """A UDP server on 127.0.0.1 in a thread.  handler(server, data) returns
    the replies to send back (a list of bytes); it runs in the server thread.
    bufsize is what one recvfrom takes (the lab's server: 512).  Stops by
    itself after `lifetime` seconds or max_datagrams datagrams."""

    def __init__(self, handler, bufsize=65535, lifetime=60.0, max_datagrams=100_000, family=socket.AF_INET,
                 host="127.0.0.1"):
        self.handler = handler
        self.bufsize = bufsize
        self.received = []
        self.stopping = threading.Event()
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.deadline = time.monotonic() + lifetime
        self.max_datagrams = max_datagrams
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set() and time.monotonic() < self.deadline \
                and len(self.received) < self.max_datagrams:
            try:
                data, addr = self.sock.recvfrom(self.bufsize)
            except socket.timeout:
                continue
            except OSError:
                break
            self.received.append(data)
            for reply in self.handler(self, data) or []:
                try:
                    self.sock.sendto(reply, addr)
                except OSError:
                    pass

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def udp_server():
    made = []

    def make(handler, **kw):
        s = UdpServer(handler, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def echo_back(server, data):
    return [data]


def lab_echo(make):
    """The lab sheet's server_udp.c: recvfrom(512), sendto the same bytes."""
    return make(echo_back, bufsize=512)


def closed_port():
    """A UDP port on 127.0.0.1 where nothing listens (ICMP port unreachable)."""
    return free_port(socket.SOCK_DGRAM)


class GuessServer:
    """docs/PROTOCOL.md 10.2, enough of it for the client, with knobs:
      mode "number" (lo..hi) or "person" (hint, names; answer = names[0]);
      drop: indexes of datagrams (0 = the first) to ignore, as if lost;
      play_err / guess_err: reply this ERR line instead;
      dup: answer every request twice;
      reply_override: {datagram index: raw reply bytes}."""

    def __init__(self, mode="number", lo=1, hi=6, tries=3, answer="4", hint="E = mc^2, 1905",
                 names=("Albert Einstein", "Einstein"), drop=(), play_err=None, guess_err=None, dup=False,
                 reply_override=None):
        self.mode, self.lo, self.hi, self.tries, self.answer = mode, lo, hi, tries, answer
        self.hint, self.names = hint, names
        self.drop, self.play_err, self.guess_err, self.dup = set(drop), play_err, guess_err, dup
        self.reply_override = reply_override or {}
        self.round = None  # dict: id, nonce, left, last, last_reply, over
        self.n = 0

    @staticmethod
    def line(data):
        text = data.split(b"\n", 1)[0].split(b"#", 1)[0]
        return text.decode().strip()

    @staticmethod
    def fold(name):
        return "".join(c for c in name.lower() if c not in " \t.-'")

    def handle(self, server, data):
        i = self.n
        self.n += 1
        if i in self.drop:
            return []
        reply = self.answer_to(data)
        if i in self.reply_override:
            reply = self.reply_override[i]
        if reply is None:
            return []
        return [reply, reply] if self.dup else [reply]

    def answer_to(self, data):
        words = self.line(data).split()
        if words and words[0].lower() == "play":
            if self.play_err:
                return self.play_err
            nonce = next((w[6:] for w in words[1:] if w.lower().startswith("nonce=")), None)
            r = self.round
            if not (r and nonce and r["nonce"] == nonce and r["last"] is None):
                r = self.round = {"id": secrets.token_hex(4), "nonce": nonce, "left": self.tries, "last": None,
                                  "last_reply": None, "over": False}
            if self.mode == "number":
                return f"ROUND id={r['id']} tries={self.tries} range={self.lo}..{self.hi}\n".encode()
            return f"ROUND id={r['id']} tries={self.tries} hint={self.hint}\n".encode()
        if self.guess_err:
            return self.guess_err
        r = self.round
        if not words or words[0].lower() != "guess" or r is None:
            return b"ERR 4 no round; send play\n"
        rest = words[1:]
        rid = None
        if rest and rest[0].lower().startswith("id="):
            rid = rest[0][3:]
            rest = rest[1:]
        if rid is not None and rid != r["id"]:
            return b"ERR 4 unknown round\n"
        value = " ".join(rest)
        idp = f" id={rid}" if rid else ""
        if value == r["last"] and r["last_reply"]:
            return r["last_reply"]
        if r["over"]:
            return b"ERR 4 round over; send play\n"
        if self.mode == "number":
            if not re.fullmatch(r"-?(0|[1-9][0-9]*)", value) or not self.lo <= int(value) <= self.hi:
                return f"ERR 1 guess a number from {self.lo} to {self.hi}\n".encode()
            right = int(value) == int(self.answer)
            answer = self.answer
        else:
            right = any(self.fold(value) == self.fold(n) for n in self.names)
            answer = self.names[0]
        r["left"] -= 1
        r["last"] = value
        if right:
            reply = f"WIN{idp} answer={answer}\n"
            r["over"] = True
        elif r["left"] == 0:
            reply = f"LOSE{idp} answer={answer}\n"
            r["over"] = True
        else:
            direction = ""
            if self.mode == "number":
                direction = " higher" if int(self.answer) > int(value) else " lower"
            reply = f"WRONG{idp} tries={r['left']}{direction}\n"
        r["last_reply"] = reply.encode()
        return r["last_reply"]


@pytest.fixture
def guess_server(udp_server):
    def make(**kw):
        g = GuessServer(**kw)
        s = udp_server(g.handle)
        s.game = g
        return s
    return make


def echo(port, *args, ini, **kw):
    return netlabctl("echo", "-H", "127.0.0.1", "-p", port, *args, ini=ini, **kw)


def guess(port, *args, ini, **kw):
    return netlabctl("guess", "-H", "127.0.0.1", "-p", port, *args, ini=ini, **kw)


def pattern(size, seq=1):
    """What `echo -s SIZE` sends: a..z repeated, the first 15 bytes
    "seq=NNNNNNNNNN " from 15 bytes on."""
    fill = bytes((ord("a") + i % 26) for i in range(size))
    if size >= 15:
        return b"seq=%010d " % seq + fill[15:]
    return fill


# ---------------------------------------------------------------------------
# echo: one datagram

def test_echo_text_round_trip(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "hello", "world", ini=ctl_ini)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"hello world\n", b"")
    assert s.received == [b"hello world"]  # no terminator, like the lab's client


@pytest.mark.parametrize("size, bufsize", [(0, 512), (1, 512), (14, 512), (15, 512), (512, 512),
                                           (1472, 65535), (65507, 65535)])
def test_echo_sizes(udp_server, ctl_ini, size, bufsize):
    s = udp_server(echo_back, bufsize=bufsize)
    r = echo(s.port, "-s", size, "--json", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    j = json.loads(r.stdout)
    assert (j["status"], j["exit_code"], j["sent"], j["received"], j["altered"]) == ("ok", 0, 1, 1, 0)
    (rep,) = j["replies"]
    assert (rep["bytes_sent"], rep["bytes"], rep["altered"], rep["attempts"]) == (size, size, False, 1)
    assert s.received == [pattern(size)]
    assert rep["reply"] == pattern(size).decode()


def test_echo_size_prints_reply(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "-s", 40, ini=ctl_ini)
    assert (r.returncode, r.stdout, r.stderr) == (0, pattern(40) + b"\n", b"")


def test_echo_lab_server_truncates_1000_bytes(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "-s", 1000, ini=ctl_ini)
    assert r.returncode == EXIT_LOSS
    assert r.stdout == pattern(1000)[:512] + b"\n"
    assert r.stderr == (f"netlabctl: the reply from 127.0.0.1 port {s.port} was altered: cut short: "
                        f"512 of the 1000 bytes sent came back\n").encode()


def test_echo_lab_server_truncates_json(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "-s", 513, "-j", ini=ctl_ini)
    assert r.returncode == EXIT_LOSS
    j = json.loads(r.stdout)
    assert (j["status"], j["exit_code"], j["altered"]) == ("altered", EXIT_LOSS, 1)
    assert (j["replies"][0]["bytes_sent"], j["replies"][0]["bytes"]) == (513, 512)


@pytest.mark.parametrize("alter, how", [
    (lambda d: d.upper(), "differs from byte 0 on (5 bytes sent, 5 came back)"),
    (lambda d: d[:3] + b"X" + d[4:], "differs from byte 3 on (5 bytes sent, 5 came back)"),
    (lambda d: d + b"!!", "7 bytes came back for 5 sent, the extra ones appended"),
    (lambda d: b"", "cut short: 0 of the 5 bytes sent came back"),
])
def test_echo_altered_reply(udp_server, ctl_ini, alter, how):
    s = udp_server(lambda srv, d: [alter(d)])
    r = echo(s.port, "hello", ini=ctl_ini)
    assert r.returncode == EXIT_LOSS
    assert r.stderr == f"netlabctl: the reply from 127.0.0.1 port {s.port} was altered: {how}\n".encode()


def test_echo_reply_escaped_on_terminal_raw_to_pipe(udp_server, ctl_ini):
    s = udp_server(lambda srv, d: [b"\x1b[2Jboom\x07"])
    r = echo(s.port, "x", ini=ctl_ini)
    assert r.returncode == EXIT_LOSS
    assert r.stdout == b"\x1b[2Jboom\x07\n"  # a pipe gets the bytes, as with send
    master, slave = pty.openpty()
    try:
        p = subprocess.run([str(NETLABCTL), f"--config={ctl_ini}", "echo", "-H", "127.0.0.1", "-p",
                            str(s.port), "x"], stdin=subprocess.DEVNULL, stdout=slave,
                           stderr=subprocess.PIPE, timeout=20)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == EXIT_LOSS
    assert b"\x1b" not in out and b"\x07" not in out
    assert b"\\x1b[2Jboom\\x07" in out


def test_echo_silent_server_times_out(udp_server, ctl_ini):
    s = udp_server(lambda srv, d: [])
    t0 = time.monotonic()
    r = echo(s.port, "--wait=0.2", "hi", ini=ctl_ini)
    took = time.monotonic() - t0
    assert r.returncode == EXIT_TIMEOUT
    assert r.stderr == f"netlabctl: no reply from 127.0.0.1 port {s.port} after 3 attempts\n".encode()
    assert r.stdout == b""
    assert 0.5 < took < 3.0
    assert s.received == [b"hi"] * 3  # the first attempt and 2 retries (the default)


def test_echo_retries_option(udp_server, ctl_ini):
    s = udp_server(lambda srv, d: [])
    r = echo(s.port, "-W", "0.05", "-r", "5", "hi", ini=ctl_ini)
    assert r.returncode == EXIT_TIMEOUT
    assert b"after 6 attempts" in r.stderr
    assert len(s.received) == 6
    r = echo(s.port, "-W", "0.05", "--retries=0", "hi", ini=ctl_ini)
    assert b"after 1 attempt\n" in r.stderr


def test_echo_timeout_caps_all_attempts(udp_server, ctl_ini):
    s = udp_server(lambda srv, d: [])
    t0 = time.monotonic()
    r = echo(s.port, "-W", "0.6", "-r", "10", "-t", "1", "--json", "hi", ini=ctl_ini)
    took = time.monotonic() - t0
    assert r.returncode == EXIT_TIMEOUT
    assert 0.9 < took < 2.5
    assert len(s.received) == 2
    j = json.loads(r.stdout)
    assert (j["command"], j["status"], j["exit_code"]) == ("echo", "timeout", EXIT_TIMEOUT)
    assert "after 2 attempts" in j["error"]


def test_echo_first_datagram_lost_retransmission_succeeds(udp_server, ctl_ini):
    seen = []

    def drop_first(srv, d):
        seen.append(d)
        return [] if len(seen) == 1 else [d]

    s = udp_server(drop_first)
    r = echo(s.port, "-W", "0.5", "-j", "again", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    j = json.loads(r.stdout)
    assert j["replies"][0]["attempts"] == 2
    assert j["replies"][0]["reply"] == "again"
    assert s.received == [b"again", b"again"]


def test_echo_closed_port(ctl_ini):
    port = closed_port()
    t0 = time.monotonic()
    r = echo(port, "hi", ini=ctl_ini)
    assert r.returncode == EXIT_CONNECT
    assert r.stderr == f"netlabctl: 127.0.0.1 port {port}: port unreachable (ICMP): nothing listens there\n".encode()
    assert time.monotonic() - t0 < 2.0  # the ICMP answer, not a timeout
    r = echo(port, "--json", "hi", ini=ctl_ini)
    j = json.loads(r.stdout)
    assert (j["status"], j["exit_code"]) == ("port-unreachable", EXIT_CONNECT)
    assert "unreachable" in j["error"]


def test_echo_closed_port_count(ctl_ini):
    port = closed_port()
    r = echo(port, "-c", 3, "-i", 0, ini=ctl_ini)
    assert r.returncode == EXIT_CONNECT
    assert b"port unreachable (ICMP)" in r.stderr


def test_echo_localhost_falls_back_to_the_address_that_answers(udp_server, ctl_ini):
    """localhost may resolve to ::1 first; a lab server binds IPv4 only."""
    s = lab_echo(udp_server)
    r = netlabctl("echo", "-H", "localhost", "-p", s.port, "hi", ini=ctl_ini)
    assert (r.returncode, r.stdout) == (0, b"hi\n"), r.stderr


def test_echo_unresolvable_host(ctl_ini):
    r = netlabctl("echo", "-H", "no-such-host.invalid", "-p", 9, "hi", ini=ctl_ini)
    assert r.returncode == EXIT_CONNECT
    assert r.stderr.startswith(b'netlabctl: cannot resolve "no-such-host.invalid": ')


def test_echo_ipv4_payload_limit(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "-s", 65508, ini=ctl_ini)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == b"netlabctl: echo: --size is 65508 bytes; a UDP datagram to 127.0.0.1 carries at most 65507\n"
    assert s.received == []


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as t:
            t.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_echo_ipv6_largest_payload(udp_server, ctl_ini):
    s = udp_server(echo_back, family=socket.AF_INET6, host="::1")
    r = netlabctl("echo", "-H", "::1", "-p", s.port, "-s", 65527, "-j", ini=ctl_ini)
    assert r.returncode == EXIT_OK, r.stderr
    j = json.loads(r.stdout)
    assert (j["address"], j["replies"][0]["bytes"]) == ("::1", 65527)
    r = netlabctl("echo", "-H", "::1", "-p", s.port, "-s", 65528, ini=ctl_ini)
    assert r.returncode == EXIT_USAGE


# ---------------------------------------------------------------------------
# echo: lines of standard input

def test_echo_stdin_lines(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, ini=ctl_ini, input=b"one\ntwo words\n\nlast without newline")
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout == b"one\ntwo words\n\nlast without newline\n"
    assert s.received == [b"one", b"two words", b"", b"last without newline"]


def test_echo_stdin_lines_json(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "--json", ini=ctl_ini, input=b"a\nbb\n")
    assert r.returncode == 0
    j = json.loads(r.stdout)
    assert [x["reply"] for x in j["replies"]] == ["a", "bb"]
    assert (j["sent"], j["received"], j["altered"]) == (2, 2, 0)


def test_echo_stdin_empty_input(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, ini=ctl_ini, input=b"")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert s.received == []


def test_echo_stdin_altered_line_counted(udp_server, ctl_ini):
    s = udp_server(lambda srv, d: [d.replace(b"b", b"B")])
    r = echo(s.port, ini=ctl_ini, input=b"aaa\nbbb\nccc\n")
    assert r.returncode == EXIT_LOSS
    assert r.stdout == b"aaa\nBBB\nccc\n"
    assert r.stderr.endswith(b"netlabctl: 1 of 3 replies were altered\n")


def test_echo_stdin_late_duplicate_of_previous_line_dropped(udp_server, ctl_ini):
    """Line 1's reply is sent twice, the copy only with line 2's reply: the
    client must not take the copy for line 2's reply."""
    state = {"n": 0}

    def late_copy(srv, d):
        state["n"] += 1
        if state["n"] == 1:
            state["first"] = d
            return [d]
        if state["n"] == 2:
            return [state["first"], d]
        return [d]

    s = udp_server(late_copy)
    r = echo(s.port, "-j", ini=ctl_ini, input=b"first\nsecond\n")
    assert r.returncode == EXIT_OK, r.stderr
    j = json.loads(r.stdout)
    assert [x["reply"] for x in j["replies"]] == ["first", "second"]
    assert j["late"] == 1


def test_echo_stdin_line_too_long(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, ini=ctl_ini, input=b"x" * 70000 + b"\n")
    assert r.returncode == EXIT_USAGE
    assert b"line 1 is longer than the 65507 bytes" in r.stderr
    assert s.received == []


# ---------------------------------------------------------------------------
# echo --count

PING_LINE = re.compile(rb"^(\d+) bytes from 127\.0\.0\.1: seq=(\d+) time=(\d+\.\d{3}) ms$")


def test_echo_count_stats(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "-c", 5, "-i", 0, ini=ctl_ini)
    assert (r.returncode, r.stderr) == (0, b"")
    lines = r.stdout.splitlines()
    assert lines[0] == f"ECHO 127.0.0.1 (127.0.0.1) port {s.port}: 56 bytes per probe".encode()
    seqs = []
    for line in lines[1:6]:
        m = PING_LINE.match(line)
        assert m, line
        assert m.group(1) == b"56"
        seqs.append(int(m.group(2)))
    assert seqs == [1, 2, 3, 4, 5]
    assert lines[6] == b""
    assert lines[7] == f"--- 127.0.0.1 port {s.port} echo statistics ---".encode()
    assert re.fullmatch(rb"5 probes sent, 5 replies, 0 altered, 0% lost, time \d+ ms", lines[8]), lines[8]
    assert re.fullmatch(rb"rtt min/avg/max/mdev = [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms", lines[9]), lines[9]
    assert len(lines) == 10
    assert s.received == [pattern(56, i) for i in range(1, 6)]


def test_echo_count_json(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "-c", 4, "-i", 0, "-s", 100, "--json", ini=ctl_ini)
    assert r.returncode == 0
    j = json.loads(r.stdout)
    assert (j["command"], j["status"], j["exit_code"]) == ("echo", "ok", 0)
    assert (j["size"], j["count"], j["sent"], j["received"], j["altered"], j["late"]) == (100, 4, 4, 4, 0, 0)
    assert j["loss_percent"] == 0 and j["interrupted"] is False
    rtt = j["rtt_ms"]
    assert 0 < rtt["min"] <= rtt["avg"] <= rtt["max"] and rtt["mdev"] >= 0


def test_echo_count_interval(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    t0 = time.monotonic()
    r = echo(s.port, "-c", 3, "-i", 0.3, ini=ctl_ini)
    took = time.monotonic() - t0
    assert r.returncode == 0
    assert 0.55 < took < 3.0  # two intervals between three probes


def test_echo_count_with_text(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "-c", 2, "-i", 0, "ping", "me", ini=ctl_ini)
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].endswith(b": 7 bytes per probe")
    assert s.received == [b"ping me"] * 2


def test_echo_count_loss(udp_server, ctl_ini):
    def every_other(srv, d):
        return [d] if len(srv.received) % 2 == 1 else []

    s = udp_server(every_other)
    r = echo(s.port, "-c", 4, "-i", 0, "-W", 0.5, ini=ctl_ini)
    assert r.returncode == EXIT_LOSS
    lines = r.stdout.splitlines()
    assert lines[2] == b"no reply to seq=2 within 0.5 s"
    assert lines[4] == b"no reply to seq=4 within 0.5 s"
    assert b"4 probes sent, 2 replies, 0 altered, 50% lost" in r.stdout
    assert r.stderr == b"netlabctl: 2 of 4 probes got no reply, 0 replies were altered\n"
    assert len(s.received) == 4  # no resends with --count


def test_echo_count_altered(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "-c", 2, "-i", 0, "-s", 1000, ini=ctl_ini)
    assert r.returncode == EXIT_LOSS
    assert b"512 bytes from 127.0.0.1: seq=1 time=" in r.stdout
    assert b"ALTERED: cut short: 512 of the 1000 bytes sent came back" in r.stdout
    assert b"2 probes sent, 2 replies, 2 altered, 0% lost" in r.stdout


def test_echo_count_nothing_answers(udp_server, ctl_ini):
    s = udp_server(lambda srv, d: [])
    r = echo(s.port, "-c", 3, "-i", 0, "-W", 0.1, "-j", ini=ctl_ini)
    assert r.returncode == EXIT_TIMEOUT
    j = json.loads(r.stdout)
    assert (j["status"], j["sent"], j["received"], j["loss_percent"], j["rtt_ms"]) == ("timeout", 3, 0, 100, None)
    assert r.stderr == f"netlabctl: no reply from 127.0.0.1 port {s.port} to any of 3 probes\n".encode()


def test_echo_count_late_reply_not_counted_for_the_next_probe(udp_server, ctl_ini):
    """Probe 1's reply comes only with probe 2's: it is dropped as late, and
    probe 1 counts as lost."""
    held = []

    def late(srv, d):
        if len(srv.received) == 1:
            held.append(d)
            return []
        return held[:1] + [d] if len(srv.received) == 2 else [d]

    s = udp_server(late)
    r = echo(s.port, "-c", 3, "-i", 0, "-W", 0.5, "-j", ini=ctl_ini)
    assert r.returncode == EXIT_LOSS
    j = json.loads(r.stdout)
    assert (j["sent"], j["received"], j["altered"], j["late"]) == (3, 2, 0, 1)


def test_echo_count_sigint_prints_summary(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    p = subprocess.Popen([str(NETLABCTL), f"--config={ctl_ini}", "echo", "-H", "127.0.0.1", "-p", str(s.port),
                          "-c", "1000", "-i", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while len(s.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    m = re.search(rb"^(\d+) probes sent, (\d+) replies, 0 altered, 0% lost", out, re.M)
    assert m, out
    assert 3 <= int(m.group(1)) < 1000 and m.group(1) == m.group(2)
    assert b"rtt min/avg/max/mdev = " in out


# ---------------------------------------------------------------------------
# echo: options

@pytest.mark.parametrize("args, message", [
    (["-s", "70000"], 'echo: --size: "70000" is not a size from 0 to 65527'),
    (["-s", "-1"], 'echo: --size: "-1" is not a size from 0 to 65527'),
    (["-c", "0"], 'echo: --count: "0" is not a number from 1 to 1000000000'),
    (["--wait=abc", "x"], 'echo: --wait: "abc" is not seconds from 0.001 to 3600 (at most 6 decimals)'),
    (["--wait=0", "x"], 'echo: --wait: "0" is not seconds from 0.001 to 3600 (at most 6 decimals)'),
    (["-W", "1.1234567", "x"], 'echo: --wait: "1.1234567" is not seconds from 0.001 to 3600 (at most 6 decimals)'),
    (["-W", "1.", "x"], 'echo: --wait: "1." is not seconds from 0.001 to 3600 (at most 6 decimals)'),
    (["-W", "1e3", "x"], 'echo: --wait: "1e3" is not seconds from 0.001 to 3600 (at most 6 decimals)'),
    (["-i", "-1", "-c", "2"], 'echo: --interval: "-1" is not seconds from 0 to 3600 (at most 6 decimals)'),
    (["-r", "101", "x"], 'echo: --retries: "101" is not a number from 0 to 100'),
    (["-s", "5", "text"], "echo: give TEXT or --size, not both"),
    (["-c", "2", "-r", "1"], "echo: --retries cannot be used with --count (each probe is sent once)"),
    (["--bogus"], "echo: unknown option --bogus (see 'echo --help')"),
    (["-W"], "echo: option -W needs a value"),
])
def test_echo_usage_errors(ctl_ini, args, message):
    r = netlabctl("echo", "-H", "127.0.0.1", "-p", 9, *args, ini=ctl_ini)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == f"netlabctl: {message}\n".encode()
    assert r.stdout == b""


def test_echo_wait_decimals_accepted(udp_server, ctl_ini):
    s = lab_echo(udp_server)
    r = echo(s.port, "-W", "0.001", "-r", 0, "-s", 0, ini=ctl_ini)
    assert r.returncode in (EXIT_OK, EXIT_TIMEOUT)  # 1 ms may be too short on a busy machine
    r = echo(s.port, "-W", "2.5", "x", ini=ctl_ini)
    assert r.returncode == EXIT_OK


# ---------------------------------------------------------------------------
# guess

def guess_datagrams(s):
    for d in s.received:
        assert len(d) == GUESS_PAD, d  # every request padded (PROTOCOL.md 10.2)
        assert d.endswith(b"\n")
    return [GuessServer.line(d) for d in s.received]


def test_guess_win_first_try(guess_server, ctl_ini):
    s = guess_server(answer="4")
    r = guess(s.port, "--guess", "4", ini=ctl_ini)
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout == b"Guess a number from 1 to 6 (3 tries): 4\nYou win! It was 4.\n"
    play, g = guess_datagrams(s)
    assert re.fullmatch(r"play nonce=[0-9a-f]{8}", play)
    assert g == f"guess id={s.game.round['id']} 4"


def test_guess_wrong_then_win(guess_server, ctl_ini):
    s = guess_server(answer="4")
    r = guess(s.port, "-g", "2", "-g", "6", "--guess=4", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (b"Guess a number from 1 to 6 (3 tries): 2\n"
                        b"Wrong: the number is higher.\n"
                        b"Guess a number from 1 to 6 (2 tries left): 6\n"
                        b"Wrong: the number is lower.\n"
                        b"Guess a number from 1 to 6 (1 try left): 4\n"
                        b"You win! It was 4.\n")


def test_guess_lose(guess_server, ctl_ini):
    s = guess_server(answer="4", tries=1)
    r = guess(s.port, "--guess", "2", ini=ctl_ini)
    assert r.returncode == EXIT_LOST
    assert r.stdout == b"Guess a number from 1 to 6 (1 try): 2\nYou lose. It was 4.\n"
    assert r.stderr == b""


def test_guess_runs_out_of_guesses(guess_server, ctl_ini):
    s = guess_server(answer="4", tries=3)
    r = guess(s.port, "--guess", "1", ini=ctl_ini)
    assert r.returncode == EXIT_LOST
    assert r.stderr == f"netlabctl: no more guesses, with 2 tries left in round {s.game.round['id']}\n".encode()


def test_guess_from_stdin_lines(guess_server, ctl_ini):
    s = guess_server(answer="5")
    r = guess(s.port, ini=ctl_ini, input=b"1\n\n  5  \n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (b"Guess a number from 1 to 6 (3 tries): 1\n"
                        b"Wrong: the number is higher.\n"
                        b"Guess a number from 1 to 6 (2 tries left): 5\n"
                        b"You win! It was 5.\n")
    assert guess_datagrams(s)[1:] == [f"guess id={s.game.round['id']} 1", f"guess id={s.game.round['id']} 5"]


def test_guess_stdin_runs_out(guess_server, ctl_ini):
    s = guess_server(answer="5")
    r = guess(s.port, ini=ctl_ini, input=b"")
    assert r.returncode == EXIT_LOST
    assert b"no more guesses, with 3 tries left" in r.stderr


def test_guess_person(guess_server, ctl_ini):
    s = guess_server(mode="person", tries=2)
    r = guess(s.port, "-g", "Marie Curie", "-g", "einstein", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (b"Hint: E = mc^2, 1905\n"
                        b"Who is it? (2 tries): Marie Curie\n"
                        b"Wrong.\n"
                        b"Who is it? (1 try left): einstein\n"
                        b"You win! It was Albert Einstein.\n")


def test_guess_person_lose_json(guess_server, ctl_ini):
    s = guess_server(mode="person", tries=1)
    r = guess(s.port, "-g", "Ada Lovelace", "--json", ini=ctl_ini)
    assert r.returncode == EXIT_LOST
    j = json.loads(r.stdout)
    assert j == {"command": "guess", "status": "lost", "exit_code": EXIT_LOST, "server": "127.0.0.1",
                 "port": s.port, "address": "127.0.0.1", "result": "lose", "answer": "Albert Einstein",
                 "round": s.game.round["id"], "mode": "person", "range": None, "tries": 1,
                 "guesses": ["Ada Lovelace"]}


def test_guess_win_json(guess_server, ctl_ini):
    s = guess_server(answer="3")
    r = guess(s.port, "-g", "1", "-g", "3", "-j", ini=ctl_ini)
    assert r.returncode == 0
    assert r.stderr == b""
    j = json.loads(r.stdout)  # and nothing else on stdout: no prompts
    assert (j["status"], j["result"], j["answer"], j["mode"], j["range"], j["tries"], j["guesses"]) == \
        ("ok", "win", "3", "number", [1, 6], 3, ["1", "3"])


@pytest.mark.parametrize("kw, code, status, message", [
    ({"play_err": b"ERR 3 busy, try again later\n"}, EXIT_BUSY, "busy",
     "server refused (busy): busy, try again later"),
    ({"play_err": b"ERR 3\n"}, EXIT_BUSY, "busy", "server refused: busy"),
    ({"guess_err": b"ERR 4 no round; send play\n"}, EXIT_REFUSED, "not-found",
     "server refused (not-found): no round; send play"),
    ({"guess_err": b"ERR 6 round expired; send play\n"}, EXIT_REFUSED, "timeout",
     "server refused (timeout): round expired; send play"),
    ({"guess_err": b"ERR 4\n"}, EXIT_REFUSED, "not-found", "server refused: not-found"),
    ({"guess_err": b"ERR 200 \xc3\xa9t\xc3\xa9\n"}, EXIT_REFUSED, "unknown",
     "server refused (unknown): \\xc3\\xa9t\\xc3\\xa9"),
])
def test_guess_refusals(guess_server, ctl_ini, kw, code, status, message):
    s = guess_server(**kw)
    r = guess(s.port, "-g", "4", ini=ctl_ini)
    assert r.returncode == code
    assert r.stderr == f"netlabctl: {message}\n".encode()
    r = guess(s.port, "-g", "4", "-j", ini=ctl_ini)
    j = json.loads(r.stdout)
    assert (j["command"], j["status"], j["exit_code"], j["error"]) == ("guess", status, code, message)


def test_guess_out_of_range_refused_by_server(guess_server, ctl_ini):
    s = guess_server()
    r = guess(s.port, "-g", "9", ini=ctl_ini)
    assert r.returncode == EXIT_REFUSED
    assert r.stderr == b"netlabctl: server refused (bad-request): guess a number from 1 to 6\n"


@pytest.mark.parametrize("override, message", [
    ({0: b"HELLO\n"}, 'malformed reply from 127.0.0.1 port {port}: "HELLO"'),
    ({0: b"ROUND id=12345678 tries=3 range=1..6"}, 'malformed reply from 127.0.0.1 port {port}: '
                                                  '"ROUND id=12345678 tries=3 range=1..6"'),
    ({0: b"WIN answer=\x1b[2J\n"}, 'malformed reply from 127.0.0.1 port {port}: "WIN answer=\\x1b[2J"'),
    ({0: b"WIN answer=4\n"}, 'not a ROUND reply to play from 127.0.0.1 port {port}: "WIN answer=4"'),
    ({1: b"WIN answer=4\n"}, 'a reply for another round from 127.0.0.1 port {port}: "WIN answer=4"'),
    ({1: b"WIN id=00000000 answer=4\n"},
     'a reply for another round from 127.0.0.1 port {port}: "WIN id=00000000 answer=4"'),
    ({1: b"ROUND id=00000000 tries=3 range=1..6\n"},
     'a ROUND reply to a guess from 127.0.0.1 port {port}: "ROUND id=00000000 tries=3 range=1..6"'),
    ({0: b"W" * 600 + b"\n"}, "the reply from 127.0.0.1 port {port} is 601 bytes, more than the 512 a reply may have"),
])
def test_guess_protocol_errors(guess_server, ctl_ini, override, message):
    s = guess_server(reply_override=override)
    r = guess(s.port, "-g", "4", ini=ctl_ini)
    assert r.returncode == EXIT_PROTOCOL
    assert r.stderr == f"netlabctl: {message.format(port=s.port)}\n".encode()


def test_guess_tries_must_go_down(guess_server, ctl_ini):
    """A WRONG that leaves as many tries as the one before is not a reply to
    a new guess."""
    s = guess_server(answer="4")
    g = s.game
    honest = g.answer_to

    def stuck(data):
        reply = honest(data)
        if g.n == 3:  # the second guess
            return f"WRONG id={g.round['id']} tries=2 lower\n".encode()
        return reply

    g.answer_to = stuck
    r = guess(s.port, "-g", "1", "-g", "2", ini=ctl_ini)
    assert r.returncode == EXIT_PROTOCOL
    assert r.stderr == (f"netlabctl: tries left did not go down in the reply from 127.0.0.1 port {s.port}: "
                        f"\"WRONG id={g.round['id']} tries=2 lower\"\n").encode()


def test_guess_play_lost_is_resent(guess_server, ctl_ini):
    s = guess_server(answer="4", drop={0})
    r = guess(s.port, "-W", "0.5", "-g", "4", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    dgrams = guess_datagrams(s)
    assert len(dgrams) == 3 and s.received[0] == s.received[1]  # the same play, nonce and all


def test_guess_guess_lost_is_resent(guess_server, ctl_ini):
    s = guess_server(answer="4", drop={1})
    r = guess(s.port, "-W", "0.5", "-g", "2", "-g", "4", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert s.received[1] == s.received[2]
    assert len(s.received) == 4


def test_guess_reply_lost_resend_is_idempotent(guess_server, ctl_ini):
    """The reply to the first guess is lost; the resent guess must get the
    same WRONG again without using a try."""
    s = guess_server(answer="4", tries=2, reply_override={1: None})
    r = guess(s.port, "-W", "0.5", "-g", "2", "-g", "4", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert b"(1 try left): 4\nYou win! It was 4.\n" in r.stdout


def test_guess_duplicated_replies_ignored(guess_server, ctl_ini):
    s = guess_server(answer="4", dup=True)
    r = guess(s.port, "-g", "1", "-g", "2", "-g", "4", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(b"You win! It was 4.\n")


def test_guess_silent_server(udp_server, ctl_ini):
    s = udp_server(lambda srv, d: [])
    t0 = time.monotonic()
    r = guess(s.port, "-W", "0.1", "-r", "3", "-g", "4", ini=ctl_ini)
    assert r.returncode == EXIT_TIMEOUT
    assert r.stderr == f"netlabctl: no reply from 127.0.0.1 port {s.port} after 4 attempts\n".encode()
    assert time.monotonic() - t0 < 3
    assert len(set(s.received)) == 1 and len(s.received) == 4


def test_guess_closed_port(ctl_ini):
    port = closed_port()
    r = guess(port, "-g", "4", ini=ctl_ini)
    assert r.returncode == EXIT_CONNECT
    assert b"port unreachable (ICMP): nothing listens there" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["-g", "a#b"], "guess: --guess: \"a#b\" cannot be sent: not printable text, or it contains '#'"),
    (["-g", "x" * 129], f"guess: --guess: \"{'x' * 76}...\" cannot be sent: longer than 128 bytes"),
    (["-g", "   "], 'guess: --guess: "" cannot be sent: an empty guess'),
])
def test_guess_bad_values(guess_server, ctl_ini, args, message):
    s = guess_server()
    r = guess(s.port, *args, ini=ctl_ini)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == f"netlabctl: {message}\n".encode()
    assert len(s.received) == 1  # the play only


@pytest.mark.parametrize("args, message", [
    (["4"], 'guess: unexpected argument "4" (a guess goes after --guess)'),
    (["--wait", "x"], 'guess: --wait: "x" is not seconds from 0.001 to 3600 (at most 6 decimals)'),
    (["--retries", "1000"], 'guess: --retries: "1000" is not a number from 0 to 100'),
    (["-g"], "guess: option -g needs a value"),
    (["--count", "3"], "guess: unknown option --count (see 'guess --help')"),
])
def test_guess_usage_errors(ctl_ini, args, message):
    r = netlabctl("guess", "-H", "127.0.0.1", "-p", 9, *args, ini=ctl_ini)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == f"netlabctl: {message}\n".encode()


def run_on_tty(args, typed, ini, timeout=20):
    """Run netlabctl with a terminal on stdin; type each line of typed after
    the prompt shows.  Returns (exit code, stdout)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([str(NETLABCTL), f"--config={ini}", *map(str, args)], stdin=slave,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    try:
        for line in typed:
            os.write(master, line)
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return p.returncode, out, err


def test_guess_interactive(guess_server, ctl_ini):
    s = guess_server(answer="4")
    code, out, err = run_on_tty(["guess", "-H", "127.0.0.1", "-p", s.port],
                                [b"seven\n", b"9\n", b"2\n", b"4\n"], ctl_ini)
    assert code == 0, err
    assert out == (b"Guess a number from 1 to 6 (3 tries): Please type a whole number from 1 to 6.\n"
                   b"Guess a number from 1 to 6 (3 tries): Please type a whole number from 1 to 6.\n"
                   b"Guess a number from 1 to 6 (3 tries): Wrong: the number is higher.\n"
                   b"Guess a number from 1 to 6 (2 tries left): You win! It was 4.\n")
    assert len(s.received) == 3  # the bad values never reached the server


def test_guess_interactive_end_of_input(guess_server, ctl_ini):
    s = guess_server(answer="4")
    code, out, err = run_on_tty(["guess", "-H", "127.0.0.1", "-p", s.port], [b"\x04"], ctl_ini)
    assert code == EXIT_LOST
    assert b"no more guesses, with 3 tries left" in err


# ---------------------------------------------------------------------------
# INI, help

def write(path, text):
    path.write_text(text)
    return path


def test_ini_ports_used(udp_server, guess_server, tmp_path):
    e = lab_echo(udp_server)
    g = guess_server(answer="4")
    ini = write(tmp_path / "c.ini", f"[defaults]\nhost = 127.0.0.1\n[echo]\nport = {e.port}\n"
                                    f"[guess]\nport = {g.port}\n")
    r = netlabctl("echo", "hi", ini=ini)
    assert (r.returncode, r.stdout) == (0, b"hi\n")
    r = netlabctl("guess", "-g", "4", ini=ini)
    assert r.returncode == 0


@pytest.mark.parametrize("text, line, message", [
    ("[echo]\nport = 0\n", 2, 'port: "0" is not a port from 1 to 65535'),
    ("[guess]\n\nport = x\n", 3, 'port: "x" is not a port from 1 to 65535'),
    ("[echo]\nhost = a\n", 2, 'unknown key "host" in section [echo]'),
    ("[ping]\nport = 1\n", 2, "unknown section [ping] (known: [defaults], [send], [fetch], [echo], [guess])"),
])
def test_bad_ini(tmp_path, text, line, message):
    ini = write(tmp_path / "bad.ini", text)
    r = netlabctl("echo", "x", ini=ini)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == f"{ini}:{line}: {message}\n".encode()


COMMON = ["--host", "-H", "--port", "-p", "--timeout", "-t", "--json", "-j", "--no-json", "--help", "-h"]


@pytest.mark.parametrize("cmd, mentions", [
    ("echo", ["--count", "-c", "--interval", "-i", "--size", "-s", "--wait", "-W", "--retries", "-r"] + COMMON),
    ("guess", ["--guess", "-g", "--wait", "-W", "--retries", "-r"] + COMMON),
])
def test_help(ctl_ini, cmd, mentions):
    r = netlabctl(cmd, "--help", ini=ctl_ini)
    assert (r.returncode, r.stderr) == (0, b"")
    text = r.stdout.decode()
    assert text.startswith(f"Usage: netlabctl {cmd} ")
    missing = [o for o in mentions if not re.search(rf"(^|[\s,]){re.escape(o)}([\s,=]|$)", text, re.M)]
    assert missing == []
    assert re.search(r"--wait=SECONDS +wait this long for each reply \(default 1;", text)
    assert re.search(r"--retries=N +resend .*\n +\(default 2[;)]", text)
    assert ("8888" if cmd == "echo" else "8889") in text


def test_global_help_lists_commands(ctl_ini):
    r = netlabctl("--help", ini=ctl_ini)
    assert re.search(rb"^  echo +send datagrams", r.stdout, re.M)
    assert re.search(rb"^  guess +play a round", r.stdout, re.M)


# ---------------------------------------------------------------------------
# against the real netlabd, when it has the services

def netlabd_has(service):
    """Does the netlabd under test accept a listener of this service?"""
    import tempfile
    text = make_config([{"name": "x", "service": service, "transport": "udp", "address": "127.0.0.1",
                         "port": 9}])
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(text)
        f.flush()
        try:
            p = subprocess.run([str(NETLABD), "--check-config", "-c", f.name], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return p.returncode == 0


needs_echo = pytest.mark.skipif(not netlabd_has("echo"), reason="netlabd has no echo service yet")
needs_guess = pytest.mark.skipif(not netlabd_has("guess"), reason="netlabd has no guess service yet")


@needs_echo
def test_netlabd_echo(daemon_factory, ctl_ini):
    port = free_port(socket.SOCK_DGRAM)
    daemon_factory(make_config([{"name": "echo", "service": "echo", "transport": "udp",
                                 "address": "127.0.0.1", "port": port}]))
    r = echo(port, "-c", 5, "-i", 0, "-s", 65507, "-j", ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert (j["sent"], j["received"], j["altered"]) == (5, 5, 0)
    r = echo(port, ini=ctl_ini, input=b"hello\nworld\n")
    assert (r.returncode, r.stdout) == (0, b"hello\nworld\n")


@needs_guess
def test_netlabd_guess(daemon_factory, ctl_ini):
    port = free_port(socket.SOCK_DGRAM)
    daemon_factory(make_config([{"name": "guess", "service": "guess", "transport": "udp",
                                 "address": "127.0.0.1", "port": port}]))
    # Whatever the range and tries, guessing every number wins or loses.
    r = guess(port, "-j", *[a for v in range(1, 7) for a in ("-g", str(v))], ini=ctl_ini)
    assert r.returncode in (EXIT_OK, EXIT_LOST), r.stderr
    j = json.loads(r.stdout)
    assert j["mode"] == "number" and j["result"] in ("win", "lose")
    assert j["answer"] in [str(v) for v in range(j["range"][0], j["range"][1] + 1)]


@needs_guess
def test_netlabd_guess_every_value_wins(daemon_factory, ctl_ini):
    """Three tries in 1..3: guessing 1, 2, 3 in turn must win, through
    WRONG replies carrying the round's id."""
    port = free_port(socket.SOCK_DGRAM)
    daemon_factory(make_config([{"name": "guess", "service": "guess", "transport": "udp",
                                 "address": "127.0.0.1", "port": port, "min": 1, "max": 3, "attempts": 3}]))
    r = guess(port, "-g", 1, "-g", 2, "-g", 3, ini=ctl_ini)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"Guess a number from 1 to 3 (3 tries): 1\n")
    assert re.search(rb"You win! It was [123]\.\n$", r.stdout)

