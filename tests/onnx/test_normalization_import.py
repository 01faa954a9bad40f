"""LayerNormalization whose statistics nobody reads imports as one INormalizationLayer (as
onnx-tensorrt does), which the builder runs as a single layer-norm kernel. RMSNormalization,
and LlamaRMSNorm as torch.onnx.export writes it, import as layers that the builder fuses
into a single RMS-norm kernel."""

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


RMS_SHAPE = (2, 3, 4, 6)


def rms_reference(x, scale, axis, epsilon):
    x = x.astype(np.float64)
    axes = tuple(range(axis, x.ndim))
    return x / np.sqrt((x * x).mean(axis=axes, keepdims=True) + epsilon) * scale


def fused_rms_norm(model, logger, x, scale, axis, epsilon, tolerance):
    """Build the model: one rms_norm node over the axes from `axis`, matching numpy."""
    _, engine = build(model, logger)
    (node,) = engine._program.graph.nodes
    assert node.op == "rms_norm"
    assert node.attrs == {"epsilon": pytest.approx(epsilon), "dims": len(RMS_SHAPE) - axis}
    (y,) = run(engine, {"x": x}).values()
    expected = rms_reference(x, scale, axis, epsilon)
    np.testing.assert_allclose(y, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rms_normalization_is_one_kernel(axis, dtype, logger):
    rng = np.random.default_rng(4)
    start = axis % len(RMS_SHAPE)
    scale = rng.uniform(0.5, 2.0, RMS_SHAPE[start:]).astype(dtype)
    x = (rng.standard_normal(RMS_SHAPE) * 3 + 1).astype(dtype)
    element = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node(
        "RMSNormalization", ["x", "scale"], ["y"], axis=axis, epsilon=1e-3, name="norm"
    )
    model = make_model(
        [node],
        [("x", element, list(RMS_SHAPE))],
        [("y", element, None)],
        [numpy_helper.from_array(scale, "scale")],
        opset=23,
    )
    tolerance = 1e-5 if dtype == np.float32 else 5e-3
    fused_rms_norm(model, logger, x, scale, start, 1e-3, tolerance)


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_exported_llama_rms_norm_is_one_kernel(opset, dtype, logger):
    """LlamaRMSNorm (x.float() * rsqrt(x.float().pow(2).mean(-1) + eps), then weight * that
    in x's type) node for node as torch.onnx.export (dynamo=False) writes it."""
    rng = np.random.default_rng(5)
    weight = rng.uniform(0.5, 2.0, RMS_SHAPE[-1]).astype(dtype)
    x = (rng.standard_normal(RMS_SHAPE) * 3 + 1).astype(dtype)
    element = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def scalar(name, value):
        tensor = numpy_helper.from_array(np.array(value, dtype=np.float32))
        return helper.make_node("Constant", [], [name], value=tensor)

    if opset >= 18:  # ReduceMean's axes became an input
        mean = [
            helper.make_node("Constant", [], ["axes"], value_ints=[-1]),
            helper.make_node("ReduceMean", ["pow", "axes"], ["mean"], keepdims=1),
        ]
    else:
        mean = [helper.make_node("ReduceMean", ["pow"], ["mean"], axes=[-1], keepdims=1)]
    nodes = [
        helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT),
        scalar("two", 2.0),
        helper.make_node("Pow", ["h", "two"], ["pow"]),
        *mean,
        scalar("eps", 1e-6),
        helper.make_node("Add", ["mean", "eps"], ["shifted"]),
        helper.make_node("Sqrt", ["shifted"], ["root"]),
        scalar("one", 1.0),
        helper.make_node("Div", ["one", "root"], ["inverse"]),
        helper.make_node("Mul", ["h", "inverse"], ["normalized"]),
        helper.make_node("Cast", ["normalized"], ["back"], to=element),
        helper.make_node("Mul", ["weight", "back"], ["y"]),
    ]
    model = make_model(
        nodes,
        [("x", element, list(RMS_SHAPE))],
        [("y", element, None)],
        [numpy_helper.from_array(weight, "weight")],
        opset=opset,
    )
    tolerance = 1e-5 if dtype == np.float32 else 5e-3
    fused_rms_norm(model, logger, x, weight, len(RMS_SHAPE) - 1, 1e-6, tolerance)
