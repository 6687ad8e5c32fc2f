# SPDX-License-Identifier: Apache-2.0
"""An inherited namespace on a caller with a private fd table (issue 12 item 5), with
build/testapps/inherit_private_fds.

With net=inherit (or uts=inherit), a worker with a private fd table (unshare(CLONE_FILES), an
isolated taint: its creates are forwarded), optionally a private fs too, enters a new namespace
of the inherited kind. The main thread then opens a file in the baseline's fd table: it gets the
number the next descriptor of the worker's private table gets. The worker creates a thread.
  * the new thread is in the worker's namespace (inherited), as without the library;
  * the main thread's descriptor is still open and still its file.

Without the fix the library opened the worker's namespace descriptor in the worker's table and
the new thread, in the baseline's table, entered and closed that number there: the new thread
stayed in the baseline's namespace and the main thread's file was closed (EBADF), in every
case below.
"""

import pytest

from issue3_helpers import run_app

OPTIONS = "net=inherit:uts=inherit"
CASES = [
    pytest.param(["--ns", "net"], id="net"),
    pytest.param(["--ns", "net", "--also-fs"], id="net-also-fs"),
    pytest.param(["--ns", "net", "--attr"], id="net-with-attr"),
    pytest.param(["--ns", "uts"], id="uts"),
    pytest.param(["--ns", "uts", "--also-fs", "--attr"], id="uts-also-fs-with-attr"),
]


def _check(r):
    j = r.json
    assert j["create_rc"] == 0, r.describe()
    assert j["caller_ns"] != j["baseline_ns"], r.describe()
    assert j["child_ns"] == j["caller_ns"], \
        f"the new thread is not in its caller's (inherited) namespace\n{r.describe()}"
    assert j["main_fd_same_file"] and j["main_fd_errno"] == "0", \
        f"the program's descriptor {j['main_fd']} was closed or replaced\n{r.describe()}"


@pytest.mark.parametrize("args", CASES)
def test_without_the_library(args):
    _check(run_app("inherit_private_fds", args, options=OPTIONS))


@pytest.mark.parametrize("args", CASES)
def test_inherited_namespace_with_private_fd_table(shim, args):
    _check(run_app("inherit_private_fds", args, shim=True, options=OPTIONS))
