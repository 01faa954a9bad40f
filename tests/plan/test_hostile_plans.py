"""Plans that claim much in few bytes: loading them does work bounded by their bytes.

The reader checks structure only (no shape inference, no kernel), refuses what the format
forbids (several profiles on a static engine, more than MAX_PROFILES, NaN, repeated keys),
and never lets a bad attribute escape as an exception.
"""

from __future__ import annotations

import time

import numpy as np
import planedit
import pytest
from plan_cases import refuse, valid_plan

import tensorplan as trt
from helpers import build_plan, keep_layers_apart, run
from tensorplan.ops import REGISTRY
from tensorplan.plan.format import MAX_PROFILES


def _shuffle_plan() -> bytes:
    def define(network):
        x = network.add_input("x", trt.float32, (2, 3))
        shuffle = network.add_shuffle(x)
        shuffle.first_transpose = (1, 0)
        y = network.add_activation(shuffle.get_output(0), trt.ActivationType.RELU).get_output(0)
        y.name = "y"
        network.mark_output(y)
        keep_layers_apart(network)

    return bytes(build_plan(define))


@pytest.mark.parametrize("attribute", ["first_transpose", "second_transpose"])
def test_null_for_an_attribute_with_a_default_is_refused(logger, attribute):
    def edit(meta):
        shuffle = next(node for node in meta["nodes"] if node["op"] == "shuffle")
        shuffle["attrs"][attribute] = None

    detail = refuse(planedit.with_metadata(_shuffle_plan(), edit), logger)
    assert f"attribute '{attribute}' of op 'shuffle' must not be null" in detail


def test_the_shuffle_plan_itself_loads_and_runs(logger):
    engine = trt.Runtime(logger).deserialize_cuda_engine(_shuffle_plan())
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.testing.assert_array_equal(run(engine, {"x": x})["y"], np.maximum(x.T, 0))


def _static_plan() -> bytes:
    def define(network):
        x = network.add_input("x", trt.float32, (2, 3))
        y = network.add_activation(x, trt.ActivationType.RELU).get_output(0)
        y.name = "y"
        network.mark_output(y)

    return bytes(build_plan(define))


@pytest.mark.parametrize("count", [0, 2, 300_000])
def test_a_static_engine_has_exactly_one_profile(logger, count):
    plan = planedit.with_metadata(_static_plan(), lambda meta: meta.update(profiles=[{}] * count))
    started = time.perf_counter()
    detail = refuse(plan, logger)
    assert time.perf_counter() - started < 1.0
    assert ("no optimization profile" if count == 0 else f"{count} profiles") in detail


def test_more_profiles_than_the_limit_are_refused(logger):
    def edit(meta):
        meta["profiles"] = [meta["profiles"][0]] * (MAX_PROFILES + 1)

    detail = refuse(planedit.with_metadata(valid_plan(), edit), logger)
    assert f"{MAX_PROFILES + 1} profiles; at most {MAX_PROFILES}" in detail


def test_a_profile_entry_for_a_static_input_is_refused(logger):
    def edit(meta):
        meta["profiles"] = [{"x": {"min": [2, 3], "opt": [2, 3], "max": [2, 3]}}]

    assert "neither dynamic nor a shape tensor" in refuse(
        planedit.with_metadata(_static_plan(), edit), logger
    )


def test_the_builder_writes_one_profile_for_a_static_network(logger):
    def configure(builder, config):
        for _ in range(3):
            profile = builder.create_optimization_profile()
            profile.set_shape("x", (2, 3), (2, 3), (2, 3))
            assert config.add_optimization_profile(profile) >= 0

    def define(network):
        x = network.add_input("x", trt.float32, (2, 3))
        network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))

    plan = bytes(build_plan(define, configure=configure))
    assert planedit.metadata(plan)["profiles"] == [{}]
    assert trt.Runtime(logger).deserialize_cuda_engine(plan).num_optimization_profiles == 1


def test_a_config_takes_at_most_the_limit_of_profiles(logger):
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 4), (2, 4), (8, 4))
    for _ in range(MAX_PROFILES):
        assert config.add_optimization_profile(profile) >= 0
    assert config.add_optimization_profile(profile) == -1
    assert f"the config has {MAX_PROFILES} optimization profiles" in logger.errors[-1]


def test_loading_infers_no_shape_and_runs_no_kernel(logger, monkeypatch):
    """Every op's shape rule and kernel raise while the plan loads: loading needs neither."""
    plans = [valid_plan(), _shuffle_plan(), _static_plan()]

    def never(*args, **kwargs):
        raise AssertionError("an op's shape rule or kernel ran while loading")

    with monkeypatch.context() as patch:
        for op in REGISTRY.values():
            for method in ("infer", "run", "run_dynamic"):
                patch.setattr(type(op), method, never)
        engines = [trt.Runtime(logger).deserialize_cuda_engine(plan) for plan in plans]
    assert all(engine is not None for engine in engines), logger.errors
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(engines[2], {"x": x})["y"], np.maximum(x, 0))


def test_bytes_of_the_weights_no_constant_covers_are_zero(logger):
    parts = planedit.sections(valid_plan())
    weights = next(part for part in parts if part.kind == planedit.WEIGHTS)
    first = min(planedit.metadata(valid_plan())["constants"], key=lambda c: c["offset"])
    gap = first["offset"] + first["nbytes"]
    data = bytearray(weights.data)
    data[gap] = 7
    weights.data = bytes(data)
    plan = planedit.assemble(parts)
    assert f"not zero at byte {gap}, which no constant covers" in refuse(plan, logger)
