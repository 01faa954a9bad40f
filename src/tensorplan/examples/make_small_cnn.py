"""Write the shipped example model, small_cnn.onnx, with onnx's helper (deterministic).

    python -m tensorplan.examples.make_small_cnn [-o PATH]

images [batch, 3, 32, 32] -> Conv 3x3 (16) -> Relu -> MaxPool 2x2 -> Conv 3x3 (32) -> Relu
-> Conv 1x1 (32) with a residual Add -> Relu -> GlobalAveragePool -> Flatten -> Gemm (10)
-> Softmax -> probabilities [batch, 10]. The batch dimension is dynamic. Weights are seeded
random numbers (He-scaled, so activations stay in a sensible range), about 27 KB in all.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import model_path

OPSET = 17
IR_VERSION = 8
"""Fixed, not onnx's current defaults, so the file is the same whichever onnx writes it."""


def make_model(seed: int = 0) -> onnx.ModelProto:
    """The example model, with weights drawn from `seed`."""
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        values = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        return numpy_helper.from_array(values.astype(np.float32), name)

    def bias(name: str, size: int) -> onnx.TensorProto:
        return numpy_helper.from_array((0.1 * rng.standard_normal(size)).astype(np.float32), name)

    initializers = [
        weight("conv1.weight", 16, 3, 3, 3),
        bias("conv1.bias", 16),
        weight("conv2.weight", 32, 16, 3, 3),
        bias("conv2.bias", 32),
        weight("conv3.weight", 32, 32, 1, 1),
        bias("conv3.bias", 32),
        weight("fc.weight", 10, 32),
        bias("fc.bias", 10),
    ]
    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["images", "conv1.weight", "conv1.bias"], ["c1"], pads=pads),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], pads=pads),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "conv3.weight", "conv3.bias"], ["c3"]),
        helper.make_node("Add", ["c3", "r2"], ["residual"]),
        helper.make_node("Relu", ["residual"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "fc.weight", "fc.bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="tensorplan.examples.make_small_cnn",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-o", "--output", default=str(model_path()), help="where to write it")
    args = parser.parse_args(argv)
    onnx.save(make_model(), args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
