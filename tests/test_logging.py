"""Logger, ILogger subclasses, and how errors reach the recorder or the logger."""

from __future__ import annotations

import tensorplan as trt
from tensorplan.errors import format_error, report_error


def test_logger_severities_and_threshold(capsys):
    assert trt.Logger.Severity.VERBOSE == 4
    assert trt.Logger.WARNING is trt.Logger.Severity.WARNING
    logger = trt.Logger()
    assert logger.min_severity == trt.Logger.WARNING
    logger.log(trt.Logger.INFO, "hidden")
    logger.log(trt.Logger.ERROR, "shown")
    assert capsys.readouterr().err == "[TRT] [E] shown\n"


def test_errors_use_tensorrt_text_form():
    text = format_error(trt.ErrorCodeTRT.INVALID_ARGUMENT, "IRuntime::setMaxThreads", "bad")
    assert text == "IRuntime::setMaxThreads: Error Code 3: API Usage Error (bad)"


class Owner:
    def __init__(self, logger, recorder=None):
        self._logger = logger
        self._error_recorder = recorder


def test_error_goes_to_recorder_when_set_else_logger(logger, recorder):
    report_error(Owner(logger), trt.ErrorCodeTRT.INTERNAL_ERROR, "A::b", "first")
    assert logger.errors == ["A::b: Error Code 2: Internal Error (first)"]
    report_error(Owner(logger, recorder), trt.ErrorCodeTRT.INTERNAL_ERROR, "A::b", "second")
    assert recorder.num_errors() == 1
    assert recorder.get_error_code(0) == trt.ErrorCodeTRT.INTERNAL_ERROR
    assert recorder.get_error_desc(0) == "A::b: Error Code 2: Internal Error (second)"
    assert len(logger.errors) == 1


def test_a_failing_recorder_or_logger_does_not_break_the_caller(logger, capsys):
    class BrokenRecorder(trt.IErrorRecorder):
        def report_error(self, val, desc):
            raise RuntimeError("recorder is broken")

    class BrokenLogger(trt.ILogger):
        def log(self, severity, msg):
            raise RuntimeError("logger is broken")

    report_error(Owner(logger, BrokenRecorder()), trt.ErrorCodeTRT.INTERNAL_ERROR, "A::b", "x")
    assert logger.errors == ["A::b: Error Code 2: Internal Error (x)"]
    report_error(Owner(BrokenLogger()), trt.ErrorCodeTRT.INTERNAL_ERROR, "A::b", "y")
    assert "logger raised" in capsys.readouterr().err
