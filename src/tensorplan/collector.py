"""Python's cyclic garbage collector paused around work that makes many lasting objects.

Reading a plan, importing an ONNX model and building a network each make objects by the
hundred thousand that live until the work is done. The collector, triggered by every few
hundred new objects, would scan them all again and again: a quarter of the time of a
100,000-layer build, and most of the time of reading a large plan. Nothing made there
needs the collector (the structures hold no reference cycles that must be freed early).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_active = 0
_was_enabled = False
_lock = threading.Lock()


@contextlib.contextmanager
def paused_garbage_collection() -> Iterator[None]:
    """The collector off for the block. With blocks running on several threads, the last
    one done turns it back on, if it was on when the first began."""
    global _active, _was_enabled
    with _lock:
        if _active == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _was_enabled:
                gc.enable()
