"""Extension ops for spectral transforms: ONNX DFT (opset 20) and STFT (opset 17).

Complex tensors are real tensors with a trailing dimension of 2 (real, imaginary); a real
signal may have a trailing dimension of 1. Both ops have layer_type LayerType.PLUGIN.
"""

from __future__ import annotations

from typing import Any

import torch

from ..types import FLOATS_AND_DOUBLE, DataType, LayerType
from .base import UNKNOWN, Bool, Int, Op, ShapeError, TensorMeta
from .shapes import normalize_axis

SIGNAL_TYPES = FLOATS_AND_DOUBLE
_INTEGERS = (DataType.INT32, DataType.INT64)


class DFT(Op):
    """ONNX DFT along `axis` (not the trailing complex dim), of length dft_length (optional
    input 1, a shape tensor; the input is zero-padded or truncated to it).

    Forward: output complex ([..., 2]); `onesided` keeps the first n // 2 + 1 frequencies.
    Inverse: scaled by 1 / n; with `onesided`, a one-sided spectrum becomes a real signal
    ([..., 1]) of length dft_length, by default 2 * (input length - 1).
    """

    name = "dft"
    layer_type = LayerType.PLUGIN
    num_inputs = (1, 2)
    shape_inputs = frozenset({1})
    attrs = {"axis": Int(-2), "inverse": Bool(False), "onesided": Bool(False)}

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x = inputs[0]
        _check_signal(x, "the DFT input", min_rank=2)
        axis = normalize_axis(attrs["axis"], x.rank)
        if axis == x.rank - 1:
            raise ShapeError(f"axis {attrs['axis']} is the trailing (real, imaginary) dim")
        length = _length(inputs, 1, "dft_length")
        size = x.shape[axis]
        if length is None:
            if size == UNKNOWN:
                length = UNKNOWN
            else:
                length = 2 * (size - 1) if attrs["inverse"] and attrs["onesided"] else size
        if length == 0:
            raise ShapeError(f"the DFT of an empty axis {axis} is undefined: shape {list(x.shape)}")
        shape = list(x.shape)
        real_output = attrs["inverse"] and attrs["onesided"]
        shape[axis] = length
        if attrs["onesided"] and not attrs["inverse"] and length != UNKNOWN:
            shape[axis] = length // 2 + 1
        shape[-1] = 1 if real_output else 2
        return [TensorMeta(x.dtype, tuple(shape))]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x = inputs[0]
        out = outputs[0]
        axis = attrs["axis"] % x.dim()
        signal = _complex(x)
        if attrs["inverse"] and attrs["onesided"]:
            length = out.shape[axis]
            result = torch.fft.irfft(signal, n=length, dim=axis).unsqueeze(-1)
        elif attrs["inverse"]:
            result = torch.view_as_real(torch.fft.ifft(signal, n=out.shape[axis], dim=axis))
        else:
            length = int(inputs[1].reshape(-1)[0]) if _given(inputs, 1) else x.shape[axis]
            result = torch.fft.fft(signal, n=length, dim=axis)
            result = torch.view_as_real(result.narrow(axis, 0, out.shape[axis]))
        out.copy_(result)


class STFT(Op):
    """ONNX STFT of signal [batch, length, 1 or 2]: frames of frame_length every frame_step
    samples (input 1, a shape tensor), each multiplied by the window (optional input 2,
    [frame_length]; default ones), then DFT'd. Output [batch, frames, bins, 2], frames =
    1 + (length - frame_length) // frame_step, bins = frame_length // 2 + 1 when `onesided`
    (default) else frame_length. frame_length (optional input 3, a shape tensor) defaults to
    the window's length, or the signal's."""

    name = "stft"
    layer_type = LayerType.PLUGIN
    num_inputs = (2, 4)
    shape_inputs = frozenset({1, 3})
    attrs = {"onesided": Bool(True)}

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        signal = inputs[0]
        _check_signal(signal, "the STFT signal", min_rank=3)
        if signal.rank != 3:
            raise ShapeError(
                f"the STFT signal must be [batch, length, 1 or 2], got {list(signal.shape)}"
            )
        window = inputs[2] if _given(inputs, 2) else None
        if window is not None and (window.rank != 1 or window.dtype != signal.dtype):
            raise ShapeError(
                f"the window must be 1-D of the signal's type {signal.dtype.name}, got "
                f"{window.dtype.name} of shape {list(window.shape)}"
            )
        step = _length(inputs, 1, "frame_step")
        length = _length(inputs, 3, "frame_length")
        if length is None:
            length = window.shape[0] if window is not None else signal.shape[1]
        mismatch = window is not None and window.shape[0] != length
        if mismatch and UNKNOWN not in (length, window.shape[0]):
            raise ShapeError(f"the window has {window.shape[0]} values, frame_length is {length}")
        total = signal.shape[1]
        frames = UNKNOWN
        if UNKNOWN not in (step, length, total):
            if length > total:
                raise ShapeError(f"frame_length {length} is longer than the signal ({total})")
            frames = 1 + (total - length) // step
        bins = UNKNOWN if length == UNKNOWN else length // 2 + 1 if attrs["onesided"] else length
        return [TensorMeta(signal.dtype, (signal.shape[0], frames, bins, 2))]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        signal = _complex(inputs[0])
        out = outputs[0]
        step = int(inputs[1].reshape(-1)[0])
        window = inputs[2] if _given(inputs, 2) else None
        if _given(inputs, 3):
            length = int(inputs[3].reshape(-1)[0])
        else:
            length = window.shape[0] if window is not None else signal.shape[1]
        frames = signal.unfold(1, length, step)  # [batch, frames, length]
        if window is not None:
            frames = frames * window.to(frames.real.dtype)
        spectrum = torch.fft.fft(frames, dim=-1)[..., : out.shape[2]]
        out.copy_(torch.view_as_real(spectrum))


def _check_signal(x: TensorMeta, what: str, min_rank: int) -> None:
    if x.dtype not in SIGNAL_TYPES:
        raise ShapeError(f"{what} must be FLOAT, HALF, BF16 or DOUBLE, got {x.dtype.name}")
    if x.rank < min_rank or x.shape[-1] not in (1, 2, UNKNOWN):
        raise ShapeError(
            f"{what} must end in a dim of 1 (real) or 2 (complex) and have rank {min_rank} or "
            f"more, got shape {list(x.shape)}"
        )


def _given(inputs: list[Any], index: int) -> bool:
    return index < len(inputs) and inputs[index] is not None


def _length(inputs: list[TensorMeta | None], index: int, what: str) -> int | None:
    """A positive scalar shape input's value; UNKNOWN while unknown, None when not given."""
    if not _given(inputs, index):
        return None
    meta = inputs[index]
    if meta.dtype not in _INTEGERS or meta.rank > 1 or meta.shape not in ((), (1,), (UNKNOWN,)):
        raise ShapeError(
            f"{what} must be a 0-D INT32 or INT64 tensor, got {meta.dtype.name} of shape "
            f"{list(meta.shape)}"
        )
    if meta.value is None:
        return UNKNOWN
    value = int(meta.value.reshape(-1)[0])
    if value < 1:
        raise ShapeError(f"{what} must be positive, got {value}")
    return value


def _complex(x: torch.Tensor) -> torch.Tensor:
    """The signal as a complex tensor without the trailing dim (computed in float32 at least)."""
    wide = x.double() if x.dtype == torch.float64 else x.float()
    if x.shape[-1] == 1:
        return torch.complex(wide[..., 0], torch.zeros_like(wide[..., 0]))
    return torch.view_as_complex(wide.contiguous())


OPS: list[Op] = [DFT(), STFT()]
