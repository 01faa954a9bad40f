"""Registries merged from several modules refuse a name given twice."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

import tensorplan as trt
from tensorplan.registry import unique_names


def test_a_name_given_twice_is_refused_naming_it():
    assert unique_names([("a", 1), ("b", 2)], "op") == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="ONNX importer 'LpPool' is registered twice"):
        unique_names([("LpPool", 1), ("Relu", 2), ("LpPool", 3)], "ONNX importer")


def test_lp_pool_imports_as_the_lp_pooling_layer():
    """There was a second LpPool importer (an average-pool decomposition) that the merge
    silently dropped; now one importer exists, and it makes the extension layer."""
    node = helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[2, 2], p=3)
    graph = helper.make_graph(
        [node],
        "lp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    network = trt.Builder(trt.Logger()).create_network()
    assert trt.OnnxParser(network, trt.Logger()).parse(model.SerializeToString())
    assert [type(network.get_layer(i)).__name__ for i in range(network.num_layers)] == [
        "ILpPoolingLayer"
    ]
