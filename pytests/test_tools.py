# SPDX-License-Identifier: Apache-2.0
"""scripts/pristine-run and scripts/pristine-report."""

import importlib.machinery
import importlib.util
import json
import os
import re
import shlex
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
    for var in ("LD_PRELOAD", "PRISTINE_OPTIONS", "PRISTINE_LIB", "PRISTINE_RUN"):
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

def load_wrapper():
    """scripts/pristine-run as a module (its option table)."""
    loader = importlib.machinery.SourceFileLoader("pristine_run", str(RUN))
    spec = importlib.util.spec_from_loader("pristine_run", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


HELP_LINE = re.compile(r"^  ([a-z_]+)=(\S+) \(default: ([^)]*)\) (.+)$")


def library_help(shim):
    """{key: (values, default, meaning)} from the library's PRISTINE_OPTIONS=help=1 text."""
    p = subprocess.run(["/bin/true"], env=clean_env(LD_PRELOAD=str(shim), PRISTINE_OPTIONS="help=1"),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    table = {m.group(1): m.groups()[1:] for m in map(HELP_LINE.match, p.stderr.splitlines()) if m}
    assert len(table) > 20, p.stderr
    return table


def test_help_is_complete():
    p = run(["--help"])
    assert p.returncode == 0 and p.stderr == ""
    w = load_wrapper()
    for o in w.OPTIONS:
        assert o.flag in p.stdout and o.key in p.stdout, o
        for v in o.values:
            assert v in p.stdout, (o.key, v)
    for word in ("--strict", "--policy", "--print-env", "--version", "CMD", "125", "126", "127",
                 "PRISTINE_LIB", "PRISTINE_BUILD_DIR", *w.DIMENSIONS, *w.SECURITY_DIMENSIONS):
        assert word in p.stdout, word


def test_version():
    p = run(["--version"])
    want = subprocess.run(["sh", str(ROOT / "scripts" / "version")], capture_output=True,
                          text=True).stdout.strip()
    assert p.returncode == 0 and p.stdout == f"pristine-run {want}\n", p


def test_wrapper_table_is_the_library_table(built):
    """Flags and keys one to one: the wrapper's table against the library's (options.inc, as
    help=1 prints it), key by key: values, default and meaning."""
    w = load_wrapper()
    lib = library_help(SHIM)
    plain = {k: v for k, v in lib.items() if v[0] not in ("isolate|inherit", "inherit")}
    assert {o.key for o in w.OPTIONS} == set(plain), (sorted(plain), [o.key for o in w.OPTIONS])
    for o in w.OPTIONS:
        values, default, meaning = lib[o.key]
        assert "|".join(o.values) == values, o.key
        assert o.default == default, o.key
        assert o.help == meaning, o.key
        assert o.flag == "--" + o.key.replace("_", "-"), o
    dims = {k for k, v in lib.items() if v[0] == "isolate|inherit"}
    assert dims == set(w.DIMENSIONS)
    assert {k for k, v in lib.items() if v[0] == "inherit"} == set(w.SECURITY_DIMENSIONS)
    assert {k for k in dims if lib[k][1] == "isolate"} == set(w.DEFAULT_ISOLATED)


def print_env(args, **env):
    p = run([*args, "--print-env"], env=clean_env(**env))
    assert p.returncode == 0, p.stderr
    return dict(line.split("=", 1) for line in p.stdout.splitlines())


def test_every_flag_sets_its_key(built):
    w = load_wrapper()
    for o in w.OPTIONS:
        if o.key == "help":
            continue
        for value in o.values:
            value = "/tmp/x.%p.json" if value == "PATH" else value
            got = print_env([o.flag, value])
            assert shlex.split(got["PRISTINE_OPTIONS"]) == [f"{o.key}={value}"], (o.flag, got)
            assert print_env([f"{o.flag}={value}"]) == got


def test_print_env(built):
    got = print_env(["--mode", "audit", "--report", "/tmp/pristine.%p.json", "--policy",
                     "net=inherit:uts=inherit,sigmask=isolate"],
                    PRISTINE_OPTIONS="log=off", LD_PRELOAD="/lib/x86_64-linux-gnu/libc.so.6")
    assert os.path.realpath(got["LD_PRELOAD"].split(":")[0]) == os.path.realpath(SHIM)
    assert got["LD_PRELOAD"].split(":")[1:] == ["/lib/x86_64-linux-gnu/libc.so.6"]
    assert got["PRISTINE_OPTIONS"] == ("log=off:mode=audit:report=/tmp/pristine.%p.json:"
                                       "net=inherit:uts=inherit:sigmask=isolate")
    # It runs nothing: a command with it is refused.
    p = run(["--print-env", "--", "/bin/true"])
    assert p.returncode == 125 and "--print-env" in p.stderr, p


def test_policy_takes_what_the_variable_takes(built):
    got = print_env(["--policy", "net=inherit:caps=inherit", "--policy", "affinity=isolate"])
    assert got["PRISTINE_OPTIONS"] == "net=inherit:caps=inherit:affinity=isolate"
    p = run(["--policy", "mode=audit", "/bin/true"])
    assert p.returncode == 125 and "--mode" in p.stderr, p.stderr


def test_bad_inherited_options_name_every_key():
    w = load_wrapper()
    for bad in ("colour=blue", "justaword"):
        p = run(["/bin/true"], env=clean_env(PRISTINE_OPTIONS=f"mode=audit:{bad}"))
        assert p.returncode == 125, p
        assert "PRISTINE_OPTIONS" in p.stderr and bad in p.stderr, p.stderr
        for key in w.ALL_KEYS:
            assert re.search(rf"\b{key}\b", p.stderr), (key, p.stderr)


def test_main_thread_hint_names_the_flag_under_the_wrapper(built):
    p = run(["--", PROBE, "--main-taint", "net"])
    assert p.returncode == 0, p.stderr
    hint = [l for l in p.stderr.splitlines() if "main thread" in l]
    assert len(hint) == 1 and "pristine-run --baseline first-thread" in hint[0], p.stderr
    direct = subprocess.run([str(PROBE), "--main-taint", "net"], capture_output=True, text=True,
                            env=clean_env(LD_PRELOAD=str(SHIM)), timeout=120, cwd=ROOT)
    hint = [l for l in direct.stderr.splitlines() if "main thread" in l]
    assert len(hint) == 1 and "PRISTINE_OPTIONS=baseline=first-thread" in hint[0], direct.stderr


def test_installs_the_build_packages_when_missing(tmp_path):
    """A checkout without the library and without cmake, g++ and make on PATH: pristine-run says
    it installs the build packages and runs scripts/install-deps build (here a stand-in that
    records its arguments and fails, so nothing is installed), then exits 125."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(RUN, tmp_path / "scripts" / "pristine-run")
    (tmp_path / "CMakeLists.txt").write_text("")
    record = tmp_path / "called"
    stub = tmp_path / "scripts" / "install-deps"
    stub.write_text(f"#!/bin/sh\necho \"$@\" > {record}\nexit 1\n")
    stub.chmod(0o755)
    empty = tmp_path / "bin"
    empty.mkdir()
    env = clean_env(PATH=str(empty), PRISTINE_BUILD_DIR=str(tmp_path / "build"))
    p = subprocess.run([str(tmp_path / "scripts" / "pristine-run"), "/bin/true"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 125, p
    assert "installing the build packages" in p.stderr and "cmake" in p.stderr, p.stderr
    assert record.read_text().split() == ["build"]


@pytest.mark.parametrize("args, names", [
    (["--mode", "bogus"], ["--mode", "bogus", "enforce"]),
    (["--mode"], ["--mode", "missing"]),
    (["--policy", "net=sometimes"], ["--policy", "sometimes", "inherit"]),
    (["--policy", "warp=inherit"], ["--policy", "warp", "affinity"]),
    (["--policy", "caps=isolate"], ["--policy", "caps", "inherit"]),
    (["--policy", "net"], ["--policy", "net", "KEY="]),
    (["--verify", "slow"], ["--verify", "slow", "strict"]),
    (["--verbosity", "3"], ["--verbosity", "3", "0, 1 or 2"]),
    (["--forward", "some"], ["--forward", "auto", "all"]),
    (["--report-empty", "yes"], ["--report-empty", "0 or 1"]),
    (["--policy", "net=inherit,,"], ["--policy", "empty"]),
    (["--baseline", "later"], ["--baseline", "later", "first-thread"]),
    (["--report", "/nonexistent-dir/r.json"], ["--report", "/nonexistent-dir"]),
    (["--report", ""], ["--report", "empty"]),
    (["--log", "/nonexistent-dir/log"], ["--log", "/nonexistent-dir"]),
    (["--strict=yes"], ["--strict"]),
    (["--frobnicate"], ["--frobnicate", "--mode"]),
    ([], ["no command"]),
])
def test_bad_input_exits_125_naming_the_option(args, names):
    p = run([*args, "--", "/bin/true"] if args and args != ["--mode"] else args)
    assert p.returncode == 125, (p.returncode, p.stderr)
    for n in names:
        assert n in p.stderr, p.stderr
    assert p.stdout == ""


def test_bad_inherited_options_refused():
    p = run(["/bin/true"], env=clean_env(PRISTINE_OPTIONS="mode=enforce:verify=sometimes"))
    assert p.returncode == 125
    assert "PRISTINE_OPTIONS" in p.stderr and "verify=sometimes" in p.stderr


def test_validation_happens_before_the_command_runs(tmp_path):
    marker = tmp_path / "ran"
    p = run(["--mode", "nope", "--", "/bin/sh", "-c", f"touch {marker}"])
    assert p.returncode == 125 and not marker.exists()


def test_own_errors_never_collide_with_the_commands_status(built):
    assert run(["--", "/bin/sh", "-c", "exit 2"]).returncode == 2
    assert run(["--mode", "nope", "--", "/bin/sh", "-c", "exit 2"]).returncode == 125


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
