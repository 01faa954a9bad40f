"""Where a tensorplan engine's time goes on the GPU: torch.profiler over repeated executions.

    python bench/profile_engine.py [--model resnet50|bert] [--batch 1] [--iters 20]

Builds the model as bench/peer_benchmark.py does (ONNX export, FP16 build), runs it, says
whether the context replays a CUDA graph, and prints the top operators by CUDA and CPU time.
"""

from __future__ import annotations

import argparse

import torch
from peer_benchmark import TensorplanRunner, bert_base, build_plan, cast, export_onnx, load_plan
from peer_benchmark import resnet50 as resnet50_spec
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=("resnet50", "bert"), default="resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iters", type=int, default=20)
    args = parser.parse_args()
    device, dtype = torch.device("cuda"), torch.float16
    spec = resnet50_spec(False) if args.model == "resnet50" else bert_base(False)
    plan, _ = build_plan(export_onnx(spec.make(), spec, 2), spec, device, dtype)
    engine, _ = load_plan(plan)
    inputs = [cast(t, device, dtype) for t in spec.inputs(args.batch)]
    runner = TensorplanRunner(engine, spec.input_names, inputs, device)
    for _ in range(5):
        runner()
    torch.cuda.synchronize()
    graphs = runner.context._graphs
    print(f"CUDA graph replayed: {graphs._graph is not None} (eager only: {graphs._eager_only})")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(args.iters):
            runner()
        torch.cuda.synchronize()
    table = prof.key_averages()
    print(table.table(sort_by="cuda_time_total", row_limit=15))
    print(table.table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
