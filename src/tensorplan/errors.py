"""Error reporting as TensorRT does it: an error recorder when one is set, else the logger.

Every error tensorplan reports goes through `report_error`, which formats it as TensorRT
does: `<Api>::<method>: Error Code <n>: <Category> (<detail>)`.
"""

from __future__ import annotations

import sys
from typing import Any

from .logging import ILogger, log
from .types import ErrorCodeTRT


class IErrorRecorder:
    """Application-implemented error reporting interface; subclass it and implement every method.

    TensorRT passes a recorder set on an object to the objects it creates: a runtime's recorder
    reaches its engines, and an engine's reaches its execution contexts.
    """

    MAX_DESC_LENGTH = 127

    def __init__(self) -> None:
        pass

    def clear(self) -> None:
        raise NotImplementedError("IErrorRecorder.clear must be implemented by the subclass")

    def get_error_code(self, error_idx: int) -> ErrorCodeTRT:
        raise NotImplementedError("IErrorRecorder.get_error_code must be implemented")

    def get_error_desc(self, error_idx: int) -> str:
        raise NotImplementedError("IErrorRecorder.get_error_desc must be implemented")

    def has_overflowed(self) -> bool:
        raise NotImplementedError("IErrorRecorder.has_overflowed must be implemented")

    def num_errors(self) -> int:
        raise NotImplementedError("IErrorRecorder.num_errors must be implemented")

    def report_error(self, val: ErrorCodeTRT, desc: str) -> bool:
        raise NotImplementedError("IErrorRecorder.report_error must be implemented")


CATEGORIES = {
    ErrorCodeTRT.UNSPECIFIED_ERROR: "Unspecified Error",
    ErrorCodeTRT.INTERNAL_ERROR: "Internal Error",
    ErrorCodeTRT.INVALID_ARGUMENT: "API Usage Error",
    ErrorCodeTRT.INVALID_CONFIG: "Invalid Config",
    ErrorCodeTRT.FAILED_ALLOCATION: "Out Of Memory",
    ErrorCodeTRT.FAILED_INITIALIZATION: "Initialization Failure",
    ErrorCodeTRT.FAILED_EXECUTION: "Execution Failure",
    ErrorCodeTRT.FAILED_COMPUTATION: "Computation Failure",
    ErrorCodeTRT.INVALID_STATE: "API Usage Error",
    ErrorCodeTRT.UNSUPPORTED_STATE: "Unsupported State",
}


def format_error(code: ErrorCodeTRT, api: str, detail: str, category: str | None = None) -> str:
    """TensorRT's text for an error: `api: Error Code n: Category (detail)`."""
    return f"{api}: Error Code {int(code)}: {category or CATEGORIES[code]} ({detail})"


def report_error(
    owner: Any, code: ErrorCodeTRT, api: str, detail: str, category: str | None = None
) -> None:
    """Report an error of `owner` (an object with `_error_recorder` and `_logger`).

    The recorder gets it when one is set; otherwise the logger, at ERROR. A recorder that
    raises is not allowed to turn a reported error into a crash.
    """
    desc = format_error(code, api, detail, category)
    recorder = getattr(owner, "_error_recorder", None)
    if recorder is not None:
        try:
            recorder.report_error(code, desc)
            return
        except Exception as error:  # the user's recorder failed; fall back to the logger
            print(f"[tensorplan] error recorder raised {error!r}", file=sys.stderr)
    log(getattr(owner, "_logger", None), ILogger.Severity.ERROR, desc)
