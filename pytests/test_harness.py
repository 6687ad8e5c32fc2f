# SPDX-License-Identifier: Apache-2.0
"""The test harness's own rules: a program that exits 3 ("this machine cannot run it") under the
library skips a test only when it cannot run without the library either; otherwise the test fails.
(Before, test_faults, test_stress and test_property skipped on any exit 3, so a regression that made
a program exit 3 under the library passed as a skip.)"""

import pytest

from conftest import cannot_run_here


def test_exit_3_without_the_library_skips():
    with pytest.raises(pytest.skip.Exception):
        cannot_run_here("prog", "no namespaces", False, lambda: 3)


def test_exit_3_under_the_library_and_without_skips():
    with pytest.raises(pytest.skip.Exception):
        cannot_run_here("prog", "no namespaces", True, lambda: 3)


def test_exit_3_under_the_library_only_fails():
    with pytest.raises(pytest.fail.Exception, match="under the library only"):
        cannot_run_here("prog", "no namespaces", True, lambda: 0)
