# SPDX-License-Identifier: Apache-2.0
"""Never escalate (README, "Never escalate"): a new thread is never more privileged than its
creator, every thread that runs program code because of the library has at most the privileges of
the thread it runs for, whatever verify= says, and no option turns that off.

With the probe (its caps/nnp/seccomp/creds taints: eff/prm/inh, no_new_privs, seccomp mode and
uid/gid, alone and with a network namespace), build/testapps/escalate, build/testapps/
priv_forwarded, util-linux setpriv and libcap's capsh.

testapps/escalate:
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

testapps/priv_forwarded:
  Every thread that runs program code because of the library has at most the privileges of the
  thread it runs for, whatever verify= says:
    (a) glibc's own threads: a worker with a taint (a new network namespace, or a private fs) that
        became uid 65534 (its own thread, raw setresgid/setresuid) or dropped every capability and
        set no_new_privs makes glibc start a thread (timer_create and mq_notify with SIGEV_THREAD,
        getaddrinfo_a, aio_write with a SIGEV_THREAD notification): the notification function
        runs with at most the worker's privileges;
    (b) setfsuid/setfsgid: a worker with a private fs switches its filesystem ids to 65534 and
        creates a thread (forwarded): the thread's fsuid/fsgid are the worker's, and it cannot
        read a root-only file either;
    (c) verify=fast, a capability drop or a seccomp filter made with system call instructions
        (no interposer sees them) by a worker with a private fs, then a create: the new thread
        gets no privilege back and keeps the filter;
    (d) process-wide privilege changes: util-linux setpriv and libcap's capsh behave exactly as
        without the library, and a process whose library threads already run (a worker with a
        private fs made forwarded creates) can do a keep-caps dance (prctl(PR_SET_KEEPCAPS),
        setresuid, capset, setresgid) without glibc aborting it;
  Each case also runs without the library, to show the program and the taint are real.

  Without the fix: (a) every notification ran as root with every capability and without
  no_new_privs (uid "0 0 0 0", CapEff 000001fffeffffff), in all 16 cases; (b) the thread had fsuid
  0 and read the root-only file; (c) the thread had every capability back / no filter and no
  no_new_privs; (d) setpriv, the capsh line that raises a capability and then changes its gid, and
  the keep-caps dance were aborted by glibc (exit 134, "setxid" failed on the template only).
"""

import json
import os
import tempfile

import pytest

from programs import APIS, describe, run, run_app, without

pytestmark = pytest.mark.root


# ---------------------------------------------------------------------------------------------
# The probe's security taints

SECURITY_KEYS = ["caps", "nnp", "seccomp", "uid", "gid"]


def _check_ok(r):
    assert r["create_error"] is None, f"child creation failed: {r['create_error']} {describe(r)}"
    assert r["child"] is not None, describe(r)


SECURITY_TAINTS = ["caps", "nnp", "seccomp", "creds"]


@pytest.mark.parametrize("shim", [False, True], ids=["no-shim", "shim"])
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("with_net", [False, True], ids=["alone", "plus-net"])
@pytest.mark.parametrize("sec", SECURITY_TAINTS)
def test_security_taint_never_escalates(run_probe, sec, with_net, api, shim):
    # plus-net: the caller also has an isolated taint, so the shim would like to forward it; the
    # child must still be no more privileged than the caller.
    args = ["--api", api] + (["--taint", "net"] if with_net else []) + ["--taint", sec]
    r = run_probe(args, shim=shim)
    _check_ok(r)
    base, caller, child = r["baseline"], r["caller"], r["child"]
    assert any(caller[k] != base[k] for k in SECURITY_KEYS), f"{sec} changed nothing {describe(r)}"
    for key in SECURITY_KEYS:
        assert child[key] == caller[key], f"{key}: child {child[key]!r} caller {caller[key]!r} " \
                                          f"{describe(r)}"
    if sec == "seccomp" and with_net and shim:
        # A seccomp filter cannot be re-applied on a forwarded thread, but a network namespace
        # can be re-entered by a thread the caller creates itself, which keeps the filter: the
        # child is in the baseline's network namespace and under its creator's filter.
        assert child["ns"]["net"] == base["ns"]["net"], describe(r)
    if not with_net:
        # Nothing isolated is tainted: nothing to forward, the child is the caller's copy.
        assert without(child) == without(caller), describe(r)


# ---------------------------------------------------------------------------------------------
# testapps/escalate

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
    for one in (plain, r):
        caller, child = one.json["caller"], one.json["child"]
        assert child is not None, one.describe()
        assert _sec_diff(child, caller) == {}, one.describe()
        assert _caps_subset(child, caller) == {}, one.describe()


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


# ---------------------------------------------------------------------------------------------
# testapps/priv_forwarded, setpriv and capsh

MECHS = ["timer", "mq", "gai", "aio"]
FULL = 0x000001fffeffffff


def _caps(p, key):
    return int(p[key], 16)


def _at_most(child, caller, what):
    """child's privileges are at most caller's."""
    for key in ("cap_eff", "cap_prm", "cap_inh"):
        extra = _caps(child, key) & ~_caps(caller, key)
        assert extra == 0, f"{what}: {key} has {extra:#x} that the caller lacks: {child} vs {caller}"
    assert child["uid"] == caller["uid"], f"{what}: uid {child['uid']} vs caller {caller['uid']}"
    assert child["gid"] == caller["gid"], f"{what}: gid {child['gid']} vs caller {caller['gid']}"
    assert child["nnp"] >= caller["nnp"], f"{what}: no_new_privs lost"
    assert child["seccomp"] >= caller["seccomp"], f"{what}: seccomp filter lost"


@pytest.fixture
def scratch_file():
    fd, path = tempfile.mkstemp(prefix="pristine-priv-")
    os.write(fd, b"pristine\n")
    os.close(fd)
    yield path
    os.unlink(path)


@pytest.fixture
def root_only_file():
    """A root-owned 0600 file in /tmp (world-traversable), so that only the mode protects it."""
    fd, path = tempfile.mkstemp(prefix="pristine-secret-", dir="/tmp")
    os.write(fd, b"secret\n")
    os.close(fd)
    os.chmod(path, 0o600)
    yield path
    os.unlink(path)


def _glibc(mech, drop, taint, shim, path):
    args = ["--case", "glibc", "--mech", mech, "--drop", drop, "--taint", taint, "--file", path]
    r = run_app("priv_forwarded", args, shim=shim)
    j = r.json
    assert j["error"] is None and j["child"] is not None, r.describe()
    if drop == "uid":
        assert j["caller"]["uid"] == "65534 65534 65534 65534", r.describe()
    else:
        assert _caps(j["caller"], "cap_eff") == 0 and j["caller"]["nnp"] == 1, r.describe()
    return r


@pytest.mark.parametrize("mech", MECHS)
def test_glibc_threads_without_the_library_have_the_callers_privileges(mech, scratch_file):
    r = _glibc(mech, "uid", "net", False, scratch_file)
    assert r.json["child"] == r.json["caller"], r.describe()


@pytest.mark.parametrize("taint", ["net", "fs"])
@pytest.mark.parametrize("drop", ["uid", "nocaps"])
@pytest.mark.parametrize("mech", MECHS)
def test_glibc_threads_never_have_more_than_their_starter(shim, mech, drop, taint, scratch_file):
    r = _glibc(mech, drop, taint, True, scratch_file)
    _at_most(r.json["child"], r.json["caller"], f"{mech} notification\n{r.describe()}")


@pytest.mark.parametrize("shim_on", [False, True], ids=["no-shim", "shim"])
def test_fsuid_is_the_callers_on_a_forwarded_thread(shim_on, root_only_file):
    r = run_app("priv_forwarded", ["--case", "fsuid", "--file", root_only_file], shim=shim_on)
    j = r.json
    assert j["error"] is None and j["child"] is not None, r.describe()
    assert j["caller"]["uid"].endswith(" 65534") and j["caller"]["gid"].endswith(" 65534"), \
        r.describe()
    assert j["caller_open"] == "EACCES", r.describe()
    _at_most(j["child"], j["caller"], f"forwarded thread\n{r.describe()}")
    assert j["child_open"] == "EACCES", f"the new thread read root's file\n{r.describe()}"


@pytest.mark.parametrize("drop", ["caps", "seccomp"])
@pytest.mark.parametrize("shim_on", [False, True], ids=["no-shim", "shim"])
def test_inline_privilege_drop_is_seen_with_verify_fast(shim_on, drop):
    r = run_app("priv_forwarded", ["--case", "inline", "--drop", drop], shim=shim_on,
                options="verify=fast")
    j = r.json
    assert j["error"] is None and j["child"] is not None, r.describe()
    _at_most(j["child"], j["caller"], f"new thread\n{r.describe()}")
    if drop == "caps":
        assert _caps(j["caller"], "cap_eff") == 0 and _caps(j["child"], "cap_eff") == 0, \
            r.describe()
    else:
        assert j["child"]["seccomp"] == 2 and j["child_denied"], \
            f"the new thread escaped the seccomp filter\n{r.describe()}"


# Commands that change the process's ids (glibc's set*id broadcast reaches every thread).
TOOLS = [
    pytest.param(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "id"],
                 id="setpriv"),
    pytest.param(["capsh", "--keep=1", "--uid=65534", "--print"], id="capsh-keep-uid"),
    pytest.param(["capsh", "--keep=1", "--uid=65534", "--caps=cap_setgid+ep", "--gid=65534",
                  "--", "-c", "id"], id="capsh-keep-uid-caps-gid"),
]


@pytest.mark.parametrize("cmd", TOOLS)
def test_privilege_tools_behave_as_without_the_library(shim, cmd):
    plain = run(cmd)
    assert plain.returncode == 0, plain.describe()
    under = run(cmd, shim=True)
    assert (under.returncode, under.stdout) == (plain.returncode, plain.stdout), \
        f"without the library:\n{plain.describe()}\nwith it:\n{under.describe()}"


@pytest.mark.parametrize("shim_on", [False, True], ids=["no-shim", "shim"])
def test_keep_caps_dance_with_the_librarys_threads_running(shim_on):
    r = run_app("priv_forwarded", ["--case", "keepcaps-dance"], shim=shim_on)
    j = r.json
    if shim_on:
        assert j["tasks_before"] > 1, f"the library's threads were not running\n{r.describe()}"
    assert set(j["steps"].values()) == {"0"}, r.describe()
    assert j["caller"]["uid"] == "65534 65534 65534 65534", r.describe()
    assert j["caller"]["gid"] == "65534 65534 65534 65534", r.describe()
    assert j["error"] is None and j["child"] is not None, r.describe()
    _at_most(j["child"], j["caller"], f"new thread\n{r.describe()}")
