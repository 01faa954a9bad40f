"""Tactic selection and the timing cache: ITimingCache's API as TensorRT's, and builds that time
the attention op's SDPA backends, keep the fastest in the plan and remember it in the cache.

The builds run on the execution device: on CPU here (MATH and FLASH_ATTENTION can run), on
CUDA where there is one (the CUDA backends compete, timed with CUDA events).
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import tensorplan as trt
from helpers import load, run
from plan.planedit import with_metadata
from tensorplan.device import execution_device
from tensorplan.ops.fused import AttentionBackend

RNG = np.random.default_rng(11)
MATRIX = trt.MatrixOperation
Q, K, V = (RNG.standard_normal((2, 3, 5, 8)).astype(np.float32) for _ in range(3))
INVALID = trt.TimingCacheValue(trt.TimingCacheValue.INVALID_TACTIC_HASH, -1.0)
TIMINGS = re.compile(r"layer '(.+)' \(attention\): (.+); chose (\w+)$")
FROM_CACHE = re.compile(r"layer '(.+)' \(attention\): tactic (\w+) from the timing cache")


# -- serialized caches, written from the format's description (builder/timing.py) ------------


def cache_bytes(device: str, torch_version: str, entries: list, version: int = 1) -> bytes:
    """A serialized cache: magic, format version, CRC-32 and length of the JSON body, body."""
    body = json.dumps({"device": device, "torch": torch_version, "entries": entries}).encode()
    return struct.pack("<8sIIQ", b"TPTCACHE", version, zlib.crc32(body), len(body)) + body


def key_fields(op="attention", shape=(2, 3, 5, 8), scale=1.0, device="dev"):
    return {
        "op": op,
        "inputs": [["FLOAT", list(shape)]] * 3,
        "attrs": {"scale": scale, "key_transposed": False, "heads_last": False},
        "tf32": False,
        "device": device,
    }


def here() -> tuple[str, str]:
    """The device name and torch version a new cache records (read from one)."""
    fresh = trt.Builder(trt.Logger()).create_builder_config().create_timing_cache(b"")
    document = json.loads(bytes(fresh.serialize())[24:])
    return document["device"], document["torch"]


@pytest.fixture
def config(logger):
    return trt.Builder(logger).create_builder_config()


def load_cache(config, device: str, entries: list) -> trt.ITimingCache:
    cache = config.create_timing_cache(cache_bytes(device, torch.__version__, entries))
    assert cache is not None
    return cache


def entry(fields, tactic, ms):
    return {"key": fields, "tactic": tactic, "ms": ms}


# -- the API ----------------------------------------------------------------------------------


def test_an_empty_cache_and_a_missing_key(config, logger):
    cache = config.create_timing_cache(b"")
    assert isinstance(cache, trt.ITimingCache)
    assert cache.queryKeys() == []
    key = trt.TimingCacheKey.parse(json.dumps(key_fields()))
    assert cache.query(key) == INVALID
    assert INVALID.tacticHash == 2**64 - 1
    assert config.get_timing_cache() is None
    assert logger.errors == []


def test_serialize_and_create_round_trip_keys_and_values_exactly(config):
    entries = [entry(key_fields(scale=0.1), 1, 0.123456789012), entry(key_fields(), 0, 2.5)]
    cache = load_cache(config, "dev", entries)
    again = config.create_timing_cache(cache.serialize())
    assert [str(k) for k in again.queryKeys()] == [str(k) for k in cache.queryKeys()]
    assert [again.query(k) for k in again.queryKeys()] == [
        trt.TimingCacheValue(1, 0.123456789012),
        trt.TimingCacheValue(0, 2.5),
    ]
    assert bytes(again.serialize()) == bytes(cache.serialize())
    assert isinstance(cache.serialize(), trt.IHostMemory)


def test_key_text_round_trips_and_is_canonical():
    key = trt.TimingCacheKey.parse(json.dumps(key_fields(scale=1 / 3)))
    assert trt.TimingCacheKey.parse(str(key)) == key
    assert str(trt.TimingCacheKey.parse(str(key))) == str(key)
    spaced = json.dumps(key_fields(scale=1 / 3), indent=4)
    assert trt.TimingCacheKey.parse(spaced) == key
    assert hash(trt.TimingCacheKey.parse(spaced)) == hash(key)
    assert json.loads(str(key))["attrs"]["scale"] == 1 / 3
    assert trt.TimingCacheKey.parse(json.dumps(key_fields(scale=0.5))) != key


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", json.dumps({**key_fields(), "extra": 1}), "[" * 100_000],
    ids=["empty", "not json", "a list", "an extra field", "deep nesting"],
)
def test_key_text_that_is_not_a_key(text):
    with pytest.raises(ValueError, match=r"TimingCacheKey|timing-cache key"):
        trt.TimingCacheKey.parse(text)


def test_update_replaces_deletes_on_nan_and_refuses_invalid_values(config):
    first, second = key_fields(scale=0.1), key_fields(scale=0.2)
    cache = load_cache(config, "dev", [entry(first, 1, 1.0), entry(second, 0, 2.0)])
    key, other = cache.queryKeys()
    assert cache.update(key, trt.TimingCacheValue(0, 0.5))
    assert cache.query(key) == trt.TimingCacheValue(0, 0.5)
    for invalid in (
        trt.TimingCacheValue(1, -1.0),
        trt.TimingCacheValue(1, math.inf),
        trt.TimingCacheValue(trt.TimingCacheValue.INVALID_TACTIC_HASH, 1.0),
    ):
        assert not cache.update(key, invalid)
    assert cache.query(key) == trt.TimingCacheValue(0, 0.5)
    assert cache.update(key, trt.TimingCacheValue(1, math.nan))
    assert cache.queryKeys() == [other]
    assert cache.query(key) == INVALID
    assert not cache.update(key, trt.TimingCacheValue(1, 1.0)), "a missing key is not added"
    assert cache.queryKeys() == [other]


def test_reset_empties_the_cache(config):
    cache = load_cache(config, "dev", [entry(key_fields(), 1, 1.0)])
    assert cache.reset()
    assert cache.queryKeys() == []
    assert json.loads(bytes(cache.serialize())[24:])["entries"] == []


def test_combine_adds_missing_entries_and_skips_conflicting_ones(config, logger):
    device, version = here()
    shared, theirs = key_fields(scale=0.1), key_fields(scale=0.2)
    ours = config.create_timing_cache(cache_bytes(device, version, [entry(shared, 1, 1.0)]))
    other = config.create_timing_cache(
        cache_bytes(device, version, [entry(shared, 0, 0.5), entry(theirs, 0, 3.0)])
    )
    assert ours.combine(other, False)
    values = {str(k): ours.query(k) for k in ours.queryKeys()}
    assert values == {
        str(trt.TimingCacheKey.parse(json.dumps(shared))): trt.TimingCacheValue(1, 1.0),
        str(trt.TimingCacheKey.parse(json.dumps(theirs))): trt.TimingCacheValue(0, 3.0),
    }
    assert len(other.queryKeys()) == 2, "the input cache is not changed"
    assert logger.errors == []


def test_combine_refuses_another_devices_cache_unless_told_to_ignore_the_mismatch(config, logger):
    device, version = here()
    ours = config.create_timing_cache(cache_bytes(device, version, []))
    foreign = config.create_timing_cache(
        cache_bytes("Some Other GPU", version, [entry(key_fields(device="Some Other GPU"), 2, 1.0)])
    )
    assert not ours.combine(foreign, False)
    assert ours.queryKeys() == []
    (error,) = logger.errors
    assert error.startswith("ITimingCache::combine: Error Code 3: API Usage Error (")
    assert "'Some Other GPU'" in error and f"'{device}'" in error and "ignore_mismatch" in error
    assert ours.combine(foreign, True)
    assert ours.queryKeys() == foreign.queryKeys()
    older = config.create_timing_cache(cache_bytes(device, "1.0.0", []))
    assert not ours.combine(older, False), "another torch version is a mismatch too"


def test_set_timing_cache_checks_the_verification_header(config, logger):
    device, version = here()
    cache = config.create_timing_cache(cache_bytes(device, version, []))
    assert config.set_timing_cache(cache, False)
    assert config.get_timing_cache() is cache
    foreign = config.create_timing_cache(cache_bytes("Some Other GPU", version, []))
    assert not config.set_timing_cache(foreign, False)
    (error,) = logger.errors
    assert error.startswith("IBuilderConfig::setTimingCache: Error Code 3: API Usage Error (")
    assert "'Some Other GPU'" in error
    assert config.get_timing_cache() is cache, "a refused cache is not attached"
    assert config.set_timing_cache(foreign, True)
    assert config.get_timing_cache() is foreign
    assert not config.set_timing_cache(None, True)
    assert "expected an ITimingCache, got NoneType" in logger.errors[-1]
    config.reset()
    assert config.get_timing_cache() is None


def _body(text: bytes) -> bytes:
    return struct.pack("<8sIIQ", b"TPTCACHE", 1, zlib.crc32(text), len(text)) + text


VALID = cache_bytes("dev", "2", [entry(key_fields(), 1, 1.0)])
CORRUPT = {
    "short": (b"TPTC", "shorter than the 24-byte header"),
    "bad magic": (b"XPTCACHE" + VALID[8:], "bad magic"),
    "newer version": (cache_bytes("dev", "2", [], version=2), "format version 2"),
    "truncated body": (VALID[:-1], "body bytes"),
    "flipped byte": (VALID[:40] + bytes([VALID[40] ^ 1]) + VALID[41:], "checksum"),
    "not UTF-8": (_body(b"\xff\xfe"), "not JSON"),
    "not JSON": (_body(b"{'a': 1}"), "not JSON"),
    "deep nesting": (_body(b"[" * 100_000 + b"]" * 100_000), "not JSON"),
    "a huge integer": (_body(b"9" * 10_000), "not JSON"),
    "a list": (_body(b"[]"), "must be an object"),
    "entries not a list": (cache_bytes("dev", "2", {}), "entries must be a list"),
    "bad key": (cache_bytes("dev", "2", [entry({"op": 1}, 1, 1.0)]), "timing-cache key"),
    "bad input": (
        cache_bytes("dev", "2", [entry({**key_fields(), "inputs": [["NOPE", [1]]]}, 1, 1.0)]),
        "input 0 of a key",
    ),
    "negative time": (cache_bytes("dev", "2", [entry(key_fields(), 1, -2.0)]), "invalid value"),
    "tactic a string": (cache_bytes("dev", "2", [entry(key_fields(), "1", 1.0)]), "integer"),
    "duplicate key": (
        cache_bytes("dev", "2", [entry(key_fields(), 1, 1.0), entry(key_fields(), 0, 2.0)]),
        "a second entry",
    ),
}


@pytest.mark.parametrize(("data", "message"), CORRUPT.values(), ids=CORRUPT.keys())
def test_invalid_bytes_give_none_and_a_reported_error(config, logger, data, message):
    assert config.create_timing_cache(data) is None
    (error,) = logger.errors
    assert error.startswith("IBuilderConfig::createTimingCache: Error Code 3: API Usage Error (")
    assert message in error


def test_every_truncation_and_byte_flip_is_refused_without_raising(config, logger):
    assert config.create_timing_cache(VALID) is not None
    damaged = [VALID[:size] for size in range(1, len(VALID))]
    damaged += [VALID[:i] + bytes([VALID[i] ^ 0x41]) + VALID[i + 1 :] for i in range(len(VALID))]
    for data in damaged:
        assert config.create_timing_cache(data) is None, data
    assert len(logger.errors) == len(damaged)


def test_errors_go_to_the_error_recorder_when_one_is_set(logger, recorder):
    builder = trt.Builder(logger)
    builder.error_recorder = recorder
    config = builder.create_builder_config()
    assert config.create_timing_cache(np.zeros(3, np.uint8)) is None
    assert config.create_timing_cache(None) is None
    assert [code for code, _ in recorder.errors] == [trt.ErrorCodeTRT.INVALID_ARGUMENT] * 2
    assert logger.errors == []


# -- builds -----------------------------------------------------------------------------------


def attention(network, q, k, v, scale=None):
    """softmax(q k^T (* scale)) v over the last axis: what the fusion pass makes one attention."""
    scores = network.add_matrix_multiply(q, MATRIX.NONE, k, MATRIX.TRANSPOSE).get_output(0)
    if scale is not None:
        factor = np.full((1, 1, 1, 1), scale, np.float32)
        constant = network.add_constant(factor.shape, factor).get_output(0)
        scores = network.add_elementwise(scores, constant, trt.ElementWiseOperation.PROD)
        scores = scores.get_output(0)
    softmax = network.add_softmax(scores)
    softmax.axes = 1 << 3
    return network.add_matrix_multiply(softmax.get_output(0), MATRIX.NONE, v, MATRIX.NONE)


def three_blocks(network, shape=Q.shape):
    """Two identical attention blocks and a third that differs in its scale."""
    q, k, v = (network.add_input(name, trt.float32, shape) for name in "qkv")
    for name, scale in (("y0", None), ("y1", None), ("y2", 0.25)):
        out = attention(network, q, k, v, scale).get_output(0)
        out.name = name
        network.mark_output(out)


def reference(scale=1.0, q=Q, k=K, v=V):
    scores = q @ np.swapaxes(k, -1, -2) * scale
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)) @ v


def build(logger, cache=None, flags=(), define=three_blocks, configure=None):
    """The plan (or None) of `define` built with `cache` (when given) and `flags` set."""
    builder = trt.Builder(logger)
    network = builder.create_network()
    define(network)
    config = builder.create_builder_config()
    config.clear_flag(trt.BuilderFlag.TF32)
    for flag in flags:
        config.set_flag(flag)
    if cache is not None:
        assert config.set_timing_cache(cache, False)
    if configure is not None:
        configure(builder, config)
    logger.messages.clear()
    return builder.build_serialized_network(network, config)


def backends(engine) -> list[AttentionBackend | None]:
    return [n.attrs["backend"] for n in engine._program.graph.nodes if n.op == "attention"]


def verbose(logger) -> list[str]:
    return [m for s, m in logger.messages if s == trt.ILogger.Severity.VERBOSE]


def timed(logger) -> dict[str, dict[str, float | None]]:
    """Per layer timed in the last build: each backend's logged time (None: cannot run)."""
    layers = {}
    for message in verbose(logger):
        match = TIMINGS.match(message)
        if match:
            layer, report, chosen = match.groups()
            times = dict(item.rsplit(" ", 1)[0].split(" ", 1) for item in report.split(", "))
            layers[layer] = {
                name: None if text == "cannot" else float(text) for name, text in times.items()
            } | {"chosen": chosen}
    return layers


def check_outputs(engine):
    outputs = run(engine, {"q": Q, "k": K, "v": V})
    for name, scale in (("y0", 1.0), ("y1", 1.0), ("y2", 0.25)):
        np.testing.assert_allclose(outputs[name], reference(scale), rtol=1e-5, atol=1e-5)


def test_a_build_times_each_configuration_once_and_keeps_the_fastest(config, logger):
    cache = config.create_timing_cache(b"")
    plan = build(logger, cache)
    assert plan is not None
    layers = timed(logger)
    assert len(layers) == 2, "the second identical block is not timed again"
    (reused,) = [FROM_CACHE.match(m) for m in verbose(logger) if FROM_CACHE.match(m)]
    for times in layers.values():
        chosen = times.pop("chosen")
        runnable = {name: ms for name, ms in times.items() if ms is not None}
        assert set(times) == {b.name for b in AttentionBackend}
        assert runnable[chosen] == min(runnable.values())
        if execution_device().type == "cpu":
            assert set(runnable) == {"MATH", "FLASH_ATTENTION"}
    keys = cache.queryKeys()
    assert len(keys) == 2
    engine = load(plan)
    chosen = backends(engine)
    assert [cache.query(k).tacticHash for k in keys] == [chosen[0], chosen[2]]
    assert chosen[0] == chosen[1] == AttentionBackend[reused.group(2)]
    assert {json.loads(str(k))["attrs"]["scale"] for k in keys} == {1.0, 0.25}
    assert all(json.loads(str(k))["inputs"] == [["FLOAT", [2, 3, 5, 8]]] * 3 for k in keys)
    check_outputs(engine)


def test_a_filled_cache_decides_the_next_build_without_timing(config, logger):
    cache = config.create_timing_cache(b"")
    assert build(logger, cache) is not None
    key = cache.queryKeys()[0]
    other = (
        AttentionBackend.MATH
        if cache.query(key).tacticHash != AttentionBackend.MATH
        else AttentionBackend.FLASH_ATTENTION
    )
    assert cache.update(key, trt.TimingCacheValue(int(other), 0.001))
    plan = build(logger, cache, flags=[trt.BuilderFlag.ERROR_ON_TIMING_CACHE_MISS])
    assert plan is not None
    assert timed(logger) == {}
    engine = load(plan)
    assert backends(engine)[:2] == [other, other]
    check_outputs(engine)


def test_a_cache_miss_fails_the_build_with_error_on_timing_cache_miss(config, logger):
    plan = build(
        logger, config.create_timing_cache(b""), [trt.BuilderFlag.ERROR_ON_TIMING_CACHE_MISS]
    )
    assert plan is None
    (error,) = logger.errors
    assert error.startswith("IBuilder::buildSerializedNetwork: Error Code 4: Build Error (layer '")
    assert "(attention): ERROR_ON_TIMING_CACHE_MISS is set" in error
    assert "[2,3,5,8]" in error


def test_disable_timing_cache_times_every_layer_and_leaves_the_cache_alone(config, logger):
    cache = config.create_timing_cache(b"")
    assert build(logger, cache) is not None
    before = bytes(cache.serialize())
    plan = build(logger, cache, flags=[trt.BuilderFlag.DISABLE_TIMING_CACHE])
    assert plan is not None
    assert len(timed(logger)) == 3, "identical layers are each timed"
    assert bytes(cache.serialize()) == before
    check_outputs(load(plan))


def test_without_a_cache_a_private_one_serves_the_build(config, logger):
    plan = build(logger)
    assert plan is not None
    assert len(timed(logger)) == 2
    assert len([m for m in verbose(logger) if FROM_CACHE.match(m)]) == 1
    assert None not in backends(load(plan))


def test_a_tactic_the_layer_does_not_have_fails_the_build(config, logger):
    cache = config.create_timing_cache(b"")
    assert build(logger, cache) is not None
    assert cache.update(cache.queryKeys()[0], trt.TimingCacheValue(99, 1.0))
    assert build(logger, cache) is None
    (error,) = logger.errors
    assert "the timing cache chooses tactic 99, which this layer does not have" in error
    assert "MATH = 0" in error


def test_is_network_supported_times_nothing(config, logger):
    builder = trt.Builder(logger)
    network = builder.create_network()
    three_blocks(network)
    config = builder.create_builder_config()
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)
    config.set_flag(trt.BuilderFlag.ERROR_ON_TIMING_CACHE_MISS)
    assert builder.is_network_supported(network, config)
    assert cache.queryKeys() == []


def test_dynamic_shapes_are_timed_at_the_first_profiles_opt_point(config, logger):
    def configure(builder, config):
        profile = builder.create_optimization_profile()
        for name in "qkv":
            profile.set_shape(name, (1, 3, 5, 8), (2, 3, 5, 8), (4, 3, 5, 8))
        config.add_optimization_profile(profile)

    cache = config.create_timing_cache(b"")
    plan = build(
        logger, cache, define=lambda n: three_blocks(n, (-1, 3, 5, 8)), configure=configure
    )
    assert plan is not None
    keys = [json.loads(str(key)) for key in cache.queryKeys()]
    assert [k["inputs"] for k in keys] == [[["FLOAT", [2, 3, 5, 8]]] * 3] * 2
    q, k, v = (RNG.standard_normal((4, 3, 5, 8)).astype(np.float32) for _ in range(3))
    outputs = run(load(plan), {"q": q, "k": k, "v": v})
    np.testing.assert_allclose(outputs["y2"], reference(0.25, q, k, v), rtol=1e-5, atol=1e-5)


def unrunnable() -> AttentionBackend:
    """A backend torch cannot run for float32 inputs on the execution device."""
    backend = (
        AttentionBackend.FLASH_ATTENTION
        if execution_device().type == "cuda"
        else AttentionBackend.EFFICIENT_ATTENTION
    )
    q = torch.from_numpy(Q).to(execution_device())
    with pytest.raises(RuntimeError), sdpa_kernel(getattr(SDPBackend, backend.name)):
        F.scaled_dot_product_attention(q, q, q)
    return backend


def test_a_backend_that_cannot_run_falls_back_to_torchs_choice(config, logger):
    cache = config.create_timing_cache(b"")
    assert build(logger, cache) is not None
    backend = unrunnable()
    for key in cache.queryKeys():
        assert cache.update(key, trt.TimingCacheValue(int(backend), 0.001))
    plan = build(logger, cache)
    engine = load(plan, logger)
    assert backends(engine) == [backend] * 3
    check_outputs(engine)
    reported = [m for s, m in logger.messages if s == trt.ILogger.Severity.INFO and "SDPA" in m]
    assert len(reported) == 3  # once per layer: the slower path is logged, never silent
    assert f"SDPA backend {backend.name} (the tactic the build chose) cannot run" in reported[0]


def test_plans_without_a_backend_load_and_let_torch_choose(logger):
    plan = build(logger)

    def forget_backends(meta):
        for node in meta["nodes"]:
            node["attrs"].pop("backend")

    engine = load(with_metadata(plan, forget_backends))
    assert backends(engine) == [None] * 3
    check_outputs(engine)


@pytest.mark.parametrize("backend", [99, -1, "FLASH_ATTENTION", True])
def test_a_plan_naming_an_unknown_backend_is_refused(logger, backend):
    plan = build(logger)

    def name_backend(meta):
        meta["nodes"][0]["attrs"]["backend"] = backend

    assert trt.Runtime(logger).deserialize_cuda_engine(with_metadata(plan, name_backend)) is None
    (error,) = logger.errors
    assert error.startswith("IRuntime::deserializeCudaEngine: Error Code")
    assert "attribute 'backend' of op 'attention'" in error


def test_heads_split_by_views_are_timed_on_views(config, logger):
    """BERT's layout: q, k and v (batch, L, heads * E) reshaped and transposed to (batch, heads,
    L, E) by shuffles that are views; the timing runs on the same strided views."""
    x = RNG.standard_normal((3, 2, 5, 24)).astype(np.float32)

    def define(network):
        q, k, v = (network.add_input(name, trt.float32, (2, 5, 24)) for name in "qkv")
        heads = []
        for tensor in (q, k, v):
            split = network.add_shuffle(tensor)
            split.reshape_dims = (2, 5, 3, 8)
            transpose = network.add_shuffle(split.get_output(0))
            transpose.first_transpose = (0, 2, 1, 3)
            heads.append(transpose.get_output(0))
        out = attention(network, *heads).get_output(0)
        out.name = "y"
        network.mark_output(out)

    cache = config.create_timing_cache(b"")
    plan = build(logger, cache, define=define)
    assert plan is not None
    engine = load(plan)
    assert [n.op for n in engine._program.graph.nodes].count("attention") == 1
    assert len(engine._program.memory.views) == 6, "the head splits are views"
    assert len(timed(logger)) == 1
    (key,) = cache.queryKeys()
    assert json.loads(str(key))["inputs"] == [["FLOAT", [2, 3, 5, 8]]] * 3
    out = run(engine, dict(zip("qkv", x, strict=True)))["y"]
    q, k, v = (a.reshape(2, 5, 3, 8).transpose(0, 2, 1, 3) for a in x)
    np.testing.assert_allclose(out, reference(1.0, q, k, v), rtol=1e-5, atol=1e-5)


def test_a_constant_mask_is_timed_with_its_values(config, logger):
    """A causal mask from the network's weights: the timing reads the real mask (a random one
    could time another path), and the chosen backend applies it."""
    causal = np.triu(np.full((5, 5), -np.inf, np.float32), 1).reshape(1, 1, 5, 5)

    def define(network):
        q, k, v = (network.add_input(name, trt.float32, Q.shape) for name in "qkv")
        scores = network.add_matrix_multiply(q, MATRIX.NONE, k, MATRIX.TRANSPOSE).get_output(0)
        mask = network.add_constant(causal.shape, causal).get_output(0)
        masked = network.add_elementwise(scores, mask, trt.ElementWiseOperation.SUM)
        softmax = network.add_softmax(masked.get_output(0))
        softmax.axes = 1 << 3
        out = network.add_matrix_multiply(softmax.get_output(0), MATRIX.NONE, v, MATRIX.NONE)
        out.get_output(0).name = "y"
        network.mark_output(out.get_output(0))

    cache = config.create_timing_cache(b"")
    plan = build(logger, cache, define=define)
    assert plan is not None
    (key,) = cache.queryKeys()
    assert json.loads(str(key))["inputs"][3] == ["FLOAT", [1, 1, 5, 5]]
    scores = Q @ np.swapaxes(K, -1, -2) + causal
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    expected = weights / weights.sum(-1, keepdims=True) @ V
    out = run(load(plan), {"q": Q, "k": K, "v": V})["y"]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
def test_half_precision_attention_on_cuda_picks_among_the_fused_backends(config, logger):
    """On a GPU, FLASH_ATTENTION and EFFICIENT_ATTENTION run half-precision attention; the
    fastest backend is chosen, kept in the cache and runs correctly."""
    shape = (2, 4, 128, 64)
    q, k, v = (RNG.standard_normal(shape).astype(np.float16) for _ in range(3))

    def define(network):
        inputs = [network.add_input(name, trt.float16, shape) for name in "qkv"]
        out = attention(network, *inputs).get_output(0)
        out.name = "y"
        network.mark_output(out)

    cache = config.create_timing_cache(b"")
    plan = build(logger, cache, define=define)
    assert plan is not None
    ((times),) = timed(logger).values()
    chosen = times.pop("chosen")
    runnable = {name for name, ms in times.items() if ms is not None}
    assert {"MATH", "FLASH_ATTENTION", "EFFICIENT_ATTENTION"} <= runnable
    (key,) = cache.queryKeys()
    assert cache.query(key).tacticHash == AttentionBackend[chosen]
    assert json.loads(str(key))["device"] == torch.cuda.get_device_name()
    out = run(load(plan), {"q": q, "k": k, "v": v})["y"]
    expected = reference(1.0, *(a.astype(np.float32) for a in (q, k, v)))
    np.testing.assert_allclose(out.astype(np.float32), expected, rtol=2e-2, atol=2e-3)
