"""Slower paths taken at run time are logged, never silent.

Where a fast kernel cannot take what it is given (a generated kernel and a strided output,
an SDPA backend and a shape it cannot run) the op takes a slower path and calls `report`
with the reason. The executor sets, around the kernels it runs, whom to tell: the context's
logger, at INFO, once per layer and reason, with the layer's name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from ..logging import ILogger, log


class FallbackLog:
    """The reasons a context's layers took slower paths, each logged once."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.layer = ""
        self.seen: set[tuple[str, str]] = set()

    def note(self, reason: str) -> None:
        key = (self.layer, reason)
        if key not in self.seen:
            self.seen.add(key)
            log(self.logger, ILogger.Severity.INFO, f"layer '{self.layer}': {reason}")


_CURRENT: ContextVar[FallbackLog | None] = ContextVar("tensorplan_fallbacks", default=None)


@contextlib.contextmanager
def reporting(fallbacks: FallbackLog | None) -> Iterator[None]:
    """Reports made in the block go to `fallbacks` (nowhere when None)."""
    token = _CURRENT.set(fallbacks)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def at_layer(name: str) -> None:
    """The layer whose kernel runs next (the executor says so before each)."""
    fallbacks = _CURRENT.get()
    if fallbacks is not None:
        fallbacks.layer = name


def report(reason: str) -> None:
    """The running layer takes a slower path, for `reason`."""
    fallbacks = _CURRENT.get()
    if fallbacks is not None:
        fallbacks.note(reason)


def declined(kernel: str, reason: str) -> bool:
    """False, after reporting that `kernel` cannot take the running layer's tensors because
    of `reason` (for a kernel's `return False`: the caller then takes its slower path)."""
    report(f"{kernel} cannot run it ({reason}); a slower torch path runs instead")
    return False
