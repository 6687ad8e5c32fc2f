# SPDX-License-Identifier: Apache-2.0
"""Helpers for the issue-3 test modules (test_escalate, test_ns_tools, test_fork, test_dlopen,
test_glibc_threads, test_failures): running the small test programs of testapps/ with and without
the shim, and a throw-away pids cgroup.

Programs print one JSON object on stdout and exit 0; exit 3 means "this machine cannot run the
set-up" (the test is skipped without the shim, and fails with it). Timeouts are hang guards only.
"""

import json
import os
import pathlib
import subprocess
import uuid

import pytest

from conftest import BUILD_DIR, ROOT, clean_env

APPS = BUILD_DIR / "testapps"
EXIT_UNSUPPORTED = 3
TIMEOUT_S = 60


class Run:
    """One finished run: returncode, stdout, stderr, json (parsed single line, or None), where."""

    def __init__(self, proc, where):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.where = where
        self.json = None

    def describe(self):
        return f"[{self.where}] exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def app_path(name):
    path = APPS / name
    if not path.exists():
        pytest.fail(f"test program not built: {path} is missing "
                    f"(run `cmake -S . -B build && cmake --build build`)")
    return path


def run_cmd(cmd, shim=False, options=None, env=None, timeout=TIMEOUT_S, preexec_fn=None,
            cwd=None):
    """Runs any command (list) with/without the shim; returns a Run (never checks the status).
    A hang (timeout) fails the test with a clear message."""
    run_env = clean_env(shim, options, env)
    where = " ".join(str(c) for c in cmd) + (" (LD_PRELOAD=shim)" if shim else "") + \
        (f" PRISTINE_OPTIONS={options}" if options is not None else "")
    try:
        proc = subprocess.run([str(c) for c in cmd], cwd=str(cwd or ROOT), env=run_env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, preexec_fn=preexec_fn)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"hung (no exit within the {timeout} s safety net): {where}\n"
                    f"stdout so far:\n{e.stdout}\nstderr so far:\n{e.stderr}")
    return Run(proc, where)


def run_app(name, args=(), shim=False, options=None, env=None, timeout=TIMEOUT_S,
            preexec_fn=None, expect_status=0):
    """Runs build/testapps/<name> ARGS; checks the exit status and parses the one JSON line.
    Exit 3 skips the test without the shim (machine limitation) and fails it with the shim."""
    r = run_cmd([app_path(name), *args], shim=shim, options=options, env=env, timeout=timeout,
                preexec_fn=preexec_fn)
    if r.returncode == EXIT_UNSUPPORTED and expect_status != EXIT_UNSUPPORTED:
        if shim:
            pytest.fail(f"the program could not apply its set-up under the shim\n{r.describe()}")
        pytest.skip(f"this machine cannot run it: {r.stderr.strip()}")
    if r.returncode != expect_status:
        pytest.fail(f"expected exit status {expect_status}\n{r.describe()}")
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    if expect_status == 0:
        if len(lines) != 1:
            pytest.fail(f"expected one JSON line\n{r.describe()}")
        try:
            r.json = json.loads(lines[0])
        except json.JSONDecodeError as e:
            pytest.fail(f"output is not JSON ({e})\n{r.describe()}")
    return r


# ---------------------------------------------------------------------------------------------
# pids cgroup

def _pids_cgroup_root():
    """Directory of this process's pids cgroup (v1 pids hierarchy or a v2 cgroup with the pids
    controller), or None."""
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
    """A fresh, empty pids cgroup (a pathlib.Path) for one test; removed afterwards (any process
    left in it is moved back to the parent first). Skips where none can be made."""
    parent = _pids_cgroup_root()
    if parent is None:
        pytest.skip("no pids cgroup controller available")
    d = parent / f"pristine-test-{uuid.uuid4().hex[:12]}"
    try:
        d.mkdir()
    except OSError as e:
        pytest.skip(f"cannot create a pids cgroup under {parent}: {e}")
    if not (d / "pids.max").exists():
        d.rmdir()
        pytest.skip(f"{d} has no pids.max")
    try:
        yield d
    finally:
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


def join_cgroup_preexec(cgroup_dir):
    """preexec_fn that moves the forked child into cgroup_dir before it execs."""
    procs = str(pathlib.Path(cgroup_dir) / "cgroup.procs")

    def preexec():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    return preexec
