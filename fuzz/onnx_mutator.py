"""The ONNX target's mutator: structured edits of the ModelProto (ops, attributes, dims,
initializers, opsets, nodes and edges, in the main graph, in Loop/Scan/If subgraphs and in
model-local functions), so that mutated models still decode and reach the importers; raw
protobuf damage the rest of the time."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

import onnx
from google.protobuf.message import DecodeError, EncodeError
from onnx import AttributeProto, TensorProto, helper

from .values import ODD_FLOATS, ODD_STRINGS, odd_int, structured_or_raw

RAW_DAMAGE = 0.2
"""The share of mutations that damage the serialized bytes anywhere."""

INVALID = (DecodeError, EncodeError, ValueError, TypeError, IndexError, KeyError, RecursionError)
"""What protobuf and onnx.helper raise on a model or value they cannot take."""

Nodes = Any
"""A graph or a function: anything with a repeated `node` field."""


def mutate_model(data: bytes, max_size: int, seed: int) -> bytes:
    """atheris's custom mutator: `edit_model`, or libFuzzer's byte mutations (values.structured_or_raw)."""
    return structured_or_raw(data, max_size, seed, edit_model, RAW_DAMAGE)


def edit_model(data: bytes, rng: random.Random) -> bytes | None:
    """The model in `data` with one to three structured edits; None when it does not decode
    or an edit cannot be encoded."""
    try:
        model = onnx.ModelProto.FromString(data)
        for _ in range(rng.randint(1, 3)):
            edit = rng.choices(MODEL_EDITS, weights=[weight for _, weight in MODEL_EDITS])[0][0]
            edit(model, rng)
        return model.SerializeToString()
    except INVALID:
        return None


# -- the edits --------------------------------------------------------------------------------


def _change_op(model: onnx.ModelProto, rng: random.Random) -> None:
    """A node's op replaced: by another standard op, a model-local function, or nonsense."""
    node = _pick_node(model, rng)
    if node is None:
        return
    functions = [(f.name, f.domain) for f in model.functions]
    kind = rng.randrange(4)
    if kind < 2:
        node.op_type = rng.choice(_op_types())
    elif kind == 2 and functions:
        node.op_type, node.domain = rng.choice(functions)
    else:
        node.op_type = rng.choice(("", "Unknown", node.op_type.lower()))
        node.domain = rng.choice(("", "ai.onnx", "com.microsoft", "local", "ai.onnx.ml"))


def _edit_attribute(model: onnx.ModelProto, rng: random.Random) -> None:
    """An attribute of a node changed in value or type, removed, or added under a name the
    node's op declares."""
    node = _pick_node(model, rng)
    if node is None:
        return
    kind = rng.randrange(5)
    if kind == 0 and node.attribute:
        del node.attribute[rng.randrange(len(node.attribute))]
    elif kind == 1 and node.attribute:
        rng.choice(node.attribute).type = rng.choice(list(AttributeProto.AttributeType.values()))
    elif kind == 2 or not node.attribute:
        names = _attribute_names(node.op_type) or ("axis", "perm", "to", "body")
        node.attribute.append(_odd_attribute(rng.choice(names), rng))
    else:
        _edit_attribute_value(rng.choice(node.attribute), model, rng)


def _edit_dims(model: onnx.ModelProto, rng: random.Random) -> None:
    """A dimension or element type of a graph input, output or value_info changed, or a
    dimension added or removed."""
    graph = rng.choice(_graphs(model))
    infos = list(graph.input) + list(graph.output) + list(graph.value_info)
    if not infos:
        return
    tensor_type = rng.choice(infos).type.tensor_type
    dims = tensor_type.shape.dim
    kind = rng.randrange(5)
    if kind == 0:
        tensor_type.elem_type = rng.choice([*list(TensorProto.DataType.values()), 99])
    elif kind == 1 or not dims:
        dims.add().dim_value = _int64(odd_int(rng))
    elif kind == 2:
        del dims[rng.randrange(len(dims))]
    elif kind == 3:
        rng.choice(dims).dim_param = rng.choice(("N", "", "batch"))
    else:
        dim = rng.choice(dims)
        dim.dim_value = _int64(odd_int(rng, dim.dim_value))


def _edit_initializer(model: onnx.ModelProto, rng: random.Random) -> None:
    """An initializer's dims, type or data made inconsistent, or its data moved outside."""
    graph = rng.choice(_graphs(model))
    if not graph.initializer:
        graph.initializer.append(helper.make_tensor("extra", TensorProto.FLOAT, [2], [1.0, 2.0]))
        return
    tensor = rng.choice(graph.initializer)
    kind = rng.randrange(6)
    if kind == 0:
        tensor.dims.append(_int64(odd_int(rng)))
    elif kind == 1 and tensor.dims:
        tensor.dims[rng.randrange(len(tensor.dims))] = _int64(odd_int(rng))
    elif kind == 2:
        tensor.data_type = rng.choice([*list(TensorProto.DataType.values()), 99])
    elif kind == 3:
        tensor.raw_data = tensor.raw_data[: rng.randrange(len(tensor.raw_data) + 1)]
    elif kind == 4:
        tensor.float_data.extend(rng.choice(ODD_FLOATS) for _ in range(rng.choice((1, 7))))
    else:
        tensor.data_location = TensorProto.EXTERNAL
        del tensor.external_data[:]
        for key, value in (("location", rng.choice(ODD_STRINGS)), ("length", "16")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value


def _edit_opset(model: onnx.ModelProto, rng: random.Random) -> None:
    """An opset version, a domain's import, or the IR version changed."""
    kind = rng.randrange(4)
    if kind == 0 and model.opset_import:
        opset = rng.choice(model.opset_import)
        opset.version = rng.choice((1, 6, 7, 9, 10, 11, 12, 13, 17, 18, 21, 23, 24, 99))
    elif kind == 1 and model.opset_import:
        del model.opset_import[rng.randrange(len(model.opset_import))]
    elif kind == 2:
        model.opset_import.append(helper.make_opsetid(rng.choice(("", "local", "x")), 1))
    else:
        model.ir_version = rng.choice((0, 3, 7, 8, 9, 10, 11, 99))


def _edit_nodes(model: onnx.ModelProto, rng: random.Random) -> None:
    """A node added (of a random op, wired to existing tensors), removed, repeated, or
    moved, in a graph or a function."""
    owner = rng.choice(_node_owners(model))
    nodes = owner.node
    kind = rng.randrange(4)
    if kind == 0 or not nodes:
        names = _tensor_names(owner) or ["x"]
        inputs = [rng.choice(names) for _ in range(rng.randint(0, 3))]
        node = helper.make_node(rng.choice(_op_types()), inputs, [rng.choice([*names, "fresh"])])
        nodes.insert(rng.randrange(len(nodes) + 1), node)
    elif kind == 1:
        del nodes[rng.randrange(len(nodes))]
    elif kind == 2:
        copy = onnx.NodeProto()
        copy.CopyFrom(rng.choice(nodes))
        nodes.insert(rng.randrange(len(nodes) + 1), copy)
    else:
        index = rng.randrange(len(nodes))
        moved = onnx.NodeProto()
        moved.CopyFrom(nodes[index])
        del nodes[index]
        nodes.insert(rng.randrange(len(nodes) + 1), moved)


def _rewire(model: onnx.ModelProto, rng: random.Random) -> None:
    """A node input or output renamed (to another tensor, an empty optional, or nothing
    known), or one added or dropped; or a graph's inputs and outputs changed."""
    owner = rng.choice(_node_owners(model))
    names = [*_tensor_names(owner), "", "missing"]
    if isinstance(owner, onnx.GraphProto) and rng.random() < 0.25:
        ios = rng.choice((owner.input, owner.output))
        if ios and rng.random() < 0.5:
            del ios[rng.randrange(len(ios))]
        else:
            ios.append(helper.make_tensor_value_info(rng.choice(names), TensorProto.FLOAT, [2]))
        return
    if not owner.node:
        return
    node = rng.choice(owner.node)
    edges = rng.choice((node.input, node.output))
    kind = rng.randrange(3)
    if kind == 0 and edges:
        edges[rng.randrange(len(edges))] = rng.choice(names)
    elif kind == 1 and edges:
        del edges[rng.randrange(len(edges))]
    else:
        edges.append(rng.choice(names))


def _edit_subgraph(model: onnx.ModelProto, rng: random.Random) -> None:
    """A Loop/Scan/If body (or any graph attribute) swapped with another graph, emptied, or
    given to a node that has none."""
    graphs = [
        a for node in _all_nodes(model) for a in node.attribute if a.type == AttributeProto.GRAPH
    ]
    node = _pick_node(model, rng)
    if not graphs or node is None:
        return
    kind = rng.randrange(3)
    attribute = rng.choice(graphs)
    if kind == 0:  # through bytes: one graph may hold the other
        other = rng.choice(graphs)
        mine, theirs = attribute.g.SerializeToString(), other.g.SerializeToString()
        attribute.g.ParseFromString(theirs)
        other.g.ParseFromString(mine)
    elif kind == 1:
        del attribute.g.node[:]
    else:
        name = rng.choice(("body", "then_branch", "else_branch"))
        node.attribute.append(helper.make_attribute(name, attribute.g))


def _edit_function(model: onnx.ModelProto, rng: random.Random) -> None:
    """A model-local function's signature, attributes or opsets changed; or one added that
    calls itself."""
    if not model.functions or rng.random() < 0.1:
        body = [helper.make_node("Recursive", ["a"], ["b"], domain="local")]
        model.functions.append(helper.make_function("local", "Recursive", ["a"], ["b"], body, []))
        return
    function = rng.choice(model.functions)
    kind = rng.randrange(4)
    if kind == 0:
        rng.choice((function.input, function.output)).append(rng.choice(("a", "b", "", "z")))
    elif kind == 1 and function.input:
        del function.input[rng.randrange(len(function.input))]
    elif kind == 2:
        function.attribute.append(rng.choice(("alpha", "axis", "")))
    else:
        del function.opset_import[:]


MODEL_EDITS: list[tuple[Callable[[onnx.ModelProto, random.Random], None], int]] = [
    (_change_op, 10),
    (_edit_attribute, 22),
    (_edit_dims, 12),
    (_edit_initializer, 12),
    (_edit_opset, 6),
    (_edit_nodes, 12),
    (_rewire, 12),
    (_edit_subgraph, 6),
    (_edit_function, 6),
]


# -- helpers ----------------------------------------------------------------------------------


def _edit_attribute_value(
    attribute: AttributeProto, model: onnx.ModelProto, rng: random.Random
) -> None:
    """The attribute's value changed within its type: a number to an odd one, a list
    shortened, lengthened or with an odd item, a tensor's dims, a graph emptied."""
    if attribute.type == AttributeProto.INT:
        attribute.i = _int64(odd_int(rng, attribute.i))
    elif attribute.type == AttributeProto.FLOAT:
        attribute.f = rng.choice(ODD_FLOATS)
    elif attribute.type == AttributeProto.INTS:
        values = list(attribute.ints)
        kind = rng.randrange(3)
        if kind == 0 and values:
            values[rng.randrange(len(values))] = _int64(odd_int(rng))
        elif kind == 1 and values:
            del values[rng.randrange(len(values))]
        else:
            values += [rng.choice((-1, 0, 1, 2))] * rng.choice((1, 9))
        attribute.ints[:] = values
    elif attribute.type == AttributeProto.STRING:
        attribute.s = rng.choice(ODD_STRINGS).encode("utf-8", "surrogatepass")
    elif attribute.type == AttributeProto.TENSOR:
        attribute.t.dims.append(_int64(odd_int(rng)))
    elif attribute.type == AttributeProto.GRAPH:
        parts = [p for p in (attribute.g.node, attribute.g.input, attribute.g.output) if p]
        if parts:
            del rng.choice(parts)[-1]
    else:
        attribute.CopyFrom(_odd_attribute(attribute.name, rng))


def _odd_attribute(name: str, rng: random.Random) -> AttributeProto:
    """An attribute `name` of a common type with an odd value."""
    kind = rng.randrange(5)
    if kind == 0:
        return helper.make_attribute(name, _int64(odd_int(rng)))
    if kind == 1:
        return helper.make_attribute(name, rng.choice(ODD_FLOATS))
    if kind == 2:
        ints = [rng.choice((-1, 0, 1, 2, 3))] * rng.choice((0, 1, 2, 4, 9))
        return helper.make_attribute(name, ints, attr_type=AttributeProto.INTS)
    if kind == 3:
        return helper.make_attribute(name, rng.choice(("", "constant", "NOTSET", "abc")))
    tensor = helper.make_tensor("t", TensorProto.INT64, [2], [0, _int64(odd_int(rng))])
    return helper.make_attribute(name, tensor)


def _int64(value: int) -> int:
    """`value` wrapped into protobuf's int64 range (small values unchanged)."""
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


def _graphs(model: onnx.ModelProto) -> list[onnx.GraphProto]:
    """The main graph and every subgraph below it, in its nodes' and functions' attributes."""
    graphs = [model.graph]
    for node in _all_nodes(model):
        for attribute in node.attribute:
            graphs += [attribute.g] if attribute.type == AttributeProto.GRAPH else []
            graphs += list(attribute.graphs)
    return graphs


def _node_owners(model: onnx.ModelProto) -> list[Nodes]:
    return [*_graphs(model), *model.functions]


def _all_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Every node of the model: its graph's, its functions', and their subgraphs', to a depth
    of 8 (deeper models are left as they are)."""
    found: list[onnx.NodeProto] = []
    level = [*model.graph.node, *(n for f in model.functions for n in f.node)]
    for _ in range(8):
        found += level
        level = [
            inner
            for node in level
            for attribute in node.attribute
            for graph in [attribute.g, *attribute.graphs]
            for inner in graph.node
        ]
    return found


def _pick_node(model: onnx.ModelProto, rng: random.Random) -> onnx.NodeProto | None:
    nodes = _all_nodes(model)
    return rng.choice(nodes) if nodes else None


def _tensor_names(owner: Nodes) -> list[str]:
    """The tensor names a graph or function uses, sorted (for a reproducible choice)."""
    names = {name for node in owner.node for name in [*node.input, *node.output]}
    if isinstance(owner, onnx.GraphProto):
        names |= {info.name for info in [*owner.input, *owner.output]}
        names |= {tensor.name for tensor in owner.initializer}
    else:
        names |= {*owner.input, *owner.output}
    return sorted(names)


@functools.cache
def _op_types() -> list[str]:
    return sorted({schema.name for schema in onnx.defs.get_all_schemas() if not schema.domain})


def _attribute_names(op_type: str) -> tuple[str, ...]:
    try:
        return tuple(sorted(onnx.defs.get_schema(op_type).attributes))
    except onnx.defs.SchemaError:
        return ()
