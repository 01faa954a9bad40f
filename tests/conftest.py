"""Shared fixtures: a logger that records, an error recorder, GPU-test skipping, and the
independent spec reader run on every plan the suite builds or serializes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import pytest
import torch

import tensorplan as trt
from plan.spec_reader import SpecError, check_plan

pytest_plugins = ["seed_corpus"]  # TENSORPLAN_SEED_CORPUS=DIR saves a fuzzing corpus


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def plans_follow_the_specification() -> Iterator[None]:
    """Wrap (once, for the session) the two methods that return plans, so that every plan the
    suite makes is read by tests/plan/spec_reader.py too; wrappers already there are kept."""
    with pytest.MonkeyPatch.context() as patch:
        for owner, name in (
            (trt.Builder, "build_serialized_network"),
            (trt.ICudaEngine, "serialize"),
        ):
            patch.setattr(owner, name, _checked_by_spec_reader(getattr(owner, name)))
        yield


def _checked_by_spec_reader(method: Callable) -> Callable:
    @functools.wraps(method)
    def checked(*args, **kwargs):
        plan = method(*args, **kwargs)
        refusal = None
        try:
            if plan is not None:
                check_plan(plan)
        except SpecError as error:
            refusal = str(error)
        if refusal is not None:  # pytest.fail escapes the `except Exception` of any caller
            pytest.fail(
                f"{method.__name__} returned a plan that docs/plan-format.md refuses: {refusal}",
                pytrace=False,
            )
        return plan

    return checked


class RecordingLogger(trt.ILogger):
    """Keeps every message, so tests can check what was reported."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self.messages: list[tuple[trt.ILogger.Severity, str]] = []

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        self.messages.append((severity, msg))

    @property
    def errors(self) -> list[str]:
        return [m for s, m in self.messages if s <= trt.ILogger.Severity.ERROR]


class RecordingErrorRecorder(trt.IErrorRecorder):
    """An error recorder as a TensorRT user writes one."""

    def __init__(self) -> None:
        trt.IErrorRecorder.__init__(self)
        self.errors: list[tuple[trt.ErrorCodeTRT, str]] = []

    def clear(self) -> None:
        self.errors.clear()

    def get_error_code(self, error_idx: int) -> trt.ErrorCodeTRT:
        return self.errors[error_idx][0]

    def get_error_desc(self, error_idx: int) -> str:
        return self.errors[error_idx][1]

    def has_overflowed(self) -> bool:
        return False

    def num_errors(self) -> int:
        return len(self.errors)

    def report_error(self, val: trt.ErrorCodeTRT, desc: str) -> bool:
        self.errors.append((val, desc))
        return False


@pytest.fixture
def logger() -> RecordingLogger:
    return RecordingLogger()


@pytest.fixture
def recorder() -> RecordingErrorRecorder:
    return RecordingErrorRecorder()
