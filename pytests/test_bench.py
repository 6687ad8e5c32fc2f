# SPDX-License-Identifier: Apache-2.0
"""scripts/bench keeps working: `scripts/bench --quick` produces every figure, floor and concurrency
series that bench/figures.py declares, well-formed, without touching a tracked file; `--markdown`
renders them; the tracked documentation matches the tracked results.

No timing is ever asserted here (speed lives in scripts/bench): the quick mode's numbers are
meaningless by design. The quick run also proves that each job measures what its figure says: the
runner refuses a creator that is not tainted as declared, or a thread of the library or of a peer
that is not in the baseline state (bench/runner.py, Job.run).
"""

import json
import math
import os
import platform
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD_DIR, ROOT

sys.path.insert(0, str(ROOT))
from bench import figures as F  # noqa: E402

BENCH_SCRIPT = ROOT / "scripts" / "bench"
BENCH_PROGRAM = BUILD_DIR / "bench" / "pristine-bench"
LIBRARY = BUILD_DIR / "shim" / "libpristine.so"
QUICK_JSON = BUILD_DIR / "bench" / "quick.json"
QUICK_PNG = BUILD_DIR / "bench" / "quick.png"


def _env():
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("PRISTINE_OPTIONS", None)
    env["PRISTINE_BUILD_DIR"] = str(BUILD_DIR)
    return env


def _bench(*args, timeout=300):
    return subprocess.run([sys.executable, str(BENCH_SCRIPT), *map(str, args)], cwd=str(ROOT),
                          env=_env(), capture_output=True, text=True, timeout=timeout)


def _git_status():
    r = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=all"],
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@pytest.fixture(scope="module")
def quick():
    """One `scripts/bench --quick` run with the default outputs; its JSON, stdout, and the
    checkout's git status before and after."""
    assert BENCH_PROGRAM.exists(), f"{BENCH_PROGRAM} not built"
    assert LIBRARY.exists(), f"{LIBRARY} not built"
    for f in (QUICK_JSON, QUICK_PNG):
        if f.exists():
            f.unlink()
    before = _git_status()
    proc = _bench("--quick", "--no-build")
    after = _git_status()
    assert proc.returncode == 0, f"scripts/bench --quick exited {proc.returncode}\n" \
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(QUICK_JSON.read_text()), proc.stdout, before, after


def test_figures_module_is_consistent():
    assert len(set(F.FIGURE_IDS)) == len(F.FIGURES)
    assert set(F.TARGETS) <= set(F.FIGURE_IDS), set(F.TARGETS) - set(F.FIGURE_IDS)
    assert set(F.SUMMARY) <= set(F.FIGURE_IDS)
    assert {f.group for f in F.FIGURES} <= set(F.GROUPS)
    for s in F.SCENARIOS:
        assert s.peers, f"scenario {s.id} has no peer to compare with"
        for p in s.peers:
            assert set(s.taint) <= F.PEERS[p].handles
        assert f"{s.id}_pinned_vs_peer" in F.TARGETS and f"{s.id}_across_vs_peer" in F.TARGETS
    # the repair peer handles namespaces only: never offered for affinity or fs
    assert F.SCENARIO["net"].peers == ("repair", "condvar")
    assert F.SCENARIO["affinity"].peers == ("condvar",)
    assert F.SCENARIO["all"].peers == ("condvar",)
    jobs = F.jobs(F.QUICK)
    for f in F.FIGURES:
        for ref in (f.value, *f.against):
            assert ref.job in jobs, (f.id, ref.job)


def test_quick_produces_every_figure(quick):
    data, stdout, _, _ = quick
    assert data["quick"] is True
    figures = {f["id"]: f for f in data["figures"]}
    assert list(figures) == list(F.FIGURE_IDS)
    for fid, f in figures.items():
        decl = F.FIGURE[fid]
        assert f["description"] == decl.description and f["group"] == decl.group, fid
        assert f["unit"] == decl.unit and f["compare"] == decl.compare, fid
        assert _number(f["value"]) and _number(f["against"]) and _number(f["ratio"]), f
        assert f["value"] > 0 or f["unit"] == "kB", f
        assert isinstance(f["against_label"], str) and f["against_label"], f
        assert _number(f["noise_pct"]), f
        target = F.TARGETS.get(fid)
        if target is None:
            assert f["target"] is None and f["target_op"] is None and f["pass"] is None, f
        else:
            assert (f["target_op"], f["target"]) == (target.op, target.value), f
            assert f["pass"] == target.holds(f["ratio"]), f
        escaped = f["description"].replace("|", "\\|")
        assert f"| {escaped} |" in stdout, f"the printed table lacks {f['description']!r}"


def test_quick_produces_floors_and_series(quick):
    data, _, _, _ = quick
    for key in ("nproc", "kernel", "glibc", "commit", "date"):
        assert data["machine"].get(key), f"machine.{key} missing"
    assert list(data["floors_us"]) == list(F.FLOOR_IDS)
    for fid, by_where in data["floors_us"].items():
        for where in F.WHERE:
            v = by_where[where]
            if v is None and fid in F.ARCH_SPECIFIC_FLOORS and platform.machine() != "x86_64":
                continue
            assert _number(v) and v > 0, (fid, where, v)
    conc = data["concurrency"]
    assert conc["threads"] == list(F.THREADS)
    series = F.concurrency_series()
    assert list(conc["scenarios"]) == list(series)
    for scen, names in series.items():
        assert list(conc["scenarios"][scen]) == list(names)
        for values in conc["scenarios"][scen].values():
            assert len(values) == len(F.THREADS) and all(_number(v) and v > 0 for v in values)
    if shutil.which("gnuplot"):
        assert data["plot"], "gnuplot is installed but no plot was drawn"
        assert QUICK_PNG.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_leaves_tracked_files_alone(quick):
    _, _, before, after = quick
    if before is None:
        pytest.skip("not a git checkout: cannot tell which files are tracked")
    assert after == before, f"scripts/bench --quick changed the checkout:\n{before}\n->\n{after}"


def test_markdown_renders_every_figure(quick, tmp_path):
    data, _, _, _ = quick
    doc = tmp_path / "performance.md"
    shutil.copyfile(ROOT / "docs" / "performance.md", doc)
    proc = _bench("--markdown", "--json", QUICK_JSON, "--doc", doc)
    assert proc.returncode == 0, proc.stderr
    text = doc.read_text()
    for f in data["figures"]:
        escaped = f["description"].replace("|", "\\|")  # a | would end the table cell
        assert f"| {escaped} |" in text, f"docs lack {f['description']!r}"
    for fl in F.FLOORS:
        assert f"| {fl.description} |" in text
    assert "--quick: numbers meaningless" in text
    # Rendering is a function of the results: a second run changes nothing, and --check agrees.
    again = _bench("--markdown", "--json", QUICK_JSON, "--doc", doc, "--check")
    assert again.returncode == 0, again.stderr
    assert doc.read_text() == text


def test_markdown_check_finds_a_stale_table(quick, tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text("before\n<!-- bench:summary -->\nhand-edited\n<!-- /bench:summary -->\nafter\n")
    proc = _bench("--markdown", "--json", QUICK_JSON, "--doc", doc, "--check")
    assert proc.returncode == 1 and "out of date" in proc.stderr, proc
    assert "hand-edited" in doc.read_text()
    doc.write_text("<!-- bench:summary -->\nno end marker\n")
    proc = _bench("--markdown", "--json", QUICK_JSON, "--doc", doc)
    assert proc.returncode == 1 and "unbalanced" in proc.stderr, proc


def test_tracked_docs_match_tracked_results():
    """docs/performance.md (and the README's summary, if it has one) are generated from
    bench/results/latest.json: editing one without the other fails here."""
    saved = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    assert [f["id"] for f in saved["figures"]] == list(F.FIGURE_IDS), \
        "bench/results/latest.json predates bench/figures.py: run scripts/bench --save"
    assert saved["quick"] is False
    proc = _bench("--markdown", "--check")
    assert proc.returncode == 0, proc.stderr


def test_concurrency_table_with_a_round_that_measured_nothing():
    """A quick run on a busy machine may count no create in a round: the table says so instead of
    dividing by zero (it used to crash scripts/bench --quick)."""
    from bench import markdown
    result = {"concurrency": {"threads": [1, 2], "scenarios": {
        "net": {"plain": [0, 100.0], "library": [50.0, 90.0]}}}}
    text = markdown.block_concurrency(result)
    assert "0.0k" in text and "(0.90)" in text
