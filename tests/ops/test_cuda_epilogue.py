"""The Triton convolution epilogue on the GPU: bias, residual and ReLU in one pass, on NCHW
and channels-last outputs, and a refusal (nothing written) for layouts it cannot index."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


def tensors(dtype, channels_last, shape=(3, 7, 5, 6)):
    generator = torch.Generator(device="cuda").manual_seed(5)
    out = torch.randn(shape, device="cuda", dtype=dtype, generator=generator)
    residual = torch.randn(shape, device="cuda", dtype=dtype, generator=generator)
    if channels_last:
        out = out.contiguous(memory_format=torch.channels_last)
        residual = residual.contiguous(memory_format=torch.channels_last)
    bias = torch.randn(shape[1], device="cuda", dtype=dtype, generator=generator)
    return out, bias, residual


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("with_bias", "with_residual", "relu"), [(1, 1, 1), (1, 0, 1), (0, 1, 0)])
def test_epilogue_matches_torch(dtype, channels_last, with_bias, with_residual, relu):
    from tensorplan.ops.cuda_epilogue import epilogue

    out, bias, residual = tensors(dtype, channels_last)
    out[0, 1, 2, 3] = float("nan")  # ReLU keeps NaN, as torch's does
    expected = out.double()
    if with_bias:
        expected = expected + bias.double().view(1, -1, 1, 1)
    if with_residual:
        expected = expected + residual.double()
    if relu:
        expected = expected.relu()
    assert epilogue(out, bias if with_bias else None, residual if with_residual else None, relu)
    torch.cuda.synchronize()
    tolerance = {torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]
    torch.testing.assert_close(
        out.double(), expected, rtol=tolerance, atol=tolerance, equal_nan=True
    )


def test_mismatched_layouts_are_refused_untouched():
    from tensorplan.ops.cuda_epilogue import epilogue

    out, bias, residual = tensors(torch.float16, channels_last=True)
    before = out.clone()
    assert not epilogue(out, bias, residual.contiguous(), relu=True)  # NCHW residual
    assert not epilogue(out.transpose(2, 3), bias, None, relu=True)  # neither layout
    assert not epilogue(out, bias.float(), None, relu=True)  # bias of another type
    assert torch.equal(out, before)
