# SPDX-License-Identifier: Apache-2.0
"""The files the library writes (README, "The JSON report": "Files the library writes"): where a
report goes (a relative path, %p, forked children, /dev/stderr), that it is written exclusively,
atomically and 0600, never through a planted name, never blocking on a FIFO, and never where a
chroot or another mount namespace would send it; an unwritable path is said in words and loses the
program nothing. The log file's own rules are test_log.py's.
"""

import json
import os
import shutil
import stat

import pytest

from programs import APPS, PROBE, SHIM, describe, run, run_ok, symbolized, under

pytestmark = pytest.mark.root

SITE_FUNCTION = "create_child_from_tainted_worker"  # testapps/probe.cc
EVIDENCE = APPS / "evidence"
FAKE_UNWIND = APPS / "libfake_unwind.so"
TIMEOUT = 60
USER = "pr-ev-user"


# --- Where a report goes -----------------------------------------------------------------------

def test_relative_report_path_is_taken_from_the_start_directory(tmp_path):
    proc = under([PROBE, "--taint", "fs", "--exit-normally"], "report=rel.%p.json", cwd=tmp_path)
    pid = json.loads(proc.stdout)["pid"]
    assert (tmp_path / f"rel.{pid}.json").exists(), os.listdir(tmp_path)


def test_multi_process_reports_one_per_pid_and_merge(tmp_path):
    """A shell (itself under the shim) runs the probe twice: each process writes its own report
    through %p, and pristine-report merges the identical call sites."""
    script = (f"{PROBE} --taint fs --child-creates 2 --exit-normally; "
              f"{PROBE} --taint fs --child-creates 3 --exit-normally; true")
    proc = under(["/bin/sh", "-c", script], f"report={tmp_path}/x.%p.json")
    pids = [json.loads(line)["pid"] for line in proc.stdout.splitlines() if line.strip()]
    assert len(pids) == 2
    reports = sorted(tmp_path.glob("x.*.json"))
    names = {p.name for p in reports}
    for pid in pids:
        assert f"x.{pid}.json" in names, names
    probe_docs = [json.loads((tmp_path / f"x.{pid}.json").read_text()) for pid in pids]
    assert [d["forwarded"] for d in probe_docs] == [2, 3]
    merged = symbolized(*reports)
    assert merged["forwarded"] == 5, merged
    assert merged["reports"] == len(reports)
    [site] = merged["sites"]
    assert site["count"] == 5 and sorted(site["pids"]) == sorted(pids), site
    assert any(SITE_FUNCTION in (x["function"] or "") for f in site["frames"]
               for x in f["symbols"]), site


def test_forked_child_writes_its_own_report(tmp_path):
    """A forked child that leaves through exit() (a subshell) reports its own creates only
    (report_empty=1: the shells, which create no thread, write theirs too)."""
    script = f"( {PROBE} --taint fs --child-creates 2 --exit-normally >/dev/null; exit 0 ); exit 0"
    under(["/bin/bash", "-c", script], f"report={tmp_path}/f.%p.json:report_empty=1")
    docs = [json.loads(p.read_text()) for p in tmp_path.glob("f.*.json")]
    pids = {d["pid"] for d in docs}
    assert len(docs) >= 3 and len(pids) == len(docs), docs  # bash, the subshell, the probe
    assert sum(d["forwarded"] for d in docs) == 2, docs
    assert not list(tmp_path.glob("*.tmp.*"))


def test_report_to_a_non_regular_file_is_written_in_place(run_probe):
    """report=/dev/stderr: written to the stream, never renamed over the device."""
    r = run_probe(["--taint", "fs", "--exit-normally"], shim=True, options="report=/dev/stderr")
    docs = [json.loads(line) for line in r["_stderr"].splitlines() if line.startswith('{"schema"')]
    assert len(docs) == 1 and docs[0]["forwarded"] == 1, describe(r)
    assert os.path.exists("/dev/stderr")


# --- Nothing planted is followed or opened ---------------------------------------------------------

@pytest.mark.parametrize("plant", ["symlink", "fifo"])
def test_planted_temporary_name_is_neither_followed_nor_opened(tmp_path, plant):
    """As pid 1 of a new pid namespace the program's pid is known in advance: whatever is planted
    at PATH.tmp.1 (the old temporary name) is left alone, and the report is written."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    planted = out / "r.json.tmp.1"
    if plant == "symlink":
        planted.symlink_to(victim)
    else:
        os.mkfifo(planted)
    run_ok(["unshare", "--pid", "--fork", "--kill-child", "env", f"LD_PRELOAD={SHIM}",
            f"PRISTINE_OPTIONS=report={out}/r.json", PROBE, "--taint", "fs", "--exit-normally"],
           timeout=TIMEOUT)
    assert victim.read_text() == "precious\n"
    report = out / "r.json"
    assert json.loads(report.read_text())["tainted"] == 1
    assert stat.S_IMODE(report.stat().st_mode) == 0o600


def test_fifo_at_the_report_path_does_not_hang_the_program(tmp_path):
    fifo = tmp_path / "r.json"
    os.mkfifo(fifo)
    proc = under([PROBE, "--taint", "net", "--exit-normally"], f"report={fifo}")
    assert f"cannot write the report {fifo} (exists and is not a regular file)" in proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


# --- A report that cannot be written ----------------------------------------------------------------

def test_unwritable_report_path_warns_and_host_still_succeeds(tmp_path):
    proc = under([PROBE, "--taint", "net", "--exit-normally"],
                 f"report={tmp_path}/missing-dir/r.json")
    assert "cannot write the report" in proc.stderr, proc.stderr


@pytest.mark.parametrize("target, words", [
    ("dir", "Is a directory"),
    ("/dev/full", "exists and is not a regular file"),
    ("missing", "No such file or directory"),
])
def test_unwritable_report_path_is_named_with_the_error_in_words(tmp_path, target, words):
    path = {"dir": str(tmp_path), "/dev/full": "/dev/full",
            "missing": str(tmp_path / "no" / "r.json")}[target]
    proc = under([PROBE, "--taint", "net", "--exit-normally"], f"report={path}")
    lines = [x for x in proc.stderr.splitlines() if "cannot write the report" in x]
    assert len(lines) == 1 and path in lines[0] and words in lines[0], proc.stderr


def test_report_permission_denied_is_said_in_words(tmp_path):
    run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", USER])
    run_ok(["id", USER])
    tmp_path.chmod(0o755)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o755)
    proc = run_ok(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups",
                   "env", f"LD_PRELOAD={SHIM}", f"PRISTINE_OPTIONS=report={closed}/r.json",
                   PROBE, "--taint", "fs", "--exit-normally"], timeout=TIMEOUT, cwd="/")
    lines = [x for x in proc.stderr.splitlines() if "cannot write the report" in x]
    assert len(lines) == 1 and f"{closed}/r.json" in lines[0], proc.stderr
    assert "Permission denied" in lines[0], proc.stderr


# --- Opened in the baseline, never through a tainted thread's root -------------------------------

def test_report_and_log_are_not_redirected_by_a_chroot(tmp_path):
    jail = tmp_path / "jail"
    (jail / "out").mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    under([EVIDENCE, "chroot", "--exit-from-worker", jail], f"report={out}/r.json:log={out}/log")
    assert (out / "r.json").exists() and "new call site" in (out / "log").read_text()
    assert list((jail / "out").iterdir()) == []


def test_libunwind_is_not_loaded_from_a_chroot(tmp_path):
    jail = tmp_path / "jail"
    for d in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib"):
        (jail / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(FAKE_UNWIND, jail / d / "libunwind.so.8")
    under([EVIDENCE, "chroot", jail], f"report={tmp_path}/r.%p.json")
    assert not (jail / "pwned").exists()
