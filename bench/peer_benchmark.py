"""tensorplan against its peers: torch eager and torch.compile, in one process, on one GPU.

For ResNet-50 (torchvision, random weights) and BERT-base (transformers from its config,
random weights, sequence length 128), in FP16:
- torch eager, `torch.compile(mode="reduce-overhead")` and tensorplan (built with
  BuilderFlag.FP16 from the model's ONNX export, through TensorRT's API), each timed as the
  median of CUDA-event timings after warm-up;
- tensorplan's build time and plan load time;
- tensorplan's outputs checked against eager's, within FP16 tolerance, before any timing.
Latency at batch 1, throughput at ResNet-50 batch 256 and BERT batch 32; a table with each
latency's ratio to torch.compile's, and the same figures as JSON.

    python bench/peer_benchmark.py --out results.json          # on the GPU machine
    python bench/peer_benchmark.py --device cpu --quick        # a smoke test on the CPU

Without torchvision or transformers, hand-written equivalents of the two models are used
(same layers and sizes); the JSON says which.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import tensorplan as trt
from tensorplan.device import torch_dtype

TOLERANCE = 2e-2
"""Largest relative error (max |a - b| / max |b|) of tensorplan's outputs against eager's."""


@dataclass
class Case:
    """One model at one batch size."""

    model: str
    batch: int
    kind: str
    eager_ms: float = math.nan
    compile_ms: float = math.nan
    tensorplan_ms: float = math.nan
    relative_error: float = math.nan
    items_per_s: dict[str, float] = field(default_factory=dict)


@dataclass
class ModelReport:
    name: str
    source: str
    onnx_bytes: int = 0
    build_s: float = math.nan
    plan_bytes: int = 0
    load_s: float = math.nan
    compile_s: dict[str, float] = field(default_factory=dict)
    fused_ops: dict[str, int] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="small models and batches")
    parser.add_argument("--models", default="resnet50,bert", help="comma-separated")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="torch.backends.cudnn.benchmark = True for everyone: cuDNN times its algorithms",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="the peers' models and 4D inputs in channels-last memory (torch's advice for CNNs)",
    )
    parser.add_argument("--out", type=Path, default=Path("peer_benchmark.json"))
    args = parser.parse_args(argv)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device; use --device cpu (with --quick) for a smoke test")
    if args.quick:
        args.warmup, args.iters = min(args.warmup, 2), min(args.iters, 5)
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    reports = []
    for name in args.models.split(","):
        spec = MODELS[name.strip()](args.quick)
        reports.append(benchmark(spec, device, dtype, args))
    print_table(reports)
    args.out.write_text(json.dumps(summary(reports, device, dtype, args.channels_last), indent=2))
    print(f"\nwrote {args.out}")
    failed = [c for r in reports for c in r.cases if not c.relative_error <= TOLERANCE]
    return 1 if failed else 0


# -- the models -------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    name: str
    source: str
    make: Callable[[], nn.Module]
    """A module in eval mode whose forward takes the inputs and returns one tensor."""
    inputs: Callable[[int], list[torch.Tensor]]
    """Example inputs (on the CPU) for a batch size."""
    input_names: list[str]
    batches: list[tuple[int, str]]
    """(batch size, 'latency' or 'throughput')."""


def resnet50(quick: bool) -> ModelSpec:
    try:
        import torchvision

        make, source = (lambda: torchvision.models.resnet50(weights=None)), "torchvision"
    except ImportError:
        make, source = HandResNet50, "hand-written (torchvision missing)"
    size = 64 if quick else 224
    batches = (
        [(1, "latency"), (2, "throughput")] if quick else [(1, "latency"), (256, "throughput")]
    )
    return ModelSpec(
        "ResNet-50",
        source,
        lambda: make().eval(),
        lambda batch: [torch.randn(batch, 3, size, size)],
        ["images"],
        batches,
    )


def bert_base(quick: bool) -> ModelSpec:
    sizes = dict(layers=2, hidden=64, heads=4, intermediate=256) if quick else {}
    sequence = 16 if quick else 128
    try:
        import transformers

        def make() -> nn.Module:
            names = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
            config = transformers.BertConfig(
                **dict(zip(names, sizes.values(), strict=False)),
                attn_implementation="eager",  # exports as matmul/softmax/matmul: fused to SDPA
            )
            return HiddenStates(transformers.BertModel(config, add_pooling_layer=False)).eval()

        source = f"transformers {transformers.__version__}"
    except ImportError:

        def make() -> nn.Module:
            return HandBert(sequence, **sizes).eval()

        source = "hand-written (transformers missing)"

    def inputs(batch: int) -> list[torch.Tensor]:
        ids = torch.randint(0, 30522, (batch, sequence))
        mask = torch.ones(batch, sequence, dtype=torch.int64)
        mask[::2, sequence * 3 // 4 :] = 0  # padding in every other sequence: the mask matters
        return [ids, mask]

    batches = [(1, "latency"), (2, "throughput")] if quick else [(1, "latency"), (32, "throughput")]
    return ModelSpec("BERT-base", source, make, inputs, ["input_ids", "attention_mask"], batches)


MODELS = {"resnet50": resnet50, "bert": bert_base}


class HiddenStates(nn.Module):
    """A transformers model that returns its last hidden state only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class Bottleneck(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        width, out = planes, planes * 4
        self.conv1, self.bn1 = nn.Conv2d(inplanes, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class HandResNet50(nn.Module):
    """torchvision's resnet50, layer for layer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        blocks, inplanes = [], 64
        for planes, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for index in range(count):
                blocks.append(Bottleneck(inplanes, planes, stride if index == 0 else 1))
                inplanes = planes * 4
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class BertLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attention_out, self.attention_norm = (
            nn.Linear(hidden, hidden),
            nn.LayerNorm(hidden, eps=1e-12),
        )
        self.intermediate, self.output = (
            nn.Linear(hidden, intermediate),
            nn.Linear(intermediate, hidden),
        )
        self.output_norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        depth = hidden // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, depth).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(depth) + mask
        context = torch.matmul(torch.softmax(scores, -1), v)
        context = context.transpose(1, 2).reshape(batch, length, hidden)
        x = self.attention_norm(x + self.attention_out(context))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))


class HandBert(nn.Module):
    """transformers' BertModel (no pooler, eager attention), layer for layer."""

    def __init__(
        self,
        sequence: int,
        layers: int = 12,
        hidden: int = 768,
        heads: int = 12,
        intermediate: int = 3072,
    ) -> None:
        super().__init__()
        self.sequence = sequence
        self.words, self.positions = nn.Embedding(30522, hidden), nn.Embedding(512, hidden)
        self.token_types = nn.Embedding(2, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, intermediate) for _ in range(layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # positions of a full sequence: the benchmark's inputs all have the model's length
        positions = self.positions.weight[: self.sequence]
        x = self.words(input_ids) + positions + self.token_types.weight[0]
        x = self.norm(x)
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, mask)
        return x


# -- the measurements -------------------------------------------------------------------------


def benchmark(spec: ModelSpec, device: torch.device, dtype: torch.dtype, args) -> ModelReport:
    print(f"== {spec.name} ({spec.source})", flush=True)
    report = ModelReport(spec.name, spec.source)
    model = spec.make()
    onnx_bytes = export_onnx(model, spec, max(b for b, _ in spec.batches))
    report.onnx_bytes = len(onnx_bytes)
    plan, report.build_s = build_plan(onnx_bytes, spec, device, dtype)
    report.plan_bytes = plan.nbytes
    engine, report.load_s = load_plan(plan)
    report.fused_ops = count_ops(engine)
    eager = model.to(device=device, dtype=dtype)
    if args.channels_last:
        eager = eager.to(memory_format=torch.channels_last)
    for batch, kind in spec.batches:
        case = Case(spec.name, batch, kind)
        inputs = [cast(t, device, dtype) for t in spec.inputs(batch)]
        peer_inputs = [
            t.contiguous(memory_format=torch.channels_last)
            if args.channels_last and t.dim() == 4
            else t
            for t in inputs
        ]
        runner = TensorplanRunner(engine, spec.input_names, inputs, device)
        with torch.inference_mode():
            expected = eager(*peer_inputs).float()
            got = runner().float()
        case.relative_error = float((got - expected).abs().max() / expected.abs().max())
        print(f"  batch {batch}: relative error {case.relative_error:.2e}", flush=True)
        if not case.relative_error <= TOLERANCE:
            print(f"  tensorplan's output differs from eager's beyond {TOLERANCE}: not timed")
            report.cases.append(case)
            continue
        with torch.inference_mode():
            case.eager_ms = timed(partial(eager, *peer_inputs), device, args)
            if not args.no_compile:
                compiled = torch.compile(eager, mode="reduce-overhead")
                started = time.perf_counter()
                compiled(*peer_inputs)
                compiled(*peer_inputs)
                report.compile_s[str(batch)] = time.perf_counter() - started
                case.compile_ms = timed(partial(compiled, *peer_inputs), device, args)
            case.tensorplan_ms = timed(runner, device, args)
        for who in ("eager", "compile", "tensorplan"):
            case.items_per_s[who] = batch / getattr(case, f"{who}_ms") * 1e3
        report.cases.append(case)
    return report


def export_onnx(model: nn.Module, spec: ModelSpec, batch: int) -> bytes:
    """The FP32 model as ONNX (opset 17), with a dynamic batch dimension."""
    buffer = io.BytesIO()
    dynamic = {name: {0: "batch"} for name in [*spec.input_names, "output"]}
    with torch.no_grad():
        torch.onnx.export(
            model.float().cpu(),
            tuple(spec.inputs(min(batch, 2))),
            buffer,
            input_names=spec.input_names,
            output_names=["output"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def build_plan(onnx_bytes: bytes, spec: ModelSpec, device: torch.device, dtype: torch.dtype):
    """Build with TensorRT's API: OnnxParser, FP16 flag, one profile over the batch sizes."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network()
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise SystemExit(f"{spec.name}: the ONNX parser failed:\n" + "\n".join(errors))
    config = builder.create_builder_config()
    if dtype == torch.float16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    sizes = [b for b, _ in spec.batches]
    for index, name in enumerate(spec.input_names):
        example = spec.inputs(1)[index].shape[1:]
        low, high = (min(sizes), *example), (max(sizes), *example)
        profile.set_shape(name, low, high, high)
    config.add_optimization_profile(profile)
    started = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    elapsed = time.perf_counter() - started
    if plan is None:
        raise SystemExit(f"{spec.name}: the build failed (see the log above)")
    print(f"  built in {elapsed:.2f} s: {plan.nbytes / 2**20:.1f} MiB plan", flush=True)
    return plan, elapsed


def load_plan(plan) -> tuple[trt.ICudaEngine, float]:
    """Deserialize the plan; the engine and the median load time of three loads."""
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    times, engine = [], None
    for _ in range(3):
        engine = None
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        engine = runtime.deserialize_cuda_engine(plan)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    if engine is None:
        raise SystemExit("the plan did not deserialize")
    print(f"  loaded in {statistics.median(times) * 1e3:.1f} ms", flush=True)
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
        self, engine: trt.ICudaEngine, names: list[str], inputs: list[torch.Tensor], device
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


def timed(run: Callable[[], object], device: torch.device, args) -> float:
    """The median time of one call in milliseconds, after warm-up (CUDA events on a GPU)."""
    for _ in range(args.warmup):
        run()
    samples = []
    if device.type == "cuda":
        torch.cuda.synchronize()
        for _ in range(args.iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
    else:
        for _ in range(args.iters):
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1e3)
    return statistics.median(samples)


def cast(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Float inputs in the benchmark's type; integer inputs (token ids, masks) as they are."""
    return tensor.to(device, dtype if tensor.is_floating_point() else tensor.dtype)


# -- the report -------------------------------------------------------------------------------


def print_table(reports: list[ModelReport]) -> None:
    header = (
        f"{'model':<10} {'batch':>5} {'':<10} {'eager ms':>9} {'compile ms':>10} "
        f"{'tplan ms':>9} {'vs compile':>10} {'tplan items/s':>13}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for report in reports:
        for case in report.cases:
            ratio = case.compile_ms / case.tensorplan_ms
            print(
                f"{case.model:<10} {case.batch:>5} {case.kind:<10} {case.eager_ms:>9.3f} "
                f"{case.compile_ms:>10.3f} {case.tensorplan_ms:>9.3f} {ratio:>9.2f}x "
                f"{case.items_per_s.get('tensorplan', math.nan):>13.1f}"
            )
    print(
        "(vs compile: torch.compile's time over tensorplan's; above 1 means tensorplan is faster)"
    )
    for report in reports:
        print(
            f"{report.name}: build {report.build_s:.2f} s, load {report.load_s * 1e3:.1f} ms, "
            f"plan {report.plan_bytes / 2**20:.1f} MiB, ops {report.fused_ops}"
        )


def summary(
    reports: list[ModelReport], device: torch.device, dtype: torch.dtype, channels_last: bool
) -> dict:
    return {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor(),
        "dtype": str(dtype),
        "torch": torch.__version__,
        "tensorplan": trt.__version__,
        "python": sys.version.split()[0],
        "tolerance": TOLERANCE,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "peers_channels_last": channels_last,
        "models": [asdict(report) for report in reports],
    }


if __name__ == "__main__":
    sys.exit(main())
