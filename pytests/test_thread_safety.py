# SPDX-License-Identifier: Apache-2.0
"""The shim's lock discipline, as its headers annotate it (absl/base/thread_annotations.h), is
checked by clang's -Wthread-safety (GCC ignores the annotations): build libpristine.so with clang,
warnings as errors. A lock taken or missed where an annotation says otherwise fails the build."""

import os
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, ROOT


def test_shim_builds_clean_under_clang_thread_safety_analysis():
    clang = shutil.which("clang++")
    if clang is None or shutil.which("cmake") is None:
        pytest.skip("clang++ or cmake not installed")
    build = f"{BUILD_DIR}-clang"
    env = dict(os.environ, CC=shutil.which("clang") or "clang", CXX=clang)
    configure = subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
        env=env, capture_output=True, text=True, timeout=300)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    built = subprocess.run(["cmake", "--build", build, "--target", "pristine", "-j2"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
