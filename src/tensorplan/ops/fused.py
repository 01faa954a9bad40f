"""Fused ops: what the builder's fusion pass (builder/fusion.py) turns layer chains into.

They have no layer of their own: a network never names them, a plan holds them. Each one
computes exactly what its chain computes, in fewer kernels and passes over memory.
"""

from __future__ import annotations

import enum
import math
import threading
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..types import FLOATS, ActivationType, LayerType, PoolingType
from . import fallback
from .base import UNKNOWN, Bool, Enum, Float, Int, Op, ShapeError, TensorMeta
from .conv import Convolution, add_channel_bias
from .elementwise import Activation
from .pointwise import Step, StepKind
from .pooling import Pooling, max_pool_on_gpu, windows_hold_input
from .shapes import broadcast, same_dtype

CONVOLUTION = Convolution()
ACTIVATION = Activation()
POOLING = Pooling()

EPILOGUE = {
    "activation": Enum(ActivationType, None),
    "alpha": Float(0.0),
    "beta": Float(0.0),
}
"""An optional activation applied last (None: no activation); alpha and beta as IActivationLayer."""


def epilogue_summary(attrs: dict[str, Any]) -> str:
    """The activation an epilogue applies, for `Op.summary`."""
    activation = attrs["activation"]
    return "" if activation is None else f", then {activation.name}"


class ConvBiasAct(Op):
    """Convolution + bias (+ residual add) (+ activation): act(conv(x, kernel) + bias + residual).

    Inputs: x, kernel, bias?, residual?. Batch-norm and other per-channel affine layers after
    a convolution are folded into its kernel and bias before this fusion. With
    `channels_last`, the kernel is stored (K, kH, kW, C/G) and the convolution runs on
    channels-last (NHWC) memory, the layout of the GPU's tensor-core kernels: no layout
    conversions around it when its input and output are channels-last too.
    """

    name = "conv_bias_act"
    reduced_precision = True
    reads_channels_last = True
    layer_type = LayerType.CONVOLUTION
    num_inputs = (2, 4)
    attrs = {**CONVOLUTION.attrs, **EPILOGUE, "channels_last": Bool(False)}

    def summary(self, attrs: dict[str, Any]) -> str:
        layout = "NHWC" if attrs["channels_last"] else "NCHW"
        return f"{layout} convolution + bias{epilogue_summary(attrs)}"

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, kernel, bias, residual = (*inputs, None, None)[:4]
        if attrs["channels_last"]:
            if kernel.rank != 4:
                raise ShapeError(
                    f"a channels-last kernel has rank 4 (K, kH, kW, C), got {list(kernel.shape)}"
                )
            k, height, width, c = kernel.shape
            kernel = TensorMeta(kernel.dtype, (k, c, height, width))
        (conv,) = CONVOLUTION.infer([x, kernel, bias], _conv_attrs(attrs))
        if residual is None:
            return [conv]
        same_dtype([x, residual], "the input and the residual")
        if residual.rank != conv.rank or broadcast([conv.shape, residual.shape]) != conv.shape:
            raise ShapeError(
                f"the residual {list(residual.shape)} does not broadcast to the convolution's "
                f"output {list(conv.shape)}"
            )
        return [conv]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, kernel, bias, residual = (*inputs, None, None)[:4]
        out = outputs[0]
        if attrs["channels_last"]:
            kernel = kernel.permute(0, 3, 1, 2)  # (K, C, kH, kW) in channels-last memory
        if not CONVOLUTION.run_into(x, kernel, out, _conv_attrs(attrs)):
            CONVOLUTION.run([x, kernel, bias], [out], _conv_attrs(attrs))
            bias = None
        if bias is None and residual is None and attrs["activation"] is None:
            return  # a convolution whose epilogue a pool_bias_act applies
        if out.is_cuda:
            from .cuda_epilogue import epilogue

            relu = attrs["activation"] == ActivationType.RELU
            if epilogue(out, bias, residual, relu):
                if not relu:
                    apply_activation(out, attrs)
                return
        if bias is not None:
            add_channel_bias(out, bias)
        if residual is not None:
            out.add_(residual)
        apply_activation(out, attrs)


class PoolBiasAct(Op):
    """Max pooling, then a bias per channel (dim 1) and ReLU: relu(maxpool(x) + bias).

    Inputs: x, bias?. What a convolution's bias and ReLU followed by max pooling compute (a
    CNN's stem): both commute with the maximum, so the builder moves them past the pooling,
    and the convolution's raw output is read once, by the pooling (on the GPU one Triton
    kernel), instead of being read and written by the epilogue first. Every window must
    hold an input element: one of padding only would give relu(-inf + bias) = 0, not -inf.
    """

    name = "pool_bias_act"
    reduced_precision = True
    reads_channels_last = True
    layer_type = LayerType.POOLING
    num_inputs = (1, 2)
    attrs = {**POOLING.attrs, **EPILOGUE}

    def summary(self, attrs: dict[str, Any]) -> str:
        return f"max pooling + bias{epilogue_summary(attrs)}"

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, bias = (*inputs, None)[:2]
        if attrs["type"] != PoolingType.MAX or attrs["activation"] not in (
            None,
            ActivationType.RELU,
        ):
            raise ShapeError(
                "pool_bias_act pools by MAX and applies ReLU or no activation, got "
                f"{attrs['type'].name} and {attrs['activation']}"
            )
        (pooled,) = POOLING.infer([x], _pool_attrs(attrs))
        if x.rank != 4 or not windows_hold_input(x.shape, attrs):
            raise ShapeError(
                f"pool_bias_act needs a 4D input whose every window holds an input element, "
                f"got {list(x.shape)}"
            )
        if bias is not None:
            same_dtype([x, bias], "the input and the bias")
            if bias.shape != (x.shape[1],):
                raise ShapeError(
                    f"the bias has shape {list(bias.shape)}; expected [{x.shape[1]}] "
                    "(one value per channel)"
                )
        return [pooled]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, bias = (*inputs, None)[:2]
        out = outputs[0]
        relu = attrs["activation"] == ActivationType.RELU
        if max_pool_on_gpu(x, out, _pool_attrs(attrs), bias, relu):
            return
        POOLING.run([x], [out], _pool_attrs(attrs))
        if bias is not None:
            add_channel_bias(out, bias)
        apply_activation(out, attrs)


class MatmulBiasAct(Op):
    """x @ weight^T (+ bias) (+ activation), over the last dim of x: a fully connected layer.

    Inputs: x (..., K), weight (N, K) (the layout of torch's Linear), bias (N,)?. With
    `splits` > 1 the node is that many such layers of one input (a transformer's query, key
    and value projections): weight and bias stack theirs, (splits * N, K) and (splits * N,),
    and there is one output (..., N) per split. When the outputs lie back to back in memory
    (the memory planner places them so), one batched GEMM writes them all.
    """

    name = "matmul_bias_act"
    reduced_precision = True
    adjacent_outputs = True
    layer_type = LayerType.MATRIX_MULTIPLY
    num_inputs = (2, 3)
    num_outputs = -1
    attrs = {**EPILOGUE, "splits": Int(1, low=1)}

    def summary(self, attrs: dict[str, Any]) -> str:
        splits = attrs["splits"]
        gemms = "one GEMM" if splits == 1 else f"{splits} GEMMs of one input"
        return f"{gemms} + bias{epilogue_summary(attrs)}"

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, weight, bias = (*inputs, None)[:3]
        present = [m for m in (x, weight, bias) if m is not None]
        same_dtype(present, "the input, weight and bias")
        if x.dtype not in FLOATS:
            raise ShapeError(f"needs FLOAT, HALF or BF16 tensors, got {x.dtype.name}")
        if x.rank < 1 or weight.rank != 2:
            raise ShapeError(
                f"needs an input of rank 1 or more and a 2D weight, got {list(x.shape)} and "
                f"{list(weight.shape)}"
            )
        splits = attrs["splits"]
        stacked, depth = weight.shape
        if UNKNOWN not in (x.shape[-1], depth) and x.shape[-1] != depth:
            raise ShapeError(
                f"the input {list(x.shape)} has {x.shape[-1]} features; the weight "
                f"{list(weight.shape)} expects {depth}"
            )
        if stacked == UNKNOWN or stacked % splits or (splits > 1 and stacked < splits):
            raise ShapeError(
                f"the weight {list(weight.shape)} does not stack {splits} equal weights"
            )
        if bias is not None and bias.shape not in ((stacked,), (UNKNOWN,)):
            raise ShapeError(f"the bias has shape {list(bias.shape)}; expected [{stacked}]")
        result = TensorMeta(x.dtype, (*x.shape[:-1], stacked // splits))
        return [result] * splits

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, weight, bias = (*inputs, None)[:3]
        splits = attrs["splits"]
        rows = x.reshape(math.prod(x.shape[:-1]), x.shape[-1])
        batched = _back_to_back(outputs)
        if batched is not None:
            weights = weight.view(splits, -1, weight.shape[-1]).transpose(1, 2)
            stacked = rows.expand(splits, *rows.shape)
            if bias is None:
                torch.bmm(stacked, weights, out=batched)
            else:
                torch.baddbmm(bias.view(splits, 1, -1), stacked, weights, out=batched)
        else:
            features = weight.shape[0] // splits
            for index, out in enumerate(outputs):
                part = slice(index * features, (index + 1) * features)
                flat = out.view(-1, features)
                if bias is None:
                    torch.mm(rows, weight[part].t(), out=flat)
                else:
                    torch.addmm(bias[part], rows, weight[part].t(), out=flat)
        for out in outputs:
            apply_activation(out, attrs)


def _back_to_back(outputs: list[torch.Tensor]) -> torch.Tensor | None:
    """Several dense outputs of one shape, equally spaced in one storage: them as one
    (count, rows, features) tensor; None otherwise (and for a single output)."""
    first = outputs[0]
    if len(outputs) < 2 or any(not out.is_contiguous() for out in outputs):
        return None
    storage = first.untyped_storage().data_ptr()
    if any(
        out.shape != first.shape or out.untyped_storage().data_ptr() != storage for out in outputs
    ):
        return None
    step = outputs[1].storage_offset() - first.storage_offset()
    offsets = [out.storage_offset() - first.storage_offset() for out in outputs]
    if step < first.numel() or offsets != [i * step for i in range(len(outputs))]:
        return None
    features = first.shape[-1]
    rows = first.numel() // max(features, 1)
    return first.as_strided((len(outputs), rows, features), (step, features, 1))


class AttentionBackend(enum.IntEnum):
    """The scaled_dot_product_attention backend an attention node runs: its tactic, chosen by
    the builder (builder/timing.py). Plans store the values, so they never change."""

    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3


class Attention(Op):
    """softmax(q @ k^T * scale + mask) @ v, as one scaled_dot_product_attention call.

    Inputs: q (..., L, E), k (..., S, E) or, with `key_transposed`, (..., E, S), v (..., S, Ev),
    an additive mask broadcastable to (..., L, S)?. Collection dims broadcast as in matrix
    multiply. With reduced precision, the softmax accumulates in FLOAT.
    """

    name = "attention"
    reduced_precision = True
    reads_strided_views = True
    tactic = ("backend", AttentionBackend)
    layer_type = LayerType.MATRIX_MULTIPLY
    num_inputs = (3, 4)
    attrs = {
        "scale": Float(1.0),
        "key_transposed": Bool(False),
        "heads_last": Bool(False),
        "backend": Enum(AttentionBackend, None),
    }
    """heads_last: the output of rank-4 inputs is (batch, L, heads, Ev), the order in which
    a transformer merges the heads again (and the one the GPU's kernels produce).
    backend: the SDPA backend to run, None to let torch choose (plans built without timing)."""

    SDP_BACKENDS: ClassVar = {b: getattr(SDPBackend, b.name) for b in AttentionBackend}
    SDPA_SWITCHES: ClassVar = threading.Lock()
    """Held around every SDPA call: torch's backend switches (sdpa_kernel) are process-wide,
    and execution contexts may run in several threads."""

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        q, k, v, mask = (*inputs, None)[:4]
        same_dtype([m for m in (q, k, v, mask) if m is not None], "query, key, value and mask")
        if q.dtype not in FLOATS:
            raise ShapeError(f"needs FLOAT, HALF or BF16 tensors, got {q.dtype.name}")
        if not q.rank == k.rank == v.rank or q.rank < 2:
            raise ShapeError(
                f"query, key and value need one rank of 2 or more, got {list(q.shape)}, "
                f"{list(k.shape)} and {list(v.shape)}"
            )
        depth, length = (
            (k.shape[-2], k.shape[-1]) if attrs["key_transposed"] else k.shape[-2:][::-1]
        )
        for a, b, what in (
            (q.shape[-1], depth, "query and key depths"),
            (length, v.shape[-2], "key and value lengths"),
        ):
            if UNKNOWN not in (a, b) and a != b:
                raise ShapeError(
                    f"the {what} differ ({a} and {b}): query {list(q.shape)}, key "
                    f"{list(k.shape)}, value {list(v.shape)}"
                )
        batch = broadcast([q.shape[:-2], k.shape[:-2], v.shape[:-2]])
        out = (*batch, q.shape[-2], v.shape[-1])
        if attrs["heads_last"]:
            if len(out) != 4:
                raise ShapeError(f"heads_last needs rank-4 inputs, got {list(q.shape)}")
            out = (out[0], out[2], out[1], out[3])
        if mask is not None:
            scores = (*batch, q.shape[-2], length)
            try:
                fits = broadcast([scores, mask.shape]) == scores
            except ShapeError:
                fits = False
            if not fits:
                raise ShapeError(
                    f"the mask {list(mask.shape)} does not broadcast to the scores {list(scores)}"
                )
        return [TensorMeta(q.dtype, out)]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        self.compute(inputs, outputs, attrs, choose_another=True)

    def run_tactic(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        self.compute(inputs, outputs, attrs, choose_another=False)

    def compute(
        self,
        inputs: list[torch.Tensor | None],
        outputs: list[torch.Tensor],
        attrs: dict,
        choose_another: bool,
    ) -> None:
        """`run` on the backend that `attrs` name. When that backend cannot run these inputs
        (shapes of another profile point, another device), torch chooses if `choose_another`, else
        torch's RuntimeError is raised (the builder's timing)."""
        q, k, v, mask = (*inputs, None)[:4]
        out = outputs[0]
        if attrs["heads_last"]:
            out = out.transpose(1, 2)
        if attrs["key_transposed"]:
            k = k.transpose(-1, -2)
        batch = out.shape[:-2]
        q = q.expand(*batch, *q.shape[-2:])
        k = k.expand(*batch, *k.shape[-2:])
        v = v.expand(*batch, *v.shape[-2:])
        scale = attrs["scale"]
        backend = attrs["backend"]
        with self.SDPA_SWITCHES:
            if backend is None:
                result = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
            else:
                try:
                    with sdpa_kernel(self.SDP_BACKENDS[backend]):
                        result = F.scaled_dot_product_attention(
                            q, k, v, attn_mask=mask, scale=scale
                        )
                except RuntimeError:
                    if not choose_another:
                        raise
                    fallback.report(
                        f"SDPA backend {backend.name} (the tactic the build chose) cannot run "
                        "these inputs; torch chooses another"
                    )
                    result = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
        out.copy_(result)


class LayerNorm(Op):
    """Layer normalization over the last `dims` axes, as one kernel (FLOAT accumulation),
    of x or, with a residual, of x + residual (a transformer's add & norm).

    Inputs: x, scale and bias, each of shape x.shape[-dims:] after dropping leading ones,
    residual? of x's rank (x + residual broadcasts).
    """

    name = "layer_norm"
    reduced_precision = True
    layer_type = LayerType.NORMALIZATION
    num_inputs = (3, 4)
    attrs = {"epsilon": Float(1e-5), "dims": Int(1, low=1)}

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, scale, bias, residual = (*inputs, None)[:4]
        same_dtype([m for m in inputs if m is not None], "the input, scale, bias and residual")
        if residual is not None:
            if residual.rank != x.rank:
                raise ShapeError(
                    f"the residual {list(residual.shape)} and the input {list(x.shape)} differ "
                    "in rank"
                )
            x = TensorMeta(x.dtype, broadcast([x.shape, residual.shape]))
        _check_normalized(x, {"scale": scale, "bias": bias}, attrs["dims"])
        return [TensorMeta(x.dtype, x.shape)]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, scale, bias, residual = (*inputs, None)[:4]
        out = outputs[0]
        if out.is_cuda:
            from .cuda_layer_norm import layer_norm

            if layer_norm(x, residual, scale, bias, attrs["epsilon"], out):
                return
        if residual is not None:
            x = x + residual
        shape = x.shape[x.dim() - attrs["dims"] :]
        result = F.layer_norm(x, shape, scale.reshape(shape), bias.reshape(shape), attrs["epsilon"])
        out.copy_(result)


class RmsNorm(Op):
    """RMS normalization over the last `dims` axes, as one kernel (FLOAT accumulation whatever
    the type): x / sqrt(mean(x^2) + epsilon) * scale (ONNX RMSNormalization, LlamaRMSNorm).

    Inputs: x, scale of shape x.shape[-dims:] after dropping leading ones.
    """

    name = "rms_norm"
    reduced_precision = True
    layer_type = LayerType.NORMALIZATION
    num_inputs = (2, 2)
    attrs = {"epsilon": Float(1e-5), "dims": Int(1, low=1)}

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, scale = inputs
        same_dtype(inputs, "the input and scale")
        _check_normalized(x, {"scale": scale}, attrs["dims"])
        return [TensorMeta(x.dtype, x.shape)]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, scale = inputs
        out = outputs[0]
        if out.is_cuda:
            from .cuda_layer_norm import rms_norm

            if rms_norm(x, scale, attrs["epsilon"], out):
                return
        shape = x.shape[x.dim() - attrs["dims"] :]
        weight = scale.reshape(shape).float()
        out.copy_(F.rms_norm(x.float(), shape, weight, attrs["epsilon"]))


def _check_normalized(x: TensorMeta, parameters: dict[str, TensorMeta], dims: int) -> None:
    """The normalization ops' rule: a float input of rank `dims` or more, and parameters
    (per element, by name) of shape x.shape[-dims:] after leading ones. ShapeError if not."""
    if x.dtype not in FLOATS:
        raise ShapeError(f"needs FLOAT, HALF or BF16 tensors, got {x.dtype.name}")
    if dims > x.rank:
        raise ShapeError(f"cannot normalize {dims} axes of an input of rank {x.rank}")
    normalized = x.shape[x.rank - dims :]
    for what, meta in parameters.items():
        leading, trailing = meta.shape[: meta.rank - dims], meta.shape[meta.rank - dims :]
        fits = meta.rank >= dims and all(d == 1 for d in leading)
        fits = fits and all(
            UNKNOWN in (a, b) or a == b for a, b in zip(trailing, normalized, strict=True)
        )
        if not fits:
            raise ShapeError(
                f"the {what} has shape {list(meta.shape)}; expected {list(normalized)} "
                f"(the last {dims} dimensions of the input {list(x.shape)}), after leading ones"
            )


def apply_activation(out: torch.Tensor, attrs: dict[str, Any]) -> None:
    """The epilogue's activation, in place (on the GPU: one generated kernel, where torch's
    activations other than ReLU write a new tensor that is then copied back)."""
    activation = attrs["activation"]
    if activation is None:
        return
    if out.is_cuda:
        from .cuda_pointwise import run_program

        step = Step(StepKind.ACTIVATION, activation, (0,), attrs["alpha"], attrs["beta"])
        if run_program((step,), [out], out):
            return
    if activation == ActivationType.RELU:
        out.relu_()
    else:
        ACTIVATION.run([out], [out], {"type": activation, **_epilogue(attrs)})


def _epilogue(attrs: dict[str, Any]) -> dict[str, Any]:
    return {"alpha": attrs["alpha"], "beta": attrs["beta"]}


def _conv_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {key: attrs[key] for key in CONVOLUTION.attrs}


def _pool_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {key: attrs[key] for key in POOLING.attrs}


OPS = [ConvBiasAct(), PoolBiasAct(), MatmulBiasAct(), Attention(), LayerNorm(), RmsNorm()]
