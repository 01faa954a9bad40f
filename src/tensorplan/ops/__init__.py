"""The op set: every op tensorplan can build and run, by name.

The registry is the explicit list below; each family's module lists its ops in `OPS`.
"""

from __future__ import annotations

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

REGISTRY: dict[str, Op] = {
    op.name: op
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
}


def get_op(name: str) -> Op | None:
    """The op called `name`, or None when there is no such op."""
    return REGISTRY.get(name)
