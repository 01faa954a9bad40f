"""`tensorplan demo`: the shipped ONNX model parsed, built, serialized, loaded and run."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .. import Logger, Runtime
from ..examples import model_path
from .build import BuildOptions, CommandError, build_onnx, describe_plan, positive
from .run import Inference

BATCH = 2
"""The batch the demo runs; the plan is built for batches 1 to 8 (optimized for 4)."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="build the shipped example model into a plan, load it and run it"
    )
    parser.add_argument("--iterations", type=positive, default=20, help="timed runs (20)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logger = Logger(Logger.WARNING)
    model = model_path()
    image = (3, 32, 32)
    options = BuildOptions(
        min_shapes={"images": (1, *image)},
        opt_shapes={"images": (4, *image)},
        max_shapes={"images": (8, *image)},
    )
    try:
        started = time.perf_counter()
        plan = build_onnx(model, options, logger)
        built = time.perf_counter()
        engine = Runtime(logger).deserialize_cuda_engine(plan)
        if engine is None:
            raise CommandError("the plan could not be loaded (see the error above)")
        loaded = time.perf_counter()
        inference = Inference(engine, {"images": (BATCH, *image)})
        inference.run()
        ran = time.perf_counter()
        timings = inference.time(args.iterations, warmup=2)
    except CommandError as error:
        print(f"tensorplan demo: {error}", file=sys.stderr)
        return 1
    print(f"model {model.name}: parsed and built into a plan, loaded on {inference.device}")
    for line in describe_plan(plan):
        print(f"  {line}")
    probabilities = inference.outputs()["probabilities"]
    print(f"images: {BATCH} random images of shape {list(image)}")
    with np.printoptions(precision=3, suppress=True):
        for index, row in enumerate(probabilities):
            print(f"  image {index}: class {row.argmax()} (p = {row.max():.3f}) {row}")
    print(f"parse + build {1e3 * (built - started):.1f} ms, load {1e3 * (loaded - built):.1f} ms, "
          f"first run {1e3 * (ran - loaded):.2f} ms, then median "
          f"{1e3 * np.median(timings.latencies):.3f} ms over {args.iterations} runs")  # fmt: skip
    return 0
