"""The Triton max-pooling kernel on the GPU: any strides (channels-last and NCHW), padding,
dilation and windows past the input, matched against torch's max pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.gpu

CASES = [
    # window, stride, padding, dilation, (N, C, H, W)
    ((3, 3), (2, 2), (1, 1), (1, 1), (4, 64, 56, 56)),  # ResNet's stem pooling
    ((2, 2), (2, 2), (0, 0), (1, 1), (2, 3, 9, 7)),
    ((3, 2), (1, 2), (1, 0), (2, 1), (1, 130, 11, 10)),
    ((5, 5), (3, 3), (2, 2), (1, 1), (3, 8, 17, 17)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("window", "stride", "padding", "dilation", "shape"), CASES)
def test_max_pooling_matches_torch(window, stride, padding, dilation, shape, channels_last, dtype):
    from tensorplan.ops.cuda_pooling import max_pool_2d

    x = torch.randn(shape, device="cuda").to(dtype)
    x[0, 0, 0, 0] = float("nan")
    memory = torch.channels_last if channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=memory)
    expected = F.max_pool2d(x, window, stride, padding, dilation)
    out = torch.full_like(expected, 7.0).contiguous(memory_format=memory)
    assert max_pool_2d(x, out, window, stride, padding, dilation)
    torch.testing.assert_close(out, expected, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bias_and_relu_after_the_maximum_equal_them_before_it(channels_last, dtype):
    """What pool_bias_act relies on: relu(max(x) + bias) is max(relu(x + bias)), bit for bit
    (the sum rounded to the type once either way)."""
    from tensorplan.ops.cuda_pooling import max_pool_2d

    x = torch.randn(3, 70, 23, 23, device="cuda").to(dtype)
    x[1, 5, 3, 3] = float("nan")
    memory = torch.channels_last if channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=memory)
    bias = torch.randn(70, device="cuda").to(dtype)
    activated = torch.relu(x.float() + bias.float().view(-1, 1, 1)).to(dtype)
    expected = F.max_pool2d(activated, 3, 2, 1)
    out = torch.empty_like(expected).contiguous(memory_format=memory)
    assert max_pool_2d(x, out, (3, 3), (2, 2), (1, 1), (1, 1), bias, relu=True)
    torch.testing.assert_close(out, expected, rtol=0, atol=0, equal_nan=True)


def test_windows_past_the_input_give_minus_infinity():
    """A window with no input element (padding past the edge): -inf, as TensorRT documents."""
    from tensorplan.ops.cuda_pooling import max_pool_2d

    x = torch.randn(1, 2, 3, 3, device="cuda")
    out = torch.zeros(1, 2, 3, 3, device="cuda")
    assert max_pool_2d(x, out, (1, 1), (2, 2), (2, 2), (1, 1))
    assert torch.isinf(out[..., 0, 0]).all() and (out[..., 0, 0] < 0).all()
    torch.testing.assert_close(out[..., 1, 1], x[..., 0, 0])


def test_tensors_past_two_gigaelements_index_in_64_bits():
    """Offsets past 2**31 (4.3 GB of HALF here) take the kernel's 64-bit indexing."""
    from tensorplan.ops.cuda_pooling import max_pool_2d

    x = torch.randn(1, 2, 2**15 + 8, 2**15, device="cuda", dtype=torch.float16)
    expected = F.max_pool2d(x, 2, 2)
    out = torch.empty_like(expected)
    assert max_pool_2d(x, out, (2, 2), (2, 2), (0, 0), (1, 1))
    assert torch.equal(out, expected)


def test_other_ranks_and_types_are_refused_untouched():
    from tensorplan.ops.cuda_pooling import max_pool_2d

    x = torch.randn(2, 3, 8, 8, device="cuda", dtype=torch.float64)
    out = torch.zeros(2, 3, 4, 4, device="cuda", dtype=torch.float64)
    assert not max_pool_2d(x, out, (2, 2), (2, 2), (0, 0), (1, 1))
    assert not out.any()
