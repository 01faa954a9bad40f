"""Parse and build time of a long ONNX chain: 100,000 nodes must parse and build in under 10 s.

Makes a model of --nodes Relu (or Add) nodes in a row, then times `OnnxParser.parse` and
`Builder.build_serialized_network` on the CPU separately. Both are linear in the model's
size, so the time per node stays flat as --nodes grows (compare a few sizes with --sizes).

    python bench/long_chain.py                         # 100,000 Relu nodes, limit 10 s
    python bench/long_chain.py --op Add --sizes 10000 20000 40000
    python bench/long_chain.py --nodes 20000 --profile # the 25 costliest functions
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

LIMIT_S = 10.0
"""The most seconds parse and build of 100,000 nodes may take together."""


def chain_model(nodes: int, op: str) -> bytes:
    """`nodes` nodes of `op` in a row over a [1, 8] FLOAT input (Add adds a constant)."""
    names = ["x"] + [f"t{i}" for i in range(nodes - 1)] + ["y"]
    initializers = []
    if op == "Add":
        initializers.append(numpy_helper.from_array(np.ones((1, 8), np.float32), "one"))
    graph_nodes = [
        helper.make_node(op, [names[i], "one"] if op == "Add" else [names[i]], [names[i + 1]])
        for i in range(nodes)
    ]
    graph = helper.make_graph(
        graph_nodes,
        "long_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def parse_and_build(trt: Any, model: bytes) -> tuple[float, float]:
    """Seconds to parse, seconds to build with tensorplan `trt` (raises when either fails)."""
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network()
    parser = trt.OnnxParser(network, logger)
    started = time.perf_counter()
    if not parser.parse(model):
        raise RuntimeError(str(parser.get_error(0)))
    parsed = time.perf_counter()
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    built = time.perf_counter()
    if plan is None:
        raise RuntimeError("the build failed")
    return parsed - started, built - parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--sizes", type=int, nargs="*", help="several chain lengths to compare")
    parser.add_argument("--op", default="Relu", choices=["Relu", "Add"])
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args(argv)
    os.environ.setdefault("TENSORPLAN_DEVICE", "cpu")
    import tensorplan as trt  # after choosing the device

    total = 0.0
    for nodes in args.sizes or [args.nodes]:
        model = chain_model(nodes, args.op)
        if args.profile:
            profiler = cProfile.Profile()
            parse_s, build_s = profiler.runcall(parse_and_build, trt, model)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        else:
            parse_s, build_s = parse_and_build(trt, model)
        total = parse_s + build_s
        print(
            f"{nodes} {args.op} nodes: parse {parse_s:.2f} s, build {build_s:.2f} s, "
            f"total {total:.2f} s ({total / nodes * 1e6:.1f} us per node)"
        )
    if not args.sizes and args.nodes == 100_000 and total > LIMIT_S:
        print(f"over the limit of {LIMIT_S} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
