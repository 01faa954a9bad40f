"""docs/ops.md, the op reference of the plan format, rendered from the op registry.

`python -m tensorplan.plan.op_reference > docs/ops.md` writes it; a test checks that the
checked-in page is this module's output, so the page cannot go stale.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable

from ..ops import REGISTRY
from ..ops.base import Attr, Op

INTRODUCTION = """\
# Op reference

Every op a plan's nodes may name (`"op"`), generated from tensorplan's op registry
(`tensorplan.ops.REGISTRY`) by `python -m tensorplan.plan.op_reference > docs/ops.md`: do not
edit this page by hand. [plan-format.md](plan-format.md) says how nodes use it.

For each op:

- **Inputs**: how many entries a node's `"inputs"` list may have. When the count is a range,
  the entries up to the smaller number are required (a value id); later ones are optional
  and may be `null` (not given).
- **Outputs**: how many entries its `"outputs"` list has; "any number" means the op's
  attributes decide (at least one).
- **Shape-tensor inputs**: the input positions whose *values* the op needs on the host
  (TensorRT's shape tensors), not only their shapes.
- **Attributes**: a node's `"attrs"` object has only the names listed. An attribute left out
  takes its default; an attribute may be `null` only where its default is `null`. "integer"
  is a JSON integer and "number" a JSON integer or finite number; enum values are stored as
  their integers (see [Enumerations](#enumerations)).
"""


def render() -> str:
    """The whole page."""
    ops = sorted(REGISTRY.values(), key=lambda op: op.name)
    parts = [INTRODUCTION, _contents(ops)]
    parts += [_op_section(op) for op in ops]
    parts.append(_enumerations(ops))
    return "\n".join(parts)


def main() -> None:
    sys.stdout.write(render())


def _contents(ops: list[Op]) -> str:
    rows = [
        f"| [`{op.name}`](#{op.name}) | {_inputs(op)} | {_outputs(op)} | {_shape_inputs(op)} |"
        for op in ops
    ]
    header = ["## Ops", "", "| op | inputs | outputs | shape-tensor inputs |", "|---|---|---|---|"]
    return "\n".join(header + rows) + "\n"


def _op_section(op: Op) -> str:
    lines = [f"## `{op.name}`", ""]
    summary = _summary(op)
    if summary:
        lines += [summary, ""]
    lines += [
        f"Inputs: {_inputs(op)}. Outputs: {_outputs(op)}. "
        f"Shape-tensor inputs: {_shape_inputs(op)}. TensorRT layer type: `{op.layer_type.name}`."
        + (
            " Reads transposed views: a transposing shuffle may feed it as a view."
            if op.reads_strided_views
            else ""
        ),
        "",
    ]
    if op.attrs:
        lines += ["| attribute | value in JSON | default |", "|---|---|---|"]
        lines += [
            f"| `{name}` | {spec.describe()} | {_default(spec)} |"
            for name, spec in op.attrs.items()
        ]
    else:
        lines.append("No attributes.")
    return "\n".join(lines) + "\n"


def _enumerations(ops: list[Op]) -> str:
    """The enums attribute values are drawn from, with each member's stored integer."""
    enums = {
        spec.enum_type.__name__: spec.enum_type
        for op in ops
        for spec in op.attrs.values()
        if hasattr(spec, "enum_type")
    }
    lines = ["## Enumerations", ""]
    for name in sorted(enums):
        lines += [f"### `{name}`", "", "| name | value |", "|---|---|"]
        lines += [f"| `{member.name}` | {int(member)} |" for member in enums[name]]
        lines.append("")
    return "\n".join(lines)


def _summary(op: Op) -> str:
    """The first paragraph of the op class's own docstring, on one line."""
    doc = type(op).__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _inputs(op: Op) -> str:
    low, high = op.num_inputs
    return str(low) if low == high else f"{low} to {high}"


def _outputs(op: Op) -> str:
    return "any number" if op.num_outputs < 0 else str(op.num_outputs)


def _shape_inputs(op: Op) -> str:
    return ", ".join(_runs(sorted(op.shape_inputs))) or "none"


def _runs(positions: Iterable[int]) -> list[str]:
    """Consecutive positions as ranges: [1, 2, 3, 5] -> ["1 to 3", "5"]."""
    runs: list[list[int]] = []
    for position in positions:
        if runs and runs[-1][1] == position - 1:
            runs[-1][1] = position
        else:
            runs.append([position, position])
    return [str(a) if a == b else f"{a} to {b}" for a, b in runs]


def _default(spec: Attr) -> str:
    if spec.default is None:
        return "`null`"
    encoded = f"`{json.dumps(spec.encode(spec.default))}`"
    if isinstance(spec.default, enum.Enum):
        return f"{encoded} (`{spec.default.name}`)"
    return encoded


if __name__ == "__main__":
    main()
