# SPDX-License-Identifier: Apache-2.0
"""Never escalate, without exceptions (issue 11 item 4), with build/testapps/priv_forwarded,
util-linux setpriv and libcap's capsh.

Every thread that runs program code because of the library has at most the privileges of the
thread it runs for, whatever verify= says:
  (a) glibc's own threads: a worker with a taint (a new network namespace, or a private fs) that
      became uid 65534 (its own thread, raw setresgid/setresuid) or dropped every capability and
      set no_new_privs makes glibc start a thread (timer_create and mq_notify with SIGEV_THREAD,
      getaddrinfo_a, aio_write with a SIGEV_THREAD notification): the notification function
      runs with at most the worker's privileges;
  (b) setfsuid/setfsgid: a worker with a private fs switches its filesystem ids to 65534 and
      creates a thread (forwarded): the thread's fsuid/fsgid are the worker's, and it cannot
      read a root-only file either;
  (c) verify=fast, a capability drop or a seccomp filter made with system call instructions
      (no interposer sees them) by a worker with a private fs, then a create: the new thread
      gets no privilege back and keeps the filter;
  (d) process-wide privilege changes: util-linux setpriv and libcap's capsh behave exactly as
      without the library, and a process whose library threads already run (a worker with a
      private fs made forwarded creates) can do a keep-caps dance (prctl(PR_SET_KEEPCAPS),
      setresuid, capset, setresgid) without glibc aborting it;
  (e) verify=strict sees a change made behind the library's back: a worker enters a new network
      namespace with a system call instruction and creates a thread, which is in the baseline's.
Each case also runs without the library, to show the program and the taint are real.

Without the fix: (a) every notification ran as root with every capability and without
no_new_privs (uid "0 0 0 0", CapEff 000001fffeffffff), in all 16 cases; (b) the thread had fsuid
0 and read the root-only file; (c) the thread had every capability back / no filter and no
no_new_privs; (d) setpriv, the capsh line that raises a capability and then changes its gid, and
the keep-caps dance were aborted by glibc (exit 134, "setxid" failed on the template only); (e)
the thread stayed in the worker's namespace (also on main before this branch's change to the
create path's fast test, which never read the kernel for a thread with no recorded change).
"""

import os
import tempfile

import pytest

from conftest import SHIM
from issue3_helpers import run_app, run_cmd

MECHS = ["timer", "mq", "gai", "aio"]
FULL = 0x000001fffeffffff


def _caps(p, key):
    return int(p[key], 16)


def _at_most(child, caller, what):
    """child's privileges are at most caller's."""
    for key in ("cap_eff", "cap_prm", "cap_inh"):
        extra = _caps(child, key) & ~_caps(caller, key)
        assert extra == 0, f"{what}: {key} has {extra:#x} that the caller lacks: {child} vs {caller}"
    assert child["uid"] == caller["uid"], f"{what}: uid {child['uid']} vs caller {caller['uid']}"
    assert child["gid"] == caller["gid"], f"{what}: gid {child['gid']} vs caller {caller['gid']}"
    assert child["nnp"] >= caller["nnp"], f"{what}: no_new_privs lost"
    assert child["seccomp"] >= caller["seccomp"], f"{what}: seccomp filter lost"


@pytest.fixture
def scratch_file():
    fd, path = tempfile.mkstemp(prefix="pristine-priv-")
    os.write(fd, b"pristine\n")
    os.close(fd)
    yield path
    os.unlink(path)


@pytest.fixture
def root_only_file():
    """A root-owned 0600 file in /tmp (world-traversable), so that only the mode protects it."""
    fd, path = tempfile.mkstemp(prefix="pristine-secret-", dir="/tmp")
    os.write(fd, b"secret\n")
    os.close(fd)
    os.chmod(path, 0o600)
    yield path
    os.unlink(path)


def _glibc(mech, drop, taint, shim, path):
    args = ["--case", "glibc", "--mech", mech, "--drop", drop, "--taint", taint, "--file", path]
    r = run_app("priv_forwarded", args, shim=shim)
    j = r.json
    assert j["error"] is None and j["child"] is not None, r.describe()
    if drop == "uid":
        assert j["caller"]["uid"] == "65534 65534 65534 65534", r.describe()
    else:
        assert _caps(j["caller"], "cap_eff") == 0 and j["caller"]["nnp"] == 1, r.describe()
    return r


@pytest.mark.parametrize("mech", MECHS)
def test_glibc_threads_without_the_library_have_the_callers_privileges(mech, scratch_file):
    r = _glibc(mech, "uid", "net", False, scratch_file)
    assert r.json["child"] == r.json["caller"], r.describe()


@pytest.mark.parametrize("taint", ["net", "fs"])
@pytest.mark.parametrize("drop", ["uid", "nocaps"])
@pytest.mark.parametrize("mech", MECHS)
def test_glibc_threads_never_have_more_than_their_starter(shim, mech, drop, taint, scratch_file):
    r = _glibc(mech, drop, taint, True, scratch_file)
    _at_most(r.json["child"], r.json["caller"], f"{mech} notification\n{r.describe()}")


@pytest.mark.parametrize("shim_on", [False, True], ids=["no-shim", "shim"])
def test_fsuid_is_the_callers_on_a_forwarded_thread(shim_on, root_only_file):
    r = run_app("priv_forwarded", ["--case", "fsuid", "--file", root_only_file], shim=shim_on)
    j = r.json
    assert j["error"] is None and j["child"] is not None, r.describe()
    assert j["caller"]["uid"].endswith(" 65534") and j["caller"]["gid"].endswith(" 65534"), \
        r.describe()
    assert j["caller_open"] == "EACCES", r.describe()
    _at_most(j["child"], j["caller"], f"forwarded thread\n{r.describe()}")
    assert j["child_open"] == "EACCES", f"the new thread read root's file\n{r.describe()}"


@pytest.mark.parametrize("drop", ["caps", "seccomp"])
@pytest.mark.parametrize("shim_on", [False, True], ids=["no-shim", "shim"])
def test_inline_privilege_drop_is_seen_with_verify_fast(shim_on, drop):
    r = run_app("priv_forwarded", ["--case", "inline", "--drop", drop], shim=shim_on,
                options="verify=fast")
    j = r.json
    assert j["error"] is None and j["child"] is not None, r.describe()
    _at_most(j["child"], j["caller"], f"new thread\n{r.describe()}")
    if drop == "caps":
        assert _caps(j["caller"], "cap_eff") == 0 and _caps(j["child"], "cap_eff") == 0, \
            r.describe()
    else:
        assert j["child"]["seccomp"] == 2 and j["child_denied"], \
            f"the new thread escaped the seccomp filter\n{r.describe()}"


# Commands that change the process's ids (glibc's set*id broadcast reaches every thread).
TOOLS = [
    pytest.param(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "id"],
                 id="setpriv"),
    pytest.param(["capsh", "--keep=1", "--uid=65534", "--print"], id="capsh-keep-uid"),
    pytest.param(["capsh", "--keep=1", "--uid=65534", "--caps=cap_setgid+ep", "--gid=65534",
                  "--", "-c", "id"], id="capsh-keep-uid-caps-gid"),
]


@pytest.mark.parametrize("cmd", TOOLS)
def test_privilege_tools_behave_as_without_the_library(shim, cmd):
    plain = run_cmd(cmd)
    assert plain.returncode == 0, plain.describe()
    under = run_cmd(cmd, shim=True)
    assert (under.returncode, under.stdout) == (plain.returncode, plain.stdout), \
        f"without the library:\n{plain.describe()}\nwith it:\n{under.describe()}"


@pytest.mark.parametrize("shim_on", [False, True], ids=["no-shim", "shim"])
def test_keep_caps_dance_with_the_librarys_threads_running(shim_on):
    r = run_app("priv_forwarded", ["--case", "keepcaps-dance"], shim=shim_on)
    j = r.json
    if shim_on:
        assert j["tasks_before"] > 1, f"the library's threads were not running\n{r.describe()}"
    assert set(j["steps"].values()) == {"0"}, r.describe()
    assert j["caller"]["uid"] == "65534 65534 65534 65534", r.describe()
    assert j["caller"]["gid"] == "65534 65534 65534 65534", r.describe()
    assert j["error"] is None and j["child"] is not None, r.describe()
    _at_most(j["child"], j["caller"], f"new thread\n{r.describe()}")


def test_raw_netns_change_without_the_library():
    j = run_app("priv_forwarded", ["--case", "raw-netns"]).json
    assert j["caller_net"] != j["baseline_net"] and j["child_net"] == j["caller_net"], j


def test_verify_strict_sees_a_namespace_change_made_with_an_inline_syscall(shim):
    r = run_app("priv_forwarded", ["--case", "raw-netns"], shim=True, options="verify=strict")
    j = r.json
    assert j["error"] is None, r.describe()
    assert j["caller_net"] != j["baseline_net"], r.describe()
    assert j["child_net"] == j["baseline_net"], \
        f"verify=strict did not give the new thread the baseline's namespace\n{r.describe()}"
