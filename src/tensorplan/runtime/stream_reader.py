"""IStreamReader and IStreamReaderV2, and reading a whole plan from either."""

from __future__ import annotations

from typing import Any

from ..plan.format import HEADER, MAX_ARENA_BYTES, PlanError
from ..plan.reader import check_fixed_header
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

    The header is checked (magic, version, checksum) before the rest is read, so a damaged
    header never makes this read or allocate what it claims. PlanError when the reader
    fails, returns something other than bytes, returns more than asked, or ends early.
    """
    version2 = isinstance(reader, IStreamReaderV2)
    if version2 and not reader.seek(0, SeekPosition.SET):
        raise PlanError("the stream reader could not seek to the start of the plan")
    plan = bytearray()
    _read_into(reader, plan, HEADER.size, version2)
    file_size = check_fixed_header(memoryview(plan))
    if file_size > MAX_ARENA_BYTES:
        raise PlanError(f"the plan header names an absurd size of {file_size} bytes")
    _read_into(reader, plan, file_size, version2)
    return plan


def _read_into(reader: Any, plan: bytearray, total: int, version2: bool) -> None:
    while len(plan) < total:
        wanted = total - len(plan)
        chunk = reader.read(wanted, 0) if version2 else reader.read(wanted)
        if isinstance(chunk, memoryview):
            chunk = chunk.tobytes()
        if not isinstance(chunk, (bytes, bytearray)):
            raise PlanError(f"the stream reader returned {type(chunk).__name__}, not bytes")
        if len(chunk) > wanted:
            raise PlanError(
                f"the stream reader returned {len(chunk)} bytes when asked for {wanted}"
            )
        if len(chunk) == 0:
            raise PlanError(f"plan truncated: the stream ended after {len(plan)} bytes of {total}")
        plan += chunk
