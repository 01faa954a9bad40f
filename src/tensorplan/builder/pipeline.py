"""The builder's passes, declared once and in order: from the network to a program.

`PIPELINE` is the whole build after the network: lowering, the graph rewrites, shape
inference at every profile point, plugin configuration, memory planning and tactic
selection. Each pass reads and writes one `BuildState`; the phase it belongs to is what a
progress monitor sees (one step per pass).

Set TENSORPLAN_DUMP_PASSES to a directory and every build writes the graph after each pass
there (`NN-pass.txt`, numbered in pipeline order): what each rewrite did, without a
debugger.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..ir import Graph, MemoryPlan, Profile
from ..logging import ILogger, log
from ..network.definition import INetworkDefinition
from ..ops.base import ShapeError, TensorMeta
from ..ops.plugin import configure_plugins
from ..types import BuilderFlag
from .config import IBuilderConfig
from .fusion import fuse, fuse_pointwise
from .lowering import BuildError, lower
from .memory_plan import plan_memory
from .passes import compact, eliminate_dead_code, fold_constants, remove_identities
from .precision import PrecisionConstraints, assign_precision
from .profiles import check_profiles, profile_shape_sets
from .progress import BuildProgress
from .timing import select_tactics

DUMP_VARIABLE = "TENSORPLAN_DUMP_PASSES"


@dataclass
class BuildState:
    """What the passes share: the network and config they build, and what they made so far."""

    network: INetworkDefinition
    config: IBuilderConfig
    logger: ILogger | None
    time_tactics: bool
    graph: Graph = field(default_factory=Graph)
    inferred: dict[int, TensorMeta] = field(default_factory=dict)
    """The metas lowering inferred (constant folding reuses them)."""
    constraints: PrecisionConstraints = field(default_factory=PrecisionConstraints)
    profiles: list[Profile] = field(default_factory=list)
    shape_sets: list[list[TensorMeta]] = field(default_factory=list)
    """Every value's meta at each profile's min, opt and max point."""
    memory: MemoryPlan = field(default_factory=MemoryPlan)


@dataclass(frozen=True)
class Pass:
    name: str
    phase: str
    run: Callable[[BuildState], None]


def _lower(state: BuildState) -> None:
    state.graph, state.inferred = lower(state.network)
    state.profiles = check_profiles(state.graph, state.config, state.network)
    state.constraints = PrecisionConstraints.of(state.network)


def _infer_profiles(state: BuildState) -> None:
    state.shape_sets = profile_shape_sets(state.graph, state.profiles)


def _configure_plugins(state: BuildState) -> None:
    try:
        configure_plugins(state.graph, state.shape_sets)
    except ShapeError as error:
        raise BuildError(str(error)) from None


def _plan_memory(state: BuildState) -> None:
    state.memory = plan_memory(state.graph, state.shape_sets)


def _select_tactics(state: BuildState) -> None:
    """Time the tactics at the first profile's opt point (skipped where a build only checks
    that the network is supported)."""
    if state.time_tactics:
        tf32 = state.config.get_flag(BuilderFlag.TF32)
        select_tactics(
            state.graph, state.shape_sets[1], state.memory, state.config, state.logger, tf32
        )


LOWERING, OPTIMIZING, PLANNING = "Lowering", "Optimizing", "Planning memory"

PIPELINE: tuple[Pass, ...] = (
    Pass("lower", LOWERING, _lower),
    Pass("fold_constants", OPTIMIZING, lambda s: fold_constants(s.graph, s.inferred)),
    Pass("remove_identities", OPTIMIZING, lambda s: remove_identities(s.graph)),
    Pass("fuse", OPTIMIZING, lambda s: fuse(s.graph, keep=s.constraints.names)),
    Pass(
        "assign_precision",
        OPTIMIZING,
        lambda s: assign_precision(s.graph, s.config.flags, s.constraints),
    ),
    Pass("remove_identities", OPTIMIZING, lambda s: remove_identities(s.graph)),
    Pass("fuse_pointwise", OPTIMIZING, lambda s: fuse_pointwise(s.graph, keep=s.constraints.names)),
    Pass("eliminate_dead_code", OPTIMIZING, lambda s: eliminate_dead_code(s.graph)),
    Pass("compact", OPTIMIZING, lambda s: compact(s.graph)),
    Pass("infer_profiles", PLANNING, _infer_profiles),
    Pass("configure_plugins", PLANNING, _configure_plugins),
    Pass("plan_memory", PLANNING, _plan_memory),
    Pass("select_tactics", PLANNING, _select_tactics),
)
"""Every pass of a build, in the order they run."""

PHASES = (LOWERING, OPTIMIZING, PLANNING)


def run_pipeline(state: BuildState, progress: BuildProgress) -> None:
    """Run every pass on `state`, phase by phase, reporting each pass as a step."""
    dump = os.environ.get(DUMP_VARIABLE)
    for phase in PHASES:
        passes = [(i, p) for i, p in enumerate(PIPELINE) if p.phase == phase]
        with progress.phase(phase, len(passes)):
            for index, step in passes:
                step.run(state)
                if dump:
                    _dump(dump, index, step.name, state, state.logger)
                progress.step()


def _dump(directory: str, index: int, name: str, state: BuildState, logger: Any) -> None:
    """The graph after pass `index` as text, one line per node; a failure to write is
    logged (a dump never fails a build)."""
    path = os.path.join(directory, f"{index:02d}-{name}.txt")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8") as file:
            file.write(format_graph(state.graph))
    except OSError as error:
        log(logger, ILogger.Severity.WARNING, f"{DUMP_VARIABLE}: cannot write {path}: {error}")


def format_graph(graph: Graph) -> str:
    """A graph as text: its inputs, outputs and constants, then each node with its op,
    attributes and the type and shape of what it reads and writes."""

    def value(value_id: int | None) -> str:
        if value_id is None:
            return "-"
        v = graph.values[value_id]
        return f"%{value_id} '{v.name}' {v.dtype.name}{list(v.shape)}"

    lines = [f"inputs: {', '.join(value(v) for v in graph.inputs)}"]
    lines.append(f"outputs: {', '.join(value(v) for v in graph.outputs)}")
    lines.append(f"constants: {len(graph.constants)}")
    for node in graph.nodes:
        attrs = ", ".join(f"{key}={item!r}" for key, item in node.attrs.items())
        lines.append(f"{node.name}: {node.op}({attrs})")
        lines.append(f"    reads  {'; '.join(value(v) for v in node.inputs)}")
        lines.append(f"    writes {'; '.join(value(v) for v in node.outputs)}")
    return "\n".join(lines) + "\n"
