"""LayerNormalization whose statistics nobody reads imports as one INormalizationLayer (as
onnx-tensorrt does), which the builder runs as a single layer-norm kernel."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests.helpers import load, run
from tests.onnx.conftest import make_model, parse

import tensorplan as trt


def layer_norm_model(outputs: list[str], axis: int, with_bias: bool = True):
    rng = np.random.default_rng(1)
    scale = numpy_helper.from_array(rng.standard_normal((4, 6)).astype(np.float32), "scale")
    bias = numpy_helper.from_array(rng.standard_normal((4, 6)).astype(np.float32), "bias")
    inputs = ["x", "scale", "bias"] if with_bias else ["x", "scale"]
    node = helper.make_node(
        "LayerNormalization", inputs, outputs, axis=axis, epsilon=1e-3, name="norm"
    )
    declared = [(name, TensorProto.FLOAT, None) for name in outputs]
    initializers = [scale, bias] if with_bias else [scale]
    return make_model([node], [("x", TensorProto.FLOAT, [2, 3, 4, 6])], declared, initializers)


def reference(x, scale, bias, axis):
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + 1e-3)
    return (x - mean) * inv_std * scale + bias, mean, inv_std


def build(model, logger):
    ok, _, network, builder = parse(model, logger)
    assert ok, logger.errors
    layers = [network.get_layer(i).type for i in range(network.num_layers)]
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    assert plan is not None, logger.errors
    return layers, load(plan)


@pytest.mark.parametrize("with_bias", [True, False])
def test_y_alone_is_one_normalization_kernel(with_bias, logger):
    model = layer_norm_model(["y"], axis=-2, with_bias=with_bias)
    layers, engine = build(model, logger)
    assert trt.LayerType.NORMALIZATION in layers
    assert trt.LayerType.REDUCE not in layers
    ops = [node.op for node in engine._program.graph.nodes]
    assert ops == (["layer_norm"] if with_bias else ["normalization"])
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 6)).astype(np.float32)
    scale = numpy_helper.to_array(model.graph.initializer[0])
    bias = numpy_helper.to_array(model.graph.initializer[1]) if with_bias else 0.0
    (y,) = run(engine, {"x": x}).values()
    np.testing.assert_allclose(y, reference(x, scale, bias, 2)[0], rtol=1e-5, atol=1e-5)


def test_statistics_still_come_out_when_read(logger):
    model = layer_norm_model(["y", "mean", "inv_std"], axis=1)
    layers, engine = build(model, logger)
    assert trt.LayerType.REDUCE in layers
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 6)).astype(np.float32)
    scale, bias = (numpy_helper.to_array(t) for t in model.graph.initializer)
    got = run(engine, {"x": x})
    for name, expected in zip(("y", "mean", "inv_std"), reference(x, scale, bias, 1), strict=True):
        np.testing.assert_allclose(got[name], expected, rtol=1e-5, atol=1e-5)
