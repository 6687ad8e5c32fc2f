# SPDX-License-Identifier: Apache-2.0
"""The library loaded twice, or loaded late and unloaded.

- Two copies in one process (a system-wide preload and pristine-run's LD_PRELOAD naming different
  files): the second notices the first, stands aside (saying so once) and writes no report, so the
  process's one report has the right figures. Before the fix both initialised and wrote reports to
  the same path, and the one that won said 0 forwarded where there were some.
- dlopen()ed at run time, then dlclose()d while its threads run: it stays resident (-z nodelete).
  Before the fix the template and spares ran unmapped code (SIGSEGV).
"""

import json
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, PROBE, SHIM, clean_env

DLCLOSE = BUILD_DIR / "testapps" / "dlclose_lib"
ASIDE = "stands aside"


def test_second_copy_stands_aside(tmp_path):
    copy = tmp_path / "copy" / "libpristine.so"
    copy.parent.mkdir()
    shutil.copy(SHIM, copy)
    env = clean_env(True, options=f"report={tmp_path}/r.%p.json")
    env["LD_PRELOAD"] = f"{SHIM}:{copy}"
    p = subprocess.run([str(PROBE), "--taint", "fs", "--child-creates", "3", "--exit-normally"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["child"]["fs_shared_with_main"] == 1, p.stdout
    assert p.stderr.count(ASIDE) == 1 and str(copy) in p.stderr, p.stderr
    reports = list(tmp_path.glob("r.*.json"))
    assert len(reports) == 1, reports
    doc = json.loads(reports[0].read_text())
    assert doc["forwarded"] == 3, doc


def test_one_copy_says_nothing(tmp_path):
    p = subprocess.run([str(PROBE), "--taint", "fs", "--exit-normally"], env=clean_env(True),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and ASIDE not in p.stderr, p.stderr


def test_dlclose_leaves_the_library_resident():
    if not DLCLOSE.exists():
        pytest.fail(f"{DLCLOSE} not built")
    for _ in range(5):
        p = subprocess.run([str(DLCLOSE), str(SHIM)], env=clean_env(), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, (p.returncode, p.stderr)
        assert json.loads(p.stdout) == {"ran": 4}
