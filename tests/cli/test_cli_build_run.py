"""`tensorplan build` and `tensorplan run`, as trtexec users expect them."""

from __future__ import annotations

import argparse

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import tensorplan as trt
from helpers import build_plan
from tensorplan.cli.build import parse_shapes
from tensorplan.cli.main import main
from tensorplan.examples import SMALL_CNN, model_path
from tensorplan.examples.make_small_cnn import make_model

SHIPPED = str(model_path())


def onnxruntime_outputs(model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))


def images(batch: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (batch, 3, 32, 32)).astype(np.float32)


# -- the shipped model ------------------------------------------------------------------------


def test_the_shipped_model_is_what_its_script_writes_and_is_small():
    shipped = onnx.load(SHIPPED)
    assert model_path().name == SMALL_CNN
    assert shipped.SerializeToString() == make_model().SerializeToString()
    assert model_path().stat().st_size < 100_000
    onnx.checker.check_model(shipped, full_check=True)


def test_the_generator_script_writes_the_model(tmp_path, capsys):
    from tensorplan.examples.make_small_cnn import main as make

    path = tmp_path / "model.onnx"
    assert make(["-o", str(path)]) == 0
    assert path.read_bytes() == model_path().read_bytes()
    assert str(path) in capsys.readouterr().out


def test_build_then_run_the_shipped_model_matches_onnxruntime(tmp_path, capsys):
    plan = tmp_path / "small_cnn.plan"
    code = main(["build", SHIPPED, "-o", str(plan), "--min-shapes", "images:1x3x32x32",
                 "--opt-shapes", "images:2x3x32x32", "--max-shapes", "images:4x3x32x32"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"-> {plan}" in out
    assert "input  images: FLOAT [-1, 3, 32, 32]" in out
    assert "output probabilities: FLOAT [-1, 10]" in out
    for line in ("layers: ", "weights: ", "activation memory: ", "plan: "):
        assert f"\n  {line}" in out
    assert trt.Runtime(trt.Logger()).deserialize_cuda_engine(plan.read_bytes()) is not None

    for batch in (1, 3, 4):
        inputs, outputs = tmp_path / "in.npz", tmp_path / "out.npz"
        np.savez(inputs, images=images(batch))
        code = main(["run", str(plan), "--load-inputs", str(inputs), "--save-outputs",
                     str(outputs), "--iterations", "3", "--warmup", "1", "--device", "cpu"])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        expected = onnxruntime_outputs(SHIPPED, {"images": images(batch)})["probabilities"]
        with np.load(outputs) as saved:
            assert saved.files == ["probabilities"]
            np.testing.assert_allclose(saved["probabilities"], expected, rtol=1e-5, atol=1e-6)
        assert f"output probabilities: float32 [{batch}, 10]" in out


def test_build_without_shapes_fixes_dynamic_dims_to_1_with_a_warning(tmp_path, capfd):
    plan = tmp_path / "model.plan"
    assert main(["build", SHIPPED, "--saveEngine", str(plan)]) == 0
    captured = capfd.readouterr()
    assert "no shapes given for dynamic input 'images' [-1, 3, 32, 32]" in captured.err
    assert "building for [1, 3, 32, 32]" in captured.err
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(plan.read_bytes())
    assert [list(s) for s in engine.get_tensor_profile_shape("images", 0)] == [[1, 3, 32, 32]] * 3


def test_build_default_output_is_next_to_the_model(tmp_path, capsys):
    model = tmp_path / "copy.onnx"
    model.write_bytes(model_path().read_bytes())
    assert main(["build", str(model), "--shapes", "images:2x3x32x32"]) == 0
    assert (tmp_path / "copy.plan").is_file()
    assert f"-> {tmp_path / 'copy.plan'}" in capsys.readouterr().out


def test_run_an_onnx_model_directly_with_random_inputs(tmp_path, capsys):
    outputs = tmp_path / "out.npz"
    code = main(["run", SHIPPED, "--shapes", "images:2x3x32x32", "--iterations", "5",
                 "--noTF32", "--save-outputs", str(outputs)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "input  images: float32 [2, 3, 32, 32]" in out
    assert "=== Performance summary ===" in out
    assert "Throughput: " in out and " qps" in out
    for key in ("min", "max", "mean", "median", "percentile(90%)", "percentile(99%)"):
        assert f"{key} = " in out
    assert "Total time: 5 iterations" in out
    # The random inputs are uniform in [-1, 1] from seed 0; check the outputs against them.
    expected_inputs = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    expected = onnxruntime_outputs(SHIPPED, {"images": expected_inputs})["probabilities"]
    with np.load(outputs) as saved:
        np.testing.assert_allclose(saved["probabilities"], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("flag", "builder_flag"), [("--fp16", "FP16"), ("--bf16", "BF16")])
def test_precision_flags_and_workspace_reach_the_builder_config(
    flag, builder_flag, tmp_path, monkeypatch
):
    seen = {}
    build = trt.Builder.build_serialized_network

    def spy(self, network, config):
        seen["flags"] = {f.name for f in (trt.BuilderFlag.FP16, trt.BuilderFlag.BF16)
                         if config.get_flag(f)}  # fmt: skip
        seen["workspace"] = config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE)
        return build(self, network, config)

    monkeypatch.setattr(trt.Builder, "build_serialized_network", spy)
    plan = tmp_path / "model.plan"
    args = ["build", SHIPPED, "-o", str(plan), "--shapes", "images:1x3x32x32", flag]
    assert main([*args, "--workspace", "64"]) == 0
    assert seen == {"flags": {builder_flag}, "workspace": 64 << 20}


# -- a plan from the network API: run needs no ONNX -------------------------------------------


def scaled(network):
    x = network.add_input("x", trt.float32, (-1, 3))
    k = network.add_input("k", trt.int32, (2,))
    w = network.add_constant((1, 3), np.array([[1, -2, 3]], np.float32)).get_output(0)
    y = network.add_elementwise(x, w, trt.ElementWiseOperation.PROD).get_output(0)
    y.name = "y"
    network.mark_output(y)
    doubled = network.add_elementwise(k, k, trt.ElementWiseOperation.SUM).get_output(0)
    doubled.name = "k2"
    network.mark_output(doubled)


def scaled_profile(builder, config):
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 3), (2, 3), (5, 3))
    config.add_optimization_profile(profile)


@pytest.fixture
def scaled_plan(tmp_path):
    path = tmp_path / "scaled.plan"
    path.write_bytes(build_plan(scaled, configure=scaled_profile))
    return path


def test_run_a_plan_at_given_shapes_and_inputs(scaled_plan, tmp_path, capsys):
    x = np.arange(12, dtype=np.float64).reshape(4, 3)  # float64 and int64 are cast
    k = np.array([5, -7], np.int64)
    np.savez(tmp_path / "in.npz", x=x, k=k)
    code = main(["run", str(scaled_plan), "--load-inputs", str(tmp_path / "in.npz"),
                 "--save-outputs", str(tmp_path / "out.npz"), "--iterations", "2"])  # fmt: skip
    assert code == 0
    with np.load(tmp_path / "out.npz") as saved:
        np.testing.assert_array_equal(saved["y"], (x * [1, -2, 3]).astype(np.float32))
        np.testing.assert_array_equal(saved["k2"], np.array([10, -14], np.int32))
        assert saved["y"].dtype == np.float32 and saved["k2"].dtype == np.int32
    assert "output y: float32 [4, 3] min -20 max 33 mean" in capsys.readouterr().out


@pytest.mark.parametrize(("shapes", "rows"), [([], 2), (["--shapes", "x:5x3"], 5)])
def test_run_a_plan_at_the_opt_shape_or_given_shapes(scaled_plan, tmp_path, shapes, rows):
    out = tmp_path / "out.npz"
    assert main(["run", str(scaled_plan), *shapes, "--save-outputs", str(out)]) == 0
    x = np.random.default_rng(0).uniform(-1, 1, (rows, 3)).astype(np.float32)
    with np.load(out) as saved:
        np.testing.assert_allclose(saved["y"], x * [1, -2, 3], rtol=1e-6)
        assert saved["y"].shape == (rows, 3)
        assert ((saved["k2"] >= 0) & (saved["k2"] < 16) & (saved["k2"] % 2 == 0)).all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shapes", "x:9x3"], "input 'x': the shape [9, 3] does not fit the engine"),
        (["--shapes", "z:1x3"], "no input named ['z']; the inputs are ['x', 'k']"),
        pytest.param(
            ["--device", "cuda"],
            "--device cuda: torch sees no CUDA device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)
def test_run_refuses_bad_requests_in_one_line(scaled_plan, capsys, extra, message):
    assert main(["run", str(scaled_plan), *extra]) == 1
    err = capsys.readouterr().err
    assert "tensorplan run: " in err and message in err


def test_run_refuses_float_values_for_an_integer_input(scaled_plan, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", x=np.zeros((1, 3), np.float32), k=np.zeros(2, np.float32))
    assert main(["run", str(scaled_plan), "--load-inputs", str(tmp_path / "in.npz")]) == 1
    assert "input 'k': the file gives float32 values" in capsys.readouterr().err


def test_run_refuses_a_file_that_is_not_a_plan(tmp_path, capsys):
    bad = tmp_path / "bad.plan"
    bad.write_bytes(b"not a plan at all" * 10)
    assert main(["run", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "tensorplan run: " in captured.err and "could not be loaded" in captured.err
    assert main(["run", str(tmp_path / "missing.plan")]) == 1
    assert "No such file" in capsys.readouterr().err


# -- errors of build --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shapes", "pixels:1x3x32x32"], "no input named ['pixels']; the inputs are ['images']"),
        (["--shapes", "images:1x3x32"], "does not match its dimensions [-1, 3, 32, 32]"),
        (["--min-shapes", "images:4x3x32x32", "--max-shapes", "images:2x3x32x32"], "min <= opt"),
    ],
)
def test_build_refuses_shapes_that_do_not_fit(tmp_path, capfd, extra, message):
    assert main(["build", SHIPPED, "-o", str(tmp_path / "m.plan"), *extra]) == 1
    err = capfd.readouterr().err
    assert "tensorplan build: " in err and message in err
    assert not (tmp_path / "m.plan").exists()


def test_build_reports_a_missing_or_broken_model(tmp_path, capfd):
    assert main(["build", str(tmp_path / "missing.onnx")]) == 1
    assert "missing.onnx: no such file" in capfd.readouterr().err
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    assert main(["build", str(broken)]) == 1
    assert "broken.onnx: the ONNX parser failed" in capfd.readouterr().err


def test_build_refuses_a_static_input_given_another_shape(tmp_path, capfd):
    model = make_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    path = tmp_path / "static.onnx"
    onnx.save(model, path)
    assert main(["build", str(path), "--shapes", "images:1x3x32x32"]) == 1
    assert "'images' has the static shape [2, 3, 32, 32]; the options give [1, 3, 32, 32]" in (
        capfd.readouterr().err
    )
    assert main(["build", str(path), "--shapes", "images:2x3x32x32"]) == 0


@pytest.mark.parametrize(
    ("text", "shapes"),
    [
        ("x:1x3x224x224", {"x": (1, 3, 224, 224)}),
        ("a:2,b:3x4", {"a": (2,), "b": (3, 4)}),
        ("input:0:1x2", {"input:0": (1, 2)}),
        ("'quoted':5", {"quoted": (5,)}),
        ("scalar:", {"scalar": ()}),
    ],
)
def test_shape_specs_follow_trtexec(text, shapes):
    assert parse_shapes(text) == shapes


@pytest.mark.parametrize(
    ("text", "message"),
    [("1x3", "is not NAME:DxDx"), ("x:1xa", "must be integers"), ("x:-1x3", "not be negative")],
)
def test_bad_shape_specs_are_usage_errors(text, message, capsys):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_shapes(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["build", SHIPPED, "--shapes", text])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", SHIPPED, "--iterations", "0"], "must be at least 1, got 0"),
        (["run", SHIPPED, "--warmup", "-1"], "must not be negative, got -1"),
        (["build", SHIPPED, "--workspace", "-5"], "must not be negative, got -5"),
        (["run", SHIPPED, "--device", "tpu"], "invalid choice: 'tpu'"),
    ],
)
def test_bad_numbers_and_choices_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_verbose_build_logs_the_builders_summary(tmp_path, capfd):
    plan = tmp_path / "m.plan"
    assert main(["build", SHIPPED, "-o", str(plan), "--shapes", "images:1x3x32x32"]) == 0
    assert "[TRT] [I]" not in capfd.readouterr().err
    assert (
        main(["build", SHIPPED, "-o", str(plan), "--shapes", "images:1x3x32x32", "--verbose"]) == 0
    )
    assert "[TRT] [I] Built engine" in capfd.readouterr().err


@pytest.mark.gpu
def test_run_on_cuda_matches_onnxruntime(tmp_path, capsys):
    np.savez(tmp_path / "in.npz", images=images(4))
    code = main(["run", SHIPPED, "--device", "cuda", "--load-inputs", str(tmp_path / "in.npz"),
                 "--save-outputs", str(tmp_path / "out.npz"), "--iterations", "5"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "on cuda" in out
    expected = onnxruntime_outputs(SHIPPED, {"images": images(4)})["probabilities"]
    with np.load(tmp_path / "out.npz") as saved:  # TF32 is on by default, as in TensorRT
        np.testing.assert_allclose(saved["probabilities"], expected, rtol=1e-2, atol=1e-3)
