"""The `tensorplan` command: demo and inspect (build and run: test_cli_build_run.py)."""

from __future__ import annotations

import re

import numpy as np
import onnxruntime

import tensorplan as trt
from helpers import build_plan
from tensorplan.cli.main import main
from tensorplan.examples import model_path


def test_demo_runs_the_shipped_model_and_prints_outputs_and_timings(capsys):
    assert main(["demo", "--iterations", "3"]) == 0
    out = capsys.readouterr().out
    assert "model small_cnn.onnx: parsed and built into a plan" in out
    assert "input  images: FLOAT [-1, 3, 32, 32]" in out
    # The demo's images are uniform in [-1, 1] from seed 0, as `tensorplan run` draws them.
    images = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(model_path()), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"images": images})[0]
    for index, row in enumerate(expected):
        # within TF32's error on GPUs (the demo keeps TensorRT's default, TF32 on)
        found = re.search(rf"image {index}: class {row.argmax()} \(p = ([0-9.]+)\)", out)
        assert found is not None, out
        assert abs(float(found.group(1)) - row.max()) <= 2e-3
    for timing in ("parse + build", "load", "first run", "median"):
        assert timing in out


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


def relu_times_two(network):
    x = network.add_input("x", trt.float32, (2, 3))
    relu = network.add_activation(x, trt.ActivationType.RELU).get_output(0)
    two = network.add_constant((1, 1), np.full((1, 1), 2, np.float32)).get_output(0)
    y = network.add_elementwise(relu, two, trt.ElementWiseOperation.PROD).get_output(0)
    y.name = "y"
    network.mark_output(y)


def test_inspect_says_what_each_layer_fused(tmp_path, capsys):
    pointwise = tmp_path / "pointwise.plan"
    pointwise.write_bytes(build_plan(relu_times_two))
    assert main(["inspect", str(pointwise)]) == 0
    assert ": pointwise; 2 fused steps: RELU > PROD (one generated kernel on CUDA)" in (
        capsys.readouterr().out
    )
    cnn = tmp_path / "cnn.plan"
    assert main(["build", str(model_path()), "-o", str(cnn), "--shapes", "images:2x3x32x32"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(cnn)]) == 0
    out = capsys.readouterr().out
    assert "Conv_3 + Relu_4: conv_bias_act; NHWC convolution + bias, then RELU" in out
    assert "MaxPool_2: pool_bias_act; max pooling + bias, then RELU" in out
