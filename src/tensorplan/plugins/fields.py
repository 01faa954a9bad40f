"""Plugin fields as plain data: what a plan stores of a plugin's PluginFieldCollection.

A field is stored as `{"name": str, "type": PluginFieldType name, "data": base64 string}`,
the data being the field's raw little-endian bytes: exact for every type (floats round-trip
bit for bit) and never code.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from ..types import PluginFieldType
from .interfaces import FIELD_NUMPY_TYPES, PluginField, PluginFieldCollection

MAX_FIELDS = 1024
MAX_FIELD_NAME = 4096
MAX_FIELD_BYTES = 1 << 26
"""Bytes all the fields of one plugin may hold together."""


class FieldRecord(NamedTuple):
    """One serialized field: its name, type and raw bytes."""

    name: str
    type: PluginFieldType
    data: bytes


def records_of(fields: Iterable[Any]) -> tuple[FieldRecord, ...]:
    """The records of a PluginFieldCollection (or of any iterable of PluginField-like objects)."""
    records = []
    for index, field in enumerate(fields):
        name, kind = getattr(field, "name", None), getattr(field, "type", None)
        if not isinstance(name, str):
            raise ValueError(f"plugin field {index} has no string name")
        try:
            kind = PluginFieldType(kind)
        except (TypeError, ValueError):
            raise ValueError(f"plugin field '{name}' has an invalid type {kind!r}") from None
        data = np.ascontiguousarray(field.data, dtype=FIELD_NUMPY_TYPES[kind]).reshape(-1)
        records.append(FieldRecord(name, kind, data.astype(data.dtype.newbyteorder("<")).tobytes()))
    return check_records(records)


def collection_of(records: Iterable[FieldRecord]) -> PluginFieldCollection:
    """A fresh PluginFieldCollection holding copies of the records' data."""
    return PluginFieldCollection(
        PluginField(
            record.name, np.frombuffer(record.data, dtype=_little(record.type)).copy(), record.type
        )
        for record in records
    )


def check_records(items: Any) -> tuple[FieldRecord, ...]:
    """Records from plain data (a plan's JSON list or records), checked; ValueError if invalid."""
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise ValueError(f"plugin fields must be a list, got {type(items).__name__}")
    records, total = [], 0
    for index, item in enumerate(items):
        if index >= MAX_FIELDS:
            raise ValueError(f"a plugin has more than {MAX_FIELDS} fields")
        record = item if isinstance(item, FieldRecord) else _record_of_json(item, index)
        if not isinstance(record.name, str) or len(record.name) > MAX_FIELD_NAME:
            raise ValueError(f"field {index}'s name must be a string of at most {MAX_FIELD_NAME}")
        size = np.dtype(FIELD_NUMPY_TYPES[record.type]).itemsize
        if len(record.data) % size:
            raise ValueError(
                f"field '{record.name}' has {len(record.data)} bytes, not a multiple of the "
                f"{size}-byte {record.type.name}"
            )
        total += len(record.data)
        if total > MAX_FIELD_BYTES:
            raise ValueError(f"plugin fields hold more than {MAX_FIELD_BYTES} bytes")
        records.append(record)
    return tuple(records)


def encode_records(records: Iterable[FieldRecord]) -> list[dict[str, str]]:
    """Records as JSON data."""
    return [
        {"name": r.name, "type": r.type.name, "data": base64.b64encode(r.data).decode("ascii")}
        for r in records
    ]


def _record_of_json(item: Any, index: int) -> FieldRecord:
    if not isinstance(item, dict) or set(item) != {"name", "type", "data"}:
        raise ValueError(f"field {index} must be an object with exactly name, type, data")
    kind, data = item["type"], item["data"]
    if not isinstance(kind, str) or kind not in PluginFieldType.__members__:
        raise ValueError(f"field {index} has unknown type {kind!r}")
    if not isinstance(data, str):
        raise ValueError(f"field {index}'s data must be a base64 string")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"field {index}'s data is not valid base64") from None
    return FieldRecord(item["name"], PluginFieldType[kind], raw)


def _little(kind: PluginFieldType) -> np.dtype:
    return np.dtype(FIELD_NUMPY_TYPES[kind]).newbyteorder("<")
