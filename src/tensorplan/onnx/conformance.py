"""The ONNX backend node test suite, run through tensorplan's backend.

    python -m tensorplan.onnx.conformance [-k PATTERN] [-j JOBS] [--write FILE] [--expected FILE]

Every case of `onnx.backend.test.case.node.collect_testcases` (the data of ONNX's
BackendTest node tests, held in memory) is prepared and run on the CPU, and its outputs
compared with the suite's own rule and tolerances (Runner.assert_similar_outputs).
Prints the failures grouped by operator and `N passed, M failed`; with --expected, also
the tests of that list that no longer pass (and exits 1 if any).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import multiprocessing
import re
import signal
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

CASE_TIMEOUT_S = 60
"""A case running longer than this fails (it would stall the suite)."""


@dataclass(frozen=True)
class Result:
    name: str
    passed: bool
    ops: tuple[str, ...]
    detail: str = ""


def collect(pattern: str | None = None) -> list:
    """The node test cases (optionally those whose name matches `pattern`)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            cases = collect_testcases(None)
    if pattern:
        regex = re.compile(pattern)
        cases = [case for case in cases if regex.search(case.name)]
    return sorted(cases, key=lambda case: case.name)


def run_case(case: object) -> Result:
    """Prepare and run one case on the CPU; passed only if every output matches."""
    from onnx.backend.test.runner import Runner, _normalize_tensor

    from .backend import TensorplanBackend

    ops = tuple(sorted({node.op_type for node in case.model.graph.node}))
    try:
        with _time_limit(CASE_TIMEOUT_S), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = TensorplanBackend.prepare(case.model, "CPU")
            for inputs, expected in case.data_sets:
                outputs = rep.run([_normalize_tensor(item) for item in inputs])
                Runner.assert_similar_outputs(
                    [_normalize_tensor(item) for item in expected],
                    outputs,
                    rtol=case.rtol,
                    atol=case.atol,
                )
    except Exception as error:  # any failure of any kind is this case failing
        detail = f"{type(error).__name__}: {error}".strip().splitlines()
        return Result(case.name, False, ops, " | ".join(line for line in detail[:6] if line))
    return Result(case.name, True, ops)


def run_suite(cases: Sequence[object], jobs: int = 1) -> list[Result]:
    """Run the cases, in `jobs` worker processes when more than one."""
    if jobs <= 1 or len(cases) < 2:
        return [run_case(case) for case in cases]
    # "spawn": forking a process whose torch thread pools are running can deadlock the child
    names = [case.name for case in cases]
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=_load_cases, initargs=(names,)) as pool:
        return pool.map(_run_named, names, chunksize=8)


_CASES: dict[str, object] = {}
"""A worker's cases by name (each worker collects them once)."""


def _load_cases(names: list[str]) -> None:
    wanted = set(names)
    _CASES.update((case.name, case) for case in collect() if case.name in wanted)


def _run_named(name: str) -> Result:
    return run_case(_CASES[name])


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the case ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def read_list(path: str) -> set[str]:
    """Test names of a list file: one per line, '#' starts a comment."""
    with open(path, encoding="utf-8") as file:
        return {line.split("#")[0].strip() for line in file} - {""}


def summary(results: Sequence[Result]) -> str:
    passed = sum(result.passed for result in results)
    return f"{passed} passed, {len(results) - passed} failed"


def failures_by_op(results: Sequence[Result]) -> dict[str, list[Result]]:
    """Failed cases grouped by the operator the case is named after (its first node's)."""
    groups: dict[str, list[Result]] = collections.defaultdict(list)
    for result in results:
        if not result.passed:
            groups[result.ops[0] if len(result.ops) == 1 else "+".join(result.ops[:3])].append(
                result
            )
    return dict(sorted(groups.items(), key=lambda item: -len(item[1])))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", "--pattern", help="run the tests whose name matches this regex")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--write", help="write the names of the passing tests to this file")
    parser.add_argument("--expected", help="a list of tests that must pass")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every failure")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run_suite(collect(args.pattern), args.jobs)
    for op, failed in failures_by_op(results).items():
        print(f"{op}: {len(failed)} failed")
        if args.verbose:
            for result in failed:
                print(f"    {result.name}: {result.detail[:300]}")
    status = 0
    if args.expected:
        passing = {result.name for result in results if result.passed}
        ran = {result.name for result in results}
        regressions = sorted((read_list(args.expected) & ran) - passing)
        for name in regressions:
            detail = next(r.detail for r in results if r.name == name)
            print(f"REGRESSION {name}: {detail[:300]}")
        status = 1 if regressions else 0
    if args.write:
        with open(args.write, "w", encoding="utf-8") as file:
            file.write("# ONNX node tests that pass: python -m tensorplan.onnx.conformance\n")
            file.writelines(f"{r.name}\n" for r in results if r.passed)
    print(f"{summary(results)} in {time.perf_counter() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
