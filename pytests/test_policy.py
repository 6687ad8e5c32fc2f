# SPDX-License-Identifier: Apache-2.0
"""The policy, dimension by dimension (README, "Policy"): isolated dimensions get the baseline
under the library, inherited ones follow the caller, with the probe.

Every isolate case is run twice:
  * without the shim, the child inherits the caller's tainted value (child == caller != baseline):
    proof that the case really taints something a new thread would inherit;
  * with the shim, the child has the baseline value, and everything else equals the caller's.
Privileges and restrictions are test_never_escalate.py's; the baseline itself test_baseline.py's.
"""

import pytest

from programs import APIS, describe, get, without

pytestmark = pytest.mark.root

NS_DIMS = ["net", "uts", "ipc", "mnt", "cgroup"]
VIAS = ["unshare", "setns", "syscall"]


def _isolate_cases():
    cases = []
    for ns in NS_DIMS:
        for via in VIAS:
            keys = [f"ns.{ns}"]
            if ns == "mnt":
                # unshare(CLONE_NEWNS) implies CLONE_FS, and setns into a mount namespace needs a
                # private fs_struct (the probe unshares it first): the fs table is tainted too.
                keys.append("fs_shared_with_main")
                if via == "setns":
                    # setns(CLONE_NEWNS) also moves the thread's root and cwd to the namespace's
                    # root, so the caller's cwd differs from the baseline's as well.
                    keys.append("cwd")
            cases.append(pytest.param(["--via", via, "--taint", ns], keys, id=f"{ns}-{via}"))
    # time_for_children: on this kernel (6.x) a thread *can* be created after
    # unshare(CLONE_NEWTIME) (unlike CLONE_NEWPID), and it inherits time_for_children. setns into a
    # time namespace is refused in a multi-threaded process (EUSERS), so there is no setns case.
    for via in ("unshare", "syscall"):
        cases.append(pytest.param(["--via", via, "--taint", "time"], ["ns.time_for_children"],
                                  id=f"time-{via}"))
    cases += [
        pytest.param(["--taint", "fs"], ["cwd", "umask", "fs_shared_with_main"], id="fs"),
        pytest.param(["--taint", "files"], ["files_shared_with_main"], id="files"),
        pytest.param(["--taint", "affinity"], ["affinity"], id="affinity"),
        pytest.param(["--taint", "affinity-remote"], ["affinity"], id="affinity-remote"),
    ]
    return cases


ISOLATE_CASES = _isolate_cases()
INHERITED = ["sigmask", "nice", "name", "sched_policy", "sched_priority"]


def _check_ok(r):
    assert r["create_error"] is None, f"child creation failed: {r['create_error']} {describe(r)}"
    assert r["child"] is not None, describe(r)


# ---------------------------------------------------------------------------------------------
# Isolate dimensions

@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("taint,keys", ISOLATE_CASES)
def test_isolate_without_shim_child_inherits_taint(run_probe, taint, keys, api):
    r = run_probe(["--api", api, *taint])
    _check_ok(r)
    for key in keys:
        base, caller, child = get(r["baseline"], key), get(r["caller"], key), get(r["child"], key)
        assert caller != base, f"the taint did not change {key}: {caller!r} {describe(r)}"
        assert child == caller, f"{key}: child {child!r} != caller {caller!r} {describe(r)}"


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("taint,keys", ISOLATE_CASES)
def test_isolate_with_shim_child_gets_baseline(run_probe, taint, keys, api):
    r = run_probe(["--api", api, *taint], shim=True)
    _check_ok(r)
    for key in keys:
        base, caller, child = get(r["baseline"], key), get(r["caller"], key), get(r["child"], key)
        assert caller != base, f"the taint did not change {key}: {caller!r} {describe(r)}"
        assert child == base, f"{key}: child {child!r} != baseline {base!r} {describe(r)}"
    # Everything that is not the isolated dimension is the caller's, exactly as without the shim.
    top = {k.split(".")[0] for k in keys}
    child, caller = without(r["child"], *top), without(r["caller"], *top)
    assert child == caller, describe(r)
    if any(k.startswith("ns.") for k in keys):
        for ns, ino in r["child"]["ns"].items():
            if f"ns.{ns}" not in keys:
                assert ino == r["caller"]["ns"][ns], f"ns.{ns} {describe(r)}"


@pytest.mark.parametrize("api", APIS)
def test_repeated_creates_from_tainted_caller_all_get_baseline(run_probe, api):
    # A cache of "this caller is clean" must not survive a later taint: the worker first creates a
    # child untainted, then unshares its net namespace and creates 5 more.
    r = run_probe(["--api", api, "--pre-create", "--taint", "net", "--child-creates", "5"], shim=True)
    _check_ok(r)
    assert r["pre_create_error"] is None, describe(r)
    assert r["pre_child"]["ns"]["net"] == r["baseline"]["ns"]["net"], describe(r)
    assert r["children_total"] == 5 and r["children_created"] == 5, describe(r)
    assert r["children_ok"] == 5, describe(r)
    assert r["children_baseline_net"] == 5, describe(r)


# ---------------------------------------------------------------------------------------------
# pid: the kernel refuses CLONE_THREAD once pid_for_children differs from the active pid namespace.
# A forwarded create is the only way the program gets its thread at all.

def _expected_einval(api):
    # thrd_create maps every error but ENOMEM/EBUSY/ETIMEDOUT to thrd_error.
    return "thrd_error" if api == "thrd" else "EINVAL"


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("via", VIAS)
def test_pid_without_shim_create_fails(run_probe, via, api):
    r = run_probe(["--api", api, "--via", via, "--taint", "pid"])
    assert r["child"] is None, describe(r)
    assert r["create_error"] == _expected_einval(api), describe(r)
    # After unshare the link cannot even be opened (ENOENT until the namespace has an init);
    # after setns it names the target namespace. Either way it is not the baseline's.
    assert r["caller"]["ns"]["pid_for_children"] != r["baseline"]["ns"]["pid_for_children"]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("via", VIAS)
def test_pid_with_shim_create_is_forwarded(run_probe, via, api):
    r = run_probe(["--api", api, "--via", via, "--taint", "pid"], shim=True)
    _check_ok(r)
    assert r["child"]["ns"]["pid_for_children"] == r["baseline"]["ns"]["pid_for_children"], \
        describe(r)
    assert without(r["child"], "ns") == without(r["caller"], "ns"), describe(r)


# ---------------------------------------------------------------------------------------------
# Inherit dimensions: the child always has the caller's value.

INHERIT_CASES = [
    pytest.param(["--taint", "sigmask"], ["sigmask"], id="sigmask"),
    pytest.param(["--taint", "nice"], ["nice"], id="nice"),
    pytest.param(["--taint", "name"], ["name"], id="name"),
]


@pytest.mark.parametrize("shim", [False, True], ids=["no-shim", "shim"])
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("taint,keys", INHERIT_CASES)
def test_inherit_dimension_follows_caller(run_probe, taint, keys, api, shim):
    r = run_probe(["--api", api, *taint], shim=shim)
    _check_ok(r)
    for key in keys:
        assert r["caller"][key] != r["baseline"][key], f"taint did not change {key} {describe(r)}"
        assert r["child"][key] == r["caller"][key], f"{key} {describe(r)}"
    assert without(r["child"]) == without(r["caller"]), describe(r)


@pytest.mark.parametrize("shim", [False, True], ids=["no-shim", "shim"])
@pytest.mark.parametrize("api", APIS)
def test_combined_net_with_inherited_dimensions(run_probe, api, shim):
    r = run_probe(["--api", api, "--taint", "net", "--taint", "sigmask", "--taint", "nice",
                   "--taint", "name"], shim=shim)
    _check_ok(r)
    base, caller, child = r["baseline"], r["caller"], r["child"]
    for key in ("sigmask", "nice", "name"):
        assert caller[key] != base[key], key
        assert child[key] == caller[key], f"{key} {describe(r)}"
    assert caller["ns"]["net"] != base["ns"]["net"]
    if shim:
        assert child["ns"]["net"] == base["ns"]["net"], describe(r)
    else:
        assert child["ns"]["net"] == caller["ns"]["net"], describe(r)
    assert without(child, "ns") == without(caller, "ns"), describe(r)


@pytest.mark.parametrize("shim", [False, True], ids=["no-shim", "shim"])
@pytest.mark.parametrize("api", APIS)
def test_untainted_program_child_equals_caller(run_probe, api, shim):
    r = run_probe(["--api", api], shim=shim)
    _check_ok(r)
    assert without(r["child"]) == without(r["caller"]), describe(r)
    assert without(r["caller"]) == without(r["baseline"]), describe(r)
