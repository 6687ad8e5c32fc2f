# SPDX-License-Identifier: Apache-2.0
"""When the template starts (README, "How it works": it starts only when needed, just before the
first change that makes some thread differ from the baseline), and when it cannot.

No template that will not serve, with build/testapps/template_start.

A program that only changes its own state and never creates a thread must stay single-threaded
under the library, as without it: no template, no spare; /proc/self/task has one entry and
glibc's __libc_single_threaded stays 1 (glibc's fork then takes no lock). Changes: its own CPU
set (also with mode=audit and with affinity=inherit), its own network or UTS namespace, its
signal mask, its privileges (capabilities, the bounding set, no_new_privs, glibc's set*id).

The reported deadlock: a program that pinned its CPU set forks; the parent signals the child at
once, and the child's handler calls printf. With glibc taking no lock around a single-threaded
fork this never waits; 100 forks here.

Without the fix: affinity, net, uts, caps, bounding, nnp and the combined case (and affinity
with mode=audit or affinity=inherit) started the template: 2 tasks, __libc_single_threaded 0;
the fork loop hung at its first or second child (the handler's printf waiting on the malloc
lock that fork took in the parent, in _Fork's child before glibc reset it). sigmask and ids
already stayed single-threaded.
"""

import os

import pytest

from programs import run_app

pytestmark = pytest.mark.root

CHANGES = ["none", "affinity", "net", "uts", "sigmask", "caps", "bounding", "nnp", "ids",
           "affinity,net,uts,sigmask,nnp"]


def _check_single_threaded(r):
    j = r.json
    assert j["tasks"] == 1, f"the library started a thread\n{r.describe()}"
    assert j["single_threaded"] == 1, f"__libc_single_threaded turned 0\n{r.describe()}"


@pytest.mark.parametrize("change", ["affinity", "affinity,net,uts,sigmask,nnp"])
def test_without_the_library(change):
    _check_single_threaded(run_app("template_start", ["--change", change]))


@pytest.mark.parametrize("change", CHANGES)
def test_own_changes_leave_the_program_single_threaded(shim, change):
    _check_single_threaded(run_app("template_start", ["--change", change], shim=True))


@pytest.mark.parametrize("options", ["mode=audit", "affinity=inherit", "mode=audit:net=inherit"])
def test_own_cpu_set_with_nothing_to_isolate(shim, options):
    _check_single_threaded(run_app("template_start", ["--change", "affinity,net"], shim=True,
                                   options=options))


@pytest.mark.parametrize("shim_on", [False, True], ids=["no-shim", "shim"])
def test_fork_with_printf_in_the_childs_signal_handler_never_hangs(shim_on):
    r = run_app("template_start", ["--change", "affinity", "--forks", "100"], shim=shim_on,
                timeout=120)
    j = r.json
    _check_single_threaded(r)
    assert j["fork_hung"] == 0, f"a forked child hung in its signal handler\n{r.describe()}"
    assert j["fork_failed"] == 0 and j["forks"] == 100, r.describe()


# ---------------------------------------------------------------------------------------------
# The template cannot be started at its first need (the first change of a thread's state is made
# while pids.max = pids.current, or while RLIMIT_NPROC is 0 for a non-root uid), with
# build/testapps/failures: one warning on stderr, and every create passes through (the program
# still works). The library never aborts its host.

NO_TEMPLATE_WARNING = "could not start the template thread"  # lines are "pristine[PID]: ..."
SHIM_IDS = ["no-shim", "shim"]


def _work_with_pids_limit(cgroup, shim, taint="files"):
    # The worker makes its first change while pids.max = pids.current: unshare(CLONE_FILES), which
    # only a forwarded create isolates (so the template is needed and cannot start), or
    # unshare(CLONE_NEWNET), which a new thread repairs itself (no thread of the library needed).
    return run_app("failures", ["--mode", "work", "--taint", taint, "--cgroup", cgroup],
                   shim=shim)


def _as_nobody():
    def preexec():
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
    return preexec


def _work_as_nobody_with_nproc_zero(shim):
    # uid 65534 (RLIMIT_NPROC does not bind root); the first change is an unprivileged
    # unshare(CLONE_FILES) made while RLIMIT_NPROC is 0.
    return run_app("failures", ["--mode", "work", "--taint", "files", "--nproc"], shim=shim,
                   preexec_fn=_as_nobody())


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_no_template_pids_limit_program_still_works(pids_cgroup, shim):
    # Without a template nothing can be forwarded: the library warns once and passes through.
    r = _work_with_pids_limit(pids_cgroup(), shim)
    j = r.json
    assert j["errors"] == ["0", "0", "0"], r.describe()
    assert r.stderr.count(NO_TEMPLATE_WARNING) == (1 if shim else 0), r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_pids_limit_network_namespace_repaired_without_a_thread_of_the_library(pids_cgroup, shim):
    # A thread the caller creates re-enters the baseline's network namespace itself: that needs no
    # thread of the library, so it works under a limit that leaves room for none.
    r = _work_with_pids_limit(pids_cgroup(), shim, taint="net")
    j = r.json
    assert j["errors"] == ["0", "0", "0"], r.describe()
    assert j["caller_net"] != j["baseline_net"], r.describe()
    expected = j["baseline_net"] if shim else j["caller_net"]
    assert j["child_nets"] == [expected] * 3, r.describe()
    assert NO_TEMPLATE_WARNING not in r.stderr, r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
def test_no_template_rlimit_nproc_program_still_works(shim):
    r = _work_as_nobody_with_nproc_zero(shim)
    j = r.json
    assert j["uid"] == 65534, r.describe()
    assert j["errors"] == ["0", "0", "0"], r.describe()
    assert r.stderr.count(NO_TEMPLATE_WARNING) == (1 if shim else 0), r.describe()
