"""Real models through the command line: ResNet-18 and transformer encoders, exported from
torch with random weights, built with `tensorplan build`, run with `tensorplan run`, and
compared with onnxruntime (CPU).

torchvision is not used: its PyPI builds need a CUDA torch, so ResNet-18 is defined here,
layer for layer as torchvision.models.resnet18 defines it. torch's nn.TransformerEncoder
exports with its attention reshapes fixed to the example's shape, so it is tested at that
shape; a pre-norm encoder written here exports with dynamic batch and sequence length.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from tensorplan.cli.main import main


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3x3 convolutions with batch norm and a shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18 (layers [2, 2, 2, 2], 1000 classes, torchvision's init)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for index, (inplanes, planes, stride) in enumerate(widths, 1):
            layer = nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes))
            setattr(self, f"layer{index}", layer)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Attention(nn.Module):
    """Multi-head self-attention whose reshapes follow the input's shape when exported."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        scores = q @ k.transpose(-2, -1) / (width // self.heads) ** 0.5
        attended = torch.softmax(scores, dim=-1) @ v
        return self.proj(attended.transpose(1, 2).reshape(batch, length, width))


class PreNormEncoderLayer(nn.Module):
    """A ViT-style encoder layer: x + attention(norm(x)), then x + mlp(norm(x)) with GELU."""

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def random_batch_norm_statistics(model: nn.Module, generator: torch.Generator) -> None:
    """Trained-looking batch norm: running statistics and affine parameters not 0 and 1."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(size, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
            module.weight.data.copy_(0.5 + torch.rand(size, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(size, generator=generator))


def export(model: nn.Module, example: torch.Tensor, path: Path, dynamic: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model.eval(),
            (example,),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": dynamic, "output": dynamic},
            opset_version=17,
        )


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory) -> Path:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = ResNet18()
    random_batch_norm_statistics(model, generator)
    path = tmp_path_factory.mktemp("resnet") / "resnet18.onnx"
    export(model, torch.randn(1, 3, 64, 64), path, {0: "batch"})
    return path


@pytest.fixture(scope="module")
def torch_encoder(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    path = tmp_path_factory.mktemp("torch_encoder") / "encoder.onnx"
    export(model, torch.randn(2, 8, 64), path, {})
    return path


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(PreNormEncoderLayer(64, 4, 128), PreNormEncoderLayer(64, 4, 128))
    path = tmp_path_factory.mktemp("encoder") / "encoder.onnx"
    export(model, torch.randn(2, 8, 64), path, {0: "batch", 1: "sequence"})
    return path


def onnxruntime_output(model: Path, array: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": array})[0]


def build_run_and_compare(model: Path, build_shapes: list[str], array: np.ndarray) -> None:
    plan = model.with_suffix(".plan")
    assert main(["build", str(model), "-o", str(plan), *build_shapes]) == 0
    inputs, outputs = model.with_name("inputs.npz"), model.with_name("outputs.npz")
    np.savez(inputs, input=array)
    code = main(["run", str(plan), "--load-inputs", str(inputs), "--save-outputs", str(outputs),
                 "--iterations", "2", "--warmup", "0", "--device", "cpu"])  # fmt: skip
    assert code == 0
    expected = onnxruntime_output(model, array)
    with np.load(outputs) as saved:
        actual = saved["output"]
    assert actual.shape == expected.shape
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale)


def test_resnet18_matches_onnxruntime(resnet18):
    array = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    shapes = ["--min-shapes", "input:1x3x64x64", "--opt-shapes", "input:2x3x64x64",
              "--max-shapes", "input:2x3x64x64"]  # fmt: skip
    build_run_and_compare(resnet18, shapes, array)


def test_torch_transformer_encoder_matches_onnxruntime(torch_encoder):
    array = np.random.default_rng(1).standard_normal((2, 8, 64)).astype(np.float32)
    build_run_and_compare(torch_encoder, [], array)


@pytest.mark.parametrize(("batch", "sequence"), [(1, 8), (3, 5)])
def test_transformer_encoder_at_dynamic_shapes_matches_onnxruntime(encoder, batch, sequence):
    array = np.random.default_rng(1).standard_normal((batch, sequence, 64)).astype(np.float32)
    shapes = ["--min-shapes", "input:1x1x64", "--opt-shapes", "input:2x8x64",
              "--max-shapes", "input:4x16x64"]  # fmt: skip
    build_run_and_compare(encoder, shapes, array)


def test_run_builds_an_onnx_model_at_the_shapes_of_its_inputs(encoder, tmp_path, capsys):
    array = np.random.default_rng(2).standard_normal((2, 6, 64)).astype(np.float32)
    np.savez(tmp_path / "in.npz", input=array)
    out = tmp_path / "out.npz"
    code = main(["run", str(encoder), "--load-inputs", str(tmp_path / "in.npz"),
                 "--save-outputs", str(out), "--iterations", "1", "--noTF32"])  # fmt: skip
    assert code == 0
    assert "output output: float32 [2, 6, 64]" in capsys.readouterr().out
    with np.load(out) as saved:
        expected = onnxruntime_output(encoder, array)
        np.testing.assert_allclose(saved["output"], expected, rtol=1e-4, atol=1e-5)
