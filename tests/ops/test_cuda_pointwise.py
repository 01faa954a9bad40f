"""The generated Triton kernel of a pointwise program on the GPU: every fusable operation,
every way an input is read (dense, broadcast through strides, a scalar), every float type,
matched against the same program run step by step through the layers' own ops."""

from __future__ import annotations

import pytest
import torch

import tensorplan as trt
from tensorplan.ops.pointwise import (
    ACTIVATIONS,
    BINARY_OPERATIONS,
    UNARY_OPERATIONS,
    Pointwise,
    Step,
    StepKind,
    encode_program,
)

pytestmark = pytest.mark.gpu

TOLERANCE = {torch.float32: 2e-6, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def step_by_step(steps, inputs, out):
    """The program run through the layers' ops on the CPU (the fused op's reference path)."""
    expected = torch.empty(out.shape, dtype=out.dtype)
    Pointwise().run([t.cpu() for t in inputs], [expected], encode_program(list(steps)))
    return expected


def run_on_gpu(steps, inputs, out):
    from tensorplan.ops.cuda_pointwise import run_program

    return run_program(tuple(steps), inputs, out)


def assert_matches(steps, inputs, dtype, shape):
    out = torch.full(shape, float("nan"), device="cuda", dtype=dtype)
    assert run_on_gpu(steps, inputs, out)
    expected = step_by_step(steps, inputs, out)
    tolerance = TOLERANCE[dtype]
    torch.testing.assert_close(
        out.cpu().double(), expected.double(), rtol=tolerance, atol=tolerance
    )


def draw(*shape, dtype=torch.float32, low=-3.0, high=3.0):
    return (torch.rand(shape, device="cuda") * (high - low) + low).to(dtype)


PARAMS = {
    trt.ActivationType.LEAKY_RELU: (0.1, 0.0),
    trt.ActivationType.ELU: (0.7, 0.0),
    trt.ActivationType.SELU: (1.6733, 1.0507),
    trt.ActivationType.SOFTPLUS: (2.0, 3.0),
    trt.ActivationType.CLIP: (-0.5, 0.5),
    trt.ActivationType.HARD_SIGMOID: (0.2, 0.5),
    trt.ActivationType.SCALED_TANH: (1.5, 0.5),
    trt.ActivationType.THRESHOLDED_RELU: (0.25, 0.0),  # a bf16 value: no boundary ties
}
CASES = (
    [(StepKind.ACTIVATION, code) for code in sorted(ACTIVATIONS)]
    + [(StepKind.UNARY, code) for code in sorted(UNARY_OPERATIONS)]
    + [(StepKind.ELEMENTWISE, code) for code in sorted(BINARY_OPERATIONS)]
)
POSITIVE_ONLY = {trt.UnaryOperation.LOG, trt.UnaryOperation.SQRT, trt.ElementWiseOperation.POW}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("kind", "code"), CASES, ids=[f"{k.name}-{c.name}" for k, c in CASES])
def test_every_operation_matches_the_layers(kind, code, dtype):
    low = 0.25 if code in POSITIVE_ONLY else -3.0
    a, b = draw(5, 300, dtype=dtype, low=low), draw(5, 300, dtype=dtype, low=0.25)
    operands = (0, 1) if kind == StepKind.ELEMENTWISE else (0,)
    alpha, beta = PARAMS.get(code, (0.0, 0.0))
    steps = [
        Step(kind, code, operands, alpha, beta),
        Step(StepKind.ELEMENTWISE, trt.ElementWiseOperation.SUM, (2, 1)),
    ]
    assert_matches(steps, [a, b], dtype, (5, 300))


def test_broadcast_strided_and_scalar_inputs_in_one_kernel():
    """A BERT mask: int64 (B, 1, 1, S) cast, inverted and scaled, added to (B, H, L, S) scores
    read through a transposed view; a scalar constant; a half output."""
    scores = draw(2, 8, 4, 16, dtype=torch.float16).transpose(1, 2)  # (2, 4, 8, 16), strided
    mask = (torch.rand(2, 1, 1, 16, device="cuda") > 0.3).long()
    one = torch.ones(1, 1, 1, 1, device="cuda", dtype=torch.float16)
    big = torch.full((1, 1, 1, 1), -10000.0, device="cuda", dtype=torch.float16)
    E = trt.ElementWiseOperation
    steps = [
        Step(StepKind.CAST, trt.float16, (1,)),
        Step(StepKind.ELEMENTWISE, E.SUB, (2, 4)),
        Step(StepKind.ELEMENTWISE, E.PROD, (5, 3)),
        Step(StepKind.ELEMENTWISE, E.SUM, (0, 6)),
    ]
    assert_matches(steps, [scores, mask, one, big], torch.float16, (2, 4, 8, 16))


def test_intermediates_round_to_their_layers_type():
    """FLOAT in, a cast to HALF in the middle, FLOAT out: the HALF step rounds as its layer."""
    x = draw(1000) * 1000 + 0.123456
    steps = [
        Step(StepKind.CAST, trt.float16, (0,)),
        Step(StepKind.CAST, trt.float32, (1,)),
        Step(StepKind.ELEMENTWISE, trt.ElementWiseOperation.SUB, (0, 2)),
    ]
    out = torch.empty(1000, device="cuda")
    assert run_on_gpu(steps, [x], out)
    torch.testing.assert_close(out, x - x.half().float(), rtol=0, atol=0)


def test_bool_inputs_cast_to_float():
    flags = torch.rand(7, 9, device="cuda") > 0.5
    steps = [
        Step(StepKind.CAST, trt.float32, (0,)),
        Step(StepKind.UNARY, trt.UnaryOperation.NEG, (1,)),
    ]
    out = torch.empty(7, 9, device="cuda")
    assert run_on_gpu(steps, [flags], out)
    torch.testing.assert_close(out, -flags.float(), rtol=0, atol=0)


def test_large_tensors_and_empty_ones():
    x = draw(3 * 1024 * 1024 + 17)
    steps = [Step(StepKind.ACTIVATION, trt.ActivationType.RELU, (0,))]
    out = torch.empty_like(x)
    assert run_on_gpu(steps, [x], out)
    torch.testing.assert_close(out, torch.relu(x), rtol=0, atol=0)
    empty = torch.empty(0, 4, device="cuda")
    assert run_on_gpu(steps, [empty], torch.empty(0, 4, device="cuda"))


def test_outputs_it_does_not_write_are_refused_untouched():
    x = draw(4, 6)
    steps = [Step(StepKind.UNARY, trt.UnaryOperation.NEG, (0,))]
    strided = torch.zeros(6, 4, device="cuda").t()
    assert not run_on_gpu(steps, [x], strided)
    assert not strided.any()
    doubles = torch.zeros(4, 6, device="cuda", dtype=torch.float64)
    assert not run_on_gpu(steps, [x.double()], doubles)
    assert not doubles.any()
