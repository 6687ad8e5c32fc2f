# SPDX-License-Identifier: Apache-2.0
"""Threads that glibc creates inside (README, "How it works": glibc's own threads must not inherit a
taint either), with build/testapps/glibc_threads and build/testapps/libc_answers.

timer_create and mq_notify with SIGEV_THREAD, getaddrinfo_a and POSIX aio start their helper and
notification threads with glibc's internal create, which no LD_PRELOAD interposer of
pthread_create sees. A worker in a new net namespace makes the call; the notification function
reports the net namespace of the thread it runs on.
  * without the shim that is the worker's (tainted) namespace: proof the case is real;
  * with the shim it is the baseline's, and the call still does its job (the timer fires, the
    message is received, "localhost" resolves, the read returns the file's bytes);
  * a caller with a private fd table (unshare(CLONE_FILES)) whose queue / file descriptor exists
    only there: the call must keep working, with or without the shim.

libc_answers: libc's answers for bad arguments.
  The library hands timer_create and mq_notify with SIGEV_THREAD, getaddrinfo_a, aio_read,
  aio_write, aio_fsync (and their 64 forms) and lio_listio (and lio_listio64) to a clean thread, and
  rewrites some arguments on the way (LIO_WAIT and GAI_WAIT become a submission and a wait). Every
  bad argument must still get glibc's answer: the same return value, the same errno, and the same
  I/O done or not done (an invalid lio_listio mode queues nothing; an invalid getaddrinfo_a mode looks
  nothing up). Each case runs on a thread in the baseline and on a thread in a new network namespace
  (whose calls the library hands on); both are compared, case by case, with the same run without the
  library.
"""

import ctypes
import ctypes.util
import uuid

import pytest

from programs import run_app

pytestmark = pytest.mark.root

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


# ---------------------------------------------------------------------------------------------
# Libc's answers for bad arguments (libc_answers)

# One entry per case of testapps/libc_answers.cc.
CASES = [
    "lio_listio_bad_mode",
    "lio_listio_negative_mode",
    "lio_listio64_bad_mode",
    "lio_listio_wait_one_refused",
    "lio_listio_wait_all_refused",
    "lio_listio_nowait_one_refused",
    "lio_listio_wait_nonsense_sigevent",
    "lio_listio_nowait_nonsense_sigevent",
    "lio_listio_wait_nothing",
    "lio_listio_wait_bad_fd",
    "aio_write_bad_prio",
    "aio_read_bad_prio",
    "aio_write64_bad_prio",
    "aio_read64_bad_prio",
    "aio_write_bad_fd",
    "aio_fsync_bad_op",
    "aio_fsync64_bad_op",
    "aio_fsync_bad_fd",
    "aio_fsync_closed_fd",
    "getaddrinfo_a_bad_mode",
    "getaddrinfo_a_negative_mode",
    "getaddrinfo_a_wait_nonsense_sigevent",
    "getaddrinfo_a_nothing",
    "timer_create_bad_clock",
    "timer_create_bad_notify",
    "timer_create_caller_cpu_clock",
    "mq_notify_bad_descriptor",
    "mq_notify_not_a_queue",
    "mq_notify_already_registered",
]

TAINTS = ["none", "net"]

_runs = {}


def answers(taint, shim, tmp_path_factory):
    """The program's JSON for one configuration, run once per test session."""
    key = (taint, shim)
    if key not in _runs:
        d = tmp_path_factory.mktemp(f"libc-answers-{taint}-{'shim' if shim else 'plain'}")
        r = run_app("libc_answers", ["--dir", str(d), "--taint", taint], shim=shim)
        j = r.json
        if taint == "net":
            assert j["caller_net"] != j["baseline_net"], r.describe()
        _runs[key] = (r, j)
    return _runs[key]


def test_every_case_is_checked(tmp_path_factory):
    _, j = answers("none", False, tmp_path_factory)
    assert sorted(j["cases"]) == sorted(CASES)


@pytest.mark.parametrize("taint", TAINTS)
@pytest.mark.parametrize("case", CASES)
def test_same_answer_as_glibc(case, taint, tmp_path_factory):
    plain_run, plain = answers(taint, False, tmp_path_factory)
    shim_run, shim = answers(taint, True, tmp_path_factory)
    expected = plain["cases"][case]
    got = shim["cases"][case]
    assert got == expected, (f"{case} (caller taint: {taint}): glibc gives {expected}, "
                             f"under the library {got}\n{shim_run.describe()}")


def test_bad_modes_are_refused_without_io(tmp_path_factory):
    # What glibc does, spelled out, so that the comparison above cannot pass on a broken run.
    _, plain = answers("none", False, tmp_path_factory)
    c = plain["cases"]
    for name in ("lio_listio_bad_mode", "lio_listio_negative_mode", "lio_listio64_bad_mode"):
        assert (c[name]["rc"], c[name]["errno"], c[name]["observed"]["file"]) == (-1, "EINVAL", "")
    for name in ("getaddrinfo_a_bad_mode", "getaddrinfo_a_negative_mode"):
        assert c[name]["errno"] == "EINVAL"
        assert c[name]["observed"]["looked_up"] == 0
    assert c["lio_listio_wait_one_refused"]["errno"] == "EIO"
    assert c["lio_listio_wait_one_refused"]["observed"]["file_at_return"] == "good"
    assert c["timer_create_caller_cpu_clock"]["observed"]["runs_on_caller_cpu_time"] == 1
