# SPDX-License-Identifier: Apache-2.0
"""Single-threaded changes racing the library's own threads (issue 12 item 10), with
build/testapps/userns_after_join.

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

from issue3_helpers import run_app

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
