"""The `tensorplan` command: demo and inspect."""

from __future__ import annotations

import numpy as np

import tensorplan as trt
from helpers import build_plan
from tensorplan.cli.main import main


def test_demo_builds_runs_and_prints_timings(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "y = relu(x * scale + shift)" in out
    assert "build" in out and "load" in out and "run" in out


def dynamic_network(network):
    x = network.add_input("images", trt.float32, (-1, 3))
    w = network.add_constant((1, 3), np.ones((1, 3), np.float32)).get_output(0)
    y = network.add_elementwise(x, w, trt.ElementWiseOperation.PROD).get_output(0)
    y.name = "scores"
    network.mark_output(y)


def profile(builder, config):
    shapes = builder.create_optimization_profile()
    shapes.set_shape("images", (1, 3), (2, 3), (4, 3))
    config.add_optimization_profile(shapes)


def test_inspect_prints_io_profiles_layers_and_sizes(tmp_path, capsys):
    path = tmp_path / "model.plan"
    path.write_bytes(build_plan(dynamic_network, configure=profile))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "input  images: FLOAT [-1, 3]" in out
    assert "output scores: FLOAT [-1, 3]" in out
    assert "profile 0 images: min [1, 3] opt [2, 3] max [4, 3]" in out
    assert "layers (1):" in out and "elementwise" in out
    assert "weights: 1 constants, 12 bytes" in out
    assert "activations: 0 bytes" in out


def test_inspect_a_bad_file_is_one_line_and_status_1(tmp_path, capsys):
    path = tmp_path / "bad.plan"
    path.write_bytes(b"this is not a plan" * 8)
    assert main(["inspect", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "not a tensorplan plan" in out
    assert main(["inspect", str(tmp_path / "missing.plan")]) == 1
    assert "No such file" in capsys.readouterr().out
