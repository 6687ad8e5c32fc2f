# SPDX-License-Identifier: Apache-2.0
"""The runner's own rules (programs.py): a program that exits 3 ("this machine cannot run it")
under the library skips a test only when it cannot run without the library either; otherwise the
test fails (a regression that made a program exit 3 under the library alone used to pass as a
skip). Every test program goes through that rule, and through one clean environment."""

import os

import pytest

from programs import EXIT_CANNOT_RUN_HERE, cannot_run_here, clean_env, run_app


def test_exit_3_without_the_library_skips():
    with pytest.raises(pytest.skip.Exception):
        cannot_run_here("prog", "no namespaces", False, lambda: 3)


def test_exit_3_under_the_library_and_without_skips():
    with pytest.raises(pytest.skip.Exception):
        cannot_run_here("prog", "no namespaces", True, lambda: 3)


def test_exit_3_under_the_library_only_fails():
    with pytest.raises(pytest.fail.Exception, match="under the library only"):
        cannot_run_here("prog", "no namespaces", True, lambda: 0)


def test_run_app_applies_the_rule_under_the_library(shim, monkeypatch):
    # /bin/sh standing in for a test program that exits 3 under the library only.
    monkeypatch.setattr("programs.app_path", lambda name: "/bin/sh")
    script = 'case "$LD_PRELOAD" in *libpristine*) exit 3;; esac; echo "{}"'
    with pytest.raises(pytest.fail.Exception, match="under the library only"):
        run_app("sh", ["-c", script], shim=True)
    assert run_app("sh", ["-c", script]).json == {}


def test_run_app_skips_what_cannot_run_anywhere(monkeypatch):
    monkeypatch.setattr("programs.app_path", lambda name: "/bin/sh")
    with pytest.raises(pytest.skip.Exception):
        run_app("sh", ["-c", f"exit {EXIT_CANNOT_RUN_HERE}"], shim=True)


def test_clean_env_inherits_no_setting(monkeypatch):
    for var in ("LD_PRELOAD", "PRISTINE_OPTIONS", "PRISTINE_LIB", "PRISTINE_RUN", "MALLOC_CONF",
                "TSAN_OPTIONS", "ASAN_OPTIONS", "PKG_CONFIG_PATH"):
        monkeypatch.setenv(var, "x")
    env = clean_env()
    assert not [k for k in env if k.startswith("PRISTINE_") or k in (
        "LD_PRELOAD", "MALLOC_CONF", "TSAN_OPTIONS", "ASAN_OPTIONS", "PKG_CONFIG_PATH")], env
    assert env["PATH"] == os.environ["PATH"]
