# SPDX-License-Identifier: Apache-2.0
"""PRISTINE_OPTIONS, key by key (PRODUCT.md, "Names users and scripts rely on").

Each test runs the probe under the shim: a worker taints itself, creates children, and the probe
prints the kernel state of the baseline, the worker ("caller") and the last child. Forwarded
means the child has the baseline's value; not forwarded means it has the caller's.
"""

import json
import re

import pytest

from conftest import describe


def net(state):
    return state["ns"]["net"]


def assert_forwarded(r):
    assert net(r["caller"]) != net(r["baseline"]), describe(r)
    assert net(r["child"]) == net(r["baseline"]), "child should get the baseline net ns\n" + describe(r)


def assert_inherited(r):
    assert net(r["caller"]) != net(r["baseline"]), describe(r)
    assert net(r["child"]) == net(r["caller"]), "child should keep the caller's net ns\n" + describe(r)


def option_lines(stderr):
    return [line for line in stderr.splitlines() if "PRISTINE_OPTIONS" in line]


# --- bad keys and values ---------------------------------------------------------------------

@pytest.mark.parametrize("token, accepted", [
    ("mode=bogus", ["enforce", "audit", "off"]),
    ("verify=maybe", ["fast", "strict"]),
    ("baseline=later", ["load", "first-thread"]),
    ("net=sometimes", ["isolate", "inherit"]),
    ("frobnicate=1", ["mode", "verify", "report", "log", "net"]),
    ("caps=isolate", ["inherit"]),
    ("seccomp=drop", ["inherit"]),
    ("justaword", ["key=value"]),
    ("report=", ["path"]),
])
def test_bad_option_one_line_and_defaults_apply(run_probe, token, accepted):
    # The bad token sits between two good ones: only it is ignored.
    r = run_probe(["--taint", "net"], shim=True, options=f"verify=fast:{token}:log=stderr")
    lines = option_lines(r["_stderr"])
    assert len(lines) == 1, f"expected one line naming PRISTINE_OPTIONS\n{describe(r)}"
    line = lines[0]
    assert token in line, describe(r)
    for word in accepted:
        assert word in line, f"the message should say what is accepted ({word})\n{describe(r)}"
    # Defaults in force: the host ran and the tainted create was forwarded.
    assert_forwarded(r)


def test_several_bad_tokens_one_line_each(run_probe):
    r = run_probe(["--taint", "net"], shim=True, options="mode=x:verify=y:zzz")
    assert len(option_lines(r["_stderr"])) == 3, describe(r)
    assert_forwarded(r)


def test_empty_tokens_are_ignored(run_probe):
    r = run_probe(["--taint", "net"], shim=True, options="::mode=enforce::")
    assert option_lines(r["_stderr"]) == [], describe(r)
    assert_forwarded(r)


# --- mode ---------------------------------------------------------------------------------------

def test_mode_enforce_is_the_default(run_probe):
    assert_forwarded(run_probe(["--taint", "net"], shim=True))
    assert_forwarded(run_probe(["--taint", "net"], shim=True, options="mode=enforce"))


def test_mode_audit_detects_reports_and_does_not_forward(run_probe, tmp_path):
    report = tmp_path / "audit.%p.json"
    r = run_probe(["--taint", "net", "--child-creates", "2", "--exit-normally"], shim=True,
                  options=f"mode=audit:report={report}")
    assert_inherited(r)
    doc = json.loads((tmp_path / f"audit.{r['pid']}.json").read_text())
    assert doc["forwarded"] == 0, doc
    assert doc["dimensions"].get("net") == 2, doc
    assert doc["decisions"]["audit"] == 2, doc
    [site] = doc["sites"]
    assert site["decision"] == "audit" and site["reason"] == "mode=audit", site
    assert site["count"] == 2 and site["dimensions"] == ["net"], site


def test_mode_off_passes_through(run_probe, tmp_path):
    report = tmp_path / "off.%p.json"
    r = run_probe(["--taint", "net", "--exit-normally"], shim=True,
                  options=f"mode=off:report={report}")
    assert_inherited(r)
    doc = json.loads((tmp_path / f"off.{r['pid']}.json").read_text())
    assert doc["forwarded"] == 0, doc


# --- per-dimension policy -----------------------------------------------------------------------

def test_net_inherit_keeps_the_callers_namespace(run_probe, tmp_path):
    report = tmp_path / "inherit.%p.json"
    r = run_probe(["--taint", "net", "--exit-normally"], shim=True,
                  options=f"net=inherit:report={report}")
    assert_inherited(r)
    doc = json.loads((tmp_path / f"inherit.{r['pid']}.json").read_text())
    [site] = doc["sites"]
    assert site["decision"] == "direct", site
    assert site["reason"] == "inherited dimensions only", site


def test_net_inherit_still_isolates_other_dimensions(run_probe):
    # uts stays isolated: the create is forwarded, and net is re-applied on the new thread.
    r = run_probe(["--taint", "net", "--taint", "uts"], shim=True, options="net=inherit")
    assert r["child"]["ns"]["uts"] == r["baseline"]["ns"]["uts"], describe(r)
    assert net(r["child"]) == net(r["caller"]), describe(r)


def test_affinity_inherit(run_probe):
    r = run_probe(["--taint", "affinity"], shim=True, options="affinity=inherit")
    if r["caller"]["affinity"] == r["baseline"]["affinity"]:
        pytest.skip("one CPU allowed: the affinity taint changes nothing here")
    assert r["child"]["affinity"] == r["caller"]["affinity"], describe(r)
    isolated = run_probe(["--taint", "affinity"], shim=True, options="affinity=isolate")
    assert isolated["child"]["affinity"] == isolated["baseline"]["affinity"], describe(isolated)


def test_sigmask_isolate_is_stricter_than_the_default(run_probe):
    default = run_probe(["--taint", "sigmask", "--taint", "net"], shim=True)
    assert default["child"]["sigmask"] == default["caller"]["sigmask"], describe(default)
    strict = run_probe(["--taint", "sigmask", "--taint", "net"], shim=True,
                       options="sigmask=isolate")
    assert strict["child"]["sigmask"] == strict["baseline"]["sigmask"], describe(strict)


def test_security_dimension_inherit_is_accepted(run_probe):
    r = run_probe(["--taint", "net"], shim=True, options="caps=inherit:nnp=inherit")
    assert option_lines(r["_stderr"]) == [], describe(r)
    assert_forwarded(r)


# --- verify ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("via", ["unshare", "setns", "syscall"])
def test_verify_strict(run_probe, via):
    r = run_probe(["--via", via, "--taint", "net", "--child-creates", "3"], shim=True,
                  options="verify=strict")
    assert option_lines(r["_stderr"]) == [], describe(r)
    assert_forwarded(r)
    assert r["children_ok"] == 3, describe(r)


# --- baseline -------------------------------------------------------------------------------------

def test_baseline_load_vs_first_thread(run_probe):
    # main enters a new net namespace before it starts the worker.
    load = run_probe(["--main-taint", "net"], shim=True, options="baseline=load")
    assert net(load["caller"]) == net(load["baseline"]), describe(load)
    first = run_probe(["--main-taint", "net"], shim=True, options="baseline=first-thread")
    assert net(first["caller"]) == net(first["main"]), describe(first)
    assert net(first["caller"]) != net(first["baseline"]), describe(first)


# --- log ------------------------------------------------------------------------------------------

def site_lines(text):
    return [line for line in text.splitlines() if "new call site" in line]


def test_log_to_file_one_line_per_site_not_per_create(run_probe, tmp_path):
    log = tmp_path / "pristine.log"
    r = run_probe(["--taint", "net", "--child-creates", "5"], shim=True, options=f"log={log}")
    lines = site_lines(log.read_text())
    assert len(lines) == 1, log.read_text()
    assert "repaired" in lines[0] and "net" in lines[0], lines
    assert "probe" in lines[0], lines  # the top frames name the module
    assert site_lines(r["_stderr"]) == [], describe(r)


def test_log_stderr(run_probe):
    r = run_probe(["--taint", "net", "--child-creates", "3"], shim=True, options="log=stderr")
    assert len(site_lines(r["_stderr"])) == 1, describe(r)


@pytest.mark.parametrize("options", [None, "log=off"])
def test_no_site_lines_without_log(run_probe, options):
    r = run_probe(["--taint", "net", "--child-creates", "3"], shim=True, options=options)
    assert site_lines(r["_stderr"]) == [], describe(r)


# --- help=1 and the table ---------------------------------------------------------------------------

HELP_LINE = re.compile(r"^  ([a-z_]+)=(\S+) \(default: ([^)]*)\) (.+)$")


def help_table(stderr):
    """{key: (values, default, meaning)} from the help=1 text."""
    return {m.group(1): m.groups()[1:] for m in map(HELP_LINE.match, stderr.splitlines()) if m}


def test_help_prints_every_key_then_the_program_runs(run_probe):
    r = run_probe(["--taint", "net"], shim=True, options="help=1")
    table = help_table(r["_stderr"])
    for key in ("mode", "verify", "baseline", "forward", "report", "report_empty", "log",
                "verbosity", "help", "net", "affinity", "sigmask", "caps"):
        assert key in table, describe(r)
    assert table["mode"][:2] == ("enforce|audit|off", "enforce"), table["mode"]
    assert table["verbosity"][:2] == ("0|1|2", "1"), table["verbosity"]
    assert table["sigmask"][:2] == ("isolate|inherit", "inherit"), table["sigmask"]
    assert table["caps"][:2] == ("inherit", "inherit"), table["caps"]
    assert_forwarded(r)  # and then the program ran normally, under the defaults


def test_bad_token_control_bytes_are_escaped(run_probe):
    r = run_probe(["--taint", "net"], shim=True, options="mode=\x1b[31mred\x07:log=stderr")
    [line] = option_lines(r["_stderr"])
    assert "\x1b" not in line and "\x07" not in line, repr(line)
    assert "mode=\\x1b[31mred\\x07" in line, repr(line)
    assert_forwarded(r)
