# SPDX-License-Identifier: Apache-2.0
"""The library's rules that the compiler and a checked build enforce.

- Lock discipline and thread roles (shim/thread_role.h), as the headers annotate them
  (absl/base/thread_annotations.h), are checked by clang's -Wthread-safety (GCC ignores the
  annotations): the library is built with clang, warnings as errors, and with its run-time role
  checks (-DPRISTINE_CHECKS=ON).
- The analysis really rejects what the roles forbid: a signal-safe entry point that reaches the
  lifecycle lock (the deadlock of a pthread_sigmask called from a handler that interrupted a thread
  holding it) and a template that waits for the template do not compile.
- The checked library runs the scenarios that exercise every role (the template, spares, new
  threads, fork children, signal-mask changes from handlers): a violated check stops the program.
"""

import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, ROOT

CLANG_BUILD = pathlib.Path(f"{BUILD_DIR}-clang")
CHECKED_SHIM = CLANG_BUILD / "shim" / "libpristine.so"


def _clang():
    clang = shutil.which("clang++")
    if clang is None or shutil.which("cmake") is None:
        pytest.skip("clang++ or cmake not installed")
    return clang


@pytest.fixture(scope="module")
def checked_build():
    clang = _clang()
    env = dict(os.environ, CC=shutil.which("clang") or "clang", CXX=clang)
    configure = subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(CLANG_BUILD), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
         "-DPRISTINE_CHECKS=ON"],
        env=env, capture_output=True, text=True, timeout=300)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    built = subprocess.run(["cmake", "--build", str(CLANG_BUILD), "--target", "pristine", "-j2"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    return CHECKED_SHIM


def test_shim_builds_clean_under_clang_thread_safety_analysis(checked_build):
    assert checked_build.exists()


VIOLATIONS = {
    "signal_safe_reaches_a_lock": """
        #include "lifecycle.h"
        void Handler() {
          pristine::ScopedRole role(pristine::kSignalSafeRole);
          pristine::BeforeChange(pristine::Dim::kNet, true);
        }""",
    "template_waits_for_the_template": """
        #include "template_thread.h"
        void OnTemplate() PRISTINE_REQUIRES_ROLE(pristine::kTemplateRole) {
          pristine::HandoffRequest r;
          pristine::RunOnTemplate(&r);
        }""",
    "new_thread_allocates_a_setup": """
        #include "child_start.h"
        void Trampoline() PRISTINE_REQUIRES_ROLE(pristine::kNewThreadRole) {
          pristine::NewChildSetup(nullptr, nullptr, nullptr);
        }""",
}


def _compile(source, tmp_path):
    src = tmp_path / "case.cc"
    src.write_text(source)
    absl = "/usr/include"
    return subprocess.run(
        [_clang(), "-std=c++17", "-fsyntax-only", "-Wthread-safety", "-Wthread-safety-beta",
         "-Werror", f"-I{ROOT / 'shim'}", f"-isystem{absl}", str(src)],
        capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_the_analysis_rejects_a_role_violation(case, tmp_path):
    p = _compile(VIOLATIONS[case], tmp_path)
    assert p.returncode != 0 and "while mutex" in p.stderr, p.stderr


def test_the_same_calls_outside_the_roles_compile(tmp_path):
    p = _compile("""
        #include "child_start.h"
        #include "lifecycle.h"
        #include "template_thread.h"
        void Program() {
          pristine::BeforeChange(pristine::Dim::kNet, true);
          pristine::HandoffRequest r;
          pristine::RunOnTemplate(&r);
          pristine::NewChildSetup(nullptr, nullptr, nullptr);
        }""", tmp_path)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("program,args", [
    ("first_change", ["--workers", "4", "--children", "5", "--runs", "4"]),
    ("first_change", ["--workers", "4", "--children", "5", "--runs", "4", "--warm"]),
    ("stress", ["--quiet", "--creates", "3000", "--forks", "10", "--seed", "1"]),
    ("property", ["--seed", "7", "--steps", "150"]),
    ("main_exit", ["--then", "exit"]),
    ("needed_ctor", []),
])
def test_checked_library_runs_every_role(checked_build, program, args):
    binary = BUILD_DIR / "testapps" / program
    assert binary.exists(), f"{binary} not built"
    env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": str(checked_build)}
    p = subprocess.run([str(binary), *args], cwd=str(ROOT), env=env, capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert "role check failed" not in p.stderr, p.stderr[-4000:]
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}"
