"""Chains of pointwise layers become one `pointwise` node (one generated kernel on the GPU).

Each network is built fused and with its layers kept apart (`keep_layers_apart`), and both
engines are compared with an independent torch reference. The fused node's program is data:
plans whose programs are damaged are refused when read.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tensorplan as trt
from helpers import build_plan, constant, keep_layers_apart, load, output, run
from tensorplan.ops import get_op
from tensorplan.ops.base import ShapeError, TensorMeta, infer_node
from tensorplan.ops.pointwise import MAX_STEPS, Step, StepKind, decode_program, encode_program

RNG = np.random.default_rng(11)
ACT = trt.ActivationType
ELT = trt.ElementWiseOperation
UNARY = trt.UnaryOperation
X = RNG.standard_normal((2, 3, 8)).astype(np.float32)
POSITIVE = RNG.uniform(0.5, 2.0, (2, 3, 8)).astype(np.float32)


def engines(define, configure=None):
    """(fused engine, engine with every layer kept apart)."""

    def apart(network):
        define(network)
        keep_layers_apart(network)

    return [load(build_plan(variant, configure=configure)) for variant in (define, apart)]


def nodes(engine, op=None):
    return [n for n in engine._program.graph.nodes if op is None or n.op == op]


def check(define, inputs, expected, configure=None, tolerance=1e-6):
    """Both engines give `expected`; the fused one is one pointwise node. Its steps."""
    fused, apart = engines(define, configure)
    assert not nodes(apart, "pointwise")
    for engine in (fused, apart):
        np.testing.assert_allclose(
            run(engine, inputs)["y"].astype(np.float32), expected, rtol=tolerance, atol=tolerance
        )
    (node,) = nodes(fused, "pointwise")
    return decode_program(node.attrs, len(node.inputs))


def test_a_bert_attention_mask_is_one_kernel():
    """(1 - float(mask)) * -10000, the mask broadcast over heads and query positions, added to
    scores: int64 in, one cast, broadcasting, two constants."""
    mask = (RNG.random((2, 1, 8)) > 0.3).astype(np.int64)

    def define(network):
        scores = network.add_input("x", trt.float32, X.shape)
        m = network.add_input("mask", trt.int64, mask.shape)
        as_float = network.add_cast(m, trt.float32).get_output(0)
        one = constant(network, np.ones((1, 1, 1), np.float32))
        inverted = network.add_elementwise(one, as_float, ELT.SUB).get_output(0)
        big = constant(network, np.full((1, 1, 1), -10000.0, np.float32))
        additive = network.add_elementwise(inverted, big, ELT.PROD).get_output(0)
        output(network, network.add_elementwise(scores, additive, ELT.SUM).get_output(0))

    expected = X + (1.0 - mask.astype(np.float32)) * -10000.0
    steps = check(define, {"x": X, "mask": mask}, expected)
    assert [s.kind for s in steps] == [
        StepKind.CAST,
        StepKind.ELEMENTWISE,
        StepKind.ELEMENTWISE,
        StepKind.ELEMENTWISE,
    ]


def test_a_value_read_twice_inside_the_chain_fuses():
    """silu(x + b) = t * sigmoid(t): t is read by two layers, both in the chain."""
    bias = RNG.standard_normal((1, 1, 8)).astype(np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        t = network.add_elementwise(x, constant(network, bias), ELT.SUM).get_output(0)
        gate = network.add_activation(t, ACT.SIGMOID).get_output(0)
        output(network, network.add_elementwise(t, gate, ELT.PROD).get_output(0))

    t = torch.from_numpy(X + bias)
    steps = check(define, {"x": X}, (t * torch.sigmoid(t)).numpy())
    assert len(steps) == 3


def test_a_value_read_twice_by_the_last_layer_fuses():
    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        one = constant(network, np.ones((1, 1, 1), np.float32))
        y = network.add_unary(network.add_elementwise(x, one, ELT.SUM).get_output(0), UNARY.EXP)
        output(
            network,
            network.add_elementwise(y.get_output(0), y.get_output(0), ELT.PROD).get_output(0),
        )

    steps = check(define, {"x": X}, np.exp(X + 1) ** 2, tolerance=1e-5)
    assert len(steps) == 3


def test_a_value_read_outside_the_chain_ends_it():
    """exp(x) is also a network output: it is computed once, and the rest reads it."""

    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        e = network.add_unary(x, UNARY.EXP).get_output(0)
        output(network, e, "e")
        y = network.add_elementwise(
            e, constant(network, np.full((1, 1, 1), 2.0, np.float32)), ELT.PROD
        )
        output(network, network.add_unary(y.get_output(0), UNARY.NEG).get_output(0))

    fused, _ = engines(define)
    assert [n.op for n in nodes(fused)] == ["unary", "pointwise"]
    results = run(fused, {"x": X})
    np.testing.assert_allclose(results["e"], np.exp(X), rtol=1e-6)
    np.testing.assert_allclose(results["y"], -2 * np.exp(X), rtol=1e-6)


def test_a_layer_with_a_precision_constraint_stays_apart():
    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        a = network.add_unary(x, UNARY.ABS)
        b = network.add_unary(a.get_output(0), UNARY.SQRT)
        b.precision = trt.float32
        c = network.add_unary(b.get_output(0), UNARY.EXP)
        d = network.add_unary(c.get_output(0), UNARY.NEG)
        output(network, d.get_output(0))

    fused, _ = engines(define)
    assert [n.op for n in nodes(fused)] == ["unary", "unary", "pointwise"]
    np.testing.assert_allclose(run(fused, {"x": X})["y"], -np.exp(np.sqrt(np.abs(X))), rtol=1e-6)


def test_fp16_engines_fuse_the_conversions_too():
    """Under FP16 the chain computes in HALF between the input's and the output's casts: the
    casts are steps of the same kernel."""

    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        y = network.add_activation(x, ACT.GELU_ERF).get_output(0)
        output(network, network.add_unary(y, UNARY.NEG).get_output(0))

    def fp16(builder, config):
        config.set_flag(trt.BuilderFlag.FP16)

    expected = -F.gelu(torch.from_numpy(X).half().float()).numpy()
    steps = check(define, {"x": X}, expected, configure=fp16, tolerance=2e-3)
    assert [(s.kind, s.code) for s in steps] == [
        (StepKind.CAST, trt.float16),
        (StepKind.ACTIVATION, ACT.GELU_ERF),
        (StepKind.UNARY, UNARY.NEG),
        (StepKind.CAST, trt.float32),
    ]


ACTIVATION_CASES = [
    (ACT.RELU, 0.0, 0.0, torch.relu),
    (ACT.SIGMOID, 0.0, 0.0, torch.sigmoid),
    (ACT.TANH, 0.0, 0.0, torch.tanh),
    (ACT.LEAKY_RELU, 0.1, 0.0, lambda x: F.leaky_relu(x, 0.1)),
    (ACT.ELU, 0.7, 0.0, lambda x: F.elu(x, 0.7)),
    (ACT.SELU, 1.6733, 1.0507, lambda x: 1.0507 * torch.where(x >= 0, x, 1.6733 * torch.expm1(x))),
    (ACT.SOFTSIGN, 0.0, 0.0, F.softsign),
    (ACT.SOFTPLUS, 2.0, 3.0, lambda x: 2.0 * F.softplus(3.0 * x)),
    (ACT.CLIP, -0.5, 0.5, lambda x: torch.clamp(x, -0.5, 0.5)),
    (ACT.HARD_SIGMOID, 0.2, 0.5, lambda x: torch.clamp(0.2 * x + 0.5, 0, 1)),
    (ACT.SCALED_TANH, 1.5, 0.5, lambda x: 1.5 * torch.tanh(0.5 * x)),
    (ACT.THRESHOLDED_RELU, 0.3, 0.0, lambda x: torch.where(x > 0.3, x, 0.0)),
    (ACT.GELU_ERF, 0.0, 0.0, F.gelu),
    (ACT.GELU_TANH, 0.0, 0.0, lambda x: F.gelu(x, approximate="tanh")),
]


@pytest.mark.parametrize(("kind", "alpha", "beta", "reference"), ACTIVATION_CASES)
def test_every_activation_fuses(kind, alpha, beta, reference):
    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        layer = network.add_activation(x, kind)
        layer.alpha, layer.beta = alpha, beta
        output(network, network.add_unary(layer.get_output(0), UNARY.NEG).get_output(0))

    steps = check(define, {"x": X}, -reference(torch.from_numpy(X)).numpy())
    assert (steps[0].code, steps[0].alpha, steps[0].beta) == (
        kind,
        pytest.approx(alpha),
        pytest.approx(beta),
    )


UNARY_CASES = [
    (UNARY.EXP, torch.exp),
    (UNARY.LOG, torch.log),
    (UNARY.SQRT, torch.sqrt),
    (UNARY.RECIP, torch.reciprocal),
    (UNARY.ABS, torch.abs),
    (UNARY.NEG, torch.neg),
    (UNARY.SIN, torch.sin),
    (UNARY.COS, torch.cos),
    (UNARY.ERF, torch.erf),
    (UNARY.CEIL, torch.ceil),
    (UNARY.FLOOR, torch.floor),
]
BINARY_CASES = [
    (ELT.SUM, torch.add),
    (ELT.SUB, torch.sub),
    (ELT.PROD, torch.mul),
    (ELT.DIV, torch.div),
    (ELT.MAX, torch.maximum),
    (ELT.MIN, torch.minimum),
    (ELT.POW, torch.pow),
]


@pytest.mark.parametrize(("operation", "reference"), UNARY_CASES)
def test_every_fusable_unary_operation(operation, reference):
    def define(network):
        x = network.add_input("x", trt.float32, POSITIVE.shape)
        y = network.add_unary(x, operation).get_output(0)
        output(network, network.add_activation(y, ACT.RELU).get_output(0))

    check(define, {"x": POSITIVE}, torch.relu(reference(torch.from_numpy(POSITIVE))).numpy())


@pytest.mark.parametrize(("operation", "reference"), BINARY_CASES)
def test_every_fusable_binary_operation(operation, reference):
    other = RNG.uniform(0.5, 2.0, (1, 3, 1)).astype(np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, POSITIVE.shape)
        y = network.add_elementwise(x, constant(network, other), operation).get_output(0)
        output(network, network.add_unary(y, UNARY.NEG).get_output(0))

    expected = -reference(torch.from_numpy(POSITIVE), torch.from_numpy(other))
    check(define, {"x": POSITIVE}, expected.numpy(), tolerance=1e-5)


def test_comparisons_and_integer_arithmetic_stay_apart():
    """Only FLOAT, HALF and BF16 arithmetic fuses: a comparison's BOOL result, integers."""
    counts = np.array([[3, -7, 9]], dtype=np.int32)

    def define(network):
        x = network.add_input("x", trt.int32, counts.shape)
        y = network.add_elementwise(x, x, ELT.PROD).get_output(0)
        y = network.add_elementwise(y, constant(network, np.full((1, 1), 2, np.int32)), ELT.SUB)
        output(network, y.get_output(0))

    fused, _ = engines(define)
    assert not nodes(fused, "pointwise")
    np.testing.assert_array_equal(run(fused, {"x": counts})["y"], counts * counts - 2)


def test_long_chains_are_split():
    length = MAX_STEPS + 5

    def define(network):
        y = network.add_input("x", trt.float32, X.shape)
        for _ in range(length):
            y = network.add_unary(y, UNARY.NEG).get_output(0)
        output(network, y)

    fused, _ = engines(define)
    pointwise = nodes(fused, "pointwise")
    assert [len(decode_program(n.attrs, len(n.inputs))) for n in pointwise] == [5, MAX_STEPS]
    np.testing.assert_array_equal(run(fused, {"x": X})["y"], -X)


def meta(shape, dtype=trt.float32):
    return TensorMeta(dtype, shape)


PROGRAM_ERRORS = [
    ([], "needs 4 per step"),
    ([0, int(ELT.SUM), 0], "needs 4 per step"),
    ([7, 0, 0, 1], "unknown kind 7"),
    ([0, int(ELT.EQUAL), 0, 1], "does not fuse operation"),
    ([1, int(UNARY.NOT), 0, -1], "does not fuse operation"),
    ([0, int(ELT.SUM), 0, 2], "neither one of the 2 inputs nor an earlier step"),
    ([0, int(ELT.SUM), 0, -1], "neither one of the 2 inputs"),
    ([1, int(UNARY.EXP), 0, 1], "takes one operand"),
    ([3, int(trt.int32), 0, -1], "does not fuse operation"),
    ([1, int(UNARY.EXP), 0, -1], "operand 1 is read by no step"),
    ([0, int(ELT.SUM), 0, 1, 1, int(UNARY.EXP), 0, -1], "operand 2 is read by no step"),
]


@pytest.mark.parametrize(("program", "message"), PROGRAM_ERRORS)
def test_malformed_programs_are_named(program, message):
    op = get_op("pointwise")
    attrs = op.check_attrs({"program": program, "params": [0.0, 0.0] * (len(program) // 4)})
    # a dead step's or unread input's shape could differ from the output's: refused
    with pytest.raises(ShapeError, match=message):
        infer_node(op, [meta((2, 3)), meta((1, 3))], attrs)


def test_steps_check_their_operands_as_the_layers_do():
    op = get_op("pointwise")
    attrs = op.check_attrs(encode_program([Step(StepKind.ELEMENTWISE, ELT.SUM, (0, 1))]))
    with pytest.raises(ShapeError, match=r"step 0 \(ELEMENTWISE\): .*broadcast"):
        infer_node(op, [meta((2, 3)), meta((4, 3))], attrs)
    with pytest.raises(ShapeError, match="reads INT32"):
        infer_node(op, [meta((2, 3), trt.int32), meta((2, 3), trt.int32)], attrs)
    cast = op.check_attrs(encode_program([Step(StepKind.CAST, trt.float16, (0,))]))
    (result,) = infer_node(op, [meta((2, 3), trt.int64)], cast)
    assert (result.dtype, result.shape) == (trt.float16, (2, 3))
