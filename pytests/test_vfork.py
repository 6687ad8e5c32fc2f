# SPDX-License-Identifier: Apache-2.0
"""Interposed calls in a vfork child (issue 12 item 4), with build/testapps/vfork_child.

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

from issue3_helpers import run_app

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
