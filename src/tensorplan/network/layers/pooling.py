"""Layers of the pooling ops."""

from __future__ import annotations

from ...types import Dims
from ..layer import ILayer, attribute


class IPoolingLayer(ILayer):
    _op_name = "pooling"
    type = attribute("type")
    window_size_nd = attribute("window_size_nd", Dims)
    stride_nd = attribute("stride_nd", Dims)
    padding_nd = attribute("padding_nd", Dims)
    pre_padding = attribute("pre_padding", Dims)
    post_padding = attribute("post_padding", Dims)
    padding_mode = attribute("padding_mode")
    blend_factor = attribute("blend_factor")
    average_count_excludes_padding = attribute("average_count_excludes_padding")
