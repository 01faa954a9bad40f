"""Layers that move elements by index: scatter, one-hot and reverse sequence."""

from __future__ import annotations

from ...ops.indexing import ScatterReduction
from ..layer import ILayer, attribute


class IScatterLayer(ILayer):
    """`data` with `updates` written at `indices` (ScatterMode ELEMENT along `axis`, or ND).

    `reduction` (a ScatterReduction, default NONE) is a tensorplan extension for ONNX's
    ScatterElements/ScatterND `reduction`: ADD, MUL, MAX or MIN combine the update with the
    value already there.
    """

    _op_name = "scatter"
    mode = attribute("mode")
    axis = attribute("axis")
    reduction = attribute("reduction")


class IOneHotLayer(ILayer):
    _op_name = "one_hot"
    axis = attribute("axis")


class IReverseSequenceLayer(ILayer):
    _op_name = "reverse_sequence"
    batch_axis = attribute("batch_axis")
    sequence_axis = attribute("sequence_axis")


__all__ = ["IOneHotLayer", "IReverseSequenceLayer", "IScatterLayer", "ScatterReduction"]
