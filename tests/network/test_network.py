"""The network API: inputs, outputs, layers, tensors, and network-level shape inference."""

from __future__ import annotations

import numpy as np

import tensorplan as trt


def make_network(logger):
    builder = trt.Builder(logger)
    return builder, builder.create_network()


def test_inputs_outputs_and_layers(logger):
    _, network = make_network(logger)
    x = network.add_input("x", trt.float32, (2, 3))
    relu = network.add_activation(x, trt.ActivationType.RELU)
    network.mark_output(relu.get_output(0))
    assert network.num_inputs == 1 and network.get_input(0) is x
    assert network.num_outputs == 1 and network.get_output(0) is relu.get_output(0)
    assert network.num_layers == 1 and network.get_layer(0) is relu and network[0] is relu
    assert relu.type == trt.ActivationType.RELU  # IActivationLayer.type is its activation
    assert network.add_identity(x).type == trt.LayerType.IDENTITY
    assert relu.name == "(Unnamed Layer* 0) [Activation]"
    assert relu.get_output(0).name == "(Unnamed Layer* 0) [Activation]_output"
    assert relu.num_inputs == 1 and relu.get_input(0) is x
    assert x.is_network_input and not x.is_network_output
    assert relu.get_output(0).is_network_output
    network.unmark_output(relu.get_output(0))
    assert network.num_outputs == 0
    assert network.get_layer(5) is None and network.get_input(3) is None


def test_tensor_shapes_and_types_are_inferred_with_dynamic_dims(logger):
    _, network = make_network(logger)
    x = network.add_input("x", trt.float32, (-1, 3))
    bias = network.add_constant((1, 3), np.ones((1, 3), np.float32))
    total = network.add_elementwise(x, bias.get_output(0), trt.ElementWiseOperation.SUM)
    greater = network.add_elementwise(
        total.get_output(0), bias.get_output(0), trt.ElementWiseOperation.GREATER
    )
    assert total.get_output(0).shape == (-1, 3)
    assert total.get_output(0).dtype == trt.float32
    assert greater.get_output(0).dtype == trt.bool
    x.shape = (4, 3)
    assert total.get_output(0).shape == (4, 3)


def test_layer_attributes_are_checked_and_changes_reach_shapes(logger):
    _, network = make_network(logger)
    x = network.add_input("x", trt.float32, (2,))
    cast = network.add_cast(x, trt.int32)
    assert cast.get_output(0).dtype == trt.int32
    cast.to_type = trt.float16
    assert cast.get_output(0).dtype == trt.float16
    unary = network.add_unary(x, trt.UnaryOperation.EXP)
    unary.op = trt.UnaryOperation.ABS
    assert unary.op == trt.UnaryOperation.ABS


def test_invalid_arguments_are_reported_and_give_none(logger):
    _, network = make_network(logger)
    x = network.add_input("x", trt.float32, (2,))
    assert network.add_input("x", trt.float32, (2,)) is None
    assert network.add_input("bad", trt.float32, (-2, 3)) is None
    assert network.add_activation("not a tensor", trt.ActivationType.RELU) is None
    _, other = make_network(logger)
    assert other.add_activation(x, trt.ActivationType.RELU) is None
    assert len(logger.errors) == 4
    assert "already has an input named 'x'" in logger.errors[0]
    assert "must be an ITensor of this network" in logger.errors[3]


def test_shape_errors_are_reported_when_the_shape_is_asked_for(logger):
    _, network = make_network(logger)
    x = network.add_input("x", trt.float32, (2, 3))
    y = network.add_input("y", trt.float32, (4, 3))
    total = network.add_elementwise(x, y, trt.ElementWiseOperation.SUM)
    assert total.get_output(0).shape == ()
    assert len(logger.errors) == 1
    assert "cannot be broadcast" in logger.errors[0]
    assert total.name in logger.errors[0]


def test_set_input_rewires_a_layer(logger):
    _, network = make_network(logger)
    x = network.add_input("x", trt.float32, (2,))
    y = network.add_input("y", trt.int32, (5,))
    identity = network.add_identity(x)
    identity.set_input(0, y)
    assert identity.get_input(0) is y
    assert identity.get_output(0).shape == (5,)
    assert identity.get_output(0).dtype == trt.int32


def test_precision_and_output_type_settings(logger):
    _, network = make_network(logger)
    x = network.add_input("x", trt.float32, (2,))
    layer = network.add_unary(x, trt.UnaryOperation.EXP)
    assert not layer.precision_is_set
    layer.precision = trt.float16
    assert layer.precision == trt.float16 and layer.precision_is_set
    layer.reset_precision()
    assert not layer.precision_is_set
    layer.set_output_type(0, trt.float16)
    assert layer.output_type_is_set(0) and layer.get_output_type(0) == trt.float16
    assert layer.get_output(0).dtype == trt.float16
    layer.reset_output_type(0)
    assert layer.get_output(0).dtype == trt.float32


def test_network_metadata(logger):
    builder, network = make_network(logger)
    assert network.name.startswith("Unnamed Network ")
    assert network.builder is builder
    assert not network.has_implicit_batch_dimension
    strong = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    assert strong.get_flag(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert not network.get_flag(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def test_a_producer_reached_twice_is_not_a_cycle():
    network = trt.Builder(trt.Logger()).create_network()
    x = network.add_input("x", trt.float32, (2, 3))
    a = network.add_unary(x, trt.UnaryOperation.EXP).get_output(0)
    b = network.add_unary(a, trt.UnaryOperation.NEG).get_output(0)
    square = network.add_elementwise(a, a, trt.ElementWiseOperation.PROD).get_output(0)
    later = network.add_elementwise(b, square, trt.ElementWiseOperation.SUM).get_output(0)
    assert tuple(square.shape) == (2, 3)
    assert tuple(later.shape) == (2, 3)


def test_a_failed_layer_keeps_shape_inference_linear(monkeypatch):
    """Once one layer had failed, adding any layer forgot every inferred shape, so each query
    re-inferred the whole network: an ONNX Loop unrolled after a failing layer hung the
    parser (found by the ONNX fuzz target)."""
    from tensorplan.network.definition import INetworkDefinition

    inferred = []
    original = INetworkDefinition._infer_layer
    monkeypatch.setattr(
        INetworkDefinition,
        "_infer_layer",
        lambda self, layer: inferred.append(layer) or original(self, layer),
    )
    network = trt.Builder(trt.Logger(trt.Logger.INTERNAL_ERROR)).create_network()
    x = network.add_input("x", trt.float32, (2, 3))
    other = network.add_input("other", trt.float32, (4, 5))
    bad = network.add_elementwise(x, other, trt.ElementWiseOperation.SUM).get_output(0)
    assert network._meta(bad) is None  # the shapes do not broadcast
    y = x
    for _ in range(300):
        layer = network.add_activation(y, trt.ActivationType.LEAKY_RELU)
        layer.alpha = 0.1  # configuring a layer not inferred yet forgets nothing
        y = layer.get_output(0)
        network._infer_in_order(y)  # as the ONNX importer asks, for every new tensor
        assert network._meta(y).shape == (2, 3)
    assert len(inferred) <= 302  # each layer once (it was 45,000)
