"""The fuzz targets reach what they mean to: the seeds load and run, or parse and build."""

from __future__ import annotations

import pytest
from fuzz.contract import ContractViolation, ErrorList, expect_errors

from fuzz import onnx_target, plan_target


def test_every_seed_plan_loads_and_runs_on_zeros(plan_seeds):
    assert len(plan_seeds) == 11
    assert [plan_target.check_plan(plan) for plan in plan_seeds] == ["ran"] * 11


def test_a_damaged_plan_is_refused():
    assert plan_target.check_plan(b"\x89TPLAN\r\n") == "refused"


def test_every_seed_model_parses_and_builds(onnx_seeds):
    assert [onnx_target.check_model(model) for model in onnx_seeds] == ["built"] * 6


def test_damaged_model_bytes_are_refused():
    assert onnx_target.check_model(b"\x08\xff") == "refused"


def test_a_refusal_without_its_error_breaks_the_contract():
    recorder = ErrorList()
    recorder.report_error(0, "an earlier error")
    with pytest.raises(ContractViolation, match="reporting 0 errors"):
        expect_errors(recorder, 1, "deserialize_cuda_engine returned None")
    recorder.report_error(0, "the error")
    expect_errors(recorder, 1, "deserialize_cuda_engine returned None", exactly=1)
