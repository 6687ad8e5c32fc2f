# SPDX-License-Identifier: Apache-2.0
"""scripts/bench keeps working: `scripts/bench --quick` runs, and writes well-formed JSON that carries
every figure, the floors, the concurrency series and the plot.

No timing is ever asserted here (PRODUCT.md / issue 5: no timed assertions in scripts/test); the
quick mode's numbers are meaningless by design.
"""

import json
import math
import os
import shutil
import subprocess
import sys

from conftest import BUILD_DIR, ROOT

BENCH_SCRIPT = ROOT / "scripts" / "bench"
BENCH_PROGRAM = BUILD_DIR / "testapps" / "bench" / "pristine-bench"
SHIM = BUILD_DIR / "shim" / "libpristine.so"


def _figure_ids():
    """FIGURE_IDS from scripts/bench itself (it is a Python script without the .py suffix)."""
    namespace = {"__name__": "bench_under_test", "__file__": str(BENCH_SCRIPT)}
    source = BENCH_SCRIPT.read_text()
    exec(compile(source, str(BENCH_SCRIPT), "exec"), namespace)  # noqa: S102 - our own script
    return namespace["FIGURE_IDS"], namespace["THREADS"]


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def test_bench_quick_writes_every_figure(tmp_path):
    assert BENCH_PROGRAM.exists(), f"{BENCH_PROGRAM} not built"
    assert SHIM.exists(), f"{SHIM} not built"
    out_json = tmp_path / "bench.json"
    out_png = tmp_path / "bench.png"
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("PRISTINE_OPTIONS", None)
    env["PRISTINE_BUILD_DIR"] = str(BUILD_DIR)
    proc = subprocess.run([sys.executable, str(BENCH_SCRIPT), "--quick", "--no-build",
                           "--json", str(out_json), "--plot", str(out_png)],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"scripts/bench --quick exited {proc.returncode}\n" \
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "machine: nproc=" in proc.stdout, proc.stdout

    data = json.loads(out_json.read_text())
    ids, threads = _figure_ids()
    figures = {f["id"]: f for f in data["figures"]}
    assert sorted(figures) == sorted(ids), f"figures differ: {sorted(figures)} vs {sorted(ids)}"
    for fid, f in figures.items():
        for key in ("name", "value", "plain", "unit", "ratio", "target", "target_op", "pass"):
            assert key in f, f"{fid} has no {key}"
        assert _number(f["value"]) and _number(f["plain"]) and _number(f["ratio"]), f
        if f["target"] is not None:
            assert _number(f["target"]) and f["target_op"] in ("<=", ">=", "<"), f
            assert isinstance(f["pass"], bool), f
        assert f["name"] in proc.stdout, f"table lacks {f['name']!r}"

    for key in ("nproc", "kernel", "glibc"):
        assert data["machine"].get(key), f"machine.{key} missing"
    for where in ("across", "pinned"):
        for key in ("futex_round_trip_us", "clone_exit_wait_us", "clone_call_us", "syscall_us"):
            assert _number(data["floors_us"][where][key]), (where, key)
    conc = data["concurrency"]
    assert conc["threads"] == threads
    assert set(conc["series"]) == {"pristine", "plain", "condvar helper", "repair in child"}
    for series in conc["series"].values():
        assert len(series["us_per_create"]) == len(threads)
        assert all(_number(v) for v in series["us_per_create"] + series["creates_per_s"])

    if shutil.which("gnuplot"):
        assert data["plot"], "gnuplot is installed but no plot was drawn"
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
