# SPDX-License-Identifier: Apache-2.0
"""Short stress run (testapps/stress.cc) under the shim: tainted and clean creators at once through
every API (joined and detached), forks (every other forked child races 2-4 first changes at
once), SIGUSR1 storms, creators changing state and exiting.
Every child checks its own state against the default policy. scripts/stress is the long run.

The figures must be: wrong_states 0, lost 0, doubled 0, fork_failures 0, create_errors 0, hangs 0
(the program's watchdog dumps stacks and exits 4 on a hang; the subprocess timeout is only a last
resort, far above a healthy run's duration).
"""

import json
import subprocess

import pytest

from conftest import BUILD_DIR, ROOT, cannot_run_here

STRESS = BUILD_DIR / "testapps" / "stress"
TIMEOUT_S = 300  # a healthy short run takes about a second


def _run(shim_path=None, args=()):
    if not STRESS.exists():
        pytest.fail(f"stress not built: {STRESS} is missing")
    env = {"PATH": "/usr/bin:/bin"}
    if shim_path is not None:
        env["LD_PRELOAD"] = str(shim_path)
    cmd = [str(STRESS), "--quiet", "--hang-seconds", "60", *args]
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    if proc.returncode == 3:
        cannot_run_here(" ".join(cmd), proc.stderr, shim_path is not None,
                        lambda: subprocess.run(cmd, cwd=str(ROOT), env={"PATH": "/usr/bin:/bin"},
                                               capture_output=True, timeout=TIMEOUT_S,
                                               stdin=subprocess.DEVNULL).returncode)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    assert lines, f"no figures from {' '.join(cmd)} (rc {proc.returncode})\n{proc.stdout}\n{proc.stderr}"
    figures = json.loads(lines[-1])
    return proc, figures


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_short_stress_under_shim_is_clean(shim, seed):
    proc, f = _run(shim, ["--creates", "20000", "--forks", "20", "--seed", str(seed)])
    where = f"seed {seed}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-6000:]}"
    assert f["hangs"] == 0, where
    assert proc.returncode == 0, where
    assert f["creates"] >= 20000 and f["forks"] >= 20, where
    assert f["wrong_states"] == 0, where
    assert f["lost"] == 0 and f["doubled"] == 0, where
    assert f["started"] == f["creates"] == f["finished"], where
    assert f["fork_failures"] == 0 and f["create_errors"] == 0, where
    assert f["signals_received"] > 0, where


def test_stress_detects_wrong_states_without_shim():
    """The checks are real: without the shim, children of tainted creators keep the second netns
    and the pinned CPU, and the stress program counts them as wrong states (exit 1)."""
    proc, f = _run(None, ["--creates", "5000", "--forks", "5", "--seed", "7"])
    assert f["hangs"] == 0
    assert f["wrong_states"] > 0, proc.stdout
    assert f["lost"] == 0 and f["doubled"] == 0
    assert proc.returncode == 1


def test_watchdog_dumps_stacks_on_a_hang(shim):
    """Self-test of the hang detector: --simulate-hang blocks every child after 100 creates; the
    watchdog must notice, dump the threads' states and exit 4 with hangs=1."""
    proc, f = _run(shim, ["--simulate-hang", "--hang-seconds", "2", "--seed", "5"])
    assert proc.returncode == 4, proc.stderr[-4000:]
    assert f["hangs"] == 1
    assert "HANG: no progress" in proc.stderr
    assert "wchan=" in proc.stderr
