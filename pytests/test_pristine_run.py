# SPDX-License-Identifier: Apache-2.0
"""scripts/pristine-run (README, "Use it" and "Tools"; man/pristine-run.1): checks every option
before it starts anything (its own errors exit 125), one flag per option key, composes
LD_PRELOAD (sanitizer runtimes and jemalloc stay ahead of the library) and PRISTINE_OPTIONS, and
execs the command, whose status and death by signal pass through; it installs the build packages
and builds the library when they are missing."""

import json
import os
import re
import shlex
import shutil
import signal

import pytest

from programs import (PRISTINE_RUN, PROBE, SCRIPTS, SHIM, library_help,
                      load_pristine_run, need, run, run_ok)

RUN = PRISTINE_RUN


def pristine_run(args, env=None, **kw):
    """scripts/pristine-run ARGS in the clean environment plus `env`, with PRISTINE_BUILD_DIR."""
    kw.setdefault("timeout", 600)
    return run([RUN, *args], env=env, build_dir=True, **kw)


# --- pristine-run: validation -----------------------------------------------------------------

def test_help_is_complete():
    p = pristine_run(["--help"])
    assert p.returncode == 0 and p.stderr == ""
    w = load_pristine_run()
    for o in w.OPTIONS:
        assert o.flag in p.stdout and o.key in p.stdout, o
        for v in o.values:
            assert v in p.stdout, (o.key, v)
    for word in ("--strict", "--policy", "--print-env", "--version", "CMD", "125", "126", "127",
                 "PRISTINE_LIB", "PRISTINE_BUILD_DIR", *w.DIMENSIONS, *w.SECURITY_DIMENSIONS):
        assert word in p.stdout, word


def test_version():
    p = pristine_run(["--version"])
    want = run_ok(["sh", SCRIPTS / "version"]).stdout.strip()
    assert p.returncode == 0 and p.stdout == f"pristine-run {want}\n", p


def test_wrapper_table_is_the_library_table(shim):
    """Flags and keys one to one: the wrapper's table against the library's (options.inc, as
    help=1 prints it), key by key: values, default and meaning."""
    w = load_pristine_run()
    lib = library_help()
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
    p = pristine_run([*args, "--print-env"], env=env)
    assert p.returncode == 0, p.stderr
    return dict(line.split("=", 1) for line in p.stdout.splitlines())


@pytest.mark.slow
def test_every_flag_sets_its_key(shim):
    w = load_pristine_run()
    for o in w.OPTIONS:
        if o.key == "help":
            continue
        for value in o.values:
            value = "/tmp/x.%p.json" if value == "PATH" else value
            got = print_env([o.flag, value])
            assert shlex.split(got["PRISTINE_OPTIONS"]) == [f"{o.key}={value}"], (o.flag, got)
            assert print_env([f"{o.flag}={value}"]) == got


def test_print_env(shim):
    got = print_env(["--mode", "audit", "--report", "/tmp/pristine.%p.json", "--policy",
                     "net=inherit:uts=inherit,sigmask=isolate"],
                    PRISTINE_OPTIONS="log=off", LD_PRELOAD="/lib/x86_64-linux-gnu/libc.so.6")
    assert os.path.realpath(got["LD_PRELOAD"].split(":")[0]) == os.path.realpath(SHIM)
    assert got["LD_PRELOAD"].split(":")[1:] == ["/lib/x86_64-linux-gnu/libc.so.6"]
    assert got["PRISTINE_OPTIONS"] == ("log=off:mode=audit:report=/tmp/pristine.%p.json:"
                                       "net=inherit:uts=inherit:sigmask=isolate")
    # It runs nothing: a command with it is refused.
    p = pristine_run(["--print-env", "--", "/bin/true"])
    assert p.returncode == 125 and "--print-env" in p.stderr, p


def test_policy_takes_what_the_variable_takes(shim):
    got = print_env(["--policy", "net=inherit:caps=inherit", "--policy", "affinity=isolate"])
    assert got["PRISTINE_OPTIONS"] == "net=inherit:caps=inherit:affinity=isolate"
    p = pristine_run(["--policy", "mode=audit", "/bin/true"])
    assert p.returncode == 125 and "--mode" in p.stderr, p.stderr


def test_bad_inherited_options_name_every_key():
    w = load_pristine_run()
    for bad in ("colour=blue", "justaword"):
        p = pristine_run(["/bin/true"], env={"PRISTINE_OPTIONS": f"mode=audit:{bad}"})
        assert p.returncode == 125, p
        assert "PRISTINE_OPTIONS" in p.stderr and bad in p.stderr, p.stderr
        for key in w.ALL_KEYS:
            assert re.search(rf"\b{key}\b", p.stderr), (key, p.stderr)


@pytest.mark.root
def test_main_thread_hint_names_the_flag_under_the_wrapper(shim):
    p = pristine_run(["--", PROBE, "--main-taint", "net"])
    assert p.returncode == 0, p.stderr
    hint = [l for l in p.stderr.splitlines() if "main thread" in l]
    assert len(hint) == 1 and "pristine-run --baseline first-thread" in hint[0], p.stderr
    direct = run([PROBE, "--main-taint", "net"], shim=True)
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
    p = run([tmp_path / "scripts" / "pristine-run", "/bin/true"],
            env={"PATH": empty, "PRISTINE_BUILD_DIR": tmp_path / "build"})
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
    p = pristine_run([*args, "--", "/bin/true"] if args and args != ["--mode"] else args)
    assert p.returncode == 125, (p.returncode, p.stderr)
    for n in names:
        assert n in p.stderr, p.stderr
    assert p.stdout == ""


def test_bad_inherited_options_refused():
    p = pristine_run(["/bin/true"], env={"PRISTINE_OPTIONS": "mode=enforce:verify=sometimes"})
    assert p.returncode == 125
    assert "PRISTINE_OPTIONS" in p.stderr and "verify=sometimes" in p.stderr


def test_validation_happens_before_the_command_runs(tmp_path):
    marker = tmp_path / "ran"
    p = pristine_run(["--mode", "nope", "--", "/bin/sh", "-c", f"touch {marker}"])
    assert p.returncode == 125 and not marker.exists()


def test_own_errors_never_collide_with_the_commands_status(shim):
    assert pristine_run(["--", "/bin/sh", "-c", "exit 2"]).returncode == 2
    assert pristine_run(["--mode", "nope", "--", "/bin/sh", "-c", "exit 2"]).returncode == 125


# --- pristine-run: running ----------------------------------------------------------------------

def test_exit_code_passes_through(shim):
    assert pristine_run(["--", "/bin/sh", "-c", "exit 7"]).returncode == 7
    assert pristine_run(["/bin/false"]).returncode == 1


def test_death_by_signal_passes_through(shim):
    p = pristine_run(["--", "/bin/sh", "-c", "kill -TERM $$"])
    assert p.returncode == -signal.SIGTERM, p


def test_sigpipe_default_for_the_command(shim):
    # Python ignores SIGPIPE; the wrapper must not hand that on.
    p = pristine_run(["--", "/bin/sh", "-c", "grep SigIgn /proc/self/status"])
    ignored = int(p.stdout.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)), p.stdout


def test_command_not_found(shim):
    p = pristine_run(["/nonexistent/command"])
    assert p.returncode == 127 and "not found" in p.stderr


def test_composes_environment(shim):
    env = {"PRISTINE_OPTIONS": "mode=audit:log=off", "LD_PRELOAD": "/lib/x86_64-linux-gnu/libc.so.6"}
    p = pristine_run(["--mode", "enforce", "--policy", "net=inherit,affinity=inherit", "--strict",
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


@pytest.mark.root
def test_runs_the_probe_under_the_shim(shim, tmp_path):
    p = pristine_run(["--report", f"{tmp_path}/r.%p.json", "--", PROBE, "--taint", "net",
             "--exit-normally"])
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert any("libpristine" in x for x in r["preloaded"]), r
    assert r["child"]["ns"]["net"] == r["baseline"]["ns"]["net"]
    assert (tmp_path / f"r.{r['pid']}.json").exists()


@pytest.mark.root
def test_mode_audit_through_the_wrapper(shim):
    p = pristine_run(["--mode", "audit", "--", PROBE, "--taint", "net"])
    r = json.loads(p.stdout)
    assert r["child"]["ns"]["net"] == r["caller"]["ns"]["net"]


@pytest.mark.build
def test_builds_the_library_when_missing(tmp_path):
    need("cmake")
    build = tmp_path / "build"
    p = pristine_run(["/bin/sh", "-c", 'echo "$LD_PRELOAD"'], env={"PRISTINE_BUILD_DIR": build})
    assert p.returncode == 0, p.stderr
    lib = build / "shim" / "libpristine.so"
    assert lib.exists(), p.stderr
    assert p.stdout.strip() == str(lib)


def test_preload_order(shim):
    """Sanitizer runtimes and jemalloc stay ahead of the library, in their order; every other
    entry follows it; the library appears once."""
    # Paths that do not exist, with the runtimes' names: the dynamic loader skips them with a
    # warning, and the shell prints what it was given.
    given = ["/nonexistent/libfoo.so", "/nonexistent/libasan.so.8",
             "/nonexistent/libclang_rt.tsan-x86_64.so", str(shim),
             "/nonexistent/libjemalloc.so.2", "/nonexistent/libbar.so"]
    proc = pristine_run(["--", "/bin/sh", "-c", 'printf "%s\\n" "$LD_PRELOAD"'],
                        env={"LD_PRELOAD": ":".join(given), "PRISTINE_LIB": shim})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().split(":") == [given[1], given[2], given[4], str(shim), given[0],
                                              given[5]]
