# SPDX-License-Identifier: Apache-2.0
"""Every dimension is declared once, in shim/dimensions.inc; what repeats it elsewhere (the public
header's bits, pristine-run's key lists, the fuzzers' dictionary, the README's policy table) is
checked against that table here, so that a dimension added or reordered in one place and not the
others fails the suite."""

import re
import sys

from conftest import ROOT

TABLE = ROOT / "shim" / "dimensions.inc"


def dimensions():
    """(key, default policy) of each row of the table, in order."""
    rows = re.findall(r'^PRISTINE_DIMENSION\(k\w+, "(\w+)", \w+, "[^"]*", [^,]+, (\w+), \w+\)',
                      TABLE.read_text(), re.M)
    assert len(rows) == 18, rows
    return rows


def test_public_header_bits_follow_the_table():
    text = (ROOT / "include" / "pristine.h").read_text()
    names = re.findall(r"PRISTINE_DIM_(\w+)", text[text.index("enum {"):])
    names = [n.lower() for n in names if n != "COUNT"][:len(dimensions())]
    assert names == [key for key, _ in dimensions()]


def test_pristine_run_knows_every_dimension_and_its_default():
    text = (ROOT / "scripts" / "pristine-run").read_text()

    def listed(name):
        m = re.search(rf"^{name} = \[([^\]]*)\]", text, re.M)
        assert m, name
        return re.findall(r'"(\w+)"', m.group(1))

    rows = dimensions()
    assert listed("DIMENSIONS") + listed("SECURITY_DIMENSIONS") == [k for k, _ in rows]
    assert listed("DEFAULT_ISOLATED") == [k for k, p in rows if p == "Isolate"]
    assert listed("SECURITY_DIMENSIONS") == [k for k, p in rows if p == "Never"]


def test_fuzz_dictionary_has_every_dimension_key():
    text = (ROOT / "fuzz" / "options.dict").read_text()
    for key, _ in dimensions():
        assert f'"{key}="' in text, key


def test_readme_policy_table_says_each_default():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Policy"):]
    section = section[:section.index("\n## ", 5)]
    words = {"Isolate": "isolate", "Inherit": "inherit", "Never": "never escalate"}
    for key, policy in dimensions():
        row = next((line for line in section.splitlines()
                    if line.startswith("|") and f"`{key}`" in line), None)
        assert row is not None, f"{key} is not in the README's policy table"
        assert row.rstrip(" |").endswith(words[policy]), (key, row)
