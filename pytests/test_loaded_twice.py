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

import pytest

from programs import PROBE, SHIM, run_app, run_ok

pytestmark = pytest.mark.root

ASIDE = "stands aside"


def test_second_copy_stands_aside(tmp_path):
    copy = tmp_path / "copy" / "libpristine.so"
    copy.parent.mkdir()
    shutil.copy(SHIM, copy)
    p = run_ok([PROBE, "--taint", "fs", "--child-creates", "3", "--exit-normally"],
               preload=[SHIM, copy], options=f"report={tmp_path}/r.%p.json", timeout=60)
    r = json.loads(p.stdout)
    assert r["child"]["fs_shared_with_main"] == 1, p.stdout
    assert p.stderr.count(ASIDE) == 1 and str(copy) in p.stderr, p.stderr
    reports = list(tmp_path.glob("r.*.json"))
    assert len(reports) == 1, reports
    doc = json.loads(reports[0].read_text())
    assert doc["forwarded"] == 3, doc


def test_one_copy_says_nothing(tmp_path):
    p = run_ok([PROBE, "--taint", "fs", "--exit-normally"], shim=True, timeout=60)
    assert p.returncode == 0 and ASIDE not in p.stderr, p.stderr


def test_dlclose_leaves_the_library_resident():
    for _ in range(5):
        r = run_app("dlclose_lib", [SHIM], timeout=60)
        assert r.json == {"ran": 4}, r.describe()
