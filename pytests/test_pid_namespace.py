# SPDX-License-Identifier: Apache-2.0
"""pid namespaces (README, "Baseline").

  * After unshare(CLONE_NEWPID), glibc's pthread_create fails with EINVAL (the kernel refuses a
    thread whose pid_for_children differs from its own pid namespace); under the library the
    create is forwarded and succeeds, and the caller's own pid_for_children is untouched (its fork
    is pid 1 of the new namespace). build/testapps/userns --mode pidns; test_policy.py covers the
    create itself for every API and every way of changing it.
  * A program in its own pid namespace without its own /proc (`unshare --pid --fork`): the library
    reads /proc through a descriptor whose pid namespace is not the one gettid() answers in, so it
    never names a thread of its own by tid there. A forwarded create (a private fs_struct) must be
    forwarded, its privileges planned from the threads' own status, not filed as restricted (before
    the fix the template's privileges were read by tid, which named another thread or none).
"""

import json

import pytest

from programs import PROBE, need, run_app, run_ok

pytestmark = pytest.mark.root


def _ns(state, name):
    return state["ns"][name]


def test_pidns_without_shim_create_fails_fork_works():
    r = run_app("userns", ["--mode", "pidns"])
    w = r.json["worker"]
    assert w["create_error"] == "EINVAL" and w["child"] is None, r.describe()
    assert w["fork_child_pid"] == 1, r.describe()
    assert _ns(w["caller"], "pid_for_children") != _ns(r.json["baseline"], "pid_for_children")


def test_pidns_with_shim_create_forwarded_caller_untouched():
    r = run_app("userns", ["--mode", "pidns"], shim=True)
    base, w = r.json["baseline"], r.json["worker"]
    assert w["create_error"] is None, r.describe()
    for link in ("pid", "pid_for_children"):
        assert _ns(w["child"], link) == _ns(base, link), f"{link}\n{r.describe()}"
    # The caller keeps its own pid_for_children: its next fork is init of the new namespace.
    assert w["fork_child_pid"] == 1, r.describe()
    assert _ns(w["caller"], "pid_for_children") != _ns(base, "pid_for_children"), r.describe()


def test_forwarded_create_in_a_pid_namespace_without_its_proc(shim):
    need("unshare")
    p = run_ok(["unshare", "--pid", "--fork", "--kill-child", PROBE, "--taint", "fs",
                "--exit-normally"], shim=True, options="report=/dev/stderr", timeout=60)
    r = json.loads(p.stdout)
    assert r["child"]["fs_shared_with_main"] == 1, p.stdout
    reports = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
    assert reports and reports[-1]["decisions"]["forwarded"] == 1, p.stderr
    assert reports[-1]["decisions"]["restricted"] == 0, p.stderr
