"""The ONNX target: parse model bytes with OnnxParser and build what parses.

TensorRT's contract: `parse` returns True or False (with at least one ParserError), and
`build_serialized_network` returns a plan or None (with a reported error); neither raises.
"""

from __future__ import annotations

import tensorplan as trt

from .contract import ContractViolation, ErrorList, QuietLogger, expect_errors

MODEL_PATH = "/nonexistent/tensorplan-fuzz/model.onnx"
"""Where parse is told the model lies: external data is looked for in a directory that does
not exist, never in the working directory."""


def check_model(data: bytes) -> str:
    """Parse `data` and build the network if it parses; the stage reached ('refused',
    'not built' or 'built'). Raises when an API breaks its contract."""
    recorder = ErrorList()
    builder = trt.Builder(QuietLogger())
    builder.error_recorder = recorder
    network = builder.create_network()
    parser = trt.OnnxParser(network, QuietLogger())
    if not parser.parse(data, MODEL_PATH):
        if parser.num_errors == 0:
            raise ContractViolation("OnnxParser.parse returned False with no ParserError")
        return "refused"
    plan = build_parsed(builder, network)
    if plan is None:
        expect_errors(recorder, 0, "build_serialized_network returned None")
        return "not built"
    return "built"


def build_parsed(builder: trt.Builder, network: trt.INetworkDefinition) -> trt.IHostMemory | None:
    """Build `network` with a profile that gives every dynamic dimension of its inputs the
    size 1 (without one, a dynamic model would only reach the builder's first check)."""
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = tuple(tensor.shape)
        if any(dim < 0 for dim in shape):
            static = tuple(1 if dim < 0 else dim for dim in shape)
            profile.set_shape(tensor.name, static, static, static)
    config.add_optimization_profile(profile)
    return builder.build_serialized_network(network, config)
