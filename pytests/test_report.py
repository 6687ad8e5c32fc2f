# SPDX-License-Identifier: Apache-2.0
"""The JSON report (README, "The JSON report"; PRISTINE_OPTIONS=report=PATH): counters, call
sites, raw frames (module, build id, module-relative address; pristine-report symbolizes them),
where the taint came from, file and line, what produced the report, kept up to date while the
process runs. Where and how the files are written is test_report_files.py's.

With the probe (which normally leaves with _exit(); --exit-normally makes it call exit() so that
the report, written at exit, appears) and build/testapps/evidence (see its header).
"""

import json
import os
import pathlib
import re
import shutil
import signal
import stat

import pytest

from programs import (APPS, PRISTINE_REPORT, PROBE, PYTHON, ROOT, describe, need, pristine_report,
                      run, run_ok, start, symbolized, under)

pytestmark = pytest.mark.root

SITE_FUNCTION = "create_child_from_tainted_worker"  # testapps/probe.cc
EVIDENCE = APPS / "evidence"
SOURCE = ROOT / "testapps" / "evidence.cc"
TIMEOUT = 60


def read_report(tmp_path, result, stem="r"):
    path = tmp_path / f"{stem}.{result['pid']}.json"
    assert path.exists(), f"no report {path}; directory has {os.listdir(tmp_path)}\n{describe(result)}"
    return json.loads(path.read_text())


def frame_functions(site, report_path):
    """The symbolized function names of a site's frames (pristine-report --json)."""
    merged = symbolized(report_path)
    keys = [(f["module"], f["build_id"], f["address"]) for f in site["frames"]]
    for s in merged["sites"]:
        if [(f["module"], f["build_id"], f["address"]) for f in s["frames"]] == keys:
            return [x["function"] or "" for f in s["frames"] for x in f["symbols"]]
    raise AssertionError(f"site not found in {merged}")


def report_path(tmp_path, result, stem="r"):
    return tmp_path / f"{stem}.{result['pid']}.json"


def site_lines():
    """Source lines of SITE-1..3 in testapps/evidence.cc."""
    lines = {}
    for n, text in enumerate(SOURCE.read_text().splitlines(), 1):
        m = re.search(r"// (SITE-\d)$", text)
        if m:
            lines[m.group(1)] = n
    assert len(lines) == 3, lines
    return lines


def frame_names(frames):
    return [s.get("function") or "" for f in frames for s in f.get("symbols", [])]


def frame_lines(frames, file_name):
    return {s.get("line") for f in frames for s in f.get("symbols", [])
            if (s.get("file") or "").endswith(file_name)}


def only_report(tmp_path):
    files = [p for p in tmp_path.iterdir() if p.name.startswith("r.")]
    assert len(files) == 1, sorted(p.name for p in tmp_path.iterdir())
    return files[0]


# --- Counters and call sites ---------------------------------------------------------------------

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


# --- Reports kept up to date ------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_daemon_leaves_a_report_naming_its_sites(tmp_path, sig):
    p = start([EVIDENCE, "three-sites", "--hold"], shim=True, options=f"report={tmp_path}/r.%p.json")
    p.send_signal(sig)
    p.wait(timeout=TIMEOUT)
    assert p.returncode == -sig
    report = tmp_path / f"r.{p.pid}.json"
    assert report.exists(), os.listdir(tmp_path)
    doc = json.loads(report.read_text())
    assert doc["final"] is False and doc["pid"] == p.pid, doc
    assert len(doc["sites"]) == 3, doc
    merged = symbolized(report)
    for site in merged["sites"]:
        assert any("SpawnThree" in n for n in frame_names(site["frames"])), site
    # Nothing but the report is left in the directory (no temporary file).
    assert [x.name for x in tmp_path.iterdir()] == [report.name]


def test_report_counts_a_create_whose_thread_exits_the_process_at_once(tmp_path):
    """The created thread (SCHED_FIFO, same CPU) calls exit() before the create can return: the
    report written by that exit() still counts the forwarded create."""
    taskset = need("taskset")
    under([taskset, "-c", "0", EVIDENCE, "exit-race", "--fs"], f"report={tmp_path}/r.%p.json")
    doc = json.loads(only_report(tmp_path).read_text())
    assert doc["forwarded"] == 1 and doc["tainted"] == 1, doc
    assert doc["decisions"]["forwarded"] == 1, doc
    [site] = doc["sites"]
    assert site["count"] == 1 and site["decision"] == "forwarded", site


# --- Where the taint came from ------------------------------------------------------------------

def test_report_names_the_origin_of_the_taint(tmp_path):
    under([EVIDENCE, "three-sites"], f"report={tmp_path}/r.%p.json")
    report = only_report(tmp_path)
    doc = json.loads(report.read_text())
    for site in doc["sites"]:
        [origin] = site["origins"]
        assert origin["dimensions"] == ["net"] and origin["call"] == "unshare", origin
        assert origin["tid"] == site["thread"]["tid"], site
        ns = site["namespaces"]["net"]
        assert ns["thread"] != ns["baseline"] and ns["baseline"] is not None, ns
        assert site["thread"]["name"] == "evidence", site
    merged = symbolized(report)
    for site in merged["sites"]:
        [origin] = site["origins"]
        names = frame_names(origin["frames"])
        assert any("EnterNetns" in n for n in names), names
    text = pristine_report(report).stdout
    assert "net changed by unshare" in text and "EnterNetns" in text, text


# --- File and line ------------------------------------------------------------------------------

def test_three_sites_in_one_optimised_function_get_three_lines(tmp_path):
    under([EVIDENCE, "three-sites"], f"report={tmp_path}/r.%p.json")
    merged = symbolized(only_report(tmp_path))
    assert len(merged["sites"]) == 3, merged
    found = set()
    for site in merged["sites"]:
        lines = frame_lines(site["frames"], "evidence.cc")
        found |= lines & set(site_lines().values())
    assert found == set(site_lines().values()), (found, site_lines())


def test_stripped_binary_is_symbolized_from_its_build_id_debug_file(tmp_path):
    """The debug file is found where Debian puts it, /usr/lib/debug/.build-id/xx/yyyy.debug (a
    private mount namespace puts a scratch directory there)."""
    work = tmp_path / "work"
    work.mkdir()
    binary = work / "evidence-stripped"
    debug = work / "evidence.debug"
    run_ok(["objcopy", "--only-keep-debug", EVIDENCE, debug])
    run_ok(["strip", "--strip-all", "-o", binary, EVIDENCE])
    under([binary, "three-sites"], f"report={tmp_path}/r.%p.json")
    report = only_report(tmp_path)
    doc = json.loads(report.read_text())
    [build_id] = {f["build_id"] for s in doc["sites"] for f in s["frames"]
                  if f["module"] == str(binary)}
    assert build_id, doc
    # Without the debug file: no name for the program's static functions.
    bare = symbolized(report, extra=["--debug-dir", str(tmp_path / "none")])
    assert not any("SpawnThree" in n for s in bare["sites"] for n in frame_names(s["frames"]))
    ids = tmp_path / "debug" / ".build-id" / build_id[:2]
    ids.mkdir(parents=True)
    shutil.copy(debug, ids / f"{build_id[2:]}.debug")
    script = (f"mount --bind {tmp_path / 'debug' / '.build-id'} /usr/lib/debug/.build-id && "
              f"exec {PYTHON} {PRISTINE_REPORT} --json {report}")
    if not pathlib.Path("/usr/lib/debug/.build-id").is_dir():
        pytest.fail("/usr/lib/debug/.build-id does not exist on this machine")
    out = run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], build_dir=True,
              timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    merged = json.loads(out.stdout)
    found = set()
    for site in merged["sites"]:
        assert any("SpawnThree" in n for n in frame_names(site["frames"])), site
        found |= frame_lines(site["frames"], "evidence.cc")
    assert set(site_lines().values()) <= found, found


def test_module_files_are_not_read_at_exit(tmp_path):
    """A library in the creating stacks (a copy of libstdc++, where std::thread creates) is
    replaced by a FIFO before the program exits: writing the report does not open it (the old
    exit-time symbolizer hung there, or crashed on a crafted file)."""
    libstdcxx = run_ok([PYTHON, "-c", "import ctypes.util,sys;"
                        "print(ctypes.util.find_library('stdc++'))"]).stdout.strip()
    source = next((pathlib.Path(d) / libstdcxx for d in ("/lib/x86_64-linux-gnu",
                   "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                   "/usr/lib/aarch64-linux-gnu") if (pathlib.Path(d) / libstdcxx).exists()), None)
    if not libstdcxx or source is None:
        pytest.fail("libstdc++ not found")
    lib = tmp_path / "lib"
    lib.mkdir()
    copy = lib / libstdcxx
    shutil.copy(source, copy)
    p = start([EVIDENCE, "three-sites", "--hold"], shim=True, options=f"report={tmp_path}/r.%p.json",
              env={"LD_LIBRARY_PATH": str(lib)})
    copy.unlink()
    os.mkfifo(copy)
    p.stdin.close()
    try:
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    doc = json.loads((tmp_path / f"r.{p.pid}.json").read_text())
    assert doc["final"] is True and len(doc["sites"]) == 3
    assert any(f["module"] == str(copy) for s in doc["sites"] for f in s["frames"]), doc


def test_frames_in_no_module_carry_no_absolute_address(tmp_path):
    if os.uname().machine != "x86_64":
        pytest.skip("the anonymous code is x86_64 machine code")
    under([EVIDENCE, "anon-frame"], f"report={tmp_path}/r.%p.json")
    report = only_report(tmp_path)
    [site] = json.loads(report.read_text())["sites"]
    first = site["frames"][0]
    assert first["module"] is None and first["address"] is None, site["frames"]
    assert stat.S_IMODE(report.stat().st_mode) == 0o600


# --- What produced the report, and when there is one --------------------------------------------

def test_report_says_what_produced_it(tmp_path):
    options = f"report={tmp_path}/r.%p.json:affinity=inherit"
    proc = under([PROBE, "--taint", "net", "--exit-normally"], options)
    pid = json.loads(proc.stdout)["pid"]
    doc = json.loads((tmp_path / f"r.{pid}.json").read_text())
    assert doc["schema"] == 2 and isinstance(doc["version"], str) and doc["version"], doc
    assert doc["pid"] == pid and doc["ppid"] == os.getpid(), doc
    assert pathlib.Path(doc["exe"]).resolve() == PROBE.resolve(), doc
    assert doc["argv"] == [str(PROBE), "--taint", "net", "--exit-normally"], doc
    assert doc["options"]["raw"] == options, doc
    assert doc["options"]["mode"] == "enforce" and doc["options"]["verify"] == "fast", doc
    assert doc["options"]["policy"]["affinity"] == "inherit", doc
    assert doc["options"]["policy"]["net"] == "isolate", doc
    assert doc["final"] is True, doc


def test_no_report_from_a_process_that_did_nothing_unless_asked(tmp_path):
    under(["/bin/sh", "-c", "/bin/true; /bin/true"], f"report={tmp_path}/r.%p.json")
    assert list(tmp_path.iterdir()) == []
    proc = under(["/bin/true"], f"report={tmp_path}/r.%p.json:report_empty=1")
    docs = [json.loads(p.read_text()) for p in tmp_path.iterdir()]
    assert len(docs) == 1 and docs[0]["created"] == 0 and docs[0]["sites"] == [], docs
    assert proc.stderr == ""
