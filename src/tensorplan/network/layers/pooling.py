"""Layers of the pooling ops."""

from __future__ import annotations

from ...types import Dims
from ..layer import attribute
from .conv import WindowLayer


class IPoolingLayer(WindowLayer):
    _op_name = "pooling"
    _size_key = "window_size_nd"
    type = attribute("type")
    window_size_nd = attribute("window_size_nd", Dims)
    blend_factor = attribute("blend_factor")
    average_count_excludes_padding = attribute("average_count_excludes_padding")
