"""Graph passes of the builder: constant folding, identity removal, dead-code removal."""

from __future__ import annotations

from ..ir import Graph, Node, infer_node_named
from ..ops import get_op
from ..ops.base import TensorMeta, evaluate

FOLD_GROWTH_LIMIT = 1 << 20
"""Bytes a folded result may add to the plan beyond the size of the constants it replaces."""


def fold_constants(graph: Graph, inferred: dict[int, TensorMeta] | None = None) -> None:
    """Replace every node computable at build time by its result, as constants (shapes here
    are the network's, and shape-tensor inputs have no values yet).

    `inferred` holds metas already inferred for the graph's values (by lowering): a node
    whose inputs have exactly those metas has those outputs, and is not inferred again."""
    inferred = inferred or {}
    metas: dict[int, TensorMeta] = {}
    for value_id, tensor in graph.constants.items():
        metas[value_id] = inferred.get(value_id) or TensorMeta(
            graph.values[value_id].dtype, tuple(tensor.shape), tensor
        )
    for value_id in graph.inputs:
        value = graph.values[value_id]
        metas[value_id] = inferred.get(value_id) or TensorMeta(value.dtype, value.shape)
    kept: list[Node] = []
    for node in graph.nodes:
        inputs = [None if v is None else metas[v] for v in node.inputs]
        known = [inferred.get(v) for v in node.outputs]
        unchanged = all(v is None or metas[v] is inferred.get(v) for v in node.inputs)
        if unchanged and None not in known:
            results = known
        else:
            results = infer_node_named(node, inputs, values_known=False)
        op = get_op(node.op)
        if (
            not all(r.value is not None for r in results)
            and op.foldable
            and _foldable(inputs, results)
        ):
            results = evaluate(op, inputs, node.attrs, results)
        for value_id, meta in zip(node.outputs, results, strict=True):
            metas[value_id] = meta
        if all(r.value is not None for r in results):
            for value_id, meta in zip(node.outputs, results, strict=True):
                graph.constants[value_id] = meta.value.contiguous()
        else:
            kept.append(node)
    graph.nodes = kept
    _produce_outputs(graph)


def _foldable(inputs: list[TensorMeta | None], results: list[TensorMeta]) -> bool:
    present = [m for m in inputs if m is not None]
    if not present or any(m.value is None for m in present):
        return False
    if not all(r.is_static for r in results):
        return False
    consumed = sum(m.value.numel() * m.value.element_size() for m in present)
    produced = sum(r.nbytes for r in results)
    return produced <= consumed + FOLD_GROWTH_LIMIT


def _produce_outputs(graph: Graph) -> None:
    """Engine outputs must be written by a node: copy constant outputs with an identity (the
    constant stays where it is, for the layers that read it too)."""
    for position, value_id in enumerate(graph.outputs):
        if value_id in graph.constants:
            value = graph.values[value_id]
            copy = graph.add_value(value.name, value.dtype, value.shape)
            value.name = f"{value.name} [constant]"
            graph.nodes.append(Node(f"{value.name} [copy]", "identity", {}, [value_id], [copy]))
            graph.outputs[position] = copy


def remove_identities(graph: Graph) -> None:
    """Drop copies that change nothing (identity, cast to the same type), except for outputs."""
    outputs = set(graph.outputs)
    replacement: dict[int, int] = {}
    kept = []
    for node in graph.nodes:
        node.inputs = [replacement.get(v, v) if v is not None else None for v in node.inputs]
        source = node.inputs[0] if node.inputs else None
        same_type = (
            source is not None and graph.values[source].dtype == graph.values[node.outputs[0]].dtype
        )
        if node.op in ("identity", "cast") and same_type and node.outputs[0] not in outputs:
            replacement[node.outputs[0]] = source
        else:
            kept.append(node)
    graph.nodes = kept


def eliminate_dead_code(graph: Graph) -> None:
    """Drop nodes and constants no output depends on."""
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(v in live for v in node.outputs):
            kept.append(node)
            live.update(v for v in node.inputs if v is not None)
    graph.nodes = kept[::-1]
    for value_id in [v for v in graph.constants if v not in live]:
        del graph.constants[value_id]


def compact(graph: Graph) -> None:
    """Renumber values so that only those the program uses remain."""
    used: list[int] = list(graph.inputs)
    used += [v for node in graph.nodes for v in (*node.inputs, *node.outputs) if v is not None]
    used += list(graph.constants) + list(graph.outputs)
    new_id: dict[int, int] = {}
    for value_id in used:
        new_id.setdefault(value_id, len(new_id))
    graph.values = [graph.values[old] for old in new_id]
    graph.inputs = [new_id[v] for v in graph.inputs]
    graph.outputs = [new_id[v] for v in graph.outputs]
    graph.constants = {new_id[v]: tensor for v, tensor in graph.constants.items()}
    for node in graph.nodes:
        node.inputs = [None if v is None else new_id[v] for v in node.inputs]
        node.outputs = [new_id[v] for v in node.outputs]
