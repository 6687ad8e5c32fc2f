# SPDX-License-Identifier: Apache-2.0
"""A short libFuzzer run (a few seconds) of every fuzz target, through scripts/fuzz, which builds
them with clang (ASan+UBSan) in $PRISTINE_BUILD_DIR-fuzz. scripts/fuzz [SECONDS] is the long run.
Skipped when clang++ is not installed."""

import pathlib
import re
import shutil
import tempfile

import pytest

from programs import SCRIPTS, run

pytestmark = pytest.mark.build

TIMEOUT_S = 600  # configure + build + a 3 s run take ~20 s here


def _clang_links_libfuzzer():
    with tempfile.TemporaryDirectory() as d:
        src = pathlib.Path(d) / "f.cc"
        src.write_text('#include <cstddef>\n#include <cstdint>\nextern "C" int '
                       'LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n')
        return run(["clang++", "-fsanitize=fuzzer", src, "-o", f"{src}.bin"]).returncode == 0


def test_short_fuzz_run_finds_nothing():
    if shutil.which("clang++") is None or shutil.which("cmake") is None:
        pytest.skip("clang++/cmake not installed: fuzzing skipped")
    # FUZZ_UPDATE_SEEDS unset: a test run never writes into fuzz/corpus/.
    proc = run([SCRIPTS / "fuzz", "3"], build_dir=True, timeout=TIMEOUT_S,
               env={"FUZZ_UPDATE_SEEDS": None})
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
