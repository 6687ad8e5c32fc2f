# SPDX-License-Identifier: Apache-2.0
"""Thread limits (README, "Reliability": faults; "Limits": spare threads): at a pids cgroup limit,
RLIMIT_NPROC or RLIMIT_AS a faulted create returns what glibc returns, the process holds as many
threads as without the library (or one fewer, the template's slot: a spare is given back when a
create would fail), creates work again once the limit is lifted, no thread or mapping leaks, and
nothing deadlocks; a repaired create whose attributes cannot be allocated is still made, in its
creator's state, and says so. With build/testapps/faults, build/testapps/failures and the probe.

Each case runs without the library too (the reference). Timeouts are hang guards only.
"""

import json

import pytest

from programs import APIS, check_no_leak, describe, run_app

pytestmark = pytest.mark.root

TIMEOUT_S = 180  # healthy runs take well under a second each


def faults(case, shim=False, args=()):
    return run_app("faults", [case, *args], shim=shim, timeout=TIMEOUT_S).json


# ---------------------------------------------------------------------------------------------
# testapps/faults

def test_thread_limit_capacity_is_glibcs(shim, pids_cgroup):
    """Under a pids cgroup limit set before the program creates anything, a tainted worker holds
    threads alive until a create fails: it gets EAGAIN, as from glibc, and holds as many threads
    as without the shim, or one fewer (the template's slot): the spare threads' slots are given
    back when a create would fail."""
    plain = faults("cgroup", args=["--cgroup", pids_cgroup()])
    r = faults("cgroup", shim, args=["--cgroup", pids_cgroup()])
    assert r["rc"] == plain["rc"] == "EAGAIN", (plain, r)
    assert plain["held"] - 1 <= r["held"] <= plain["held"], (plain, r)
    assert r["rc_after"] == plain["rc_after"] == "0", (plain, r)
    assert r["children_wrong"] == 0, r
    assert plain["children_wrong"] == plain["children_ran"], plain
    check_no_leak(r, plain)
    check_no_leak(plain, plain)


@pytest.mark.parametrize("case", ["nproc", "rlimit-as"])
def test_limit_gives_glibc_result_and_nothing_leaks(shim, case):
    """nproc: RLIMIT_NPROC for uid 65534 (the whole process drops to it, template included);
    rlimit-as: a 64 MiB stack cannot be mapped under RLIMIT_AS."""
    plain = faults(case)
    r = faults(case, shim)
    assert r["rc"] == plain["rc"] == "EAGAIN", (plain, r)
    assert r["attempts_differing"] == plain["attempts_differing"] == 0, (plain, r)
    # A null attr may be served by a spare thread the shim made before the limit was reached.
    assert r["rc_default_attr"] in ("0", "EAGAIN"), r
    assert r["rc_after"] == plain["rc_after"] == "0", (plain, r)
    # Under the shim the tainted worker's children got the baseline netns; without it they did not.
    assert r["children_wrong"] == 0, r
    assert plain["children_wrong"] == plain["children_ran"], plain
    check_no_leak(r, plain)
    check_no_leak(plain, plain)


# ---------------------------------------------------------------------------------------------
# testapps/failures: the task limit reached during a forwarded create: the caller gets EAGAIN as
# from glibc; once the limit is lifted creates work again, and no thread leaked.

@pytest.mark.parametrize("shim", [False, True], ids=["no-shim", "shim"])
def test_task_limit_eagain_then_recovers_without_leak(pids_cgroup, shim):
    r = run_app("failures", ["--mode", "limit", "--cgroup", pids_cgroup()], shim=shim)
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
# The probe: the errno a create gets at the limit, through every API

def _expected_eagain(api):
    return "thrd_error" if api == "thrd" else "EAGAIN"


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("method", ["cgroup", "nproc"])
def test_errno_at_task_limit(run_probe, pids_cgroup, method, api):
    # cgroup: the probe moves itself into a fresh pids cgroup and, in the tainted worker, sets
    #         pids.max to pids.current: any clone of the process fails with EAGAIN, whichever
    #         thread (caller or template) does it.
    # nproc:  RLIMIT_NPROC 0 and the worker lowers its own uids/gids to 65534 with raw syscalls
    #         (RLIMIT_NPROC does not apply to real uid 0): EAGAIN from a clone done with the
    #         caller's credentials. Under the shim this is also a "creds" never-escalate case.
    args = ["--api", api, "--taint", "net", "--exhaust-threads", "--exhaust-method", method]

    def with_cgroup():
        return args + (["--cgroup", pids_cgroup()] if method == "cgroup" else [])
    plain = run_probe(with_cgroup())
    assert plain["create_error"] == _expected_eagain(api), describe(plain)
    assert plain["child"] is None
    shimmed = run_probe(with_cgroup(), shim=True)
    assert shimmed["create_error"] == plain["create_error"], describe(shimmed)
    assert shimmed["child"] is None, describe(shimmed)


# ---------------------------------------------------------------------------------------------
# Out of memory

def test_repaired_create_without_memory_says_so(tmp_path):
    """A worker pinned to one CPU creates twice; the second time every realloc on it fails, so
    the library cannot put the baseline's CPU set in the attributes. That create still succeeds,
    in the creator's state (as glibc's would), with a line on the log, and its site is filed as
    direct with that reason, not as 'inherited dimensions only'."""
    plain = run_app("failures", ["--mode", "no-memory"]).json
    assert plain["errors"] == ["0", "0"], plain
    assert plain["child_cpus"] == [plain["caller_cpus"]] * 2, plain  # glibc: inherited both times
    report = tmp_path / "report.json"
    r = run_app("failures", ["--mode", "no-memory"], shim=True, options=f"report={report}")
    res = r.json
    assert res["caller_cpus"] == 1 and res["baseline_cpus"] > 1, res
    assert res["errors"] == ["0", "0"], res
    assert res["child_cpus"] == [res["baseline_cpus"], res["caller_cpus"]], res
    assert "the baseline could not be set up for a new thread" in r.stderr, r.describe()
    sites = sorted((s["decision"], s["reason"] or "") for s in json.loads(report.read_text())["sites"])
    assert sites == [("direct", "the baseline could not be set up for the new thread (out of memory, "
                                "or a rebase replaced it meanwhile)"),
                     ("repaired", "")], sites
