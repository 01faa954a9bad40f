"""The fill layer: tensors generated from a shape."""

from __future__ import annotations

from typing import Any

from ...types import Dims
from ..layer import ILayer, attribute


class _parameter(attribute):
    """Alpha or beta: setting the number drops the tensor given for it, as in TensorRT."""

    def __init__(self, key: str, index: int) -> None:
        super().__init__(key)
        self.index = index

    def __set__(self, layer: ILayer, value: Any) -> None:
        if self.index < len(layer._inputs):
            layer._inputs[self.index] = None
        super().__set__(layer, value)


class IFillLayer(ILayer):
    """Generates a tensor (LINSPACE, RANDOM_UNIFORM, RANDOM_NORMAL) of `shape` and `to_type`.

    `set_input(0, shape)` gives the shape as a shape tensor; `set_input(1, alpha)` and
    `set_input(2, beta)` give alpha and beta as tensors (both or neither). `seed` is a
    tensorplan extension: None (default) draws new random values on every execution, an
    integer the same values every time.
    """

    _op_name = "fill"
    shape = attribute("dimensions", Dims)
    operation = attribute("operation")
    alpha = _parameter("alpha", 1)
    beta = _parameter("beta", 2)
    to_type = attribute("to_type")
    seed = attribute("seed")

    def is_alpha_beta_int64(self) -> bool:
        """Whether alpha and beta were given as integers (TensorRT's setAlphaInt64)."""
        return isinstance(self.alpha, int) and isinstance(self.beta, int)
