"""Serialize a Program into plan bytes (docs/plan-format.md)."""

from __future__ import annotations

import json
import zlib

import torch

from ..ir import Graph, Profile, Program
from ..ops import get_op
from ..version import __version__
from .format import (
    CONSTANT_ALIGNMENT,
    FORMAT_VERSION,
    HEADER,
    HEADER_CRC_END,
    MAGIC,
    SECTION,
    VALUE_KEYS,
    WEIGHTS_ALIGNMENT,
    PlanFlag,
    SectionKind,
    align,
)


def write_plan(program: Program) -> bytes:
    """The plan of `program`; every constant of its graph must hold its data."""
    graph = program.graph
    constants, weights_size = _layout_constants(program)
    metadata = {
        "name": program.name,
        "tf32": program.tf32,
        "values": [
            {"name": v.name, "dtype": v.dtype.name, "shape": list(v.shape)} for v in graph.values
        ],
        "nodes": [
            {
                "name": node.name,
                "op": node.op,
                "attrs": get_op(node.op).encode_attrs(node.attrs),
                "inputs": list(node.inputs),
                "outputs": list(node.outputs),
            }
            for node in graph.nodes
        ],
        "inputs": list(graph.inputs),
        "outputs": list(graph.outputs),
        "constants": [
            {"value": value_id, "offset": offset, "nbytes": nbytes}
            for value_id, (offset, nbytes) in constants.items()
        ],
        "profiles": [_profile(graph, profile) for profile in program.profiles],
        "memory": {
            "arena_size": program.memory.arena_size,
            "slots": [
                {"value": value_id, "offset": offset, "size": size}
                | ({"format": "HWC"} if value_id in program.memory.channels_last else {})
                for value_id, (offset, size) in program.memory.slots.items()
            ],
            "views": [[value_id, source] for value_id, source in program.memory.views.items()],
        },
        "host_code": [
            {
                "name": library.name,
                "kind": library.kind,
                "offset": offset,
                "nbytes": len(library.data),
                "sha256": library.sha256,
            }
            for library, offset in _layout_host_code(program)
        ],
    }
    metadata_bytes = json.dumps(metadata, separators=(",", ":")).encode()

    sections: list[tuple[SectionKind, int, int]] = [(SectionKind.METADATA, 8, len(metadata_bytes))]
    if constants:
        sections.append((SectionKind.WEIGHTS, WEIGHTS_ALIGNMENT, weights_size))
    host_code_size = sum(len(library.data) for library in program.host_code)
    if program.host_code:
        sections.append((SectionKind.HOST_CODE, 8, host_code_size))
    offset = HEADER.size + SECTION.size * len(sections)
    placed = []
    for kind, alignment, length in sections:
        offset = align(offset, alignment)
        placed.append((kind, alignment, offset, length))
        offset += length
    plan = bytearray(offset)
    view = memoryview(plan)

    metadata_offset = placed[0][2]
    view[metadata_offset : metadata_offset + len(metadata_bytes)] = metadata_bytes
    starts = {kind: start for kind, _, start, _ in placed}
    if constants:
        for value_id, (constant_offset, nbytes) in constants.items():
            start = starts[SectionKind.WEIGHTS] + constant_offset
            view[start : start + nbytes] = _raw_bytes(graph.constants[value_id])
    for library, library_offset in _layout_host_code(program):
        start = starts[SectionKind.HOST_CODE] + library_offset
        view[start : start + len(library.data)] = library.data

    table = b"".join(
        SECTION.pack(kind, alignment, start, length, zlib.crc32(view[start : start + length]), 0)
        for kind, alignment, start, length in placed
    )
    view[HEADER.size : HEADER.size + len(table)] = table
    header = HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        HEADER.size,
        _flags(program),
        len(placed),
        len(plan),
        __version__.encode(),
        zlib.crc32(table),
        0,
        bytes(8),
    )
    header_crc = zlib.crc32(header[:HEADER_CRC_END])
    view[: HEADER.size] = header[:HEADER_CRC_END] + header_crc.to_bytes(4, "little") + bytes(8)
    return bytes(plan)


def _layout_constants(program: Program) -> tuple[dict[int, tuple[int, int]], int]:
    """Offsets (256-aligned) and sizes of the constants in the weights section."""
    layout = {}
    offset = 0
    for value_id in sorted(program.graph.constants):
        tensor = program.graph.constants[value_id]
        nbytes = tensor.numel() * tensor.element_size()
        offset = align(offset, CONSTANT_ALIGNMENT)
        layout[value_id] = (offset, nbytes)
        offset += nbytes
    return layout, offset


def _layout_host_code(program: Program) -> list[tuple]:
    """Each host-code library with its offset in the host-code section (back to back)."""
    layout, offset = [], 0
    for library in program.host_code:
        layout.append((library, offset))
        offset += len(library.data)
    return layout


def _flags(program: Program) -> int:
    """The program's flags, with HAS_HOST_CODE saying whether a host-code section follows."""
    flags = program.flags & ~int(PlanFlag.HAS_HOST_CODE)
    return flags | int(PlanFlag.HAS_HOST_CODE) if program.host_code else flags


def _raw_bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's bytes in C order (bf16 and fp8 as bit patterns)."""
    flat = tensor.detach().contiguous().reshape(-1)
    if flat.numel() == 0:  # an empty tensor of a wide type cannot be viewed as bytes
        return memoryview(b"")
    return memoryview(flat.view(torch.uint8).numpy()).cast("B")


def _profile(graph: Graph, profile: Profile) -> dict[str, dict[str, list[int]]]:
    """Per input, its shape range; shape-tensor inputs also carry their value ranges."""
    entries = {
        name: {"min": list(lo), "opt": list(opt), "max": list(hi)}
        for name, (lo, opt, hi) in profile.shapes.items()
    }
    declared = {graph.values[v].name: list(graph.values[v].shape) for v in graph.inputs}
    for name, triple in profile.values.items():
        entry = entries.setdefault(name, dict.fromkeys(("min", "opt", "max"), declared[name]))
        for key, values in zip(VALUE_KEYS, triple, strict=True):
            entry[key] = list(values)
    return entries
