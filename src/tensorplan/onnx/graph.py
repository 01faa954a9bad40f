"""Importing a checked ONNX model into a network: inputs, initializers, nodes, outputs.

Each node goes to the importer of its op (importers/); an op without one but whose schema
defines it as a function of other ops (onnx.defs: function bodies) is imported by
expanding that body, node by node. Every failure is a ModelError naming the node.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import onnx
from onnx import AttributeProto

from ..network.definition import INetworkDefinition
from ..network.tensor import ITensor
from ..ops.base import UNKNOWN
from ..plan.format import MAX_RANK
from ..plugins.quick import add_onnx_plugin, find_plugin_creator
from ..types import ErrorCode
from .context import ImportContext, OnnxNode
from .importers import find_importer
from .importers.shaping import normalize_axis
from .model import (
    DEFAULT_DOMAINS,
    OLDEST_OPSET,
    ModelError,
    datatype_of,
    onnx_type_of,
    to_array,
    topological_order,
)

NEWEST_OPSET = onnx.defs.onnx_opset_version()
MAX_UNROLLED_STEPS = 1024
"""The most steps the unrolled Loops and Scans of a model take together (each step is a copy of
a body in the network; a step of a nested Loop or Scan counts in every copy of the outer body,
so that nesting cannot multiply past the limit)."""
MAX_NODES = 1_000_000
"""The most nodes an import may add: the graph's, each expanded function body's and each
unrolled or inlined copy of a subgraph's (as many as a plan may hold items, plan/format.py)."""
MAX_EXPANDED_NODES = 8_192
"""The most nodes an import may add beyond those the model's file holds (its graph, subgraphs
and functions, each counted once): the copies that unrolling Loops and Scans makes and the
bodies of the ONNX functions it expands. Expansion is the one way a small file makes a large
network; at 100 to 180 us per imported node (constant folding included) this keeps it near
one second (a 222-byte model unrolled a 28-node function body 1000 times; at 16,384 the fuzz
target still found inputs taking 3 s)."""
MAX_NESTING_DEPTH = 64
"""The deepest function bodies and subgraphs may nest in each other (a function that calls
itself, directly or through others, reaches it)."""


def import_model(network: INetworkDefinition, model: onnx.ModelProto) -> ImportContext:
    """Add the model's graph to `network`; the context holds the tensor of every value."""
    opsets = _opsets(model)
    graph = model.graph
    if graph.name:
        network.name = graph.name
    producers = {name: node for node in graph.node for name in node.output if name}
    ctx = ImportContext(network, producers)
    importer = GraphImporter(ctx, opsets, {f.name: f for f in model.functions})
    importer.file_nodes = _count_nodes(model)
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    for tensor in graph.sparse_initializer:
        raise ModelError(
            ErrorCode.UNSUPPORTED_GRAPH,
            f"sparse initializer '{tensor.values.name}' is not supported; store it dense",
        )
    for value in graph.input:
        if value.name not in initializers:
            ctx.tensors[value.name] = _add_input(network, value)
            ctx.graph_inputs.add(value.name)
    importer.initializers = initializers
    if len(graph.node) > MAX_NODES:
        raise ModelError(
            ErrorCode.UNSUPPORTED_GRAPH,
            f"the graph has {len(graph.node)} nodes; tensorplan imports at most {MAX_NODES} "
            "(MAX_NODES)",
        )
    known = set(ctx.tensors) | set(initializers)
    for index in topological_order(graph, known):
        importer.import_node(graph.node[index], index, opsets)
    for value in graph.output:
        tensor = importer.lookup(value.name, None)
        if tensor is None:
            raise ModelError(
                ErrorCode.INVALID_GRAPH,
                f"graph output '{value.name}' is not produced by any node or initializer",
            )
        if tensor.is_network_input or tensor.is_network_output or tensor.name != value.name:
            tensor = ctx.identity(tensor)
            tensor.name = value.name
        network.mark_output(tensor)
    return ctx


def _count_nodes(model: onnx.ModelProto) -> int:
    """The nodes of the model's graph, of every subgraph in it and of its functions."""
    count = 0
    pending: list[list[onnx.NodeProto]] = [list(model.graph.node)]
    pending += [list(function.node) for function in model.functions]
    while pending:
        nodes = pending.pop()
        count += len(nodes)
        for node in nodes:
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    pending.append(list(attribute.g.node))
                elif attribute.type == onnx.AttributeProto.GRAPHS:
                    pending += [list(graph.node) for graph in attribute.graphs]
    return count


class GraphImporter:
    """Imports nodes into a context: one importer call, or a function body's expansion."""

    def __init__(
        self, ctx: ImportContext, opsets: dict[str, int], functions: dict[str, onnx.FunctionProto]
    ) -> None:
        self.ctx = ctx
        self.opsets = opsets
        self.functions = functions
        self.initializers: dict[str, onnx.TensorProto] = {}
        self._expansions = itertools.count()
        self._imported_nodes = 0
        self.file_nodes = 0
        """How many nodes the model's file holds (MAX_EXPANDED_NODES counts beyond them)."""
        self._unrolled_steps = 0
        self._depth = 0

    def lookup(self, name: str, node: OnnxNode | None) -> ITensor | None:
        """The tensor of an ONNX value, creating initializers' constants on first use."""
        tensor = self.ctx.tensors.get(name)
        if tensor is None and name in self.initializers:
            proto = self.initializers[name]
            array = to_array(proto, f"initializer '{name}'")
            tensor = self.ctx.constant(array, datatype_of(proto.data_type, f"initializer '{name}'"))
            tensor.name = name
            self.ctx.tensors[name] = tensor
        return tensor

    def import_node(
        self, proto: onnx.NodeProto, index: int, opsets: dict[str, int], label: str | None = None
    ) -> None:
        domain = "" if proto.domain in DEFAULT_DOMAINS else proto.domain
        inputs = []
        for position, name in enumerate(proto.input):
            tensor = self.lookup(name, None) if name else None
            if name and tensor is None:
                raise ModelError(
                    ErrorCode.INVALID_GRAPH,
                    f"input {position} '{name}' is not a graph input, an initializer or the "
                    "output of an earlier node",
                    index,
                    proto.name,
                    proto.op_type,
                )
            inputs.append(tensor)
        node = OnnxNode(proto, index, opsets.get(domain, 0), inputs)
        self.ctx.add_producer(proto)
        self._imported_nodes += 1
        if self._imported_nodes > MAX_NODES:
            raise node.error(
                ErrorCode.UNSUPPORTED_GRAPH,
                f"the import reached {MAX_NODES} nodes (MAX_NODES), counting expanded function "
                "bodies and unrolled or inlined subgraphs",
            )
        if self._imported_nodes - self.file_nodes > MAX_EXPANDED_NODES:
            raise node.error(
                ErrorCode.UNSUPPORTED_GRAPH,
                f"unrolled Loop and Scan steps and expanded function bodies made more than "
                f"{MAX_EXPANDED_NODES} nodes beyond the model's {self.file_nodes} "
                "(MAX_EXPANDED_NODES)",
            )
        if domain not in opsets:
            raise node.unsupported(f"the model imports no opset for domain '{proto.domain}'")
        label = label or proto.name or f"{proto.op_type}_{index}"
        try:
            self._import(node, domain, label)
        except ModelError as error:
            if error.node < 0:  # raised below the importer: it is about this node
                error.node, error.node_name, error.node_operator = index, proto.name, proto.op_type
            raise

    def _import(self, node: OnnxNode, domain: str, label: str) -> None:
        network = self.ctx.network
        first_layer = network.num_layers
        importer = find_importer(node.op_type) if domain == "" else None
        if importer is None and domain == "" and node.op_type == "Scan" and node.opset >= 9:
            importer = self._unrolled_scan
        if importer is None and domain == "" and node.op_type == "If":
            importer = self._inlined_if
        if importer is None and domain == "" and node.op_type == "Loop":
            importer = self._unrolled_loop
        if importer is None:
            plugin = self._plugin(node, domain, label)
            if plugin is None:
                self._assign_outputs(node, self._expand(node, domain, label))
                return
            importer = plugin
        results = importer(self.ctx, node)
        outputs = [results] if isinstance(results, ITensor) else list(results)
        for position, layer in enumerate(network._layers[first_layer:]):
            layer.name = label if position == 0 else f"{label} [{position}]"
            for output_index, tensor in enumerate(layer._outputs):
                if tensor.name not in self.ctx.tensors:
                    suffix = "" if len(layer._outputs) == 1 else f"_{output_index}"
                    tensor.name = f"{layer.name}_output{suffix}"
        self._assign_outputs(node, outputs)

    def _assign_outputs(self, node: OnnxNode, outputs: list[ITensor | None]) -> None:
        for position, name in enumerate(node.proto.output):
            if not name:
                continue
            tensor = outputs[position] if position < len(outputs) else None
            if tensor is None:
                raise node.error(
                    ErrorCode.UNSUPPORTED_NODE,
                    f"output {position} ('{name}') is not supported by this importer",
                )
            self.ctx.meta(tensor)  # shape inference must succeed for every output
            if self.ctx.tensors.get(name) is tensor:  # named by a function body's node
                continue
            if tensor.is_network_input or tensor.name in self.ctx.tensors:
                tensor = self.ctx.identity(tensor)
            tensor.name = name
            self.ctx.tensors[name] = tensor

    def _plugin(
        self, node: OnnxNode, domain: str, label: str
    ) -> Callable[[ImportContext, OnnxNode], list[ITensor]] | None:
        """An importer making a plugin layer, when a plugin creator is registered for the op
        (as TensorRT's parser falls back to the plugin registry); None when none is."""
        if find_plugin_creator(node.op_type, domain) is None:
            return None

        def import_plugin(ctx: ImportContext, node: OnnxNode) -> list[ITensor]:
            if any(tensor is None for tensor in node.inputs):
                raise node.unsupported("a plugin node cannot omit optional inputs")
            attributes = {
                a.name: onnx.helper.get_attribute_value(a)
                for a in node.proto.attribute
                if a.type not in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
            }
            try:
                layer = add_onnx_plugin(
                    ctx.network, node.op_type, domain, node.inputs, attributes, label
                )
            except ValueError as error:
                raise node.error(ErrorCode.UNSUPPORTED_NODE, f"plugin: {error}") from error
            return [layer.get_output(i) for i in range(layer.num_outputs)]

        return import_plugin

    # -- control flow -------------------------------------------------------------------------

    def _unrolled_scan(self, ctx: ImportContext, node: OnnxNode) -> list[ITensor]:
        """Scan (opset 9+) unrolled: its body imported once per step of a scan length known
        when the network is built (tensorplan has no loop layers yet)."""
        body: onnx.GraphProto = node.attr("body", "graph")
        scans = node.attr("num_scan_inputs", "int", 0)
        if not 1 <= scans <= len(node.inputs):
            raise node.error(
                ErrorCode.INVALID_NODE,
                f"num_scan_inputs is {scans}; it must be from 1 to the node's "
                f"{len(node.inputs)} inputs",
            )
        states = len(node.inputs) - scans
        if len(body.input) != len(node.inputs) or len(body.output) < states:
            raise node.error(
                ErrorCode.INVALID_NODE,
                f"the body takes {len(body.input)} inputs and gives {len(body.output)} outputs; "
                f"the node has {len(node.inputs)} inputs, {states} of them states",
            )
        state_values, scan_inputs = list(node.inputs[:states]), list(node.inputs[states:])
        if not scan_inputs or any(t is None for t in node.inputs):
            raise node.unsupported("Scan needs its scan inputs")
        input_axes = node.attr("scan_input_axes", "ints", [0] * scans)
        input_reverse = node.attr("scan_input_directions", "ints", [0] * scans)
        outputs = len(body.output) - states
        output_axes = node.attr("scan_output_axes", "ints", [0] * outputs)
        output_reverse = node.attr("scan_output_directions", "ints", [0] * outputs)
        axes = [
            normalize_axis(node, a, ctx.rank(t), "scan input axis")
            for a, t in zip(input_axes, scan_inputs, strict=True)
        ]
        lengths = {ctx.shape(t)[a] for t, a in zip(scan_inputs, axes, strict=True)}
        if len(lengths) != 1 or UNKNOWN in lengths:
            raise node.error(
                ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                f"Scan is unrolled, so its scan length must be known and equal for every scan "
                f"input when the network is built, got {sorted(lengths)}",
            )
        steps = lengths.pop()
        self._take_steps(node, steps)
        label = node.proto.name or f"Scan_{node.index}"
        collected: list[list[ITensor]] = [[] for _ in range(outputs)]
        for step in range(steps):
            prefix = f"{label}::{step}::"
            bound = {}
            for formal, tensor in zip(body.input[:states], state_values, strict=True):
                bound[formal.name] = self._bind(prefix + formal.name, tensor)
            for formal, tensor, axis, reverse in zip(
                body.input[states:], scan_inputs, axes, input_reverse, strict=True
            ):
                index = ctx.constant(np.array(steps - 1 - step if reverse else step, np.int64))
                bound[formal.name] = self._bind(
                    prefix + formal.name, ctx.gather(tensor, index, axis)
                )
            results = self._inline(body, node, prefix, bound)
            state_values = results[:states]
            for position, tensor in enumerate(results[states:]):
                collected[position].append(tensor)
        stacked = []
        for tensors, axis, reverse in zip(collected, output_axes, output_reverse, strict=True):
            axis = normalize_axis(node, axis, ctx.rank(tensors[0]) + 1, "scan output axis")
            pieces = [ctx.unsqueeze(t, [axis]) for t in (tensors[::-1] if reverse else tensors)]
            stacked.append(ctx.concat(pieces, axis))
        return state_values + stacked

    def _unrolled_loop(self, ctx: ImportContext, node: OnnxNode) -> list[ITensor]:
        """Loop unrolled: its trip count and every step's condition must be known when the
        network is built (tensorplan has no loop layers yet)."""
        body: onnx.GraphProto = node.attr("body", "graph")
        trips = None if node.input(0) is None else int(ctx.require_value(node, 0).reshape(()))
        going = True if node.input(1) is None else bool(ctx.require_value(node, 1).reshape(()))
        if trips is None or trips > MAX_UNROLLED_STEPS:
            raise node.error(
                ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                f"Loop is unrolled, so it needs a trip count of at most {MAX_UNROLLED_STEPS} "
                f"known when the network is built, got {trips}",
            )
        carried = list(node.inputs[2:])
        outputs: list[list[ITensor]] = [[] for _ in range(len(body.output) - 1 - len(carried))]
        label = node.proto.name or f"Loop_{node.index}"
        for step in range(trips):
            if not going:
                break
            self._take_steps(node, 1)
            prefix = f"{label}::{step}::"
            values = [ctx.constant(np.array(step, np.int64)), ctx.constant(np.array(going))]
            bound = {
                formal.name: self._bind(prefix + formal.name, tensor)
                for formal, tensor in zip(body.input, values + carried, strict=True)
            }
            results = self._inline(body, node, prefix, bound)
            condition = ctx.value(results[0])
            if condition is None:
                raise node.error(
                    ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                    "Loop is unrolled, so its condition must be known when the network is built",
                )
            going = bool(condition.reshape(()))
            carried = results[1 : 1 + len(carried)]
            for position, tensor in enumerate(results[1 + len(carried) :]):
                outputs[position].append(tensor)
        if any(not tensors for tensors in outputs):
            raise node.unsupported("a Loop that runs no step has empty scan outputs")
        return carried + [ctx.concat([ctx.unsqueeze(t, [0]) for t in ts], 0) for ts in outputs]

    def _inlined_if(self, ctx: ImportContext, node: OnnxNode) -> list[ITensor]:
        """If with a condition known when the network is built: the taken branch, inlined
        (as onnx-tensorrt does for constant conditions)."""
        condition = bool(ctx.require_value(node, 0).reshape(-1)[0])
        branch: onnx.GraphProto = node.attr("then_branch" if condition else "else_branch", "graph")
        return self._inline(branch, node, f"{node.proto.name or f'If_{node.index}'}::", {})

    def _inline(
        self, graph: onnx.GraphProto, node: OnnxNode, prefix: str, bound: dict[str, str]
    ) -> list[ITensor]:
        """Import a subgraph (Scan's body, If's branch) under `prefix`, its inputs `bound` to
        names of the context; its outputs' tensors. Names from outer scopes stay as they are."""
        renamed = dict(bound)
        for initializer in graph.initializer:
            self.initializers[prefix + initializer.name] = initializer
            renamed[initializer.name] = prefix + initializer.name
        local = {o for body_node in graph.node for o in body_node.output}
        with self._nested(node, "subgraphs"):
            for position, body_node in enumerate(graph.node):
                inner = _rename_scoped(body_node, renamed, prefix, local)
                self.import_node(
                    inner, node.index, self.opsets, f"{prefix}{body_node.op_type}_{position}"
                )
        return [
            self.lookup(renamed.get(o.name, prefix + o.name if o.name in local else o.name), node)
            for o in graph.output
        ]

    def _take_steps(self, node: OnnxNode, steps: int) -> None:
        """Count `steps` more unrolled steps; ModelError past MAX_UNROLLED_STEPS."""
        self._unrolled_steps += steps
        if self._unrolled_steps > MAX_UNROLLED_STEPS:
            raise node.unsupported(
                f"{node.op_type} is unrolled, and its {steps} steps take the model's unrolled "
                f"Loop and Scan steps to {self._unrolled_steps}, over the limit of "
                f"{MAX_UNROLLED_STEPS} (MAX_UNROLLED_STEPS; nested steps count in every copy)"
            )

    @contextlib.contextmanager
    def _nested(self, node: OnnxNode, what: str) -> Iterator[None]:
        """One level deeper into function bodies or subgraphs; ModelError past the limit."""
        if self._depth >= MAX_NESTING_DEPTH:
            raise node.error(
                ErrorCode.UNSUPPORTED_GRAPH,
                f"{what} nest more than {MAX_NESTING_DEPTH} deep here (MAX_NESTING_DEPTH); a "
                "function that calls itself, directly or through others, never ends",
            )
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def _bind(self, name: str, tensor: ITensor) -> str:
        """Give `tensor` an ONNX name in the context (for an unrolled body's inputs)."""
        self.ctx.tensors[name] = tensor
        return name

    # -- function bodies ----------------------------------------------------------------------

    def _expand(self, node: OnnxNode, domain: str, label: str) -> list[ITensor | None]:
        """Import an op defined as a function of other ops by importing its body."""
        function = self._function(node, domain)
        if function is None:
            raise node.unsupported(
                f"no importer for operator '{node.op_type}' (domain '{node.proto.domain}', "
                f"opset {node.opset}) and its schema defines no function body to expand"
            )
        opsets = dict(self.opsets)
        for entry in function.opset_import:
            opsets["" if entry.domain in DEFAULT_DOMAINS else entry.domain] = entry.version
        prefix = f"{label}::{next(self._expansions)}::"
        renamed = {
            formal: actual for formal, actual in zip(function.input, node.proto.input, strict=False)
        }
        renamed.update(zip(function.output, node.proto.output, strict=False))
        attributes = self._attribute_values(node, function)
        with self._nested(node, "function bodies"):
            for position, body_node in enumerate(function.node):
                inner = _rename(body_node, renamed, prefix, attributes)
                try:
                    self.import_node(
                        inner, node.index, opsets, f"{label}/{body_node.op_type}_{position}"
                    )
                except ModelError as error:  # reported as the caller's (keeping its kind)
                    error.desc = (
                        f"in the expansion of '{node.op_type}' (function body node {position}, "
                        f"{body_node.op_type}): {error.desc}"
                    )
                    error.node, error.node_name = node.index, node.proto.name
                    error.node_operator = node.op_type
                    raise
        return [self.ctx.tensors.get(name) if name else None for name in node.proto.output]

    def _function(self, node: OnnxNode, domain: str) -> onnx.FunctionProto | None:
        local = self.functions.get(node.op_type)
        if local is not None and local.domain == node.proto.domain:
            return local
        try:
            schema = onnx.defs.get_schema(node.op_type, node.opset, domain)
        except onnx.defs.SchemaError:
            return None
        if schema.deprecated:
            return None
        function = onnx.FunctionProto()
        if schema.has_function:
            body = schema.get_function_with_opset_version(node.opset)
            if not body:
                return schema.function_body
            function.ParseFromString(body)
            return function
        if schema.has_context_dependent_function:
            types = [_type_proto(self.ctx, tensor) for tensor in node.inputs]
            body = schema.get_context_dependent_function_with_opset_version(
                node.opset, node.proto.SerializeToString(), [t.SerializeToString() for t in types]
            )
            if not body:
                return None
            function.ParseFromString(body)
            return function
        return None

    def _attribute_values(
        self, node: OnnxNode, function: onnx.FunctionProto
    ) -> dict[str, AttributeProto]:
        """Values for the body's attribute references: the node's, else the defaults."""
        values = {a.name: a for a in function.attribute_proto}
        local = self.functions.get(node.op_type) is function
        if not local:
            domain = "" if node.proto.domain in DEFAULT_DOMAINS else node.proto.domain
            schema = onnx.defs.get_schema(node.op_type, node.opset, domain)
            for name, spec in schema.attributes.items():
                if spec.default_value.type != AttributeProto.UNDEFINED:
                    values[name] = spec.default_value
        values.update((a.name, a) for a in node.proto.attribute)
        return values


def _rename(
    node: onnx.NodeProto, renamed: dict[str, str], prefix: str, attributes: dict
) -> onnx.NodeProto:
    """A body node over the caller's names, its attribute references resolved."""
    inner = onnx.NodeProto()
    inner.CopyFrom(node)
    del inner.input[:]
    inner.input.extend(_names(node.input, renamed, prefix))
    del inner.output[:]
    inner.output.extend(_names(node.output, renamed, prefix))
    inner.name = prefix + node.name if node.name else ""
    del inner.attribute[:]
    for attribute in node.attribute:
        if attribute.ref_attr_name:
            value = attributes.get(attribute.ref_attr_name)
            if value is None:
                continue
            resolved = AttributeProto()
            resolved.CopyFrom(value)
            resolved.name = attribute.name
            inner.attribute.append(resolved)
        elif attribute.type == AttributeProto.GRAPH:
            inner.attribute.append(_rename_outer(attribute, renamed, prefix))
        else:
            inner.attribute.append(attribute)
    return inner


def _rename_outer(
    attribute: AttributeProto, renamed: dict[str, str], prefix: str
) -> AttributeProto:
    """A subgraph attribute of a function body node whose references to the body's values
    (its outer scope) are renamed as the body's own are."""
    graph = attribute.g
    local = {v.name for v in graph.input} | {i.name for i in graph.initializer}
    local |= {o for n in graph.node for o in n.output}

    def outer(name: str) -> str:
        if not name or name in local:
            return name
        return renamed.get(name, prefix + name)

    resolved = AttributeProto()
    resolved.CopyFrom(attribute)
    for body_node in resolved.g.node:
        names = [outer(name) for name in body_node.input]
        del body_node.input[:]
        body_node.input.extend(names)
    for output in resolved.g.output:
        output.name = outer(output.name)
    return resolved


def _rename_scoped(
    node: onnx.NodeProto, renamed: dict[str, str], prefix: str, local: set[str]
) -> onnx.NodeProto:
    """A control-flow body node: its own values prefixed, outer-scope values kept."""
    inner = onnx.NodeProto()
    inner.CopyFrom(node)

    def scoped(name: str) -> str:
        if name in renamed:
            return renamed[name]
        return prefix + name if name in local else name

    del inner.input[:]
    inner.input.extend(scoped(name) if name else "" for name in node.input)
    del inner.output[:]
    inner.output.extend(scoped(name) if name else "" for name in node.output)
    inner.name = prefix + node.name if node.name else ""
    return inner


def _names(names: Iterable[str], renamed: dict[str, str], prefix: str) -> list[str]:
    return [renamed[name] if name in renamed else (prefix + name if name else "") for name in names]


def _type_proto(ctx: ImportContext, tensor: ITensor | None) -> onnx.TypeProto:
    if tensor is None:
        return onnx.TypeProto()
    shape = [None if d == UNKNOWN else d for d in ctx.shape(tensor)]
    return onnx.helper.make_tensor_type_proto(onnx_type_of(ctx.dtype(tensor)), shape)


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    """The imported opset version per domain ('' for the default one), checked."""
    opsets = {}
    for entry in model.opset_import:
        domain = "" if entry.domain in DEFAULT_DOMAINS else entry.domain
        opsets[domain] = int(entry.version)
    version = opsets.get("")
    if version is not None and not OLDEST_OPSET <= version <= NEWEST_OPSET:
        raise ModelError(
            ErrorCode.UNSUPPORTED_GRAPH,
            f"the model uses opset {version} of the default domain; tensorplan imports opsets "
            f"{OLDEST_OPSET} to {NEWEST_OPSET}",
        )
    return opsets


def _add_input(network: INetworkDefinition, value: onnx.ValueInfoProto) -> ITensor:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        raise ModelError(
            ErrorCode.UNSUPPORTED_GRAPH,
            f"graph input '{value.name}' is a {kind or 'value of no type'}; only tensors are "
            "supported",
        )
    tensor_type = value.type.tensor_type
    dtype = datatype_of(tensor_type.elem_type, f"graph input '{value.name}'")
    if not tensor_type.HasField("shape"):
        raise ModelError(
            ErrorCode.UNSUPPORTED_GRAPH,
            f"graph input '{value.name}' has no shape; its rank must be known",
        )
    if len(tensor_type.shape.dim) > MAX_RANK:
        raise ModelError(
            ErrorCode.UNSUPPORTED_GRAPH,
            f"graph input '{value.name}' has {len(tensor_type.shape.dim)} dimensions; TensorRT "
            f"and tensorplan support at most {MAX_RANK} (MAX_RANK)",
        )
    dims = tuple(
        d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else UNKNOWN
        for d in tensor_type.shape.dim
    )
    tensor = network.add_input(value.name, dtype, dims)
    if tensor is None:
        raise ModelError(ErrorCode.INVALID_GRAPH, f"graph input '{value.name}' was refused")
    return tensor
