"""The Triton layer-norm and RMS-norm kernel on the GPU: rows of any width up to its limit,
layer norm with and without a residual, written straight into the output; refusals leave the
output untouched."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.gpu


def tensors(dtype, width, rows=37):
    generator = torch.Generator(device="cuda").manual_seed(width)

    def draw(*shape):
        return torch.randn(shape, device="cuda", dtype=dtype, generator=generator)

    return draw(rows, width) * 3 + 1, draw(rows, width), draw(width), draw(width)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("width", [1, 100, 768, 4096])
@pytest.mark.parametrize("with_residual", [False, True])
def test_layer_norm_matches_torch(dtype, width, with_residual):
    from tensorplan.ops.cuda_layer_norm import layer_norm

    x, residual, scale, bias = tensors(dtype, width)
    out = torch.full_like(x, float("nan"))
    assert layer_norm(x, residual if with_residual else None, scale, bias, 1e-5, out)
    source = x.double() + residual.double() if with_residual else x.double()
    expected = F.layer_norm(source, (width,), scale.double(), bias.double(), 1e-5)
    tolerance = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    torch.testing.assert_close(out.double(), expected, rtol=tolerance, atol=tolerance)


def test_unsupported_inputs_are_refused_untouched():
    from tensorplan.ops.cuda_layer_norm import layer_norm

    x, residual, scale, bias = tensors(torch.float16, 64)
    out = torch.zeros_like(x)
    assert not layer_norm(x.t().contiguous().t(), None, scale, bias, 1e-5, out)  # strided
    assert not layer_norm(x, residual.float(), scale, bias, 1e-5, out)  # mixed types
    wide = torch.zeros(2, 20000, device="cuda", dtype=torch.float16)
    row = torch.ones(20000, device="cuda", dtype=torch.float16)
    assert not layer_norm(wide, None, row, row, 1e-5, wide.clone())  # wider than one program
    assert not out.any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("width", [1, 100, 768, 3000, 4096])
def test_rms_norm_matches_torch(dtype, width):
    from tensorplan.ops.cuda_layer_norm import rms_norm

    x, _, scale, _ = tensors(dtype, width)
    out = torch.full_like(x, float("nan"))
    assert rms_norm(x, scale, 1e-5, out)
    expected = F.rms_norm(x.double(), (width,), scale.double(), 1e-5)
    tolerance = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    torch.testing.assert_close(out.double(), expected, rtol=tolerance, atol=tolerance)


def test_rms_norm_refuses_unsupported_inputs_untouched():
    from tensorplan.ops.cuda_layer_norm import rms_norm

    x, _, scale, _ = tensors(torch.float16, 64)
    out = torch.zeros_like(x)
    assert not rms_norm(x.t().contiguous().t(), scale, 1e-5, out)  # strided
    assert not rms_norm(x, scale.float(), 1e-5, out)  # mixed types
    assert not rms_norm(x, scale[:60], 1e-5, out)  # rows that do not divide the input
    wide = torch.zeros(2, 20000, device="cuda", dtype=torch.float16)
    row = torch.ones(20000, device="cuda", dtype=torch.float16)
    assert not rms_norm(wide, row, 1e-5, wide.clone())  # wider than one program
    assert not out.any()
