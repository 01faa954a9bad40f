"""Read plan bytes into a Program, checking every byte range, count, type and shape first.

Nothing here executes plan contents: the metadata is JSON, checked against the schema of
docs/plan-format.md, and op names are looked up in tensorplan's own op registry.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..collector import paused_garbage_collection
from ..device import TORCH_DTYPES, torch_dtype
from ..ir import Graph, MemoryPlan, Node, Profile, Program, Value
from ..ops import REGISTRY
from ..ops.base import MAX_HOST_VALUE_BYTES, UNKNOWN, TensorMeta, tensor_bytes
from ..types import DataType
from .checksum import crc32
from .format import (
    CONSTANT_ALIGNMENT,
    FORMAT_VERSION,
    HEADER,
    HEADER_CRC_END,
    MAGIC,
    MAX_ARENA_BYTES,
    MAX_ITEMS,
    MAX_NAME_LENGTH,
    MAX_PROFILES,
    MAX_RANK,
    MAX_SECTION_ALIGNMENT,
    MAX_SECTIONS,
    MAX_SHAPE_VALUES,
    MAX_TENSOR_BYTES,
    SECTION,
    SECTION_NAMES,
    VALUE_KEYS,
    PlanError,
    PlanFlag,
    SectionKind,
)
from .host_code import KINDS as HOST_CODE_KINDS
from .host_code import LEAN_RUNTIME, MAX_LIBRARIES, HostLibrary
from .views import shuffle_views

_SHA256 = re.compile("[0-9a-f]{64}")
DTYPES = {t.name: t for t in DataType if t in TORCH_DTYPES}
METADATA_KEYS = {
    "name", "values", "nodes", "inputs", "outputs", "constants", "profiles", "memory", "host_code",
    "tf32",
}  # fmt: skip
VALUE_FIELDS = {"name", "dtype", "shape"}
NODE_FIELDS = {"name", "op", "attrs", "inputs", "outputs"}
SLOT_FIELDS = {"value", "offset", "size"}
SLOT_FORMAT_FIELDS = SLOT_FIELDS | {"format"}


@dataclass
class Section:
    kind: SectionKind
    offset: int
    length: int
    crc: int

    @property
    def name(self) -> str:
        return SECTION_NAMES[self.kind]


@dataclass
class PlanHeader:
    version: int
    flags: PlanFlag
    library_version: str
    sections: dict[SectionKind, Section]


def read_header(plan: memoryview) -> PlanHeader:
    """The header and section table, with every range checked; PlanError if anything is off."""
    size = len(plan)
    file_size = check_fixed_header(plan)
    _, version, _, flags, count, _, library, table_crc, _, _ = HEADER.unpack_from(plan, 0)
    if file_size != size:
        if file_size > size:
            raise PlanError(
                f"plan truncated: the header says {file_size} bytes but the buffer has {size}"
            )
        raise PlanError(f"plan has {size - file_size} bytes past its end ({file_size} bytes)")
    if flags & ~int(
        PlanFlag.HAS_HOST_CODE | PlanFlag.VERSION_COMPATIBLE | PlanFlag.EXCLUDES_LEAN_RUNTIME
    ):
        raise PlanError(f"plan has unknown flags {flags:#x}")
    if not 1 <= count <= MAX_SECTIONS:
        raise PlanError(f"plan has {count} sections; a plan has 1 to {MAX_SECTIONS}")
    table_end = HEADER.size + SECTION.size * count
    if table_end > size:
        raise PlanError(
            f"plan truncated: the section table ends at byte {table_end} but the buffer has {size} bytes"
        )
    if crc32(plan[HEADER.size : table_end]) != table_crc:
        raise PlanError("plan section table is corrupted: its checksum does not match")
    sections: dict[SectionKind, Section] = {}
    for index in range(count):
        kind, alignment, offset, length, crc, reserved = SECTION.unpack_from(
            plan, HEADER.size + SECTION.size * index
        )
        if reserved:
            raise PlanError(f"section {index}'s reserved field is {reserved}, not zero")
        if kind not in SectionKind._value2member_map_:
            raise PlanError(f"section {index} has unknown kind {kind}")
        kind = SectionKind(kind)
        name = SECTION_NAMES[kind]
        if kind == SectionKind.KERNELS:
            raise PlanError("plan has a kernels section, which format version 1 does not define")
        if kind in sections:
            raise PlanError(f"plan has two '{name}' sections")
        if alignment < 1 or alignment > MAX_SECTION_ALIGNMENT or alignment & (alignment - 1):
            raise PlanError(f"section '{name}' has invalid alignment {alignment}")
        if offset % alignment:
            raise PlanError(f"section '{name}' at byte {offset} is not aligned to {alignment}")
        if offset < table_end:
            raise PlanError(f"section '{name}' starts at byte {offset}, inside the header or table")
        if offset + length > size:
            raise PlanError(
                f"plan truncated: section '{name}' ends at byte {offset + length} "
                f"but the buffer has {size} bytes"
            )
        sections[kind] = Section(kind, offset, length, crc)
    ordered = sorted(sections.values(), key=lambda s: s.offset)
    for first, second in itertools.pairwise(ordered):
        if first.offset + first.length > second.offset:
            raise PlanError(f"sections '{first.name}' and '{second.name}' overlap")
    _check_padding(plan, table_end, ordered)
    if SectionKind.METADATA not in sections:
        raise PlanError("plan has no metadata section")
    has_host_code = bool(flags & PlanFlag.HAS_HOST_CODE)
    if has_host_code != (SectionKind.HOST_CODE in sections):
        raise PlanError("the plan's host-code flag and its sections disagree")
    library_version = bytes(library).rstrip(b"\0").decode("ascii", "replace")
    return PlanHeader(version, PlanFlag(flags), library_version, sections)


def check_fixed_header(plan: memoryview) -> int:
    """Check the 64-byte header on its own (magic, version, checksum); the plan's file size.

    A stream reader uses this before reading the rest, so a damaged header never makes it
    read (or allocate) the size that header claims.
    """
    size = len(plan)
    if size < HEADER.size:
        raise PlanError(
            f"plan truncated: {size} bytes is shorter than the {HEADER.size}-byte header"
        )
    fields = HEADER.unpack_from(plan, 0)
    magic, version, header_size, _, _, file_size, _, _, header_crc, reserved = fields
    if magic != MAGIC:
        raise PlanError(f"not a tensorplan plan: the magic bytes are {bytes(magic)!r}")
    header_intact = crc32(plan[:HEADER_CRC_END]) == header_crc
    if version > FORMAT_VERSION:
        # a newer format may lay its header out differently, so the version comes first
        damage = (
            "" if header_intact else " (or the header is corrupted: its checksum does not match)"
        )
        raise PlanError(
            f"plan format version {version} is newer than this tensorplan supports "
            f"({FORMAT_VERSION}); rebuild the plan or upgrade tensorplan{damage}",
            incompatible=True,
        )
    if version < 1:
        raise PlanError(f"plan format version {version} is not valid")
    if not header_intact:
        raise PlanError("plan header is corrupted: its checksum does not match")
    if header_size != HEADER.size:
        raise PlanError(f"plan header size {header_size} is not {HEADER.size}")
    if any(reserved):
        raise PlanError("plan header's reserved bytes 56 to 63 are not zero")
    return file_size


@dataclass
class PlanContents:
    """Everything a plan holds, read and checked by `read_plan` before anything acts on it."""

    header: PlanHeader
    host_code: list[HostLibrary]
    program: Program | None
    """None when the plan runs in the lean runtime it embeds (`lean_runtime`)."""
    layout: dict[int, tuple[int, int]]
    """The constants' places in the weights section: value id -> (offset, nbytes)."""
    lean_runtime: HostLibrary | None = None
    """The embedded lean runtime of a version-compatible plan of another tensorplan version:
    its metadata is that version's to read, so `program` is None."""


def read_plan(
    plan: memoryview,
    library_version: str,
    host_code_allowed: bool = True,
    threads: int = 1,
    verify_weights: bool = True,
) -> PlanContents:
    """Read and check a whole plan in one call; PlanError naming the first problem.

    The host-code gate comes first: a plan with host code is refused (`incompatible`) unless
    `host_code_allowed`, before any byte of its host code is read. `verify_weights=False`
    leaves the weights' checksum to the caller, who computes it while uploading them.
    Nothing here infers shapes or runs a kernel: the work is linear in the plan's bytes.
    """
    header = read_header(plan)
    if header.flags & PlanFlag.HAS_HOST_CODE and not host_code_allowed:
        raise PlanError(
            "the plan has the HAS_HOST_CODE flag: it carries host code "
            f"({_host_code_names(plan, header)}), which this runtime refuses; set "
            "Runtime.engine_host_code_allowed = True to allow it",
            incompatible=True,
        )
    for kind, section in header.sections.items():
        if verify_weights or kind != SectionKind.WEIGHTS:
            verify_section(plan, section, threads)
    with paused_garbage_collection():
        metadata = _metadata(plan, header)
        checker = _Checker(metadata, header, plan)
        host_code = checker.host_code(_obj(metadata, "metadata").get("host_code", []))
        lean = [library for library in host_code if library.kind == LEAN_RUNTIME]
        if (
            lean
            and header.flags & PlanFlag.VERSION_COMPATIBLE
            and header.library_version != library_version
        ):
            return PlanContents(header, host_code, None, {}, lean[0])
        program, layout = checker.program(host_code)
    return PlanContents(header, host_code, program, layout)


def verify_section(plan: memoryview, section: Section, threads: int = 1) -> None:
    data = plan[section.offset : section.offset + section.length]
    if crc32(data, threads) != section.crc:
        raise PlanError(f"section '{section.name}' is corrupted: its checksum does not match")


def _host_code_names(plan: memoryview, header: PlanHeader) -> str:
    """The names the metadata gives the host-code libraries, read without touching the
    host-code section (for the refusal message); 'unnamed libraries' when they cannot be read."""
    try:
        entries = _obj(_metadata(plan, header), "metadata").get("host_code")
    except PlanError:
        entries = None
    if not isinstance(entries, list):
        entries = []
    names = [dict(entry).get("name") for entry in entries[:MAX_LIBRARIES] if type(entry) is tuple]
    names = [f"'{name[:MAX_NAME_LENGTH]}'" for name in names if isinstance(name, str)]
    return ", ".join(names) if names else "unnamed libraries"


def _metadata(plan: memoryview, header: PlanHeader) -> Any:
    """The metadata as strict JSON (RFC 8259): no NaN or Infinity.

    Objects come back as tuples of (key, value) pairs, which the checker turns into dicts
    (`_obj`), refusing a key given twice, as it reaches them: a C-made tuple costs less than a
    Python hook per object, and a list the checker refuses by its length (a million empty
    profiles, say) is never converted at all.
    """
    section = header.sections[SectionKind.METADATA]
    raw = plan[section.offset : section.offset + section.length]
    try:
        return json.loads(
            bytes(raw).decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=tuple
        )
    except (ValueError, RecursionError) as error:  # ValueError: bad UTF-8, JSON or huge ints
        raise PlanError(f"metadata is not valid JSON: {error}") from None


def _refuse_constant(token: str) -> None:
    raise ValueError(f"{token} is not a JSON number")


class _Checker:
    """Turns checked metadata into a Program; each check names the field that failed."""

    def __init__(self, metadata: Any, header: PlanHeader, plan: memoryview) -> None:
        self.metadata = metadata
        self.header = header
        self.plan = plan

    def program(self, host_code: list[HostLibrary]) -> tuple[Program, dict[int, tuple[int, int]]]:
        meta = _obj(self.metadata, "metadata")
        if meta.keys() != METADATA_KEYS:
            unknown = set(meta) - METADATA_KEYS
            if unknown:
                raise PlanError(f"metadata has unknown keys {sorted(unknown)}")
            raise PlanError(f"metadata lacks {sorted(METADATA_KEYS - set(meta))}")
        graph = Graph()
        graph.values = self.values(_list(meta["values"], "values"))
        count = len(graph.values)
        graph.inputs = _value_ids(meta["inputs"], count, "inputs")
        graph.outputs = _value_ids(meta["outputs"], count, "outputs")
        layout = self.constants(meta["constants"], graph)
        graph.nodes = self.nodes(_list(meta["nodes"], "nodes"), graph.values)
        self.check_dataflow(graph)
        profiles = self.profiles(meta["profiles"], graph)
        memory = self.memory(meta["memory"], graph)
        name = _str(meta["name"], "name")
        if not isinstance(meta["tf32"], bool):
            raise PlanError(f"tf32 must be true or false, got {meta['tf32']!r}")
        program = Program(
            name,
            graph,
            profiles,
            memory,
            int(self.header.flags),
            self.header.library_version,
            host_code,
            meta["tf32"],
        )
        return program, layout

    @staticmethod
    def values(items: list) -> list[Value]:
        """The values; a quick check of each, and a precise message for the first that fails."""
        values = []
        for index, pairs in enumerate(items):
            obj = dict(pairs) if type(pairs) is tuple else None
            if (
                obj is not None
                and len(obj) == len(pairs)
                and obj.keys() == VALUE_FIELDS
                and type(name := obj["name"]) is str
                and len(name) <= MAX_NAME_LENGTH
                and type(obj["dtype"]) is str
                and (dtype := DTYPES.get(obj["dtype"])) is not None
                and type(shape := obj["shape"]) is list
                and len(shape) <= MAX_RANK
                and all(type(d) is int and UNKNOWN <= d <= MAX_TENSOR_BYTES for d in shape)
            ):
                values.append(Value(name, dtype, tuple(shape)))
            else:
                values.append(_value(pairs, f"values[{index}]"))
        return values

    @staticmethod
    def nodes(items: list, values: list[Value]) -> list[Node]:
        count = len(values)
        nodes = []
        checked_last: dict[str, tuple[dict, dict]] = {}
        """Per op, the attrs of the last node and their checked form: layers of one kind
        often share their attributes, and equal dicts compare faster than they check."""
        for index, pairs in enumerate(items):
            obj = _obj(pairs, f"nodes[{index}]")
            if obj.keys() != NODE_FIELDS:
                raise PlanError(
                    f"nodes[{index}] must be an object with exactly the keys name, op, attrs, "
                    "inputs, outputs"
                )
            name, attrs, inputs = obj["name"], obj["attrs"], obj["inputs"]
            if type(name) is not str or len(name) > MAX_NAME_LENGTH:
                _str(name, f"nodes[{index}].name")
            op = REGISTRY.get(obj["op"]) if type(obj["op"]) is str else None
            if op is None:
                raise PlanError(f"nodes[{index}] (layer '{name}') uses unknown op {obj['op']!r}")
            last = checked_last.get(op.name)
            if last is not None and last[0] == attrs:
                attrs = last[1].copy()
            else:
                raw_attrs, where = attrs, f"nodes[{index}].attrs"
                try:
                    plain = {key: _plain(v, where) for key, v in _obj(attrs, where).items()}
                    checked = op.check_attrs(plain)
                except PlanError:
                    raise
                except Exception as error:  # a schema check must not crash on any data
                    raise PlanError(f"nodes[{index}] (layer '{name}'): {error}") from None
                checked_last[op.name] = (raw_attrs, checked)
                attrs = checked.copy()
            if type(inputs) is not list or not all(
                v is None or (type(v) is int and 0 <= v < count) for v in inputs
            ):
                _value_ids(inputs, count, f"nodes[{index}].inputs", optional=True)
            outputs = obj["outputs"]
            if type(outputs) is not list or not all(
                type(v) is int and 0 <= v < count for v in outputs
            ):
                _value_ids(outputs, count, f"nodes[{index}].outputs")
            low, high = op.num_inputs
            if not low <= len(inputs) <= high or None in inputs[:low]:
                raise PlanError(
                    f"nodes[{index}] (layer '{name}'): op '{op.name}' takes {low} to {high} inputs"
                )
            if op.num_outputs >= 0 and len(outputs) != op.num_outputs:
                raise PlanError(
                    f"nodes[{index}] (layer '{name}'): op '{op.name}' has {op.num_outputs} outputs"
                )
            if op.checks_structure:
                declared = [
                    None if v is None else TensorMeta(values[v].dtype, values[v].shape)
                    for v in inputs
                ]
                try:
                    op.check_structure(attrs, declared)
                except Exception as error:  # a structure check must not crash on any data
                    raise PlanError(f"nodes[{index}] (layer '{name}'): {error}") from None
            nodes.append(Node(name, op.name, attrs, list(inputs), outputs))
        return nodes

    def constants(self, items: Any, graph: Graph) -> dict[int, tuple[int, int]]:
        weights = self.header.sections.get(SectionKind.WEIGHTS)
        limit = weights.length if weights else 0
        inputs = set(graph.inputs)
        layout: dict[int, tuple[int, int]] = {}
        for index, item in enumerate(_list(items, "constants")):
            where = f"constants[{index}]"
            if weights is None:
                raise PlanError(
                    f"{where}: the metadata lists constants but the plan has no weights section"
                )
            obj = _obj(item, where)
            if set(obj) != {"value", "offset", "nbytes"}:
                raise PlanError(f"{where} must have exactly the keys value, offset, nbytes")
            value_id = _value_id(obj["value"], len(graph.values), f"{where}.value")
            offset = _int(obj["offset"], f"{where}.offset")
            nbytes = _int(obj["nbytes"], f"{where}.nbytes")
            value = graph.values[value_id]
            if value_id in layout or value_id in inputs:
                raise PlanError(f"{where}: value {value_id} ('{value.name}') is already defined")
            if UNKNOWN in value.shape:
                raise PlanError(f"{where}: constant '{value.name}' has a dynamic shape")
            expected = tensor_bytes(value.dtype, value.shape)
            if nbytes != expected:
                raise PlanError(
                    f"{where}: constant '{value.name}' has {nbytes} bytes, its shape needs {expected}"
                )
            if offset % CONSTANT_ALIGNMENT:
                raise PlanError(
                    f"{where}: offset {offset} is not a multiple of {CONSTANT_ALIGNMENT}"
                )
            if offset + nbytes > limit:
                raise PlanError(
                    f"{where}: constant '{value.name}' ends at byte {offset + nbytes} of the weights "
                    f"section, which has {limit} bytes"
                )
            layout[value_id] = (offset, nbytes)
            graph.constants[value_id] = None
            if nbytes <= MAX_HOST_VALUE_BYTES:
                start = weights.offset + offset
                graph.constants[value_id] = _host_copy(self.plan[start : start + nbytes], value)
        ranges = sorted(layout.values())
        for (a_start, a_size), (b_start, _) in itertools.pairwise(ranges):
            if a_start + a_size > b_start:
                raise PlanError(f"constants at weights offsets {a_start} and {b_start} overlap")
        if weights is not None:
            self.check_weights_padding(weights, ranges)
        return layout

    def check_weights_padding(self, weights: Section, ranges: list[tuple[int, int]]) -> None:
        """The bytes of the weights section that no constant covers are zero."""
        ends = [0] + [start + size for start, size in ranges]
        starts = [start for start, _ in ranges] + [weights.length]
        for gap_start, gap_end in zip(ends, starts, strict=True):
            gap = self.plan[weights.offset + gap_start : weights.offset + gap_end]
            nonzero = np.flatnonzero(np.frombuffer(gap, dtype=np.uint8))
            if len(nonzero):
                verify_section(self.plan, weights)  # damage is the likelier cause: say so
                raise PlanError(
                    f"the weights section is not zero at byte {gap_start + int(nonzero[0])}, "
                    "which no constant covers"
                )

    def check_dataflow(self, graph: Graph) -> None:
        defined = set(graph.inputs) | set(graph.constants)
        if len(set(graph.inputs)) != len(graph.inputs):
            raise PlanError("an engine input is listed twice")
        for node in graph.nodes:
            for index, value_id in enumerate(node.inputs):
                if value_id is not None and value_id not in defined:
                    raise PlanError(
                        f"layer '{node.name}' reads '{graph.values[value_id].name}' (input {index}) "
                        "before anything produces it"
                    )
            for value_id in node.outputs:
                if value_id in defined:
                    raise PlanError(
                        f"layer '{node.name}' writes '{graph.values[value_id].name}', which is already defined"
                    )
                defined.add(value_id)
        produced = {v for node in graph.nodes for v in node.outputs}
        for value_id in graph.outputs:
            if value_id not in produced:
                raise PlanError(
                    f"engine output '{graph.values[value_id].name}' is not produced by any layer"
                )
        if len(set(graph.outputs)) != len(graph.outputs):
            raise PlanError("an engine output is listed twice")
        names = [graph.values[v].name for v in graph.inputs + graph.outputs]
        if len(set(names)) != len(names):
            raise PlanError("engine input and output names are not unique")
        if not graph.outputs:
            raise PlanError("the engine has no outputs")

    def profiles(self, items: Any, graph: Graph) -> list[Profile]:
        inputs = {graph.values[v].name: graph.values[v] for v in graph.inputs}
        dynamic = {name for name, value in inputs.items() if UNKNOWN in value.shape}
        profiles = []
        hosts = None
        items = _list(items, "profiles")
        if len(items) > MAX_PROFILES:
            raise PlanError(f"the plan has {len(items)} profiles; at most {MAX_PROFILES}")
        for index, item in enumerate(items):
            where = f"profiles[{index}]"
            shapes, values = {}, {}
            for name, ranges in _obj(item, where).items():
                if name not in inputs:
                    raise PlanError(f"{where} names '{name}', which is not an engine input")
                ranges = _obj(ranges, f"{where}['{name}']")
                if name not in dynamic and VALUE_KEYS[0] not in ranges:
                    raise PlanError(
                        f"{where} gives shapes for input '{name}', which is neither dynamic nor "
                        "a shape tensor"
                    )
                if set(ranges) not in ({"min", "opt", "max"}, {"min", "opt", "max", *VALUE_KEYS}):
                    raise PlanError(
                        f"{where}['{name}'] must have exactly min, opt, max (and the values_ keys "
                        "for a shape tensor)"
                    )
                triple = tuple(
                    _dims(ranges[k], f"{where}['{name}'].{k}") for k in ("min", "opt", "max")
                )
                declared = inputs[name].shape
                for shape in triple:
                    if len(shape) != len(declared) or any(
                        d < 0 or (fixed != UNKNOWN and d != fixed)
                        for d, fixed in zip(shape, declared, strict=False)
                    ):
                        raise PlanError(
                            f"{where}: shape {list(shape)} does not fit input '{name}' {list(declared)}"
                        )
                if not all(a <= b <= c for a, b, c in zip(*triple, strict=True)):
                    raise PlanError(f"{where}: input '{name}' needs min <= opt <= max")
                if name in dynamic:
                    shapes[name] = triple
                if VALUE_KEYS[0] in ranges:
                    values[name] = self.shape_values(
                        ranges, triple, inputs[name], f"{where}['{name}']"
                    )
            if set(shapes) != dynamic:
                raise PlanError(
                    f"{where} must give shapes for exactly the dynamic inputs {sorted(dynamic)}"
                )
            if hosts is not None and set(values) != hosts:
                raise PlanError(f"{where} must give values for the shape tensors {sorted(hosts)}")
            hosts = set(values)
            profiles.append(Profile(shapes, values))
        if not profiles:
            raise PlanError("the plan has no optimization profile")
        if not dynamic and not hosts and len(profiles) != 1:
            raise PlanError(
                f"the plan has {len(profiles)} profiles, but an engine without dynamic or "
                "shape-tensor inputs has exactly one"
            )
        return profiles

    @staticmethod
    def shape_values(ranges: dict, shapes: tuple, value: Value, where: str) -> tuple:
        """The (min, opt, max) values of a shape-tensor input, checked against its shapes."""
        if value.dtype not in (DataType.INT32, DataType.INT64) or len(value.shape) > 1:
            raise PlanError(f"{where}: only 0-D or 1-D INT32/INT64 inputs can be shape tensors")
        triple = []
        for key, shape in zip(VALUE_KEYS, shapes, strict=True):
            items = _list(ranges[key], f"{where}.{key}")
            if len(items) != math.prod(shape) or len(items) > MAX_SHAPE_VALUES:
                raise PlanError(
                    f"{where}.{key} must have {math.prod(shape)} values "
                    f"(at most {MAX_SHAPE_VALUES})"
                )
            if not all(type(v) is int and -(1 << 63) <= v < 1 << 63 for v in items):
                raise PlanError(f"{where}.{key} must hold 64-bit integers")
            triple.append(tuple(items))
        if not all(a <= b <= c for a, b, c in zip(*triple, strict=False)):
            raise PlanError(f"{where}: the values need min <= opt <= max")
        return tuple(triple)

    def memory(self, item: Any, graph: Graph) -> MemoryPlan:
        obj = _obj(item, "memory")
        if not {"arena_size", "slots"} <= set(obj) <= {"arena_size", "slots", "views"}:
            raise PlanError("memory must have the keys arena_size, slots (and optionally views)")
        arena_size = _int(obj["arena_size"], "memory.arena_size")
        if arena_size > MAX_ARENA_BYTES:
            raise PlanError(f"memory.arena_size {arena_size} is larger than {MAX_ARENA_BYTES}")
        slots: dict[int, tuple[int, int]] = {}
        channels_last: set[int] = set()
        activations = {v for node in graph.nodes for v in node.outputs} - set(graph.outputs)
        for index, entry in enumerate(_list(obj["slots"], "memory.slots")):
            entry = _obj(entry, f"memory.slots[{index}]")
            if entry.keys() != SLOT_FIELDS and entry.keys() != SLOT_FORMAT_FIELDS:
                raise PlanError(
                    f"memory.slots[{index}] must be an object with the keys value, offset, size "
                    "(and optionally format)"
                )
            value_id, offset, size = entry["value"], entry["offset"], entry["size"]
            if type(value_id) is not int or value_id not in activations:
                raise PlanError(
                    f"memory.slots[{index}].value = {value_id!r} is not an activation (a "
                    "layer's output that is not an engine output)"
                )
            if value_id in slots:
                raise PlanError(
                    f"memory.slots[{index}]: '{graph.values[value_id].name}' has a second slot"
                )
            if "format" in entry:
                if entry["format"] != "HWC" or len(graph.values[value_id].shape) != 4:
                    raise PlanError(
                        f"memory.slots[{index}].format must be 'HWC', for a 4D tensor, got "
                        f"{entry['format']!r} for {list(graph.values[value_id].shape)}"
                    )
                channels_last.add(value_id)
            if type(offset) is not int or type(size) is not int or offset < 0 or size < 0:
                _int(offset, f"memory.slots[{index}].offset")
                _int(size, f"memory.slots[{index}].size")
            if offset % CONSTANT_ALIGNMENT or offset + size > arena_size:
                raise PlanError(
                    f"memory.slots[{index}]: bytes {offset} to {offset + size} do not fit the "
                    f"arena of {arena_size}"
                )
            slots[value_id] = (offset, size)
        memory = MemoryPlan(arena_size, slots, frozenset(channels_last))
        memory.views = self.views(obj.get("views", []), graph, memory)
        _check_slot_lifetimes(graph, memory)
        return memory

    def views(self, items: Any, graph: Graph, memory: MemoryPlan) -> dict[int, int]:
        """Shuffle outputs that are views: exactly what the builder's rule makes of them."""
        views: dict[int, int] = {}
        for index, pair in enumerate(_list(items, "memory.views")):
            where = f"memory.views[{index}]"
            if not isinstance(pair, list) or len(pair) != 2:
                raise PlanError(f"{where} must be a [value, source] pair")
            value_id, source = (_value_id(v, len(graph.values), where) for v in pair)
            views[value_id] = source
        io_or_constant = set(graph.inputs) | set(graph.outputs) | set(graph.constants)
        taken = set(views) & (io_or_constant | set(memory.slots))
        if taken:
            name = graph.values[min(taken)].name
            raise PlanError(f"memory.views: '{name}' has memory of its own; it cannot be a view")
        expected = shuffle_views(graph, set(views), memory.channels_last)
        for value_id, source in views.items():
            if expected.get(value_id) != source:
                raise PlanError(
                    f"memory.views: '{graph.values[value_id].name}' is not a view of "
                    f"'{graph.values[source].name}' (only reshapes of dense tensors and "
                    "transposes read by strided kernels are)"
                )
        return expected

    def host_code(self, items: Any) -> list[HostLibrary]:
        """The host-code libraries, copied out of their section and checksummed (as data:
        nothing of them is loaded here)."""
        section = self.header.sections.get(SectionKind.HOST_CODE)
        items = _list(items, "host_code")
        if section is not None and not items:
            raise PlanError("the plan has a host-code section but its metadata lists no host code")
        if len(items) > MAX_LIBRARIES:
            raise PlanError(f"host_code lists {len(items)} libraries; at most {MAX_LIBRARIES}")
        libraries = []
        for index, item in enumerate(items):
            where = f"host_code[{index}]"
            if section is None:
                raise PlanError(
                    f"{where}: metadata lists host code but the plan has no host-code section"
                )
            obj = _obj(item, where)
            if set(obj) != {"name", "kind", "offset", "nbytes", "sha256"}:
                raise PlanError(
                    f"{where} must have exactly the keys name, kind, offset, nbytes, sha256"
                )
            name = _str(obj["name"], f"{where}.name")
            kind = _str(obj["kind"], f"{where}.kind")
            if kind not in HOST_CODE_KINDS:
                raise PlanError(f"{where}: kind {kind!r} is not one of {list(HOST_CODE_KINDS)}")
            digest = obj["sha256"]
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise PlanError(f"{where}.sha256 must be 64 lowercase hexadecimal digits")
            offset = _int(obj["offset"], f"{where}.offset")
            end = offset + _int(obj["nbytes"], f"{where}.nbytes")
            if end > section.length:
                raise PlanError(
                    f"{where}: '{name}' ends at byte {end} of the host-code section, "
                    f"which has {section.length} bytes"
                )
            start = section.offset + offset
            library = HostLibrary(
                name, kind, bytes(self.plan[start : section.offset + end]), digest
            )
            if not library.intact:
                raise PlanError(
                    f"host-code library '{name}' is corrupted: its sha256 does not match"
                )
            libraries.append(library)
        return libraries


def _check_slot_lifetimes(graph: Graph, memory: MemoryPlan) -> None:
    """Activations alive at the same time (directly or through views) do not share arena
    bytes (O(n log n) sweep)."""
    slots, views = memory.slots, memory.views
    last_use = {}
    for index, node in enumerate(graph.nodes):
        for value_id in node.inputs:
            if value_id in views:
                value_id = memory.storage_of(value_id)
            if value_id in slots:
                last_use[value_id] = index
    expiring: dict[int, list[int]] = {}
    live: list[tuple[int, int, int]] = []  # (offset, end, value id), disjoint, sorted
    for index, node in enumerate(graph.nodes):
        for value_id in node.outputs:
            slot = slots.get(value_id)
            if slot is None or not slot[1]:
                continue
            offset, end = slot[0], slot[0] + slot[1]
            entry = (offset, end, value_id)
            position = bisect.bisect_left(live, entry)
            before = live[position - 1] if position else None
            after = live[position] if position < len(live) else None
            for neighbour in (before, after):
                if neighbour is not None and neighbour[0] < end and offset < neighbour[1]:
                    raise PlanError(
                        f"activations '{graph.values[neighbour[2]].name}' and "
                        f"'{graph.values[value_id].name}' are alive at layer '{node.name}' "
                        "but share bytes of the arena"
                    )
            live.insert(position, entry)
            expiring.setdefault(max(last_use.get(value_id, index), index), []).append(entry)
        for entry in expiring.pop(index, ()):
            del live[bisect.bisect_left(live, entry)]


def _check_padding(plan: memoryview, table_end: int, ordered: list[Section]) -> None:
    """Bytes outside the header, table and sections are zero: no byte of a plan goes unchecked."""
    start = table_end
    for end, next_start in [(s.offset, s.offset + s.length) for s in ordered] + [(len(plan), 0)]:
        nonzero = np.flatnonzero(np.frombuffer(plan[start:end], dtype=np.uint8))
        if len(nonzero):
            raise PlanError(f"plan padding is not zero at byte {start + int(nonzero[0])}")
        start = next_start


def _host_copy(data: memoryview, value: Value) -> torch.Tensor:
    """A small constant as a CPU tensor of its own (the plan buffer is not kept)."""
    raw = (
        torch.frombuffer(bytearray(data), dtype=torch.uint8)
        if len(data)
        else torch.empty(0, dtype=torch.uint8)
    )
    return raw.view(torch_dtype(value.dtype)).reshape(value.shape)


def _obj(item: Any, where: str) -> dict:
    """A JSON object of the metadata (a tuple of pairs, see `_metadata`) as a dict."""
    if type(item) is not tuple:
        raise PlanError(f"{where} must be a JSON object")
    obj = dict(item)
    if len(obj) != len(item):
        seen: set[str] = set()
        twice = next(key for key, _ in item if key in seen or seen.add(key))
        raise PlanError(f"{where}: key {twice!r} appears twice (JSON objects have unique keys)")
    return obj


def _plain(item: Any, where: str) -> Any:
    """An attribute value with its JSON objects as dicts, nested ones too (op schemas read
    plain data)."""
    if type(item) is tuple:
        return {key: _plain(value, where) for key, value in _obj(item, where).items()}
    if type(item) is list:
        return [_plain(value, where) for value in item]
    return item


def _list(item: Any, where: str) -> list:
    if not isinstance(item, list):
        raise PlanError(f"{where} must be a JSON list")
    if len(item) > MAX_ITEMS:
        raise PlanError(f"{where} has {len(item)} entries, more than {MAX_ITEMS}")
    return item


def _str(item: Any, where: str) -> str:
    if not isinstance(item, str) or len(item) > MAX_NAME_LENGTH:
        raise PlanError(f"{where} must be a string of at most {MAX_NAME_LENGTH} characters")
    return item


def _int(item: Any, where: str) -> int:
    if isinstance(item, bool) or not isinstance(item, int) or item < 0:
        raise PlanError(f"{where} must be a non-negative integer, got {item!r}")
    return item


def _dims(item: Any, where: str) -> tuple[int, ...]:
    dims = _list(item, where)
    if len(dims) > MAX_RANK:
        raise PlanError(f"{where} has rank {len(dims)}; at most {MAX_RANK}")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < UNKNOWN or d > MAX_TENSOR_BYTES:
            raise PlanError(f"{where} = {dims!r} has an invalid dimension")
    return tuple(dims)


def _value_ids(item: Any, count: int, where: str, optional: bool = False) -> list[int]:
    """A list of value ids (null allowed where `optional`, for absent op inputs)."""
    items = _list(item, where)
    for index, v in enumerate(items):
        if not (optional and v is None):
            _value_id(v, count, f"{where}[{index}]")
    return items


def _value(item: Any, where: str) -> Value:
    """A value entry, each field checked in turn (`values` tries a quicker check first)."""
    obj = _obj(item, where)
    if obj.keys() != VALUE_FIELDS:
        raise PlanError(f"{where} must have exactly the keys name, dtype, shape")
    dtype = obj["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise PlanError(f"{where}.dtype {dtype!r} is not a supported type")
    return Value(
        _str(obj["name"], f"{where}.name"), DTYPES[dtype], _dims(obj["shape"], f"{where}.shape")
    )


def _value_id(item: Any, count: int, where: str) -> int:
    if type(item) is not int or not 0 <= item < count:
        raise PlanError(f"{where} = {item!r} is not a value id (the plan has {count} values)")
    return item
