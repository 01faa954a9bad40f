"""The op set: every op tensorplan can build and run, by name.

The registry is the explicit list below; each family's module lists its ops in `OPS`. An op
name may appear once.
"""

from __future__ import annotations

from ..registry import unique_names
from . import (
    conv,
    cumulative,
    einsum,
    elementwise,
    fill,
    fused,
    indexing,
    matmul,
    misc,
    nms,
    nonzero,
    normalization,
    padding,
    plugin,
    pointwise,
    pooling,
    quantize,
    recurrent,
    reduce,
    resize,
    scale,
    shaping,
    signal,
    squeeze,
)
from .base import Op

REGISTRY: dict[str, Op] = unique_names(
    (
        (op.name, op)
        for family in (
            elementwise,
            matmul,
            conv,
            pooling,
            shaping,
            reduce,
            normalization,
            resize,
            padding,
            scale,
            indexing,
            cumulative,
            squeeze,
            fill,
            einsum,
            quantize,
            fused,
            pointwise,
            plugin,
            nonzero,
            nms,
            misc,
            signal,
            recurrent,
        )
        for op in family.OPS
    ),
    "op",
)


def get_op(name: str) -> Op | None:
    """The op called `name`, or None when there is no such op."""
    return REGISTRY.get(name)
