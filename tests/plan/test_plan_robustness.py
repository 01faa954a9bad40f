"""Damaged and hostile plans: every one is refused with one reported error, never a crash.

Each case goes through `Runtime.deserialize_cuda_engine` and must return None, report
exactly one error in TensorRT's form, name the problem, and finish quickly. Checksums are
recomputed (planedit) wherever a case means to reach a deeper check than the CRCs.
"""

from __future__ import annotations

import json
import re
import tracemalloc
import zlib

import numpy as np
import planedit
import pytest
from plan_cases import CASE_PYTHON_BYTES, reference, refuse, valid_plan
from planedit import HAS_HOST_CODE, HOST_CODE, KERNELS, METADATA, WEIGHTS, Section

import tensorplan as trt
from helpers import run


def test_the_valid_plan_loads_and_computes(logger):
    plan = valid_plan()
    assert 4096 < len(plan) < 8192
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    np.testing.assert_allclose(run(engine, {"x": x})["y"], reference(x), rtol=1e-6)
    assert logger.errors == []


def test_every_truncation_is_refused(logger):
    plan = valid_plan()
    runtime = trt.Runtime(logger)
    for size in range(len(plan)):
        detail = refuse(plan[:size], logger, runtime=runtime)
        assert "truncated" in detail, (size, detail)
        assert str(size) in detail, (size, detail)


def test_random_bit_flips_are_refused(logger):
    plan = valid_plan()
    runtime = trt.Runtime(logger)
    rng = np.random.default_rng(20240601)
    details = set()
    for bit in rng.choice(len(plan) * 8, size=400, replace=False):
        damaged = bytearray(plan)
        damaged[bit // 8] ^= 1 << (bit % 8)
        # a version field flipped to a higher number reads as a newer format
        incompatible = int.from_bytes(damaged[8:12], "little") > 1
        detail = refuse(
            bytes(damaged),
            logger,
            runtime=runtime,
            code=trt.ErrorCodeTRT.FAILED_INITIALIZATION if incompatible else 1,
            category="API Usage Error" if incompatible else "Serialization",
        )
        details.add(re.sub(r"\d+|b'.*'", "N", detail))
    assert any("metadata" in d and "checksum" in d for d in details)
    assert any("weights" in d and "checksum" in d for d in details)


def test_a_flipped_bit_in_every_byte_is_refused(logger):
    """One flip per byte position: padding and reserved bytes included."""
    plan = valid_plan()
    runtime = trt.Runtime(logger)
    for position in range(len(plan)):
        if 8 <= position < 12:
            continue  # the version field: see test_future_format_version
        damaged = bytearray(plan)
        damaged[position] ^= 1 << (position % 8)
        refuse(bytes(damaged), logger, runtime=runtime)


def test_wrong_magic(logger):
    detail = refuse(b"GIF89a" + valid_plan()[6:], logger)
    assert "not a tensorplan plan" in detail
    assert "magic" in detail


def test_future_format_version_names_both_versions(logger):
    plan = planedit.with_header(valid_plan(), format_version=2)
    detail = refuse(plan, logger, trt.ErrorCodeTRT.FAILED_INITIALIZATION, "API Usage Error")
    assert "version 2" in detail
    assert "(1)" in detail
    assert "corrupted" not in detail


def test_a_damaged_version_field_says_it_may_be_corruption(logger):
    plan = bytearray(valid_plan())
    plan[9] = 7  # version 1793, header checksum left as it was
    detail = refuse(bytes(plan), logger, trt.ErrorCodeTRT.FAILED_INITIALIZATION, "API Usage Error")
    assert "version 1793" in detail
    assert "corrupted" in detail


HEADER_CASES = {
    "version 0": ({"format_version": 0}, "version 0 is not valid"),
    "header size": ({"header_size": 128}, "header size 128"),
    "file size too large": ({"file_size": 1 << 40}, "truncated"),
    "file size too small": ({"file_size": 4096}, "past its end"),
    "unknown flags": ({"flags": 0x80}, "unknown flags 0x80"),
    "no sections": ({"section_count": 0}, "0 sections"),
    "too many sections": ({"section_count": 17}, "17 sections"),
    "absurd section count": ({"section_count": 1 << 31}, "sections"),
    "reserved bytes": ({"reserved": b"\x01" + bytes(7)}, "reserved"),
    "header checksum": ({"header_crc": 12345}, "header is corrupted"),
    "table checksum": ({"table_crc": 12345}, "section table is corrupted"),
}


@pytest.mark.parametrize(("fields", "message"), HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_header_fields_are_checked(logger, fields, message):
    fix_crc = "header_crc" not in fields
    detail = refuse(planedit.with_header(valid_plan(), fix_crc=fix_crc, **fields), logger)
    assert message in detail


TABLE_CASES = {
    "offset past the end": (1, {"offset": 1 << 40}, "ends at byte 1099511628048"),
    "length past the end": (1, {"length": 1 << 62}, "truncated: section 'weights' ends"),
    "huge offset and length": (0, {"offset": (1 << 64) - 8, "length": (1 << 64) - 1}, "ends at"),
    "offset in the table": (0, {"offset": 64}, "inside the header or table"),
    "misaligned": (0, {"offset": 129}, "not aligned to 8"),
    "alignment 0": (0, {"alignment": 0}, "invalid alignment 0"),
    "alignment 3": (0, {"alignment": 3}, "invalid alignment 3"),
    "alignment 2^20": (1, {"alignment": 1 << 20}, "invalid alignment 1048576"),
    "unknown kind": (1, {"kind": 9}, "unknown kind 9"),
    "kernels": (1, {"kind": KERNELS}, "kernels section"),
    "two metadata sections": (1, {"kind": METADATA}, "two 'metadata' sections"),
    "host code without the flag": (1, {"kind": HOST_CODE}, "host-code flag"),
    "no metadata": (0, {"kind": HOST_CODE}, "no metadata section"),
    "overlap": (1, {"alignment": 8, "offset": 256}, "overlap"),
    "section checksum": (0, {"crc": 12345}, "section 'metadata' is corrupted"),
    "reserved": (1, {"reserved": 1}, "reserved"),
}


@pytest.mark.parametrize(
    ("index", "fields", "message"), TABLE_CASES.values(), ids=TABLE_CASES.keys()
)
def test_section_table_entries_are_checked(logger, index, fields, message):
    detail = refuse(planedit.with_entry(valid_plan(), index, **fields), logger)
    assert message in detail


def test_padding_between_sections_must_be_zero(logger):
    plan = bytearray(valid_plan())
    metadata = planedit.table(plan)[0]
    plan[metadata["offset"] + metadata["length"]] = 0x20  # a space after the JSON
    detail = refuse(bytes(plan), logger)
    assert "padding" in detail
    assert str(metadata["offset"] + metadata["length"]) in detail


def test_a_plan_without_a_weights_section_but_with_constants(logger):
    parts = [s for s in planedit.sections(valid_plan()) if s.kind != WEIGHTS]
    detail = refuse(planedit.assemble(parts), logger)
    assert "no weights section" in detail


def _set(path: str, value: object):
    """An edit that sets metadata[path] (dotted, with list indices) to `value`."""

    def edit(meta: dict) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        target = meta
        for key in parents:
            target = target[key]
        target[last] = value

    return edit


def _second_constant_at_zero(meta: dict) -> None:
    meta["constants"][1]["offset"] = meta["constants"][0]["offset"]


def _node_reads_a_later_value(meta: dict) -> None:
    meta["nodes"][0]["inputs"][0] = meta["nodes"][2]["outputs"][0]


def _overlapping_live_slots(meta: dict) -> None:
    first, second = meta["memory"]["slots"][:2]
    second["offset"] = first["offset"]


def _slot_for_input(meta: dict) -> None:
    meta["memory"]["slots"].append({"value": meta["inputs"][0], "offset": 0, "size": 256})


def _view_with_a_slot(meta: dict) -> None:
    meta["memory"]["views"] = [[meta["nodes"][1]["outputs"][0], meta["nodes"][0]["outputs"][0]]]


def _view_of_an_activation_layer(meta: dict) -> None:
    """The activation layer's output claimed as a view of its input: only shuffles make views."""
    _view_with_a_slot(meta)
    value = meta["nodes"][1]["outputs"][0]
    meta["memory"]["slots"] = [s for s in meta["memory"]["slots"] if s["value"] != value]


def _swap_profile_min_max(meta: dict) -> None:
    shapes = meta["profiles"][0]["x"]
    shapes["min"], shapes["max"] = shapes["max"], shapes["min"]


def _huge_profile(meta: dict) -> None:
    meta["profiles"][0]["x"]["max"] = [1 << 39, 4]


def _lie_about_a_dtype(meta: dict) -> None:
    meta["values"][meta["nodes"][0]["outputs"][0]]["dtype"] = "HALF"


def _lie_about_a_shape(meta: dict) -> None:
    meta["values"][meta["outputs"][0]]["shape"] = [-1, 5]


def _inconsistent_graph(meta: dict) -> None:
    """x becomes (-1, -1), so at profile shapes (n, 3) it no longer broadcasts with w1."""
    meta["values"][0]["shape"] = [-1, -1]
    for key in ("min", "opt", "max"):
        meta["profiles"][0]["x"][key] = [2, 3]


def _host_code_listed(meta: dict) -> None:
    meta["host_code"] = [{"name": "lib.so", "kind": "library", "offset": 0, "nbytes": 1}]


def _absurd_count(meta: dict) -> None:
    meta["values"] = [0] * 1_000_001


METADATA_CASES = {
    "unknown key": (_set("evil", 1), "unknown keys ['evil']"),
    "missing key": (lambda m: m.pop("memory"), "lacks ['memory']"),
    "empty": (lambda m: m.clear(), "lacks"),
    "huge dim": (_set("values.0.shape", [1 << 41, 4]), "invalid dimension"),
    "rank 9": (_set("values.0.shape", [1] * 9), "rank 9"),
    "dim below -1": (_set("values.0.shape", [-2, 4]), "invalid dimension"),
    "float dim": (_set("values.0.shape", [1.5, 4]), "invalid dimension"),
    "NaN dim": (_set("values.0.shape", [float("nan"), 4]), "NaN is not a JSON number"),
    "unknown dtype": (_set("values.0.dtype", "COMPLEX"), "'COMPLEX' is not a supported type"),
    "long name": (_set("values.0.name", "x" * 5000), "at most 4096 characters"),
    "absurd count": (_absurd_count, "more than 1000000"),
    "value id out of range": (_set("inputs", [99]), "inputs[0] = 99 is not a value id"),
    "bool value id": (_set("outputs", [True]), "is not a value id"),
    "duplicate input": (_set("inputs", [0, 0]), "listed twice"),
    "unknown op": (_set("nodes.0.op", "os.system"), "unknown op 'os.system'"),
    "unknown attr": (_set("nodes.0.attrs.evil", 1), "unknown attributes ['evil']"),
    "bad attr type": (_set("nodes.0.attrs.op", "SUM"), "attribute 'op'"),
    "attr out of range": (_set("nodes.0.attrs.op", 99), "attribute 'op'"),
    "nested attr": (_set("nodes.1.attrs.alpha", [[[[1]]]]), "attribute 'alpha'"),
    "too few node inputs": (_set("nodes.0.inputs", [0]), "takes 2 to 2 inputs"),
    "too many node outputs": (_set("nodes.1.outputs", [3, 4]), "has 1 outputs"),
    "reads an undefined value": (_node_reads_a_later_value, "before anything produces it"),
    "writes an input": (_set("nodes.0.outputs", [0]), "already defined"),
    "output not produced": (_set("outputs", [1]), "not produced by any layer"),
    "no outputs": (_set("outputs", []), "no outputs"),
    "negative constant offset": (_set("constants.0.offset", -256), "non-negative integer"),
    "misaligned constant": (_set("constants.0.offset", 8), "not a multiple of 256"),
    "constant past the weights": (_set("constants.1.offset", 4096), "ends at byte 4112"),
    "constant of the wrong size": (_set("constants.0.nbytes", 32), "its shape needs 16"),
    "overlapping constants": (_second_constant_at_zero, "overlap"),
    "constant is an input": (_set("constants.0.value", 0), "already defined"),
    "negative slot offset": (_set("memory.slots.0.offset", -256), "non-negative integer"),
    "slot outside the arena": (_set("memory.slots.0.offset", 1 << 20), "do not fit the arena"),
    "overlapping live slots": (_overlapping_live_slots, "share bytes"),
    "unknown slot format": (_set("memory.slots.0.format", "CHW32"), "format must be 'HWC'"),
    "HWC slot of a 2D tensor": (_set("memory.slots.0.format", "HWC"), "for a 4D tensor"),
    "unknown slot key": (_set("memory.slots.0.evil", 1), "optionally format"),
    "second slot": (
        lambda m: m["memory"]["slots"].append(dict(m["memory"]["slots"][0])),
        "second slot",
    ),
    "malformed view": (_set("memory.views", [[1]]), "must be a [value, source] pair"),
    "view with a slot": (_view_with_a_slot, "has memory of its own"),
    "view made by a non-shuffle": (_view_of_an_activation_layer, "is not a view of"),
    "slot for an input": (_slot_for_input, "is not an activation"),
    "absurd arena": (_set("memory.arena_size", 1 << 50), "larger than"),
    "profile min > max": (_swap_profile_min_max, "min <= opt <= max"),
    "profile rank": (_set("profiles.0.x.opt", [2]), "does not fit input 'x'"),
    "profile of a non-input": (_set("profiles.0.w", {}), "not an engine input"),
    "no profile": (_set("profiles", []), "no optimization profile"),
    "profile without the dynamic input": (_set("profiles", [{}]), "exactly the dynamic inputs"),
    "host code listed without the flag": (_host_code_listed, "no host-code section"),
}


@pytest.mark.parametrize(("edit", "message"), METADATA_CASES.values(), ids=METADATA_CASES.keys())
def test_metadata_schema_is_checked(logger, edit, message):
    plan = planedit.with_metadata(valid_plan(), edit)
    tracemalloc.start()
    try:
        detail = refuse(plan, logger)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message in detail
    assert peak < CASE_PYTHON_BYTES


RUN_TIME_CASES = {
    "missing memory slot": (_set("memory.slots", []), (2, 4), "has no memory"),
    "slot too small": (
        _set("memory.slots.0.size", 0),
        (2, 4),
        "more than the 0 of its memory slot",
    ),
    "huge profile": (_huge_profile, (1 << 39, 4), "of its memory slot"),
    "declared dtype is a lie": (_lie_about_a_dtype, (2, 4), "declared HALF"),
    "declared shape is a lie": (_lie_about_a_shape, (2, 4), "declared FLOAT [-1, 5]"),
    "inconsistent graph": (_inconsistent_graph, (2, 3), "layer '"),
}


@pytest.mark.parametrize(
    ("edit", "shape", "message"), RUN_TIME_CASES.values(), ids=RUN_TIME_CASES.keys()
)
def test_what_depends_on_shapes_is_checked_before_any_kernel_runs(logger, edit, shape, message):
    """The reader does not infer shapes; the context does, and refuses to run a plan whose
    layers break what the plan declares at those shapes (one reported error, no kernel)."""
    engine = trt.Runtime(logger).deserialize_cuda_engine(planedit.with_metadata(valid_plan(), edit))
    assert engine is not None, logger.errors
    context = engine.create_execution_context()
    assert context.set_input_shape("x", shape)
    assert not context.execute_v2([0, 0])
    (error,) = logger.errors
    assert error.startswith("IExecutionContext::enqueueV3: Error Code 3: API Usage Error (")
    assert message in error


RAW_METADATA_CASES = {
    "not UTF-8": (b"\xff\xfe", "not valid JSON"),
    "not JSON": (b"{'name': 1}", "not valid JSON"),
    "a list": (b"[]", "metadata must be a JSON object"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    "a huge integer": (b'{"name": ' + b"9" * 10_000 + b"}", "not valid JSON"),
    "Infinity": (b'{"name": Infinity}', "Infinity is not a JSON number"),
    "-Infinity": (b'{"name": -Infinity}', "-Infinity is not a JSON number"),
    "a key twice": (b'{"name": "a", "tf32": true, "name": "b"}', "key 'name' appears twice"),
}


@pytest.mark.parametrize(
    ("raw", "message"), RAW_METADATA_CASES.values(), ids=RAW_METADATA_CASES.keys()
)
def test_metadata_that_is_not_the_schema(logger, raw, message):
    assert message in refuse(planedit.with_metadata(valid_plan(), raw), logger)


@pytest.mark.parametrize("key", ["dtype", "offset", "op"])
def test_a_key_given_twice_deep_in_the_metadata_is_refused(logger, key):
    """The last value would win in Python's json; the format says JSON objects have unique
    keys, so a reader cannot be told one thing and another reader something else."""
    raw = json.dumps(planedit.metadata(valid_plan()))
    first = raw.index(f'"{key}": ')
    twice = raw[:first] + f'"{key}": 0, ' + raw[first:]
    detail = refuse(planedit.with_metadata(valid_plan(), twice.encode()), logger)
    assert f"key '{key}' appears twice" in detail


def test_rewritten_plans_stay_valid(logger):
    """The editing helper itself changes nothing unless asked: its edits are what tests see."""
    plan = valid_plan()
    assert planedit.with_metadata(plan, lambda meta: None) == plan
    assert planedit.with_entry(plan, 1) == plan
    assert planedit.with_header(plan) == plan
    assert zlib.crc32(plan[:52]) == planedit.header(plan)["header_crc"]


def test_many_threads_verify_the_same_checksums(logger):
    plan = bytearray(valid_plan())
    runtime = trt.Runtime(logger)
    runtime.max_threads = 8
    assert runtime.deserialize_cuda_engine(bytes(plan)) is not None
    plan[-1] ^= 1
    assert "weights' is corrupted" in refuse(bytes(plan), logger, runtime=runtime)


def test_an_engine_whose_sections_are_reordered_still_loads(logger):
    """The table, not the writer's habits, says where sections are."""
    metadata, weights = planedit.sections(valid_plan())
    plan = planedit.assemble([Section(WEIGHTS, 4096, weights.data), metadata])
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(run(engine, {"x": x})["y"], reference(x), rtol=1e-6)
    assert logger.errors == []


def test_host_code_flag_without_a_section_is_refused(logger):
    plan = planedit.assemble(planedit.sections(valid_plan()), flags=HAS_HOST_CODE)
    assert "host-code flag" in refuse(plan, logger)
