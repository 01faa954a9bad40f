"""The small plan the plan tests damage, and the check that a plan was refused as TensorRT does."""

from __future__ import annotations

import functools
import re
import time

import numpy as np

import tensorplan as trt
from helpers import build_plan, keep_layers_apart

ERROR = re.compile(
    r"IRuntime::deserializeCudaEngine: Error Code (\d+): ([A-Za-z ]+) \((.+)\)", re.DOTALL
)
CASE_SECONDS = 5.0
"""A generous bound on one refusal; real ones take milliseconds."""
CASE_PYTHON_BYTES = 64 << 20
"""A generous bound on the Python memory one refusal may use at its peak."""


def define(network: trt.INetworkDefinition) -> None:
    """y = exp(relu(x + w1)) * w2, with x of shape (-1, 4): two constants, three activations
    (the layers are kept apart, one node each)."""
    x = network.add_input("x", trt.float32, (-1, 4))
    w1 = network.add_constant((1, 4), np.arange(4, dtype=np.float32)).get_output(0)
    w2 = network.add_constant((1, 4), np.full((1, 4), 0.5, np.float32)).get_output(0)
    y = network.add_elementwise(x, w1, trt.ElementWiseOperation.SUM).get_output(0)
    y = network.add_activation(y, trt.ActivationType.RELU).get_output(0)
    y = network.add_unary(y, trt.UnaryOperation.EXP).get_output(0)
    y = network.add_elementwise(y, w2, trt.ElementWiseOperation.PROD).get_output(0)
    y.name = "y"
    network.mark_output(y)
    keep_layers_apart(network)


def profile(builder: trt.Builder, config: trt.IBuilderConfig) -> None:
    shapes = builder.create_optimization_profile()
    shapes.set_shape("x", (1, 4), (2, 4), (8, 4))
    config.add_optimization_profile(shapes)


@functools.cache
def valid_plan() -> bytes:
    plan = build_plan(define, configure=profile)
    assert plan is not None
    return bytes(plan)


def reference(x: np.ndarray) -> np.ndarray:
    return np.exp(np.maximum(x + np.arange(4, dtype=np.float32), 0)) * 0.5


def refuse(
    plan: object,
    logger,
    code: trt.ErrorCodeTRT = trt.ErrorCodeTRT.UNSPECIFIED_ERROR,
    category: str = "Serialization",
    runtime: trt.Runtime | None = None,
) -> str:
    """Deserialize `plan`, check it was refused as TensorRT does; the error's detail."""
    logger.messages.clear()
    runtime = runtime or trt.Runtime(logger)
    started = time.perf_counter()
    engine = runtime.deserialize_cuda_engine(plan)
    elapsed = time.perf_counter() - started
    assert engine is None
    assert elapsed < CASE_SECONDS, f"refusing took {elapsed:.1f} s"
    assert len(logger.errors) == 1, logger.errors
    match = ERROR.fullmatch(logger.errors[0])
    assert match, logger.errors[0]
    assert (int(match[1]), match[2]) == (int(code), category), logger.errors[0]
    return match[3]
