# SPDX-License-Identifier: Apache-2.0
"""Threads that glibc creates inside (PRODUCT.md, "What must keep working under it": they must not
inherit a taint either; issue 3 item 6), with build/testapps/glibc_threads.

timer_create and mq_notify with SIGEV_THREAD, getaddrinfo_a and POSIX aio start their helper and
notification threads with glibc's internal create, which no LD_PRELOAD interposer of
pthread_create sees. A worker in a new net namespace makes the call; the notification function
reports the net namespace of the thread it runs on.
  * without the shim that is the worker's (tainted) namespace: proof the case is real;
  * with the shim it is the baseline's, and the call still does its job (the timer fires, the
    message is received, "localhost" resolves, the read returns the file's bytes);
  * a caller with a private fd table (unshare(CLONE_FILES)) whose queue / file descriptor exists
    only there: the call must keep working, with or without the shim.
"""

import ctypes
import ctypes.util
import uuid

import pytest

from issue3_helpers import run_app

MODES = ["timer", "mq", "gai", "aio"]
SHIM_IDS = ["no-shim", "shim"]
AIO_CONTENT = "pristine aio content\n"


@pytest.fixture
def mq_name():
    """A unique POSIX message queue name; unlinked afterwards in case the program could not."""
    name = f"/pristine-test-{uuid.uuid4().hex[:12]}"
    yield name
    lib = ctypes.util.find_library("rt") or ctypes.util.find_library("c")
    try:
        ctypes.CDLL(lib, use_errno=True).mq_unlink(name.encode())
    except (OSError, AttributeError):
        pass


@pytest.fixture
def aio_file(tmp_path):
    path = tmp_path / "aio-input.txt"
    path.write_text(AIO_CONTENT)
    return path


def _run(mode, taint, shim, mq_name, aio_file):
    args = ["--mode", mode, "--taint", taint, "--mq-name", mq_name, "--file", str(aio_file)]
    r = run_app("glibc_threads", args, shim=shim)
    return r, r.json


def _check_result(r, j, mode):
    assert j["error"] is None, r.describe()
    assert j["ok"], r.describe()
    expected = {"timer": ["fired"], "mq": ["pristine"], "gai": ["127.0.0.1", "::1"],
                "aio": [AIO_CONTENT]}[mode]
    assert j["detail"] in expected, r.describe()


@pytest.mark.parametrize("mode", MODES)
def test_without_shim_glibc_thread_inherits_taint(mode, mq_name, aio_file):
    r, j = _run(mode, "net", False, mq_name, aio_file)
    _check_result(r, j, mode)
    assert j["caller_net"] != j["baseline_net"], r.describe()
    assert j["callback_net"] == j["caller_net"], r.describe()


@pytest.mark.parametrize("mode", MODES)
def test_with_shim_glibc_thread_gets_baseline(mode, mq_name, aio_file):
    r, j = _run(mode, "net", True, mq_name, aio_file)
    _check_result(r, j, mode)
    assert j["caller_net"] != j["baseline_net"], r.describe()
    assert j["callback_net"] == j["baseline_net"], r.describe()
    # The caller itself is left in its own namespace.
    assert j["caller_net_after"] == j["caller_net"], r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
@pytest.mark.parametrize("mode", MODES)
def test_untainted_caller(mode, shim, mq_name, aio_file):
    r, j = _run(mode, "none", shim, mq_name, aio_file)
    _check_result(r, j, mode)
    assert j["callback_net"] == j["baseline_net"] == j["caller_net"], r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
@pytest.mark.parametrize("mode", ["mq", "aio"])
def test_private_fd_table_call_still_works(mode, shim, mq_name, aio_file):
    # The queue / file is opened after unshare(CLONE_FILES): its descriptor exists only in the
    # caller's private table. Running the call elsewhere (on the template) must not break it.
    r, j = _run(mode, "net,files", shim, mq_name, aio_file)
    assert j["caller_files_private"] is True, r.describe()
    _check_result(r, j, mode)
    assert j["caller_net_after"] == j["caller_net"], r.describe()
    if not shim:
        assert j["callback_net"] == j["caller_net"], r.describe()
