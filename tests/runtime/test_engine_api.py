"""ICudaEngine: IO tensors, profiles, sizes, serialization, and errors for unknown names."""

from __future__ import annotations

import pytest
import runtime_networks as nets

import tensorplan as trt
from helpers import build_plan

INVALID_ARGUMENT = 3
IO = [
    ("x", trt.TensorIOMode.INPUT, (-1, 4), trt.float32),
    ("bias", trt.TensorIOMode.INPUT, (1, 4), trt.float32),
    ("y", trt.TensorIOMode.OUTPUT, (-1, 4), trt.float32),
    ("z", trt.TensorIOMode.OUTPUT, (-1, 4), trt.float16),
]


@pytest.fixture
def engine(logger) -> trt.ICudaEngine:
    engine = trt.Runtime(logger).deserialize_cuda_engine(nets.plan(profiles=2))
    assert engine is not None
    return engine


def test_io_tensors(engine, logger):
    assert engine.num_io_tensors == len(IO)
    for index, (name, mode, shape, dtype) in enumerate(IO):
        assert engine.get_tensor_name(index) == name
        assert engine[index] == name
        assert engine.get_tensor_mode(name) == mode
        assert tuple(engine.get_tensor_shape(name)) == shape
        assert engine.get_tensor_dtype(name) == dtype
        assert engine.get_tensor_location(name) == trt.TensorLocation.DEVICE
    assert logger.errors == []


def test_the_engine(engine, logger):
    assert engine.name == "scaled tanh"
    assert 1 <= engine.num_layers <= 6  # the network's layers, less what was folded or fused
    assert engine.num_optimization_profiles == 2
    assert engine.device_memory_size > 0
    assert engine.device_memory_size_v2 == engine.device_memory_size
    # one memory plan serves every profile (docs/api-differences.md)
    for index in range(2):
        assert engine.get_device_memory_size_for_profile_v2(index) == engine.device_memory_size_v2
    assert logger.errors == []


def test_device_memory_size_of_a_missing_profile(engine, logger):
    assert engine.get_device_memory_size_for_profile(2) == 0
    api, code, _, detail = nets.take_error(logger)
    assert (api, code) == ("ICudaEngine::getDeviceMemorySizeForProfile", INVALID_ARGUMENT)
    assert "profile index 2 is out of range" in detail


def test_profile_shapes(engine, logger):
    for index, triple in enumerate(nets.PROFILES):
        assert [tuple(d) for d in engine.get_tensor_profile_shape("x", index)] == list(triple)
        assert [tuple(d) for d in engine.get_tensor_profile_shape("bias", index)] == [(1, 4)] * 3
    assert logger.errors == []


@pytest.mark.parametrize(
    ("name", "profile", "message"),
    [
        ("y", 0, "'y' is an output"),
        ("x", 2, "profile index 2 is out of range; the engine has 2 profiles"),
        ("x", -1, "profile index -1 is out of range"),
        ("w", 0, "Given invalid tensor name: w"),
    ],
)
def test_profile_shape_errors(engine, logger, name, profile, message):
    assert engine.get_tensor_profile_shape(name, profile) == []
    api, code, _, detail = nets.take_error(logger)
    assert (api, code) == ("ICudaEngine::getProfileShape", INVALID_ARGUMENT)
    assert message in detail


SENTINELS = {
    "get_tensor_mode": ("getTensorIOMode", trt.TensorIOMode.NONE),
    "get_tensor_shape": ("getTensorShape", trt.Dims()),
    "get_tensor_dtype": ("getTensorDataType", trt.float32),
    "get_tensor_location": ("getTensorLocation", trt.TensorLocation.DEVICE),
}


@pytest.mark.parametrize(("method", "expected"), SENTINELS.items(), ids=SENTINELS.keys())
def test_unknown_names_give_sentinels_and_an_error(engine, logger, method, expected):
    api_method, sentinel = expected
    assert getattr(engine, method)("no such tensor") == sentinel
    api, code, category, detail = nets.take_error(logger)
    assert (api, code, category) == (f"ICudaEngine::{api_method}", 3, "API Usage Error")
    assert "Given invalid tensor name: no such tensor" in detail


@pytest.mark.parametrize("index", [4, -1, 1000])
def test_tensor_index_out_of_range(engine, logger, index):
    assert engine.get_tensor_name(index) is None
    assert engine[index] is None
    assert len(logger.errors) == 2
    assert f"index {index} is out of range; the engine has 4 IO tensors" in logger.errors[0]


def test_serialize_round_trip(engine, logger):
    plan = engine.serialize()
    assert isinstance(plan, trt.IHostMemory)
    assert plan.nbytes == len(plan)
    assert plan.dtype == trt.uint8
    assert bytes(plan) == nets.plan(profiles=2)  # the same program, the same bytes
    again = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert [again[i] for i in range(again.num_io_tensors)] == [io[0] for io in IO]
    assert again.num_optimization_profiles == 2
    for rows in (2, 9):
        contexts = [e.create_execution_context() for e in (engine, again)]
        assert contexts[1].set_optimization_profile_async(int(rows > 4), nets.stream())
        assert contexts[0].set_optimization_profile_async(int(rows > 4), nets.stream())
        for context in contexts:
            nets.execute(context, rows, seed=rows)
    assert logger.errors == []


def test_error_recorder_passes_from_runtime_to_engine_to_context(logger, recorder):
    runtime = trt.Runtime(logger)
    runtime.error_recorder = recorder
    engine = runtime.deserialize_cuda_engine(nets.plan())
    assert engine.error_recorder is recorder
    context = engine.create_execution_context()
    assert context.error_recorder is recorder
    engine.get_tensor_shape("nothing")
    context.set_input_shape("x", (99, 4))
    assert [api for api, *_ in (nets.parse_error(d) for _, d in recorder.errors)] == [
        "ICudaEngine::getTensorShape",
        "IExecutionContext::setInputShape",
    ]
    assert logger.errors == []


def test_an_engines_own_recorder(engine, logger, recorder):
    engine.error_recorder = recorder
    assert engine.get_tensor_dtype("nothing") == trt.float32
    assert len(recorder.errors) == 1
    assert logger.errors == []
    assert engine.create_execution_context().error_recorder is recorder


@pytest.mark.parametrize(
    ("dtype", "size"), [(trt.float32, 4), (trt.float16, 2), (trt.int4, 1), (trt.fp4, 1)]
)
def test_bytes_per_component_is_what_a_buffer_needs_per_element(logger, dtype, size):
    """Sub-byte types are kept one element per byte (docs/dtypes.md), so a buffer sized by
    `get_tensor_bytes_per_component` holds what the engine writes."""

    def define(network):
        x = network.add_input("x", trt.float16, (4,))
        y = network.add_cast(x, dtype).get_output(0)
        y.name = "y"
        network.mark_output(y)

    engine = trt.Runtime(logger).deserialize_cuda_engine(build_plan(define))
    assert engine.get_tensor_bytes_per_component("y") == size
    assert engine.get_tensor_bytes_per_component("x") == 2
