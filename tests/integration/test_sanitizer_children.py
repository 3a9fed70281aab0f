"""Sanitizer reports from forked children reach the log the fixtures check.

The ASan+UBSan pass of run-all.sh only means something if an error in a child
(which serves each client and ends with _exit()) fails the run, not just an
error in the supervisor. A child inherits the supervisor's stderr, which the
fixtures capture and search for BAD_LOG (conftest.py) at teardown, and the
supervisor logs a child that exits non-zero. This proves both, by making a
child commit a real heap overflow and a real signed overflow: a preloaded shim,
built with the same sanitizers, replaces sendfile(2), which only a file
service's child calls. Nothing in netlabd is changed for the test.

Only on a sanitizer build (NETLAB_BUILD=build-asan); skipped otherwise.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import (BAD_LOG, NETLABD, Netlabd, file_exchange, file_get, file_listener, free_port,
                      make_config)

SHIM = r'''
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <sys/sendfile.h>

/* Replaces sendfile(2) in netlabd's file-service children (the binary
 * imports it as sendfile64: 64-bit offsets). */
ssize_t sendfile64(int out, int in, off_t *off, size_t n)
{
        const char *fault = getenv("NETLAB_SHIM_FAULT");

        if (fault && fault[0] == 'u') {         /* UBSan: signed overflow */
                volatile int big = INT_MAX;
                volatile int r = big + (int) (n | 1);
                return r;
        }
        char *volatile p = malloc(8);           /* ASan: heap-buffer-overflow */
        volatile char c = p[8 + (n & 1)];
        free(p);
        return c;
}
'''


def sanitizer_build():
    return b"__asan_init" in NETLABD.read_bytes()


pytestmark = pytest.mark.skipif(not sanitizer_build(),
                                reason="needs the ASan+UBSan build (NETLAB_BUILD=build-asan)")


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("shim")
    (d / "shim.c").write_text(SHIM)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=undefined", "-o", str(d / "shim.so"), str(d / "shim.c")],
                   check=True, capture_output=True, timeout=60)
    return d / "shim.so"


@pytest.mark.parametrize("fault,report", [
    ("asan", r"ERROR: AddressSanitizer: heap-buffer-overflow"),
    ("ubsan", r"runtime error: signed integer overflow"),
])
def test_a_childs_sanitizer_report_fails_the_run(tmp_path, shim, fault, report):
    root = tmp_path / "root"
    root.mkdir()
    (root / "f.txt").write_bytes(b"x" * 4096)
    port = free_port()
    work = tmp_path / "d"
    work.mkdir()
    # The shim loads before the sanitizer runtime: tell ASan that is intended.
    d = Netlabd(work, make_config([file_listener(port, root)]), extra_args=("--log-target=stderr",),
                env={"LD_PRELOAD": str(shim), "NETLAB_SHIM_FAULT": fault,
                     "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:verify_asan_link_order=0",
                     "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    d.start()
    try:
        file_exchange(port, file_get("f.txt"), timeout=10)
        d.wait_no_children(timeout=10)
    except (OSError, AssertionError):
        pass                                    # the child died mid-reply: expected
    finally:
        d.wait_no_children(timeout=10)
        log = d.log()
        d.stop()
    # The child's report is in the log, with its stack through netlabd's code...
    assert re.search(report, log), log[-3000:]
    assert re.search(r"#\d+ 0x[0-9a-f]+ in \w+ .*daemon/svc-file", log), log[-3000:]
    # ...the supervisor saw the child fail and said so, and survived...
    assert re.search(r"child \d+ \(listener 'files'\) exited with status [1-9]", log), log[-3000:]
    # ...and the fixtures' check (conftest.BAD_LOG) fails such a run.
    assert any(BAD_LOG.search(l) for l in log.splitlines())
    # The supervisor itself reported nothing: only the child's pid is in the report.
    pids = {int(p) for p in re.findall(r"==(\d+)==ERROR", log)}
    assert d.proc.pid not in pids
