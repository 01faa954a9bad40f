"""Layers of the pointwise ops."""

from __future__ import annotations

from ...device import CODED_TYPES
from ...ops.base import TensorMeta
from ..layer import ILayer, attribute


class IElementWiseLayer(ILayer):
    """A binary operation of two tensors of equal rank, with broadcast of size-1 dims."""

    _op_name = "elementwise"
    op = attribute("op")


class IUnaryLayer(ILayer):
    _op_name = "unary"
    op = attribute("op")


class IActivationLayer(ILayer):
    _op_name = "activation"
    type = attribute("type")
    alpha = attribute("alpha")
    beta = attribute("beta")


class ISelectLayer(ILayer):
    _op_name = "select"


class ICastLayer(ILayer):
    """Converts its input to `to_type`, as ONNX Cast does (docs/dtypes.md).

    `saturate` and `round_mode` are tensorplan extensions (ONNX Cast's attributes): whether
    FP8 and E8M0 results clamp to the largest finite value (default True), and how E8M0
    rounds ("up", the default, "down" or "nearest").
    """

    _op_name = "cast"
    to_type = attribute("to_type")
    saturate = attribute("saturate")
    round_mode = attribute("round_mode")

    def _infer(self, inputs: list[TensorMeta | None]) -> list[TensorMeta]:
        # FP4/FP6 bit codes share uint8 storage with UINT8: the op is told which it reads
        source = inputs[0].dtype if inputs and inputs[0] is not None else None
        self._attrs["from_type"] = source if source in CODED_TYPES else None
        return super()._infer(inputs)


class IIdentityLayer(ILayer):
    _op_name = "identity"
