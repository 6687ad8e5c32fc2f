# SPDX-License-Identifier: Apache-2.0
"""PRISTINE_OPTIONS=forward=all: every thread creation takes the forwarded path (a spare or the
template creates the thread, which then takes its caller's inherited state), tainted or not, so
that a program's own tests can show that forwarding changes nothing for it.

Each case of testapps/forward_all runs without the library (the reference) and under it with
forward=all; the two must print the same observations. The same cases also run under the default
options from threads with a private fs_struct (--unshare-fs), which the default policy forwards:
what forward=all found different from glibc was different for every forwarded create.
"""

import json
import os
import subprocess

import pytest

from conftest import BUILD_DIR, clean_env, describe, run_probe

APP = BUILD_DIR / "testapps" / "forward_all"
TIMEOUT_S = 120

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
    # Rounding mode and exception flags: forwarded threads had the template's.
    "fenv": {"rounding_upward": True, "divbyzero_raised": True},
    # pthread_setattr_default_np: spares kept the stack and guard sizes they were made with.
    "default_attr": {"stacksize": 1 << 20, "guardsize": 1 << 16},
    # Explicit SCHED_FIFO from a thread without CAP_SYS_NICE: the template, which holds it,
    # created a SCHED_FIFO thread (never escalate) where glibc answers EPERM.
    "errors": {"fifo_priority_0": "EINVAL", "fifo_10_privileged": "0",
               "fifo_10_without_cap_sys_nice": "EPERM"},
}


def run_app(case, *extra, shim=False, options=None, env=None):
    if not APP.exists():
        pytest.fail(f"{APP} is missing (build with `cmake --build build`)")
    cmd = [str(APP), case, *extra]
    proc = subprocess.run(cmd, env=clean_env(shim, options, env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    where = f"{' '.join(cmd)}{' (LD_PRELOAD=shim)' if shim else ''}" \
            f"{f' PRISTINE_OPTIONS={options}' if options is not None else ''}"
    if proc.returncode == 3 and not shim:
        pytest.skip(f"this machine cannot run it: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"{where} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout), proc.stderr


def reference(case, *extra):
    plain, _ = run_app(case, *extra)
    for key, want in CASES[case].items():
        assert plain[key] == want, f"without the library {case}.{key} = {plain[key]!r}"
    return plain


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_all_changes_nothing(case):
    plain = reference(case)
    shimmed, stderr = run_app(case, shim=True, options="forward=all")
    assert shimmed == plain, f"\nwithout the library: {plain}\nforward=all:         {shimmed}\n{stderr}"
    # Nothing said about the main thread's state: forward=all forwards clean callers too.
    assert "main thread created a thread while its state differed" not in stderr, stderr


@pytest.mark.parametrize("case", sorted(set(CASES) - {"inherit_unseen"}))
def test_forwarded_by_default_policy_changes_nothing(case):
    # Creating threads with a private fs_struct, under the default options: forwarded.
    plain = reference(case, "--unshare-fs")
    shimmed, stderr = run_app(case, "--unshare-fs", shim=True)
    assert shimmed == plain, f"\nwithout the library: {plain}\nforwarded:           {shimmed}\n{stderr}"


def test_unseen_inherited_changes_with_verify_strict():
    # Without forward=all, a change made behind libc's entry points is seen with verify=strict.
    plain = reference("inherit_unseen", "--unshare-fs")
    shimmed, stderr = run_app("inherit_unseen", "--unshare-fs", shim=True, options="verify=strict")
    assert shimmed == plain, f"\nwithout the library: {plain}\nforwarded:           {shimmed}\n{stderr}"


# ---------------------------------------------------------------------------------------------
# Every create is forwarded: the report counts each as forwarded (a clean caller's create too),
# and without the option none is.

def _report(tmp_path, options):
    path = tmp_path / "report.json"
    out, _ = run_app("creates", shim=True, options=f"{options}report={path}")
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
    plain, _ = run_app("threadless")
    assert plain == {"tasks": 1}
    shimmed, stderr = run_app("threadless", shim=True, options="forward=all")
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


@pytest.mark.parametrize("api", ["pthread", "std_thread", "thrd"])
@pytest.mark.parametrize("method", ["cgroup", "nproc"])
def test_task_limit_under_forward_all(api, method):
    args = ["--api", api, "--exhaust-threads", "--exhaust-method", method]
    plain = run_probe(args)
    want = "thrd_error" if api == "thrd" else "EAGAIN"
    assert plain["create_error"] == want, describe(plain)
    shimmed = run_probe(args, shim=True, options="forward=all")
    assert shimmed["create_error"] == want and shimmed["child"] is None, describe(shimmed)
