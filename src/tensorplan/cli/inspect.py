"""`tensorplan inspect PLAN`: IO tensors, profiles, layers, weight and activation sizes."""

from __future__ import annotations

import argparse

from ..ir import MemoryPlan, Node
from ..ops import get_op
from ..plan.format import PlanError, SectionKind
from ..plan.reader import read_plan
from ..version import __version__


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("inspect", help="describe a plan file")
    parser.add_argument("plan", help="path of the plan")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        with open(args.plan, "rb") as file:
            data = memoryview(file.read())
        contents = read_plan(data, __version__)
    except (OSError, PlanError) as error:
        print(f"tensorplan inspect: {args.plan}: {error}")
        return 1
    header, program, layout = contents.header, contents.program, contents.layout
    if program is None:
        print(
            f"tensorplan inspect: {args.plan}: a version-compatible plan of tensorplan "
            f"{header.library_version}; inspect it with that version"
        )
        return 1
    graph = program.graph
    weights = header.sections.get(SectionKind.WEIGHTS)
    print(f"plan {args.plan}: engine '{program.name}', format {header.version}, "
          f"written by tensorplan {header.library_version}, {len(data)} bytes")  # fmt: skip
    print("IO tensors:")
    for value_id in graph.inputs + graph.outputs:
        value = graph.values[value_id]
        mode = "input " if value_id in graph.inputs else "output"
        print(f"  {mode} {value.name}: {value.dtype.name} {list(value.shape)}")
    for index, profile in enumerate(program.profiles):
        for name, (low, opt, high) in profile.shapes.items():
            print(f"  profile {index} {name}: min {list(low)} opt {list(opt)} max {list(high)}")
    print(f"layers ({len(graph.nodes)}):")
    for node in graph.nodes:
        print(f"  {node.name}: {_describe(node, program.memory)}")
    weight_bytes = sum(nbytes for _, nbytes in layout.values())
    print(f"weights: {len(layout)} constants, {weight_bytes} bytes "
          f"(section {weights.length if weights else 0} bytes)")  # fmt: skip
    print(f"activations: {program.memory.arena_size} bytes in one arena, "
          f"{len(program.memory.slots)} tensors")  # fmt: skip
    return 0


def _describe(node: Node, memory: MemoryPlan) -> str:
    """The op, what the node fused, its tactic (when its op has several) and the layout of
    outputs kept channels-last."""
    op = get_op(node.op)
    parts = [node.op]
    summary = op.summary(node.attrs)
    if summary:
        parts.append(summary)
    if op.tactic is not None:
        chosen = node.attrs.get(op.tactic[0])
        parts.append(
            f"tactic {op.tactic[0]} {chosen.name}"
            if chosen is not None
            else f"tactic {op.tactic[0]} not timed (chosen at run time)"
        )
    if any(v in memory.channels_last for v in node.outputs):
        parts.append("output HWC (channels-last)")
    return "; ".join(parts)
