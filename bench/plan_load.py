"""Plan load time: a plan holding 1 GiB of FP16 weights must load in under 0.25 s.

Builds a chain of fully connected layers whose HALF weights add up to --gib GiB, then times
`Runtime.deserialize_cuda_engine` on the plan's bytes (weights copied to the device
included), median of --repeats loads, and checks one inference against torch.

    python bench/plan_load.py                           # on the GPU machine: 1 GiB, 0.25 s
    python bench/plan_load.py --device cpu --quick      # a smoke test: 64 MiB
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import tensorplan as trt

LIMIT_S_PER_GIB = 0.25


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="64 MiB of weights")
    parser.add_argument("--gib", type=float, default=1.0, help="GiB of FP16 weights")
    parser.add_argument("--width", type=int, default=8192, help="features of each layer")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("plan_load.json"))
    args = parser.parse_args(argv)
    if args.device == "cpu":
        os.environ["TENSORPLAN_DEVICE"] = "cpu"
    elif not torch.cuda.is_available():
        parser.error("no CUDA device; use --device cpu (with --quick) for a smoke test")
    if args.quick:
        args.gib, args.width = 1 / 16, 2048
    layer_bytes = args.width * args.width * 2
    layers = max(1, round(args.gib * 2**30 / layer_bytes))
    torch.manual_seed(0)
    weights = [
        (torch.randn(args.width, args.width) / args.width**0.5).half().numpy()
        for _ in range(layers)
    ]
    started = time.perf_counter()
    plan = build(weights, args.width)
    build_s = time.perf_counter() - started
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    runtime.max_threads = os.cpu_count() or 1  # checksums on every core, as TensorRT allows
    times, engine = [], None
    for _ in range(args.repeats):
        engine = None  # the previous engine's weights are freed before the next load
        synchronize()
        started = time.perf_counter()
        engine = runtime.deserialize_cuda_engine(plan)
        synchronize()
        times.append(time.perf_counter() - started)
    assert engine is not None, "the plan did not deserialize"
    error = check(engine, weights, args.width)
    gib = layers * layer_bytes / 2**30
    limit = LIMIT_S_PER_GIB * max(gib, 1.0)
    load_s = statistics.median(times)
    result = {
        "device": torch.cuda.get_device_name()
        if torch.cuda.is_available() and args.device == "cuda"
        else "cpu",
        "weights_gib": gib,
        "plan_bytes": plan.nbytes,
        "build_s": build_s,
        "load_s": load_s,
        "load_s_all": times,
        "limit_s": limit,
        "relative_error": error,
        "passed": load_s < limit and error < 1e-2,
    }
    print(
        f"{gib:.3f} GiB of FP16 weights in {layers} layers: plan {plan.nbytes / 2**30:.3f} GiB, "
        f"built in {build_s:.2f} s, loaded in {load_s * 1e3:.1f} ms (median of {args.repeats}; "
        f"limit {limit * 1e3:.0f} ms), relative error {error:.1e}: "
        + ("PASS" if result["passed"] else "FAIL")
    )
    args.out.write_text(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


def build(weights: list[np.ndarray], width: int) -> trt.IHostMemory:
    """x (HALF) through one matrix multiply per weight: every weight is a constant of the plan."""
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    network = builder.create_network()
    x = network.add_input("x", trt.float16, (1, width))
    for weight in weights:
        constant = network.add_constant(weight.shape, weight).get_output(0)
        x = network.add_matrix_multiply(
            x, trt.MatrixOperation.NONE, constant, trt.MatrixOperation.NONE
        ).get_output(0)
    x.name = "y"
    network.mark_output(x)
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    if plan is None:
        raise SystemExit("the build failed")
    return plan


def check(engine: trt.ICudaEngine, weights: list[np.ndarray], width: int) -> float:
    """Run once; the relative error against torch in FLOAT."""
    device = engine._device
    x = torch.randn(1, width, dtype=torch.float16, device=device)
    y = torch.empty(1, width, dtype=torch.float16, device=device)
    context = engine.create_execution_context()
    context.set_input_shape("x", (1, width))
    context.set_tensor_address("x", x.data_ptr())
    context.set_tensor_address("y", y.data_ptr())
    stream = torch.cuda.current_stream().cuda_stream if device.type == "cuda" else 0
    assert context.execute_async_v3(stream)
    synchronize()
    expected = x.float().cpu()
    for weight in weights:
        expected = expected @ torch.from_numpy(weight).float()
    return float((y.float().cpu() - expected).abs().max() / expected.abs().max())


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


if __name__ == "__main__":
    sys.exit(main())
