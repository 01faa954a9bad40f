"""Layers of the shaping ops."""

from __future__ import annotations

from ...types import Dims
from ..layer import ILayer, attribute


class IShuffleLayer(ILayer):
    _op_name = "shuffle"
    first_transpose = attribute("first_transpose")
    reshape_dims = attribute("reshape_dims", Dims)
    second_transpose = attribute("second_transpose")
    zero_is_placeholder = attribute("zero_is_placeholder")


class IConcatenationLayer(ILayer):
    _op_name = "concatenation"
    axis = attribute("axis")


class ISliceLayer(ILayer):
    _op_name = "slice"
    start = attribute("start", Dims)
    shape = attribute("shape", Dims)
    stride = attribute("stride", Dims)
    mode = attribute("mode")
    axes = attribute("axes", Dims)


class IGatherLayer(ILayer):
    _op_name = "gather"
    axis = attribute("axis")
    mode = attribute("mode")
    num_elementwise_dims = attribute("num_elementwise_dims")


class IShapeLayer(ILayer):
    _op_name = "shape"
