"""Layers that move elements by index: scatter, one-hot and reverse sequence."""

from __future__ import annotations

from ..layer import ILayer


class IScatterLayer(ILayer):
    _op_name = "scatter"


class IOneHotLayer(ILayer):
    _op_name = "one_hot"


class IReverseSequenceLayer(ILayer):
    _op_name = "reverse_sequence"
