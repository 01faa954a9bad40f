"""Which shuffles are views: the rule the builder's memory planner applies and the plan
reader checks plans against (so it lives with the plan, in the lean runtime too)."""

from __future__ import annotations

from collections.abc import Collection

from ..ir import Graph
from ..ops import get_op
from ..ops.shaping import Shuffle


def shuffle_views(
    graph: Graph, candidates: Collection[int], channels_last: Collection[int]
) -> dict[int, int]:
    """Which shuffle outputs among `candidates` are views of their inputs (value -> input).

    A reshape is a view of a dense input (not channels-last, not a transposed view); a
    transpose is a strided view when every reader's op reads strided views (`Op.reads_strided_views`). The
    plan reader checks a plan's views with this same rule.
    """
    consumers = graph.consumers()
    views: dict[int, int] = {}
    strided: set[int] = set()
    for node in graph.nodes:
        value_id = node.outputs[0] if node.op == "shuffle" else None
        if value_id not in candidates:
            continue
        source = node.inputs[0]
        ranks = (len(graph.values[source].shape), len(graph.values[value_id].shape))
        has_dims = len(node.inputs) > 1 and node.inputs[1] is not None
        kind = Shuffle.view_kind(node.attrs, has_dims, ranks)
        if kind == "reshape" and source not in strided and source not in channels_last:
            views[value_id] = source
        elif kind == "permute" and all(
            get_op(graph.nodes[i].op).reads_strided_views for i in consumers.get(value_id, [])
        ):
            views[value_id] = source
            strided.add(value_id)
    return views
