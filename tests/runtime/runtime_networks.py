"""The network the runtime tests load, its numpy reference, and a way to run one context.

    y = tanh(x * w + bias)       x: FLOAT (-1, 4), bias: FLOAT (1, 4), w: a constant
    z = half(abs(x))

Two inputs (one dynamic), two outputs of different types, a constant (weights) and
intermediate activations (an arena): every kind of memory an engine and context hold.
Its layers are kept apart (not fused), so that the activations between them stay.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import torch

import tensorplan as trt
from helpers import build_plan, keep_layers_apart
from tensorplan.device import execution_device

W = np.array([[0.5, -1.0, 2.0, 0.25]], dtype=np.float32)
COLUMNS = W.shape[1]
WEIGHT_BYTES = W.nbytes
PROFILES = [((1, 4), (2, 4), (4, 4)), ((5, 4), (8, 4), (16, 4))]
ERROR = re.compile(r"(\w+)::(\w+): Error Code (\d+): ([A-Za-z ]+) \((.+)\)", re.DOTALL)


def define(network: trt.INetworkDefinition) -> None:
    network.name = "scaled tanh"
    x = network.add_input("x", trt.float32, (-1, COLUMNS))
    bias = network.add_input("bias", trt.float32, (1, COLUMNS))
    w = network.add_constant(W.shape, W).get_output(0)
    y = network.add_elementwise(x, w, trt.ElementWiseOperation.PROD).get_output(0)
    y = network.add_elementwise(y, bias, trt.ElementWiseOperation.SUM).get_output(0)
    y = network.add_activation(y, trt.ActivationType.TANH).get_output(0)
    y.name = "y"
    z = network.add_unary(x, trt.UnaryOperation.ABS).get_output(0)
    z = network.add_cast(z, trt.float16).get_output(0)
    z.name = "z"
    network.mark_output(y)
    network.mark_output(z)
    keep_layers_apart(network)


@functools.cache
def plan(profiles: int = 1) -> bytes:
    """The plan with the first `profiles` of PROFILES (for input x)."""

    def configure(builder: trt.Builder, config: trt.IBuilderConfig) -> None:
        for low, opt, high in PROFILES[:profiles]:
            profile = builder.create_optimization_profile()
            profile.set_shape("x", low, opt, high)
            config.add_optimization_profile(profile)

    built = build_plan(define, configure=configure)
    assert built is not None
    return bytes(built)


def reference(x: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.tanh(x * W + bias), np.abs(x).astype(np.float16)


def inputs(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, COLUMNS)).astype(np.float32)
    bias = rng.standard_normal((1, COLUMNS)).astype(np.float32)
    return x, bias


class Bound:
    """Device tensors bound to a context's IO tensors; `outputs()` reads the results back."""

    def __init__(self, context: trt.IExecutionContext, x: np.ndarray, bias: np.ndarray) -> None:
        device = execution_device()
        self.x = torch.from_numpy(x.copy()).to(device)
        self.bias = torch.from_numpy(bias.copy()).to(device)
        rows = x.shape[0]
        self.y = torch.full((rows, COLUMNS), float("nan"), device=device)
        self.z = torch.full((rows, COLUMNS), float("nan"), dtype=torch.float16, device=device)
        assert context.set_input_shape("x", x.shape)
        for name in ("x", "bias", "y", "z"):
            assert context.set_tensor_address(name, getattr(self, name).data_ptr())

    @property
    def bindings(self) -> list[int]:
        return [t.data_ptr() for t in (self.x, self.bias, self.y, self.z)]

    def outputs(self) -> tuple[np.ndarray, np.ndarray]:
        if self.y.is_cuda:
            torch.cuda.synchronize()
        return self.y.cpu().numpy(), self.z.cpu().numpy()


def execute(context: trt.IExecutionContext, rows: int, seed: int = 0) -> None:
    """Run `context` on fresh inputs of `rows` rows and check both outputs against numpy."""
    x, bias = inputs(rows, seed)
    bound = Bound(context, x, bias)
    assert context.execute_async_v3(stream())
    check(bound.outputs(), reference(x, bias))


def check(outputs: tuple[np.ndarray, np.ndarray], expected: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_allclose(outputs[0], expected[0], rtol=1e-5, atol=1e-6, err_msg="y")
    np.testing.assert_array_equal(outputs[1], expected[1], err_msg="z")


def stream() -> int:
    """The stream handle to enqueue on: torch's current stream on a GPU, 0 on the CPU."""
    return torch.cuda.current_stream().cuda_stream if execution_device().type == "cuda" else 0


def parse_error(text: str) -> tuple[str, int, str, str]:
    """(api::method, code, category, detail) of an error in TensorRT's form."""
    match = ERROR.fullmatch(text)
    assert match, f"not in TensorRT's form: {text}"
    return f"{match[1]}::{match[2]}", int(match[3]), match[4], match[5]


def take_error(logger: trt.ILogger) -> tuple[str, int, str, str]:
    """The one error `logger` (a RecordingLogger) holds, parsed; its messages are cleared."""
    errors = logger.errors
    assert len(errors) == 1, errors
    logger.messages.clear()
    return parse_error(errors[0])
