"""Quantization layers, and DynamicQuantizeLinear for the ONNX importer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..layer import ILayer, attribute
from ..tensor import ITensor

if TYPE_CHECKING:
    from ..definition import INetworkDefinition


class IQuantizeLayer(ILayer):
    """`x / scale` rounded half to even, plus the zero point (input 2), in `to_type`.

    `block_size` (blocked scales along `axis`, as ONNX) and `saturate` (float8 overflow)
    are tensorplan extensions.
    """

    _op_name = "quantize"
    axis = attribute("axis")
    to_type = attribute("to_type")
    block_size = attribute("block_size")
    saturate = attribute("saturate")


class IDequantizeLayer(ILayer):
    """`(x - zero point) * scale` in `to_type`; `block_size` is an extension, as above."""

    _op_name = "dequantize"
    axis = attribute("axis")
    to_type = attribute("to_type")
    block_size = attribute("block_size")


class IDynamicQuantizeLayer(ILayer):
    """Block quantization with computed scales: output 0 the data, output 1 the scales."""

    _op_name = "dynamic_quantize"
    axis = attribute("axis")
    block_size = attribute("block_size")
    to_type = attribute("to_type")
    scale_type = attribute("scale_type")


class IDynamicQuantizeLinearLayer(ILayer):
    """ONNX DynamicQuantizeLinear (not in TensorRT): outputs data, scale and zero point."""

    _op_name = "dynamic_quantize_linear"


def add_dynamic_quantize_linear(
    network: INetworkDefinition, input: ITensor
) -> IDynamicQuantizeLinearLayer | None:
    """Add an ONNX DynamicQuantizeLinear to `network`; None (error reported) if it cannot."""
    return network._add(IDynamicQuantizeLinearLayer, [input], {})
