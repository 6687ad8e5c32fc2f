# SPDX-License-Identifier: Apache-2.0
"""A program in its own pid namespace without its own /proc (`unshare --pid --fork`): the library
reads /proc through a descriptor whose pid namespace is not the one gettid() answers in, so it
never names a thread of its own by tid there. A forwarded create (a private fs_struct) must be
forwarded, its privileges planned from the threads' own status, not filed as restricted (before
the fix the template's privileges were read by tid, which named another thread or none)."""

import json
import shutil
import subprocess

import pytest

from conftest import PROBE, clean_env


def test_forwarded_create_in_a_pid_namespace_without_its_proc():
    if shutil.which("unshare") is None:
        pytest.skip("util-linux unshare is not installed")
    cmd = ["unshare", "--pid", "--fork", "--kill-child", str(PROBE), "--taint", "fs",
           "--exit-normally"]
    p = subprocess.run(cmd, env=clean_env(True, options="report=/dev/stderr"),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["child"]["fs_shared_with_main"] == 1, p.stdout
    reports = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
    assert reports and reports[-1]["decisions"]["forwarded"] == 1, p.stderr
    assert reports[-1]["decisions"]["restricted"] == 0, p.stderr
