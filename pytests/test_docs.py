# SPDX-License-Identifier: Apache-2.0
"""The man pages (man/*.[0-9], plain roff) and the README against the tools and the option table:
every page renders without a warning, names every flag or key its subject has, and the README's
option table has every key of the library's help=1 text."""

import re

import pytest

from programs import PRISTINE_REPORT, PYTHON, ROOT, library_help, load_pristine_run, need, run

MAN = ROOT / "man"


def render(page):
    need("man")
    p = run(["man", "--warnings", "-l", page], env={"MANWIDTH": "80", "MAN_KEEP_STDERR": "1"})
    assert p.returncode == 0 and p.stderr == "", f"{page.name}:\n{p.stderr}"
    # The rendered text, without hyphenation at line ends and with plain hyphens.
    return re.sub(r"[\u2010\u2011]", "-", re.sub(r"-\n\s*", "-", p.stdout))


@pytest.mark.parametrize("page", sorted(p.name for p in MAN.glob("*.[0-9]")))
def test_man_page_renders_without_warnings(page):
    text = render(MAN / page)
    for section in ("NAME", "DESCRIPTION", "SEE ALSO"):
        assert section in text, (page, section)


def test_pristine_run_page_has_every_flag():
    text = render(MAN / "pristine-run.1")
    w = load_pristine_run()
    for flag in [o.flag for o in w.OPTIONS] + ["--strict", "--policy", "--print-env", "--version"]:
        assert flag in text, flag
    for dim in w.DIMENSIONS + w.SECURITY_DIMENSIONS:
        assert re.search(rf"\b{dim}\b", text), dim
    for status in ("125", "126", "127"):
        assert status in text


def test_pristine_page_has_every_key(shim):
    text = render(MAN / "pristine.7")
    for key, (values, default, _) in library_help().items():
        assert re.search(rf"\b{key}\b", text), key
        for v in values.split("|"):
            if v != "PATH":
                assert re.search(rf"\b{re.escape(v)}\b", text), (key, v)
    for section in ("OPTIONS", "POLICY", "SECURE EXECUTION", "REPORT", "SECURITY", "FILES"):
        assert section in text, section


def test_pristine_report_page_has_every_flag():
    text = render(MAN / "pristine-report.1")
    usage = run([PYTHON, PRISTINE_REPORT, "--help"]).stdout
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", usage))
    assert "--json" in flags
    for flag in flags:
        assert flag in text, flag


def test_readme_option_table_has_every_key(shim):
    readme = (ROOT / "README.md").read_text()
    rows = [l for l in readme.splitlines() if l.startswith("| `")]
    for key, (values, default, _) in library_help().items():
        assert any(re.search(rf"`{key}`", r) for r in rows), key


def test_pristine_scan_page_has_its_exit_status_and_flags():
    text = re.sub(r".\x08", "", render(MAN / "pristine-scan.1"))  # overstrike bold and underline
    assert "EXIT STATUS" in text and "--pid" in text, text
