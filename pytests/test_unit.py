# SPDX-License-Identifier: Apache-2.0
"""The GoogleTest unit tests (tests/) built with AddressSanitizer + UndefinedBehaviorSanitizer.

They are configured in a build directory of their own, next to the main one
($PRISTINE_BUILD_DIR-asan, default build-asan), with -DPRISTINE_SANITIZE=address,undefined, and
only the `unit_tests` target is built. ThreadSanitizer is the same with =thread (see the README's
reliability section); it is not part of scripts/test.
"""

import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, ROOT

ASAN_BUILD = pathlib.Path(str(BUILD_DIR) + "-asan")
# Generous: a cold configure + build takes ~20 s here; a hang is what this would catch.
BUILD_TIMEOUT_S = 600


def _env():
    env = dict(os.environ)
    for var in ("LD_PRELOAD", "PRISTINE_OPTIONS"):
        env.pop(var, None)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def _run(cmd, what):
    proc = subprocess.run(cmd, cwd=str(ROOT), env=_env(), capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n"
                    f"stdout:\n{proc.stdout[-8000:]}\nstderr:\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="module")
def asan_build():
    if shutil.which("cmake") is None or shutil.which("ctest") is None:
        pytest.skip("cmake/ctest not installed: sanitized unit tests skipped")
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
