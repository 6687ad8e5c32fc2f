# SPDX-License-Identifier: Apache-2.0
"""PRISTINE_OPTIONS=forward=all: every thread creation takes the forwarded path (a spare or the
template creates the thread, which then takes its caller's inherited state), tainted or not, so
that a program's own tests can show that forwarding changes nothing for it.

Each case of testapps/forward_all runs without the library (the reference) and under it with
forward=all; the two must print the same observations. The same cases also run under the default
options from threads with a private fs_struct (--unshare fs), which the default policy forwards,
and from threads in a network namespace of their own (--unshare net), which it isolates on the
caller: what forward=all found different from glibc was different for those creates too.
"""

import json

import pytest

from programs import describe, run_app, run_probe


# Each case, and observations the reference must show (so that no case compares two vacuous
# runs). Comments say what differed from glibc before the fix that made it equal.
CASES = {
    "creates": {"created": 6},
    "identity": {"self_equals_returned": True, "tid_is_new": True, "join_value": True},
    "exit_values": {"pthread_exit_value": 0xbeef, "thrd_exit_value": 7, "thrd_return_value": 9},
    "detach": {"detach": "0", "join_detached": "EINVAL", "created_detached_state": "detached"},
    "join_errors": {"join_self": "EDEADLK"},
    "tls": {"errno_at_start": "0", "tls_initial_value": 42, "key_destructor_value": 0x99},
    "cancel": {"blocked_result": "canceled", "async_result": "canceled"},
    "cancel_state": {"child_cancel_state": "enable", "child_cancel_type": "deferred"},
    "inherit_seen": {"sigusr1_blocked": True, "name": "seen-name", "nice": 5},
    # A name written to /proc/thread-self/comm: forward=all gave the baseline's name.
    "inherit_unseen": {"sigusr1_blocked": True, "name": "unseen-name", "nice": 6},
    # With affinity=inherit: a spare or the template's thread ran on the baseline's CPUs until
    # its setup applied its creator's set (a real-time program pinning threads to one CPU saw
    # the new thread run elsewhere first).
    "inherit_affinity": {"creates": 20, "creator_cpu_set_at_return": 20},
    # Rounding mode and exception flags: forwarded threads had the template's.
    "fenv": {"rounding_upward": True, "divbyzero_raised": True},
    # pthread_setattr_default_np: spares kept the stack and guard sizes they were made with, and
    # a repaired create with a null attr got a one-page guard.
    "default_attr": {"stacksize": 1 << 20, "guardsize": 1 << 16},
    # Explicit SCHED_FIFO from a thread without CAP_SYS_NICE: the template, which holds it,
    # created a SCHED_FIFO thread (never escalate) where glibc answers EPERM.
    "errors": {"fifo_priority_0": "EINVAL", "fifo_10_privileged": "0",
               "fifo_10_without_cap_sys_nice": "EPERM"},
}


# Options a case needs besides the ones a test gives (the policy the case is about).
CASE_OPTIONS = {"inherit_affinity": "affinity=inherit"}


def options_for(case, options):
    parts = [o for o in (options, CASE_OPTIONS.get(case)) if o]
    return ":".join(parts) if parts else None


def run_case(case, *extra, shim=False, options=None, env=None):
    """testapps/forward_all CASE EXTRA: its JSON result and its stderr."""
    r = run_app("forward_all", [case, *extra], shim=shim, options=options, env=env)
    return r.json, r.stderr


def reference(case, *extra):
    plain, _ = run_case(case, *extra)
    for key, want in CASES[case].items():
        assert plain[key] == want, f"without the library {case}.{key} = {plain[key]!r}"
    return plain


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_all_changes_nothing(case):
    plain = reference(case)
    shimmed, stderr = run_case(case, shim=True, options=options_for(case, "forward=all"))
    assert shimmed == plain, f"\nwithout the library: {plain}\nforward=all:         {shimmed}\n{stderr}"
    # Nothing said about the main thread's state: forward=all forwards clean callers too.
    assert "main thread created a thread while its state differed" not in stderr, stderr


# Without forward=all, a change made behind libc's entry points is seen with verify=strict only
# (README, Limits): inherit_unseen runs with it.
DEFAULT_POLICY_OPTIONS = {"inherit_unseen": "verify=strict"}


@pytest.mark.root
@pytest.mark.parametrize("case", sorted(set(CASES) - {"threadless"}))
@pytest.mark.parametrize("unshare", ["fs", "net"])
def test_default_policy_changes_nothing(case, unshare):
    # Creating threads with a private fs_struct (forwarded) or in a network namespace of their
    # own (repaired on the caller), under the default options.
    plain = reference(case, "--unshare", unshare)
    options = options_for(case, DEFAULT_POLICY_OPTIONS.get(case))
    shimmed, stderr = run_case(case, "--unshare", unshare, shim=True, options=options)
    assert shimmed == plain, f"\nwithout the library: {plain}\nunder the library:   {shimmed}\n{stderr}"


# ---------------------------------------------------------------------------------------------
# Every create is forwarded: the report counts each as forwarded (a clean caller's create too),
# and without the option none is.

def _report(tmp_path, options):
    path = tmp_path / "report.json"
    out, _ = run_case("creates", shim=True, options=f"{options}report={path}")
    with open(path) as f:
        return out, json.load(f)


def test_every_create_is_forwarded(tmp_path):
    out, report = _report(tmp_path, "forward=all:")
    assert report["created"] == out["created"] == 6, report
    assert report["forwarded"] == 6, report
    assert report["decisions"]["forwarded"] == 6, report
    # The callers were clean: no tainted create, no call site.
    assert report["tainted"] == 0 and report["sites"] == [], report


def test_without_forward_all_clean_creates_are_not_forwarded(tmp_path):
    _, report = _report(tmp_path, "")
    assert report["created"] == 6 and report["forwarded"] == 0, report


def test_forward_all_keeps_a_threadless_program_single_threaded():
    # The template starts before the first create (or the first change a thread records), not
    # at load: a program that creates no thread has no other thread, and its main thread's
    # pthread_exit ends the process with status 0 (a forked child that never creates a thread,
    # as in the Open POSIX Test Suite's pthread_atfork tests, too).
    plain, _ = run_case("threadless")
    assert plain == {"tasks": 1}
    shimmed, stderr = run_case("threadless", shim=True, options="forward=all")
    assert shimmed == plain, stderr


# ---------------------------------------------------------------------------------------------
# Attributes and errors through the probe, whose threads are all clean: with forward=all every
# create is forwarded anyway, and the child must be the one glibc makes.

PROBE_CASES = [
    pytest.param(["--attr-stacksize", "262144"], id="stacksize"),
    pytest.param(["--attr-guardsize", "65536"], id="guardsize"),
    pytest.param(["--attr-stack"], id="caller-stack"),
    pytest.param(["--attr-detached"], id="detached"),
    pytest.param(["--attr-affinity", "0"], id="affinity"),
    pytest.param(["--attr-sigmask", "10"], id="sigmask"),
    pytest.param(["--attr-sched", "fifo:10"], id="sched-fifo"),
    pytest.param(["--attr-sched", "rr:5"], id="sched-rr"),
]


def _comparable(child):
    c = {k: v for k, v in child.items() if k != "tid"}
    c["attr"] = {k: v for k, v in child["attr"].items() if k != "stackaddr"}
    return c


@pytest.mark.parametrize("attr", PROBE_CASES)
def test_attributes_under_forward_all(attr):
    args = ["--api", "pthread", *attr]
    plain = run_probe(args)
    shimmed = run_probe(args, shim=True, options="forward=all")
    for r in (plain, shimmed):
        assert r["create_error"] is None and r["child"] is not None, describe(r)
        if r["supplied_stack"] is not None:
            lo = r["supplied_stack"]["addr"]
            assert lo <= r["child"]["attr"]["stackaddr"] < lo + r["supplied_stack"]["size"], \
                describe(r)
    assert _comparable(shimmed["child"]) == _comparable(plain["child"]), \
        f"\nwithout shim: {plain['child']}\nforward=all:  {shimmed['child']}\n{describe(shimmed)}"


def test_invalid_attribute_under_forward_all():
    args = ["--api", "pthread", "--attr-invalid"]
    plain = run_probe(args)
    assert plain["create_error"] == "EINVAL", describe(plain)
    shimmed = run_probe(args, shim=True, options="forward=all")
    assert shimmed["create_error"] == "EINVAL" and shimmed["child"] is None, describe(shimmed)


# nproc only: a pids.max set to pids.current counts the spares that exist at that moment, and a
# create handed to one needs no new task (README, Limits), so the cgroup method's answer
# depends on whether the spares were made yet.
@pytest.mark.parametrize("api", ["pthread", "std_thread", "thrd"])
def test_task_limit_under_forward_all(api):
    args = ["--api", api, "--exhaust-threads", "--exhaust-method", "nproc"]
    plain = run_probe(args)
    want = "thrd_error" if api == "thrd" else "EAGAIN"
    assert plain["create_error"] == want, describe(plain)
    shimmed = run_probe(args, shim=True, options="forward=all")
    assert shimmed["create_error"] == want and shimmed["child"] is None, describe(shimmed)
