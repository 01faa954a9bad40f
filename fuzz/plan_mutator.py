"""The plan target's mutator: edits that keep every CRC-32 valid, so that a mutated plan meets
the reader's checks of its metadata rather than its checksums; raw byte damage the rest of the
time. Plans are taken apart and put back together with tests/plan/planedit.py."""

from __future__ import annotations

import copy
import functools
import json
import random
from collections.abc import Callable
from typing import Any

from tests.plan import planedit

import tensorplan as trt
from tensorplan.ops import REGISTRY
from tensorplan.plan.format import PlanError
from tensorplan.plan.reader import read_header

from .values import ODD_FLOATS, ODD_STRINGS, odd_int, structured_or_raw

RAW_DAMAGE = 0.15
"""The share of mutations that damage bytes anywhere, checksums left as they fall."""

UNREADABLE = (ValueError, RecursionError)
"""What planedit raises for metadata that is not one section of JSON (JSON and UTF-8 errors are
ValueErrors; nesting deeper than Python's recursion limit is a RecursionError)."""


def mutate_plan(data: bytes, max_size: int, seed: int) -> bytes:
    """atheris's custom mutator: `edit_plan`, or libFuzzer's byte mutations (values.structured_or_raw)."""
    return structured_or_raw(data, max_size, seed, edit_plan, RAW_DAMAGE)


def edit_plan(plan: bytes, rng: random.Random) -> bytes | None:
    """`plan` with one edit of a kind picked at random, every checksum recomputed; None when
    `plan` cannot be taken apart (its header or section table is damaged, or its metadata is
    not JSON)."""
    edit = rng.choices(PLAN_EDITS, weights=[weight for _, weight in PLAN_EDITS])[0][0]
    try:
        read_header(memoryview(plan))  # planedit trusts the section table
        return edit(plan, rng)
    except (PlanError, *UNREADABLE):
        return None


def edit_metadata(plan: bytes, rng: random.Random) -> bytes:
    """One to three edits of the metadata's JSON tree."""
    document: Any = planedit.metadata(plan)
    for _ in range(rng.randint(1, 3)):
        if not isinstance(document, dict) or rng.random() < 0.01:
            document = _odd_json(rng, document)
            continue
        edit = rng.choices(JSON_EDITS, weights=[weight for _, weight in JSON_EDITS])[0][0]
        edit(document, rng)
    return planedit.with_metadata(plan, json.dumps(document, separators=(",", ":")).encode())


def edit_metadata_text(plan: bytes, rng: random.Random) -> bytes:
    """Damage to the metadata's text (JSON syntax, UTF-8, nesting, long numbers)."""
    (section,) = [s for s in planedit.sections(plan) if s.kind == planedit.METADATA]
    text = bytearray(section.data)
    start = rng.randrange(len(text) + 1)
    end = min(len(text), start + rng.randint(1, 16))
    kind = rng.randrange(4)
    if kind == 0:
        text[start:end] = bytes(rng.choice(b'{}[]:,"0123456789-.eE \\nutfl') for _ in range(2))
    elif kind == 1:
        del text[start:end]
    elif kind == 2:
        text[start:start] = text[start:end]
    else:
        text[start:start] = rng.choice(TEXT_TOKENS)
    return planedit.with_metadata(plan, bytes(text))


def edit_weights(plan: bytes, rng: random.Random) -> bytes:
    """The weights section overwritten in places, cut short, grown, or added when absent."""
    parts = planedit.sections(plan)
    weights = [part for part in parts if part.kind == planedit.WEIGHTS]
    if not weights:
        parts.append(planedit.Section(planedit.WEIGHTS, 4096, bytes(rng.choice((1, 256, 4096)))))
    else:
        data = bytearray(weights[0].data)
        kind = rng.randrange(3)
        if kind == 0 and data:
            start = rng.randrange(len(data))
            data[start : start + 16] = bytes([rng.choice((0x00, 0x7F, 0x80, 0xFF))]) * 16
        elif kind == 1:
            del data[rng.randrange(len(data) + 1) :]
        else:
            data += bytes(rng.choice((1, 255, 256, 4096)))
        weights[0].data = bytes(data)
    return _reassembled(plan, parts)


def edit_layout(plan: bytes, rng: random.Random) -> bytes:
    """A header field or section-table entry set to an odd value, or the sections reordered,
    duplicated or dropped, CRCs valid."""
    kind = rng.randrange(3)
    if kind == 0:
        name = rng.choice(("format_version", "flags", "section_count", "file_size"))
        return planedit.with_header(plan, **{name: odd_int(rng) % (1 << 32)})
    if kind == 1:
        index = rng.randrange(planedit.header(plan)["section_count"])
        name = rng.choice(("kind", "alignment", "offset", "length"))
        return planedit.with_entry(plan, index, **{name: odd_int(rng) % (1 << 32)})
    parts = planedit.sections(plan)
    index = rng.randrange(len(parts))
    if rng.random() < 0.5:
        parts.insert(rng.randrange(len(parts) + 1), parts[index])
    else:
        del parts[index]
    rng.shuffle(parts)
    return _reassembled(plan, parts)


PLAN_EDITS: list[tuple[Callable[[bytes, random.Random], bytes], int]] = [
    (edit_metadata, 75),
    (edit_metadata_text, 10),
    (edit_weights, 7),
    (edit_layout, 8),
]

TEXT_TOKENS = (
    b"null",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b'"\\ud800"',
    b"\xff\xfe",
    b"9" * 5000,
    b"[" * 100_000,
    b'{"":0}',
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
)
"""Tokens the metadata text damage inserts: JSON's non-standard numbers, a lone surrogate,
bytes that are not UTF-8, more digits than Python parses (4300), nesting past the recursion
limit."""


# -- edits of the JSON tree -----------------------------------------------------------------


def _replace_value(document: dict, rng: random.Random) -> None:
    """Any value replaced: by an odd one, or by a copy of another value of the document."""
    if (slot := _pick_slot(document, rng)) is None:
        return
    container, key = slot
    container[key] = _odd_json(rng, document)


def _change_number(document: dict, rng: random.Random) -> None:
    numbers = [
        (c, k) for c, k in _slots(document) if type(c[k]) is int and not isinstance(c[k], bool)
    ]
    if numbers:
        container, key = rng.choice(numbers)
        container[key] = odd_int(rng, container[key])


def _delete_item(document: dict, rng: random.Random) -> None:
    if (slot := _pick_slot(document, rng)) is None:
        return
    container, key = slot
    del container[key]


def _duplicate_item(document: dict, rng: random.Random) -> None:
    """A list item repeated, or a dict entry copied under another key of the document."""
    if (slot := _pick_slot(document, rng)) is None:
        return
    container, key = slot
    if isinstance(container, list):
        container.insert(rng.randrange(len(container) + 1), copy.deepcopy(container[key]))
    else:
        container[rng.choice(_keys(document))] = copy.deepcopy(container[key])


def _swap_items(document: dict, rng: random.Random) -> None:
    """Two values of one list or object exchanged."""
    if (slot := _pick_slot(document, rng)) is None:
        return
    container, key = slot
    other = rng.choice(
        list(container.keys()) if isinstance(container, dict) else range(len(container))
    )
    container[key], container[other] = container[other], container[key]


def _add_key(document: dict, rng: random.Random) -> None:
    objects = [document] + [c[k] for c, k in _slots(document) if isinstance(c[k], dict)]
    name = rng.choice([*_keys(document), "unknown"])
    rng.choice(objects)[name] = _odd_json(rng, document)


def _edit_attr(document: dict, rng: random.Random) -> None:
    """A node attribute changed, removed, or added under a name another node's op uses."""
    nodes = _dicts(document.get("nodes"))
    if not nodes:
        return
    node = rng.choice(nodes)
    attrs = node.get("attrs")
    if not isinstance(attrs, dict):
        node["attrs"] = _odd_json(rng, document)
        return
    names = sorted({name for other in nodes for name in _dict(other.get("attrs"))})
    name = rng.choice([*names, "unknown"])
    value = attrs.get(name)
    if rng.random() < 0.2:
        attrs.pop(name, None)
    elif isinstance(value, int) and not isinstance(value, bool):
        attrs[name] = odd_int(rng, value)
    elif isinstance(value, list) and value and rng.random() < 0.7:
        _edit_list(value, rng)
    else:
        attrs[name] = _odd_json(rng, document)


def _change_dtype(document: dict, rng: random.Random) -> None:
    values = _dicts(document.get("values"))
    if values:
        names = [dtype.name for dtype in trt.DataType]
        rng.choice(values)["dtype"] = rng.choice([*names, "float32", "NONE", 1, None])


def _edit_dims(document: dict, rng: random.Random) -> None:
    """A shape of a value or a profile, or a shape tensor's value range, edited."""
    dims = [v["shape"] for v in _dicts(document.get("values")) if isinstance(v.get("shape"), list)]
    for profile in _dicts(document.get("profiles")):
        for entry in _dicts(list(profile.values())):
            dims += [d for d in entry.values() if isinstance(d, list)]
    if dims:
        _edit_list(rng.choice(dims), rng)


def _edit_placement(document: dict, rng: random.Random) -> None:
    """An offset or size of a constant, a memory slot or the arena; or a view's pair."""
    memory = _dict(document.get("memory"))
    fields = [(memory, "arena_size")] if "arena_size" in memory else []
    for entry in _dicts(document.get("constants")) + _dicts(memory.get("slots")):
        fields += [(entry, key) for key in ("offset", "nbytes", "size", "value") if key in entry]
    for view in memory.get("views", []) if isinstance(memory.get("views"), list) else []:
        if isinstance(view, list) and view:
            fields.append((view, rng.randrange(len(view))))
    if fields:
        container, key = rng.choice(fields)
        value = container[key]
        container[key] = odd_int(rng, value if type(value) is int else None)


def _edit_profiles(document: dict, rng: random.Random) -> None:
    """A profile repeated, dropped or emptied, or an input's entry moved between profiles."""
    profiles = document.get("profiles")
    if not isinstance(profiles, list) or not profiles:
        document["profiles"] = [{}] * rng.choice((0, 2, 1025))
        return
    index = rng.randrange(len(profiles))
    kind = rng.randrange(4)
    if kind == 0:
        profiles.insert(index, copy.deepcopy(profiles[index]))
    elif kind == 1:
        del profiles[index]
    elif kind == 2:
        profiles[index] = {}
    elif isinstance(profiles[index], dict) and profiles[index]:
        name = rng.choice(sorted(profiles[index]))
        entry = profiles[index].pop(name)
        rng.choice(_dicts(profiles))[rng.choice([name, "unknown"])] = entry


def _change_op(document: dict, rng: random.Random) -> None:
    nodes = _dicts(document.get("nodes"))
    if nodes:
        rng.choice(nodes)["op"] = rng.choice([*_op_names(), "unknown", ""])


def _rewire(document: dict, rng: random.Random) -> None:
    """A node's or the engine's inputs or outputs pointed elsewhere, or lengthened or shortened."""
    lists = [document.get("inputs"), document.get("outputs")]
    for node in _dicts(document.get("nodes")):
        lists += [node.get("inputs"), node.get("outputs")]
    lists = [ids for ids in lists if isinstance(ids, list)]
    if lists:
        _edit_list(rng.choice(lists), rng)


JSON_EDITS: list[tuple[Callable[[dict, random.Random], None], int]] = [
    (_replace_value, 12),
    (_change_number, 12),
    (_delete_item, 6),
    (_duplicate_item, 6),
    (_swap_items, 5),
    (_add_key, 3),
    (_edit_attr, 16),
    (_change_dtype, 6),
    (_edit_dims, 10),
    (_edit_placement, 8),
    (_edit_profiles, 5),
    (_change_op, 4),
    (_rewire, 7),
]


# -- helpers ----------------------------------------------------------------------------------


def _edit_list(items: list, rng: random.Random) -> None:
    """An item changed to an odd value or a neighbour, or one added or removed; the list
    made longer than a reader allows, rarely."""
    kind = rng.randrange(5)
    if kind == 0 and items:
        index = rng.randrange(len(items))
        near = items[index] if type(items[index]) is int else None
        items[index] = odd_int(rng, near)
    elif kind == 1 and items:
        del items[rng.randrange(len(items))]
    elif kind == 2:
        items.insert(rng.randrange(len(items) + 1), rng.choice((-1, 0, 1, None)))
    elif kind == 3 and items:
        items[rng.randrange(len(items))] = rng.choice((None, -1, "1", 1.5, [], True))
    else:
        items.extend([1] * rng.choice((1, 8, 65)))


def _odd_json(rng: random.Random, document: Any) -> Any:
    """An odd JSON value: null, a boolean, an odd number or string, an empty or nested
    container, or a copy of a value found in `document`."""
    kind = rng.randrange(8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice((True, False))
    if kind == 2:
        return odd_int(rng)
    if kind == 3:
        return rng.choice(ODD_FLOATS)
    if kind == 4:
        return rng.choice(ODD_STRINGS)
    if kind == 5:
        return rng.choice(([], {}, [[[]]], {"a": {"b": {"c": []}}}, [None] * 9, list(range(64))))
    slots = _slots(document) if isinstance(document, (dict, list)) else []
    if not slots:
        return {}
    container, key = rng.choice(slots)
    return copy.deepcopy(container[key])


def _slots(document: dict | list) -> list[tuple[Any, Any]]:
    """Every (container, key) pair of the document below its root."""
    slots: list[tuple[Any, Any]] = []
    stack = [document]
    while stack:
        node = stack.pop()
        for key in node if isinstance(node, dict) else range(len(node)):
            slots.append((node, key))
            if isinstance(node[key], (dict, list)):
                stack.append(node[key])
    return slots


def _pick_slot(document: dict, rng: random.Random) -> tuple[Any, Any] | None:
    slots = _slots(document)
    return rng.choice(slots) if slots else None


def _keys(document: dict) -> list[str]:
    """The object keys found anywhere in the document, sorted (for a reproducible choice)."""
    return sorted({key for c, key in _slots(document) if isinstance(c, dict)} | {"name"})


def _dicts(items: Any) -> list[dict]:
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _dict(item: Any) -> dict:
    return item if isinstance(item, dict) else {}


def _reassembled(plan: bytes, parts: list[planedit.Section]) -> bytes:
    old = planedit.header(plan)
    return planedit.assemble(parts, flags=old["flags"], library_version=old["library_version"])


@functools.cache
def _op_names() -> list[str]:
    return sorted(REGISTRY)
