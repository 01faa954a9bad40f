"""The ONNX importers: op type -> function lowering one node onto network layers.

Each family module ends with `IMPORTERS`, a dict of the ONNX ops (default domain) it
imports; this registry is the explicit merge of them, where an op type may appear once. An importer takes the import
context and the node, and returns the node's output tensors (or the one tensor).
Opset differences are handled inside the importer (`node.opset`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...network.tensor import ITensor
from ...registry import unique_names
from ..context import ImportContext, OnnxNode
from . import extension, indexing, matmul, nn, pointwise, quantize, reduce, sampling, shaping

Importer = Callable[[ImportContext, OnnxNode], ITensor | Sequence[ITensor | None]]

IMPORTERS: dict[str, Importer] = unique_names(
    (
        item
        for family in (
            pointwise,
            shaping,
            reduce,
            matmul,
            nn,
            indexing,
            sampling,
            quantize,
            extension,
        )
        for item in family.IMPORTERS.items()
    ),
    "ONNX importer",
)


def find_importer(op_type: str) -> Importer | None:
    """The importer of an op of the default domain, or None."""
    return IMPORTERS.get(op_type)
