# SPDX-License-Identifier: Apache-2.0
"""Fidelity of forwarded creations: what the caller asked for through pthread_attr_t, the errno it
gets back, and many tainted creators at once (README, "How it works": fidelity). The errno at a
thread limit is test_thread_limits.py's.

Every forwarded case taints the worker's net namespace, so that the shim forwards the create; the
same run without the shim is the reference.
"""

import pytest

from programs import APIS, describe

pytestmark = pytest.mark.root

ATTR_CASES = [
    pytest.param(["--attr-stacksize", "262144"], id="stacksize"),
    pytest.param(["--attr-guardsize", "65536"], id="guardsize"),
    pytest.param(["--attr-stack"], id="caller-stack"),
    pytest.param(["--attr-detached"], id="detached"),
    pytest.param(["--attr-stack", "--attr-detached"], id="caller-stack-detached"),
    pytest.param(["--attr-affinity", "0"], id="affinity"),
    # The worker pins itself to the last CPU (an isolated taint) and asks for CPU 0 explicitly:
    # the attribute wins over both the caller's and the baseline's set.
    pytest.param(["--taint", "affinity", "--attr-affinity", "0"], id="affinity-over-taint"),
    pytest.param(["--attr-sigmask", "10"], id="sigmask"),
    pytest.param(["--taint", "sigmask", "--attr-sigmask", "15"], id="sigmask-over-inherited"),
    pytest.param(["--attr-sched", "fifo:10"], id="sched-fifo"),
    pytest.param(["--taint", "nice", "--attr-sched", "rr:5"], id="sched-rr-over-nice"),
]


def _comparable(child):
    """The child's state minus what legitimately differs between two runs or under forwarding."""
    c = {k: v for k, v in child.items() if k not in ("tid", "ns")}
    c["attr"] = {k: v for k, v in child["attr"].items() if k != "stackaddr"}
    return c


def _check_supplied_stack(r):
    if r["supplied_stack"] is None:
        return
    lo = r["supplied_stack"]["addr"]
    hi = lo + r["supplied_stack"]["size"]
    addr = r["child"]["attr"]["stackaddr"]
    assert lo <= addr < hi, f"child stack {addr:#x} outside the supplied [{lo:#x}, {hi:#x}) " \
                            f"{describe(r)}"


@pytest.mark.parametrize("attr", ATTR_CASES)
def test_attribute_honoured_when_forwarded(run_probe, attr):
    args = ["--api", "pthread", "--taint", "net", *attr]
    plain = run_probe(args)
    shimmed = run_probe(args, shim=True)
    for r in (plain, shimmed):
        assert r["create_error"] is None, describe(r)
        assert r["child"] is not None, describe(r)
        _check_supplied_stack(r)
    # Proof that the create was forwarded (and that the reference was not).
    assert plain["child"]["ns"]["net"] == plain["caller"]["ns"]["net"], describe(plain)
    assert shimmed["child"]["ns"]["net"] == shimmed["baseline"]["ns"]["net"], describe(shimmed)
    # Same thread as without the shim, but for the tid and the namespaces.
    assert _comparable(shimmed["child"]) == _comparable(plain["child"]), \
        f"\nwithout shim: {plain['child']}\nwith shim:    {shimmed['child']}\n{describe(shimmed)}"


def test_attribute_cases_really_change_something(run_probe):
    """The attribute cases above are not vacuous: each differs from a default-attribute child."""
    default = run_probe(["--api", "pthread", "--taint", "net"])["child"]
    for param in ATTR_CASES:
        attr = list(param.values[0])
        r = run_probe(["--api", "pthread", "--taint", "net", *attr])
        assert _comparable(r["child"]) != _comparable(default), f"{param.id} changed nothing"


# ---------------------------------------------------------------------------------------------
# errno fidelity

def test_errno_invalid_attribute(run_probe):
    # Explicit scheduling with SCHED_FIFO and priority 0: glibc's setters accept it (the priority
    # is checked against the policy current at set time) and the kernel rejects it at creation.
    args = ["--api", "pthread", "--taint", "net", "--attr-invalid"]
    plain = run_probe(args)
    assert plain["create_error"] == "EINVAL", describe(plain)
    assert plain["child"] is None
    shimmed = run_probe(args, shim=True)
    assert shimmed["create_error"] == plain["create_error"], describe(shimmed)
    assert shimmed["child"] is None, describe(shimmed)


# ---------------------------------------------------------------------------------------------
# Many concurrent tainted creators

CONCURRENT = 8
CREATES = 25


@pytest.mark.parametrize("api", APIS)
def test_concurrent_tainted_creators_without_shim(run_probe, api):
    r = run_probe(["--api", api, "--concurrent", CONCURRENT, "--child-creates", CREATES,
                   "--taint", "net"])
    total = CONCURRENT * CREATES
    assert r["workers"] == CONCURRENT and r["callers_distinct_net"] == CONCURRENT, describe(r)
    assert r["children_total"] == total and r["children_created"] == total, describe(r)
    assert r["children_caller_net"] == total, describe(r)
    assert r["children_baseline_net"] == 0, describe(r)


@pytest.mark.parametrize("api", APIS)
def test_concurrent_tainted_creators_with_shim(run_probe, api):
    r = run_probe(["--api", api, "--concurrent", CONCURRENT, "--child-creates", CREATES,
                   "--taint", "net", "--taint", "name"], shim=True)
    total = CONCURRENT * CREATES
    assert r["create_error"] is None, describe(r)
    assert r["workers"] == CONCURRENT and r["callers_distinct_net"] == CONCURRENT, describe(r)
    assert r["children_total"] == total and r["children_created"] == total, describe(r)
    # Every child of every worker: the baseline's net namespace, its creator's (inherited) name,
    # and each worker's children all alike.
    assert r["children_baseline_net"] == total, describe(r)
    assert r["children_ok"] == total, describe(r)
    assert r["child"]["name"] == "tainted-worker", describe(r)

