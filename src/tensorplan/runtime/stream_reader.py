"""IStreamReader and IStreamReaderV2, and reading a whole plan from either."""

from __future__ import annotations

from typing import Any

from ..plan.format import HEADER, MAX_ARENA_BYTES, PlanError
from ..types import SeekPosition


class IStreamReader:
    """Application-implemented reader: `read(size)` returns up to `size` bytes."""

    def __init__(self) -> None:
        pass

    def read(self, size: int) -> bytes:
        raise NotImplementedError("IStreamReader.read must be implemented by the subclass")


class IStreamReaderV2:
    """Application-implemented reader: `read(num_bytes, stream)` and `seek(offset, where)`."""

    def __init__(self) -> None:
        pass

    def read(self, num_bytes: int, stream: int) -> bytes:
        raise NotImplementedError("IStreamReaderV2.read must be implemented by the subclass")

    def seek(self, offset: int, where: SeekPosition) -> bool:
        raise NotImplementedError("IStreamReaderV2.seek must be implemented by the subclass")


def read_plan_stream(reader: Any) -> bytearray:
    """All bytes of a plan from a stream reader: the header first, then as many as it names.

    PlanError when the reader fails, returns something other than bytes, or ends early.
    """
    version2 = isinstance(reader, IStreamReaderV2) or hasattr(reader, "seek")
    if version2 and not reader.seek(0, SeekPosition.SET):
        raise PlanError("the stream reader could not seek to the start of the plan")
    plan = bytearray()
    _read_into(reader, plan, HEADER.size, version2)
    file_size = int.from_bytes(plan[24:32], "little")
    if file_size > MAX_ARENA_BYTES:
        raise PlanError(f"the plan header names an absurd size of {file_size} bytes")
    _read_into(reader, plan, file_size, version2)
    return plan


def _read_into(reader: Any, plan: bytearray, total: int, version2: bool) -> None:
    while len(plan) < total:
        wanted = total - len(plan)
        chunk = reader.read(wanted, 0) if version2 else reader.read(wanted)
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise PlanError(f"the stream reader returned {type(chunk).__name__}, not bytes")
        if len(chunk) == 0:
            raise PlanError(f"plan truncated: the stream ended after {len(plan)} bytes of {total}")
        plan += chunk[:wanted]
