# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures for the pristine behavioural tests.

The tests drive build/testapps/probe (see testapps/probe.cc for its options and output) with and
without LD_PRELOAD=build/shim/libpristine.so and compare the per-thread kernel state that the
baseline (main thread), the tainted caller (worker) and the created child read from the kernel.

Environment:
  PRISTINE_BUILD_DIR   the CMake build directory (default: <repo>/build)

"With shim" tests are skipped, with a message naming the missing file, when the library has not
been built. Nothing here depends on timing: the probe hands over with semaphores and joins only.
"""

import glob
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD_DIR = pathlib.Path(os.environ.get("PRISTINE_BUILD_DIR") or (ROOT / "build")).resolve()
PROBE = BUILD_DIR / "testapps" / "probe"
SHIM = BUILD_DIR / "shim" / "libpristine.so"

# The probe's exit code when the machine cannot apply a requested taint or set-up (for example a
# pids cgroup for --exhaust-threads): the test is skipped, not failed, when that happens without
# the shim.
PROBE_EXIT_UNSUPPORTED = 3

# A generous safety net against a hung probe (a deadlocked shim); results never depend on it.
PROBE_TIMEOUT_S = 120

APIS = ["pthread", "std_thread", "std_async", "thrd"]


class ProbeUnsupported(Exception):
    """The probe exited 3: this machine cannot run the requested configuration."""


def shim_missing_reason():
    return (f"shim not built: {SHIM} is missing "
            f"(build it with `cmake -S . -B build && cmake --build build`); 'with shim' test skipped")


def _run_probe(args, shim=False, options=None, env=None):
    """Runs the probe and returns its parsed JSON output.

    args     list of probe options
    shim     preload build/shim/libpristine.so (skips the test if it is not built)
    options  value of PRISTINE_OPTIONS (None: the variable is unset)
    env      extra environment variables
    """
    if not PROBE.exists():
        pytest.fail(f"probe not built: {PROBE} is missing "
                    f"(run `cmake -S . -B build && cmake --build build`, or set PRISTINE_BUILD_DIR)")
    run_env = clean_env(shim, options, env)
    cmd = [str(PROBE), *[str(a) for a in args]]
    # cwd is the repo root (never /tmp, which the fs taint moves to) and the umask a known 022
    # (the fs taint sets 077), so that a tainted value always differs from the baseline.
    proc = subprocess.run(cmd, cwd=str(ROOT), env=run_env, umask=0o022, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    where = f"{' '.join(cmd)}{' (LD_PRELOAD=shim)' if shim else ''}" \
            f"{f' PRISTINE_OPTIONS={options}' if options is not None else ''}"
    if proc.returncode == PROBE_EXIT_UNSUPPORTED:
        if shim:
            pytest.fail(f"probe could not apply its set-up under the shim: {where}\n{proc.stderr}")
        raise ProbeUnsupported(f"{where}: {proc.stderr.strip()}")
    if proc.returncode != 0:
        pytest.fail(f"probe exited {proc.returncode}: {where}\nstdout:\n{proc.stdout}\n"
                    f"stderr:\n{proc.stderr}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        pytest.fail(f"probe printed {len(lines)} lines instead of one JSON object: {where}\n"
                    f"{proc.stdout}")
    try:
        result = json.loads(lines[0])
    except json.JSONDecodeError as e:
        pytest.fail(f"probe output is not JSON ({e}): {where}\n{proc.stdout}")
    if shim and not any("libpristine" in p for p in result.get("preloaded", [])):
        pytest.fail(f"LD_PRELOAD={SHIM} was not loaded into the probe: {where}\n{proc.stderr}")
    if result.get("worker_error") is not None:
        pytest.fail(f"probe could not start its worker ({result['worker_error']}): {where}\n"
                    f"{proc.stderr}")
    result["_stderr"] = proc.stderr
    result["_cmd"] = where
    return result


def clean_env(shim=False, options=None, env=None):
    """The environment for a test run: the caller's, without its LD_PRELOAD and PRISTINE_OPTIONS
    (never leak them into a run that asked for none), plus the shim and options asked for.
    Skips the test if the shim is asked for but not built."""
    run_env = dict(os.environ)
    for var in ("LD_PRELOAD", "PRISTINE_OPTIONS"):
        run_env.pop(var, None)
    if shim:
        if not SHIM.exists():
            pytest.skip(shim_missing_reason())
        run_env["LD_PRELOAD"] = str(SHIM)
    if options is not None:
        run_env["PRISTINE_OPTIONS"] = options
    if env:
        run_env.update(env)
    return run_env


def run_probe(args, shim=False, options=None, env=None):
    """Module-level form of the helper; machine limitations (probe exit 3) skip the test."""
    try:
        return _run_probe(args, shim=shim, options=options, env=env)
    except ProbeUnsupported as e:
        pytest.skip(f"this machine cannot run it: {e}")


@pytest.fixture(scope="session", autouse=True)
def _remove_leftover_probe_cgroups():
    """--exhaust-threads moves the probe into a pids cgroup named pristine-probe-<pid> and removes
    it before exiting; a probe that crashed (under a broken shim) leaves an empty one behind."""
    yield
    patterns = [f"/sys/fs/cgroup/{'*/' * depth}pristine-probe-*" for depth in range(4)]
    for pattern in patterns:
        for path in glob.glob(pattern):
            try:
                os.rmdir(path)
            except OSError:
                pass


@pytest.fixture(scope="session")
def probe():
    """Path of the probe binary (fails the test if it has not been built)."""
    if not PROBE.exists():
        pytest.fail(f"probe not built: {PROBE} is missing")
    return PROBE


@pytest.fixture(scope="session")
def shim():
    """Path of libpristine.so; skips the test if it has not been built."""
    if not SHIM.exists():
        pytest.skip(shim_missing_reason())
    return SHIM


@pytest.fixture(name="run_probe")
def run_probe_fixture(probe):
    """run_probe(args, shim=False, options=None, env=None) -> parsed JSON of one probe run."""
    del probe  # only ensures the binary exists
    return run_probe


# ---------------------------------------------------------------------------------------------
# Helpers shared by the test modules (import them with `from conftest import ...`).

def cannot_run_here(where, stderr, shim, exit_code_without_library):
    """A test program exited 3, "this machine cannot run it". Without the library that skips the
    test. Under the library it skips only if the program cannot run without the library either
    (`exit_code_without_library()` runs it so and returns its exit code): a regression that made it
    exit 3 under the library alone must fail, never pass as a skip."""
    if not shim:
        pytest.skip(f"this machine cannot run it: {where}: {stderr.strip()}")
    plain = exit_code_without_library()
    if plain == PROBE_EXIT_UNSUPPORTED:
        pytest.skip(f"this machine cannot run it, with or without the library: {where}: "
                    f"{stderr.strip()}")
    pytest.fail(f"{where} cannot run under the library only (exit 3; without it: exit {plain}):\n"
                f"{stderr}")


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
    """Short context for assertion messages."""
    return f"[{result.get('_cmd')}]\nstderr:\n{result.get('_stderr', '')}"
