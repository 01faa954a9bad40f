"""Dimension expressions for plugins' shape functions: IDimensionExpr, IExprBuilder, DimsExprs.

As in TensorRT, a plugin's `get_output_shapes` runs once, when the network is analysed, and
returns *expressions*: a constant, a dimension of an input, a value of a shape input, or an
operation on two expressions. The plan stores them (as plain JSON data, see `check_expr`)
and the runtime evaluates them for each input shape, without calling the plugin again.

An expression is a tree of plain data:
- `int`: a constant;
- `("dim", input, axis)`: a dimension of data input `input`;
- `("value", shape_input, index)`: an element of shape input `shape_input`;
- `("op", DimensionOperation, a, b)`: an operation on two expressions;
- `("size", output)`: a size tensor (a data-dependent dimension; tensorplan refuses these).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..types import DimensionOperation

Expr = int | tuple

UNKNOWN = -1
MAX_EXPR_NODES = 4096
"""Nodes all the expressions of one plugin layer may have together (a plan limit)."""
MAX_EXPR_DEPTH = 64
INT64_RANGE = (-(1 << 63), 1 << 63)


class IDimensionExpr:
    """An integer expression of dimensions; constant when its value is known at build time."""

    def __init__(self, tree: Expr) -> None:
        self._tree = tree

    def is_constant(self) -> bool:
        return isinstance(self._tree, int)

    def get_constant_value(self) -> int:
        """The value; -1 (TensorRT's answer) when the expression is not constant."""
        return self._tree if isinstance(self._tree, int) else UNKNOWN

    def is_size_tensor(self) -> bool:
        return isinstance(self._tree, tuple) and self._tree[0] == "size"

    def __repr__(self) -> str:
        return f"IDimensionExpr({self._tree!r})"


class IExprBuilder:
    """Makes dimension expressions inside `IPluginV3OneBuild.get_output_shapes`."""

    def constant(self, value: int) -> IDimensionExpr:
        return IDimensionExpr(int(value))

    def operation(
        self, op: DimensionOperation, first: IDimensionExpr, second: IDimensionExpr
    ) -> IDimensionExpr:
        op = DimensionOperation(op)
        a, b = first._tree, second._tree
        if isinstance(a, int) and isinstance(b, int):
            value = apply_operation(op, a, b)
            if value is not None:
                return IDimensionExpr(value)
        return IDimensionExpr(("op", op, a, b))

    def declare_size_tensor(
        self, output_index: int, opt_value: IDimensionExpr, upper_bound: IDimensionExpr
    ) -> IDimensionExpr:
        """A dimension given by the value of a size-tensor output, known only at run time."""
        return IDimensionExpr(("size", int(output_index)))


class DimsExprs:
    """A shape as dimension expressions; behaves like a list of IDimensionExpr."""

    def __init__(self, dims: Iterable[IDimensionExpr] | int = ()) -> None:
        if isinstance(dims, int):
            self._dims = [IDimensionExpr(0) for _ in range(dims)]
        else:
            self._dims = list(dims)

    def __len__(self) -> int:
        return len(self._dims)

    def __getitem__(self, index: int) -> IDimensionExpr:
        return self._dims[index]

    def __setitem__(self, index: int, expr: IDimensionExpr) -> None:
        if not isinstance(expr, IDimensionExpr):
            raise TypeError(f"a DimsExprs holds IDimensionExpr, got {type(expr).__name__}")
        self._dims[index] = expr

    def __iter__(self) -> Iterator[IDimensionExpr]:
        return iter(self._dims)

    def __repr__(self) -> str:
        return f"DimsExprs({self._dims})"


def input_exprs(index: int, shape: Sequence[int]) -> DimsExprs:
    """The expressions of data input `index`: constants for static dims, symbols for -1."""
    return DimsExprs(
        IDimensionExpr(int(d) if d >= 0 else ("dim", index, axis)) for axis, d in enumerate(shape)
    )


def value_exprs(index: int, count: int, values: Sequence[int] | None) -> DimsExprs:
    """The expressions of shape input `index`'s values: constants when known, else symbols."""
    if values is not None:
        return DimsExprs(IDimensionExpr(int(v)) for v in values)
    return DimsExprs(IDimensionExpr(("value", index, k)) for k in range(count))


def apply_operation(op: DimensionOperation, a: int, b: int) -> int | None:
    """`a op b`; None where it is undefined (division by zero)."""
    if op in (DimensionOperation.FLOOR_DIV, DimensionOperation.CEIL_DIV) and b == 0:
        return None
    return _OPERATIONS[op](a, b)


_OPERATIONS = {
    DimensionOperation.SUM: lambda a, b: a + b,
    DimensionOperation.PROD: lambda a, b: a * b,
    DimensionOperation.MAX: max,
    DimensionOperation.MIN: min,
    DimensionOperation.SUB: lambda a, b: a - b,
    DimensionOperation.EQUAL: lambda a, b: int(a == b),
    DimensionOperation.LESS: lambda a, b: int(a < b),
    DimensionOperation.FLOOR_DIV: lambda a, b: a // b,
    DimensionOperation.CEIL_DIV: lambda a, b: -(-a // b),
}


def evaluate(
    expr: Expr, shapes: Sequence[Sequence[int]], values: Sequence[Sequence[int] | None]
) -> int:
    """The value of a checked expression for these input shapes and shape-input values;
    UNKNOWN where it depends on something unknown. ValueError for division by zero."""
    if isinstance(expr, int):
        return expr
    kind = expr[0]
    if kind == "dim":
        return shapes[expr[1]][expr[2]]
    if kind == "value":
        known = values[expr[1]]
        return UNKNOWN if known is None else int(known[expr[2]])
    if kind == "size":
        return UNKNOWN
    a = evaluate(expr[2], shapes, values)
    b = evaluate(expr[3], shapes, values)
    if a == UNKNOWN or b == UNKNOWN:
        return UNKNOWN
    result = apply_operation(expr[1], a, b)
    if result is None:
        raise ValueError(f"{expr[1].name} by zero in an output shape expression")
    return result


def check_expr(item: Any, budget: list[int], depth: int = 0) -> Expr:
    """An expression from plain data (a plan's JSON or a tree), checked and canonical.

    JSON spells operations by name: `["op", "SUM", a, b]`. `budget` holds the nodes still
    allowed; ValueError for anything malformed.
    """
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"shape expressions have more than {MAX_EXPR_NODES} nodes")
    if depth > MAX_EXPR_DEPTH:
        raise ValueError(f"a shape expression is nested deeper than {MAX_EXPR_DEPTH}")
    if isinstance(item, bool):
        raise ValueError(f"{item!r} is not a shape expression")
    if isinstance(item, int):
        if not INT64_RANGE[0] <= item < INT64_RANGE[1]:
            raise ValueError(f"constant {item} does not fit 64 bits")
        return item
    if not isinstance(item, (list, tuple)) or not item:
        raise ValueError(f"{item!r} is not a shape expression")
    kind, *rest = item
    if kind in ("dim", "value"):
        if len(rest) != 2 or not all(_small_index(v) for v in rest):
            raise ValueError(f"{item!r} needs two indices from 0 to 63")
        return (kind, *rest)
    if kind == "size":
        if len(rest) != 1 or not _small_index(rest[0]):
            raise ValueError(f"{item!r} needs an output index from 0 to 63")
        return (kind, rest[0])
    if kind == "op" and len(rest) == 3:
        name = rest[0]
        if isinstance(name, DimensionOperation):
            op = name
        elif isinstance(name, str) and name in DimensionOperation.__members__:
            op = DimensionOperation[name]
        else:
            raise ValueError(f"{name!r} is not a DimensionOperation")
        return (
            "op",
            op,
            check_expr(rest[1], budget, depth + 1),
            check_expr(rest[2], budget, depth + 1),
        )
    raise ValueError(f"{item!r} is not a shape expression")


def encode_expr(expr: Expr) -> Any:
    """An expression as JSON data (operations by name)."""
    if isinstance(expr, int):
        return expr
    if expr[0] == "op":
        return ["op", expr[1].name, encode_expr(expr[2]), encode_expr(expr[3])]
    return list(expr)


def references(expr: Expr) -> Iterator[tuple]:
    """The leaves of an expression that are not constants."""
    if isinstance(expr, tuple):
        if expr[0] == "op":
            yield from references(expr[2])
            yield from references(expr[3])
        else:
            yield expr


def _small_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 64
