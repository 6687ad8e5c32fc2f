# SPDX-License-Identifier: Apache-2.0
"""A short libFuzzer run (a few seconds) of every fuzz target, through scripts/fuzz, which builds
them with clang (ASan+UBSan) in $PRISTINE_BUILD_DIR-fuzz. scripts/fuzz [SECONDS] is the long run.
Skipped when clang++ is not installed."""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import BUILD_DIR, ROOT

TIMEOUT_S = 600  # configure + build + a 3 s run take ~20 s here


def _clang_links_libfuzzer():
    with tempfile.TemporaryDirectory() as d:
        src = pathlib.Path(d) / "f.cc"
        src.write_text('#include <cstddef>\n#include <cstdint>\nextern "C" int '
                       'LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n')
        p = subprocess.run(["clang++", "-fsanitize=fuzzer", str(src), "-o", str(src) + ".bin"],
                           capture_output=True, timeout=120)
        return p.returncode == 0


def test_short_fuzz_run_finds_nothing():
    if shutil.which("clang++") is None or shutil.which("cmake") is None:
        pytest.skip("clang++/cmake not installed: fuzzing skipped")
    env = dict(os.environ)
    for var in ("LD_PRELOAD", "PRISTINE_OPTIONS"):
        env.pop(var, None)
    env["PRISTINE_BUILD_DIR"] = str(BUILD_DIR)
    env.pop("FUZZ_UPDATE_SEEDS", None)
    proc = subprocess.run([str(ROOT / "scripts" / "fuzz"), "3"], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    if proc.returncode == 2:
        # A machine whose clang cannot link libFuzzer skips; one that can must build the fuzzers
        # (a build broken by the library's sources is a failure, never a skip).
        if not _clang_links_libfuzzer():
            pytest.skip(f"clang cannot link -fsanitize=fuzzer here: {proc.stderr.strip()}")
        pytest.fail(f"the fuzzers do not build:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-6000:]}"
    lines = [l for l in proc.stdout.splitlines() if l.startswith("fuzz: ")]
    assert lines, proc.stdout
    for line in lines:
        m = re.search(r": (\d+) execs .* crashes (\d+)", line)
        assert m, line
        assert int(m.group(1)) > 0, line
        assert int(m.group(2)) == 0, line
