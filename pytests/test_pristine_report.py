# SPDX-License-Identifier: Apache-2.0
"""scripts/pristine-report (README, "Tools"): summarises and merges reports, symbolizes their
frames (pristine-symbolize, libdw), reads files, directories and stdin, names and skips bad
reports (exit 2), gates CI with --fail-on-tainted, and never prints a control byte from a report.
Where the reports come from is test_report.py's.
"""

import json
import re

import pytest

from programs import PROBE, pristine_report, symbolized, under

pytestmark = pytest.mark.root

SITE_FUNCTION = "create_child_from_tainted_worker"  # testapps/probe.cc


@pytest.fixture
def reports(tmp_path):
    # fs: isolated only by forwarding, so the counts are forwarded creates.
    for args in (["--taint", "fs", "--child-creates", "2"],
                 ["--taint", "fs", "--child-creates", "1"],
                 ["--taint", "fs", "--taint", "seccomp"]):
        under([PROBE, *args, "--exit-normally"], f"report={tmp_path}/x.%p.json")
    return sorted(tmp_path.glob("x.*.json"))


def _two_reports(tmp_path):
    under([PROBE, "--taint", "net", "--exit-normally"], f"report={tmp_path}/r.%p.json")
    under([PROBE, "--exit-normally"], f"report={tmp_path}/r.%p.json")
    return sorted(tmp_path.glob("r.*.json"))


def test_report_summary(reports):
    p = pristine_report(*reports)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "3 report(s)" in out
    assert "threads created   7" in out  # 3 workers + 4 children
    assert "forwarded         3" in out
    assert "fs" in out and "seccomp" in out
    assert SITE_FUNCTION in out
    assert "seccomp filter cannot be re-applied" in out
    assert "seen in 3 processes" in out


def test_report_json(reports):
    doc = symbolized(*reports)
    assert doc["created"] == 7 and doc["forwarded"] == 3
    [site] = doc["sites"]
    assert site["decisions"] == {"forwarded": 3, "restricted": 1}
    # Symbolized by pristine-report (libdw): demangled names and source lines.
    names = [s["function"] or "" for f in site["frames"] for s in f["symbols"]]
    assert any(f"{SITE_FUNCTION}(" in n for n in names), site
    assert any((s["file"] or "").endswith("probe.cc") and s["line"]
               for f in site["frames"] for s in f["symbols"]), site


def test_report_tool_reads_stdin_and_directories(tmp_path):
    reports = _two_reports(tmp_path)
    by_dir = symbolized(tmp_path)
    assert by_dir["reports"] == 2 and by_dir["tainted"] == 1, by_dir
    one = pristine_report("--json", "-", input=reports[0].read_text())
    assert one.returncode == 0 and json.loads(one.stdout)["reports"] == 1, one.stderr


def test_report_tool_fails_on_tainted_for_ci(tmp_path):
    reports = _two_reports(tmp_path)
    tainted = [p for p in reports if json.loads(p.read_text())["tainted"]]
    clean = [p for p in reports if not json.loads(p.read_text())["tainted"]]
    assert pristine_report("--fail-on-tainted", *tainted).returncode == 1
    assert pristine_report("--fail-on-tainted", *clean).returncode == 0
    assert pristine_report(*tainted).returncode == 0


def test_report_tool_version_and_help():
    v = pristine_report("--version")
    assert v.returncode == 0 and v.stdout.startswith("pristine-report "), v
    h = pristine_report("--help")
    for word in ("--fail-on-tainted", "--json", "--top", "--no-demangle", "--debug-dir",
                 "--version", "Exit status"):
        assert word in h.stdout, h.stdout


# --- Bad reports --------------------------------------------------------------------------------

def test_report_bad_files_are_named_and_skipped(reports, tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    bad_schema = tmp_path / "schema.json"
    bad_schema.write_text(json.dumps({"created": 1, "forwarded": "many", "sites": []}))
    missing = tmp_path / "missing.json"
    p = pristine_report(*reports, bad_json, bad_schema, missing)
    assert p.returncode == 2
    assert f"{bad_json}: not valid JSON" in p.stderr
    assert f"{bad_schema}: 'forwarded'" in p.stderr
    assert f"{missing}:" in p.stderr
    assert "3 report(s)" in p.stdout  # the good ones are still summarised


def test_report_nothing_usable(tmp_path):
    p = pristine_report(tmp_path / "missing.json")
    assert p.returncode == 2 and p.stdout == "" and "no usable report" in p.stderr


@pytest.mark.parametrize("field, value", [
    ("created", "5"), ("sites", {}), ("dimensions", []), ("argv", "x"),
    ("sites.0.frames.0.address", "0x10"), ("sites.0.reason", 3),
    ("sites.0.origins.0.frames", None), ("sites.0.thread.name", 7),
])
def test_report_tool_skips_reports_with_wrong_field_types(tmp_path, field, value):
    good = _two_reports(tmp_path)
    doc = json.loads(next(p for p in good if json.loads(p.read_text())["tainted"]).read_text())
    target = doc
    *path, last = field.split(".")
    for part in path:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    out = pristine_report(bad, *good)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr and f"{bad}:" in out.stderr and "skipped" in out.stderr
    assert "pristine report: 2 report(s)" in out.stdout, out.stdout


def test_report_tool_never_prints_control_bytes(tmp_path):
    [report] = [p for p in _two_reports(tmp_path) if json.loads(p.read_text())["tainted"]]
    doc = json.loads(report.read_text())
    evil = "\x1b]2;owned\x07\x1b[31m\x9b"
    doc["sites"][0]["thread"]["name"] = evil
    doc["sites"][0]["reason"] = evil
    doc["sites"][0]["dimensions"].append(evil)
    doc["argv"] = [evil]
    doc["sites"][0]["frames"][0]["module"] = "/x/" + evil
    bad = tmp_path / "evil.json"
    bad.write_text(json.dumps(doc))
    out = pristine_report(bad)
    assert out.returncode == 0, out.stderr
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]", out.stdout), repr(out.stdout)
    assert "\\x1b" in out.stdout
