"""Load time of plans that claim much in few bytes: bounded by their bytes, not their claims.

Each case is a plan of about --mb MB whose checksums are valid (tests/plan/planedit.py
rewrites them), so the reader's deeper checks are what accept or refuse it. Prints the
median of --repeats loads per case on the CPU and the time per MB of metadata.

    python bench/hostile_plan_load.py              # 3 MB cases
    python bench/hostile_plan_load.py --mb 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TENSORPLAN_DEVICE", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "plan"))

import numpy as np
import planedit

import tensorplan as trt
from tensorplan.ops import REGISTRY

LOGGER = trt.Logger(trt.Logger.INTERNAL_ERROR)
"""Refusals are expected; their messages would only slow the measurement."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=3.0, help="size of each plan in MB")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    size = int(args.mb * 1e6)
    print(f"{'case':<44} {'MB':>6} {'loads':>6} {'median ms':>10} {'ms/MB':>7}")
    for label, plan in cases(size):
        runtime = trt.Runtime(LOGGER)
        times, engine = [], None
        for _ in range(args.repeats):
            started = time.perf_counter()
            engine = runtime.deserialize_cuda_engine(plan)
            times.append(time.perf_counter() - started)
        median = statistics.median(times) * 1e3
        megabytes = len(plan) / 1e6
        print(f"{label:<44} {megabytes:6.2f} {engine is not None!s:>6} {median:10.1f} "
              f"{median / megabytes:7.1f}")  # fmt: skip
    return 0


def cases(size: int) -> list[tuple[str, bytes]]:
    """(label, plan) pairs of about `size` bytes each."""
    base = _relu_plan()
    chain_length = size // 190  # about 190 bytes of metadata per layer of a dense chain
    return [
        ("layers: a chain of tiny activations", _chain(base, chain_length)),
        ("profiles: empty ones on a static engine", _edit(base, profiles=[{}] * (size // 3))),
        ("profiles: one dynamic profile, many copies", _many_profiles(size)),
        (
            "shapes: huge dims claimed on every layer",
            _chain(base, chain_length, (1 << 20, 1 << 19)),
        ),
        ("weights: one constant filling the plan", _weights_plan(size)),
    ]


def _relu_plan(shape: tuple[int, ...] = (2, 3)) -> bytes:
    builder = trt.Builder(LOGGER)
    network = builder.create_network()
    x = network.add_input("x", trt.float32, shape)
    network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))
    return bytes(builder.build_serialized_network(network, builder.create_builder_config()))


def _edit(plan: bytes, **fields: object) -> bytes:
    return planedit.with_metadata(plan, lambda meta: meta.update(fields))


def _chain(plan: bytes, count: int, shape: tuple[int, ...] = (2, 3)) -> bytes:
    """`count` activation layers in a row, each with its own value and arena slot."""
    op = REGISTRY["activation"]
    attrs = op.encode_attrs(op.check_attrs({"type": trt.ActivationType.RELU}))
    slot = 256 * max(1, -(-int(np.prod(shape)) * 4 // 256))

    def edit(meta: dict) -> None:
        meta["values"] = [
            {"name": f"v{i}", "dtype": "FLOAT", "shape": list(shape)} for i in range(count + 1)
        ]
        meta["nodes"] = [
            {"name": f"n{i}", "op": "activation", "attrs": attrs, "inputs": [i], "outputs": [i + 1]}
            for i in range(count)
        ]
        meta["inputs"], meta["outputs"] = [0], [count]
        meta["memory"] = {
            "arena_size": 2 * slot,
            "slots": [
                {"value": i, "offset": slot * (i % 2), "size": slot} for i in range(1, count)
            ],
            "views": [],
        }

    return planedit.with_metadata(plan, edit)


def _many_profiles(size: int) -> bytes:
    builder = trt.Builder(LOGGER)
    network = builder.create_network()
    x = network.add_input("x", trt.float32, (-1, 3))
    network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 3), (2, 3), (4, 3))
    config.add_optimization_profile(profile)
    plan = bytes(builder.build_serialized_network(network, config))
    entry = planedit.metadata(plan)["profiles"][0]
    return _edit(plan, profiles=[entry] * (size // 50))


def _weights_plan(size: int) -> bytes:
    builder = trt.Builder(LOGGER)
    network = builder.create_network()
    x = network.add_input("x", trt.float32, (1, size // 4))
    w = network.add_constant((1, size // 4), np.ones((1, size // 4), np.float32)).get_output(0)
    network.mark_output(network.add_elementwise(x, w, trt.ElementWiseOperation.SUM).get_output(0))
    return bytes(builder.build_serialized_network(network, builder.create_builder_config()))


if __name__ == "__main__":
    raise SystemExit(main())
