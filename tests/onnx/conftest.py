"""Helpers for ONNX tests: small models made with onnx.helper."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tensorplan as trt

NODE_SUITE_SUMMARY = pytest.StashKey[str]()
"""The node suite's `N passed, M failed`, printed at the end of every pytest run."""


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    summary = config.stash.get(NODE_SUITE_SUMMARY, None)
    if summary is not None:
        terminalreporter.write_line(f"ONNX backend node tests: {summary}")


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[tuple[str, int, Sequence[int | str | None]]],
    outputs: Sequence[tuple[str, int, Sequence[int | str | None] | None]],
    initializers: Sequence[TensorProto] = (),
    opset: int = 17,
) -> onnx.ModelProto:
    """A model of `nodes`; inputs and outputs as (name, element type, shape)."""
    graph = helper.make_graph(
        list(nodes),
        "test",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def parse(model: onnx.ModelProto | bytes, logger: trt.ILogger) -> tuple:
    """(parsed ok, parser, network, builder) for the model."""
    builder = trt.Builder(logger)
    network = builder.create_network()
    parser = trt.OnnxParser(network, logger)
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return parser.parse(data), parser, network, builder


@pytest.fixture
def add_model() -> onnx.ModelProto:
    """y = relu(x + bias), bias an initializer broadcast from rank 1."""
    bias = onnx.numpy_helper.from_array(np.array([1.0, -2.0, 3.0], dtype=np.float32), "bias")
    nodes = [
        helper.make_node("Add", ["x", "bias"], ["sum"], name="add"),
        helper.make_node("Relu", ["sum"], ["y"], name="relu"),
    ]
    return make_model(
        nodes, [("x", TensorProto.FLOAT, [2, 3])], [("y", TensorProto.FLOAT, [2, 3])], [bias]
    )
