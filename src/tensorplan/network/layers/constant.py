"""IConstantLayer: a tensor of weights; it becomes a constant of the program, not a node."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ...ops.base import ShapeError, TensorMeta
from ...types import Dims, LayerType, Weights, as_shape, as_weights, volume
from ..layer import ILayer

if TYPE_CHECKING:
    from ..definition import INetworkDefinition


class IConstantLayer(ILayer):
    """A layer that outputs the tensor held by its `weights`, shaped by `shape`."""

    _op_name = None
    _layer_type = LayerType.CONSTANT

    def __init__(self, network: INetworkDefinition, shape: Any, weights: Weights) -> None:
        super().__init__(network, [])
        self._shape = as_shape(shape)
        self._weights = as_weights(weights)

    @property
    def weights(self) -> Weights:
        return self._weights

    @weights.setter
    def weights(self, value: Weights) -> None:
        self._weights = as_weights(value)
        self._network._changed(self)

    @property
    def shape(self) -> Dims:
        return Dims(self._shape)

    @shape.setter
    def shape(self, value: Any) -> None:
        self._shape = as_shape(value)
        self._network._changed(self)

    def value(self) -> torch.Tensor:
        """The constant as a CPU tensor of `shape`; ShapeError if the weights do not fill it."""
        array = self._weights.numpy()
        if array.size != volume(self._shape) or any(d < 0 for d in self._shape):
            raise ShapeError(
                f"{array.size} weights do not fill the constant shape {list(self._shape)}"
            )
        return torch.tensor(array.reshape(self._shape))

    def _infer(self, inputs: list[TensorMeta | None]) -> list[TensorMeta]:
        value = self.value()
        return [TensorMeta(self._weights.dtype, tuple(value.shape), value)]
