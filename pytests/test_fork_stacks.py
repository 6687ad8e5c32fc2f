# SPDX-License-Identifier: Apache-2.0
"""Nothing of the library's threads in a forked child (issue 18 item 2), with
build/testapps/fork_stack.

In a forked child glibc caches the stacks of the parent's other threads and hands one to a later
create that asks for at least a quarter of its size. The parent here has the library's threads
running (a worker with a private fs made forwarded creates: the template and spares); in a
forked child a thread asks for a PTHREAD_STACK_MIN stack with a one-page guard:
  * pthread_getattr_np reports the stack and guard sizes it reports without the library;
  * a thread that writes down past its requested size reaches its guard page: the child dies of
    SIGSEGV, with and without the library.

Without the fix the child's thread got the template's cached 64 KiB stack (stack_size 65536
against 16384) and its overflow never faulted (the child exited 0).
"""

import pytest

from issue3_helpers import run_app


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
