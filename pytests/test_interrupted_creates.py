# SPDX-License-Identifier: Apache-2.0
"""A create interrupted while it is forwarded (README, "Reliability": faults; "How it works": the
handoff): a caller signalled over and over while it waits still gets every thread (an EINTR storm:
SIGUSR1 without SA_RESTART); a pending or delivered cancellation does not interrupt it
(pthread_create is not a cancellation point) and the created thread exists; exit() from another
thread while creates are in flight ends the process with the right status, atexit handlers run,
no hang. With build/testapps/faults and build/testapps/failures; each case also runs without the
library (the reference). Timeouts are hang guards only.
"""

import pytest

from programs import check_no_leak, run_app

pytestmark = pytest.mark.root

SHIM_IDS = ["no-shim", "shim"]
TIMEOUT_S = 180  # healthy runs take well under a second each


def faults(case, shim=False, args=(), options=None, expect_status=0):
    r = run_app("faults", [case, *args], shim=shim, options=options, timeout=TIMEOUT_S,
                expect_status=expect_status, result=expect_status == 0)
    return r.json if expect_status == 0 else r


# ---------------------------------------------------------------------------------------------
# Signals

def test_eintr_storm_during_handoff(shim):
    """A tainted worker creates 2000 threads while SIGUSR1 (no SA_RESTART) hits it non-stop:
    every create succeeds once, every child runs, no thread is left over."""
    plain = faults("eintr")
    r = faults("eintr", shim)
    for res in (plain, r):
        assert res["failures"] == 0, res
        assert res["children_ran"] == res["rounds"] + 1, res  # + the warm-up create
        assert res["signals_received"] > 0, res
    assert r["children_wrong"] == 0, r
    check_no_leak(r, plain)


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


# ---------------------------------------------------------------------------------------------
# Cancellation

def test_cancel_waiting_caller(shim):
    """pthread_cancel (deferred) on a worker inside a forwarded pthread_create: pthread_create is
    not a cancellation point, so it completes and returns a joinable thread; the worker is
    cancelled at its next cancellation point."""
    plain = faults("cancel", args=["--rounds", "300"])
    r = faults("cancel", shim, args=["--rounds", "300"])
    for res in (plain, r):
        assert res["child_missing"] == 0, res   # the create always returned
        assert res["create_failed"] == 0, res
        assert res["child_joined"] == res["rounds"], res
        assert res["cancelled"] + res["not_cancelled"] == res["rounds"], res
        assert res["cancelled"] > 0, res
    assert r["children_wrong"] == 0, r
    check_no_leak(r, plain)


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

@pytest.mark.parametrize("delay_us", [0, 200, 2000, 20000])
@pytest.mark.parametrize("options", [None, "log=off"])
def test_exit_from_another_thread_mid_handoff(shim, delay_us, options):
    """exit(7) from one thread while four tainted threads are in forwarded creates: the process
    exits with 7 (not a crash, not a hang), as without the shim."""
    for _ in range(3):
        faults("exit", args=["--rounds", delay_us], expect_status=7)
        faults("exit", shim, args=["--rounds", delay_us], options=options, expect_status=7)


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
@pytest.mark.parametrize("exiter", ["main", "thread"])
def test_exit_during_forwarded_creates(exiter, shim):
    for code in (42, 7):
        r = run_app("failures", ["--mode", "exit", "--exiter", exiter, "--code", str(code)],
                    shim=shim, expect_status=code, result=False)
        assert r.stdout.strip() == '{"atexit": true}', r.describe()
