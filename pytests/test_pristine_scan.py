# SPDX-License-Identifier: Apache-2.0
"""pristine-scan (README, "Tools"; man/pristine-scan.1): lists, in running processes and
without the library, the threads whose state differs from their process's main thread; exit 0
nothing found, 1 drift found, 2 error. With build/testapps/evidence --hold."""

import json
import os
import pathlib

import pytest

from programs import APPS, BUILD_DIR, run, start

pytestmark = pytest.mark.root

EVIDENCE = APPS / "evidence"
SCAN = BUILD_DIR / "tools" / "pristine-scan"
TIMEOUT = 60


def scan(*args):
    if not SCAN.exists():
        pytest.fail(f"{SCAN} is not built")
    return run([SCAN, *args], timeout=TIMEOUT)


def test_scan_finds_a_thread_left_in_another_network_namespace():
    p = start([EVIDENCE, "drift", "--hold"])
    try:
        out = scan("--pid", p.pid)
        assert out.returncode == 1, out
        [line] = out.stdout.splitlines()
        assert line.startswith(f"{p.pid} evidence thread ") and " net (main " in line, line
        js = scan("--pid", p.pid, "--json")
        assert js.returncode == 1
        doc = json.loads(js.stdout)
        [proc] = doc["processes"]
        [thread] = proc["drifting"]
        assert proc["pid"] == p.pid and set(thread["differs"]) == {"net"}, doc
        net = thread["differs"]["net"]
        assert net["main"] != net["thread"], net
        # Scanning every process finds it too.
        everything = scan("--json")
        assert everything.returncode == 1
        assert p.pid in [x["pid"] for x in json.loads(everything.stdout)["processes"]]
    finally:
        p.stdin.close()
        p.wait(timeout=TIMEOUT)


def test_scan_reports_nothing_on_a_clean_process():
    p = start([EVIDENCE, "clean", "--hold"])
    try:
        out = scan("--pid", p.pid)
        assert out.returncode == 0 and out.stdout == "", out
        js = json.loads(scan("--pid", p.pid, "--json").stdout)
        assert js["processes"] == [] and js["scanned"] == 1, js
    finally:
        p.stdin.close()
        p.wait(timeout=TIMEOUT)


def test_scan_errors_and_conventions():
    assert scan("--pid", "0").returncode == 2
    assert scan("--bogus").returncode == 2
    gone = scan("--pid", "2147483647")
    assert gone.returncode == 2 and "no such process" in gone.stderr, gone
    v = scan("--version")
    assert v.returncode == 0 and v.stdout.startswith("pristine-scan "), v
    h = scan("--help")
    assert h.returncode == 0 and "--pid" in h.stdout and "--json" in h.stdout


def test_scan_does_not_list_the_librarys_own_threads():
    """Under the library the template and spares block every signal: not drift."""
    p = start([EVIDENCE, "drift", "--fs", "--hold"], shim=True)
    try:
        tasks = os.listdir(f"/proc/{p.pid}/task")
        names = [pathlib.Path(f"/proc/{p.pid}/task/{t}/comm").read_text().strip() for t in tasks]
        assert "pristine-tmpl" in names, names
        out = scan("--pid", p.pid)
        assert out.returncode == 1, out
        [line] = out.stdout.splitlines()
        assert " fs (main shared, thread private)" in line, out.stdout
        assert "pristine-tmpl" not in line, out.stdout
    finally:
        p.stdin.close()
        p.wait(timeout=TIMEOUT)
