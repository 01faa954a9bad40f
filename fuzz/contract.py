"""What a fuzz target checks beyond "no exception escapes": a refusal comes with its error.

Any exception out of a target is a finding (atheris writes the input and the stack), so a
broken promise is raised as ContractViolation. The logger and recorder here are quiet: the
fuzzer must not spend its time printing.
"""

from __future__ import annotations

import tensorplan as trt


class ContractViolation(AssertionError):
    """An API kept to its return type but broke TensorRT's promise about errors."""


class QuietLogger(trt.ILogger):
    """Drops every message."""

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        pass


class ErrorList(trt.IErrorRecorder):
    """An error recorder that keeps the errors reported to it, printing nothing."""

    def __init__(self) -> None:
        trt.IErrorRecorder.__init__(self)
        self.errors: list[str] = []

    def clear(self) -> None:
        self.errors.clear()

    def get_error_code(self, error_idx: int) -> trt.ErrorCodeTRT:
        return trt.ErrorCodeTRT.UNSPECIFIED_ERROR

    def get_error_desc(self, error_idx: int) -> str:
        return self.errors[error_idx]

    def has_overflowed(self) -> bool:
        return False

    def num_errors(self) -> int:
        return len(self.errors)

    def report_error(self, val: trt.ErrorCodeTRT, desc: str) -> bool:
        self.errors.append(desc)
        return False


def expect_errors(recorder: ErrorList, since: int, what: str, exactly: int | None = None) -> None:
    """Raise unless `what` failed with errors reported after the first `since` ones: at
    least one, or `exactly` that many."""
    new = recorder.errors[since:]
    if (len(new) != exactly) if exactly is not None else not new:
        wanted = f"exactly {exactly}" if exactly is not None else "at least one"
        raise ContractViolation(f"{what}, reporting {len(new)} errors ({wanted} wanted): {new}")
