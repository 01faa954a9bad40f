"""`tensorplan demo`: build a small network with the network API, then run its plan."""

from __future__ import annotations

import argparse
import time

import numpy as np

from .. import (
    ActivationType,
    Builder,
    DataType,
    ElementWiseOperation,
    Logger,
    Runtime,
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="build, serialize, deserialize and run a small network"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logger = Logger(Logger.WARNING)
    rng = np.random.default_rng(0)

    started = time.perf_counter()
    builder = Builder(logger)
    network = builder.create_network()
    x = network.add_input("x", DataType.FLOAT, (2, 4))
    scale = network.add_constant((1, 4), rng.standard_normal((1, 4)).astype(np.float32))
    shift = network.add_constant((1, 4), rng.standard_normal((1, 4)).astype(np.float32))
    scaled = network.add_elementwise(x, scale.get_output(0), ElementWiseOperation.PROD)
    shifted = network.add_elementwise(
        scaled.get_output(0), shift.get_output(0), ElementWiseOperation.SUM
    )
    y = network.add_activation(shifted.get_output(0), ActivationType.RELU).get_output(0)
    y.name = "y"
    network.mark_output(y)
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    built = time.perf_counter()

    runtime = Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    loaded = time.perf_counter()

    inputs = rng.standard_normal((2, 4)).astype(np.float32)
    outputs = np.zeros((2, 4), dtype=np.float32)
    context.set_tensor_address("x", inputs.ctypes.data)
    context.set_tensor_address("y", outputs.ctypes.data)
    context.execute_async_v3(0)
    ran = time.perf_counter()

    print(f"plan: {plan.nbytes} bytes, {engine.num_layers} layers")
    print(f"x =\n{inputs}\ny = relu(x * scale + shift) =\n{outputs}")
    print(f"build {1e3 * (built - started):.1f} ms, load {1e3 * (loaded - built):.1f} ms, "
          f"run {1e3 * (ran - loaded):.2f} ms")  # fmt: skip
    return 0
