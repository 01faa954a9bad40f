"""Per-channel layers: scale, parametric ReLU and local response normalization."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...types import Weights, as_weights
from ..layer import ILayer, attribute
from ..tensor import ITensor

if TYPE_CHECKING:
    from ..definition import INetworkDefinition

_ROLES = ("shift", "scale", "power")


class IScaleLayer(ILayer):
    """(input * scale + shift) ** power; the Weights become the op's constant inputs 1 to 3.

    Empty Weights mean the default coefficient (shift 0, scale 1, power 1) and become no input.
    """

    _op_name = "scale"
    mode = attribute("mode")
    channel_axis = attribute("channel_axis")

    def __init__(
        self,
        network: INetworkDefinition,
        inputs: list[ITensor | None],
        attrs: dict[str, Any],
        shift: Any = None,
        scale: Any = None,
        power: Any = None,
    ) -> None:
        super().__init__(network, inputs, attrs)
        self._weights: dict[str, Weights] = {}
        self._weight_tensors: dict[str, torch.Tensor] = {}
        self.shift = shift
        self.scale = scale
        self.power = power

    @property
    def shift(self) -> Weights:
        return self._weights["shift"]

    @shift.setter
    def shift(self, value: Any) -> None:
        self._set_weights("shift", value)

    @property
    def scale(self) -> Weights:
        return self._weights["scale"]

    @scale.setter
    def scale(self, value: Any) -> None:
        self._set_weights("scale", value)

    @property
    def power(self) -> Weights:
        return self._weights["power"]

    @power.setter
    def power(self, value: Any) -> None:
        self._set_weights("power", value)

    def _set_weights(self, role: str, value: Any) -> None:
        self._weights[role] = Weights() if value is None else as_weights(value)
        self._weight_tensors.pop(role, None)
        self._network._changed(self)

    def _node_inputs(self) -> list[ITensor | torch.Tensor | None]:
        x, *given = (*self._inputs, None, None, None)[:4]
        return [
            x,
            *(t if t is not None else self._flat(r) for t, r in zip(given, _ROLES, strict=True)),
        ]

    def _flat(self, role: str) -> torch.Tensor | None:
        """Weights as a flat CPU tensor, copied once per assignment (TensorRT copies at build)."""
        if not self._weights[role].size:
            return None
        if role not in self._weight_tensors:
            array = np.array(self._weights[role].numpy()).reshape(-1)
            self._weight_tensors[role] = torch.from_numpy(array)
        return self._weight_tensors[role]


class IParametricReLULayer(ILayer):
    """Leaky ReLU with per-element slopes (input 1), broadcast to the input."""

    _op_name = "parametric_relu"


class ILRNLayer(ILayer):
    """Local response normalization across channels."""

    _op_name = "lrn"
    window_size = attribute("window_size")
    alpha = attribute("alpha")
    beta = attribute("beta")
    k = attribute("k")
