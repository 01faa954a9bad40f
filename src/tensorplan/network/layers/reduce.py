"""Layers of the reduction ops."""

from __future__ import annotations

from ..layer import ILayer, attribute


class IReduceLayer(ILayer):
    """A reduction over the axes of a bitmask, keeping the reduced dims as 1 or dropping them."""

    _op_name = "reduce"
    op = attribute("op")
    axes = attribute("axes")
    keep_dims = attribute("keep_dims")


class ITopKLayer(ILayer):
    """The k largest or smallest values along one axis (output 0) and their INT32 indices
    (output 1); `set_input(1, tensor)` gives k as a scalar shape tensor instead of `k`."""

    _op_name = "topk"
    op = attribute("op")
    k = attribute("k")
    axes = attribute("axes")
