# SPDX-License-Identifier: Apache-2.0
"""The JSON report (PRISTINE_OPTIONS=report=PATH): counters, call sites, raw frames (module, build
id, module-relative address; pristine-report symbolizes them), one file per process, written
atomically when a new site appears and at exit.

The probe normally leaves with _exit(); --exit-normally makes it call exit() so that the report,
written by an atexit handler, appears.
"""

import json
import os
import pathlib
import subprocess

import pytest

from conftest import PROBE, ROOT, SHIM, describe

SITE_FUNCTION = "create_child_from_tainted_worker"  # testapps/probe.cc


def read_report(tmp_path, result, stem="r"):
    path = tmp_path / f"{stem}.{result['pid']}.json"
    assert path.exists(), f"no report {path}; directory has {os.listdir(tmp_path)}\n{describe(result)}"
    return json.loads(path.read_text())


def frame_functions(site, report_path):
    """The symbolized function names of a site's frames (pristine-report --json)."""
    out = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts" / "pristine-report"), "--json",
                          str(report_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    merged = json.loads(out.stdout)
    keys = [(f["module"], f["build_id"], f["address"]) for f in site["frames"]]
    for s in merged["sites"]:
        if [(f["module"], f["build_id"], f["address"]) for f in s["frames"]] == keys:
            return [x["function"] or "" for f in s["frames"] for x in f["symbols"]]
    raise AssertionError(f"site not found in {merged}")


def report_path(tmp_path, result, stem="r"):
    return tmp_path / f"{stem}.{result['pid']}.json"


def test_report_counts_and_names_the_creating_function(run_probe, tmp_path):
    # fs: isolated only by forwarding (a namespace would be repaired by the new thread).
    r = run_probe(["--taint", "fs", "--child-creates", "4", "--exit-normally"], shim=True,
                  options=f"report={tmp_path}/r.%p.json")
    doc = read_report(tmp_path, r)
    assert doc["pid"] == r["pid"]
    # The worker and its four children.
    assert doc["created"] == 5, doc
    assert doc["forwarded"] == 4, doc
    assert doc["dimensions"] == {"fs": 4}, doc
    assert doc["decisions"]["forwarded"] == 4, doc
    [site] = doc["sites"]
    assert site["count"] == 4 and site["dimensions"] == ["fs"], site
    assert site["decision"] == "forwarded" and site["reason"] is None, site
    assert 1 <= len(site["frames"]) <= 16, site
    for f in site["frames"]:
        assert set(f) == {"module", "build_id", "address"}, f
        assert isinstance(f["address"], int) and f["address"] >= 0, f
    functions = frame_functions(site, report_path(tmp_path, r))
    # A static function, named from the executable's .symtab.
    assert any(SITE_FUNCTION in fn for fn in functions), functions
    assert any(pathlib.Path(f["module"]).resolve() == PROBE.resolve() for f in site["frames"])
    # The shim's own frames are not in the stack: frame 0 is in the probe.
    assert "libpristine" not in site["frames"][0]["module"], site
    # Written atomically: no temporary file left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"r.{r['pid']}.json"]


@pytest.mark.parametrize("api", ["std_thread", "thrd"])
def test_report_site_through_other_apis(run_probe, tmp_path, api):
    r = run_probe(["--api", api, "--taint", "net", "--exit-normally"], shim=True,
                  options=f"report={tmp_path}/r.%p.json")
    [site] = read_report(tmp_path, r)["sites"]
    assert any(SITE_FUNCTION in fn for fn in frame_functions(site, report_path(tmp_path, r))), site


def test_report_restricted_site_says_why(run_probe, tmp_path):
    r = run_probe(["--taint", "fs", "--taint", "seccomp", "--exit-normally"], shim=True,
                  options=f"report={tmp_path}/r.%p.json")
    doc = read_report(tmp_path, r)
    [site] = doc["sites"]
    assert site["decision"] == "restricted", site
    assert "seccomp" in site["reason"], site
    assert doc["forwarded"] == 0, doc


def test_report_without_tainted_creates(run_probe, tmp_path):
    r = run_probe(["--exit-normally"], shim=True, options=f"report={tmp_path}/r.%p.json")
    doc = read_report(tmp_path, r)
    assert doc["created"] == 2 and doc["forwarded"] == 0 and doc["sites"] == [], doc


def test_distinct_sites_are_separate(run_probe, tmp_path):
    # --pre-create: the worker creates one child clean (no site), then tainted children.
    r = run_probe(["--pre-create", "--taint", "net", "--child-creates", "2", "--exit-normally"],
                  shim=True, options=f"report={tmp_path}/r.%p.json")
    doc = read_report(tmp_path, r)
    assert doc["created"] == 4, doc
    assert sum(s["count"] for s in doc["sites"]) == 2, doc


def test_relative_report_path_is_taken_from_the_start_directory(tmp_path):
    if not SHIM.exists():
        pytest.skip("shim not built")
    env = dict(os.environ, LD_PRELOAD=str(SHIM), PRISTINE_OPTIONS="report=rel.%p.json")
    proc = subprocess.run([str(PROBE), "--taint", "fs", "--exit-normally"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pid = json.loads(proc.stdout)["pid"]
    assert (tmp_path / f"rel.{pid}.json").exists(), os.listdir(tmp_path)


def test_unwritable_report_path_warns_and_host_still_succeeds(tmp_path):
    if not SHIM.exists():
        pytest.skip("shim not built")
    env = dict(os.environ, LD_PRELOAD=str(SHIM),
               PRISTINE_OPTIONS=f"report={tmp_path}/missing-dir/r.json")
    proc = subprocess.run([str(PROBE), "--taint", "net", "--exit-normally"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cannot write the report" in proc.stderr, proc.stderr


def test_multi_process_reports_one_per_pid_and_merge(tmp_path):
    """A shell (itself under the shim) runs the probe twice: each process writes its own report
    through %p, and pristine-report merges the identical call sites."""
    if not SHIM.exists():
        pytest.skip("shim not built")
    env = dict(os.environ, LD_PRELOAD=str(SHIM), PRISTINE_OPTIONS=f"report={tmp_path}/x.%p.json")
    script = (f"{PROBE} --taint fs --child-creates 2 --exit-normally; "
              f"{PROBE} --taint fs --child-creates 3 --exit-normally; true")
    proc = subprocess.run(["/bin/sh", "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pids = [json.loads(line)["pid"] for line in proc.stdout.splitlines() if line.strip()]
    assert len(pids) == 2
    reports = sorted(tmp_path.glob("x.*.json"))
    names = {p.name for p in reports}
    for pid in pids:
        assert f"x.{pid}.json" in names, names
    probe_docs = [json.loads((tmp_path / f"x.{pid}.json").read_text()) for pid in pids]
    assert [d["forwarded"] for d in probe_docs] == [2, 3]
    out = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts" / "pristine-report"), "--json",
                          *[str(p) for p in reports]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    merged = json.loads(out.stdout)
    assert merged["forwarded"] == 5, merged
    assert merged["reports"] == len(reports)
    [site] = merged["sites"]
    assert site["count"] == 5 and sorted(site["pids"]) == sorted(pids), site
    assert any(SITE_FUNCTION in (x["function"] or "") for f in site["frames"]
               for x in f["symbols"]), site


def test_forked_child_writes_its_own_report(tmp_path):
    """A forked child that leaves through exit() (a subshell) reports its own creates only
    (report_empty=1: the shells, which create no thread, write theirs too)."""
    if not SHIM.exists():
        pytest.skip("shim not built")
    env = dict(os.environ, LD_PRELOAD=str(SHIM),
               PRISTINE_OPTIONS=f"report={tmp_path}/f.%p.json:report_empty=1")
    script = f"( {PROBE} --taint fs --child-creates 2 --exit-normally >/dev/null; exit 0 ); exit 0"
    proc = subprocess.run(["/bin/bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
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
