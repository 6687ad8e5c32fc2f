# SPDX-License-Identifier: Apache-2.0
"""Namespace changes that Linux allows only in a single-threaded process, and pid namespaces
(PRODUCT.md, "Baseline" and "What must keep working under it"; issue 3 items 2 and 3).

With the template alive a process is never single-threaded, so unshare(CLONE_NEWUSER) and setns
into a user or mount namespace would fail with EINVAL where they worked before. The shim must let
them through when the template is the only other thread (parking it and starting it again, with
the baseline rebased to the new state), and must leave the kernel's answer alone otherwise.

  * util-linux unshare / nsenter: same exit status, stdout and stderr with and without the shim;
  * build/testapps/userns --mode rebase: unshare(CLONE_NEWUSER), setns(user), setns(mnt) from
    main, then threads and forwarded threads land in the new namespaces;
  * userns --mode busy: with other user threads alive the kernel's EINVAL stays;
  * userns --mode pidns: after unshare(CLONE_NEWPID) glibc's create fails with EINVAL; a forwarded
    create succeeds, and the caller's own pid_for_children is untouched (its fork is pid 1).
    (test_taints.py covers the create itself for every API and via.)
"""

import os
import signal
import subprocess
import time

import pytest

from issue3_helpers import clean_env, run_app, run_cmd

SHIM_IDS = ["no-shim", "shim"]


# ---------------------------------------------------------------------------------------------
# util-linux tools

def _same_as_without_shim(cmd):
    plain = run_cmd(cmd)
    shimmed = run_cmd(cmd, shim=True)
    assert (shimmed.returncode, shimmed.stdout, shimmed.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr), \
        f"\nwithout shim: {plain.describe()}\nwith shim: {shimmed.describe()}"
    return plain


UNSHARE_CASES = [
    pytest.param(["unshare", "-U", "true"], "", id="unshare-U"),
    pytest.param(["unshare", "-Ur", "id", "-u"], "0\n", id="unshare-Ur-id"),
    pytest.param(["unshare", "-Urm", "id", "-u"], "0\n", id="unshare-Urm-id"),
    pytest.param(["unshare", "-m", "true"], "", id="unshare-m"),
    pytest.param(["unshare", "-n", "true"], "", id="unshare-n"),
]


@pytest.mark.parametrize("cmd,out", UNSHARE_CASES)
def test_unshare_tool_without_shim(cmd, out):
    r = run_cmd(cmd)
    assert r.returncode == 0 and r.stdout == out, r.describe()


@pytest.mark.parametrize("cmd,out", UNSHARE_CASES)
def test_unshare_tool_with_shim_same_as_without(cmd, out):
    plain = _same_as_without_shim(cmd)
    assert plain.returncode == 0 and plain.stdout == out, plain.describe()


@pytest.fixture
def userns_target():
    """A `sleep` running in its own user+mount namespace (`unshare -Urm`, without the shim);
    yields its pid. Killed afterwards."""
    own_user = os.stat("/proc/self/ns/user").st_ino
    proc = subprocess.Popen(["unshare", "-Urm", "sleep", "1000"], env=clean_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        # Wait (hang guard only) until unshare has exec'd sleep in the new namespaces.
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.skip(f"unshare -Urm sleep exited {proc.returncode}: "
                            f"{proc.stderr.read().decode(errors='replace')}")
            try:
                comm = open(f"/proc/{proc.pid}/comm").read().strip()
                user = os.stat(f"/proc/{proc.pid}/ns/user").st_ino
            except OSError:
                comm, user = "", own_user
            if comm == "sleep" and user != own_user:
                break
            if time.monotonic() > deadline:
                pytest.fail("unshare -Urm sleep did not start within 60 s")
            time.sleep(0.01)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


NSENTER_CASES = [
    pytest.param(["-U", "-m", "true"], "", id="nsenter-U-m"),
    pytest.param(["-U", "-m", "id", "-u"], "0\n", id="nsenter-U-m-id"),
    pytest.param(["-U", "id", "-u"], "0\n", id="nsenter-U-id"),
    pytest.param(["-m", "true"], "", id="nsenter-m"),
]


@pytest.mark.parametrize("args,out", NSENTER_CASES)
def test_nsenter_without_shim(userns_target, args, out):
    r = run_cmd(["nsenter", "-t", str(userns_target), *args])
    assert r.returncode == 0 and r.stdout == out, r.describe()


@pytest.mark.parametrize("args,out", NSENTER_CASES)
def test_nsenter_with_shim_same_as_without(userns_target, args, out):
    plain = _same_as_without_shim(["nsenter", "-t", str(userns_target), *args])
    assert plain.returncode == 0 and plain.stdout == out, plain.describe()


def test_nsenter_mount_ns_of_pid1_with_shim_same_as_without():
    plain = _same_as_without_shim(["nsenter", "-m", "-t", "1", "true"])
    if plain.returncode != 0:
        pytest.skip(f"nsenter -m -t 1 does not work here even without the shim: {plain.stderr}")


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
# userns --mode pidns

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
