"""An independent plan reader, written from docs/plan-format.md and docs/ops.md alone.

It imports nothing from tensorplan, so where it and tensorplan disagree about a plan that
tensorplan wrote, the writer, the reader or the specification is wrong. tests/conftest.py
runs it on every plan the test suite builds or serializes. It checks what can be checked
without shape inference: layout, checksums, padding, strict JSON, the schema and its limits,
dataflow, constants, profiles, memory slots, views and host code.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plan.planedit import HAS_HOST_CODE, HEADER, HOST_CODE, MAGIC, METADATA, SECTION, WEIGHTS

OPS_PAGE = Path(__file__).parents[2] / "docs" / "ops.md"
KNOWN_FLAGS = 0b111
KNOWN_KINDS = {METADATA, WEIGHTS, HOST_CODE}
MAX_SECTIONS = 16
MAX_ALIGNMENT = 65536
MAX_ITEMS = 1_000_000
MAX_STRING = 4096
MAX_RANK = 8
MAX_DIM = 1 << 40
MAX_ARENA = 1 << 44
MAX_PROFILES = 1024
MAX_SHAPE_VALUES = 64
MAX_LIBRARIES = 64
CONSTANT_ALIGNMENT = 256
SLOT_ALIGNMENT = 256
INT64 = (-(1 << 63), 1 << 63)
DTYPE_BYTES = {
    "FLOAT": 4, "HALF": 2, "BF16": 2, "INT8": 1, "INT32": 4, "INT64": 8, "BOOL": 1, "UINT8": 1,
    "FP8": 1, "INT4": 1, "FP4": 1, "E8M0": 1, "DOUBLE": 8, "INT16": 2, "UINT16": 2, "UINT32": 4,
    "UINT64": 8, "FP8_E5M2": 1, "FP8_E4M3FNUZ": 1, "FP8_E5M2FNUZ": 1, "UINT4": 1, "INT2": 1,
    "UINT2": 1, "FP6_E2M3": 1, "FP6_E3M2": 1,
}  # fmt: skip
"""The dtypes of plan-format.md's "Types" table, with their element sizes."""
TOP_KEYS = {
    "name", "tf32", "values", "nodes", "inputs", "outputs", "constants", "profiles", "memory",
    "host_code",
}  # fmt: skip
RANGE_KEYS = {"min", "opt", "max"}
VALUE_KEYS = ("values_min", "values_opt", "values_max")
HOST_CODE_KINDS = {"python-module", "shared-library", "lean-runtime"}
SHA256 = re.compile("[0-9a-f]{64}")


class SpecError(ValueError):
    """A plan breaks a rule of the specification; the message says which."""


def check_plan(plan: bytes) -> None:
    """SpecError naming the first rule of the specification that `plan` breaks."""
    sections = _check_layout(bytes(plan))
    metadata = strict_json(sections[METADATA])
    _Metadata(sections).check(metadata)


def strict_json(data: bytes) -> Any:
    """The metadata as RFC 8259 JSON: UTF-8, no NaN or Infinity, no key twice in an object."""
    try:
        return json.loads(
            data.decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise SpecError(f"metadata is not strict JSON: {error}") from None


def _refuse_constant(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError(f"an object has a key twice: {[key for key, _ in pairs]}")
    return obj


def _check_layout(plan: bytes) -> dict[int, bytes]:
    """Header, section table, checksums and padding; each section's bytes by kind."""
    if len(plan) < HEADER.size:
        raise SpecError(f"a plan of {len(plan)} bytes has no room for the 64-byte header")
    magic, version, header_size, flags, count, file_size, _, table_crc, header_crc, reserved = (
        HEADER.unpack_from(plan, 0)
    )
    _require(magic == MAGIC, f"magic bytes {magic!r}")
    _require(version == 1, f"format_version {version}")
    _require(zlib.crc32(plan[:52]) == header_crc, "header_crc does not match")
    _require(header_size == HEADER.size, f"header_size {header_size}")
    _require(reserved == bytes(8), "header bytes 56 to 63 are not zero")
    _require(not flags & ~KNOWN_FLAGS, f"unknown flags {flags:#x}")
    _require(1 <= count <= MAX_SECTIONS, f"section_count {count}")
    _require(file_size == len(plan), f"file_size {file_size} but the plan has {len(plan)} bytes")
    table_end = HEADER.size + SECTION.size * count
    _require(table_end <= len(plan), "the section table runs past the plan's end")
    _require(zlib.crc32(plan[HEADER.size : table_end]) == table_crc, "table_crc does not match")
    sections: dict[int, bytes] = {}
    ranges = []
    for index in range(count):
        kind, alignment, offset, length, crc, reserved = SECTION.unpack_from(
            plan, HEADER.size + SECTION.size * index
        )
        where = f"section {index}"
        _require(reserved == 0, f"{where}'s reserved field is {reserved}")
        _require(kind in KNOWN_KINDS, f"{where} has kind {kind}, which version 1 does not define")
        _require(kind not in sections, f"two sections of kind {kind}")
        _require(
            1 <= alignment <= MAX_ALIGNMENT and alignment & (alignment - 1) == 0,
            f"{where} has alignment {alignment}",
        )
        _require(offset % alignment == 0, f"{where} at {offset} is not aligned to {alignment}")
        _require(table_end <= offset and offset + length <= len(plan), f"{where} is out of place")
        data = plan[offset : offset + length]
        _require(zlib.crc32(data) == crc, f"{where}'s crc does not match")
        sections[kind] = data
        ranges.append((offset, offset + length))
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        _require(end <= start, "sections overlap")
    gaps = zip(
        [table_end] + [end for _, end in ranges],
        [start for start, _ in ranges] + [len(plan)],
        strict=True,
    )
    for start, end in gaps:
        if plan.count(0, start, end) != end - start:
            raise SpecError(f"padding between bytes {start} and {end} is not zero")
    _require(METADATA in sections, "the plan has no metadata section")
    _require(
        bool(flags & HAS_HOST_CODE) == (HOST_CODE in sections),
        "the HAS_HOST_CODE flag and the host-code section disagree",
    )
    return sections


def _require(condition: bool, broken: str) -> None:
    if not condition:
        raise SpecError(broken)


@dataclass(frozen=True)
class OpSpec:
    """What docs/ops.md says of one op."""

    inputs: tuple[int, int]
    outputs: int | None
    """None: any number (at least one)."""
    attributes: dict[str, tuple[Callable[[Any], bool] | None, bool]]
    """Per attribute: a check of its JSON value (None: not understood) and whether it may be null."""


@functools.cache
def op_reference() -> dict[str, OpSpec]:
    """docs/ops.md, parsed (once)."""
    return parse_op_reference(OPS_PAGE.read_text(encoding="utf-8"))


def parse_op_reference(page: str) -> dict[str, OpSpec]:
    enums = _enumerations(page.split("\n## Enumerations\n", 1)[1])
    ops = {}
    for section in re.split(r"\n(?=## `)", page)[1:]:
        name = re.match(r"## `(\w+)`", section)[1]
        counts = re.search(
            r"^Inputs: (\d+)(?: to (\d+))?\. Outputs: (\d+|any number)\.", section, re.M
        )
        low = int(counts[1])
        high = int(counts[2]) if counts[2] else low
        outputs = None if counts[3] == "any number" else int(counts[3])
        attributes = {
            row[1]: (attribute_check(row[2], enums), row[3] == "`null`")
            for row in re.finditer(r"^\| `(\w+)` \| (.+) \| (.+) \|$", section, re.M)
        }
        ops[name] = OpSpec((low, high), outputs, attributes)
    return ops


def _enumerations(text: str) -> dict[str, set[int]]:
    enums = {}
    for block in re.split(r"\n(?=### `)", text.strip()):
        name = re.match(r"### `(\w+)`", block)[1]
        enums[name] = {int(value) for value in re.findall(r"^\| `\w+` \| (-?\d+) \|$", block, re.M)}
    return enums


def attribute_check(description: str, enums: dict[str, set[int]]) -> Callable[[Any], bool] | None:
    """A check of an attribute's JSON value from its description in docs/ops.md; None when
    the description is not one this reader knows."""
    match = re.fullmatch(r"integer(?: >= (-?\d+))?", description)
    if match:
        low = -math.inf if match[1] is None else int(match[1])
        return lambda v: _is_int(v) and v >= low
    if description in ("number", "number (an integer is kept exact)"):
        return _is_number
    if description == "true or false":
        return lambda v: isinstance(v, bool)
    if description == "string":
        return lambda v: isinstance(v, str)
    match = re.fullmatch(r"`(\w+)` value \(integer\)", description)
    if match:
        members = enums[match[1]]
        return lambda v: _is_int(v) and v in members
    match = re.fullmatch(r"list of at most (\d+) (integers|numbers)", description)
    if match:
        most, item = int(match[1]), _is_int if match[2] == "integers" else _is_number
        return lambda v: isinstance(v, list) and len(v) <= most and all(map(item, v))
    match = re.fullmatch(r"list of 0, 2 or 3 integers >= (-?\d+) \(.*\)", description)
    if match:
        low = int(match[1])
        return lambda v: (
            isinstance(v, list) and len(v) in (0, 2, 3) and all(_is_int(d) and d >= low for d in v)
        )
    match = re.fullmatch(r"one of the strings (.+)", description)
    if match:
        choices = set(re.findall(r'`"([^"]*)"`', match[1]))
        return lambda v: v in choices
    match = re.fullmatch(r"list of at most (\d+) `(\w+)` values \(integers\)", description)
    if match:
        most, members = int(match[1]), enums[match[2]]
        return lambda v: (
            isinstance(v, list) and len(v) <= most and all(_is_int(x) and x in members for x in v)
        )
    match = re.fullmatch(r"list of at most (\d+) objects .*", description)
    if match:
        most = int(match[1])
        return lambda v: isinstance(v, list) and len(v) <= most and all(map(_is_field, v))
    match = re.fullmatch(r"per output \(at most (\d+)\), a list of at most (\d+) .*", description)
    if match:
        outputs, rank = int(match[1]), int(match[2])
        return lambda v: (
            isinstance(v, list)
            and len(v) <= outputs
            and all(isinstance(dims, list) and len(dims) <= rank for dims in v)
        )
    return None


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_number(v: Any) -> bool:
    return type(v) in (int, float)


def _is_field(v: Any) -> bool:
    """A plugin field: {"name": str, "type": str, "data": base64 str}."""
    return (
        isinstance(v, dict)
        and v.keys() == {"name", "type", "data"}
        and all(isinstance(v[key], str) for key in v)
        and len(v["name"]) <= MAX_STRING
        and re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", v["data"]) is not None
        and len(v["data"]) % 4 == 0
    )


@dataclass
class Value:
    name: str
    dtype: str
    shape: list[int]

    @property
    def static(self) -> bool:
        return -1 not in self.shape

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BYTES[self.dtype]


class _Metadata:
    """The metadata's schema and invariants, checked in the order plan-format.md gives them."""

    def __init__(self, sections: dict[int, bytes]) -> None:
        self.sections = sections
        self.values: list[Value] = []

    def check(self, meta: Any) -> None:
        _obj(meta, "metadata", TOP_KEYS)
        _str(meta["name"], "name")
        _require(isinstance(meta["tf32"], bool), "tf32 is not true or false")
        self.values = [
            self.value(v, f"values[{i}]") for i, v in enumerate(_list(meta["values"], "values"))
        ]
        inputs = self.ids(meta["inputs"], "inputs")
        outputs = self.ids(meta["outputs"], "outputs")
        _require(len(set(inputs)) == len(inputs), "an engine input is listed twice")
        _require(len(set(outputs)) == len(outputs), "an engine output is listed twice")
        _require(bool(outputs), "the engine has no outputs")
        names = [self.values[v].name for v in inputs + outputs]
        _require(len(set(names)) == len(names), "engine input and output names are not unique")
        constants = self.constants(meta["constants"], set(inputs))
        nodes = [self.node(n, f"nodes[{i}]") for i, n in enumerate(_list(meta["nodes"], "nodes"))]
        self.dataflow(nodes, set(inputs) | constants, outputs)
        self.profiles(meta["profiles"], inputs)
        self.memory(meta["memory"], nodes, set(outputs))
        self.host_code(meta["host_code"])

    def value(self, item: Any, where: str) -> Value:
        _obj(item, where, {"name", "dtype", "shape"})
        _require(item["dtype"] in DTYPE_BYTES, f"{where}.dtype {item['dtype']!r} is not a dtype")
        return Value(
            _str(item["name"], f"{where}.name"), item["dtype"], _dims(item["shape"], where)
        )

    def ids(self, item: Any, where: str, nullable: bool = False) -> list[Any]:
        items = _list(item, where)
        for v in items:
            if not (nullable and v is None):
                _require(_is_int(v) and 0 <= v < len(self.values), f"{where}: {v!r} is not an id")
        return items

    def constants(self, items: Any, inputs: set[int]) -> set[int]:
        weights = self.sections.get(WEIGHTS)
        placed = []
        for index, item in enumerate(_list(items, "constants")):
            where = f"constants[{index}]"
            _require(weights is not None, "the plan lists constants but has no weights section")
            _obj(item, where, {"value", "offset", "nbytes"})
            (value_id,) = self.ids([item["value"]], f"{where}.value")
            offset, nbytes = _size(item["offset"], where), _size(item["nbytes"], where)
            value = self.values[value_id]
            _require(value_id not in inputs, f"{where}: '{value.name}' is an engine input")
            _require(value.static, f"{where}: '{value.name}' has a dynamic shape")
            _require(nbytes == value.nbytes, f"{where}: {nbytes} bytes for {value.nbytes}")
            _require(offset % CONSTANT_ALIGNMENT == 0, f"{where}: offset {offset} is unaligned")
            _require(offset + nbytes <= len(weights), f"{where} ends past the weights section")
            placed.append((offset, offset + nbytes, value_id))
        placed.sort()
        ids = [value_id for _, _, value_id in placed]
        _require(len(set(ids)) == len(ids), "a value is a constant twice")
        position = 0
        for start, end, _ in placed:
            _require(position <= start, f"constants overlap at weights byte {start}")
            _require(weights.count(0, position, start) == start - position, "weights padding")
            position = end
        if weights is not None:
            _require(
                weights.count(0, position) == len(weights) - position,
                "weights padding past the end",
            )
        return set(ids)

    def node(self, item: Any, where: str) -> tuple[str, str, list, list]:
        _obj(item, where, {"name", "op", "attrs", "inputs", "outputs"})
        name, op = _str(item["name"], f"{where}.name"), _str(item["op"], f"{where}.op")
        spec = op_reference().get(op)
        _require(spec is not None, f"{where} uses op {op!r}, which docs/ops.md does not list")
        attrs = item["attrs"]
        _require(isinstance(attrs, dict), f"{where}.attrs is not an object")
        for key, value in attrs.items():
            _require(key in spec.attributes, f"{where}: op '{op}' has no attribute '{key}'")
            check, nullable = spec.attributes[key]
            if value is None:
                _require(nullable, f"{where}: attribute '{key}' of op '{op}' may not be null")
            elif check is not None:
                _require(check(value), f"{where}: attribute '{key}' of op '{op}' is {value!r}")
        inputs = self.ids(item["inputs"], f"{where}.inputs", nullable=True)
        outputs = self.ids(item["outputs"], f"{where}.outputs")
        low, high = spec.inputs
        _require(
            low <= len(inputs) <= high and None not in inputs[:low],
            f"{where}: op '{op}' takes {low} to {high} inputs, got {inputs}",
        )
        expected = spec.outputs
        _require(
            len(outputs) == expected if expected is not None else len(outputs) >= 1,
            f"{where}: op '{op}' makes {expected} outputs, got {len(outputs)}",
        )
        return name, op, inputs, outputs

    def dataflow(self, nodes: list, defined: set[int], outputs: list[int]) -> None:
        defined = set(defined)
        for name, _, inputs, node_outputs in nodes:
            for value_id in inputs:
                _require(
                    value_id is None or value_id in defined, f"'{name}' reads {value_id} early"
                )
            for value_id in node_outputs:
                _require(value_id not in defined, f"'{name}' writes {value_id}, already defined")
                defined.add(value_id)
        produced = {v for _, _, _, node_outputs in nodes for v in node_outputs}
        _require(set(outputs) <= produced, "an engine output is not made by any node")

    def profiles(self, items: Any, inputs: list[int]) -> None:
        items = _list(items, "profiles")
        _require(1 <= len(items) <= MAX_PROFILES, f"{len(items)} profiles")
        declared = {self.values[v].name: self.values[v] for v in inputs}
        dynamic = {name for name, value in declared.items() if not value.static}
        shape_tensors = None
        for index, profile in enumerate(items):
            where = f"profiles[{index}]"
            _require(isinstance(profile, dict), f"{where} is not an object")
            hosts = set()
            for name, entry in profile.items():
                _require(name in declared, f"{where} names '{name}', not an engine input")
                if self.profile_entry(entry, declared[name], f"{where}['{name}']"):
                    hosts.add(name)
            shape_tensors = hosts if shape_tensors is None else shape_tensors
            _require(hosts == shape_tensors, f"{where} gives values for other shape tensors")
            _require(
                profile.keys() == dynamic | hosts,
                f"{where} lists {sorted(profile)}, not the dynamic and shape-tensor inputs",
            )
        if not dynamic and not shape_tensors:
            _require(len(items) == 1, f"a static engine has {len(items)} profiles, not one")

    @staticmethod
    def profile_entry(entry: Any, value: Value, where: str) -> bool:
        """Check one input's ranges; whether it is a shape tensor (has value ranges)."""
        _obj(entry, where, RANGE_KEYS, set(VALUE_KEYS))
        shapes = [_dims(entry[key], f"{where}.{key}") for key in ("min", "opt", "max")]
        for shape in shapes:
            _require(
                len(shape) == len(value.shape)
                and all(
                    d >= 0 and fixed in (-1, d) for d, fixed in zip(shape, value.shape, strict=True)
                ),
                f"{where}: shape {shape} does not fit {value.shape}",
            )
        _require(
            all(a <= b <= c for a, b, c in zip(*shapes, strict=True)), f"{where}: min <= opt <= max"
        )
        given = [key for key in VALUE_KEYS if key in entry]
        if not given:
            return False
        _require(len(given) == 3, f"{where} has only {given} of the value ranges")
        _require(
            value.dtype in ("INT32", "INT64") and len(value.shape) <= 1,
            f"{where}: a shape tensor is a 0-D or 1-D INT32/INT64 input",
        )
        ranges = []
        for key, shape in zip(VALUE_KEYS, shapes, strict=True):
            items = _list(entry[key], f"{where}.{key}")
            _require(
                len(items) == math.prod(shape) <= MAX_SHAPE_VALUES,
                f"{where}.{key} has {len(items)}",
            )
            _require(all(_is_int(v) and INT64[0] <= v < INT64[1] for v in items), f"{where}.{key}")
            ranges.append(items)
        _require(
            all(a <= b <= c for a, b, c in zip(*ranges, strict=False)), f"{where}: values order"
        )
        return True

    def memory(self, item: Any, nodes: list, outputs: set[int]) -> None:
        _obj(item, "memory", {"arena_size", "slots"}, {"views"})
        arena = _size(item["arena_size"], "memory.arena_size")
        _require(arena <= MAX_ARENA, f"arena_size {arena}")
        activations = {v for _, _, _, node_outputs in nodes for v in node_outputs} - outputs
        slots: dict[int, tuple[int, int]] = {}
        for index, slot in enumerate(_list(item["slots"], "memory.slots")):
            where = f"memory.slots[{index}]"
            _obj(slot, where, {"value", "offset", "size"}, {"format"})
            value_id = slot["value"]
            _require(_is_int(value_id) and value_id in activations, f"{where} is for {value_id!r}")
            _require(value_id not in slots, f"{where}: a second slot for {value_id}")
            value = self.values[value_id]
            if "format" in slot:
                _require(slot["format"] == "HWC" and len(value.shape) == 4, f"{where}.format")
            offset, size = _size(slot["offset"], where), _size(slot["size"], where)
            _require(offset % SLOT_ALIGNMENT == 0, f"{where}: offset {offset} is unaligned")
            _require(offset + size <= arena, f"{where} ends past the arena")
            _require(not value.static or size >= value.nbytes, f"{where} is too small")
            slots[value_id] = (offset, size)
        views = self.views(item.get("views", []), nodes, activations - set(slots))
        for value_id in activations - set(slots) - set(views):
            _require(not self.values[value_id].static, f"activation {value_id} has no memory")
        self.lifetimes(nodes, slots, views)

    def views(self, items: Any, nodes: list, unslotted: set[int]) -> dict[int, int]:
        sources = {
            node_outputs[0]: inputs[0] for _, op, inputs, node_outputs in nodes if op == "shuffle"
        }
        views: dict[int, int] = {}
        for index, pair in enumerate(_list(items, "memory.views")):
            where = f"memory.views[{index}]"
            _require(isinstance(pair, list) and len(pair) == 2, f"{where} is not a pair")
            value_id, source = self.ids(pair, where)
            _require(
                value_id in unslotted and value_id not in views, f"{where}: {value_id} has memory"
            )
            _require(sources.get(value_id) == source, f"{where} is not a shuffle of {source}")
            views[value_id] = source
        return views

    @staticmethod
    def lifetimes(nodes: list, slots: dict[int, tuple[int, int]], views: dict[int, int]) -> None:
        """Activations alive at the same node share no arena bytes."""

        def storage(value_id: int) -> int:
            while value_id in views:
                value_id = views[value_id]
            return value_id

        born, last = {}, {}
        for index, (_, _, inputs, node_outputs) in enumerate(nodes):
            for value_id in inputs:
                if value_id is not None:
                    last[storage(value_id)] = index
            for value_id in node_outputs:
                born[value_id] = index
        live: list[tuple[int, int, int, int]] = []  # (end of life, offset, end, value)
        for value_id in sorted(slots, key=born.__getitem__):
            offset, size = slots[value_id]
            if not size:
                continue
            start = born[value_id]
            live = [entry for entry in live if entry[0] >= start]
            for _, other_offset, other_end, other in live:
                _require(
                    other_end <= offset or offset + size <= other_offset,
                    f"activations {other} and {value_id} are alive together but share bytes",
                )
            live.append((max(last.get(value_id, start), start), offset, offset + size, value_id))

    def host_code(self, items: Any) -> None:
        items = _list(items, "host_code")
        section = self.sections.get(HOST_CODE)
        _require((section is None) == (not items), "host_code and the host-code section disagree")
        _require(len(items) <= MAX_LIBRARIES, f"{len(items)} host-code libraries")
        for index, entry in enumerate(items):
            where = f"host_code[{index}]"
            _obj(entry, where, {"name", "kind", "offset", "nbytes", "sha256"})
            _str(entry["name"], f"{where}.name")
            _require(entry["kind"] in HOST_CODE_KINDS, f"{where}.kind {entry['kind']!r}")
            digest = entry["sha256"]
            _require(isinstance(digest, str) and SHA256.fullmatch(digest), f"{where}.sha256")
            offset, nbytes = _size(entry["offset"], where), _size(entry["nbytes"], where)
            _require(offset + nbytes <= len(section), f"{where} ends past the host-code section")
            data = section[offset : offset + nbytes]
            _require(hashlib.sha256(data).hexdigest() == digest, f"{where}: sha256 does not match")


def _obj(item: Any, where: str, required: set[str], optional: set[str] = frozenset()) -> None:
    _require(isinstance(item, dict), f"{where} is not an object")
    keys = item.keys()
    _require(required <= keys <= required | optional, f"{where} has the keys {sorted(keys)}")


def _list(item: Any, where: str) -> list:
    _require(isinstance(item, list), f"{where} is not a list")
    _require(len(item) <= MAX_ITEMS, f"{where} has {len(item)} entries")
    return item


def _str(item: Any, where: str) -> str:
    _require(isinstance(item, str) and len(item) <= MAX_STRING, f"{where} is not a short string")
    return item


def _size(item: Any, where: str) -> int:
    _require(_is_int(item) and item >= 0, f"{where}: {item!r} is not a non-negative integer")
    return item


def _dims(item: Any, where: str) -> list[int]:
    dims = _list(item, where)
    _require(len(dims) <= MAX_RANK, f"{where} has rank {len(dims)}")
    _require(all(_is_int(d) and -1 <= d <= MAX_DIM for d in dims), f"{where}: dims {dims}")
    return dims
