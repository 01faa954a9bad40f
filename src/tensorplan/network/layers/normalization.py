"""Layers of the normalization ops."""

from __future__ import annotations

from ..layer import ILayer, attribute


class ISoftMaxLayer(ILayer):
    _op_name = "softmax"
    axes = attribute("axes")


class INormalizationLayer(ILayer):
    _op_name = "normalization"
    epsilon = attribute("epsilon")
    axes = attribute("axes")
    num_groups = attribute("num_groups")
    compute_precision = attribute("compute_precision")
