"""Shuffles that only reshape, or only transpose for kernels that read strided tensors, run
as views of their inputs: no slot, no kernel, and the input lives as long as the view is
read. Everything else still moves data, and the results never change."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_plan, constant, load, output, run

RNG = np.random.default_rng(3)
X = RNG.standard_normal((2, 6, 8)).astype(np.float32)
W = RNG.standard_normal((8, 8)).astype(np.float32)
OFFSET = RNG.standard_normal((1, 1, 1, 4)).astype(np.float32)


def split_heads(network, x):
    """(2, 6, 8) @ W -> reshape (2, 6, 2, 4) -> transpose (2, 2, 6, 4): the heads of attention."""
    projected = network.add_matrix_multiply(
        x, trt.MatrixOperation.NONE, constant(network, W[None]), trt.MatrixOperation.NONE
    ).get_output(0)
    reshape = network.add_shuffle(projected)
    reshape.reshape_dims = (2, 6, 2, 4)
    transpose = network.add_shuffle(reshape.get_output(0))
    transpose.first_transpose = (0, 2, 1, 3)
    return transpose.get_output(0)


def heads_reference():
    return (X @ W).reshape(2, 6, 2, 4).transpose(0, 2, 1, 3)


def shuffles(engine) -> tuple[int, int]:
    """(shuffle nodes, those of them that are views)."""
    program = engine._program
    nodes = [node for node in program.graph.nodes if node.op == "shuffle"]
    return len(nodes), sum(node.outputs[0] in program.memory.views for node in nodes)


def test_reshape_and_transpose_read_by_elementwise_are_views():
    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        heads = split_heads(network, x)
        summed = network.add_elementwise(
            heads, constant(network, OFFSET), trt.ElementWiseOperation.SUM
        )
        output(network, summed.get_output(0))

    engine = load(build_plan(define))
    assert shuffles(engine) == (2, 2)
    np.testing.assert_allclose(run(engine, {"x": X})["y"], heads_reference() + OFFSET, rtol=1e-5)


def test_transpose_read_by_a_matrix_multiply_is_copied():
    """A matrix multiply wants dense operands: the transpose stays a kernel; the reshape before
    it is still a view."""

    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        heads = split_heads(network, x)
        square = network.add_matrix_multiply(
            heads, trt.MatrixOperation.NONE, heads, trt.MatrixOperation.TRANSPOSE
        )
        output(network, square.get_output(0))

    engine = load(build_plan(define))
    assert shuffles(engine) == (2, 1)
    heads = heads_reference()
    expected = heads @ heads.transpose(0, 1, 3, 2)
    np.testing.assert_allclose(run(engine, {"x": X})["y"], expected, rtol=1e-4, atol=1e-5)


def test_reshape_of_a_transposed_view_moves_the_data():
    """Merging heads back: transpose (a view, read by a shuffle) then reshape (a copy)."""

    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        heads = split_heads(network, x)
        back = network.add_shuffle(heads)
        back.first_transpose = (0, 2, 1, 3)
        merged = network.add_shuffle(back.get_output(0))
        merged.reshape_dims = (2, 6, 8)
        doubled = network.add_elementwise(
            merged.get_output(0), merged.get_output(0), trt.ElementWiseOperation.SUM
        )
        output(network, doubled.get_output(0))

    engine = load(build_plan(define))
    assert shuffles(engine) == (4, 3)
    np.testing.assert_allclose(run(engine, {"x": X})["y"], 2 * (X @ W), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_views_with_a_dynamic_batch_and_outputs_keep_their_own_memory(batch):
    """A reshape by a run-time shape is a view too; a shuffle that is an engine output is
    written to the user's memory as always."""

    def define(network):
        x = network.add_input("x", trt.float32, (-1, 6, 8))
        reshape = network.add_shuffle(x)
        reshape.reshape_dims = (0, 12, 4)
        relu = network.add_activation(reshape.get_output(0), trt.ActivationType.RELU)
        output(network, relu.get_output(0))
        flat = network.add_shuffle(relu.get_output(0))
        flat.reshape_dims = (0, 48)
        output(network, flat.get_output(0), "flat")

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 6, 8), (2, 6, 8), (4, 6, 8))
        config.add_optimization_profile(profile)

    engine = load(build_plan(define, configure=configure))
    assert shuffles(engine) == (2, 1)
    x = RNG.standard_normal((batch, 6, 8)).astype(np.float32)
    got = run(engine, {"x": x})
    np.testing.assert_array_equal(got["y"], np.maximum(x, 0).reshape(batch, 12, 4))
    np.testing.assert_array_equal(got["flat"], np.maximum(x, 0).reshape(batch, 48))


def test_shape_arithmetic_only_the_host_reads_is_never_copied_to_the_device():
    """reshape(x, concat(shape(x)[0:1], [12, 4])): the shape values stay on the host and the
    reshape is a view, so an execution runs the activation's kernel and nothing else."""

    def define(network):
        x = network.add_input("x", trt.float32, (-1, 6, 8))
        batch = network.add_slice(network.add_shape(x).get_output(0), (0,), (1,), (1,))
        rest = network.add_constant((2,), np.array([12, 4], dtype=np.int64)).get_output(0)
        dims = network.add_concatenation([batch.get_output(0), rest]).get_output(0)
        reshape = network.add_shuffle(x)
        reshape.set_input(1, dims)
        relu = network.add_activation(reshape.get_output(0), trt.ActivationType.RELU)
        output(network, relu.get_output(0))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 6, 8), (2, 6, 8), (4, 6, 8))
        config.add_optimization_profile(profile)

    engine = load(build_plan(define, configure=configure))
    x = RNG.standard_normal((3, 6, 8)).astype(np.float32)
    np.testing.assert_array_equal(run(engine, {"x": x})["y"], np.maximum(x, 0).reshape(3, 12, 4))
    program, device = engine._program, engine._device
    executor = engine.create_execution_context()._executor
    arena = torch.empty(program.memory.arena_size, dtype=torch.uint8, device=device)
    (x_id,), (y_id,) = program.graph.inputs, program.graph.outputs
    io = {x_id: torch.from_numpy(x).to(device), y_id: torch.empty(3, 12, 4, device=device)}
    steps = executor.steps(executor.infer([x.shape]), arena, io)
    assert [step.name for step in steps] == [program.graph.nodes[-1].name]
