"""The plugin op: a layer computed by user code (TensorRT's IPluginV3Layer).

A plan stores a plugin layer as plain data: the plugin's name, version and namespace, its
serialized fields, and its output types and shape *expressions* (see plugins/dims_expr.py).
Shapes are inferred from those expressions alone, so reading and checking a plan never runs
plugin code. Running the op calls the plugin's `enqueue` through a `PluginBinding`, which
the runtime attaches to the node (key "binding") once it has created the plugin with its
registered creator; the builder keeps the network's plugin object under key "plugin". Neither
key is part of the schema, so neither is ever written to a plan.

Layout of the inputs: data inputs at positions 0 to 63, shape inputs (whose values the
shape expressions may use) at positions 64 to 127.
"""

from __future__ import annotations

from typing import Any

import torch

from ..device import DATATYPES
from ..plugins.dims_expr import (
    MAX_EXPR_NODES,
    IExprBuilder,
    check_expr,
    encode_expr,
    evaluate,
    input_exprs,
    references,
    value_exprs,
)
from ..plugins.fields import MAX_FIELDS, check_records, encode_records
from ..plugins.interfaces import DynamicPluginTensorDesc, PluginTensorDesc
from ..types import DataType, LayerType, PluginCapabilityType, TensorFormat
from .base import UNKNOWN, Attr, Int, Op, ShapeError, Str, TensorMeta

SHAPE_INPUT_BASE = 64
"""Position of the first shape input among a plugin node's inputs."""
MAX_OUTPUTS = 64
MAX_RANK = 8


class PluginFields(Attr):
    """A plugin's serialized fields: FieldRecords, stored as JSON objects (plugins/fields.py)."""

    def __init__(self) -> None:
        super().__init__(())

    def check(self, value: Any) -> tuple:
        return check_records(value)

    def encode(self, value: Any) -> list[dict[str, str]]:
        return encode_records(value)

    def describe(self) -> str:
        return (
            f'list of at most {MAX_FIELDS} objects `{{"name", "type", "data"}}` '
            "(docs/plan-format.md, plugin layers)"
        )


class ShapeExprs(Attr):
    """Per output, per dimension, an expression (plugins/dims_expr.py)."""

    def __init__(self) -> None:
        super().__init__(())

    def check(self, value: Any) -> tuple[tuple[Any, ...], ...]:
        outputs = _sequence(value, MAX_OUTPUTS, "outputs")
        budget = [MAX_EXPR_NODES]
        return tuple(
            tuple(check_expr(dim, budget) for dim in _sequence(dims, MAX_RANK, "dimensions"))
            for dims in outputs
        )

    def encode(self, value: Any) -> list[list[Any]]:
        return [[encode_expr(dim) for dim in dims] for dims in value]

    def describe(self) -> str:
        return (
            f"per output (at most {MAX_OUTPUTS}), a list of at most {MAX_RANK} dimension "
            "expressions"
        )


class DataTypes(Attr):
    """A tuple of DataTypes, stored as their integer values."""

    enum_type = DataType

    def __init__(self) -> None:
        super().__init__(())

    def check(self, value: Any) -> tuple[DataType, ...]:
        items = _sequence(value, MAX_OUTPUTS, "types")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in items):
            raise TypeError(f"expected DataType values, got {list(items)!r}")
        return tuple(DataType(v) for v in items)

    def encode(self, value: Any) -> list[int]:
        return [int(v) for v in value]

    def describe(self) -> str:
        return f"list of at most {MAX_OUTPUTS} `DataType` values (integers)"


class PluginV3(Op):
    """IPluginV3Layer: outputs computed by a plugin's `enqueue`."""

    name = "plugin_v3"
    layer_type = LayerType.PLUGIN_V3
    num_inputs = (0, 2 * SHAPE_INPUT_BASE)
    num_outputs = -1
    shape_inputs = frozenset(range(SHAPE_INPUT_BASE, 2 * SHAPE_INPUT_BASE))
    foldable = False  # user code runs only in an engine, never at build time
    attrs = {
        "plugin_name": Str(),
        "plugin_version": Str(),
        "plugin_namespace": Str(),
        "fields": PluginFields(),
        "output_shapes": ShapeExprs(),
        "output_dtypes": DataTypes(),
        "workspace": Int(0, low=0),
        "tactic": Int(0),
    }

    checks_structure = True

    def check_structure(self, attrs: dict[str, Any], inputs: list[TensorMeta | None]) -> None:
        """The outputs' shape expressions refer to inputs and dims the layer has, and those
        without references evaluate (no division by zero)."""
        data, shape_inputs = split_inputs(inputs)
        for index, exprs in enumerate(_output_shapes(attrs)):
            for expr in exprs:
                leaves = list(references(expr))
                for leaf in leaves:
                    _check_reference(leaf, data, shape_inputs, index)
                if not leaves:
                    try:
                        evaluate(expr, [], [])
                    except ValueError as error:
                        raise ShapeError(
                            f"output {index} of plugin {plugin_id(attrs)}: {error}"
                        ) from None

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        data, shape_inputs = split_inputs(inputs)
        shapes, dtypes = _output_shapes(attrs), attrs["output_dtypes"]
        values = [
            None if meta.value is None else meta.value.reshape(-1).tolist() for meta in shape_inputs
        ]
        input_shapes = [meta.shape for meta in data]
        outputs = []
        for index, (exprs, dtype) in enumerate(zip(shapes, dtypes, strict=True)):
            for leaf in (leaf for expr in exprs for leaf in references(expr)):
                _check_reference(leaf, data, shape_inputs, index)
            try:
                dims = tuple(evaluate(expr, input_shapes, values) for expr in exprs)
            except ValueError as error:
                raise ShapeError(f"output {index} of plugin {plugin_id(attrs)}: {error}") from None
            if any(d < UNKNOWN for d in dims):
                raise ShapeError(
                    f"output {index} of plugin {plugin_id(attrs)} has a negative dimension "
                    f"{list(dims)} for input shapes {[list(s) for s in input_shapes]}"
                )
            outputs.append(TensorMeta(dtype, dims))
        return outputs

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        binding = attrs.get("binding")
        if binding is None:
            raise RuntimeError(f"plugin {plugin_id(attrs)} has no plugin object to run")
        binding.enqueue([t for t in inputs[:SHAPE_INPUT_BASE] if t is not None], outputs)


class PluginBinding:
    """A runtime-phase plugin attached to an engine: what the op calls to compute."""

    def __init__(self, plugin: Any, runtime: Any, workspace: Any, device: torch.device) -> None:
        self.plugin = plugin
        self.runtime = runtime
        self.workspace = workspace
        """The workspace Allocation (its address is 0 when the plugin asked for none)."""
        self.device = device
        self._shapes: tuple | None = None

    def enqueue(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> None:
        """Call the plugin with pointers (device pointers on GPU, host pointers on CPU)."""
        inputs = [t.contiguous() for t in inputs]
        input_desc = [PluginTensorDesc(tuple(t.shape), DATATYPES[t.dtype]) for t in inputs]
        output_desc = [PluginTensorDesc(tuple(t.shape), DATATYPES[t.dtype]) for t in outputs]
        shapes = (tuple(t.shape for t in inputs), tuple(t.shape for t in outputs))
        if shapes != self._shapes:  # TensorRT calls on_shape_change before the first enqueue too
            self.runtime.on_shape_change(input_desc, output_desc)
            self._shapes = shapes
        stream = 0
        if self.device.type == "cuda":
            stream = torch.cuda.current_stream(self.device).cuda_stream
        self.runtime.enqueue(
            input_desc,
            output_desc,
            [t.data_ptr() for t in inputs],
            [t.data_ptr() for t in outputs],
            self.workspace.address,
            stream,
        )


def describe_outputs(plugin: Any, inputs: list[TensorMeta | None]) -> dict[str, Any]:
    """Ask a build-phase plugin for its output shape expressions and types (TensorRT calls
    get_output_shapes, then get_output_data_types, when it analyses the network)."""
    build = capability(plugin, PluginCapabilityType.BUILD)
    name = _plugin_label(plugin)
    data, shape_inputs = split_inputs(inputs)
    data_exprs = [input_exprs(index, meta.shape) for index, meta in enumerate(data)]
    shape_exprs = []
    for index, meta in enumerate(shape_inputs):
        if meta.rank != 1 or meta.shape[0] == UNKNOWN:
            raise ShapeError(
                f"shape input {index} of plugin {name} must be a 1-D tensor of static length, "
                f"got shape {list(meta.shape)}"
            )
        known = None if meta.value is None else meta.value.reshape(-1).tolist()
        shape_exprs.append(value_exprs(index, meta.shape[0], known))
    try:
        shapes = list(build.get_output_shapes(data_exprs, shape_exprs, IExprBuilder()))
        dtypes = list(build.get_output_data_types([meta.dtype for meta in data]))
    except Exception as error:  # user code: its failure is this layer's error
        raise ShapeError(f"plugin {name} failed to describe its outputs: {error!r}") from None
    expected = int(getattr(build, "num_outputs", len(shapes)))
    if not len(shapes) == len(dtypes) == expected:
        raise ShapeError(
            f"plugin {name} has num_outputs {expected} but described {len(shapes)} output "
            f"shapes and {len(dtypes)} output types"
        )
    trees = []
    for index, dims in enumerate(shapes):
        exprs = [getattr(expr, "_tree", None) for expr in dims]
        if any(tree is None for tree in exprs):
            raise ShapeError(f"output {index} of plugin {name} is not a list of IDimensionExpr")
        if any(isinstance(tree, tuple) and tree[0] == "size" for tree in exprs):
            raise ShapeError(
                f"output {index} of plugin {name} has a data-dependent (size tensor) dimension, "
                "which tensorplan does not support"
            )
        trees.append(tuple(exprs))
    try:
        output_dtypes = tuple(DataType(dtype) for dtype in dtypes)
    except (TypeError, ValueError):
        raise ShapeError(f"plugin {name} returned output types {dtypes!r}") from None
    return {"output_shapes": ShapeExprs().check(trees), "output_dtypes": output_dtypes}


def configure_plugins(graph: Any, shape_sets: list[list[TensorMeta]]) -> None:
    """Configure every plugin of a graph for each profile, as TensorRT's builder does:
    check its formats, call configure_plugin with the profile's min/opt/max shapes, keep the
    largest workspace it asks for and the first tactic it offers (tensorplan does not time
    tactics). `shape_sets` holds each profile's min, opt and max metas, in that order.
    ShapeError naming the layer when the plugin refuses or fails."""
    for node in graph.nodes:
        plugin = node.attrs.get("plugin") if node.op == PluginV3.name else None
        if plugin is None:
            continue
        build = capability(plugin, PluginCapabilityType.BUILD)
        data = [v for v in node.inputs[:SHAPE_INPUT_BASE] if v is not None]
        workspace = 0
        try:
            for start in range(0, len(shape_sets), 3):
                low, opt, high = shape_sets[start : start + 3]
                in_out = [_dynamic_desc(graph, v, low, opt, high) for v in data + node.outputs]
                for position, desc in enumerate(in_out):
                    if not build.supports_format_combination(position, in_out, len(data)):
                        raise ShapeError(
                            f"layer '{node.name}': plugin {plugin_id(node.attrs)} does not support "
                            f"{desc.desc.type.name} in LINEAR format at input/output {position}"
                        )
                ins, outs = in_out[: len(data)], in_out[len(data) :]
                build.configure_plugin(ins, outs)
                workspace = max(workspace, int(build.get_workspace_size(ins, outs)))
            tactics = list(build.get_valid_tactics() or [])
        except ShapeError:
            raise
        except Exception as error:  # user code: its failure is this layer's build error
            raise ShapeError(
                f"layer '{node.name}': plugin {plugin_id(node.attrs)} failed to configure: "
                f"{error!r}"
            ) from None
        node.attrs["workspace"] = workspace
        node.attrs["tactic"] = int(tactics[0]) if tactics else 0


def capability(plugin: Any, kind: PluginCapabilityType) -> Any:
    """The plugin's capability interface of `kind`; ShapeError naming it when it has none."""
    try:
        interface = plugin.get_capability_interface(kind)
    except Exception as error:  # user code
        raise ShapeError(
            f"plugin {_plugin_label(plugin)} has no {kind.name} capability: {error!r}"
        ) from None
    if interface is None:
        raise ShapeError(f"plugin {_plugin_label(plugin)} has no {kind.name} capability")
    return interface


def split_inputs(inputs: list[Any]) -> tuple[list[Any], list[Any]]:
    """The data inputs and the shape inputs of a plugin node (both without the gaps)."""
    data = [x for x in inputs[:SHAPE_INPUT_BASE] if x is not None]
    shape_inputs = [x for x in inputs[SHAPE_INPUT_BASE:] if x is not None]
    return data, shape_inputs


def plugin_id(attrs: dict[str, Any]) -> str:
    """How messages name a plugin: 'name' (version v, namespace 'ns')."""
    return (
        f"'{attrs['plugin_name']}' (version '{attrs['plugin_version']}', "
        f"namespace '{attrs['plugin_namespace']}')"
    )


def _plugin_label(plugin: Any) -> str:
    core = None
    try:
        core = plugin.get_capability_interface(PluginCapabilityType.CORE)
    except Exception:  # only for a message: an unnamed plugin is still named by its class
        core = None
    name = getattr(core, "plugin_name", None)
    return f"'{name}'" if name else type(plugin).__name__


def _dynamic_desc(
    graph: Any, value_id: int, low: list, opt: list, high: list
) -> DynamicPluginTensorDesc:
    value = graph.values[value_id]
    desc = PluginTensorDesc(value.shape, value.dtype, TensorFormat.LINEAR)
    return DynamicPluginTensorDesc(
        desc, low[value_id].shape, opt[value_id].shape, high[value_id].shape
    )


def _check_reference(
    leaf: tuple, data: list[TensorMeta], shape_inputs: list[TensorMeta], output: int
) -> None:
    kind, index, position = leaf[0], leaf[1], leaf[2] if len(leaf) > 2 else 0
    if kind == "dim" and (index >= len(data) or position >= data[index].rank):
        raise ShapeError(
            f"output {output}'s shape uses dimension {position} of input {index}, which the "
            f"layer's {len(data)} inputs do not have"
        )
    if kind == "value" and (
        index >= len(shape_inputs) or UNKNOWN != _length(shape_inputs[index]) <= position
    ):
        raise ShapeError(
            f"output {output}'s shape uses value {position} of shape input {index}, which the "
            f"layer's {len(shape_inputs)} shape inputs do not have"
        )
    if kind == "size":
        raise ShapeError(f"output {output} has a data-dependent (size tensor) dimension")


def _length(meta: TensorMeta) -> int:
    """Elements of a shape input: one for a scalar, the dim for a 1D one (-1 when dynamic)."""
    return meta.shape[0] if meta.rank == 1 else 1


def _output_shapes(attrs: dict[str, Any]) -> tuple:
    """The output shape expressions, one list per output type; ShapeError when they disagree."""
    shapes, dtypes = attrs["output_shapes"], attrs["output_dtypes"]
    if not shapes or len(shapes) != len(dtypes):
        raise ShapeError(
            f"plugin {plugin_id(attrs)} describes {len(shapes)} output shapes and "
            f"{len(dtypes)} output types; it needs one of each per output"
        )
    return shapes


def _sequence(value: Any, limit: int, what: str) -> list:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"expected a sequence of {what}, got {value!r}")
    items = list(value)
    if len(items) > limit:
        raise ValueError(f"at most {limit} {what}, got {len(items)}")
    return items


OPS = [PluginV3()]
