#!/usr/bin/env python3
"""scipy.ndimage's own tests with haloflow's functions in place of scipy's (issue 31's
harness): runs one of scipy's test modules (`scipy/ndimage/tests/test_filters.py`,
`test_interpolation.py` or `test_measurements.py`) under pytest with each function
haloflow names after scipy patched into `scipy.ndimage`, then reports the tests that
reach haloflow, how they fare, and what haloflow refused most often.

    .venv/bin/python scripts/scipy_suite.py [--module filters|interpolation|measurements]
        [--functions gaussian_filter,median_filter]

Exits non-zero if a test that reaches haloflow fails and is not in --expected (default
tests/scipy_expected_failures.txt: each test id with the reason it fails), or if no test
reaches haloflow at all. Needs scipy's test dependencies: pytest and hypothesis.
"""
import argparse
import collections
import functools
import os
import sys

import pytest
import scipy.ndimage

import haloflow

# The functions haloflow names after scipy.ndimage's, by the scipy test module that
# tests them.
FUNCTIONS = {
    "filters": [
        "gaussian_filter", "gaussian_filter1d", "gaussian_laplace", "gaussian_gradient_magnitude",
        "convolve", "convolve1d", "correlate", "correlate1d", "uniform_filter", "uniform_filter1d",
        "median_filter", "percentile_filter", "rank_filter", "minimum_filter", "minimum_filter1d",
        "maximum_filter", "maximum_filter1d",
    ],
    "interpolation": ["affine_transform", "zoom", "rotate"],
    "measurements": ["label"],
}


class Harness:
    """Patches the functions, notes which test calls them and what they raise."""

    def __init__(self, names):
        self.names = names
        self.current = None
        self.reached = set()
        self.outcomes = {}
        self.raised = collections.Counter()
        self.refused = set()

    def pytest_collection_finish(self, session):
        # After collection: scipy's test module keys its marks by the functions.
        for name in self.names:
            setattr(scipy.ndimage, name, self._wrap(getattr(haloflow, name)))

    def _wrap(self, f):
        @functools.wraps(f)
        def call(*args, **kwargs):
            self.reached.add(self.current)
            try:
                return f(*args, **kwargs)
            except Exception as e:
                message = str(e).splitlines()[0][:100] if str(e) else ""
                self.raised[f"{f.__name__}: {type(e).__name__}: {message}"] += 1
                self.refused.add(self.current)
                raise
        return call

    def pytest_runtest_setup(self, item):
        self.current = item.nodeid

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            self.outcomes[report.nodeid] = report.outcome


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", choices=sorted(FUNCTIONS), default="filters",
                    help="which of scipy.ndimage's test modules to run")
    ap.add_argument("--functions", help="the functions to patch in (default: the module's)")
    ap.add_argument("--top", type=int, default=25, help="how many of the commonest refusals to list")
    ap.add_argument("--expected", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                       "tests", "scipy_expected_failures.txt"),
                    help="the failures expected, one test id (and its reason) a line")
    args = ap.parse_args()
    expected = {}
    with open(args.expected) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                test, _, reason = line.strip().partition(" ")
                expected[test] = reason.strip()
    harness = Harness(args.functions.split(",") if args.functions else FUNCTIONS[args.module])
    tests = os.path.join(os.path.dirname(scipy.ndimage.__file__), "tests", f"test_{args.module}.py")
    pytest.main([tests, "-q", "-p", "no:cacheprovider", "--no-header", "-rN", "--tb=no"], plugins=[harness])
    reached = [t for t in harness.outcomes if t in harness.reached]
    fared = collections.Counter(harness.outcomes[t] for t in reached)
    print(f"\nscipy {scipy.__version__}, haloflow {haloflow.__version__}: {len(harness.outcomes)} tests, "
          f"{len(reached)} reach haloflow: " + ", ".join(f"{n} {k}" for k, n in fared.most_common()))
    # A failure where haloflow raised nothing is on a value (or on scipy's expected
    # exception not raised).
    on_value = sorted(t for t in reached if harness.outcomes[t] == "failed" and t not in harness.refused)
    print(f"\n{len(on_value)} failed where haloflow raised nothing (values, or an error scipy expects):")
    for t in on_value[:args.top]:
        print(f"  {t.split('::', 1)[1]}")
    print(f"\nThe {args.top} commonest exceptions haloflow raised (calls):")
    for what, n in harness.raised.most_common(args.top):
        print(f"  {n:5d}  {what}")
    failed = {t.split("::", 1)[1] for t in reached if harness.outcomes[t] == "failed"}
    unexpected = sorted(failed - set(expected))
    fixed = sorted(set(expected) - failed)
    print(f"\n{len(failed)} failed, {len(failed) - len(unexpected)} of them expected "
          f"({os.path.relpath(args.expected)}); {len(unexpected)} unexpected:")
    for t in unexpected:
        print(f"  {t}")
    if fixed:
        print(f"Expected to fail but passed or did not run (take them off the list): {', '.join(fixed)}")
    return 1 if unexpected or not reached else 0


if __name__ == "__main__":
    sys.exit(main())
