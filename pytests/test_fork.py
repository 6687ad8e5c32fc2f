# SPDX-License-Identifier: Apache-2.0
"""fork, posix_spawn, vfork and system() under the shim (PRODUCT.md, "Baseline": in a forked child
the baseline is the forking thread's state; issue 3 item 4), with build/testapps/forker.

  * child-baseline: a worker in a new net namespace forks; in the child a thread created by the
    child's main thread is in the forking thread's namespace (with and without the shim); a thread
    of the child that taints itself again gets the child's baseline with the shim (the template
    was started again in the child), the re-tainted namespace without it; the same when the
    child's main thread taints itself before it ever created a thread;
  * stress: forks while other threads are in the middle of forwarded creates must not deadlock
    (the timeout is a hang guard, never a measurement);
  * posix_spawn, vfork+execve and system() work, from a clean and from a tainted thread, and the
    spawned program runs in its caller's namespaces (fork and exec pass the caller's state on).
"""

import pytest

from issue3_helpers import run_app

SHIM_IDS = ["no-shim", "shim"]


def _child_baseline(shim):
    r = run_app("forker", ["--mode", "child-baseline"], shim=shim)
    j = r.json
    assert j["caller_net"] != j["baseline_net"], r.describe()
    for key in ("child1", "child2"):
        assert "failed_status" not in j[key], f"forked child {key} failed\n{r.describe()}"
    return r, j


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_forked_child_thread_gets_forking_threads_netns(shim):
    r, j = _child_baseline(shim)
    c1 = j["child1"]
    assert c1["main_net"] == j["caller_net"], r.describe()
    # Not the parent's original namespace: the child's baseline is the forking thread's state.
    assert c1["t1_net"] == j["caller_net"], r.describe()


def test_forked_child_retaint_without_shim_inherits():
    r, j = _child_baseline(False)
    c1, c2 = j["child1"], j["child2"]
    assert c1["t2_net"] != j["caller_net"] and c1["t3_net"] == c1["t2_net"], r.describe()
    assert c2["main_net"] != c2["main_net_at_fork"] and c2["t_net"] == c2["main_net"], r.describe()
    assert j["parent_child_net"] == j["caller_net"], r.describe()


def test_forked_child_retaint_with_shim_gets_child_baseline():
    r, j = _child_baseline(True)
    c1 = j["child1"]
    # A thread of the child unshares net again: its create is forwarded to the child's template,
    # which holds the forking thread's state.
    assert c1["t2_net"] != j["caller_net"], r.describe()
    assert c1["t3_net"] == j["caller_net"], r.describe()
    # The parent is unaffected by the fork: its tainted worker's create still gets its baseline.
    assert j["parent_child_net"] == j["baseline_net"], r.describe()


def test_forked_child_main_taints_before_first_create_with_shim():
    # The child's main thread changes its namespace before it ever created a thread: the child's
    # baseline is still the state at fork (the template must start before the change).
    r, j = _child_baseline(True)
    c2 = j["child2"]
    assert c2["main_net_at_fork"] == j["caller_net"], r.describe()
    assert c2["main_net"] != c2["main_net_at_fork"], r.describe()
    assert c2["t_net"] == c2["main_net_at_fork"], r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_fork_during_forwarded_creates_does_not_deadlock(shim):
    # 4 tainted creators x 300 creates while two threads (one clean, one tainted) fork 40 times
    # each; every forked child creates a thread (checking it is in the forking thread's net
    # namespace) and exits 0.
    r = run_app("forker", ["--mode", "stress", "--creators", "4", "--creates", "300",
                           "--forks", "40"], shim=shim, timeout=120)
    j = r.json
    assert j["creates_failed"] == 0 and j["creates_ok"] == j["creates_expected"], r.describe()
    assert j["forks_failed"] == 0, r.describe()
    assert j["forks_bad_status"] == 0 and j["forks_ok"] == j["forks_expected"], r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_posix_spawn_vfork_system_work(shim):
    r = run_app("forker", ["--mode", "spawn"], shim=shim)
    j = r.json
    assert j["tainted_worker"]["net"] != j["main"]["net"], r.describe()
    for where in ("main", "tainted_worker"):
        for how in ("posix_spawn", "vfork", "system"):
            s = j[where][how]
            assert s["exited"] and s["exit_status"] == 7, f"{where}/{how}\n{r.describe()}"
            # The spawned shell ran in its caller's net namespace.
            assert s["output"] == str(j[where]["net"]), f"{where}/{how}\n{r.describe()}"
