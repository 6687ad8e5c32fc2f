# SPDX-License-Identifier: Apache-2.0
"""The main thread leaving with pthread_exit or thrd_exit while other threads run
(testapps/main_exit.cc): the process ends when its last thread does, with status 0, and a
process-directed signal has the effect it has without the library, never running a handler on the
library's threads (which block every signal).

Before the fix, once the library's threads existed they kept such a process alive for good and,
blocking every signal, left a SIGTERM pending forever (only SIGKILL ended it). The worker here makes
the library start them (a private fs_struct and one forwarded create) before the main thread leaves.
"""

import signal
import subprocess

import pytest

from conftest import BUILD_DIR, clean_env

MAIN_EXIT = BUILD_DIR / "testapps" / "main_exit"
# Far above a healthy run (well under a second); a hung process is killed with SIGKILL.
HANG_S = 30


def _start(then, via, shim):
    if not MAIN_EXIT.exists():
        pytest.fail(f"{MAIN_EXIT} not built")
    proc = subprocess.Popen([str(MAIN_EXIT), "--then", then, "--via", via], env=clean_env(shim),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("ready "), line + proc.stderr.read()
    return proc


def _wait(proc):
    try:
        return proc.wait(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the process did not end after its last thread (killed with SIGKILL)")


@pytest.mark.parametrize("shim", [False, True], ids=["no-shim", "shim"])
@pytest.mark.parametrize("via", ["pthread", "thrd"])
def test_process_ends_with_its_last_thread(via, shim):
    proc = _start("exit", via, shim)
    assert _wait(proc) == 0, proc.stderr.read()


@pytest.mark.parametrize("shim", [False, True], ids=["no-shim", "shim"])
def test_sigterm_ends_the_process(shim):
    proc = _start("wait", "pthread", shim)
    proc.send_signal(signal.SIGTERM)
    assert _wait(proc) == -signal.SIGTERM, proc.stderr.read()


@pytest.mark.parametrize("shim", [False, True], ids=["no-shim", "shim"])
def test_signal_handler_runs_on_a_program_thread(shim):
    proc = _start("handler", "pthread", shim)
    proc.send_signal(signal.SIGUSR1)
    rc = _wait(proc)
    err = proc.stderr.read()
    assert rc == 0 and "handler ran on the worker" in err, (rc, err)
