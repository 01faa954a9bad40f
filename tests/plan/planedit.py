"""Rewrite plans with valid checksums, so that a reader's deeper checks are what refuse them.

Written from docs/plan-format.md alone (not from tensorplan's writer), so the tests that use
it also check that the reader follows the specification.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAGIC = b"\x89TPLAN\r\n"
HEADER = struct.Struct("<8sIIIIQ16sII8s")
HEADER_FIELDS = (
    "magic",
    "format_version",
    "header_size",
    "flags",
    "section_count",
    "file_size",
    "library_version",
    "table_crc",
    "header_crc",
    "reserved",
)
SECTION = struct.Struct("<IIQQII")
SECTION_FIELDS = ("kind", "alignment", "offset", "length", "crc", "reserved")

METADATA, WEIGHTS, KERNELS, HOST_CODE = 1, 2, 3, 4
HAS_HOST_CODE = 1


@dataclass
class Section:
    kind: int
    alignment: int
    data: bytes


def header(plan: bytes) -> dict[str, Any]:
    """The header's fields by name."""
    return dict(zip(HEADER_FIELDS, HEADER.unpack_from(plan, 0), strict=True))


def table(plan: bytes) -> list[dict[str, int]]:
    """The section table's entries, as field dicts."""
    count = header(plan)["section_count"]
    return [_entry(plan, i) for i in range(count)]


def sections(plan: bytes) -> list[Section]:
    """The sections in table order, with their bytes."""
    return [
        Section(e["kind"], e["alignment"], bytes(plan[e["offset"] : e["offset"] + e["length"]]))
        for e in table(plan)
    ]


def metadata(plan: bytes) -> dict[str, Any]:
    """The decoded metadata JSON."""
    (section,) = [s for s in sections(plan) if s.kind == METADATA]
    return json.loads(section.data)


def assemble(parts: list[Section], flags: int = 0, **header_fields: Any) -> bytes:
    """A plan of `parts` laid out as the writer does, every CRC valid; `header_fields` override."""
    offset = HEADER.size + SECTION.size * len(parts)
    entries = []
    for part in parts:
        offset = -(-offset // part.alignment) * part.alignment
        entries.append((part, offset))
        offset += len(part.data)
    plan = bytearray(offset)
    for part, start in entries:
        plan[start : start + len(part.data)] = part.data
    table_bytes = b"".join(
        SECTION.pack(p.kind, p.alignment, start, len(p.data), zlib.crc32(p.data), 0)
        for p, start in entries
    )
    plan[HEADER.size : HEADER.size + len(table_bytes)] = table_bytes
    fields = {
        "magic": MAGIC,
        "format_version": 1,
        "header_size": HEADER.size,
        "flags": flags,
        "section_count": len(parts),
        "file_size": len(plan),
        "library_version": b"test",
        "table_crc": zlib.crc32(table_bytes),
        "header_crc": 0,
        "reserved": bytes(8),
    }
    fields.update(header_fields)
    return _pack_header(fields, "header_crc" not in header_fields) + bytes(plan[HEADER.size :])


def with_header(plan: bytes, fix_crc: bool = True, **fields: Any) -> bytes:
    """`plan` with header fields replaced and the header CRC recomputed (unless `fix_crc` is off)."""
    return _pack_header({**header(plan), **fields}, fix_crc) + bytes(plan[HEADER.size :])


def with_entry(plan: bytes, index: int, **fields: int) -> bytes:
    """`plan` with fields of section-table entry `index` replaced, table and header CRCs valid."""
    plan = bytearray(plan)
    start = HEADER.size + SECTION.size * index
    entry = {**_entry(plan, index), **fields}
    plan[start : start + SECTION.size] = SECTION.pack(*(entry[name] for name in SECTION_FIELDS))
    count = header(plan)["section_count"]
    table_crc = zlib.crc32(plan[HEADER.size : HEADER.size + SECTION.size * count])
    return with_header(bytes(plan), table_crc=table_crc)


def with_metadata(plan: bytes, edit: Callable[[dict[str, Any]], Any] | bytes) -> bytes:
    """`plan` with its metadata edited in place by `edit` (or replaced by raw bytes), re-laid out."""
    if isinstance(edit, bytes):
        encoded = edit
    else:
        meta = metadata(plan)
        edit(meta)
        encoded = json.dumps(meta, separators=(",", ":")).encode()
    parts = [
        Section(s.kind, s.alignment, encoded) if s.kind == METADATA else s for s in sections(plan)
    ]
    old = header(plan)
    return assemble(parts, flags=old["flags"], library_version=old["library_version"])


def _pack_header(fields: dict[str, Any], fix_crc: bool) -> bytes:
    packed = HEADER.pack(*(fields[name] for name in HEADER_FIELDS))
    if not fix_crc:
        return packed
    crc = zlib.crc32(packed[:52])
    return packed[:52] + crc.to_bytes(4, "little") + packed[56:]


def _entry(plan: bytes, index: int) -> dict[str, int]:
    fields = SECTION.unpack_from(plan, HEADER.size + SECTION.size * index)
    return dict(zip(SECTION_FIELDS, fields, strict=True))
