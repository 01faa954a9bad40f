"""IRNNLayer: ONNX's RNN, GRU and LSTM as a tensorplan extension layer (reports PLUGIN)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...ops.recurrent import RNNOperation
from ..layer import ILayer, attribute
from ..tensor import ITensor

if TYPE_CHECKING:
    from ..definition import INetworkDefinition

_OPTIONAL_NAMES = ("bias", "sequence_lens", "initial_h", "initial_c", "peepholes")


class IRNNLayer(ILayer):
    """A recurrent layer with ONNX's inputs, attributes and equations (ops/recurrent.py).

    Inputs: 0 X, 1 W, 2 R, then optional 3 B, 4 sequence_lens, 5 initial_h, 6 initial_c,
    7 P (set them with `set_input`). Outputs: 0 Y, 1 Y_h, and for LSTM 2 Y_c. `mode` is
    fixed when the layer is added, since it decides the number of outputs.
    """

    _op_name = "rnn"
    direction = attribute("direction")
    hidden_size = attribute("hidden_size")
    activations = attribute("activations")
    activation_alpha = attribute("activation_alpha")
    activation_beta = attribute("activation_beta")
    clip = attribute("clip")
    input_forget = attribute("input_forget")
    linear_before_reset = attribute("linear_before_reset")
    layout = attribute("layout")

    def __init__(
        self,
        network: INetworkDefinition,
        inputs: list[ITensor | None],
        attrs: dict[str, Any],
        optional: Sequence[ITensor | None] = (),
    ) -> None:
        mode = RNNOperation(attrs["mode"])
        for name, tensor in zip(_OPTIONAL_NAMES, optional, strict=False):
            if tensor is not None and not (
                isinstance(tensor, ITensor) and tensor._network is network
            ):
                raise TypeError(
                    f"{name} must be None or an ITensor of this network, "
                    f"got {type(tensor).__name__}"
                )
        inputs = [*inputs, *optional]
        while inputs and inputs[-1] is None:
            inputs.pop()
        super().__init__(network, inputs, attrs, num_outputs=3 if mode == RNNOperation.LSTM else 2)

    @property
    def mode(self) -> RNNOperation:
        return self._attrs["mode"]
