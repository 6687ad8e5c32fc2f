# SPDX-License-Identifier: Apache-2.0
"""Never escalate (PRODUCT.md, "Never escalate"; issue 3 item 1), with build/testapps/escalate.

test_taints.py::test_security_taint_never_escalates already checks eff/prm/inh, no_new_privs,
seccomp mode and uid/gid for the probe's caps/nnp/seccomp/creds taints. This module extends it:
  * every capability set, the bounding and ambient sets included, groups, all four uids/gids and
    the number of stacked seccomp filters (the whole security part of /proc/thread-self/status);
  * a dropped bounding-set capability (prctl(PR_CAPBSET_DROP)), capabilities raised above the
    baseline (inheritable + ambient), a Landlock domain, and several restrictions at once;
  * a caller that is *also* in a new net namespace must still be forwarded (child in the baseline
    netns) when its restriction can be re-applied (capabilities, no_new_privs, lowered per-thread
    uid/gid), and must create the thread itself when it cannot (seccomp, Landlock);
  * no option can switch it off (caps=isolate and friends are refused with one stderr line);
  * the report names the restricted site.
Each case runs without the shim first (the child inherits everything from the caller: proof the
taint is real and what the baseline is), then with it.
"""

import json

import pytest

from issue3_helpers import run_app

SEC_KEYS = ["cap_inh", "cap_prm", "cap_eff", "cap_bnd", "cap_amb", "nnp", "seccomp",
            "seccomp_filters", "uid", "gid", "groups"]
CAP_SETS = ["cap_inh", "cap_prm", "cap_eff", "cap_bnd", "cap_amb"]

# Restrictions the shim can re-apply on a forwarded thread: the caller (also in a new net
# namespace) is forwarded, and the new thread has exactly the caller's security state. A lowered
# per-thread uid/gid/groups is re-applied when the caller is exempt from RLIMIT_NPROC (here it
# kept CAP_SYS_ADMIN); see NOT_FORWARDABLE for one that is not.
FORWARDABLE = [
    pytest.param(["caps"], id="caps-eff-prm"),
    pytest.param(["capbset"], id="capbset"),
    pytest.param(["nnp"], id="nnp"),
    pytest.param(["creds-admin"], id="creds"),
    pytest.param(["caps", "capbset", "nnp", "creds-admin"], id="all-four"),
]
# The same cases for tests that must pass whether or not the create is forwarded.
FORWARDABLE_ANY = [pytest.param(*p.values, id=p.id) for p in FORWARDABLE]

# Restrictions that cannot be copied onto a thread the template creates: the caller creates the
# thread itself, which inherits everything, its net namespace included ("restricted").
# A caller with another real uid under a finite RLIMIT_NPROC: the kernel charges a new thread to
# its creator's uid, and the template (root) would escape the caller's limit, so the caller must
# create its threads itself.
NOT_FORWARDABLE = [
    pytest.param(["seccomp"], id="seccomp"),
    pytest.param(["landlock"], id="landlock"),
    pytest.param(["caps", "seccomp"], id="caps-seccomp"),
    pytest.param(["creds"], id="creds-under-nproc-limit"),
]


# The isolated taint every case starts with: "fs" (a private fs_struct) only a forwarded create
# can isolate, so these cases exercise the privileges of a forwarded thread; "net" a new thread
# re-enters itself when its creator holds CAP_SYS_ADMIN (it then inherits its creator's
# privileges exactly), and is forwarded when the creator gave that up.
ISOLATED = ["fs", "net"]


def _args(taints, scratch, isolated="fs"):
    args = ["--scratch", str(scratch)]
    for t in [isolated, *taints]:  # first: later steps drop the right to unshare
        args += ["--taint", t]
    return args


def _isolated_is_baseline(child, base, isolated):
    if isolated == "fs":
        return child["fs_shared"] == 1
    return child["ns"]["net"] == base["ns"]["net"]


def _run(taints, tmp_path, shim, options=None, isolated="fs"):
    r = run_app("escalate", _args(taints, tmp_path, isolated), shim=shim, options=options)
    j = r.json
    assert j["create_error"] is None, f"child creation failed\n{r.describe()}"
    assert j["child"] is not None, r.describe()
    return r, j["baseline"], j["caller"], j["child"]


def _sec_diff(a, b):
    return {k: (a["sec"][k], b["sec"][k]) for k in SEC_KEYS if a["sec"][k] != b["sec"][k]}


def _assert_taint_real(r, base, caller, taints, isolated="fs"):
    assert not _isolated_is_baseline(caller, base, isolated), f"{isolated} changed nothing\n" \
                                                             f"{r.describe()}"
    if taints != ["landlock"]:
        assert _sec_diff(caller, base), f"{taints} changed nothing in /proc/thread-self/status\n" \
                                        f"{r.describe()}"
    if "landlock" in taints:
        assert base["mkdir"] == "0" and caller["mkdir"] == "EACCES", r.describe()


@pytest.mark.parametrize("isolated", ISOLATED)
@pytest.mark.parametrize("taints", FORWARDABLE_ANY + NOT_FORWARDABLE)
def test_without_shim_child_inherits_taint_and_restrictions(taints, isolated, tmp_path):
    r, base, caller, child = _run(taints, tmp_path, shim=False, isolated=isolated)
    _assert_taint_real(r, base, caller, taints, isolated)
    assert not _isolated_is_baseline(child, base, isolated), r.describe()
    assert _sec_diff(child, caller) == {}, r.describe()
    assert child["mkdir"] == caller["mkdir"], r.describe()


@pytest.mark.parametrize("isolated", ISOLATED)
@pytest.mark.parametrize("taints", FORWARDABLE)
def test_with_shim_isolated_and_never_more_privileged(taints, isolated, tmp_path):
    r, base, caller, child = _run(taints, tmp_path, shim=True, isolated=isolated)
    _assert_taint_real(r, base, caller, taints, isolated)
    # The isolated dimension is the baseline's (forwarded for fs; for net re-entered by the new
    # thread, or forwarded when the caller dropped what re-entry needs) ...
    assert _isolated_is_baseline(child, base, isolated), f"not isolated\n{r.describe()}"
    # ... and every privilege / restriction is exactly the caller's (at most the caller's caps in
    # every set, no_new_privs kept, the lowered uid/gid/groups kept).
    assert _sec_diff(child, caller) == {}, r.describe()


@pytest.mark.parametrize("taints", NOT_FORWARDABLE)
def test_with_shim_restricted_caller_creates_itself(taints, tmp_path):
    # fs can only be isolated by forwarding, which these restrictions forbid: the caller creates
    # the thread itself, inheriting everything (reported as restricted).
    r, base, caller, child = _run(taints, tmp_path, shim=True)
    _assert_taint_real(r, base, caller, taints)
    assert child["fs_shared"] == caller["fs_shared"] == 0, r.describe()
    assert _sec_diff(child, caller) == {}, r.describe()
    assert child["mkdir"] == caller["mkdir"], r.describe()


@pytest.mark.parametrize("taints", [p for p in NOT_FORWARDABLE if p.id != "creds-under-nproc-limit"])
def test_with_shim_restricted_caller_gets_its_namespace_repaired(taints, tmp_path):
    # A filter or Landlock domain cannot be put on a forwarded thread, but a caller that kept
    # CAP_SYS_ADMIN creates a thread that re-enters the baseline's network namespace itself, and
    # keeps every restriction of its creator.
    r, base, caller, child = _run(taints, tmp_path, shim=True, isolated="net")
    _assert_taint_real(r, base, caller, taints, "net")
    assert child["ns"]["net"] == base["ns"]["net"], r.describe()
    assert _sec_diff(child, caller) == {}, r.describe()
    assert child["mkdir"] == caller["mkdir"], r.describe()


# ---------------------------------------------------------------------------------------------
# Capabilities raised above the baseline (inheritable + ambient CAP_NET_ADMIN).

def _caps_subset(child, caller):
    """Sets in which the child has a capability the caller lacks."""
    bad = {}
    for k in CAP_SETS:
        c, p = int(child["sec"][k], 16), int(caller["sec"][k], 16)
        if c & ~p:
            bad[k] = (child["sec"][k], caller["sec"][k])
    return bad


def test_raised_caps_without_shim_child_inherits(tmp_path):
    r, base, caller, child = _run(["raise"], tmp_path, shim=False)
    assert int(caller["sec"]["cap_amb"], 16) & ~int(base["sec"]["cap_amb"], 16), r.describe()
    assert child["ns"]["net"] == caller["ns"]["net"], r.describe()
    assert _sec_diff(child, caller) == {}, r.describe()


def test_raised_caps_with_shim_never_above_caller(tmp_path):
    r, base, caller, child = _run(["raise"], tmp_path, shim=True)
    assert int(caller["sec"]["cap_amb"], 16) & ~int(base["sec"]["cap_amb"], 16), r.describe()
    assert _caps_subset(child, caller) == {}, r.describe()


def test_raised_caps_with_shim_forwarded_not_carried_over(tmp_path):
    r, base, caller, child = _run(["raise"], tmp_path, shim=True)
    assert child["ns"]["net"] == base["ns"]["net"], f"not forwarded\n{r.describe()}"
    for k in CAP_SETS:
        expected = int(caller["sec"][k], 16) & int(base["sec"][k], 16)
        assert int(child["sec"][k], 16) == expected, f"{k}\n{r.describe()}"


# ---------------------------------------------------------------------------------------------
# No option can switch it off.

@pytest.mark.parametrize("key", ["caps", "nnp", "seccomp", "landlock", "creds"])
def test_option_cannot_isolate_security_dimension(key, tmp_path):
    opt = f"{key}=isolate"
    plain = run_app("escalate", _args(["caps", "capbset"], tmp_path), shim=False, options=opt)
    r = run_app("escalate", _args(["caps", "capbset"], tmp_path), shim=True, options=opt)
    # One clear line on stderr naming the variable and the bad token.
    lines = [ln for ln in r.stderr.splitlines() if "PRISTINE_OPTIONS" in ln]
    assert len(lines) == 1, r.describe()
    assert opt in lines[0] or key in lines[0], r.describe()
    assert "PRISTINE_OPTIONS" not in plain.stderr
    for run in (plain, r):
        caller, child = run.json["caller"], run.json["child"]
        assert child is not None, run.describe()
        assert _sec_diff(child, caller) == {}, run.describe()
        assert _caps_subset(child, caller) == {}, run.describe()


# ---------------------------------------------------------------------------------------------
# The report says why a tainted site was not forwarded.

def test_report_names_restricted_site(tmp_path):
    report = tmp_path / "report.json"
    r = run_app("escalate", _args(["seccomp"], tmp_path), shim=True,
                options=f"report={report}")
    assert r.json["child"]["fs_shared"] == r.json["caller"]["fs_shared"] == 0, r.describe()
    assert report.exists(), f"no report written\n{r.describe()}"
    data = json.loads(report.read_text())
    assert data["forwarded"] == 0, data
    assert data["created"] >= 1, data
    sites = data["sites"]
    assert sites, data
    text = json.dumps(sites)
    assert "restricted" in text and "seccomp" in text, data
    # Other dimensions of such a caller are reported, not silently dropped.
    assert '"fs"' in text, data
