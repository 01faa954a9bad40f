"""Where a tensorplan engine's time goes on the GPU: torch.profiler over repeated executions.

    python bench/profile_engine.py [--model tv:resnet50] [--batch 1] [--iters 20]

Builds the model as bench/zoo.py does (any of its model names; ONNX export, FP16 build),
runs it, says whether the context replays a CUDA graph, and prints the top operators by CUDA
and CPU time. `--device cpu` (FP32, CPU time only) checks the script without a GPU.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile
from zoo import (
    TensorplanRunner,
    build_plan,
    export_onnx,
    load_model,
    load_plan,
    synchronize,
    to_device,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tv:resnet50", help="a bench/zoo.py model name")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    model = load_model(args.model)
    model.module.to(device)
    inputs = to_device(model.make_inputs(args.batch), device)
    plan, _ = build_plan(export_onnx(model.export_module, inputs, model.input_names), dtype)
    engine, _ = load_plan(plan)
    runner = TensorplanRunner(engine, model.input_names, inputs, device)
    for _ in range(5):
        runner()
    synchronize()
    graphs = runner.context._graphs
    print(f"CUDA graph replayed: {graphs._graph is not None} (eager only: {graphs._eager_only})")
    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_gpu else [])]
    with profile(activities=activities) as prof:
        for _ in range(args.iters):
            runner()
        synchronize()
    table = prof.key_averages()
    if on_gpu:
        print(table.table(sort_by="cuda_time_total", row_limit=15))
    print(table.table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
