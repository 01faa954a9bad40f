"""Layers of the sampling ops: resize and grid sample."""

from __future__ import annotations

from typing import Any

from ...types import Dims
from ..layer import ILayer, attribute

_SHAPE = attribute("shape")
_SCALES = attribute("scales")


class IResizeLayer(ILayer):
    """Resizes the input to `shape`, by `scales`, or as input 1 (set_input(1, ...)) says.

    Setting `shape` replaces the scales and setting `scales` replaces the shape, so the one
    set last decides, as in TensorRT. `antialias` is an extension for ONNX Resize-18.
    """

    _op_name = "resize"
    resize_mode = attribute("resize_mode")
    coordinate_transformation = attribute("coordinate_transformation")
    selector_for_single_pixel = attribute("selector_for_single_pixel")
    nearest_rounding = attribute("nearest_rounding")
    exclude_outside = attribute("exclude_outside")
    cubic_coeff = attribute("cubic_coeff")
    antialias = attribute("antialias")

    @property
    def shape(self) -> Dims:
        """The output dims; empty while scales (or input 1) give the output."""
        value = self._attrs["shape"]
        return Dims(value if value is not None else ())

    @shape.setter
    def shape(self, value: Any) -> None:
        _SHAPE.__set__(self, tuple(value))
        self._attrs["scales"] = ()

    @property
    def scales(self) -> list[float]:
        return list(self._attrs["scales"])

    @scales.setter
    def scales(self, value: Any) -> None:
        _SCALES.__set__(self, tuple(value))
        self._attrs["shape"] = None


class IGridSampleLayer(ILayer):
    """Samples input 0 at the normalized coordinates of grid (input 1)."""

    _op_name = "grid_sample"
    interpolation_mode = attribute("interpolation_mode")
    align_corners = attribute("align_corners")
    sample_mode = attribute("sample_mode")
