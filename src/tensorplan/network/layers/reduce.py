"""Layers of the reduction ops."""

from __future__ import annotations

from ..layer import ILayer, attribute


class IReduceLayer(ILayer):
    _op_name = "reduce"
    op = attribute("op")
    axes = attribute("axes")
    keep_dims = attribute("keep_dims")


class ITopKLayer(ILayer):
    _op_name = "topk"
    op = attribute("op")
    k = attribute("k")
    axes = attribute("axes")
