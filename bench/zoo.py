"""A model zoo against tensorplan's peers: torch eager and torch.compile, in one process.

For each model (torchvision by its `get_model` name, transformers by its model type; random
weights, no downloads) and each batch size, in FP16:
- tensorplan: the FP32 model exported to ONNX (opset 17, TorchScript exporter, static
  shapes), parsed with OnnxParser, built with BuilderFlag.FP16, serialized, deserialized and
  run through an execution context (execute_async_v3 on torch's stream);
- the peers at their best default: torch eager and torch.compile(mode="reduce-overhead"),
  channels-last for CNNs (model and images), the model's default attention;
- every runner's output checked against the FP32 eager model before anything is timed;
- the median of CUDA-event timings after warm-up, the runners interleaved over repeats;
- tensorplan's export, build and load times, and a cold process (bench/cold_start.py) that
  imports tensorplan, deserializes the saved plan and runs two inferences.

    python bench/zoo.py --out zoo.json                                      # on the GPU
    python bench/zoo.py --models tv:resnet50 hf:gpt2@256 --batches 1 8
    python bench/zoo.py --device cpu --quick --no-compile --models tv:resnet18 --batches 1

A model is `tv:NAME` (torchvision.models.get_model) or `hf:TYPE` (transformers'
AutoConfig.for_model: a token-id model such as bert or gpt2), with an optional `@SIZE`: the
image side (224 by default) or the sequence length (128). Progress goes to stderr, the JSON
is rewritten after each case (a killed run keeps what it measured), and the table of ms per
call is printed last. The exit status is 1 if any case failed.
"""

from __future__ import annotations

import argparse
import copy
import gc
import io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import nn

import tensorplan as trt
from tensorplan.device import torch_dtype

TOLERANCE = 2e-2
"""Largest relative error (max |a - b| / max |b|) of an FP16 runner against FP32 eager."""
TOLERANCES = {"tv:resnet50": 6e-2}
"""Models that need their own. ResNet-50 with random weights (and batch-norm statistics of
random images) amplifies a rounding error about twofold every two blocks: on the H200, eager
FP16 and tensorplan were 2.6e-2 and 3.0e-2 off at batch 1, 3.6e-2 and 4.0e-2 at batch 256
(exact FP16 storage, emulated on the CPU, 2.5e-2 and 4.0e-2), while another input's output
is 0.28 off."""

DEFAULT_MODELS = (
    "tv:resnet50",
    "tv:mobilenet_v3_large",
    "tv:efficientnet_b0",
    "tv:convnext_tiny",
    "tv:vit_b_16",
    "hf:bert",
    "hf:gpt2",
)
DEFAULT_BATCHES = (1, 32)
EXTRA_BATCHES = {"tv:resnet50": (256,)}
"""Batch sizes a model also runs at when --batches is not given."""
IMAGE_SIZE, SEQUENCE = 224, 128
COLD_START = Path(__file__).with_name("cold_start.py")


def log(message: str) -> None:
    """Progress on stderr, flushed: a run killed at its time limit still shows where it was."""
    print(message, file=sys.stderr, flush=True)


# -- the models -------------------------------------------------------------------------------


@dataclass
class Model:
    name: str
    source: str
    module: nn.Module
    """FP32, in eval mode, on the CPU; returns one tensor."""
    export_module: nn.Module
    """What the ONNX exporter is given: `module`'s weights, the same function."""
    input_names: list[str]
    make_inputs: Callable[[int], list[torch.Tensor]]
    """Random inputs (on the CPU) for a batch size."""
    input_shape: str
    channels_last: bool
    """The peers run it channels-last, torch's advice for CNNs (not for vision transformers)."""


class Forward(nn.Module):
    """A model called with its inputs, positionally or by keyword, returning its first output.

    `full_mask` adds an all-ones attention mask (no padding: the same function). Given no mask,
    transformers looks for packed sequences with torch.diff, which the TorchScript exporter
    cannot export; the peers are called without one, their fastest path.
    """

    def __init__(
        self, model: nn.Module, keywords: list[str] | None = None, full_mask: bool = False
    ) -> None:
        super().__init__()
        self.model, self.keywords, self.full_mask = model, keywords, full_mask

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.keywords:
            named = dict(zip(self.keywords, inputs, strict=True))
            if self.full_mask:
                named["attention_mask"] = torch.ones_like(inputs[0])
            output = self.model(**named)
        else:
            output = self.model(*inputs)
        return output if isinstance(output, torch.Tensor) else output[0]


def load_model(name: str, hf_config: dict[str, object] | None = None) -> Model:
    """`tv:NAME[@SIZE]` or `hf:TYPE[@SIZE]`, with random weights."""
    family, _, rest = name.partition(":")
    model_name, _, size = rest.partition("@")
    torch.manual_seed(0)
    if family == "tv":
        model = torchvision_model(name, model_name, int(size) if size else IMAGE_SIZE)
    elif family == "hf":
        model = transformers_model(name, model_name, int(size) if size else SEQUENCE, hf_config)
    else:
        raise ValueError(f"{name!r}: a model is tv:NAME (torchvision) or hf:TYPE (transformers)")
    fill_zero_weights(model.module)
    calibrate_batch_norm(model.module, model.make_inputs(8))
    model.module.eval()
    model.export_module.eval()  # the exporter restores the mode it finds, on the shared weights
    return model


def torchvision_model(name: str, model_name: str, size: int) -> Model:
    import torchvision

    # ViT's position embedding is sized for its image: another size is a constructor argument
    sized = {"image_size": size} if model_name.startswith("vit_") and size != IMAGE_SIZE else {}
    module = torchvision.models.get_model(model_name, weights=None, **sized)
    return Model(
        name,
        f"torchvision {torchvision.__version__}",
        Forward(module),
        Forward(module),
        ["images"],
        lambda batch: [torch.randn(batch, 3, size, size)],
        f"3x{size}x{size}",
        is_cnn(module),
    )


def transformers_model(
    name: str, model_type: str, sequence: int, overrides: dict[str, object] | None
) -> Model:
    import transformers

    config = transformers.AutoConfig.for_model(model_type)
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    if hasattr(config, "use_cache"):
        config.use_cache = False  # one forward pass, no generation: no key-value cache to return
    module = transformers.AutoModel.from_config(config)
    if module.main_input_name != "input_ids":
        raise ValueError(f"{name}: takes {module.main_input_name}; hf: models take token ids")
    vocabulary = config.vocab_size
    return Model(
        name,
        f"transformers {transformers.__version__}",
        Forward(module, ["input_ids"]),
        Forward(module, ["input_ids"], full_mask=True),
        ["input_ids"],
        lambda batch: [torch.randint(0, vocabulary, (batch, sequence))],
        f"seq {sequence}",
        False,
    )


def fill_zero_weights(model: nn.Module) -> None:
    """Random values in weight matrices initialized to zero (torchvision's ViT head): an output
    of zeros would pass any check."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2 and not parameter.any():
                nn.init.normal_(parameter, std=0.02)


def calibrate_batch_norm(model: nn.Module, inputs: list[torch.Tensor]) -> None:
    """Batch-norm statistics measured on random inputs, as training sets them. At their initial
    values (mean 0, variance 1) a random network's activations shrink layer by layer until FP16
    underflows: MobileNetV3's and EfficientNet's outputs fall below 1e-9."""
    kinds = nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d
    momenta = {norm: norm.momentum for norm in model.modules() if isinstance(norm, kinds)}
    if not momenta:
        return
    for norm in momenta:
        norm.reset_running_stats()
        norm.momentum = None  # the statistics of all the batches seen, here one
        norm.train()
    with torch.no_grad():
        model(*inputs)
    for norm, momentum in momenta.items():
        norm.momentum = momentum
        norm.eval()


def is_cnn(model: nn.Module) -> bool:
    """More than one 2D convolution; a vision transformer has one, its patch embedding."""
    return sum(isinstance(module, nn.Conv2d) for module in model.modules()) > 1


def to_device(tensors: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """On the device, floats rounded to FP16 once: FP16 and FP32 runners see the same values."""
    return [t.to(device).half().float() if t.is_floating_point() else t.to(device) for t in tensors]


def peer_inputs(
    tensors: list[torch.Tensor], dtype: torch.dtype, channels_last: bool
) -> list[torch.Tensor]:
    """The peers' inputs: floats in the benchmark's type, channels-last for a CNN."""
    return [
        t.to(dtype, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        if t.is_floating_point()
        else t
        for t in tensors
    ]


# -- tensorplan -------------------------------------------------------------------------------


def export_onnx(model: nn.Module, inputs: list[torch.Tensor], names: list[str]) -> bytes:
    """The FP32 model as ONNX: opset 17, TorchScript exporter, the inputs' static shapes.

    MultiheadAttention's fast path (a fused op ONNX has no form for) is off during export.
    """
    buffer = io.BytesIO()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings(), silenced():
            warnings.simplefilter("ignore")  # the tracer warns at every shape it reads
            torch.onnx.export(
                model,
                tuple(inputs),
                buffer,
                input_names=names,
                output_names=["output"],
                opset_version=17,
                dynamo=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return buffer.getvalue()


@contextmanager
def silenced() -> Iterator[None]:
    """stdout and stderr discarded, C++'s too: the exporter prints its whole graph on failure
    (the exception says what failed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        for fd, copy_of in zip((1, 2), saved, strict=True):
            os.dup2(copy_of, fd)
            os.close(copy_of)


def build_plan(onnx_bytes: bytes, dtype: torch.dtype) -> tuple[trt.IHostMemory, float]:
    """The plan, built through TensorRT's API (FP16 flag for FP16), and the build's seconds."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network()
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError("the ONNX parser failed: " + "; ".join(errors))
    config = builder.create_builder_config()
    if dtype == torch.float16:
        config.set_flag(trt.BuilderFlag.FP16)
    started = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    elapsed = time.perf_counter() - started
    if plan is None:
        raise RuntimeError("the build failed (see the log above)")
    return plan, elapsed


def load_plan(plan: bytes) -> tuple[trt.ICudaEngine, float]:
    """Deserialize the plan; the engine and the median time of three loads."""
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    times, engine = [], None
    for _ in range(3):
        engine = None
        synchronize()
        started = time.perf_counter()
        engine = runtime.deserialize_cuda_engine(plan)
        synchronize()
        times.append(time.perf_counter() - started)
    if engine is None:
        raise RuntimeError("the plan did not deserialize")
    return engine, statistics.median(times)


def count_ops(engine: trt.ICudaEngine) -> dict[str, int]:
    """How many nodes of each op the plan runs (the fused ones show what fusion did)."""
    counts: dict[str, int] = {}
    for node in engine._program.graph.nodes:
        counts[node.op] = counts.get(node.op, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


class TensorplanRunner:
    """An execution context with its input and output tensors bound, run on torch's stream."""

    def __init__(
        self,
        engine: trt.ICudaEngine,
        names: list[str],
        inputs: list[torch.Tensor],
        device: torch.device,
    ) -> None:
        self.context = engine.create_execution_context()
        self.device = device
        self.keep: list[torch.Tensor] = []
        for name, tensor in zip(names, inputs, strict=True):
            wanted = torch_dtype(engine.get_tensor_dtype(name))
            tensor = tensor.to(wanted).contiguous()
            self.keep.append(tensor)
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        output = next(
            engine.get_tensor_name(i)
            for i in range(engine.num_io_tensors)
            if engine.get_tensor_mode(engine.get_tensor_name(i)) == trt.TensorIOMode.OUTPUT
        )
        shape = tuple(self.context.get_tensor_shape(output))
        dtype = torch_dtype(engine.get_tensor_dtype(output))
        self.output = torch.empty(shape, dtype=dtype, device=device)
        self.context.set_tensor_address(output, self.output.data_ptr())

    def __call__(self) -> torch.Tensor:
        stream = torch.cuda.current_stream().cuda_stream if self.device.type == "cuda" else 0
        if not self.context.execute_async_v3(stream):
            raise RuntimeError("execute_async_v3 failed (see the log)")
        return self.output


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# -- the measurements -------------------------------------------------------------------------


@dataclass
class Case:
    """One model at one batch size; None where nothing was measured."""

    batch: int
    tolerance: float
    ms: dict[str, float] = field(default_factory=dict)
    """Median ms per call of each runner that passed its check."""
    spread: dict[str, float] = field(default_factory=dict)
    """(slowest - fastest) / median of the repeats' medians: differences below it are noise."""
    items_per_s: dict[str, float] = field(default_factory=dict)
    relative_error: dict[str, float] = field(default_factory=dict)
    compile_over_tensorplan: float | None = None
    export_s: float | None = None
    onnx_bytes: int | None = None
    build_s: float | None = None
    plan_bytes: int | None = None
    load_s: float | None = None
    compile_s: float | None = None
    """torch.compile's first three calls: compilation, warm-up and CUDA-graph recording."""
    fused_ops: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class ModelReport:
    name: str
    source: str | None = None
    input_shape: str | None = None
    peers_channels_last: bool | None = None
    cold_start: dict[str, float] | None = None
    cases: list[Case] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Failures outside any one case: the model did not load, the cold process failed."""


class Mismatch(Exception):
    """A runner's output is not the FP32 model's, within FP16 tolerance."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    reports: list[ModelReport] = []
    with tempfile.TemporaryDirectory(prefix="zoo-") as scratch:
        for name in args.models:
            report = ModelReport(name)
            reports.append(report)
            benchmark(report, device, dtype, args, Path(scratch), reports)
    print_tables(reports)
    failed = failures(reports)
    if failed:
        print(f"FAILED ({len(failed)}): " + "; ".join(failed))
    return 1 if failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        metavar="MODEL",
        help=f"tv:NAME or hf:TYPE, optionally @SIZE (default: {' '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--batches",
        nargs="+",
        type=int,
        help=f"for every model (default: {' '.join(map(str, DEFAULT_BATCHES))}, "
        + ", ".join(
            f"{' '.join(map(str, more))} for {name}" for name, more in EXTRA_BATCHES.items()
        )
        + " too)",
    )
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--warmup", type=int, default=20, help="calls before timing")
    parser.add_argument("--iters", type=int, default=100, help="timed calls per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds, interleaved")
    parser.add_argument(
        "--tolerance",
        type=float,
        help=f"relative error allowed for every model (default {TOLERANCE}, or {TOLERANCES})",
    )
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts (smoke test)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument(
        "--hf-config",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="set on every transformers config (e.g. num_hidden_layers=2 for a smoke test)",
    )
    parser.add_argument("--out", type=Path, default=Path("zoo.json"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device; use --device cpu (with --quick) for a smoke test")
    if args.quick:
        args.warmup, args.iters, args.repeats = 1, 3, 1
    args.models = [name for entry in args.models for name in entry.split(",") if name]
    args.hf_config = dict(map(config_value, args.hf_config))
    return args


def config_value(text: str) -> tuple[str, object]:
    """`KEY=VALUE`, the value read as JSON where it is JSON (numbers, booleans), else a string."""
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def benchmark(
    report: ModelReport,
    device: torch.device,
    dtype: torch.dtype,
    args: argparse.Namespace,
    scratch: Path,
    reports: list[ModelReport],
) -> None:
    """Every batch size of one model, the JSON rewritten after each."""
    log(f"== {report.name}")
    try:
        model = load_model(report.name, args.hf_config)
    except Exception as error:
        report.failures.append(f"load: {describe(error)}")
        log(f"FAILED {report.name}: {report.failures[-1]}")
        write_json(args.out, reports, device, dtype, args)
        return
    model.module.to(device)  # in place: export_module holds the same weights
    module16 = copy.deepcopy(model.module).to(dtype)
    if model.channels_last:
        module16 = module16.to(memory_format=torch.channels_last)
    report.source, report.input_shape = model.source, model.input_shape
    report.peers_channels_last = model.channels_last
    batches = args.batches or [*DEFAULT_BATCHES, *EXTRA_BATCHES.get(report.name, ())]
    for batch in batches:
        log(f"-- {report.name} batch {batch}")
        case, plan = run_case(model, module16, batch, device, dtype, args)
        report.cases.append(case)
        if plan is not None and report.cold_start is None:
            try:
                report.cold_start = cold_start(plan, device, scratch / "model.plan")
                report.cold_start["batch"] = batch
                log("  cold process: " + format_cold(report.cold_start))
            except Exception as error:
                report.failures.append(f"cold start: {describe(error)}")
                log(f"FAILED {report.name}: {report.failures[-1]}")
        write_json(args.out, reports, device, dtype, args)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def run_case(
    model: Model,
    module16: nn.Module,
    batch: int,
    device: torch.device,
    dtype: torch.dtype,
    args: argparse.Namespace,
) -> tuple[Case, bytes | None]:
    """Build, check and time the runners at one batch size; the case and tensorplan's plan."""
    case = Case(batch, args.tolerance or TOLERANCES.get(model.name, TOLERANCE))
    inputs = to_device(model.make_inputs(batch), device)
    peers = peer_inputs(inputs, dtype, model.channels_last)
    with torch.inference_mode(), exact_fp32():
        expected = model.module(*inputs).float()
    if not bool(torch.isfinite(expected).all()) or not bool(expected.any()):
        case.failures.append("the FP32 model's output is not finite or all zero: nothing to check")
        log(f"FAILED {model.name} batch {batch}: {case.failures[-1]}")
        return case, None
    plan = None

    def tensorplan() -> Callable[[], torch.Tensor]:
        nonlocal plan
        started = time.perf_counter()
        onnx_bytes = export_onnx(model.export_module, inputs, model.input_names)
        case.export_s, case.onnx_bytes = time.perf_counter() - started, len(onnx_bytes)
        built, case.build_s = build_plan(onnx_bytes, dtype)
        engine, case.load_s = load_plan(built)
        case.plan_bytes, case.fused_ops = len(built), count_ops(engine)
        log(
            f"  tensorplan: export {case.export_s:.1f} s, build {case.build_s:.2f} s, "
            f"load {case.load_s * 1e3:.0f} ms, plan {case.plan_bytes / 2**20:.1f} MiB"
        )
        plan = built
        return TensorplanRunner(engine, model.input_names, inputs, device)

    def compiled() -> Callable[[], torch.Tensor]:
        torch._dynamo.reset()  # no graphs of earlier cases: this one compiles for its shapes
        run = partial(torch.compile(module16, mode="reduce-overhead"), *peers)
        started = time.perf_counter()
        with torch.inference_mode():
            for _ in range(3):
                run()
        synchronize()
        case.compile_s = time.perf_counter() - started
        log(f"  compile: {case.compile_s:.1f} s")
        return run

    makers = {"tensorplan": tensorplan, "eager": lambda: partial(module16, *peers)}
    if not args.no_compile:
        makers["compile"] = compiled
    runners = {}
    for who, make in makers.items():
        try:
            run = make()
            with torch.inference_mode():
                got = run().float()
            if not bool(torch.isfinite(got).all()):
                raise Mismatch("non-finite values in the output")
            error = float((got - expected).abs().max() / expected.abs().max())
            case.relative_error[who] = error
            if not error <= case.tolerance:
                raise Mismatch(f"relative error {error:.2e} against FP32 eager > {case.tolerance}")
            runners[who] = run
        except Exception as error:
            case.failures.append(f"{who}: {describe(error)}")
            log(f"FAILED {model.name} batch {batch}, {who}: {describe(error)}")
    log("  relative error: " + ", ".join(f"{k} {v:.1e}" for k, v in case.relative_error.items()))
    with torch.inference_mode():
        medians = time_runners(runners, device, args)
    for who, times in medians.items():
        case.ms[who] = statistics.median(times)
        case.spread[who] = (max(times) - min(times)) / case.ms[who]
        case.items_per_s[who] = batch / case.ms[who] * 1e3
    if "compile" in case.ms and "tensorplan" in case.ms:
        case.compile_over_tensorplan = case.ms["compile"] / case.ms["tensorplan"]
    log("  ms: " + ", ".join(f"{k} {v:.3f}" for k, v in case.ms.items()))
    return case, plan


@contextmanager
def exact_fp32() -> Iterator[None]:
    """TF32 off for the reference: torch lets cuDNN's convolutions use it by default."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def time_runners(
    runners: dict[str, Callable[[], object]], device: torch.device, args: argparse.Namespace
) -> dict[str, list[float]]:
    """Each runner's median ms per call in each repeat; the runners take turns, so that a drift
    in clocks or temperature touches them alike."""
    for run in runners.values():
        for _ in range(args.warmup):
            run()
    medians: dict[str, list[float]] = {who: [] for who in runners}
    for _ in range(args.repeats):
        for who, run in runners.items():
            medians[who].append(statistics.median(call_times(run, device, args.iters)))
    return medians


def call_times(run: Callable[[], object], device: torch.device, iters: int) -> list[float]:
    """ms of each call: CUDA events around it on a GPU, the host clock on the CPU."""
    samples = []
    synchronize()
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
        else:
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1e3)
    return samples


def cold_start(plan: bytes, device: torch.device, path: Path) -> dict[str, float]:
    """A fresh process (bench/cold_start.py) that imports tensorplan, loads the plan and runs it."""
    path.write_bytes(plan)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(COLD_START), str(path), "--device", device.type],
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    path.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"exit status {done.returncode}: {done.stderr.strip()[-600:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = elapsed
    return result


def describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300] if text else ''}"


def failures(reports: list[ModelReport]) -> list[str]:
    found = [f"{r.name}: {failure}" for r in reports for failure in r.failures]
    found += [f"{r.name} b{c.batch} {f}" for r in reports for c in r.cases for f in c.failures]
    return found


# -- the report -------------------------------------------------------------------------------


def write_json(
    path: Path,
    reports: list[ModelReport],
    device: torch.device,
    dtype: torch.dtype,
    args: argparse.Namespace,
) -> None:
    """Everything so far, replacing the file in one step: a run killed mid-write keeps the last."""
    versions = {"torch": torch.__version__, "tensorplan": trt.__version__}
    for package in ("torchvision", "transformers"):
        module = sys.modules.get(package)
        if module is not None:
            versions[package] = module.__version__
    summary = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor(),
        "dtype": str(dtype),
        "versions": versions,
        "python": sys.version.split()[0],
        "argv": sys.argv[1:],
        "timing": {"warmup": args.warmup, "iters": args.iters, "repeats": args.repeats},
        "models": [asdict(report) for report in reports],
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(summary, indent=1))
    os.replace(temporary, path)
    log(f"  wrote {path}")


def format_cold(cold: dict[str, float]) -> str:
    return (
        f"import {cold['import_s']:.2f} s, deserialize {cold['deserialize_s'] * 1e3:.0f} ms, "
        f"context {cold['context_s'] * 1e3:.1f} ms, first {cold['first_s'] * 1e3:.1f} ms, "
        f"second {cold['second_s'] * 1e3:.2f} ms"
    )


def print_tables(reports: list[ModelReport]) -> None:
    """tensorplan's start-up per model, then the timings and their geometric means, last."""
    print(
        f"\n{'model':<24} {'batch':>5} {'build s':>8} {'load ms':>8} {'plan MiB':>8}  cold process"
    )
    for report in reports:
        for case in report.cases:
            cold = report.cold_start or {}
            print(
                f"{report.name:<24} {case.batch:>5} {cell(case.build_s, 8, 2)} "
                f"{cell(case.load_s, 8, 0, 1e3)} {cell(case.plan_bytes, 8, 1, 2**-20)}  "
                f"{format_cold(cold) if cold.get('batch') == case.batch else ''}"
            )
    header = (
        f"{'model':<24} {'batch':>5} {'eager ms':>9} {'compile ms':>10} {'tplan ms':>9} "
        f"{'compile/tplan':>13}  status"
    )
    print("\n" + header + "\n" + "-" * len(header))
    ratios: dict[int, list[float]] = {}
    for report in reports:
        if not report.cases:
            print(f"{report.name:<24} {'-':>5} {'':>45}  FAILED")
        for case in report.cases:
            ratio = case.compile_over_tensorplan
            if ratio is not None:
                ratios.setdefault(case.batch, []).append(ratio)
            print(
                f"{report.name:<24} {case.batch:>5} {cell(case.ms.get('eager'), 9)} "
                f"{cell(case.ms.get('compile'), 10)} {cell(case.ms.get('tensorplan'), 9)} "
                f"{'-' if ratio is None else f'{ratio:.2f}x':>13}  "
                f"{'FAILED' if case.failures else 'ok'}"
            )
    print("(compile/tplan: torch.compile's time over tensorplan's; above 1, tensorplan is faster)")
    for batch, values in sorted(ratios.items()):
        geomean = math.exp(statistics.fmean(map(math.log, values)))
        print(f"geometric mean compile/tplan, batch {batch}: {geomean:.2f}x ({len(values)} models)")


def cell(value: float | None, width: int, digits: int = 3, scale: float = 1.0) -> str:
    """A right-aligned number, or '-' where nothing was measured."""
    return f"{'-' if value is None else f'{value * scale:.{digits}f}':>{width}}"


if __name__ == "__main__":
    sys.exit(main())
