"""ONNX's backend node test suite (the cases of onnx.backend.test, 1,884 in onnx 1.23):
every test in node_tests_passing.txt must keep passing.

The whole suite runs in two worker processes; the summary line `N passed, M failed` is
printed at the end of the pytest run. `python -m tensorplan.onnx.conformance -j 2` runs it
standalone, with the failures by operator.
"""

from __future__ import annotations

import os

from conftest import NODE_SUITE_SUMMARY
from tensorplan.onnx.conformance import collect, read_list, run_suite, summary

EXPECTED = os.path.join(os.path.dirname(__file__), "node_tests_passing.txt")


def test_node_tests_that_passed_still_pass(pytestconfig):
    cases = collect()
    assert len(cases) >= 1884
    results = run_suite(cases, jobs=2)
    pytestconfig.stash[NODE_SUITE_SUMMARY] = summary(results)
    passing = {r.name for r in results if r.passed}
    details = {r.name: r.detail for r in results}
    regressions = sorted(read_list(EXPECTED) - passing)
    assert not regressions, "no longer passing:\n" + "\n".join(
        f"{name}: {details.get(name, 'not collected')[:300]}" for name in regressions
    )
