"""`tensorplan run MODEL.plan|MODEL.onnx`: run a plan on random or given inputs, timed.

As trtexec does: an ONNX model is built first (its dynamic inputs fixed by --shapes), a plan
is loaded; dynamic inputs take --shapes, else the shapes of --load-inputs, else the
profile's opt shapes. Random inputs are uniform in [-1, 1] (floats), [0, 8) (integers) or
either boolean, drawn from a fixed seed. Latency is the wall-clock time of one
execute_async_v3 plus a stream synchronize.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import ICudaEngine, IExecutionContext, ILogger, Logger, Runtime, TensorIOMode
from ..device import execution_device, torch_dtype
from .build import (
    BuildOptions,
    CommandError,
    Shapes,
    add_build_arguments,
    build_onnx,
    not_negative,
    positive,
)


@dataclass
class Timings:
    """Latencies of timed inferences, in seconds, and the wall time they took together."""

    latencies: list[float]
    total: float

    def summary(self) -> list[str]:
        """trtexec's performance summary lines."""
        ms = 1e3 * np.asarray(self.latencies)
        return [
            "=== Performance summary ===",
            f"Throughput: {len(ms) / self.total:.2f} qps",
            f"Latency: min = {ms.min():.4f} ms, max = {ms.max():.4f} ms, "
            f"mean = {ms.mean():.4f} ms, median = {np.median(ms):.4f} ms, "
            f"percentile(90%) = {np.percentile(ms, 90):.4f} ms, "
            f"percentile(99%) = {np.percentile(ms, 99):.4f} ms",
            f"Total time: {len(ms)} iterations in {1e3 * self.total:.4f} ms",
        ]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="run a plan (or an ONNX model) and time it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="a plan, or an ONNX model (.onnx) to build first")
    add_build_arguments(parser)
    parser.add_argument("--iterations", type=positive, default=10, help="timed runs (10)")
    parser.add_argument("--warmup", type=not_negative, default=2, help="untimed runs first (2)")
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), help="where to run (default: CUDA when available)"
    )
    parser.add_argument("--load-inputs", metavar="FILE.npz", help="input arrays by name")
    parser.add_argument("--save-outputs", metavar="FILE.npz", help="write the outputs by name")
    parser.add_argument("--verbose", action="store_true", help="log at VERBOSE severity")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logger = Logger(Logger.VERBOSE if args.verbose else Logger.WARNING)
    options = BuildOptions.from_args(args)
    try:
        given = _load_npz(args.load_inputs) if args.load_inputs else {}
        for name, array in given.items():  # an ONNX model is built for the given shapes
            options.shapes.setdefault(name, array.shape)
        with device_choice(args.device):
            engine = load_engine(args.model, options, logger)
            inference = Inference(engine, options.shapes, given)
            inference.run()
            timings = inference.time(args.iterations, args.warmup)
            outputs = inference.outputs()
        if args.save_outputs:
            np.savez(args.save_outputs, **outputs)
    except (CommandError, OSError) as error:
        print(f"tensorplan run: {error}", file=sys.stderr)
        return 1
    print(f"ran {args.model} on {inference.device}")
    for name, array in inference.inputs().items():
        print(f"  input  {name}: {array.dtype} {list(array.shape)}")
    for name, array in outputs.items():
        print(f"  output {name}: {array.dtype} {list(array.shape)} {_stats(array)}")
    for line in timings.summary():
        print(line)
    return 0


@contextmanager
def device_choice(device: str | None) -> Iterator[None]:
    """Run the body with TENSORPLAN_DEVICE set for `device` (None: leave the default)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise CommandError("--device cuda: torch sees no CUDA device")
    saved = os.environ.get("TENSORPLAN_DEVICE")
    if device is not None:
        os.environ["TENSORPLAN_DEVICE"] = device
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TENSORPLAN_DEVICE", None)
        else:
            os.environ["TENSORPLAN_DEVICE"] = saved


def load_engine(path: str | Path, options: BuildOptions, logger: ILogger) -> ICudaEngine:
    """The engine of a plan file, or of an ONNX model built with `options`."""
    if Path(path).suffix.lower() == ".onnx":
        plan = build_onnx(path, options, logger)
    else:
        plan = Path(path).read_bytes()
    engine = Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        raise CommandError(f"{path}: the plan could not be loaded (see the error above)")
    return engine


class Inference:
    """An execution context with its IO tensors allocated and its inputs filled."""

    def __init__(
        self,
        engine: ICudaEngine,
        shapes: Shapes | None = None,
        given: dict[str, np.ndarray] | None = None,
        seed: int = 0,
    ) -> None:
        self.device = execution_device()
        self._context = _context(engine)
        self._inputs: dict[str, torch.Tensor] = {}
        self._outputs: dict[str, torch.Tensor] = {}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == TensorIOMode.INPUT]
        unknown = sorted((set(shapes or {}) | set(given or {})) - set(inputs))
        if unknown:
            raise CommandError(f"no input named {unknown}; the inputs are {inputs}")
        rng = np.random.default_rng(seed)
        for name in inputs:
            self._inputs[name] = self._bind_input(engine, name, shapes or {}, given or {}, rng)
        for name in names:
            if name not in self._inputs:
                self._outputs[name] = self._bind_output(engine, name)

    def run(self) -> None:
        """One inference, finished when this returns."""
        stream = self._stream()
        if not self._context.execute_async_v3(stream):
            raise CommandError("execution failed (see the error above)")
        self._synchronize()

    def time(self, iterations: int, warmup: int) -> Timings:
        """`warmup` untimed inferences, then the latencies of `iterations` timed ones."""
        for _ in range(warmup):
            self.run()
        latencies = []
        started = time.perf_counter()
        for _ in range(iterations):
            begin = time.perf_counter()
            self.run()
            latencies.append(time.perf_counter() - begin)
        return Timings(latencies, time.perf_counter() - started)

    def inputs(self) -> dict[str, np.ndarray]:
        return {name: _numpy(tensor) for name, tensor in self._inputs.items()}

    def outputs(self) -> dict[str, np.ndarray]:
        return {name: _numpy(tensor) for name, tensor in self._outputs.items()}

    def _bind_input(
        self,
        engine: ICudaEngine,
        name: str,
        shapes: Shapes,
        given: dict[str, np.ndarray],
        rng: np.random.Generator,
    ) -> torch.Tensor:
        dtype = torch_dtype(engine.get_tensor_dtype(name))
        host = engine.is_shape_inference_io(name)
        if name in given:
            tensor = _tensor_from(name, given[name], dtype)
        elif host:
            values = shapes.get(name) or engine.get_tensor_profile_values(0, name)[1]
            tensor = torch.tensor(values, dtype=dtype)
        else:
            shape = shapes.get(name)
            if shape is None:
                shape = tuple(engine.get_tensor_profile_shape(name, 0)[1])
            tensor = _random(shape, dtype, rng)
        tensor = tensor.contiguous() if host else tensor.to(self.device).contiguous()
        if not self._context.set_input_shape(name, tuple(tensor.shape)):
            raise CommandError(
                f"input '{name}': the shape {list(tensor.shape)} does not fit the engine "
                "(see the error above)"
            )
        self._context.set_tensor_address(name, tensor.data_ptr())
        return tensor

    def _bind_output(self, engine: ICudaEngine, name: str) -> torch.Tensor:
        shape = tuple(self._context.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise CommandError(
                f"output '{name}' has a data-dependent shape {list(shape)}; "
                "tensorplan run needs output shapes known from the input shapes"
            )
        dtype = torch_dtype(engine.get_tensor_dtype(name))
        tensor = torch.empty(shape, dtype=dtype, device=self.device)
        self._context.set_tensor_address(name, tensor.data_ptr())
        return tensor

    def _stream(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.current_stream(self.device).cuda_stream
        return 0

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()


def _context(engine: ICudaEngine) -> IExecutionContext:
    context = engine.create_execution_context()
    if context is None:
        raise CommandError("could not create an execution context (see the error above)")
    return context


def _tensor_from(name: str, array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """A given input as a tensor of the engine's dtype; a lossy kind change is refused."""
    source = torch.from_numpy(np.ascontiguousarray(array))
    if source.dtype.is_floating_point and not dtype.is_floating_point:
        raise CommandError(
            f"input '{name}': the file gives {array.dtype} values; the engine wants {dtype}"
        )
    return source.to(dtype)


def _random(shape: tuple[int, ...], dtype: torch.dtype, rng: np.random.Generator) -> torch.Tensor:
    if dtype == torch.bool:
        return torch.from_numpy(rng.integers(0, 2, shape).astype(np.bool_))
    if dtype.is_floating_point:
        return torch.from_numpy(rng.uniform(-1.0, 1.0, shape).astype(np.float32)).to(dtype)
    return torch.from_numpy(rng.integers(0, 8, shape)).to(dtype)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    try:
        return tensor.cpu().numpy()
    except TypeError:  # bf16 and the fp8 types have no numpy dtype
        return tensor.float().cpu().numpy()


def _load_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}
    except ValueError as error:
        raise CommandError(f"{path}: not an .npz file of arrays ({error})") from None


def _stats(array: np.ndarray) -> str:
    if array.size == 0:
        return "(empty)"
    values = array.astype(np.float64)
    return f"min {values.min():.6g} max {values.max():.6g} mean {values.mean():.6g}"
