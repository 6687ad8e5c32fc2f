# SPDX-License-Identifier: Apache-2.0
"""The GoogleTest unit tests (tests/) built with AddressSanitizer + UndefinedBehaviorSanitizer, and
with ThreadSanitizer.

Each set is configured in a build directory of its own, next to the main one
($PRISTINE_BUILD_DIR-asan and -tsan, default build-asan and build-tsan), with
-DPRISTINE_SANITIZE=address,undefined or =thread, and only the `unit_tests` target is built.
"""

import os
import pathlib

import pytest

from programs import BUILD_DIR, ROOT, need, run

pytestmark = pytest.mark.build

SANITIZERS = {"asan": "address,undefined", "tsan": "thread"}
# Generous: a cold configure + build takes ~20 s here; a hang is what this would catch.
BUILD_TIMEOUT_S = 600


SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
                 "TSAN_OPTIONS": "halt_on_error=1"}


def _run(cmd, what):
    proc = run(cmd, env=SANITIZER_ENV, timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n"
                    f"stdout:\n{proc.stdout[-8000:]}\nstderr:\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="module", params=sorted(SANITIZERS))
def sanitized_build(request):
    need("cmake", "ctest")
    build = pathlib.Path(f"{BUILD_DIR}-{request.param}")
    sanitize = SANITIZERS[request.param]
    _run(["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
          f"-DPRISTINE_SANITIZE={sanitize}"], f"configure ({sanitize})")
    _run(["cmake", "--build", str(build), "--target", "unit_tests", "-j",
          str(os.cpu_count() or 2)], f"build of the unit tests ({sanitize})")
    return build


def test_unit_tests_pass_under_sanitizers(sanitized_build):
    proc = _run(["ctest", "--test-dir", str(sanitized_build / "tests"), "--output-on-failure",
                 "--no-tests=error", "-j", str(os.cpu_count() or 2)], f"ctest ({sanitized_build})")
    assert "100% tests passed" in proc.stdout, proc.stdout
    # Sanitizer reports go to stderr of the test, which ctest prints on failure only; a clean run
    # has none at all.
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                   "WARNING: ThreadSanitizer"):
        assert marker not in proc.stdout + proc.stderr
