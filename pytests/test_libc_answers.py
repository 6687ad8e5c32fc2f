# SPDX-License-Identifier: Apache-2.0
"""Libc's answers for bad arguments (issue 18 item 3), with build/testapps/libc_answers.

The library hands timer_create and mq_notify with SIGEV_THREAD, getaddrinfo_a, aio_read,
aio_write, aio_fsync (and their 64 forms) and lio_listio (and lio_listio64) to a clean thread, and
rewrites some arguments on the way (LIO_WAIT and GAI_WAIT become a submission and a wait). Every
bad argument must still get glibc's answer: the same return value, the same errno, and the same
I/O done or not done (an invalid lio_listio mode queues nothing; an invalid getaddrinfo_a mode looks
nothing up). Each case runs on a thread in the baseline and on a thread in a new network namespace
(whose calls the library hands on); both are compared, case by case, with the same run without the
library.
"""

import pytest

from issue3_helpers import run_app

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
