"""The independent spec reader refuses plans damaged in each way the specification forbids
(damaged with valid checksums, so the deeper rule is what refuses them) and accepts the
plans tensorplan writes."""

from __future__ import annotations

import functools
import hashlib
import json
import zlib

import planedit
import pytest
from plan_cases import valid_plan
from planedit import HAS_HOST_CODE, HOST_CODE, METADATA, WEIGHTS, Section

import tensorplan as trt
from helpers import build_plan, keep_layers_apart
from plan.spec_reader import OPS_PAGE, SpecError, check_plan, parse_op_reference
from tensorplan.ops import REGISTRY


def define_static(network: trt.INetworkDefinition) -> None:
    """y = exp(relu(x)) for x of shape (2, 4): one activation with a static slot."""
    x = network.add_input("x", trt.float32, (2, 4))
    y = network.add_activation(x, trt.ActivationType.RELU).get_output(0)
    y = network.add_unary(y, trt.UnaryOperation.EXP).get_output(0)
    network.mark_output(y)
    keep_layers_apart(network)


@functools.cache
def static_plan() -> bytes:
    return bytes(build_plan(define_static))


def define_shape_tensor(network: trt.INetworkDefinition) -> None:
    """A fill whose dims are the values of the shape-tensor input `dims`."""
    dims = network.add_input("dims", trt.int32, (2,))
    fill = network.add_fill((0, 0), trt.FillOperation.LINSPACE, trt.float32)
    fill.set_input(0, dims)
    fill.alpha, fill.beta = 0.0, 1.0
    network.mark_output(fill.get_output(0))


def shape_tensor_profile(builder: trt.Builder, config: trt.IBuilderConfig) -> None:
    profile = builder.create_optimization_profile()
    profile.set_shape_input("dims", (1, 1), (2, 3), (4, 4))
    config.add_optimization_profile(profile)


@functools.cache
def shape_tensor_plan() -> bytes:
    return bytes(build_plan(define_shape_tensor, configure=shape_tensor_profile))


def with_host_code(plan: bytes) -> bytes:
    """`plan` carrying one Python module in a host-code section, as the spec places it."""
    library = b"def get_plugin_creators():\n    return []\n"
    meta = planedit.metadata(plan)
    meta["host_code"] = [
        {
            "name": "plugins.py",
            "kind": "python-module",
            "offset": 0,
            "nbytes": len(library),
            "sha256": hashlib.sha256(library).hexdigest(),
        }
    ]
    parts = [
        Section(METADATA, 8, json.dumps(meta).encode()) if s.kind == METADATA else s
        for s in planedit.sections(plan)
    ]
    return planedit.assemble([*parts, Section(HOST_CODE, 8, library)], flags=HAS_HOST_CODE)


@pytest.mark.parametrize(
    "plan",
    [valid_plan, static_plan, shape_tensor_plan, lambda: with_host_code(valid_plan())],
    ids=["dynamic", "static", "shape-tensor", "host-code"],
)
def test_accepts_the_plans_tensorplan_writes(plan) -> None:
    check_plan(plan())


def edit(change):
    """A damage: the metadata changed by `change(meta)` (every checksum valid)."""
    return lambda plan: planedit.with_metadata(plan, change)


def raw_metadata(replace: tuple[str, str]):
    """A damage: a piece of the metadata text replaced."""
    old, new = replace

    def damage(plan: bytes) -> bytes:
        text = json.dumps(planedit.metadata(plan), separators=(",", ":"))
        assert old in text
        return planedit.with_metadata(plan, text.replace(old, new, 1).encode())

    return damage


def weights_byte(plan: bytes) -> bytes:
    """A non-zero byte between the two constants of the weights section."""
    parts = planedit.sections(plan)
    for part in parts:
        if part.kind == WEIGHTS:
            part.data = part.data[:100] + b"\x01" + part.data[101:]
    return planedit.assemble(parts, library_version=planedit.header(plan)["library_version"])


def overlapping_weights(plan: bytes) -> bytes:
    """The weights entry moved onto the metadata's bytes, its checksum made to match."""
    start, length = planedit.table(plan)[0]["offset"], planedit.table(plan)[1]["length"]
    crc = zlib.crc32(plan[start : start + length])
    return planedit.with_entry(plan, 1, offset=start, alignment=8, crc=crc)


def setter(path: str, value):
    """A metadata edit setting the item at `path` (keys and indices separated by dots)."""

    def change(meta):
        *parents, last = (int(k) if k.isdigit() else k for k in path.split("."))
        for key in parents:
            meta = meta[key]
        meta[last] = value

    return change


def deleter(path: str):
    def change(meta):
        *parents, last = (int(k) if k.isdigit() else k for k in path.split("."))
        for key in parents:
            meta = meta[key]
        del meta[last]

    return change


def swap_first_nodes(meta) -> None:
    meta["nodes"][0], meta["nodes"][1] = meta["nodes"][1], meta["nodes"][0]


DAMAGES = {
    "magic": (
        lambda p: planedit.with_header(p, magic=b"\x89TPLAN\n\n"),
        "magic bytes b'\\x89TPLAN\\n\\n'",
    ),
    "version": (lambda p: planedit.with_header(p, format_version=2), "format_version 2"),
    "flags": (lambda p: planedit.with_header(p, flags=8), "unknown flags 0x8"),
    "header crc": (
        lambda p: planedit.with_header(p, fix_crc=False, flags=2),
        "header_crc does not match",
    ),
    "header reserved": (
        lambda p: planedit.with_header(p, reserved=b"\x01" + bytes(7)),
        "header bytes 56 to 63 are not zero",
    ),
    "file size": (lambda p: p + bytes(8), "file_size 4368 but the plan has 4376 bytes"),
    "table reserved": (
        lambda p: planedit.with_entry(p, 1, reserved=1),
        "section 1's reserved field is 1",
    ),
    "kernels section": (
        lambda p: planedit.with_entry(p, 1, kind=3),
        "section 1 has kind 3, which version 1 does not define",
    ),
    "alignment": (lambda p: planedit.with_entry(p, 1, alignment=3), "section 1 has alignment 3"),
    "section crc": (lambda p: planedit.with_entry(p, 1, crc=0), "section 1's crc does not match"),
    "overlap": (overlapping_weights, "sections overlap"),
    "host-code flag": (
        lambda p: planedit.with_header(p, flags=HAS_HOST_CODE),
        "the HAS_HOST_CODE flag and the host-code section disagree",
    ),
    "NaN": (
        raw_metadata(('"alpha":0.0', '"alpha":NaN')),
        "metadata is not strict JSON: NaN is not JSON",
    ),
    "Infinity": (
        raw_metadata(('"beta":0.0', '"beta":-Infinity')),
        "metadata is not strict JSON: -Infinity is not JSON",
    ),
    "duplicate key": (
        raw_metadata(('"tf32":false', '"tf32":false,"tf32":true')),
        "metadata is not strict JSON: an object has a key twice: ['name', 'tf32', 'tf32', "
        "'values', 'nodes', 'inputs', 'outputs', 'constants', 'profiles', 'memory', 'host_code']",
    ),
    "missing key": (
        edit(deleter("tf32")),
        "metadata has the keys ['constants', 'host_code', 'inputs', 'memory', 'name', "
        "'nodes', 'outputs', 'profiles', 'values']",
    ),
    "unknown dtype": (
        edit(setter("values.0.dtype", "FLOAT8")),
        "values[0].dtype 'FLOAT8' is not a dtype",
    ),
    "rank": (edit(setter("values.0.shape", [1] * 9)), "values[0] has rank 9"),
    "dimension": (edit(setter("values.0.shape", [-2, 4])), "values[0]: dims [-2, 4]"),
    "unknown op": (
        edit(setter("nodes.0.op", "conv")),
        "nodes[0] uses op 'conv', which docs/ops.md does not list",
    ),
    "unknown attribute": (
        edit(setter("nodes.0.attrs.axis", 1)),
        "nodes[0]: op 'elementwise' has no attribute 'axis'",
    ),
    "null attribute": (
        edit(setter("nodes.1.attrs.alpha", None)),
        "nodes[1]: attribute 'alpha' of op 'activation' may not be null",
    ),
    "enum value": (
        edit(setter("nodes.1.attrs.type", 99)),
        "nodes[1]: attribute 'type' of op 'activation' is 99",
    ),
    "input count": (
        edit(setter("nodes.2.inputs", [3, 3])),
        "nodes[2]: op 'unary' takes 1 to 1 inputs, got [3, 3]",
    ),
    "dataflow order": (edit(swap_first_nodes), "'(Unnamed Layer* 3) [Activation]' reads 2 early"),
    "defined twice": (
        edit(setter("nodes.1.outputs", [2])),
        "'(Unnamed Layer* 3) [Activation]' writes 2, already defined",
    ),
    "constant alignment": (
        edit(setter("constants.1.offset", 64)),
        "constants[1]: offset 64 is unaligned",
    ),
    "constant size": (edit(setter("constants.1.nbytes", 12)), "constants[1]: 12 bytes for 16"),
    "constants overlap": (
        edit(setter("constants.1.offset", 0)),
        "constants overlap at weights byte 0",
    ),
    "weights padding": (weights_byte, "weights padding"),
    "no profile": (edit(setter("profiles", [])), "0 profiles"),
    "too many profiles": (
        edit(lambda meta: meta["profiles"].extend(meta["profiles"] * 1024)),
        "1025 profiles",
    ),
    "profile misses an input": (
        edit(setter("profiles.0", {})),
        "profiles[0] lists [], not the dynamic and shape-tensor inputs",
    ),
    "profile order": (
        edit(setter("profiles.0.x.min", [4, 4])),
        "profiles[0]['x']: min <= opt <= max",
    ),
    "profile fit": (
        edit(setter("profiles.0.x.max", [8, 5])),
        "profiles[0]['x']: shape [8, 5] does not fit [-1, 4]",
    ),
    "slot alignment": (
        edit(setter("memory.slots.1.offset", 128)),
        "memory.slots[1]: offset 128 is unaligned",
    ),
    "slot bounds": (edit(setter("memory.arena_size", 256)), "memory.slots[1] ends past the arena"),
    "slot for an output": (
        edit(setter("memory.slots.0.value", 6)),
        "memory.slots[0] is for 6",
    ),
    "second slot": (
        edit(setter("memory.slots.2.value", 2)),
        "memory.slots[2]: a second slot for 2",
    ),
    "slot format": (
        edit(setter("memory.slots.0.format", "HWC")),
        "memory.slots[0].format",
    ),
    "live slots share bytes": (
        edit(setter("memory.slots.1.offset", 0)),
        "activations 2 and 3 are alive together but share bytes",
    ),
    "view of no shuffle": (
        edit(lambda meta: meta["memory"].update(slots=meta["memory"]["slots"][1:], views=[[2, 0]])),
        "memory.views[0] is not a shuffle of 0",
    ),
    "host code without its section": (
        edit(
            setter(
                "host_code",
                [{"name": "a", "kind": "python-module", "offset": 0, "nbytes": 0, "sha256": "0"}],
            )
        ),
        "host_code and the host-code section disagree",
    ),
}


@pytest.mark.parametrize("damage, message", DAMAGES.values(), ids=DAMAGES.keys())
def test_refuses_each_damage(damage, message) -> None:
    with pytest.raises(SpecError) as refusal:
        check_plan(damage(valid_plan()))
    assert str(refusal.value) == message


STATIC_DAMAGES = {
    "two profiles": (
        edit(lambda meta: meta["profiles"].append({})),
        "a static engine has 2 profiles, not one",
    ),
    "activation without memory": (edit(setter("memory.slots", [])), "activation 1 has no memory"),
    "slot too small": (edit(setter("memory.slots.0.size", 16)), "memory.slots[0] is too small"),
}


@pytest.mark.parametrize("damage, message", STATIC_DAMAGES.values(), ids=STATIC_DAMAGES.keys())
def test_refuses_each_damage_of_a_static_plan(damage, message) -> None:
    with pytest.raises(SpecError) as refusal:
        check_plan(damage(static_plan()))
    assert str(refusal.value) == message


SHAPE_TENSOR_DAMAGES = {
    "values missing": (
        edit(deleter("profiles.0.dims.values_max")),
        "profiles[0]['dims'] has only ['values_min', 'values_opt'] of the value ranges",
    ),
    "value count": (
        edit(setter("profiles.0.dims.values_opt", [2, 3, 1])),
        "profiles[0]['dims'].values_opt has 3",
    ),
    "value order": (
        edit(setter("profiles.0.dims.values_min", [3, 1])),
        "profiles[0]['dims']: values order",
    ),
    "other shape tensors": (
        edit(lambda meta: meta["profiles"].append({})),
        "profiles[1] gives values for other shape tensors",
    ),
}


@pytest.mark.parametrize(
    "damage, message", SHAPE_TENSOR_DAMAGES.values(), ids=SHAPE_TENSOR_DAMAGES.keys()
)
def test_refuses_each_damage_of_a_shape_tensor_plan(damage, message) -> None:
    with pytest.raises(SpecError) as refusal:
        check_plan(damage(shape_tensor_plan()))
    assert str(refusal.value) == message


def test_refuses_padding_that_is_not_zero() -> None:
    plan = valid_plan()
    metadata, weights = planedit.table(plan)
    end = metadata["offset"] + metadata["length"]
    with pytest.raises(SpecError) as refusal:
        check_plan(plan[:end] + b"\x01" + plan[end + 1 :])
    assert str(refusal.value) == f"padding between bytes {end} and {weights['offset']} is not zero"


def test_refuses_host_code_whose_checksum_does_not_match() -> None:
    plan = planedit.with_metadata(
        with_host_code(valid_plan()), setter("host_code.0.sha256", "0" * 64)
    )
    with pytest.raises(SpecError) as refusal:
        check_plan(plan)
    assert str(refusal.value) == "host_code[0]: sha256 does not match"


def test_understands_every_attribute_description_of_the_op_reference() -> None:
    ops = parse_op_reference(OPS_PAGE.read_text(encoding="utf-8"))
    assert sorted(ops) == sorted(REGISTRY)
    unknown = [
        f"{op}.{name}"
        for op, spec in ops.items()
        for name, (check, _) in spec.attributes.items()
        if check is None
    ]
    assert unknown == [], "spec_reader.attribute_check does not know these descriptions"


def test_checks_attribute_values_as_the_op_reference_describes_them() -> None:
    ops = parse_op_reference(OPS_PAGE.read_text(encoding="utf-8"))
    check, nullable = ops["cast"].attributes["round_mode"]
    assert (check("up"), check("sideways"), nullable) == (True, False, False)
    check, nullable = ops["cast"].attributes["from_type"]
    assert (check(1), check(1000), check(True), nullable) == (True, False, False, True)
    check, _ = ops["convolution"].attributes["stride_nd"]
    assert (check([]), check([2, 2]), check([1]), check([0, 1])) == (True, True, False, False)
    assert (ops["plugin_v3"].inputs, ops["plugin_v3"].outputs) == ((0, 128), None)
    assert (ops["elementwise"].inputs, ops["elementwise"].outputs) == ((2, 2), 1)
