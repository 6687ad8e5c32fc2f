# SPDX-License-Identifier: Apache-2.0
"""The man pages (man/*.[0-9], plain roff) and the README against the tools and the option table:
every page renders without a warning, names every flag or key its subject has, and the README's
option table has every key of the library's help=1 text."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, SHIM
from test_tools import library_help, load_wrapper

MAN = ROOT / "man"


def render(page):
    if shutil.which("man") is None:
        pytest.fail("man is not installed (scripts/install-deps test installs man-db)")
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_STDERR="1")
    p = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                       env=env, timeout=60)
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
    w = load_wrapper()
    for flag in [o.flag for o in w.OPTIONS] + ["--strict", "--policy", "--print-env", "--version"]:
        assert flag in text, flag
    for dim in w.DIMENSIONS + w.SECURITY_DIMENSIONS:
        assert re.search(rf"\b{dim}\b", text), dim
    for status in ("125", "126", "127"):
        assert status in text


def test_pristine_page_has_every_key(shim):
    text = render(MAN / "pristine.7")
    for key, (values, default, _) in library_help(shim).items():
        assert re.search(rf"\b{key}\b", text), key
        for v in values.split("|"):
            if v != "PATH":
                assert re.search(rf"\b{re.escape(v)}\b", text), (key, v)
    for section in ("OPTIONS", "POLICY", "SECURE EXECUTION", "REPORT", "SECURITY", "FILES"):
        assert section in text, section


def test_pristine_report_page_has_every_flag():
    text = render(MAN / "pristine-report.1")
    usage = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts" / "pristine-report"), "--help"],
                           capture_output=True, text=True, timeout=60).stdout
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", usage))
    assert "--json" in flags
    for flag in flags:
        assert flag in text, flag


def test_readme_option_table_has_every_key(shim):
    readme = (ROOT / "README.md").read_text()
    rows = [l for l in readme.splitlines() if l.startswith("| `")]
    for key, (values, default, _) in library_help(shim).items():
        assert any(re.search(rf"`{key}`", r) for r in rows), key
