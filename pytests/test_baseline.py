# SPDX-License-Identifier: Apache-2.0
"""The baseline (README, "Baseline"): baseline=load (the state of the thread that loads the
library) and baseline=first-thread (the main thread's state when it creates its first thread),
for a program whose main thread configures the process before it starts any thread; and the
hint logged once when a create is forwarded from the main thread. With the probe's --main-taint.
Forked children (test_fork.py), single-threaded changes (test_single_threaded_changes.py) and
pristine_rebase() (test_api.py) redefine the baseline too.
"""

import pytest

from programs import describe


pytestmark = pytest.mark.root


def net(state):
    return state["ns"]["net"]


def _check_ok(r):
    assert r["create_error"] is None, f"child creation failed: {r['create_error']} {describe(r)}"
    assert r["child"] is not None, describe(r)


def test_main_taint_without_shim_worker_inherits_main(run_probe):
    r = run_probe(["--main-taint", "net"])
    _check_ok(r)
    assert r["main"]["ns"]["net"] != r["baseline"]["ns"]["net"]
    assert r["caller"]["ns"]["net"] == r["main"]["ns"]["net"], describe(r)
    assert r["child"]["ns"]["net"] == r["main"]["ns"]["net"], describe(r)


def test_main_taint_with_shim_load_baseline(run_probe):
    # Default baseline=load: the worker created by the tainted main thread is forwarded and gets
    # the load-time namespace.
    r = run_probe(["--main-taint", "net"], shim=True)
    _check_ok(r)
    assert r["caller"]["ns"]["net"] == r["baseline"]["ns"]["net"], describe(r)
    assert r["child"]["ns"]["net"] == r["baseline"]["ns"]["net"], describe(r)
    # A create forwarded from the main thread is logged once with the hint (README, "Baseline";
    # log=stderr is the default).
    assert "first-thread" in r["_stderr"], describe(r)


def test_main_taint_with_shim_first_thread_baseline(run_probe):
    r = run_probe(["--main-taint", "net"], shim=True, options="baseline=first-thread")
    _check_ok(r)
    assert r["caller"]["ns"]["net"] == r["main"]["ns"]["net"], describe(r)
    assert r["child"]["ns"]["net"] == r["main"]["ns"]["net"], describe(r)


def test_baseline_load_vs_first_thread(run_probe):
    # main enters a new net namespace before it starts the worker.
    load = run_probe(["--main-taint", "net"], shim=True, options="baseline=load")
    assert net(load["caller"]) == net(load["baseline"]), describe(load)
    first = run_probe(["--main-taint", "net"], shim=True, options="baseline=first-thread")
    assert net(first["caller"]) == net(first["main"]), describe(first)
    assert net(first["caller"]) != net(first["baseline"]), describe(first)
