"""The quick plugin API, modelled on `tensorrt.plugin` (TensorRT's "quickly deployable plugins").

    import tensorplan.plugin as tpp

    @tpp.register("demo::scaled_add")
    def scaled_add_desc(x: tpp.TensorDesc, y: tpp.TensorDesc, scale: float) -> tpp.TensorDesc:
        return x.like()

    @tpp.impl("demo::scaled_add")
    def scaled_add_impl(x, y, scale: float, outputs, stream) -> None:
        outputs[0].copy_(x + scale * y)        # x, y, outputs: torch tensors

    layer = network.add_plugin_v3(*tpp.op.demo.scaled_add(x, y, scale=2.0))

`register` makes a creator (namespace and name from the id, version "1") and registers it
in the process-wide registry; the implementation receives torch tensors (on the engine's
device) for its inputs and outputs, the attributes it names, and the stream.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from ..device import execution_device, tensor_at, torch_dtype
from ..types import DataType, DimensionOperation, PluginFieldType, TensorRTPhase
from .dims_expr import DimsExprs, IDimensionExpr, IExprBuilder
from .interfaces import (
    IPluginCreatorV3One,
    IPluginV3,
    IPluginV3OneBuild,
    IPluginV3OneCore,
    IPluginV3OneRuntime,
    PluginField,
    PluginFieldCollection,
)
from .registry import get_plugin_registry

VERSION = "1"
ATTRIBUTE_TYPES = (int, float, bool, str, bytes)
NUMPY_FIELD_TYPES = {
    np.dtype(np.int8): PluginFieldType.INT8,
    np.dtype(np.int16): PluginFieldType.INT16,
    np.dtype(np.int32): PluginFieldType.INT32,
    np.dtype(np.int64): PluginFieldType.INT64,
    np.dtype(np.float16): PluginFieldType.FLOAT16,
    np.dtype(np.float32): PluginFieldType.FLOAT32,
    np.dtype(np.float64): PluginFieldType.FLOAT64,
    np.dtype(np.bool_): PluginFieldType.INT8,
}
TYPE_NAMES = {
    "FP32": DataType.FLOAT, "FP16": DataType.HALF, "BF16": DataType.BF16, "FP8": DataType.FP8,
    "INT8": DataType.INT8, "INT32": DataType.INT32, "INT64": DataType.INT64,
    "BOOL": DataType.BOOL, "UINT8": DataType.UINT8,
}  # fmt: skip
_BUILDER = IExprBuilder()
_PLUGINS: dict[str, _QuickPluginDef] = {}


# -- shape expressions -------------------------------------------------------------------------


class ShapeExpr:
    """A dimension expression with arithmetic: `x.shape_expr[0] * 2 + y.shape_expr[0]`."""

    def __init__(self, expr: IDimensionExpr | int) -> None:
        self._expr = expr if isinstance(expr, IDimensionExpr) else _BUILDER.constant(expr)

    @property
    def is_constant(self) -> bool:
        return self._expr.is_constant()

    @property
    def constant_value(self) -> int:
        if not self.is_constant:
            raise ValueError("the expression is not a constant (it depends on a run-time shape)")
        return self._expr.get_constant_value()

    def _op(self, op: DimensionOperation, other: Any, swap: bool = False) -> ShapeExpr:
        other = other if isinstance(other, ShapeExpr) else ShapeExpr(int(other))
        a, b = (other, self) if swap else (self, other)
        return ShapeExpr(_BUILDER.operation(op, a._expr, b._expr))

    def __add__(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.SUM, other)

    def __radd__(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.SUM, other, swap=True)

    def __sub__(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.SUB, other)

    def __rsub__(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.SUB, other, swap=True)

    def __mul__(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.PROD, other)

    def __rmul__(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.PROD, other, swap=True)

    def __floordiv__(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.FLOOR_DIV, other)

    def __rfloordiv__(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.FLOOR_DIV, other, swap=True)

    def max(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.MAX, other)

    def min(self, other: Any) -> ShapeExpr:
        return self._op(DimensionOperation.MIN, other)

    def __repr__(self) -> str:
        return f"ShapeExpr({self._expr._tree!r})"


class ShapeExprs:
    """A shape as ShapeExprs; items may be set to ShapeExprs or integers."""

    def __init__(self, exprs: Iterable[ShapeExpr | int]) -> None:
        self._exprs = [e if isinstance(e, ShapeExpr) else ShapeExpr(int(e)) for e in exprs]

    def __len__(self) -> int:
        return len(self._exprs)

    def __getitem__(self, index: int) -> ShapeExpr:
        return self._exprs[index]

    def __setitem__(self, index: int, value: ShapeExpr | int) -> None:
        self._exprs[index] = value if isinstance(value, ShapeExpr) else ShapeExpr(int(value))

    def __iter__(self):
        return iter(self._exprs)

    def numel(self) -> ShapeExpr:
        total = ShapeExpr(1)
        for expr in self._exprs:
            total = total * expr
        return total

    def __repr__(self) -> str:
        return f"ShapeExprs({self._exprs})"


class TensorDesc:
    """What the shape function sees of a tensor: its type and shape expressions."""

    def __init__(self, shape_expr: ShapeExprs | Iterable, dtype: DataType) -> None:
        self.shape_expr = (
            shape_expr if isinstance(shape_expr, ShapeExprs) else ShapeExprs(shape_expr)
        )
        self.dtype = DataType(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape_expr)

    def like(self) -> TensorDesc:
        """A descriptor of the same type and shape (to describe an output)."""
        return TensorDesc(ShapeExprs(list(self.shape_expr)), self.dtype)

    def __repr__(self) -> str:
        return f"TensorDesc({self.shape_expr!r}, {self.dtype.name})"


def from_shape_expr(shape_expr: ShapeExprs | Iterable, dtype: DataType) -> TensorDesc:
    """A descriptor of an output with this shape and type."""
    return TensorDesc(shape_expr, dtype)


class AutoTuneCombination:
    """Types (and tactics) a plugin supports: `io_types` has one entry per input then output,
    comma-separated; `|` separates alternatives, and the k-th alternatives go together (an
    entry with one type goes with all). Only the LINEAR layout exists in tensorplan."""

    def __init__(
        self, io_types: str | None = None, layouts: str | None = None, tactics: Any = None
    ) -> None:
        if layouts is not None and set(layouts.replace("|", ",").replace(" ", "").split(",")) - {
            "LINEAR"
        }:
            raise ValueError(f"tensorplan supports only the LINEAR layout, got {layouts!r}")
        self.io_types = None
        if io_types is not None:
            self.io_types = [
                [_type_named(name.strip()) for name in entry.split("|")]
                for entry in io_types.split(",")
            ]
        self.tactics = [int(t) for t in tactics or []]

    def allows(self, types: list[DataType]) -> bool:
        """Whether some alternative of this combination has these first types."""
        if self.io_types is None:
            return True
        width = max(len(entry) for entry in self.io_types)
        return any(
            all(
                position < len(self.io_types)
                and self.io_types[position][k if len(self.io_types[position]) > 1 else 0] == dtype
                for position, dtype in enumerate(types)
            )
            for k in range(width)
        )


# -- decorators ----------------------------------------------------------------------------------


def register(plugin_id: str, lazy_register: bool = False) -> Callable[[Callable], Callable]:
    """Register a plugin from its shape function: `(inputs: TensorDesc..., attributes...) ->
    TensorDesc | tuple[TensorDesc, ...]`. Attributes are int, float, bool, str, bytes or
    1-D numpy arrays annotated `numpy.typing.NDArray[dtype]`."""

    def decorate(function: Callable) -> Callable:
        definition = _QuickPluginDef(plugin_id, function)
        if plugin_id in _PLUGINS:
            raise ValueError(f"plugin '{plugin_id}' is already registered")
        _PLUGINS[plugin_id] = definition
        if not lazy_register:
            definition.ensure_registered()
        return function

    return decorate


def impl(plugin_id: str) -> Callable[[Callable], Callable]:
    """The implementation of a registered plugin: `(inputs: torch.Tensor..., attributes...,
    outputs: tuple[torch.Tensor], stream: int, [tactic: int]) -> None`."""

    def decorate(function: Callable) -> Callable:
        definition = _definition(plugin_id)
        parameters = list(inspect.signature(function).parameters)
        unknown = set(parameters[definition.num_inputs :]) - set(definition.attributes) - {
            "outputs", "stream", "tactic"
        }  # fmt: skip
        if unknown or "outputs" not in parameters or "stream" not in parameters:
            raise ValueError(
                f"impl of '{plugin_id}' must take its {definition.num_inputs} inputs, any of "
                f"the attributes {sorted(definition.attributes)}, outputs and stream "
                f"(unknown: {sorted(unknown)})"
            )
        definition.impl = function
        definition.impl_attributes = [p for p in parameters if p in definition.attributes]
        definition.impl_takes_tactic = "tactic" in parameters
        return function

    return decorate


def autotune(plugin_id: str) -> Callable[[Callable], Callable]:
    """Types and tactics a plugin supports: `(inputs: TensorDesc..., attributes...,
    outputs: tuple[TensorDesc]) -> list[AutoTuneCombination]`. tensorplan uses the first
    tactic offered (it does not time tactics)."""

    def decorate(function: Callable) -> Callable:
        _definition(plugin_id).autotune = function
        return function

    return decorate


class _Namespace:
    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if not self._prefix:
            return _Namespace(name)
        return _definition(f"{self._prefix}::{name}").make_layer_arguments


op = _Namespace()
"""`op.<namespace>.<name>(*inputs, **attributes)`: the (inputs, shape_inputs, plugin) of a
plugin layer, to pass to `network.add_plugin_v3(*...)`."""


def find_plugin_creator(op_type: str, domain: str = "", version: str = VERSION) -> Any:
    """The creator for an ONNX node of `op_type` in `domain`: a quick-API plugin registered
    as "domain::op_type" (registering it now if it was lazy), else any creator of that name,
    version and namespace in the process-wide registry; None when there is none."""
    definition = _PLUGINS.get(f"{domain}::{op_type}")
    if definition is not None:
        definition.ensure_registered()
    return get_plugin_registry().get_creator(op_type, version, domain)


def add_onnx_plugin(
    network: Any, op_type: str, domain: str, inputs: list, attributes: dict[str, Any], name: str
) -> Any:
    """A plugin layer for an ONNX node that has no importer, as TensorRT's ONNX parser makes
    one: the creator from `find_plugin_creator`, fields from the node's attributes (ints as
    INT32, floats as FLOAT32, strings as CHAR, lists as arrays), `create_plugin(name, fields,
    TensorRTPhase.BUILD)` and `network.add_plugin_v3(inputs, [], plugin)`. None when no creator
    exists; ValueError when the creator refuses the attributes."""
    creator = find_plugin_creator(op_type, domain)
    if creator is None:
        return None
    fields = PluginFieldCollection(_onnx_field(key, value) for key, value in attributes.items())
    plugin = creator.create_plugin(name or op_type, fields, TensorRTPhase.BUILD)
    if plugin is None:
        raise ValueError(f"the creator of plugin '{domain}::{op_type}' returned no plugin")
    return network.add_plugin_v3(list(inputs), [], plugin)


# -- internals -------------------------------------------------------------------------------------


class _QuickPluginDef:
    """What the decorators learned about one plugin."""

    def __init__(self, plugin_id: str, describe: Callable) -> None:
        namespace, separator, name = plugin_id.rpartition("::")
        if not separator or not namespace or not name:
            raise ValueError(f"a plugin id is 'namespace::name', got {plugin_id!r}")
        self.id, self.namespace, self.name = plugin_id, namespace, name
        self.describe = describe
        hints = typing.get_type_hints(describe)
        parameters = list(inspect.signature(describe).parameters)
        self.num_inputs = 0
        while (
            self.num_inputs < len(parameters)
            and hints.get(parameters[self.num_inputs]) is TensorDesc
        ):
            self.num_inputs += 1
        self.attributes = {
            p: _attribute_type(plugin_id, p, hints.get(p)) for p in parameters[self.num_inputs :]
        }
        self.num_outputs = _output_count(plugin_id, hints.get("return"))
        self.impl: Callable | None = None
        self.impl_attributes: list[str] = []
        self.impl_takes_tactic = False
        self.autotune: Callable | None = None
        self.creator = _QuickPluginCreator(self)
        self._registered = False

    def ensure_registered(self) -> None:
        if not self._registered:
            self._registered = get_plugin_registry().register_creator(self.creator, self.namespace)
            if not self._registered:
                raise ValueError(f"plugin '{self.id}' could not be registered")

    def make_layer_arguments(self, *inputs: Any, **attributes: Any) -> tuple[list, list, Any]:
        self.ensure_registered()
        if len(inputs) != self.num_inputs:
            raise TypeError(f"plugin '{self.id}' takes {self.num_inputs} inputs, got {len(inputs)}")
        missing = set(self.attributes) - set(attributes)
        unknown = set(attributes) - set(self.attributes)
        if missing or unknown:
            raise TypeError(
                f"plugin '{self.id}' takes the attributes {sorted(self.attributes)}; missing "
                f"{sorted(missing)}, unknown {sorted(unknown)}"
            )
        values = {key: self.attributes[key](attributes[key]) for key in self.attributes}
        return list(inputs), [], _QuickPlugin(self, values)


class _QuickPluginCreator(IPluginCreatorV3One):
    def __init__(self, definition: _QuickPluginDef) -> None:
        self.name = definition.name
        self.plugin_version = VERSION
        self.plugin_namespace = definition.namespace
        IPluginCreatorV3One.__init__(self)
        self.definition = definition
        self.field_names = PluginFieldCollection(PluginField(key) for key in definition.attributes)

    def create_plugin(self, name: str, field_collection: Any, phase: TensorRTPhase) -> IPluginV3:
        definition = self.definition
        values = {}
        for field in field_collection or []:
            convert = definition.attributes.get(field.name)
            if convert is None:
                raise ValueError(f"plugin '{definition.id}' has no attribute '{field.name}'")
            values[field.name] = convert(_field_value(field))
        if TensorRTPhase(phase) == TensorRTPhase.BUILD:
            missing = set(definition.attributes) - set(values)
            if missing:
                raise ValueError(f"plugin '{definition.id}' needs the attributes {sorted(missing)}")
        return _QuickPlugin(definition, values)


class _QuickPlugin(IPluginV3, IPluginV3OneCore, IPluginV3OneBuild, IPluginV3OneRuntime):
    """The IPluginV3 behind a quick-API plugin."""

    def __init__(self, definition: _QuickPluginDef, values: dict[str, Any]) -> None:
        self.plugin_name = definition.name
        self.plugin_version = VERSION
        self.plugin_namespace = definition.namespace
        self.num_outputs = definition.num_outputs
        IPluginV3OneCore.__init__(self)
        IPluginV3OneBuild.__init__(self)
        self.definition = definition
        self.values = values
        self.tactic = 0
        self._input_exprs: list | None = None

    def get_capability_interface(self, type: Any) -> Any:
        return self

    def clone(self) -> _QuickPlugin:
        copy = _QuickPlugin(self.definition, dict(self.values))
        copy.tactic = self.tactic
        return copy

    def get_output_shapes(self, inputs: list, shape_inputs: list, expr_builder: Any) -> list:
        self._input_exprs = list(inputs)
        outputs = self._describe([DataType.FLOAT] * len(inputs))
        return [DimsExprs(expr._expr for expr in desc.shape_expr) for desc in outputs]

    def get_output_data_types(self, input_types: list[DataType]) -> list[DataType]:
        return [desc.dtype for desc in self._describe(list(input_types))]

    def supports_format_combination(self, pos: int, in_out: list, num_inputs: int) -> bool:
        if self.definition.autotune is None:
            return True
        types = [desc.desc.type for desc in in_out[: pos + 1]]
        return any(c.allows(types) for c in self._combinations(in_out, num_inputs))

    def get_valid_tactics(self) -> list[int]:
        if self.definition.autotune is None or self._input_exprs is None:
            return []
        return [t for c in self._combinations(None, 0) for t in c.tactics]

    def set_tactic(self, tactic: int) -> None:
        self.tactic = int(tactic)

    def get_fields_to_serialize(self) -> PluginFieldCollection:
        """The attributes the implementation takes (all of them before it is defined), as
        TensorRT serializes quick plugins."""
        names = self.definition.impl_attributes if self.definition.impl else list(self.values)
        return PluginFieldCollection(_attribute_field(key, self.values[key]) for key in names)

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream) -> None:
        definition = self.definition
        if definition.impl is None:
            raise RuntimeError(f"plugin '{definition.id}' has no implementation (tpp.impl)")
        device = execution_device()
        tensors = [_tensor(p, d, device) for p, d in zip(inputs, input_desc, strict=True)]
        results = tuple(_tensor(p, d, device) for p, d in zip(outputs, output_desc, strict=True))
        keywords = {key: self.values[key] for key in definition.impl_attributes}
        if definition.impl_takes_tactic:
            keywords["tactic"] = self.tactic
        definition.impl(*tensors, **keywords, outputs=results, stream=stream)

    def _describe(self, types: list[DataType]) -> list[TensorDesc]:
        exprs = self._input_exprs or [DimsExprs() for _ in types]
        descs = [
            TensorDesc(ShapeExprs(ShapeExpr(e) for e in dims), dtype)
            for dims, dtype in zip(exprs, types, strict=True)
        ]
        result = self.definition.describe(*descs, **self.values)
        outputs = list(result) if isinstance(result, (tuple, list)) else [result]
        if not all(isinstance(desc, TensorDesc) for desc in outputs):
            raise TypeError(f"the shape function of '{self.definition.id}' must return TensorDescs")
        return outputs

    def _combinations(self, in_out: list | None, num_inputs: int) -> list[AutoTuneCombination]:
        exprs = self._input_exprs or []
        types = (
            [d.desc.type for d in in_out[:num_inputs]] if in_out else [DataType.FLOAT] * len(exprs)
        )
        descs = [
            TensorDesc(ShapeExprs(ShapeExpr(e) for e in dims), dtype)
            for dims, dtype in zip(exprs, types, strict=False)
        ]
        outputs = tuple(self._describe(types))
        return list(self.definition.autotune(*descs, **self.values, outputs=outputs))


def _definition(plugin_id: str) -> _QuickPluginDef:
    definition = _PLUGINS.get(plugin_id)
    if definition is None:
        raise ValueError(f"plugin '{plugin_id}' is not registered; use tensorplan.plugin.register")
    return definition


def _attribute_type(plugin_id: str, name: str, hint: Any) -> Callable[[Any], Any]:
    """A converter to the attribute's declared type; TypeError for unsupported types."""
    if hint in ATTRIBUTE_TYPES:
        if hint is str:
            return lambda v: v.decode() if isinstance(v, bytes) else str(v)
        return lambda v: hint(v.item() if isinstance(v, np.generic) else v)
    if typing.get_origin(hint) in (np.ndarray, npt.NDArray):
        # NDArray[x] is ndarray[shape, dtype[x]], or (newer numpy) an alias taking x itself
        last = typing.get_args(hint)[-1]
        scalar = typing.get_args(last)[0] if typing.get_origin(last) is np.dtype else last
        dtype = np.dtype(scalar)
        if dtype in NUMPY_FIELD_TYPES:
            return lambda v: np.ascontiguousarray(v, dtype=dtype).reshape(-1)
    raise TypeError(
        f"attribute '{name}' of plugin '{plugin_id}' has type {hint!r}; attributes are int, "
        "float, bool, str, bytes or numpy.typing.NDArray[dtype]"
    )


def _output_count(plugin_id: str, hint: Any) -> int:
    if hint is TensorDesc:
        return 1
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and arguments and all(a is TensorDesc for a in arguments):
        return len(arguments)
    raise TypeError(
        f"the shape function of '{plugin_id}' must be annotated to return TensorDesc or "
        "tuple[TensorDesc, ...] with one TensorDesc per output"
    )


def _attribute_field(name: str, value: Any) -> PluginField:
    """An attribute as a field: int INT64, float FLOAT64, bool INT8, str CHAR, bytes UNKNOWN."""
    if isinstance(value, np.ndarray):
        return PluginField(name, value, NUMPY_FIELD_TYPES[value.dtype])
    if isinstance(value, bool):
        return PluginField(name, np.array([value], np.int8), PluginFieldType.INT8)
    if isinstance(value, int):
        return PluginField(name, np.array([value], np.int64), PluginFieldType.INT64)
    if isinstance(value, float):
        return PluginField(name, np.array([value], np.float64), PluginFieldType.FLOAT64)
    if isinstance(value, str):
        return PluginField(name, value.encode(), PluginFieldType.CHAR)
    return PluginField(name, bytes(value), PluginFieldType.UNKNOWN)


def _onnx_field(name: str, value: Any) -> PluginField:
    """An ONNX attribute as TensorRT's ONNX parser passes it to a plugin creator."""
    if isinstance(value, (bytes, str)):
        data = value.encode() if isinstance(value, str) else value
        return PluginField(name, data, PluginFieldType.CHAR)
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return PluginField(name, array.astype(np.float32), PluginFieldType.FLOAT32)
    if array.dtype.kind in "iub":
        return PluginField(name, array.astype(np.int32), PluginFieldType.INT32)
    raise ValueError(f"attribute '{name}' of type {type(value).__name__} cannot be a plugin field")


def _field_value(field: Any) -> Any:
    """A field's data as the attribute value it encodes (scalars unwrapped)."""
    if field.type in (PluginFieldType.CHAR, PluginFieldType.UNKNOWN):
        return np.asarray(field.data).tobytes()
    data = np.asarray(field.data)
    return data.reshape(-1)[0] if data.size == 1 else data


def _tensor(pointer: int, desc: Any, device: Any) -> Any:
    return tensor_at(pointer, tuple(desc.dims), torch_dtype(desc.type), device)


def _type_named(name: str) -> DataType:
    if name not in TYPE_NAMES:
        raise ValueError(f"unknown type {name!r}; one of {sorted(TYPE_NAMES)}")
    return TYPE_NAMES[name]
