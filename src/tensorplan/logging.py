"""TensorRT's logging interface: ILogger to subclass, Logger to print."""

from __future__ import annotations

import enum
import sys
import threading


class ILogger:
    """Application-implemented logging interface; subclass it and implement `log`."""

    class Severity(enum.IntEnum):
        """How serious a message is; lower is more serious, as in TensorRT."""

        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    INTERNAL_ERROR = Severity.INTERNAL_ERROR
    ERROR = Severity.ERROR
    WARNING = Severity.WARNING
    INFO = Severity.INFO
    VERBOSE = Severity.VERBOSE

    def __init__(self) -> None:
        pass

    def log(self, severity: ILogger.Severity, msg: str) -> None:
        raise NotImplementedError("ILogger.log must be implemented by the subclass")


class Logger(ILogger):
    """Prints messages at or above `min_severity` to stderr, as `[TRT] [W] message`."""

    _TAGS = "FEWIV"

    def __init__(self, min_severity: ILogger.Severity = ILogger.Severity.WARNING) -> None:
        super().__init__()
        self.min_severity = ILogger.Severity(min_severity)
        self._lock = threading.Lock()

    def log(self, severity: ILogger.Severity, msg: str) -> None:
        if int(severity) > int(self.min_severity):
            return
        with self._lock:
            print(f"[TRT] [{self._TAGS[int(severity)]}] {msg}", file=sys.stderr)


def log(logger: ILogger | None, severity: ILogger.Severity, msg: str) -> None:
    """Send a message to a user's logger; a logger that raises never breaks the library."""
    if logger is None:
        return
    try:
        logger.log(severity, msg)
    except Exception as error:  # a user's logger must not break the call that logged
        print(f"[tensorplan] logger raised {error!r} for: {msg}", file=sys.stderr)
