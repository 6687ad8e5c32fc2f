# SPDX-License-Identifier: Apache-2.0
"""Running programs for the behavioural tests: the test programs of testapps/ (the probe among
them), the tools in scripts/, and any other command, with or without the library.

One environment, one runner, one rule:
  * clean_env(): the caller's environment without what changes how the library, its tools or a
    runtime next to it behave (LD_PRELOAD, every PRISTINE_* variable, allocator and sanitizer
    settings), plus what the test asks for. No run inherits a setting it did not ask for.
  * run(): runs a command and returns a Run; never judges the exit status. A run that does not
    end within its timeout is a hang and fails the test (the timeouts are hang guards far above a
    healthy run's duration, never measurements).
  * run_app(): runs build/testapps/NAME. The test programs print their result as one JSON object,
    the last line of stdout, and exit 3 when "this machine cannot run the requested set-up"
    (testapps/thread_state.h); that exit goes through cannot_run_here(), else the status must
    be the expected one.
  * cannot_run_here(): without the library a program that exits 3 skips its test; under the
    library it skips only if the program cannot run without the library either, and fails
    otherwise: a regression that made a program exit 3 under the library alone must fail, never
    pass as a skip.

Environment: PRISTINE_BUILD_DIR, the CMake build directory (default: <checkout>/build).
"""

import importlib.machinery
import importlib.util
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD_DIR = pathlib.Path(os.environ.get("PRISTINE_BUILD_DIR") or (ROOT / "build")).resolve()
APPS = BUILD_DIR / "testapps"
PROBE = APPS / "probe"
SHIM = BUILD_DIR / "shim" / "libpristine.so"
SCRIPTS = ROOT / "scripts"
PYTHON = "/usr/bin/python3"

# The test programs' exit code for "this machine cannot run the requested set-up".
EXIT_CANNOT_RUN_HERE = 3
# Default hang guard of one run.
TIMEOUT_S = 120

# Variables no run inherits from the caller: they change what the library does (LD_PRELOAD and
# every PRISTINE_*), what its tools find (PKG_CONFIG_PATH), or how a runtime next to it behaves.
_UNINHERITED = ("LD_PRELOAD", "MALLOC_CONF", "TSAN_OPTIONS", "ASAN_OPTIONS", "UBSAN_OPTIONS",
                "PKG_CONFIG_PATH")


def shim_missing_reason():
    return (f"shim not built: {SHIM} is missing "
            f"(build it with `cmake -S . -B build && cmake --build build`); 'with shim' test skipped")


def clean_env(shim=False, options=None, env=None, preload=None, build_dir=False):
    """The environment for a run: the caller's, without LD_PRELOAD, PRISTINE_* and the other
    variables above, plus
      shim       LD_PRELOAD=the library (skips the test if it is not built)
      preload    LD_PRELOAD made of these paths, in order (instead of shim)
      options    PRISTINE_OPTIONS (None: unset)
      build_dir  PRISTINE_BUILD_DIR=the build directory (for the tools in scripts/)
      env        extra variables, applied last (None removes one)."""
    run_env = {k: v for k, v in os.environ.items()
               if k not in _UNINHERITED and not k.startswith("PRISTINE_")}
    if shim:
        if not SHIM.exists():
            pytest.skip(shim_missing_reason())
        preload = [SHIM]
    if preload:
        run_env["LD_PRELOAD"] = ":".join(str(p) for p in preload)
    if options is not None:
        run_env["PRISTINE_OPTIONS"] = options
    if build_dir:
        run_env["PRISTINE_BUILD_DIR"] = str(BUILD_DIR)
    for k, v in (env or {}).items():
        if v is None:
            run_env.pop(k, None)
        else:
            run_env[k] = str(v)
    return run_env


class Run:
    """One finished run: returncode, stdout, stderr, where (the command and its settings), and
    json (the parsed result, for run_app)."""

    def __init__(self, proc, where):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.where = where
        self.json = None

    def describe(self):
        return (f"[{self.where}] exit {self.returncode}\nstdout:\n{self.stdout}\n"
                f"stderr:\n{self.stderr}")


def _where(cmd, env_run):
    extra = [f"{k}={env_run[k]}" for k in ("LD_PRELOAD", "PRISTINE_OPTIONS") if k in env_run]
    return " ".join(str(c) for c in cmd) + (f" ({' '.join(extra)})" if extra else "")


def run(cmd, shim=False, options=None, env=None, preload=None, build_dir=False,
        timeout=TIMEOUT_S, cwd=None, input=None, binary=False, preexec_fn=None, umask=-1):
    """Runs cmd (a list) in the clean environment (see clean_env for the settings), from the
    checkout's root unless cwd is given, with stdin from `input` or /dev/null; returns a Run.
    binary: stdin and the outputs are bytes. A hang fails the test."""
    run_env = clean_env(shim, options, env, preload, build_dir)
    where = _where(cmd, run_env)
    kwargs = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    try:
        proc = subprocess.run([str(c) for c in cmd], cwd=str(cwd or ROOT), env=run_env,
                              capture_output=True, text=not binary, timeout=timeout,
                              preexec_fn=preexec_fn, umask=umask, **kwargs)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"hung (no exit within the {timeout} s safety net): {where}\n"
                    f"stdout so far:\n{e.stdout}\nstderr so far:\n{e.stderr}")
    return Run(proc, where)


def run_ok(cmd, **kw):
    """run(), and the command must exit 0."""
    r = run(cmd, **kw)
    assert r.returncode == 0, r.describe()
    return r


def under(cmd, options=None, **kw):
    """cmd under the library with PRISTINE_OPTIONS=options; it must exit 0."""
    return run_ok(cmd, shim=True, options=options, **kw)


def cannot_run_here(where, stderr, shim, exit_code_without_library):
    """A test program exited 3, "this machine cannot run it". Without the library that skips the
    test. Under the library it skips only if the program cannot run without the library either
    (`exit_code_without_library()` runs it so and returns its exit code): a regression that made it
    exit 3 under the library alone must fail, never pass as a skip."""
    if not shim:
        pytest.skip(f"this machine cannot run it: {where}: {stderr.strip()}")
    plain = exit_code_without_library()
    if plain == EXIT_CANNOT_RUN_HERE:
        pytest.skip(f"this machine cannot run it, with or without the library: {where}: "
                    f"{stderr.strip()}")
    pytest.fail(f"{where} cannot run under the library only (exit 3; without it: exit {plain}):\n"
                f"{stderr}")


def app_path(name):
    """build/testapps/NAME; fails the test if it has not been built."""
    path = APPS / name
    if not path.exists():
        pytest.fail(f"test program not built: {path} is missing "
                    f"(run `cmake -S . -B build && cmake --build build`, or set PRISTINE_BUILD_DIR)")
    return path


def _uses_library(run_env):
    return "libpristine" in run_env.get("LD_PRELOAD", "")


def parse_result(r):
    """The program's result: one JSON object, the last non-blank line of stdout."""
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    objects = [line for line in lines if line.startswith("{")]
    if not lines or len(objects) != 1 or objects[0] != lines[-1]:
        pytest.fail(f"expected one JSON object as the last line of stdout\n{r.describe()}")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as e:
        pytest.fail(f"output is not JSON ({e})\n{r.describe()}")


def run_app(name, args=(), expect_status=0, result=True, **kw):
    """Runs build/testapps/NAME ARGS (keywords as run()) and returns its Run, with .json parsed
    when `result` is true. Exit 3 goes through cannot_run_here() (unless 3 is expected); any other
    status than expect_status (an int, a tuple of them, or None for any) fails the test."""
    cmd = [app_path(name), *args]
    r = run(cmd, **kw)
    expected = expect_status if isinstance(expect_status, tuple) else (expect_status,)
    if r.returncode == EXIT_CANNOT_RUN_HERE and EXIT_CANNOT_RUN_HERE not in expected:
        plain_kw = dict(kw, shim=False, preload=None, options=None,
                        env={k: v for k, v in (kw.get("env") or {}).items() if k != "LD_PRELOAD"})
        cannot_run_here(r.where, r.stderr, _uses_library(clean_env(**_env_kw(kw))),
                        lambda: run(cmd, **plain_kw).returncode)
    if expect_status is not None and r.returncode not in expected:
        pytest.fail(f"expected exit status {expect_status}\n{r.describe()}")
    if result:
        r.json = parse_result(r)
    return r


def _env_kw(kw):
    return {k: kw[k] for k in ("shim", "options", "env", "preload") if k in kw}


def check_no_leak(result, reference, slack=16):
    """For programs that report their threads and mappings before and after their faulted creates
    (testapps/faults): no thread is left over, and the mappings grew by no more than without the
    library plus `slack` lines. Constant extra mappings a run may legitimately end with: a malloc
    arena (2 lines), a cached thread stack with its guard page (2 lines), and the library's spare
    threads (2 stacks with their guard pages at first; at a thread limit, creates that found none
    raise the pool, up to 13 lines seen). A leak per create shows up as 20 (limit cases: 20
    faulted creates) to thousands (eintr, cancel) of lines."""
    assert result["tasks_after"] == result["tasks_before"], f"thread leak: {result}"
    grown = result["maps_after"] - result["maps_before"]
    reference_grown = reference["maps_after"] - reference["maps_before"]
    assert grown <= max(reference_grown, 0) + slack, \
        f"mappings grew by {grown} (without the library: {reference_grown}): {result}"


def need(*programs):
    """Fails the test when a program it runs is not installed: scripts/test installs every one
    (scripts/install-deps test), so a missing one is a broken set-up, never a reason to skip."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (scripts/install-deps test installs "
                    f"{'it' if len(missing) == 1 else 'them'})")
    return shutil.which(programs[0])


# ---------------------------------------------------------------------------------------------
# The tools and the option table

PRISTINE_RUN = SCRIPTS / "pristine-run"
PRISTINE_REPORT = SCRIPTS / "pristine-report"


def pristine_report(*args, input=None):
    """Runs scripts/pristine-report ARGS (stdin: `input`); returns the Run."""
    return run([PYTHON, PRISTINE_REPORT, *args], input=input, build_dir=True)


def symbolized(*paths, extra=()):
    """pristine-report --json of the reports: merged and symbolized."""
    r = pristine_report("--json", *extra, *paths)
    assert r.returncode == 0, r.describe()
    return json.loads(r.stdout)


def load_pristine_run():
    """scripts/pristine-run as a module (its option table)."""
    loader = importlib.machinery.SourceFileLoader("pristine_run", str(PRISTINE_RUN))
    spec = importlib.util.spec_from_loader("pristine_run", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


_HELP_LINE = re.compile(r"^  ([a-z_]+)=(\S+) \(default: ([^)]*)\) (.+)$")


def help_table(text):
    """{key: (values, default, meaning)} from the library's help=1 text."""
    return {m.group(1): m.groups()[1:] for m in map(_HELP_LINE.match, text.splitlines()) if m}


def library_help():
    """The library's option table, as PRISTINE_OPTIONS=help=1 prints it (shim/options.inc)."""
    r = run_ok(["/bin/true"], shim=True, options="help=1")
    table = help_table(r.stderr)
    assert len(table) > 20, r.describe()
    return table


# ---------------------------------------------------------------------------------------------
# Long-running programs

def start(cmd, ready="ready", shim=False, options=None, env=None, cwd=None):
    """Starts cmd in the clean environment with pipes for stdin, stdout and stderr, and waits
    for its first line of stdout, which must be `ready` or start with `ready` and a space; returns
    the Popen."""
    proc = subprocess.Popen([str(c) for c in cmd], env=clean_env(shim, options, env),
                            cwd=str(cwd or ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.rstrip("\n") != ready and not line.startswith(ready + " "):
        proc.kill()
        proc.wait()
        pytest.fail(f"{_where(cmd, clean_env(shim, options, env))} did not say {ready!r}: "
                    f"{line!r}\n{proc.stderr.read()}")
    return proc


def finish(proc, timeout=30):
    """Waits for a started program; one still running after `timeout` seconds has hung: it is
    killed with SIGKILL and the test fails."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        pytest.fail(f"the process did not end within {timeout} s (killed with SIGKILL)")


def ns_inode(pid, link):
    """Inode of /proc/PID/ns/LINK (PID may be "self" or "thread-self"); None if unreadable."""
    try:
        return os.stat(f"/proc/{pid}/ns/{link}").st_ino
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# The probe (testapps/probe.cc): a worker taints itself and creates a child; the JSON has the
# kernel state of the baseline (main thread), the worker ("caller") and the child.

APIS = ["pthread", "std_thread", "std_async", "thrd"]


def run_probe(args, shim=False, options=None, env=None):
    """Runs the probe and returns its parsed JSON, with "_stderr" and "_cmd" added.

    cwd is the checkout's root (never /tmp, which the fs taint moves to) and the umask a known 022
    (the fs taint sets 077), so that a tainted value always differs from the baseline."""
    r = run_app("probe", [str(a) for a in args], shim=shim, options=options, env=env,
                umask=0o022)
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        pytest.fail(f"the probe printed {len(lines)} lines instead of one JSON object\n"
                    f"{r.describe()}")
    result = r.json
    if shim and not any("libpristine" in p for p in result.get("preloaded", [])):
        pytest.fail(f"the library was not loaded into the probe\n{r.describe()}")
    if result.get("worker_error") is not None:
        pytest.fail(f"the probe could not start its worker ({result['worker_error']})\n"
                    f"{r.describe()}")
    result["_stderr"] = r.stderr
    result["_cmd"] = r.where
    return result


def get(state, key):
    """state["a"]["b"] for key "a.b"."""
    for part in key.split("."):
        state = state[part]
    return state


def without(state, *keys):
    """A copy of a probe state without the given top-level keys (tid and attr always removed)."""
    drop = {"tid", "attr", *keys}
    return {k: v for k, v in state.items() if k not in drop}


def describe(result):
    """Short context for assertion messages about a probe run."""
    return f"[{result.get('_cmd')}]\nstderr:\n{result.get('_stderr', '')}"
