"""The padding layer."""

from __future__ import annotations

from ...types import Dims
from ..layer import ILayer, attribute


class IPaddingLayer(ILayer):
    """Zero padding of the innermost axes; negative padding trims."""

    _op_name = "padding"
    pre_padding_nd = attribute("pre_padding_nd", Dims)
    post_padding_nd = attribute("post_padding_nd", Dims)
