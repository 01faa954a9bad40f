"""docs/ops.md is the op reference rendered from the op registry, never a stale copy."""

from __future__ import annotations

from pathlib import Path

from tensorplan.ops import REGISTRY
from tensorplan.plan.op_reference import render

OPS_PAGE = Path(__file__).parents[2] / "docs" / "ops.md"


def test_the_checked_in_page_is_the_generators_output() -> None:
    assert OPS_PAGE.read_text(encoding="utf-8") == render(), (
        "docs/ops.md is stale: run `python -m tensorplan.plan.op_reference > docs/ops.md`"
    )


def test_every_op_has_a_section_and_every_attribute_a_row() -> None:
    page = render()
    for name, op in REGISTRY.items():
        section = page.split(f"\n## `{name}`\n", 1)[1].split("\n## ", 1)[0]
        for attribute, spec in op.attrs.items():
            assert f"| `{attribute}` | {spec.describe()} |" in section, (name, attribute)


def test_a_schema_is_rendered_with_its_ranges_and_defaults() -> None:
    section = render().split("\n## `cast`\n", 1)[1].split("\n## ", 1)[0]
    assert "Inputs: 1. Outputs: 1. Shape-tensor inputs: none." in section
    assert "| `to_type` | `DataType` value (integer) | `0` (`FLOAT`) |" in section
    assert '| `round_mode` | one of the strings `"up"`, `"down"`, `"nearest"` | `"up"` |' in section
    assert "| `from_type` | `DataType` value (integer) | `null` |" in section
    plugin = render().split("\n## `plugin_v3`\n", 1)[1].split("\n## ", 1)[0]
    assert "Inputs: 0 to 128. Outputs: any number. Shape-tensor inputs: 64 to 127." in plugin
    assert "| `workspace` | integer >= 0 | `0` |" in plugin
