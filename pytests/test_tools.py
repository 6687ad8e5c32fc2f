# SPDX-License-Identifier: Apache-2.0
"""scripts/pristine-run and scripts/pristine-report."""

import json
import os
import shutil
import signal
import subprocess

import pytest

from conftest import BUILD_DIR, PROBE, ROOT, SHIM

RUN = ROOT / "scripts" / "pristine-run"
REPORT = ROOT / "scripts" / "pristine-report"
SITE_FUNCTION = "create_child_from_tainted_worker"


def clean_env(**extra):
    env = dict(os.environ)
    for var in ("LD_PRELOAD", "PRISTINE_OPTIONS", "PRISTINE_LIB"):
        env.pop(var, None)
    env["PRISTINE_BUILD_DIR"] = str(BUILD_DIR)
    env.update(extra)
    return env


def run(args, env=None, **kw):
    return subprocess.run([str(RUN), *[str(a) for a in args]], env=env or clean_env(),
                          capture_output=True, text=True, timeout=600, cwd=ROOT, **kw)


@pytest.fixture
def built():
    if not SHIM.exists():
        pytest.skip("shim not built")


# --- pristine-run: validation -----------------------------------------------------------------

def test_help():
    p = run(["--help"])
    assert p.returncode == 0
    for word in ("--mode", "--policy", "--report", "--log", "--strict", "--baseline", "CMD"):
        assert word in p.stdout


@pytest.mark.parametrize("args, names", [
    (["--mode", "bogus"], ["--mode", "bogus", "enforce"]),
    (["--mode"], ["--mode", "missing"]),
    (["--policy", "net=sometimes"], ["--policy", "sometimes", "inherit"]),
    (["--policy", "warp=inherit"], ["--policy", "warp", "affinity"]),
    (["--policy", "caps=isolate"], ["--policy", "caps", "inherit"]),
    (["--policy", "net"], ["--policy", "net", "KEY="]),
    (["--policy", "net=inherit,,"], ["--policy", "empty"]),
    (["--baseline", "later"], ["--baseline", "later", "first-thread"]),
    (["--report", "/nonexistent-dir/r.json"], ["--report", "/nonexistent-dir"]),
    (["--report", ""], ["--report", "empty"]),
    (["--log", "/nonexistent-dir/log"], ["--log", "/nonexistent-dir"]),
    (["--strict=yes"], ["--strict"]),
    (["--frobnicate"], ["--frobnicate", "--mode"]),
    ([], ["no command"]),
])
def test_bad_input_exits_2_naming_the_option(args, names):
    p = run([*args, "--", "/bin/true"] if args and args != ["--mode"] else args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    for n in names:
        assert n in p.stderr, p.stderr
    assert p.stdout == ""


def test_bad_inherited_options_refused():
    p = run(["/bin/true"], env=clean_env(PRISTINE_OPTIONS="mode=enforce:verify=sometimes"))
    assert p.returncode == 2
    assert "PRISTINE_OPTIONS" in p.stderr and "verify=sometimes" in p.stderr


def test_validation_happens_before_the_command_runs(tmp_path):
    marker = tmp_path / "ran"
    p = run(["--mode", "nope", "--", "/bin/sh", "-c", f"touch {marker}"])
    assert p.returncode == 2 and not marker.exists()


# --- pristine-run: running ----------------------------------------------------------------------

def test_exit_code_passes_through(built):
    assert run(["--", "/bin/sh", "-c", "exit 7"]).returncode == 7
    assert run(["/bin/false"]).returncode == 1


def test_death_by_signal_passes_through(built):
    p = run(["--", "/bin/sh", "-c", "kill -TERM $$"])
    assert p.returncode == -signal.SIGTERM, p


def test_sigpipe_default_for_the_command(built):
    # Python ignores SIGPIPE; the wrapper must not hand that on.
    p = run(["--", "/bin/sh", "-c", "grep SigIgn /proc/self/status"])
    ignored = int(p.stdout.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)), p.stdout


def test_command_not_found(built):
    p = run(["/nonexistent/command"])
    assert p.returncode == 127 and "not found" in p.stderr


def test_composes_environment(built):
    env = clean_env(PRISTINE_OPTIONS="mode=audit:log=off", LD_PRELOAD="/lib/x86_64-linux-gnu/libc.so.6")
    p = run(["--mode", "enforce", "--policy", "net=inherit,affinity=inherit", "--strict",
             "--baseline", "first-thread", "--log", "stderr", "--",
             "/bin/sh", "-c", 'echo "$PRISTINE_OPTIONS"; echo "$LD_PRELOAD"'], env=env)
    assert p.returncode == 0, p.stderr
    options, preload = p.stdout.splitlines()
    # The existing options come first; the command line's come later and win.
    assert options == ("mode=audit:log=off:mode=enforce:net=inherit:affinity=inherit:"
                       "verify=strict:baseline=first-thread:log=stderr")
    entries = preload.split(":")
    assert os.path.realpath(entries[0]) == os.path.realpath(SHIM)
    assert entries[1:] == ["/lib/x86_64-linux-gnu/libc.so.6"]


def test_runs_the_probe_under_the_shim(built, tmp_path):
    p = run(["--report", f"{tmp_path}/r.%p.json", "--", PROBE, "--taint", "net",
             "--exit-normally"])
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert any("libpristine" in x for x in r["preloaded"]), r
    assert r["child"]["ns"]["net"] == r["baseline"]["ns"]["net"]
    assert (tmp_path / f"r.{r['pid']}.json").exists()


def test_mode_audit_through_the_wrapper(built):
    p = run(["--mode", "audit", "--", PROBE, "--taint", "net"])
    r = json.loads(p.stdout)
    assert r["child"]["ns"]["net"] == r["caller"]["ns"]["net"]


def test_builds_the_library_when_missing(tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    build = tmp_path / "build"
    p = run(["/bin/sh", "-c", 'echo "$LD_PRELOAD"'], env=clean_env(PRISTINE_BUILD_DIR=str(build)))
    assert p.returncode == 0, p.stderr
    lib = build / "shim" / "libpristine.so"
    assert lib.exists(), p.stderr
    assert p.stdout.strip() == str(lib)


# --- pristine-report ------------------------------------------------------------------------------

@pytest.fixture
def reports(built, tmp_path):
    env = clean_env(LD_PRELOAD=str(SHIM), PRISTINE_OPTIONS=f"report={tmp_path}/x.%p.json")
    # fs: isolated only by forwarding, so the counts are forwarded creates.
    for args in (["--taint", "fs", "--child-creates", "2"],
                 ["--taint", "fs", "--child-creates", "1"],
                 ["--taint", "fs", "--taint", "seccomp"]):
        p = subprocess.run([str(PROBE), *args, "--exit-normally"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
    return sorted(tmp_path.glob("x.*.json"))


def report(args):
    return subprocess.run(["/usr/bin/python3", str(REPORT), *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=60)


def test_report_summary(reports):
    p = report(reports)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "3 report(s)" in out
    assert "threads created   7" in out  # 3 workers + 4 children
    assert "forwarded         3" in out
    assert "fs" in out and "seccomp" in out
    assert SITE_FUNCTION in out
    assert "seccomp filter cannot be re-applied" in out
    assert "seen in 3 processes" in out


def test_report_json(reports):
    p = report(["--json", *reports])
    doc = json.loads(p.stdout)
    assert doc["created"] == 7 and doc["forwarded"] == 3
    [site] = doc["sites"]
    assert site["decisions"] == {"forwarded": 3, "restricted": 1}
    # Symbolized by pristine-report (libdw): demangled names and source lines.
    names = [s["function"] or "" for f in site["frames"] for s in f["symbols"]]
    assert any(f"{SITE_FUNCTION}(" in n for n in names), site
    assert any((s["file"] or "").endswith("probe.cc") and s["line"]
               for f in site["frames"] for s in f["symbols"]), site


def test_report_bad_files_are_named_and_skipped(reports, tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    bad_schema = tmp_path / "schema.json"
    bad_schema.write_text(json.dumps({"created": 1, "forwarded": "many", "sites": []}))
    missing = tmp_path / "missing.json"
    p = report([*reports, bad_json, bad_schema, missing])
    assert p.returncode == 2
    assert f"{bad_json}: not valid JSON" in p.stderr
    assert f"{bad_schema}: 'forwarded'" in p.stderr
    assert f"{missing}:" in p.stderr
    assert "3 report(s)" in p.stdout  # the good ones are still summarised


def test_report_nothing_usable(tmp_path):
    p = report([tmp_path / "missing.json"])
    assert p.returncode == 2 and p.stdout == "" and "no usable report" in p.stderr
