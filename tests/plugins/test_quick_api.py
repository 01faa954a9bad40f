"""The quick plugin API (tensorplan.plugin, modelled on tensorrt.plugin), through the network
API, the ONNX parser, and on a GPU."""

from __future__ import annotations

import importlib.util

import numpy as np
import numpy.typing as npt
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import tensorplan as trt
import tensorplan.plugin as tpp
from helpers import build_plan, load, run


@tpp.register("quick::scaled_add")
def scaled_add_desc(
    x: tpp.TensorDesc,
    y: tpp.TensorDesc,
    scale: float,
    pad_rows: int,
    negate: bool,
    label: str,
    blob: bytes,
    weights: npt.NDArray[np.float32],
) -> tpp.TensorDesc:
    out = x.like()
    out.shape_expr[0] = x.shape_expr[0] + pad_rows
    return out


SEEN: dict = {}


@tpp.impl("quick::scaled_add")
def scaled_add_impl(x, y, scale, pad_rows, negate, weights, label, outputs, stream) -> None:
    SEEN.update(scale=scale, pad_rows=pad_rows, negate=negate, label=label, stream=stream)
    (out,) = outputs
    out.zero_()
    result = (x + scale * y) * torch.as_tensor(weights, device=x.device)
    out[: x.shape[0]].copy_(-result if negate else result)


ATTRIBUTES = dict(
    scale=0.5,
    pad_rows=2,
    negate=True,
    label="héllo",
    blob=b"\x00\x01",
    weights=np.array([1, 2, 3], np.float32),
)


def scaled_add_network(seen: dict):
    def define(network):
        x = network.add_input("x", trt.float32, (-1, 3))
        y = network.add_input("y", trt.float32, (-1, 3))
        layer = network.add_plugin_v3(*tpp.op.quick.scaled_add(x, y, **ATTRIBUTES))
        seen["layer"] = layer
        network.mark_output(layer.get_output(0))

    return define


def rows(builder, config):
    profile = builder.create_optimization_profile()
    for name in ("x", "y"):
        profile.set_shape(name, (1, 3), (2, 3), (5, 3))
    config.add_optimization_profile(profile)


def expected(x, y):
    return np.concatenate([-(x + 0.5 * y) * [1, 2, 3], np.zeros((2, 3), np.float32)])


def test_a_quick_plugin_builds_serializes_and_runs():
    seen = {}
    plan = build_plan(scaled_add_network(seen), configure=rows)
    assert seen["layer"].get_output(0).shape == (-1, 3)
    creator = trt.get_plugin_registry().get_creator("scaled_add", "1", "quick")
    assert [f.name for f in creator.field_names] == list(ATTRIBUTES)
    x = np.random.default_rng(0).random((3, 3), dtype=np.float32)
    y = np.random.default_rng(1).random((3, 3), dtype=np.float32)
    (out,) = run(load(plan), {"x": x, "y": y}).values()
    np.testing.assert_allclose(out, expected(x, y), rtol=1e-6)
    assert dict(scale=0.5, pad_rows=2, negate=True, label="héllo", stream=0) == SEEN


def test_only_the_attributes_the_implementation_takes_are_serialized():
    seen = {}
    build_plan(scaled_add_network(seen), configure=rows)
    fields = seen["layer"].plugin.get_fields_to_serialize()
    assert [f.name for f in fields] == ["scale", "pad_rows", "negate", "weights", "label"]
    kinds = {f.name: f.type for f in fields}
    assert kinds["scale"] == trt.PluginFieldType.FLOAT64
    assert kinds["label"] == trt.PluginFieldType.CHAR


@tpp.register("quick::typed_copy", lazy_register=True)
def typed_copy_desc(x: tpp.TensorDesc) -> tuple[tpp.TensorDesc, tpp.TensorDesc]:
    return x.like(), tpp.from_shape_expr([x.shape_expr.numel()], trt.int64)


@tpp.impl("quick::typed_copy")
def typed_copy_impl(x, outputs, stream, tactic) -> None:
    outputs[0].copy_(x + tactic)
    outputs[1].fill_(x.numel())


@tpp.autotune("quick::typed_copy")
def typed_copy_tune(x, outputs):
    return [
        tpp.AutoTuneCombination("FP32|FP16, FP32|FP16, INT64", "LINEAR", [5, 9]),
        tpp.AutoTuneCombination("INT32, INT32, INT64"),
    ]


@pytest.mark.parametrize(
    ("dtype", "supported"), [(np.float16, True), (np.int32, True), (np.int8, False)]
)
def test_autotune_combinations_choose_types_and_the_first_tactic(logger, dtype, supported):
    kind = {np.float16: trt.float16, np.int32: trt.int32, np.int8: trt.int8}[dtype]

    def define(network):
        x = network.add_input("x", kind, (2, 2))
        layer = network.add_plugin_v3(*tpp.op.quick.typed_copy(x))
        network.mark_output(layer.get_output(0))
        network.mark_output(layer.get_output(1))

    plan = build_plan(define, logger)
    if not supported:
        assert plan is None and "does not support INT8" in logger.errors[0]
        return
    x = np.arange(4).reshape(2, 2).astype(dtype)
    copy, count = run(load(plan), {"x": x}).values()
    np.testing.assert_array_equal(copy, x + 5)
    assert count.tolist() == [4, 4, 4, 4]


def test_a_lazy_plugin_is_registered_when_first_used():
    @tpp.register("quick::lazy_identity", lazy_register=True)
    def desc(x: tpp.TensorDesc) -> tpp.TensorDesc:
        return x.like()

    registry = trt.get_plugin_registry()
    assert registry.get_creator("lazy_identity", "1", "quick") is None
    assert tpp.find_plugin_creator("lazy_identity", "quick") is not None
    assert registry.get_creator("lazy_identity", "1", "quick").plugin_namespace == "quick"


def test_quick_api_misuse_is_explained():
    with pytest.raises(ValueError, match="'namespace::name'"):
        tpp.register("no_namespace")(scaled_add_desc)
    with pytest.raises(TypeError, match="attributes are int, float"):

        @tpp.register("quick::bad_attr")
        def bad(x: tpp.TensorDesc, table: dict) -> tpp.TensorDesc:
            return x

    with pytest.raises(ValueError, match="already registered"):
        tpp.register("quick::scaled_add")(scaled_add_desc)
    with pytest.raises(ValueError, match="is not registered"):
        tpp.impl("quick::unknown")(scaled_add_impl)
    with pytest.raises(TypeError, match="missing \\['blob'"):
        attributes = {k: v for k, v in ATTRIBUTES.items() if k != "blob"}
        tpp.op.quick.scaled_add(None, None, **attributes)


def onnx_model(domain: str, op_type: str) -> bytes:
    node = helper.make_node(
        op_type, ["x", "y"], ["z"], domain=domain, name="custom", **ATTRIBUTES_ONNX
    )
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


ATTRIBUTES_ONNX = dict(
    scale=0.5, pad_rows=2, negate=1, label="héllo", blob="\x00\x01", weights=[1.0, 2.0, 3.0]
)


def test_add_onnx_plugin_makes_the_layer_the_parser_needs():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    x = network.add_input("x", trt.float32, (2, 3))
    y = network.add_input("y", trt.float32, (2, 3))
    assert tpp.find_plugin_creator("nothing_like_it", "quick") is None
    assert tpp.add_onnx_plugin(network, "nothing_like_it", "quick", [x, y], {}, "n") is None
    node = onnx.load_from_string(onnx_model("quick", "scaled_add")).graph.node[0]
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    layer = tpp.add_onnx_plugin(network, "scaled_add", "quick", [x, y], attributes, "custom")
    assert layer.plugin.values["negate"] is True and layer.plugin.values["label"] == "héllo"
    network.mark_output(layer.get_output(0))
    config = network.builder.create_builder_config()
    plan = network.builder.build_serialized_network(network, config)
    a, b = np.ones((2, 3), np.float32), np.full((2, 3), 2.0, np.float32)
    (out,) = run(load(plan), {"x": a, "y": b}).values()
    np.testing.assert_allclose(out, expected(a, b))


def test_an_onnx_node_whose_op_type_is_a_registered_plugin():
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network()
    parser = trt.OnnxParser(network, trt.Logger(trt.Logger.ERROR))
    assert parser.parse(onnx_model("quick", "scaled_add"))
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    a, b = np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)
    (out,) = run(load(plan), {"x": a, "y": b}).values()
    np.testing.assert_allclose(out, expected(a, b))


@pytest.mark.gpu
def test_a_torch_plugin_runs_on_the_gpu_on_the_context_stream():
    seen = {}
    plan = build_plan(scaled_add_network(seen), configure=rows)
    engine = load(plan)
    assert engine._device.type == "cuda"
    x = np.random.default_rng(2).random((4, 3), dtype=np.float32)
    y = np.random.default_rng(3).random((4, 3), dtype=np.float32)
    (out,) = run(engine, {"x": x, "y": y}).values()
    np.testing.assert_allclose(out, expected(x, y), rtol=1e-5)
    assert SEEN["stream"] == torch.cuda.current_stream().cuda_stream


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton")
def test_a_triton_plugin_runs_on_the_gpu():
    import triton
    import triton.language as tl

    @triton.jit
    def add_one(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        tl.store(y_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) + 1.0, mask=mask)

    @tpp.register("quick::triton_add_one")
    def desc(x: tpp.TensorDesc) -> tpp.TensorDesc:
        return x.like()

    @tpp.impl("quick::triton_add_one")
    def implementation(x, outputs, stream) -> None:
        n = x.numel()
        add_one[(triton.cdiv(n, 256),)](x, outputs[0], n, BLOCK=256)

    def define(network):
        x = network.add_input("x", trt.float32, (1000,))
        network.mark_output(network.add_plugin_v3(*tpp.op.quick.triton_add_one(x)).get_output(0))

    x = np.random.default_rng(4).random(1000, dtype=np.float32)
    (out,) = run(load(build_plan(define)), {"x": x}).values()
    np.testing.assert_allclose(out, x + 1, rtol=1e-6)
