"""A cold process's first inferences of a plan: import, deserialize, run twice (bench/zoo.py).

    python bench/cold_start.py PLAN [--device cuda|cpu]

What a freshly started service pays before its first answer, apart from the interpreter's
own start: prints one JSON line of seconds, each step synchronized, each input random.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = parser.parse_args()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name], clock = now - clock, now

    import torch

    lap("torch_import_s")
    import tensorplan as trt

    lap("tensorplan_import_s")
    from zoo import TensorplanRunner, synchronize

    from tensorplan.device import torch_dtype

    device = torch.device(args.device)
    torch.empty(1, device=device)
    synchronize()
    clock = time.perf_counter()  # zoo's import and device start-up are no part of tensorplan's
    plan = args.plan.read_bytes()
    lap("read_s")
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan)
    if engine is None:
        raise SystemExit("the plan did not deserialize")
    synchronize()
    lap("deserialize_s")
    names = [
        name
        for name in map(engine.get_tensor_name, range(engine.num_io_tensors))
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
    ]
    inputs = []
    for name in names:
        shape, dtype = (
            tuple(engine.get_tensor_shape(name)),
            torch_dtype(engine.get_tensor_dtype(name)),
        )
        if dtype.is_floating_point:
            inputs.append(torch.randn(shape, device=device).to(dtype))
        else:  # token ids: 0 and 1 are in every vocabulary
            inputs.append(torch.randint(0, 2, shape, device=device, dtype=dtype))
    synchronize()
    clock = time.perf_counter()
    runner = TensorplanRunner(engine, names, inputs, device)
    lap("context_s")
    for step in ("first_s", "second_s"):
        runner()
        synchronize()
        lap(step)
    seconds["import_s"] = seconds["torch_import_s"] + seconds["tensorplan_import_s"]
    print(json.dumps(seconds))


if __name__ == "__main__":
    main()
