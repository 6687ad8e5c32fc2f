# SPDX-License-Identifier: Apache-2.0
"""The GoogleTest unit tests (tests/) built with AddressSanitizer + UndefinedBehaviorSanitizer.

They are configured in a build directory of their own, next to the main one
($PRISTINE_BUILD_DIR-asan, default build-asan), with -DPRISTINE_SANITIZE=address,undefined, and
only the `unit_tests` target is built. ThreadSanitizer is the same with =thread (see the README's
reliability section); it is not part of scripts/test.
"""

import os
import pathlib

import pytest

from programs import BUILD_DIR, ROOT, need, run

pytestmark = pytest.mark.build

ASAN_BUILD = pathlib.Path(str(BUILD_DIR) + "-asan")
# Generous: a cold configure + build takes ~20 s here; a hang is what this would catch.
BUILD_TIMEOUT_S = 600


SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def _run(cmd, what):
    proc = run(cmd, env=SANITIZER_ENV, timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n"
                    f"stdout:\n{proc.stdout[-8000:]}\nstderr:\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="module")
def asan_build():
    need("cmake", "ctest")
    _run(["cmake", "-S", str(ROOT), "-B", str(ASAN_BUILD), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
          "-DPRISTINE_SANITIZE=address,undefined"], "configure (ASan+UBSan)")
    _run(["cmake", "--build", str(ASAN_BUILD), "--target", "unit_tests", "-j",
          str(os.cpu_count() or 2)], "build of the unit tests (ASan+UBSan)")
    return ASAN_BUILD


def test_unit_tests_pass_under_asan_and_ubsan(asan_build):
    proc = _run(["ctest", "--test-dir", str(asan_build / "tests"), "--output-on-failure",
                 "--no-tests=error", "-j", str(os.cpu_count() or 2)], "ctest (ASan+UBSan)")
    assert "100% tests passed" in proc.stdout, proc.stdout
    # Sanitizer reports go to stderr of the test, which ctest prints on failure only; a clean run
    # has none at all.
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert marker not in proc.stdout + proc.stderr
