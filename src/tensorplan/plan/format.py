"""The fixed parts of the plan format: header, section table, kinds, flags and limits."""

from __future__ import annotations

import enum
import struct

MAGIC = b"\x89TPLAN\r\n"
FORMAT_VERSION = 1

HEADER = struct.Struct("<8sIIIIQ16sII8s")
"""magic, format_version, header_size, flags, section_count, file_size, library_version,
table_crc, header_crc, reserved."""
HEADER_CRC_END = 52

SECTION = struct.Struct("<IIQQII")
"""kind, alignment, offset, length, crc, reserved."""

CONSTANT_ALIGNMENT = 256
WEIGHTS_ALIGNMENT = 4096
MAX_SECTIONS = 16
MAX_SECTION_ALIGNMENT = 65536
MAX_ITEMS = 1_000_000
MAX_NAME_LENGTH = 4096
MAX_RANK = 8
MAX_TENSOR_BYTES = 1 << 40
MAX_ARENA_BYTES = 1 << 44
MAX_SHAPE_VALUES = 64
"""Elements a shape-tensor input may have (TensorRT allows 64 as well)."""
MAX_PROFILES = 1024
"""Optimization profiles an engine with dynamic or shape-tensor inputs may have (a static
engine has exactly one)."""
VALUE_KEYS = ("values_min", "values_opt", "values_max")
"""Profile keys of the value ranges of a shape-tensor input."""


class SectionKind(enum.IntEnum):
    METADATA = 1
    WEIGHTS = 2
    KERNELS = 3
    HOST_CODE = 4


class PlanFlag(enum.IntFlag):
    HAS_HOST_CODE = 1
    VERSION_COMPATIBLE = 2
    EXCLUDES_LEAN_RUNTIME = 4


SECTION_NAMES = {
    SectionKind.METADATA: "metadata",
    SectionKind.WEIGHTS: "weights",
    SectionKind.KERNELS: "kernels",
    SectionKind.HOST_CODE: "host code",
}


class PlanError(ValueError):
    """A plan that cannot be read; the message names the problem and where it is.

    `incompatible` marks plans that are well formed but not for this tensorplan (a newer
    format version, or host code the runtime refuses), which TensorRT reports as an API
    usage error rather than corruption.
    """

    def __init__(self, message: str, incompatible: bool = False) -> None:
        super().__init__(message)
        self.incompatible = incompatible


def align(offset: int, alignment: int) -> int:
    """The first multiple of `alignment` at or after `offset`."""
    return -(-offset // alignment) * alignment
