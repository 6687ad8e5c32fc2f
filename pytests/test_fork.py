# SPDX-License-Identifier: Apache-2.0
"""fork, posix_spawn, vfork and system() under the library (README, "Baseline": in a forked child
the baseline is the forking thread's state; fork and exec pass the caller's state on), with
build/testapps/forker, fork_stack and vfork_child.

forker:
  * child-baseline: a worker in a new net namespace forks; in the child a thread created by the
    child's main thread is in the forking thread's namespace (with and without the shim); a thread
    of the child that taints itself again gets the child's baseline with the shim (the template
    was started again in the child), the re-tainted namespace without it; the same when the
    child's main thread taints itself before it ever created a thread;
  * stress: forks while other threads are in the middle of forwarded creates must not deadlock
    (the timeout is a hang guard, never a measurement);
  * posix_spawn, vfork+execve and system() work, from a clean and from a tainted thread, and the
    spawned program runs in its caller's namespaces.

fork_stack: nothing of the library's threads in a forked child.
  In a forked child glibc caches the stacks of the parent's other threads and hands one to a later
  create that asks for at least a quarter of its size. The parent here has the library's threads
  running (a worker with a private fs made forwarded creates: the template and spares); in a
  forked child a thread asks for a PTHREAD_STACK_MIN stack with a one-page guard:
    * pthread_getattr_np reports the stack and guard sizes it reports without the library;
    * a thread that writes down past its requested size reaches its guard page: the child dies of
      SIGSEGV, with and without the library.

  Without the fix the child's thread got the template's cached 64 KiB stack (stack_size 65536
  against 16384) and its overflow never faulted (the child exited 0).

vfork_child: interposed calls in a vfork child.
  A vfork child shares its parent's memory, the library's records included, but is another
  process: a thread it starts lives in the child and dies at its exec or _exit, and a lock it
  waits on may be held by a parent thread that cannot run on its behalf. The child makes one
  interposed call (its CPU set, setns/unshare of namespaces, a private fs, a user namespace,
  capset, no_new_privs, its signal mask) and execs /bin/true or _exits; the parent then has a
  worker with a private fs create a thread (forwarded: it needs the template), and its main thread
  create one too.
    * both creates return (the test's timeout is the hang detector), the parent is still
      single-threaded after the vfork, and the worker's thread got the baseline's cwd.

  Without the fix: affinity, setns-net, unshare-fs, unshare-net and syscall-unshare started a
  template in the child; the parent's forwarded create then waited for it forever (hung, killed by
  the timeout). capset and nnp left the parent with records of a template that was gone, and its
  forwarded create was made on the caller (the new thread got the worker's cwd "/").
"""

import pytest

from programs import run_app

pytestmark = pytest.mark.root

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


# ---------------------------------------------------------------------------------------------
# Nothing of the library's threads in a forked child (fork_stack)

@pytest.fixture(scope="module")
def plain():
    return run_app("fork_stack").json


def test_without_the_library_the_small_stack_overflows_into_its_guard(plain):
    assert plain["stack_size"] == plain["requested"], plain
    assert plain["overflow_status"] == "signal SEGV", plain


@pytest.fixture(scope="module")
def with_shim():
    r = run_app("fork_stack", shim=True)
    assert r.json["parent_tasks"] > 1, f"the library's threads did not run\n{r.describe()}"
    return r


def test_forked_childs_small_stack_is_what_glibc_gives_without_the_library(plain, with_shim):
    j = with_shim.json
    assert (j["stack_size"], j["guard_size"]) == (plain["stack_size"], plain["guard_size"]), \
        f"without the library: {plain}\n{with_shim.describe()}"


def test_forked_childs_small_stack_overflows_into_its_guard(with_shim):
    assert with_shim.json["overflow_status"] == "signal SEGV", \
        f"the overflow did not reach the guard page\n{with_shim.describe()}"


# ---------------------------------------------------------------------------------------------
# Interposed calls in a vfork child (vfork_child)

CALLS = ["affinity", "setns-net", "unshare-fs", "unshare-net", "unshare-user",
         "syscall-unshare", "capset", "nnp", "sigmask"]
# A hang without the fix costs this much; with it each run takes milliseconds.
TIMEOUT_S = 30


def _check(j, r):
    assert j["child_status"] == "exit 0", r.describe()
    assert j["tasks_after_vfork"] == 1, f"the parent is not single-threaded any more\n{r.describe()}"
    assert j["create_rc"] == 0 and j["main_create_rc"] == 0, r.describe()


@pytest.mark.parametrize("call", ["affinity", "unshare-fs"])
def test_without_the_library_the_worker_thread_inherits_its_cwd(call):
    r = run_app("vfork_child", ["--call", call], timeout=TIMEOUT_S)
    j = r.json
    _check(j, r)
    assert j["worker_cwd"] == "/" and j["child_cwd"] == "/", r.describe()


@pytest.mark.parametrize("exit_how", ["exec", "_exit"])
@pytest.mark.parametrize("call", CALLS)
def test_call_in_vfork_child_starts_nothing_and_the_parent_still_creates(shim, call, exit_how):
    r = run_app("vfork_child", ["--call", call, "--exit", exit_how], shim=True,
                timeout=TIMEOUT_S)
    j = r.json
    _check(j, r)
    assert j["worker_cwd"] == "/", r.describe()
    assert j["child_cwd"] == j["baseline_cwd"], \
        f"the worker's forwarded thread did not get the baseline's cwd\n{r.describe()}"
