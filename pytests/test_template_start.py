# SPDX-License-Identifier: Apache-2.0
"""No template that will not serve (issue 18 item 1), with build/testapps/template_start.

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

import pytest

from issue3_helpers import run_app

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
