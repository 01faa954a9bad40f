"""The Einstein-summation op.

Beyond TensorRT (which takes one or two inputs, lower-case labels, no ellipsis and no
diagonals), this op takes any number of inputs, upper-case labels, ellipsis ('...', numpy
broadcast of the dims it covers) and repeated labels in one input (diagonals), as numpy,
torch and ONNX Einsum do. Whitespace in the equation is ignored.
"""

from __future__ import annotations

import string
from collections import Counter
from typing import Any

import torch

from ..types import FLOATS_AND_DOUBLE, DataType, LayerType
from .base import UNKNOWN, Op, ShapeError, Str, TensorMeta
from .shapes import broadcast, same_dtype

MAX_EINSUM_INPUTS = 52
"""One per label letter: more than any equation can use."""

ELLIPSIS = "*"
"""An ellipsis in a parsed term (one character, so a term is a plain string)."""

_INTEGERS = frozenset(
    {DataType.INT8, DataType.UINT8, DataType.INT16, DataType.INT32, DataType.INT64}
)


class Einsum(Op):
    """IEinsumLayer: `equation` over inputs of one type; the output has that type."""

    name = "einsum"
    reduced_precision = True
    layer_type = LayerType.EINSUM
    num_inputs = (1, MAX_EINSUM_INPUTS)
    attrs = {"equation": Str("")}

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        if any(meta is None for meta in inputs):
            missing = [index for index, meta in enumerate(inputs) if meta is None]
            raise ShapeError(f"inputs {missing} are missing")
        same_dtype(inputs)
        dtype = inputs[0].dtype
        if dtype not in FLOATS_AND_DOUBLE | _INTEGERS:
            raise ShapeError(f"einsum does not take {dtype.name} inputs")
        terms, output = parse_equation(attrs["equation"], len(inputs))
        return [TensorMeta(dtype, _output_shape(attrs["equation"], terms, output, inputs))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        terms, output = parse_equation(attrs["equation"], len(inputs))
        if outputs[0].is_floating_point():
            explicit = ",".join(terms) + "->" + output
            outputs[0].copy_(torch.einsum(explicit.replace(ELLIPSIS, "..."), *inputs))
        else:
            # torch has no integer matmul on CUDA: multiply and sum, exactly, in int64
            outputs[0].copy_(_integer_einsum(terms, output, inputs))


def parse_equation(equation: str, count: int) -> tuple[list[str], str]:
    """The input terms and the output term (made explicit), ellipses as ELLIPSIS."""
    text = "".join(equation.split())
    lhs, arrow, rhs = text.partition("->")
    if "->" in rhs:
        raise ShapeError(f"equation '{equation}' has more than one '->'")
    terms = [_term(term, equation) for term in lhs.split(",")]
    if len(terms) != count:
        raise ShapeError(
            f"equation '{equation}' names {len(terms)} operands but the layer has {count} inputs"
        )
    if arrow:
        output = _term(rhs, equation)
        letters = output.replace(ELLIPSIS, "")
        repeated = sorted(label for label, n in Counter(letters).items() if n > 1)
        if repeated:
            raise ShapeError(f"equation '{equation}' repeats output labels {repeated}")
        unknown = sorted(set(letters) - set(lhs))
        if unknown:
            raise ShapeError(f"equation '{equation}': output labels {unknown} are in no input")
        return terms, output
    counts = Counter("".join(terms).replace(ELLIPSIS, ""))
    once = "".join(sorted(label for label, n in counts.items() if n == 1))
    return terms, (ELLIPSIS if any(ELLIPSIS in term for term in terms) else "") + once


def _term(text: str, equation: str) -> str:
    term = text.replace("...", ELLIPSIS)
    invalid = sorted(set(term) - set(string.ascii_letters) - {ELLIPSIS})
    if invalid or term.count(ELLIPSIS) > 1:
        what = f"characters {invalid}" if invalid else "more than one '...'"
        raise ShapeError(f"equation '{equation}': term '{text}' has {what}")
    return term


def _output_shape(
    equation: str, terms: list[str], output: str, inputs: list[TensorMeta]
) -> tuple[int, ...]:
    sizes: dict[str, set[int]] = {}
    ellipsis_shapes = []
    for index, (term, meta) in enumerate(zip(terms, inputs, strict=True)):
        letters = term.replace(ELLIPSIS, "")
        covered = meta.rank - len(letters)
        if covered < 0 or (covered > 0 and ELLIPSIS not in term):
            raise ShapeError(
                f"equation '{equation}': term '{term.replace(ELLIPSIS, '...')}' does not fit "
                f"input {index} of shape {list(meta.shape)}"
            )
        start = term.find(ELLIPSIS)
        dims = list(meta.shape)
        if start >= 0:
            ellipsis_shapes.append(tuple(dims[start : start + covered]))
            del dims[start : start + covered]
        seen: dict[str, int] = {}
        for label, size in zip(letters, dims, strict=True):
            if label in seen and UNKNOWN not in (seen[label], size) and seen[label] != size:
                raise ShapeError(
                    f"equation '{equation}': label '{label}' repeats in input {index} "
                    f"with sizes {seen[label]} and {size} (a diagonal needs equal sizes)"
                )
            seen[label] = size
            sizes.setdefault(label, set()).add(size)
    label_size = {label: _broadcast_size(equation, label, found) for label, found in sizes.items()}
    rank = max((len(shape) for shape in ellipsis_shapes), default=0)
    padded = [(1,) * (rank - len(shape)) + shape for shape in ellipsis_shapes]
    ellipsis = broadcast(padded) if padded else ()
    if ellipsis and ELLIPSIS not in output:
        raise ShapeError(
            f"equation '{equation}': '...' covers {len(ellipsis)} dims, so the output needs '...'"
        )
    shape: list[int] = []
    for label in output:
        shape.extend(ellipsis if label == ELLIPSIS else (label_size[label],))
    return tuple(shape)


def _broadcast_size(equation: str, label: str, sizes: set[int]) -> int:
    known = sizes - {1, UNKNOWN}
    if len(known) > 1:
        raise ShapeError(
            f"equation '{equation}': label '{label}' has sizes {sorted(known)} in different inputs"
        )
    if known:
        return known.pop()
    return UNKNOWN if UNKNOWN in sizes else 1


def _integer_einsum(terms: list[str], output: str, inputs: list[torch.Tensor]) -> torch.Tensor:
    """Einsum as one broadcast product summed over the labels not in the output."""
    rank = max(
        (x.dim() - len(t) + 1 for t, x in zip(terms, inputs, strict=True) if ELLIPSIS in t),
        default=0,
    )
    ellipsis = [f"{ELLIPSIS}{axis}" for axis in range(rank)]
    expanded = [_labels(term, x.dim(), ellipsis) for term, x in zip(terms, inputs, strict=True)]
    order = list(dict.fromkeys(label for labels in expanded for label in labels))
    product = None
    for labels, x in zip(expanded, inputs, strict=True):
        x = x.to(torch.int64)
        labels = list(labels)
        for label in list(dict.fromkeys(labels)):
            while labels.count(label) > 1:
                first = labels.index(label)
                second = labels.index(label, first + 1)
                x = x.diagonal(0, first, second)  # the diagonal becomes the last dim
                del labels[second], labels[first]
                labels.append(label)
        present = [label for label in order if label in labels]
        x = x.permute([labels.index(label) for label in present])
        sizes = dict(zip(present, x.shape, strict=True))
        x = x.reshape([sizes.get(label, 1) for label in order])
        product = x if product is None else product * x
    wanted = (
        _labels(output, len(output) - 1 + rank, ellipsis) if ELLIPSIS in output else list(output)
    )
    summed = [axis for axis, label in enumerate(order) if label not in wanted]
    if summed:
        product = product.sum(dim=summed)
    kept = [label for label in order if label in wanted]
    return product.permute([kept.index(label) for label in wanted])


def _labels(term: str, rank: int, ellipsis: list[str]) -> list[str]:
    """One label per dim; the dims under '...' get the trailing labels of `ellipsis`."""
    covered = rank - len(term) + 1 if ELLIPSIS in term else 0
    labels: list[str] = []
    for label in term:
        labels.extend(ellipsis[len(ellipsis) - covered :] if label == ELLIPSIS else [label])
    return labels


OPS = [Einsum()]
