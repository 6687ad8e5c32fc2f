# SPDX-License-Identifier: Apache-2.0
"""Fixtures shared by the behavioural tests. Running programs (the test programs, the tools,
anything else) is programs.py's job; markers are declared in pytest.ini beside this file."""

import os
import pathlib
import shutil
import subprocess
import time
import uuid

import pytest

from programs import PROBE, SHIM, app_path, clean_env, ns_inode, run_probe, shim_missing_reason


@pytest.fixture(scope="session")
def probe():
    """Path of the probe binary (fails the test if it has not been built)."""
    return app_path(PROBE.name)


@pytest.fixture(scope="session")
def shim():
    """Path of libpristine.so; skips the test if it has not been built."""
    if not SHIM.exists():
        pytest.skip(shim_missing_reason())
    return SHIM


@pytest.fixture(name="run_probe")
def run_probe_fixture(probe):
    """run_probe(args, shim=False, options=None, env=None) -> parsed JSON of one probe run."""
    del probe  # only ensures the binary exists
    return run_probe


# ---------------------------------------------------------------------------------------------
# pids cgroups: the only place that finds the pids controller; the programs that need a task
# limit (failures, faults, the probe's --exhaust-threads) are given a cgroup made here.

def pids_cgroup_parent():
    """Directory of this process's pids cgroup where a child cgroup with pids.max can be made:
    the v1 pids hierarchy, or a v2 cgroup whose cgroup.subtree_control enables pids; else None."""
    v1_path = v2_path = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if "pids" in ctrls.split(","):
                v1_path = path
            if hid == "0" and ctrls == "":
                v2_path = path
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f]
    for m in mounts:
        dash = m.index("-")
        root, mnt, fstype, opts = m[3], m[4], m[dash + 1], m[dash + 3]
        if root != "/":
            continue
        if fstype == "cgroup" and v1_path is not None and "pids" in opts.split(","):
            return pathlib.Path(mnt + ("" if v1_path == "/" else v1_path))
    for m in mounts:
        dash = m.index("-")
        root, mnt, fstype = m[3], m[4], m[dash + 1]
        if fstype == "cgroup2" and root == "/" and v2_path is not None:
            d = pathlib.Path(mnt + ("" if v2_path == "/" else v2_path))
            try:
                if "pids" in (d / "cgroup.subtree_control").read_text().split():
                    return d
            except OSError:
                pass
    return None


@pytest.fixture
def pids_cgroup():
    """pids_cgroup() -> a fresh, empty pids cgroup (a pathlib.Path) for one run; each call makes
    another. All are removed afterwards (a process left in one is moved back to the parent
    first). Skips the test where none can be made, with or without the library alike."""
    parent = pids_cgroup_parent()
    if parent is None:
        pytest.skip("no pids cgroup controller available")
    made = []

    def make():
        d = parent / f"pristine-test-{uuid.uuid4().hex[:12]}"
        try:
            d.mkdir()
        except OSError as e:
            pytest.skip(f"cannot create a pids cgroup under {parent}: {e}")
        made.append(d)
        if not (d / "pids.max").exists():
            pytest.skip(f"{d} has no pids.max")
        return d

    yield make
    for d in made:
        try:
            pids = (d / "cgroup.procs").read_text().split()
        except OSError:
            pids = []
        for pid in pids:
            try:
                (parent / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        try:
            d.rmdir()
        except OSError:
            pass


def join_cgroup(cgroup_dir):
    """A preexec_fn that moves the forked child into cgroup_dir before it execs."""
    procs = str(pathlib.Path(cgroup_dir) / "cgroup.procs")

    def preexec():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    return preexec


# ---------------------------------------------------------------------------------------------
# A process in other namespaces, for nsenter

@pytest.fixture(scope="module")
def ns_target():
    """The pid of a `sleep` in new user (root mapped), network and mount namespaces, started
    without the library by util-linux unshare; killed afterwards."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare is not installed (scripts/install-deps test installs util-linux)")
    own_user, own_net = ns_inode("self", "user"), ns_inode("self", "net")
    proc = subprocess.Popen([unshare, "-U", "-r", "-n", "-m", "sleep", "600"], env=clean_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        # Wait (a hang guard only) until unshare has exec'd sleep in its namespaces (same pid).
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.skip(f"cannot create the namespaces (unshare -Urnm exited "
                            f"{proc.returncode}): {proc.stderr.read().decode(errors='replace')}")
            try:
                comm = open(f"/proc/{proc.pid}/comm").read().strip()
            except OSError:
                comm = ""
            if (comm == "sleep" and ns_inode(proc.pid, "user") not in (None, own_user)
                    and ns_inode(proc.pid, "net") not in (None, own_net)):
                break
            if time.monotonic() > deadline:
                pytest.fail("unshare -Urnm sleep did not start within 60 s")
            time.sleep(0.01)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
