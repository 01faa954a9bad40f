"""Slice with run-time starts/ends (x[:, :x.shape[1]]) and a dynamic-batch view, exported
from torch and checked against torch through one plan at two shapes."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from tests.helpers import load, run
from tests.onnx.conftest import parse


class PositionSlice(torch.nn.Module):
    """BERT's embeddings pattern: a buffer sliced to the input's sequence length."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("table", torch.arange(64, dtype=torch.float32).reshape(1, 16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.shape[1]
        pos = self.table[:, 1 : seq + 1]
        y = x + pos
        return y.view(x.shape[0], seq, 2, 2).transpose(1, 2) + x[:, -2:].sum(1)[:, None, None, :2]


def export(module: torch.nn.Module, x: torch.Tensor) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(
        module,
        (x,),
        buffer,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 2: "seq"}},
        opset_version=17,
        dynamo=False,
    )
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("shapes", [[(2, 5, 4), (3, 9, 4)]])
def test_dynamic_slice_matches_torch(shapes, logger):
    module = PositionSlice().eval()
    model = export(module, torch.zeros(2, 5, 4))
    ok, _, network, builder = parse(model, logger)
    assert ok, logger.errors
    assert tuple(network.get_input(0).shape) == (-1, -1, 4)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 2, 4), (2, 5, 4), (4, 12, 4))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors
    engine = load(plan)
    rng = np.random.default_rng(0)
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        expected = module(torch.from_numpy(x)).numpy()
        out = run(engine, {"x": x})["y"]
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
