"""What every op is: a shape/type rule, a reference kernel, and a schema for its attributes.

An op is described once, here in ops/, and used by everything: the network API asks it
for output shapes, the builder for shape checks and constant folding, the plan reader to
validate attributes, and the runtime to compute.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ..device import DATATYPES, storage_itemsize, torch_dtype
from ..types import DataType, LayerType

UNKNOWN = -1
"""A dimension not known until run time (TensorRT's -1)."""

MAX_HOST_VALUE_BYTES = 1 << 19
"""Results up to this many bytes are computed on the host during shape inference."""


class ShapeError(ValueError):
    """An op's inputs or attributes do not fit together; the message says how."""


@dataclass(frozen=True)
class TensorMeta:
    """What shape inference knows of a tensor: its type, its shape, maybe its value."""

    dtype: DataType
    shape: tuple[int, ...]
    value: torch.Tensor | None = None
    """The values, as a CPU tensor, when known on the host."""

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return UNKNOWN not in self.shape

    @property
    def nbytes(self) -> int:
        """Bytes of a tensor of this (static) shape and type."""
        return tensor_bytes(self.dtype, self.shape)


def tensor_bytes(dtype: DataType, shape: Sequence[int]) -> int:
    """Bytes of a tensor of `shape` and `dtype` in tensorplan's memory (sub-byte types take a
    byte per element)."""
    count = 1
    for d in shape:
        count *= d
    return count * storage_itemsize(dtype)


class Attr:
    """One attribute of an op: its default and how it is checked and stored in a plan."""

    def __init__(self, default: Any = None) -> None:
        self.default = default

    def check(self, value: Any) -> Any:
        """The value in its canonical Python form; ValueError/TypeError when it is not valid."""
        return value

    def encode(self, value: Any) -> Any:
        """The value as plain JSON data."""
        return value

    def describe(self) -> str:
        """The values taken, as they appear in a plan's JSON, in a few words (docs/ops.md)."""
        raise NotImplementedError


class Int(Attr):
    def __init__(self, default: int | None = 0, low: int | None = None) -> None:
        super().__init__(default)
        self.low = low

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"expected an integer, got {value!r}")
        if self.low is not None and value < self.low:
            raise ValueError(f"must be at least {self.low}, got {value}")
        return int(value)

    def describe(self) -> str:
        return "integer" if self.low is None else f"integer >= {self.low}"


class Float(Attr):
    def __init__(self, default: float = 0.0) -> None:
        super().__init__(default)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)

    def describe(self) -> str:
        return "number"


class Bool(Attr):
    def __init__(self, default: bool = False) -> None:
        super().__init__(default)

    def check(self, value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"expected a boolean, got {value!r}")
        return bool(value)

    def describe(self) -> str:
        return "true or false"


class Str(Attr):
    def __init__(self, default: str = "") -> None:
        super().__init__(default)

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value

    def describe(self) -> str:
        return "string"


class Enum(Attr):
    def __init__(self, enum_type: type[enum.IntEnum], default: Any = None) -> None:
        super().__init__(default)
        self.enum_type = enum_type

    def check(self, value: Any) -> enum.IntEnum:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"expected a {self.enum_type.__name__}, got {value!r}")
        return self.enum_type(int(value))

    def encode(self, value: Any) -> int:
        return int(value)

    def describe(self) -> str:
        return f"`{self.enum_type.__name__}` value (integer)"


class Ints(Attr):
    """A sequence of integers (dims, axes, permutations), stored as a tuple."""

    def __init__(self, default: tuple[int, ...] | None = (), max_len: int = 8) -> None:
        super().__init__(default)
        self.max_len = max_len

    def check(self, value: Any) -> tuple[int, ...] | None:
        if value is None and self.default is None:
            return None
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(f"expected a sequence of integers, got {value!r}")
        items = list(value)
        if len(items) > self.max_len:
            raise ValueError(f"at most {self.max_len} values, got {len(items)}")
        return tuple(Int(low=None).check(v) for v in items)

    def encode(self, value: Any) -> list[int] | None:
        return None if value is None else list(value)

    def describe(self) -> str:
        return f"list of at most {self.max_len} integers"


class Floats(Attr):
    def __init__(self, default: tuple[float, ...] = (), max_len: int = 8) -> None:
        super().__init__(default)
        self.max_len = max_len

    def check(self, value: Any) -> tuple[float, ...]:
        items = list(value)
        if len(items) > self.max_len:
            raise ValueError(f"at most {self.max_len} values, got {len(items)}")
        return tuple(Float().check(v) for v in items)

    def encode(self, value: Any) -> list[float]:
        return list(value)

    def describe(self) -> str:
        return f"list of at most {self.max_len} numbers"


class Op:
    """An operation of the IR. Subclasses set the class attributes and implement the two methods."""

    name: ClassVar[str]
    layer_type: ClassVar[LayerType]
    num_inputs: ClassVar[tuple[int, int]] = (1, 1)
    """Fewest and most inputs; optional inputs past the first may be None."""
    num_outputs: ClassVar[int] = 1
    shape_inputs: ClassVar[frozenset[int]] = frozenset()
    """Inputs whose values the op needs on the host (TensorRT's shape tensors)."""
    attrs: ClassVar[dict[str, Attr]] = {}
    foldable: ClassVar[bool] = True
    """Whether the builder may compute the op at build time when its inputs are constants."""
    data_dependent: ClassVar[bool] = False
    """Whether output shapes depend on input values (non-zero, NMS): `infer` gives UNKNOWN
    dims for them even for static inputs, and `run_dynamic` computes the outputs."""
    checks_structure: ClassVar[bool] = False
    """Whether `check_structure` checks anything (the plan reader calls it only then)."""
    reduced_precision: ClassVar[bool] = False
    """Whether the op has HALF and BF16 kernels: BuilderFlag.FP16 and BF16 move it to the
    reduced type (builder/precision.py); otherwise it keeps its declared types."""
    any_input_type: ClassVar[bool] = False
    """Whether the op takes its inputs in any type (cast, shape): precision assignment
    converts none of them."""
    reads_channels_last: ClassVar[bool] = False
    """Whether its kernels read inputs of any strides, so a channels-last (NHWC) activation
    may feed it without a layout conversion (builder/memory_plan.py)."""
    reads_strided_views: ClassVar[bool] = False
    """Whether its kernels read transposed (strided) views: a transposing shuffle then feeds
    it as a view, with no copy (plan/views.py, checked by the plan reader too)."""
    adjacent_outputs: ClassVar[bool] = False
    """Whether its kernel is fastest with its outputs back to back in the arena (it writes
    them in one batched call)."""
    tactic: ClassVar[tuple[str, type[enum.IntEnum]] | None] = None
    """The attribute that names the op's implementation and the enum of its choices, when it
    has several: the builder times each and stores the fastest (builder/timing.py)."""

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        """Output types and shapes (UNKNOWN where not yet known); ShapeError when invalid."""
        raise NotImplementedError

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict[str, Any]
    ) -> None:
        """Compute into `outputs`, which already have the inferred shapes and types."""
        raise NotImplementedError

    def run_dynamic(
        self, inputs: list[torch.Tensor | None], attrs: dict[str, Any]
    ) -> list[torch.Tensor]:
        """Data-dependent ops: compute and return the outputs, whose shapes only now are known."""
        raise NotImplementedError

    def run_tactic(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict[str, Any]
    ) -> None:
        """Ops with a `tactic`: `run` with exactly the tactic `attrs` name, raising
        RuntimeError when it cannot run these inputs (where `run` would choose another)."""
        raise NotImplementedError

    def check_structure(self, attrs: dict[str, Any], inputs: list[TensorMeta | None]) -> None:
        """What of a node's checked attributes can be checked against its inputs' declared
        types and shapes (-1 where dynamic) without shape inference; ShapeError when wrong.
        The plan reader runs it at load, where it runs no `infer`."""

    def summary(self, attrs: dict[str, Any]) -> str:
        """What a node of this op computes beyond its name, in a few words, for `tensorplan
        inspect` (a fused node lists what it fused); empty when the name says it all."""
        return ""

    def check_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Every attribute of the schema, checked and canonical; unknown names are an error."""
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise ValueError(f"unknown attributes {sorted(unknown)} for op '{self.name}'")
        checked = {}
        for key, spec in self.attrs.items():
            value = attrs.get(key, spec.default)
            if value is None:
                if spec.default is not None:  # only an optional attribute may be null
                    raise ValueError(f"attribute '{key}' of op '{self.name}' must not be null")
                checked[key] = None
                continue
            try:
                checked[key] = spec.check(value)
            except (TypeError, ValueError) as error:
                raise ValueError(f"attribute '{key}' of op '{self.name}': {error}") from None
        return checked

    def encode_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The attributes as plain JSON data, for the plan; an attribute a node does not set
        gets its default (null only for optional ones)."""
        encoded = {}
        for key, spec in self.attrs.items():
            value = attrs.get(key, spec.default)
            encoded[key] = None if value is None else spec.encode(value)
        return encoded


def infer_node(
    op: Op, inputs: Sequence[TensorMeta | None], attrs: dict[str, Any], values_known: bool = True
) -> list[TensorMeta]:
    """Output metas of one node, with host values wherever the inputs allow computing them.

    `values_known` says that every shape-tensor input of the graph has its values (true in
    the builder and the runtime; a network has none until a profile gives them), so a shape
    input without a value is an error.
    Raises ShapeError for invalid inputs, naming what is wrong (not which layer: the caller
    knows that).
    """
    low, high = op.num_inputs
    if not low <= len(inputs) <= high:
        raise ShapeError(f"expects {_count(low, high)} inputs, got {len(inputs)}")
    for index in range(low):
        if inputs[index] is None:
            raise ShapeError(f"input {index} is missing")
    present = [meta for meta in inputs if meta is not None]
    if values_known and op.shape_inputs and all(meta.is_static for meta in present):
        for index in op.shape_inputs:
            if index < len(inputs) and inputs[index] is not None and inputs[index].value is None:
                raise ShapeError(
                    f"input {index} is a shape tensor: its values must be computable from "
                    "input shapes, constants and shape-tensor inputs"
                )
    outputs = op.infer(list(inputs), attrs)
    if len(outputs) != op.num_outputs and op.num_outputs >= 0:
        raise ShapeError(f"produced {len(outputs)} outputs, expected {op.num_outputs}")
    if not op.foldable or all(o.value is not None for o in outputs):
        return outputs
    for meta in present:
        if meta.value is None:
            return outputs
    if op.data_dependent:
        small = all(meta.nbytes <= MAX_HOST_VALUE_BYTES for meta in present)
        return evaluate_dynamic(op, inputs, attrs, outputs) if small else outputs
    if all(o.is_static and o.nbytes <= MAX_HOST_VALUE_BYTES for o in outputs):
        return evaluate(op, inputs, attrs, outputs)
    return outputs


def evaluate(
    op: Op,
    inputs: Sequence[TensorMeta | None],
    attrs: dict[str, Any],
    outputs: Sequence[TensorMeta],
) -> list[TensorMeta]:
    """Compute a node on the host from its inputs' values (constant folding, shape tensors)."""
    host_inputs = [None if meta is None else meta.value for meta in inputs]
    host_outputs = [torch.empty(meta.shape, dtype=torch_dtype(meta.dtype)) for meta in outputs]
    with torch.no_grad():
        op.run(host_inputs, host_outputs, attrs)
    return [
        TensorMeta(meta.dtype, meta.shape, tensor)
        for meta, tensor in zip(outputs, host_outputs, strict=True)
    ]


def evaluate_dynamic(
    op: Op,
    inputs: Sequence[TensorMeta | None],
    attrs: dict[str, Any],
    outputs: Sequence[TensorMeta],
) -> list[TensorMeta]:
    """Compute a data-dependent node on the host; its outputs' shapes come from the values."""
    host_inputs = [None if meta is None else meta.value for meta in inputs]
    with torch.no_grad():
        results = op.run_dynamic(host_inputs, attrs)
    return [
        TensorMeta(meta.dtype, tuple(tensor.shape), tensor)
        for meta, tensor in zip(outputs, results, strict=True)
    ]


def meta_of(value: torch.Tensor) -> TensorMeta:
    """The meta of a known value (a CPU tensor)."""
    return TensorMeta(DATATYPES[value.dtype], tuple(value.shape), value)


def _count(low: int, high: int) -> str:
    return str(low) if low == high else f"{low} to {high}"
