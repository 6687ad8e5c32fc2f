# SPDX-License-Identifier: Apache-2.0
"""pthread_create inside a constructor of a library being dlopen()ed (README, "How it works": a
caller may hold the dynamic loader's lock), with build/testapps/dlopen_ctor and libctor_lib.so.

The constructor runs with the dynamic loader's lock held and creates + joins a thread. When the
opening thread is tainted (a new net namespace), the shim forwards that create to the template,
which must not need the loader's lock: no deadlock (the timeout is a hang guard only), and the
constructor's thread is in the baseline namespace. Without the shim it is in the opener's.
"""

import pytest

from programs import run_app

pytestmark = pytest.mark.root

SHIM_IDS = ["no-shim", "shim"]


def _run(args, shim):
    r = run_app("dlopen_ctor", args, shim=shim)
    j = r.json
    assert j["dlopen_error"] is None, r.describe()
    assert j["ctor_create_rc"] == 0 and j["ctor_join_rc"] == 0, r.describe()
    assert j["ctor_caller_net"] == j["opener_net"], r.describe()
    return r, j


@pytest.mark.parametrize("opener", ["worker", "main"])
def test_without_shim_ctor_thread_inherits_opener_netns(opener):
    r, j = _run(["--from", opener], shim=False)
    assert j["opener_net"] != j["baseline_net"], r.describe()
    assert j["ctor_thread_net"] == j["opener_net"], r.describe()


@pytest.mark.parametrize("opener", ["worker", "main"])
def test_with_shim_ctor_thread_forwarded_no_deadlock(opener):
    r, j = _run(["--from", opener], shim=True)
    assert j["opener_net"] != j["baseline_net"], r.describe()
    assert j["ctor_thread_net"] == j["baseline_net"], r.describe()


@pytest.mark.parametrize("shim", [False, True], ids=SHIM_IDS)
@pytest.mark.parametrize("opener", ["worker", "main"])
def test_untainted_opener(opener, shim):
    r, j = _run(["--from", opener, "--untainted"], shim=shim)
    assert j["ctor_thread_net"] == j["opener_net"] == j["baseline_net"], r.describe()
