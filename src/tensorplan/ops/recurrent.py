"""Recurrent ops: ONNX's RNN, GRU and LSTM (opset 14) as one extension op.

TensorRT 10 has no recurrent layer (IRNNv2Layer was removed; onnx-tensorrt unrolls these
into ILoop), so `rnn` is a tensorplan extension. Its inputs, attributes and equations are
ONNX's; docs/api-differences.md describes the layer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..types import FLOATS_AND_DOUBLE, DataType, LayerType
from .base import UNKNOWN, Attr, Bool, Enum, Float, Floats, Int, Op, ShapeError, TensorMeta


class RNNOperation(enum.IntEnum):
    """The cell of an RNN layer (the values of TensorRT 8's RNNOperation)."""

    RELU = 0
    """ONNX RNN with f = Relu: Ht = f(Xt*Wi^T + Ht-1*Ri^T + Wbi + Rbi)."""
    TANH = 1
    """ONNX RNN with f = Tanh (ONNX's default)."""
    LSTM = 2
    """ONNX LSTM: gates i, o, f, c; outputs Y, Y_h and Y_c."""
    GRU = 3
    """ONNX GRU: gates z, r, h."""


class RNNDirection(enum.IntEnum):
    """ONNX's `direction` attribute."""

    FORWARD = 0
    REVERSE = 1
    BIDIRECTIONAL = 2


class RNNActivation(enum.IntEnum):
    """ONNX's recurrent activation functions; alpha and beta mean what ONNX says."""

    RELU = 0
    TANH = 1
    SIGMOID = 2
    AFFINE = 3
    """alpha * x + beta."""
    LEAKY_RELU = 4
    """x if x >= 0 else alpha * x."""
    THRESHOLDED_RELU = 5
    """x if x > alpha else 0."""
    SCALED_TANH = 6
    """alpha * tanh(beta * x)."""
    HARD_SIGMOID = 7
    """min(max(alpha * x + beta, 0), 1)."""
    ELU = 8
    """x if x >= 0 else alpha * (exp(x) - 1)."""
    SOFTSIGN = 9
    SOFTPLUS = 10
    """log(1 + exp(x))."""


X, W, R, B, SEQUENCE_LENS, INITIAL_H, INITIAL_C, PEEPHOLES = range(8)
"""The op's input indices: ONNX's input order."""

GATES = {RNNOperation.RELU: 1, RNNOperation.TANH: 1, RNNOperation.GRU: 3, RNNOperation.LSTM: 4}
"""Gates per cell: the row blocks of W and R."""

DEFAULT_ACTIVATIONS = {
    RNNOperation.RELU: (RNNActivation.RELU,),
    RNNOperation.TANH: (RNNActivation.TANH,),
    RNNOperation.GRU: (RNNActivation.SIGMOID, RNNActivation.TANH),
    RNNOperation.LSTM: (RNNActivation.SIGMOID, RNNActivation.TANH, RNNActivation.TANH),
}
"""ONNX's defaults: f for RNN; f, g for GRU; f, g, h for LSTM (per direction)."""

ACTIVATION_DEFAULTS = {
    RNNActivation.AFFINE: (1.0, 0.0),
    RNNActivation.LEAKY_RELU: (0.01, 0.0),
    RNNActivation.THRESHOLDED_RELU: (1.0, 0.0),
    RNNActivation.SCALED_TANH: (1.0, 1.0),
    RNNActivation.HARD_SIGMOID: (0.2, 0.5),
    RNNActivation.ELU: (1.0, 0.0),
}
"""(alpha, beta) when not given: the defaults of the ONNX operators of the same name."""

_USES_ALPHA = frozenset(ACTIVATION_DEFAULTS)
_USES_BETA = frozenset(
    {RNNActivation.AFFINE, RNNActivation.SCALED_TANH, RNNActivation.HARD_SIGMOID}
)

ONNX_ACTIVATIONS = {
    "relu": RNNActivation.RELU,
    "tanh": RNNActivation.TANH,
    "sigmoid": RNNActivation.SIGMOID,
    "affine": RNNActivation.AFFINE,
    "leakyrelu": RNNActivation.LEAKY_RELU,
    "thresholdedrelu": RNNActivation.THRESHOLDED_RELU,
    "scaledtanh": RNNActivation.SCALED_TANH,
    "hardsigmoid": RNNActivation.HARD_SIGMOID,
    "elu": RNNActivation.ELU,
    "softsign": RNNActivation.SOFTSIGN,
    "softplus": RNNActivation.SOFTPLUS,
}
"""ONNX activation names (compared in lower case, as onnxruntime does) to RNNActivation."""

_LENGTH_TYPES = frozenset({DataType.INT32, DataType.INT64})
_MAX_ACTIVATIONS = 6


def onnx_activations(
    names: Sequence[str], alphas: Sequence[float] = (), betas: Sequence[float] = ()
) -> tuple[tuple[RNNActivation, ...], tuple[float, ...], tuple[float, ...]]:
    """ONNX's `activations`, `activation_alpha` and `activation_beta` as the layer's attributes.

    ONNX lists alphas (and betas) only for the functions that take one, in the order of the
    functions (as onnxruntime reads them); the layer takes one alpha and one beta per
    function. Missing values get ACTIVATION_DEFAULTS. ValueError for an unknown name.
    """
    activations = []
    for name in names:
        kind = ONNX_ACTIVATIONS.get(name.lower())
        if kind is None:
            raise ValueError(
                f"unknown recurrent activation {name!r}; expected one of "
                "Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, "
                "HardSigmoid, Elu, Softsign, Softplus"
            )
        activations.append(kind)
    alpha_values, beta_values = iter(alphas), iter(betas)
    per_alpha, per_beta = [], []
    for kind in activations:
        default_alpha, default_beta = ACTIVATION_DEFAULTS.get(kind, (0.0, 0.0))
        per_alpha.append(next(alpha_values, default_alpha) if kind in _USES_ALPHA else 0.0)
        per_beta.append(next(beta_values, default_beta) if kind in _USES_BETA else 0.0)
    return tuple(activations), tuple(per_alpha), tuple(per_beta)


class Activations(Attr):
    """A sequence of RNNActivation, stored as a tuple (empty: the cell's defaults)."""

    enum_type = RNNActivation

    def check(self, value: Any) -> tuple[RNNActivation, ...]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(f"expected a sequence of RNNActivation, got {value!r}")
        items = list(value)
        if len(items) > _MAX_ACTIVATIONS:
            raise ValueError(f"at most {_MAX_ACTIVATIONS} activations, got {len(items)}")
        return tuple(Enum(RNNActivation).check(item) for item in items)

    def encode(self, value: Any) -> list[int]:
        return [int(item) for item in value]

    def describe(self) -> str:
        return f"list of at most {_MAX_ACTIVATIONS} `RNNActivation` values (integers)"


class RNN(Op):
    """ONNX RNN, GRU and LSTM (selected by `mode`), forward, reverse or bidirectional.

    Inputs (ONNX's order; D = 2 if bidirectional else 1, G = gates of the cell, H = hidden
    size): X [T, N, I] ([N, T, I] for layout 1); W [D, G*H, I]; R [D, G*H, H]; then
    optional: B [D, 2*G*H] (Wb then Rb); sequence_lens [N] INT32/INT64; initial_h and (LSTM)
    initial_c [D, N, H] ([N, D, H] for layout 1); (LSTM) peepholes P [D, 3*H] (i, o, f).
    Outputs: Y [T, D, N, H] ([N, T, D, H]), Y_h and (LSTM) Y_c [D, N, H] ([N, D, H]).

    sequence_lens (clamped to [0, T]): steps past a sequence's length leave its state as it
    was and give zeros in Y; the reverse direction reads each sequence from its own last
    step. `clip` > 0 clamps every gate pre-activation to [-clip, clip] (onnxruntime; 0
    disables it). LSTM `input_forget` couples the gates as f = 1 - i. HALF and BF16 compute
    in FLOAT.
    """

    name = "rnn"
    layer_type = LayerType.PLUGIN
    num_inputs = (3, 8)
    num_outputs = -1
    attrs = {
        "mode": Enum(RNNOperation, RNNOperation.TANH),
        "direction": Enum(RNNDirection, RNNDirection.FORWARD),
        "hidden_size": Int(0, low=0),
        "activations": Activations(()),
        "activation_alpha": Floats((), max_len=_MAX_ACTIVATIONS),
        "activation_beta": Floats((), max_len=_MAX_ACTIVATIONS),
        "clip": Float(0.0),
        "input_forget": Bool(False),
        "linear_before_reset": Bool(False),
        "layout": Int(0, low=0),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, w, r, bias, lengths, initial_h, initial_c, peepholes = _padded(inputs)
        mode = attrs["mode"]
        gates = GATES[mode]
        lstm = mode == RNNOperation.LSTM
        directions = 2 if attrs["direction"] == RNNDirection.BIDIRECTIONAL else 1
        _check_attrs(attrs, directions)
        if x.dtype not in FLOATS_AND_DOUBLE:
            raise ShapeError(f"X must be FLOAT, HALF, BF16 or DOUBLE, got {x.dtype.name}")
        named = {"W": w, "R": r, "B": bias, "initial_h": initial_h}
        if not lstm:
            for meta, what in ((initial_c, "initial_c"), (peepholes, "peepholes")):
                if meta is not None:
                    raise ShapeError(f"{what} is an input of LSTM only, not {mode.name}")
        named |= {"initial_c": initial_c, "P": peepholes}
        for what, meta in named.items():
            if meta is not None and meta.dtype != x.dtype:
                raise ShapeError(f"{what} must have X's type {x.dtype.name}, got {meta.dtype.name}")
        if x.rank != 3:
            raise ShapeError(f"X must have rank 3, got shape {_s(x.shape)}")
        steps, batch, input_size = x.shape if attrs["layout"] == 0 else _swap(x.shape)
        hidden = _hidden_size(attrs["hidden_size"], w, r, gates)
        gh = _hidden_dim(hidden, gates)
        num_directions = (directions, "num_directions")
        _expect(w, "W", [num_directions, gh, (input_size, "input_size")])
        _expect(r, "R", [num_directions, gh, (hidden, "hidden_size")])
        if bias is not None:
            _expect(bias, "B", [num_directions, _hidden_dim(hidden, 2 * gates)])
        if lengths is not None:
            if lengths.dtype not in _LENGTH_TYPES:
                raise ShapeError(f"sequence_lens must be INT32 or INT64, got {lengths.dtype.name}")
            _expect(lengths, "sequence_lens", [(batch, "batch_size")])
            batch = _known(batch, lengths.shape[0])
        for meta, what in ((initial_h, "initial_h"), (initial_c, "initial_c")):
            if meta is not None:
                state = [num_directions, (batch, "batch_size"), (hidden, "hidden_size")]
                _expect(meta, what, state if attrs["layout"] == 0 else _swap(state))
                batch = _known(batch, meta.shape[1 - attrs["layout"]])
                hidden = _known(hidden, meta.shape[2])
        if peepholes is not None:
            _expect(peepholes, "P", [num_directions, _hidden_dim(hidden, 3)])
        if attrs["layout"] == 0:
            y_shape = (steps, directions, batch, hidden)
            state_shape = (directions, batch, hidden)
        else:
            y_shape = (batch, steps, directions, hidden)
            state_shape = (batch, directions, hidden)
        outputs = [TensorMeta(x.dtype, y_shape), TensorMeta(x.dtype, state_shape)]
        if lstm:
            outputs.append(TensorMeta(x.dtype, state_shape))
        return outputs

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, w, r, bias, lengths, initial_h, initial_c, peepholes = _padded(inputs)
        mode = attrs["mode"]
        compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        if attrs["layout"] == 1:
            x = x.transpose(0, 1)
        directions, gh, hidden = w.shape[0], w.shape[1], r.shape[2]
        steps, batch = x.shape[0], x.shape[1]
        x, w, r = x.to(compute), w.to(compute), r.to(compute)
        h = _state(initial_h, attrs["layout"], (directions, batch, hidden), compute, x.device)
        # the input projection of every step at once: [D, T, N, G*H]
        projected = torch.matmul(x.reshape(1, steps * batch, x.shape[2]), w.transpose(1, 2))
        projected = projected.reshape(directions, steps, batch, gh)
        recurrent_bias = None
        if bias is not None:
            input_bias, recurrent_bias = (
                bias.to(compute).reshape(directions, 1, 1, -1).split(gh, -1)
            )
            if mode == RNNOperation.GRU and attrs["linear_before_reset"]:
                # Rbh stays inside the reset gate's product: r * (Ht-1*Rh^T + Rbh)
                zr = 2 * hidden
                projected = projected + torch.cat(
                    [input_bias[..., :zr] + recurrent_bias[..., :zr], input_bias[..., zr:]], -1
                )
                recurrent_bias = recurrent_bias[:, 0, :, zr:]
            else:
                projected = projected + (input_bias + recurrent_bias)
                recurrent_bias = None
        valid = reverse_order = None
        if lengths is not None:
            limit = lengths.to(device=x.device, dtype=torch.int64).clamp(0, steps).unsqueeze(0)
            time = torch.arange(steps, device=x.device).unsqueeze(1).expand(steps, batch)
            valid = time < limit  # [T, N]
            # each sequence read backwards from its own last step; padding keeps its place
            reverse_order = torch.where(valid, limit - 1 - time, time)
            valid = valid.unsqueeze(-1)
        if attrs["direction"] != RNNDirection.FORWARD:
            projected[-1] = _reverse(projected[-1], reverse_order)
        functions = _functions(attrs, directions)
        clip = attrs["clip"]
        cell = _Cell(mode, functions, clip, r.transpose(1, 2), hidden)
        ys = torch.empty((directions, steps, batch, hidden), dtype=compute, device=x.device)
        if mode == RNNOperation.LSTM:
            c = _state(initial_c, attrs["layout"], (directions, batch, hidden), compute, x.device)
            p = None if peepholes is None else peepholes.to(compute).unsqueeze(1).chunk(3, dim=2)
            for t in range(steps):
                h_new, c_new = cell.lstm(projected[:, t], h, c, p, attrs["input_forget"])
                h, c = _update(ys, t, valid, (h_new, h), (c_new, c))
        else:
            step = cell.gru if mode == RNNOperation.GRU else cell.simple
            for t in range(steps):
                h_new = step(projected[:, t], h, recurrent_bias)
                (h,) = _update(ys, t, valid, (h_new, h))
        if attrs["direction"] != RNNDirection.FORWARD:
            ys[-1] = _reverse(ys[-1], reverse_order)
        if attrs["layout"] == 0:
            outputs[0].copy_(ys.permute(1, 0, 2, 3))
            outputs[1].copy_(h)
        else:
            outputs[0].copy_(ys.permute(2, 1, 0, 3))
            outputs[1].copy_(h.transpose(0, 1))
        if mode == RNNOperation.LSTM:
            outputs[2].copy_(c if attrs["layout"] == 0 else c.transpose(0, 1))


class _Cell:
    """One time step of each cell, for every direction at once ([D, N, ...] tensors)."""

    def __init__(
        self,
        mode: RNNOperation,
        functions: list[tuple[Callable, ...]],
        clip: float,
        recurrence: torch.Tensor,
        hidden: int,
    ) -> None:
        self.functions = functions
        """Per function slot (f, g, h), one callable per direction."""
        self.clip = clip
        self.recurrence = recurrence
        """R^T: [D, H, G*H]."""
        if mode == RNNOperation.GRU:
            self.recurrence_zr = recurrence[..., : 2 * hidden]
            self.recurrence_h = recurrence[..., 2 * hidden :]

    def simple(
        self, projected: torch.Tensor, h: torch.Tensor, _recurrent_bias: None
    ) -> torch.Tensor:
        return self._apply(0, projected + torch.bmm(h, self.recurrence))

    def gru(
        self, projected: torch.Tensor, h: torch.Tensor, recurrent_bias: torch.Tensor | None
    ) -> torch.Tensor:
        x_z, x_r, x_h = projected.chunk(3, dim=2)
        h_z, h_r = torch.bmm(h, self.recurrence_zr).chunk(2, dim=2)
        z = self._apply(0, x_z + h_z)
        r = self._apply(0, x_r + h_r)
        if recurrent_bias is not None:
            # linear_before_reset: ht = g(Xt*Wh^T + rt . (Ht-1*Rh^T + Rbh) + Wbh)
            candidate = x_h + r * torch.baddbmm(recurrent_bias, h, self.recurrence_h)
        else:
            candidate = x_h + torch.bmm(r * h, self.recurrence_h)
        return torch.lerp(self._apply(1, candidate), h, z)

    def lstm(
        self,
        projected: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        peepholes: tuple[torch.Tensor, ...] | None,
        input_forget: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_i, x_o, x_f, x_c = (projected + torch.bmm(h, self.recurrence)).chunk(4, dim=2)
        if peepholes is not None:
            p_i, p_o, p_f = peepholes
            x_i = x_i + p_i * c
            x_f = x_f + p_f * c
        i = self._apply(0, x_i)
        f = 1 - i if input_forget else self._apply(0, x_f)
        c_new = f * c + i * self._apply(1, x_c)
        if peepholes is not None:
            x_o = x_o + p_o * c_new
        return self._apply(0, x_o) * self._apply(2, c_new, clip=False), c_new

    def _apply(self, slot: int, x: torch.Tensor, clip: bool = True) -> torch.Tensor:
        """Activation `slot` of each direction, after the clip of gate pre-activations."""
        if clip and self.clip > 0:
            x = x.clamp(-self.clip, self.clip)
        functions = self.functions[slot]
        if len(functions) == 1:
            return functions[0](x)
        return torch.stack([function(x[d]) for d, function in enumerate(functions)])


def _update(
    ys: torch.Tensor,
    t: int,
    valid: torch.Tensor | None,
    *states: tuple[torch.Tensor, torch.Tensor],
) -> list[torch.Tensor]:
    """Store step t's hidden state in Y; the new states, kept as they were past each length."""
    h_new = states[0][0]
    if valid is None:
        ys[:, t] = h_new
        return [new for new, _ in states]
    mask = valid[t]
    ys[:, t] = torch.where(mask, h_new, 0.0)
    return [torch.where(mask, new, old) for new, old in states]


def _functions(attrs: dict[str, Any], directions: int) -> list[tuple[Callable, ...]]:
    """Per function slot, the callables of the directions (one when they are the same)."""
    activations = attrs["activations"] or DEFAULT_ACTIVATIONS[attrs["mode"]]
    alphas, betas = attrs["activation_alpha"], attrs["activation_beta"]
    specs = []
    for index, kind in enumerate(activations):
        default_alpha, default_beta = ACTIVATION_DEFAULTS.get(kind, (0.0, 0.0))
        alpha = alphas[index] if alphas else default_alpha
        beta = betas[index] if betas else default_beta
        specs.append((kind, alpha, beta))
    per_direction = len(DEFAULT_ACTIVATIONS[attrs["mode"]])
    if len(specs) == per_direction:
        specs = specs * directions
    slots = []
    for slot in range(per_direction):
        chosen = [specs[d * per_direction + slot] for d in range(directions)]
        unique = chosen[:1] if len(set(chosen)) == 1 else chosen
        slots.append(tuple(_activation(*spec) for spec in unique))
    return slots


def _activation(kind: RNNActivation, alpha: float, beta: float) -> Callable:
    if kind == RNNActivation.RELU:
        return torch.relu
    if kind == RNNActivation.TANH:
        return torch.tanh
    if kind == RNNActivation.SIGMOID:
        return torch.sigmoid
    if kind == RNNActivation.AFFINE:
        return lambda x: x * alpha + beta
    if kind == RNNActivation.LEAKY_RELU:
        return lambda x: F.leaky_relu(x, alpha)
    if kind == RNNActivation.THRESHOLDED_RELU:
        return lambda x: torch.where(x > alpha, x, torch.zeros_like(x))
    if kind == RNNActivation.SCALED_TANH:
        return lambda x: alpha * torch.tanh(beta * x)
    if kind == RNNActivation.HARD_SIGMOID:
        return lambda x: torch.clamp(alpha * x + beta, 0.0, 1.0)
    if kind == RNNActivation.ELU:
        return lambda x: torch.where(x >= 0, x, alpha * torch.expm1(x))
    if kind == RNNActivation.SOFTSIGN:
        return F.softsign
    return F.softplus


def _reverse(sequence: torch.Tensor, order: torch.Tensor | None) -> torch.Tensor:
    """`sequence` [T, N, K] in reverse time `order` [T, N] (None: all of T), an involution."""
    if order is None:
        return sequence.flip(0)
    return sequence.gather(0, order.unsqueeze(-1).expand_as(sequence))


def _state(
    initial: torch.Tensor | None,
    layout: int,
    shape: tuple[int, int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """An initial state as [D, N, H] in the compute type; zeros when not given."""
    if initial is None:
        return torch.zeros(shape, dtype=dtype, device=device)
    return (initial if layout == 0 else initial.transpose(0, 1)).to(dtype)


def _check_attrs(attrs: dict[str, Any], directions: int) -> None:
    mode = attrs["mode"]
    if attrs["layout"] > 1:
        raise ShapeError(f"layout must be 0 or 1, got {attrs['layout']}")
    if attrs["clip"] < 0:
        raise ShapeError(f"clip must be at least 0 (0: no clipping), got {attrs['clip']}")
    if attrs["input_forget"] and mode != RNNOperation.LSTM:
        raise ShapeError(f"input_forget applies to LSTM only, not {mode.name}")
    if attrs["linear_before_reset"] and mode != RNNOperation.GRU:
        raise ShapeError(f"linear_before_reset applies to GRU only, not {mode.name}")
    per_direction = len(DEFAULT_ACTIVATIONS[mode])
    count = len(attrs["activations"])
    allowed = {0, per_direction, per_direction * directions}
    if count not in allowed:
        raise ShapeError(
            f"{mode.name} takes {per_direction} activations per direction: "
            f"{' or '.join(str(n) for n in sorted(allowed - {0}))} for {directions} "
            f"direction(s), got {count}"
        )
    for key in ("activation_alpha", "activation_beta"):
        if attrs[key] and len(attrs[key]) != max(count, per_direction):
            raise ShapeError(
                f"{key} needs one value per activation ({max(count, per_direction)}), "
                f"got {len(attrs[key])}"
            )


def _expect(meta: TensorMeta, what: str, dims: list[tuple[int, str]]) -> None:
    """`meta` has shape `dims` (size, what it is) where both sizes are known."""
    if meta.rank != len(dims):
        raise ShapeError(f"{what} must have rank {len(dims)}, got shape {_s(meta.shape)}")
    for axis, (expected, label) in enumerate(dims):
        actual = meta.shape[axis]
        if UNKNOWN not in (expected, actual) and actual != expected:
            raise ShapeError(
                f"{what} dimension {axis} must be {label} = {expected}, got shape {_s(meta.shape)}"
            )


def _hidden_dim(hidden: int, factor: int) -> tuple[int, str]:
    """A dimension of `factor` * hidden size, with its description."""
    return (UNKNOWN if hidden == UNKNOWN else factor * hidden, f"{factor}*hidden_size")


def _hidden_size(attr: int, w: TensorMeta, r: TensorMeta, gates: int) -> int:
    """The hidden size: the attribute when set (> 0), else from R's or W's shape."""
    if attr > 0:
        return attr
    if r.rank == 3 and r.shape[2] != UNKNOWN:
        return r.shape[2]
    for meta in (r, w):
        if meta.rank == 3 and meta.shape[1] != UNKNOWN:
            if meta.shape[1] % gates:
                raise ShapeError(
                    f"dimension 1 of {'R' if meta is r else 'W'} must be a multiple of "
                    f"{gates} (the gates), got shape {_s(meta.shape)}"
                )
            return meta.shape[1] // gates
    return UNKNOWN


def _known(*dims: int) -> int:
    """The first known of `dims`, or UNKNOWN."""
    return next((d for d in dims if d != UNKNOWN), UNKNOWN)


def _swap(items: Sequence) -> tuple:
    """The first two entries swapped (layout 1 puts the batch first)."""
    return (items[1], items[0], *items[2:])


def _padded(inputs: Sequence) -> list:
    return list(inputs) + [None] * (8 - len(inputs))


def _s(shape: Sequence[int]) -> str:
    return str(list(shape))


OPS = [RNN()]
