# SPDX-License-Identifier: Apache-2.0
"""The log (README, "Options": log= and verbosity=; "Files the library writes"): one line per new
call site where log= is given, naming the first frame in the program's own code; a log file only
where it is safe to append to one; standard error only while descriptor 2 is still the one the
library found at load. With the probe and build/testapps/evidence.
"""

import json
import os
import stat

import pytest

from programs import APPS, PROBE, describe, under

pytestmark = pytest.mark.root

EVIDENCE = APPS / "evidence"


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


def test_log_line_names_the_first_frame_in_the_program_demangled(tmp_path):
    log = tmp_path / "log"
    under([EVIDENCE, "three-sites"], f"log={log}")
    lines = [x for x in log.read_text().splitlines() if "new call site" in x]
    assert len(lines) == 3, lines
    for line in lines:
        assert "created at (anonymous namespace)::SpawnThree()" in line, line
        assert "net changed by unshare at (anonymous namespace)::EnterNetns()" in line, line
        assert "libstdc++" not in line, line


def test_symlink_at_the_log_path_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "log"
    link.symlink_to(victim)
    proc = under([PROBE, "--taint", "net", "--exit-normally"], f"log={link}")
    assert victim.read_text() == "precious\n"
    said = [x for x in proc.stderr.splitlines() if "cannot write the log file" in x]
    assert len(said) == 1 and str(link) in said[0], proc.stderr
    # The line itself went to stderr instead.
    assert "new call site" in proc.stderr


def test_log_never_lands_in_a_reused_descriptor_2(tmp_path):
    data = tmp_path / "data"
    under([EVIDENCE, "reuse-stderr", data], "log=stderr")
    assert data.read_text() == "DATA\n"


def test_log_path_expands_pid_and_lines_carry_it(tmp_path):
    proc = under([PROBE, "--taint", "net", "--exit-normally"], f"log={tmp_path}/log.%p")
    pid = json.loads(proc.stdout)["pid"]
    log = tmp_path / f"log.{pid}"
    assert log.exists(), os.listdir(tmp_path)
    lines = log.read_text().splitlines()
    assert lines and all(x.startswith(f"pristine[{pid}]: ") for x in lines), lines
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_unopenable_log_path_is_said_once(tmp_path):
    path = tmp_path / "missing" / "log"
    proc = under([PROBE, "--taint", "net", "--child-creates", "3", "--exit-normally"],
               f"log={path}")
    said = [x for x in proc.stderr.splitlines() if "cannot write the log file" in x]
    assert len(said) == 1 and str(path) in said[0] and "No such file or directory" in said[0], \
        proc.stderr


@pytest.mark.parametrize("verbosity, site_lines, hint", [("0", 0, 0), ("1", 0, 1), ("2", 1, 1)])
def test_verbosity_decides_what_goes_to_the_log(verbosity, site_lines, hint):
    proc = under([PROBE, "--main-taint", "net", "--exit-normally"], f"verbosity={verbosity}")
    assert proc.stderr.count("new call site") == site_lines, proc.stderr
    assert proc.stderr.count("the main thread created a thread") == hint, proc.stderr
    assert "ignoring" not in proc.stderr, proc.stderr
