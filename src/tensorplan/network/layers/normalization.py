"""Layers of the normalization ops."""

from __future__ import annotations

from ..layer import ILayer, attribute


class ISoftMaxLayer(ILayer):
    """Softmax along one axis; the default axis follows the input's rank (add_softmax)."""

    _op_name = "softmax"
    axes = attribute("axes")


class INormalizationLayer(ILayer):
    """Layer, instance or group normalization of input 0, scaled by input 1, shifted by input 2."""

    _op_name = "normalization"
    epsilon = attribute("epsilon")
    axes = attribute("axes")
    num_groups = attribute("num_groups")
    compute_precision = attribute("compute_precision")
