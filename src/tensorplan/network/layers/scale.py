"""Per-channel layers: scale, parametric ReLU and local response normalization."""

from __future__ import annotations

from ..layer import ILayer


class IScaleLayer(ILayer):
    _op_name = "scale"


class IParametricReLULayer(ILayer):
    _op_name = "parametric_relu"


class ILRNLayer(ILayer):
    _op_name = "lrn"
