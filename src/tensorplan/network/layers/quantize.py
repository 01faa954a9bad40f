"""Quantization layers."""

from __future__ import annotations

from ..layer import ILayer


class IQuantizeLayer(ILayer):
    _op_name = "quantize"


class IDequantizeLayer(ILayer):
    _op_name = "dequantize"


class IDynamicQuantizeLayer(ILayer):
    _op_name = "dynamic_quantize"
