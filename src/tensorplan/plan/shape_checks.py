"""What the runtime checks of a plan once input shapes are known.

The plan reader checks a plan's structure only, in time linear in its bytes: it never infers
shapes. Whether the graph is consistent (each layer makes the type and fixed dims its output
declares) and fits its memory plan depends on the input shapes, so the runtime checks that
each time it infers the shapes of a new input-shape signature, before any kernel runs.
"""

from __future__ import annotations

from ..ir import GraphError, Program
from ..ops.base import UNKNOWN, TensorMeta
from .format import MAX_TENSOR_BYTES


def check_inferred(program: Program, metas: list[TensorMeta]) -> None:
    """GraphError naming the tensor and layer when the inferred metas break the plan's promises:
    a declared type or fixed dim, a memory slot too small, an activation without memory whose
    shape is known, or an engine input or output larger than MAX_TENSOR_BYTES."""
    graph = program.graph
    memory = program.memory
    exempt = set(graph.inputs) | set(graph.outputs) | set(graph.constants)
    exempt |= set(memory.slots) | set(memory.views)
    for node in graph.nodes:
        for value_id in node.outputs:
            value, meta = graph.values[value_id], metas[value_id]
            fits = len(meta.shape) == len(value.shape) and all(
                declared in (UNKNOWN, d)
                for d, declared in zip(meta.shape, value.shape, strict=True)
            )
            if meta.dtype != value.dtype or not fits:
                raise GraphError(
                    f"'{value.name}' is declared {value.dtype.name} {list(value.shape)} but "
                    f"layer '{node.name}' makes it {meta.dtype.name} {list(meta.shape)}"
                )
            if value_id not in exempt and meta.is_static:
                raise GraphError(f"activation '{value.name}' of layer '{node.name}' has no memory")
    for value_id, (_, size) in memory.slots.items():
        meta, name = metas[value_id], graph.values[value_id].name
        if not meta.is_static:
            raise GraphError(f"activation '{name}' has a memory slot but no static shape")
        if meta.nbytes > size:
            raise GraphError(
                f"activation '{name}' needs {meta.nbytes} bytes at these input shapes, more "
                f"than the {size} of its memory slot"
            )
    for value_id in graph.inputs + graph.outputs:
        meta = metas[value_id]
        if meta.is_static and meta.nbytes > MAX_TENSOR_BYTES:
            raise GraphError(
                f"'{graph.values[value_id].name}' is larger than {MAX_TENSOR_BYTES} bytes"
            )
