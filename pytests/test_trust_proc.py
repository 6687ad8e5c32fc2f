# SPDX-License-Identifier: Apache-2.0
"""The library's /proc reads never follow a tainted thread's root (issue 11 item 3), with
build/testapps/forged_proc.

A worker makes its fs private (its creates are forwarded), copies the real status files of every
thread into DIR/root/proc while it is still root with every capability (proc/thread-self/status,
proc/self/status, proc/self/task/<tid>/status: the library's threads included), chroot()s there
and then drops privileges through libc: every capability, no_new_privs, a seccomp filter under
which getppid() fails with EPERM, or capabilities and the filter. It then creates a thread,
which reads its own privileges with system calls.
  * the new thread has at most the worker's capabilities, keeps no_new_privs, and stays under
    the filter (getppid() denied): the library read the worker's privileges through its own
    /proc descriptor, opened in the baseline, not the forged files.

The thread count (single-threaded changes): a worker with a private fs enters a mount namespace
whose /proc says the process has one thread (a bind mount made in that namespace only, after
making every mount private) by setns(), a change Linux allows it; if the library believed that
count it would make the worker's state the baseline. The worker then creates a thread, which
must share the main thread's fs_struct (forwarded to the baseline's).

Without the fix: the new thread got every capability back (CapEff 000001fffeffffff), lost
no_new_privs and escaped the seccomp filter, in all four cases. The thread-count case passed on
the old library (it used the count only when no template ran, and here one always did); it
fails on the current create path if the count is read through the calling thread's root (tried
by changing ThreadCount to open "/proc/self/stat": the new thread kept the worker's fs).
"""

import json

import pytest

from conftest import SHIM
from issue3_helpers import app_path, run_app, run_cmd

DROPS = ["caps", "nnp", "seccomp", "caps,seccomp"]


def _drop(tmp_path, drop, shim):
    r = run_app("forged_proc", ["--dir", str(tmp_path), "--drop", drop], shim=shim)
    j = r.json
    assert j["create_rc"] == 0, r.describe()
    caller, child = j["caller"], j["child"]
    for key in ("cap_eff", "cap_prm", "cap_inh"):
        extra = int(child[key], 16) & ~int(caller[key], 16)
        assert extra == 0, f"the new thread regained {key} {extra:#x}\n{r.describe()}"
    assert child["uid"] == caller["uid"] and child["gid"] == caller["gid"], r.describe()
    assert child["nnp"] >= caller["nnp"], f"no_new_privs lost\n{r.describe()}"
    if "seccomp" in drop:
        assert child["seccomp"] == 2 and j["child_getppid_denied"], \
            f"the new thread escaped the seccomp filter\n{r.describe()}"
    return j


def test_without_the_library_the_drop_is_inherited(tmp_path):
    j = _drop(tmp_path, "caps,seccomp", False)
    assert j["child"] == j["caller"], j


@pytest.mark.parametrize("drop", DROPS)
def test_forged_proc_in_a_chroot_gives_no_privilege_back(shim, tmp_path, drop):
    _drop(tmp_path, drop, True)


def _count(tmp_path, shim):
    # The program makes every mount of its new mount namespace private before its bind mount;
    # it also runs in a private mount namespace of its own, so nothing can reach the host's.
    cmd = ["unshare", "-m", "--propagation", "private", "env"]
    if shim:
        cmd.append(f"LD_PRELOAD={SHIM}")
    cmd += [app_path("forged_proc"), "--dir", str(tmp_path), "--count"]
    r = run_cmd(cmd)
    assert r.returncode == 0, r.describe()
    return json.loads(r.stdout), r


def test_forged_thread_count_without_the_library(tmp_path):
    j, r = _count(tmp_path, False)
    assert j["create_rc"] == 0 and not j["child_shares_main_fs"], r.describe()


def test_forged_thread_count_does_not_rebase(shim, tmp_path):
    j, r = _count(tmp_path, True)
    assert j["create_rc"] == 0, r.describe()
    assert j["child_shares_main_fs"], \
        f"the new thread kept the worker's fs: the library took the forged count\n{r.describe()}"
