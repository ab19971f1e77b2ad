"""scipy.ndimage's own tests with haloflow's functions in scipy's place (issue 31's
harness, scripts/scipy_suite.py): the filter tests, the interpolation tests (zoom,
affine_transform, rotate) and the measurement tests (label). Every test that reaches
haloflow passes but those listed, with their reasons, in
tests/scipy_expected_failures.txt."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("module", ["filters", "interpolation", "measurements"])
def test_scipys_tests_pass_with_haloflow_in_place(module):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "scipy_suite.py"), "--module", module,
                          "--top", "10"], capture_output=True, text=True, timeout=600)
    report = run.stdout[run.stdout.find("\nscipy "):]
    assert run.returncode == 0, report + run.stderr[-2000:]
    assert "reach haloflow" in report
