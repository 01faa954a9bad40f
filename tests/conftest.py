"""Shared fixtures: a logger that records, an error recorder, and GPU-test skipping."""

from __future__ import annotations

import pytest
import torch

import tensorplan as trt


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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
