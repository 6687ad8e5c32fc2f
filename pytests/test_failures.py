# SPDX-License-Identifier: Apache-2.0
"""Failure paths of thread creation under the shim (PRODUCT.md: "The shim never aborts its host";
issue 3 item 7), with build/testapps/failures.

  * task limit (a pids cgroup's pids.max) reached during a forwarded create: the caller gets
    EAGAIN as from glibc; once the limit is lifted creates work again, and no thread leaked;
  * a caller signalled over and over while it waits in forwarded creates still gets every thread;
  * a pending cancellation does not interrupt a forwarded create (pthread_create is not a
    cancellation point) and the created thread exists;
  * exit() from one thread while others are in the middle of forwarded creates: a clean exit
    with the right status, atexit handlers run, no hang;
  * the template cannot be started when it is first needed (the template starts lazily, before
    the first change of a thread's state; that change is made while pids.max = pids.current, or
    while RLIMIT_NPROC is 0 for a non-root uid): one warning on stderr, and every create passes
    through (the program still works).
Each case runs without the shim too (the reference). Timeouts are hang guards only.
"""

import os

import pytest

from issue3_helpers import pids_cgroup, run_app  # noqa: F401 (pids_cgroup is a fixture)

SHIM_IDS = ["no-shim", "shim"]
NO_TEMPLATE_WARNING = "could not start the template thread"  # lines are "pristine[PID]: ..."


# ---------------------------------------------------------------------------------------------
# Task limit

@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_task_limit_eagain_then_recovers_without_leak(pids_cgroup, shim):
    r = run_app("failures", ["--mode", "limit", "--cgroup", str(pids_cgroup)], shim=shim)
    j = r.json
    assert j["caller_net"] != j["baseline_net"], r.describe()
    assert j["limited_errors"] == ["EAGAIN"] * 3, r.describe()
    # Nothing left behind by the failed creates (a half-made thread, a stuck request), and the
    # joined thread is gone. The shim's own threads (the template, spare threads it keeps ready:
    # named "pristine-*") are not counted.
    assert j["program_tasks_after_fail"] == j["program_tasks_before"], r.describe()
    assert j["after_error"] == "0", r.describe()
    assert j["program_tasks_end"] == j["program_tasks_before"], r.describe()
    expected_net = j["baseline_net"] if shim else j["caller_net"]
    assert j["after_child_net"] == expected_net, r.describe()


# ---------------------------------------------------------------------------------------------
# Signals and cancellation while waiting

@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_signalled_caller_gets_every_thread(shim):
    r = run_app("failures", ["--mode", "signals", "--creates", "300"], shim=shim)
    j = r.json
    assert j["signals_handled"] > 0, r.describe()
    assert j["failed"] == 0 and j["ok"] == j["creates"], r.describe()
    if shim:
        assert j["children_baseline_net"] == j["creates"], r.describe()
    else:
        assert j["children_caller_net"] == j["creates"], r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_pending_cancel_does_not_interrupt_create(shim):
    r = run_app("failures", ["--mode", "cancel"], shim=shim)
    j = r.json
    assert j["cancel_rc"] == 0, r.describe()
    assert j["create_error"] == "0", r.describe()
    assert j["reached_testcancel"] and j["worker_canceled"], r.describe()
    expected_net = j["baseline_net"] if shim else j["caller_net"]
    assert j["child_net"] == expected_net, r.describe()


# ---------------------------------------------------------------------------------------------
# Process exit while forwarded creates are in flight

@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
@pytest.mark.parametrize("exiter", ["main", "thread"])
def test_exit_during_forwarded_creates(exiter, shim):
    for code in (42, 7):
        r = run_app("failures", ["--mode", "exit", "--exiter", exiter, "--code", str(code)],
                    shim=shim, expect_status=code)
        assert r.stdout.strip() == '{"atexit": true}', r.describe()


# ---------------------------------------------------------------------------------------------
# The template cannot be started (at its first need: the first change of a thread's state)

def _work_with_pids_limit(cgroup, shim, taint="files"):
    # The worker makes its first change while pids.max = pids.current: unshare(CLONE_FILES), which
    # only a forwarded create isolates (so the template is needed and cannot start), or
    # unshare(CLONE_NEWNET), which a new thread repairs itself (no thread of the library needed).
    return run_app("failures", ["--mode", "work", "--taint", taint, "--cgroup", str(cgroup)],
                   shim=shim)


def _as_nobody():
    def preexec():
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
    return preexec


def _work_as_nobody_with_nproc_zero(shim):
    # uid 65534 (RLIMIT_NPROC does not bind root); the first change is an unprivileged
    # unshare(CLONE_FILES) made while RLIMIT_NPROC is 0.
    return run_app("failures", ["--mode", "work", "--taint", "files", "--nproc"], shim=shim,
                   preexec_fn=_as_nobody())


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_no_template_pids_limit_program_still_works(pids_cgroup, shim):
    # Without a template nothing can be forwarded: the library warns once and passes through.
    r = _work_with_pids_limit(pids_cgroup, shim)
    j = r.json
    assert j["errors"] == ["0", "0", "0"], r.describe()
    assert r.stderr.count(NO_TEMPLATE_WARNING) == (1 if shim else 0), r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_pids_limit_network_namespace_repaired_without_a_thread_of_the_library(pids_cgroup, shim):
    # A thread the caller creates re-enters the baseline's network namespace itself: that needs no
    # thread of the library, so it works under a limit that leaves room for none.
    r = _work_with_pids_limit(pids_cgroup, shim, taint="net")
    j = r.json
    assert j["errors"] == ["0", "0", "0"], r.describe()
    assert j["caller_net"] != j["baseline_net"], r.describe()
    expected = j["baseline_net"] if shim else j["caller_net"]
    assert j["child_nets"] == [expected] * 3, r.describe()
    assert NO_TEMPLATE_WARNING not in r.stderr, r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_no_template_rlimit_nproc_program_still_works(shim):
    r = _work_as_nobody_with_nproc_zero(shim)
    j = r.json
    assert j["uid"] == 65534, r.describe()
    assert j["errors"] == ["0", "0", "0"], r.describe()
    assert r.stderr.count(NO_TEMPLATE_WARNING) == (1 if shim else 0), r.describe()
