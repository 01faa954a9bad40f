"""Each fuzz target runs a fixed number of inputs with a fixed seed from the built-in seeds;
any escaping exception, hang (over 5 s for one input) or memory over the limit fails the
test, which then shows the fuzzer's last output and the input that did it.

A count of runs rather than a time: the same inputs run on every machine, so a result does
not depend on how fast CI is (a time budget reached different inputs on each run)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNS = {"plan": 80_000, "onnx": 40_000}
"""About 25 s of fuzzing each on a 2-core machine (some 3,000 plans or 1,500 models a second)."""
TIMEOUT_SECONDS = 300
"""Generous: importing torch and instrumenting tensorplan take about 6 s, the seeds 2 s."""


@pytest.mark.parametrize("target", ["plan", "onnx"])
def test_fuzzing_finds_nothing(target, tmp_path):
    artifacts = tmp_path / "artifacts"
    command = [
        sys.executable,
        "-m",
        "fuzz",
        target,
        "--corpus",
        str(tmp_path / "corpus"),
        "--artifacts",
        str(artifacts),
        "--",
        f"-runs={RUNS[target]}",
        "-seed=1",
        "-timeout=5",
        "-rss_limit_mb=3072",
        "-print_final_stats=1",
    ]
    result = subprocess.run(
        command,
        cwd=REPOSITORY,
        capture_output=True,
        timeout=TIMEOUT_SECONDS,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    if result.returncode != 0:
        findings = sorted(artifacts.iterdir()) if artifacts.exists() else []
        shown = "\n".join(f"{path}: {path.read_bytes()[:400]!r}" for path in findings)
        pytest.fail(
            f"`{' '.join(command)}` exited with {result.returncode}.\n"
            f"--- the fuzzer's last output ---\n{output[-6000:]}\n"
            f"--- the input (replay: python -m fuzz {target} PATH) ---\n{shown}",
            pytrace=False,
        )
    assert "Done" in output and "stat::number_of_executed_units" in output, output[-2000:]
