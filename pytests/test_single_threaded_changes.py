# SPDX-License-Identifier: Apache-2.0
"""Changes that Linux allows only in a single-threaded process (README, "Baseline"):
unshare(CLONE_NEWUSER), setns into a user namespace, and setns into a mount namespace by a thread
sharing its fs. With the template alive a process is never single-threaded, so these would fail
with EINVAL where they worked before. The library must let them through when its own threads are
the only other ones (stopping them and starting them again, with the baseline rebased to the new
state), and leave the kernel's answer alone otherwise.

  * util-linux unshare / nsenter: the same exit status, stdout and stderr with and without the
    library;
  * build/testapps/userns --mode rebase: unshare(CLONE_NEWUSER), setns(user), setns(mnt) from
    main, then threads and forwarded threads land in the new namespaces;
  * userns --mode busy: with other user threads alive the kernel's EINVAL stays;
  * build/testapps/userns_after_join: the same changes racing the library's own threads.
    Linux refuses unshare(CLONE_NEWUSER) (EINVAL) in a multi-threaded process. Under the library the
    template and its spares are threads of the process: the library must stop them and let the call
    through, whatever they are doing at that moment. Each cycle: a worker makes its fs private and
    creates a thread with default attributes (forwarded: the template starts and makes spares right
    after the create), the worker ends and is joined, the program waits until Linux has released its
    own two threads (as a careful program must: pthread_join returns a moment earlier), and the main
    thread calls unshare(CLONE_NEWUSER), maps root to its creator's ids and creates one more thread.
    20 forked children run 20 cycles each (each unshare nests one more user namespace).
      * without the library: every unshare succeeds (proof the program is not racy itself);
      * with it: every unshare succeeds too, and the create after it works.

    Without the fix: 4 to 20 of the 400 unshares failed with EINVAL (the library counted threads to
    decide whether to retry, and a spare being made made the count differ).
"""

import pytest

from programs import need, run, run_app

pytestmark = pytest.mark.root

SHIM_IDS = ["no-shim", "shim"]


# ---------------------------------------------------------------------------------------------
# util-linux unshare and nsenter. Cases with an expected output must work here and be the same
# under the library to the byte; the others (namespaces this machine may not allow) skip where
# they fail without the library too, and must then work under it with the same output.

UNSHARE_CASES = [
    pytest.param(["unshare", "-U", "true"], "", id="unshare-U"),
    pytest.param(["unshare", "-Ur", "id", "-u"], "0\n", id="unshare-Ur-id"),
    pytest.param(["unshare", "-Urm", "id", "-u"], "0\n", id="unshare-Urm-id"),
    pytest.param(["unshare", "-m", "true"], "", id="unshare-m"),
    pytest.param(["unshare", "-n", "true"], "", id="unshare-n"),
    pytest.param(["unshare", "-n", "ip", "-o", "link"], None, id="unshare-n-ip-link"),
    pytest.param(["unshare", "-U", "-r", "-m", "-n", "true"], None, id="unshare-Urmn"),
    pytest.param(["unshare", "-p", "-f", "--mount-proc", "true"], None, id="unshare-p-f-mount-proc"),
]

# Entered in ns_target (conftest.py): a sleep in its own user (root mapped), net and mount
# namespaces.
NSENTER_CASES = [
    pytest.param(["-U", "-m", "true"], "", id="nsenter-U-m"),
    pytest.param(["-U", "-m", "id", "-u"], "0\n", id="nsenter-U-m-id"),
    pytest.param(["-U", "id", "-u"], "0\n", id="nsenter-U-id"),
    pytest.param(["-m", "true"], "", id="nsenter-m"),
    pytest.param(["-n", "ip", "-o", "link"], None, id="nsenter-n-ip-link"),
    pytest.param(["-T", "true"], None, id="nsenter-T"),
    pytest.param(["-a", "true"], None, id="nsenter-a"),
]


def _same_as_without_shim(cmd, out):
    need(cmd[0], *(["ip"] if "ip" in cmd else []))
    plain = run(cmd)
    if out is None and plain.returncode != 0:
        pytest.skip(f"`{' '.join(cmd)}` fails here even without the shim: {plain.stderr.strip()}")
    assert plain.returncode == 0, plain.describe()
    if out is not None:
        assert plain.stdout == out, plain.describe()
    shimmed = run(cmd, shim=True)
    if out is None:
        assert shimmed.returncode == 0, shimmed.describe()
        assert shimmed.stdout == plain.stdout, (plain.stdout, shimmed.stdout)
    else:
        assert (shimmed.returncode, shimmed.stdout, shimmed.stderr) == \
            (plain.returncode, plain.stdout, plain.stderr), \
            f"\nwithout shim: {plain.describe()}\nwith shim: {shimmed.describe()}"
    return plain


@pytest.mark.parametrize("cmd,out", UNSHARE_CASES)
def test_unshare_tool_same_as_without_the_library(shim, cmd, out):
    _same_as_without_shim(cmd, out)


@pytest.mark.parametrize("args,out", NSENTER_CASES)
def test_nsenter_same_as_without_the_library(shim, ns_target, args, out):
    _same_as_without_shim(["nsenter", "-t", str(ns_target), *args], out)


def test_nsenter_mount_ns_of_pid1_with_shim_same_as_without(shim):
    plain = run(["nsenter", "-m", "-t", "1", "true"])
    if plain.returncode != 0:
        pytest.skip(f"nsenter -m -t 1 does not work here even without the shim: {plain.stderr}")
    _same_as_without_shim(["nsenter", "-m", "-t", "1", "true"], "")


# ---------------------------------------------------------------------------------------------
# userns --mode rebase

def _ns(state, name):
    return state["ns"][name]


def _rebase(via, shim):
    r = run_app("userns", ["--mode", "rebase", "--via", via], shim=shim)
    return r, r.json


@pytest.mark.parametrize("via", ["unshare", "syscall"])
def test_rebase_without_shim(via):
    r, j = _rebase(via, shim=False)
    assert j["unshare_user"] == {"rc": 0, "errno": "0"}, r.describe()
    new_user = _ns(j["main_after_unshare"], "user")
    assert new_user != _ns(j["main_before"], "user"), r.describe()
    assert _ns(j["t_after_unshare"], "user") == new_user, r.describe()
    # The tainted worker's child inherits the worker's net namespace (no shim).
    a = j["after_unshare"]
    assert _ns(a["child"], "net") == _ns(a["worker"], "net") != _ns(j["main_before"], "net")
    assert j["setns_user"] == {"rc": 0, "errno": "0"}, r.describe()
    assert _ns(j["t_after_setns_user"], "user") == j["helper_ns"]["user"], r.describe()
    assert j["setns_mnt"] == {"rc": 0, "errno": "0"}, r.describe()
    assert _ns(j["t_after_setns_mnt"], "mnt") == j["helper_ns"]["mnt"], r.describe()


@pytest.mark.parametrize("via", ["unshare", "syscall"])
def test_unshare_user_with_shim_rebases(via):
    r, j = _rebase(via, shim=True)
    # Let through: the template was the only other thread.
    assert j["unshare_user"] == {"rc": 0, "errno": "0"}, r.describe()
    new_user = _ns(j["main_after_unshare"], "user")
    assert new_user != _ns(j["main_before"], "user"), r.describe()
    assert _ns(j["t_after_unshare"], "user") == new_user, r.describe()
    # A forwarded create now lands in the new user namespace (the template was started again
    # from the rebased state), with the baseline's net namespace.
    a = j["after_unshare"]
    assert a["create_error"] is None, r.describe()
    assert _ns(a["worker"], "net") != _ns(j["main_after_unshare"], "net"), r.describe()
    assert _ns(a["child"], "net") == _ns(j["main_after_unshare"], "net"), r.describe()
    assert _ns(a["child"], "user") == new_user, r.describe()


@pytest.mark.parametrize("via", ["unshare", "syscall"])
def test_setns_user_with_shim_rebases(via):
    r, j = _rebase(via, shim=True)
    assert j["setns_user"] == {"rc": 0, "errno": "0"}, r.describe()
    assert _ns(j["main_after_setns_user"], "user") == j["helper_ns"]["user"], r.describe()
    assert _ns(j["t_after_setns_user"], "user") == j["helper_ns"]["user"], r.describe()


@pytest.mark.parametrize("via", ["unshare", "syscall"])
def test_setns_mnt_with_shim_rebases(via):
    r, j = _rebase(via, shim=True)
    assert j["setns_mnt"] == {"rc": 0, "errno": "0"}, r.describe()
    helper = j["helper_ns"]
    assert _ns(j["t_after_setns_mnt"], "mnt") == helper["mnt"], r.describe()
    # The rebased template: a forwarded child is in the new user and mount namespaces, with the
    # baseline's (main's) net namespace.
    a = j["after_setns"]
    assert a["create_error"] is None, r.describe()
    main = j["main_after_setns_mnt"]
    assert _ns(a["worker"], "net") != _ns(main, "net"), r.describe()
    assert _ns(a["child"], "net") == _ns(main, "net"), r.describe()
    assert _ns(a["child"], "user") == helper["user"], r.describe()
    assert _ns(a["child"], "mnt") == helper["mnt"], r.describe()


# ---------------------------------------------------------------------------------------------
# userns --mode busy: other user threads alive -> the kernel's EINVAL, with or without the shim.

@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
@pytest.mark.parametrize("via", ["unshare", "syscall"])
@pytest.mark.parametrize("threads", [1, 2])
def test_unshare_user_with_other_threads_fails_einval(threads, via, shim):
    r = run_app("userns", ["--mode", "busy", "--threads", str(threads), "--via", via], shim=shim)
    j = r.json
    assert j["unshare_user"] == {"rc": -1, "errno": "EINVAL"}, r.describe()
    assert _ns(j["main_after"], "user") == _ns(j["main_before"], "user"), r.describe()


# ---------------------------------------------------------------------------------------------
# Racing the library's own threads (userns_after_join)

ARGS = ["--runs", "20", "--cycles", "20"]


def _check(r):
    j = r.json
    assert j["hung"] == 0 and j["crashed"] == 0, r.describe()
    assert j["cycles"] == 400, r.describe()
    assert j["failed"] == 0, f"unshare(CLONE_NEWUSER) failed: {j['errors']}\n{r.describe()}"


def test_userns_after_join_without_the_library():
    _check(run_app("userns_after_join", ARGS))


def test_userns_after_join_never_fails_because_of_the_librarys_threads(shim):
    _check(run_app("userns_after_join", ARGS, shim=True))
