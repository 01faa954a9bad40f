"""`tensorplan build MODEL.onnx -o MODEL.plan`: an ONNX model to a plan, as trtexec does.

Shapes follow trtexec: `--shapes name:1x3x224x224` fixes a dynamic input's shape (min = opt
= max); `--min-shapes/--opt-shapes/--max-shapes` give a range. A dynamic dimension that no
option sets becomes 1, with a warning. For a shape-tensor input the spec gives its values.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import (
    Builder,
    BuilderFlag,
    ILogger,
    INetworkDefinition,
    IOptimizationProfile,
    Logger,
    MemoryPoolType,
    OnnxParser,
)
from ..builder.progress import TqdmProgressMonitor
from ..logging import log
from ..memory import IHostMemory
from ..plan.format import SectionKind
from ..plan.reader import read_plan
from ..version import __version__

Shapes = dict[str, tuple[int, ...]]


class CommandError(Exception):
    """A failure the command reports in one line (exit status 1)."""


@dataclass
class BuildOptions:
    """What shapes a plan is built for, in which precisions, with how much workspace."""

    shapes: Shapes = field(default_factory=dict)
    min_shapes: Shapes = field(default_factory=dict)
    opt_shapes: Shapes = field(default_factory=dict)
    max_shapes: Shapes = field(default_factory=dict)
    fp16: bool = False
    bf16: bool = False
    tf32: bool = True
    workspace_mib: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BuildOptions:
        return cls(
            shapes=_merged(args.shapes),
            min_shapes=_merged(args.min_shapes),
            opt_shapes=_merged(args.opt_shapes),
            max_shapes=_merged(args.max_shapes),
            fp16=args.fp16,
            bf16=args.bf16,
            tf32=not args.no_tf32,
            workspace_mib=args.workspace,
        )


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "build",
        help="build an ONNX model into a plan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="the ONNX model")
    parser.add_argument(
        "-o", "--output", "--saveEngine", help="where to write the plan (default: MODEL.plan)"
    )
    add_build_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="log at VERBOSE severity")
    parser.set_defaults(run=run)


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how an ONNX model is built (shared with `tensorplan run`)."""
    for flag, alias, what in (
        ("--shapes", None, "the shape of a dynamic input (min = opt = max)"),
        ("--min-shapes", "--minShapes", "the smallest shape of a dynamic input"),
        ("--opt-shapes", "--optShapes", "the shape to optimize a dynamic input for"),
        ("--max-shapes", "--maxShapes", "the largest shape of a dynamic input"),
    ):
        names = (flag, alias) if alias else (flag,)
        parser.add_argument(
            *names,
            type=parse_shapes,
            action="append",
            default=[],
            metavar="NAME:DxDx...",
            help=f"{what}; comma-separated or repeated, e.g. images:1x3x224x224",
        )
    parser.add_argument("--fp16", action="store_true", help="allow FP16 kernels")
    parser.add_argument("--bf16", action="store_true", help="allow BF16 kernels")
    parser.add_argument(
        "--noTF32",
        dest="no_tf32",
        action="store_true",
        help="keep float32 matrix products and convolutions in full FP32 on GPUs (no TF32)",
    )
    parser.add_argument(
        "--workspace", type=not_negative, metavar="MiB", help="workspace pool limit"
    )


def run(args: argparse.Namespace) -> int:
    logger = Logger(Logger.VERBOSE if args.verbose else Logger.WARNING)
    output = Path(args.output) if args.output else Path(args.model).with_suffix(".plan")
    try:
        started = time.perf_counter()
        plan = build_onnx(args.model, BuildOptions.from_args(args), logger, progress=True)
        elapsed = time.perf_counter() - started
        output.write_bytes(plan)
    except (CommandError, OSError) as error:
        print(f"tensorplan build: {error}", file=sys.stderr)
        return 1
    print(f"built {args.model} -> {output} in {elapsed:.2f} s")
    for line in describe_plan(plan):
        print(f"  {line}")
    return 0


def build_onnx(
    path: str | Path, options: BuildOptions, logger: ILogger, progress: bool = False
) -> IHostMemory:
    """Parse an ONNX file and build its plan; CommandError (after logging why) on failure."""
    if not Path(path).is_file():
        raise CommandError(f"{path}: no such file")
    builder = Builder(logger)
    network = builder.create_network()
    parser = OnnxParser(network, logger)
    if not parser.parse_from_file(str(path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise CommandError(f"{path}: the ONNX parser failed:\n  " + "\n  ".join(errors))
    config = builder.create_builder_config()
    if options.fp16:
        config.set_flag(BuilderFlag.FP16)
    if options.bf16:
        config.set_flag(BuilderFlag.BF16)
    if not options.tf32:
        config.clear_flag(BuilderFlag.TF32)
    if options.workspace_mib is not None:
        config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    profile = _profile(builder, network, options, logger)
    if profile is not None and config.add_optimization_profile(profile) < 0:
        raise CommandError("the optimization profile is not valid (see the error above)")
    if progress:
        config.progress_monitor = TqdmProgressMonitor()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise CommandError(f"{path}: the build failed (see the error above)")
    return plan


def describe_plan(plan: IHostMemory | bytes) -> list[str]:
    """A summary of a plan: IO tensors, layers, weights, activation memory, size."""
    data = memoryview(plan).cast("B")
    contents = read_plan(data, __version__)
    header, program, layout = contents.header, contents.program, contents.layout
    graph = program.graph
    lines = []
    for value_id in graph.inputs + graph.outputs:
        value = graph.values[value_id]
        mode = "input " if value_id in graph.inputs else "output"
        lines.append(f"{mode} {value.name}: {value.dtype.name} {list(value.shape)}")
    weights = header.sections.get(SectionKind.WEIGHTS)
    weight_bytes = sum(nbytes for _, nbytes in layout.values())
    lines += [
        f"layers: {len(graph.nodes)}",
        f"weights: {len(layout)} tensors, {_size(weight_bytes)} "
        f"(section {_size(weights.length if weights else 0)})",
        f"activation memory: {_size(program.memory.arena_size)}",
        f"plan: {_size(len(data))}",
    ]
    return lines


def parse_shapes(text: str) -> Shapes:
    """`name:1x3x224x224[,name2:...]` as {name: shape}; a name may itself contain colons."""
    shapes = {}
    for item in text.split(","):
        name, colon, dims = item.strip().rpartition(":")
        name = name.strip("'\"")
        if not colon or not name:
            raise argparse.ArgumentTypeError(f"'{item}' is not NAME:DxDx... (e.g. x:1x3x224x224)")
        try:
            shape = tuple(int(d) for d in dims.split("x")) if dims else ()
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{item}': dimensions must be integers separated by 'x', got '{dims}'"
            ) from None
        if any(d < 0 for d in shape):
            raise argparse.ArgumentTypeError(f"'{item}': dimensions must not be negative")
        shapes[name] = shape
    return shapes


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def not_negative(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _merged(specs: list[Shapes]) -> Shapes:
    return {name: shape for spec in specs for name, shape in spec.items()}


def _profile(
    builder: Builder, network: INetworkDefinition, options: BuildOptions, logger: ILogger
) -> IOptimizationProfile | None:
    """The one optimization profile the options describe; None for a static network."""
    inputs = {tensor.name: tensor for tensor in map(network.get_input, range(network.num_inputs))}
    given = {
        **options.shapes, **options.min_shapes, **options.opt_shapes, **options.max_shapes
    }  # fmt: skip
    unknown = sorted(set(given) - set(inputs))
    if unknown:
        raise CommandError(f"no input named {unknown}; the inputs are {sorted(inputs)}")
    profile = builder.create_optimization_profile()
    needed = False
    for name, tensor in inputs.items():
        declared = tuple(tensor.shape)
        if tensor.is_shape_tensor:
            low, opt, high = _triple(name, options)
            if opt is None:
                raise CommandError(
                    f"input '{name}' is a shape tensor: give its values with --shapes "
                    f"{name}:v0xv1x... (or --min/--opt/--max-shapes)"
                )
            if -1 in declared:
                profile.set_shape(name, *[(len(values),) for values in (low, opt, high)])
            profile.set_shape_input(name, low, opt, high)
            needed = True
        elif -1 in declared:
            low, opt, high = _triple(name, options)
            if opt is None:
                opt = low = high = tuple(1 if d == -1 else d for d in declared)
                log(
                    logger,
                    ILogger.Severity.WARNING,
                    f"no shapes given for dynamic input '{name}' {list(declared)}; building "
                    f"for {list(opt)} (set them with --shapes {name}:...)",
                )
            profile.set_shape(name, low, opt, high)
            needed = True
        elif name in given and given[name] != declared:
            raise CommandError(
                f"input '{name}' has the static shape {list(declared)}; "
                f"the options give {list(given[name])}"
            )
    return profile if needed else None


def _triple(name: str, options: BuildOptions) -> tuple:
    """(min, opt, max) for an input: --shapes wins; a missing bound of a range is opt."""
    if name in options.shapes:
        return (options.shapes[name],) * 3
    low = options.min_shapes.get(name)
    high = options.max_shapes.get(name)
    opt = options.opt_shapes.get(name, high or low)
    return (low or opt, opt, high or opt)


def _size(nbytes: int) -> str:
    if nbytes < 1 << 10:
        return f"{nbytes} bytes"
    if nbytes < 1 << 20:
        return f"{nbytes / (1 << 10):.1f} KiB ({nbytes} bytes)"
    return f"{nbytes / (1 << 20):.1f} MiB ({nbytes} bytes)"
