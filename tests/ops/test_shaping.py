"""Shaping layers (shuffle, concatenation, slice, gather, shape), built into plans and run,
against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_and_run, build_plan, constant, load, output
from tensorplan.network.layers.shaping import Permutation

RNG = np.random.default_rng(4321)


def profile(name, low, opt, high):
    def configure(builder, config):
        shapes = builder.create_optimization_profile()
        shapes.set_shape(name, low, opt, high)
        config.add_optimization_profile(shapes)

    return configure


def run_with_context(engine, context, inputs):
    """One execution in an existing context, after setting the input shapes."""
    device = engine._device
    keep = [torch.from_numpy(np.ascontiguousarray(a).copy()).to(device) for a in inputs.values()]
    for (name, array), tensor in zip(inputs.items(), keep, strict=True):
        assert context.set_input_shape(name, array.shape)
        assert context.set_tensor_address(name, tensor.data_ptr())
    outputs = {}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
            shape = tuple(context.get_tensor_shape(name))
            dtype = {trt.float32: torch.float32, trt.int64: torch.int64}[
                engine.get_tensor_dtype(name)
            ]
            outputs[name] = torch.empty(shape, dtype=dtype, device=device)
            assert context.set_tensor_address(name, outputs[name].data_ptr())
    assert context.execute_async_v3(0)
    return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}


def build_fails(define, logger, layer_name, message):
    assert build_plan(define, logger) is None
    assert any(layer_name in e and message in e for e in logger.errors), logger.errors


# -- shuffle ------------------------------------------------------------------------------


def shuffle_reference(x, first, reshape, second, placeholder=True):
    t = np.transpose(x, first[: x.ndim])
    if reshape is not None:
        dims = [t.shape[i] if d == 0 and placeholder else d for i, d in enumerate(reshape)]
        t = t.reshape(dims)
    return np.transpose(t, second[: t.ndim])


IDENTITY = tuple(range(8))


@pytest.mark.parametrize(
    ("shape", "first", "reshape", "second"),
    [
        ((2, 3, 4), (2, 0, 1), None, IDENTITY),
        ((2, 3, 4), IDENTITY, (0, -1), IDENTITY),
        ((2, 3, 4), IDENTITY, (-1, 4), (1, 0)),
        ((2, 3, 4), (1, 0, 2), (0, 0, 2, 2), (3, 2, 1, 0)),
        ((2, 3, 4), (0, 2, 1), (4, 6), (1, 0)),
        ((1, 1), IDENTITY, (), IDENTITY),
        ((6,), IDENTITY, (1, 2, 1, 3), (3, 0, 2, 1)),
        ((2, 1, 3, 1, 2), (4, 3, 2, 1, 0), (0, 0, 0, -1), (0, 2, 1, 3)),
        ((2, 3, 4), (2, 0, 1, 3, 4, 5, 6, 7), (4, 0, 3), IDENTITY),
    ],
    ids=[
        "transpose",
        "flatten",
        "infer_first",
        "all_three",
        "transpose_then_reshape",
        "to_scalar",
        "unsqueeze",
        "rank5",
        "eight_entry_permutation",
    ],
)
def test_shuffle(shape, first, reshape, second):
    x = RNG.standard_normal(shape).astype(np.float32)

    def define(network):
        layer = network.add_shuffle(network.add_input("x", trt.float32, shape))
        layer.first_transpose = first
        if reshape is not None:
            layer.reshape_dims = reshape
        layer.second_transpose = second
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_array_equal(y, shuffle_reference(x, first, reshape, second))


@pytest.mark.parametrize(
    ("shape", "reshape", "placeholder", "expected"),
    [
        ((0, 3), (0, 5), True, (0, 5)),
        ((2, 0, 3), (0, 5), False, (0, 5)),
        ((4, 3), (2, 0, 2), True, (2, 3, 2)),
        ((4, 3), (0, 0, 1), True, (4, 3, 1)),
    ],
    ids=["placeholder_copies_zero", "literal_zero", "placeholder_dim1", "placeholder_prefix"],
)
def test_zero_is_placeholder(shape, reshape, placeholder, expected):
    x = RNG.standard_normal(shape).astype(np.float32)

    def define(network):
        layer = network.add_shuffle(network.add_input("x", trt.float32, shape))
        layer.reshape_dims = reshape
        layer.zero_is_placeholder = placeholder
        assert tuple(layer.get_output(0).shape) == expected
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    assert y.shape == expected
    np.testing.assert_array_equal(y, x.reshape(expected))


def test_shuffle_properties_and_defaults():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    x = network.add_input("x", trt.float32, (2, 3, 4))
    layer = network.add_shuffle(x)
    assert layer.type == trt.LayerType.SHUFFLE
    assert isinstance(layer.first_transpose, Permutation)
    assert layer.first_transpose == Permutation() == tuple(range(8))
    assert layer.second_transpose == tuple(range(8))
    assert layer.reshape_dims is None
    assert layer.zero_is_placeholder is True
    assert tuple(layer.get_output(0).shape) == (2, 3, 4)
    order = Permutation([2, 0, 1])
    order[0], order[1], order[2] = 1, 2, 0
    layer.first_transpose = order
    assert list(layer.first_transpose) == [1, 2, 0] and len(layer.first_transpose) == 3
    layer.reshape_dims = trt.Dims([0, -1])
    assert isinstance(layer.reshape_dims, trt.Dims) and layer.reshape_dims == (0, -1)
    assert tuple(layer.get_output(0).shape) == (3, 8)
    assert str(Permutation([1, 0])) == "(1, 0)"
    with pytest.raises(ValueError, match="at most 8"):
        Permutation(range(9))


def test_pure_reshape_of_a_transposed_view_is_exact():
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        transposed = network.add_shuffle(inp)
        transposed.first_transpose = (2, 1, 0)
        flat = network.add_shuffle(transposed.get_output(0))
        flat.reshape_dims = (-1,)
        output(network, flat.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_array_equal(y, x.transpose(2, 1, 0).reshape(-1))


@pytest.mark.parametrize(
    ("shape", "attributes", "message"),
    [
        ((2, 3, 4), {"reshape_dims": (5, 5)}, "24 elements cannot be reshaped to [5, 5]"),
        ((2, 3, 4), {"reshape_dims": (5, -1)}, "do not divide"),
        ((2, 3, 4), {"reshape_dims": (-1, -1)}, "more than one -1"),
        ((2, 3, 4), {"reshape_dims": (0, 0, 0, 0)}, "copy dimension 3"),
        ((2, 3, 4), {"reshape_dims": (2, -2, 12)}, "below -1"),
        ((2, 0, 4), {"reshape_dims": (-1, 0)}, "cannot infer the -1"),
        ((2, 3, 4), {"first_transpose": (0, 0, 1)}, "first_transpose [0, 0, 1] is not a perm"),
        ((2, 3, 4), {"first_transpose": (1, 0)}, "fewer entries than the rank 3"),
        ((2, 3, 4), {"second_transpose": (3, 0, 1)}, "second_transpose [3, 0, 1]"),
    ],
    ids=[
        "volume",
        "indivisible",
        "two_wildcards",
        "placeholder_past_rank",
        "below_minus_one",
        "ambiguous_wildcard",
        "repeated_axis",
        "short_permutation",
        "second_out_of_range",
    ],
)
def test_invalid_shuffle_fails_to_build(shape, attributes, message, logger):
    def define(network):
        layer = network.add_shuffle(network.add_input("x", trt.float32, shape))
        layer.name = "bad_shuffle"
        for key, value in attributes.items():
            setattr(layer, key, value)
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_shuffle", message)


def test_reshape_dims_tensor_must_be_a_1d_integer_shape_tensor(logger):
    def define(network):
        layer = network.add_shuffle(network.add_input("x", trt.float32, (2, 6)))
        layer.name = "bad_dims"
        layer.set_input(1, constant(network, np.array([3.0, 4.0], dtype=np.float32)))
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_dims", "must be a 1-D INT32 or INT64 shape tensor")


def test_reshape_dims_from_an_input_need_its_values_in_a_profile(logger):
    def define(network):
        layer = network.add_shuffle(network.add_input("x", trt.float32, (2, 6)))
        layer.name = "data_dims"
        layer.set_input(1, network.add_input("dims", trt.int32, (2,)))
        output(network, layer.get_output(0))

    build_fails(define, logger, "['dims'] are shape tensors", "set_shape_input")


# -- the dynamic reshape chain and shape -----------------------------------------------------


def dynamic_flatten(network):
    """Reshape (N, 3, 4) to (N, 12) with N read from the input's shape at run time."""
    x = network.add_input("x", trt.float32, (-1, 3, 4))
    shape = network.add_shape(x).get_output(0)
    batch = network.add_gather(shape, constant(network, np.array([0], dtype=np.int32)), 0)
    twelve = constant(network, np.array([12], dtype=np.int64))
    dims = network.add_concatenation([batch.get_output(0), twelve]).get_output(0)
    layer = network.add_shuffle(x)
    layer.set_input(1, dims)
    output(network, layer.get_output(0))
    output(network, shape, "shape")
    return x, shape, batch.get_output(0), dims, layer


def test_dynamic_reshape_chain_runs_at_two_batch_sizes_in_one_context():
    def define(network):
        x, shape, batch, dims, layer = dynamic_flatten(network)
        assert layer.num_inputs == 2
        assert tuple(shape.shape) == (3,) and shape.dtype == trt.int64
        assert tuple(dims.shape) == (2,)
        assert tuple(layer.get_output(0).shape) == (-1, -1)
        assert dims.is_shape_tensor and batch.is_shape_tensor and shape.is_shape_tensor
        assert not x.is_shape_tensor

    plan = build_plan(define, configure=profile("x", (1, 3, 4), (2, 3, 4), (8, 3, 4)))
    assert plan is not None
    engine = load(plan)
    context = engine.create_execution_context()
    for batch in (2, 5):
        x = RNG.standard_normal((batch, 3, 4)).astype(np.float32)
        out = run_with_context(engine, context, {"x": x})
        np.testing.assert_array_equal(out["y"], x.reshape(batch, 12))
        np.testing.assert_array_equal(out["shape"], [batch, 3, 4])
        assert out["shape"].dtype == np.int64


def test_placeholder_reshape_keeps_known_dims_at_network_level():
    x = RNG.standard_normal((3, 3, 4)).astype(np.float32)

    def define(network):
        layer = network.add_shuffle(network.add_input("x", trt.float32, (-1, 3, 4)))
        layer.reshape_dims = (0, -1)
        assert tuple(layer.get_output(0).shape) == (-1, 12)
        transposed = network.add_shuffle(layer.get_output(0))
        transposed.first_transpose = (1, 0)
        assert tuple(transposed.get_output(0).shape) == (12, -1)
        output(network, transposed.get_output(0))

    configure = profile("x", (1, 3, 4), (2, 3, 4), (4, 3, 4))
    y = build_and_run(define, {"x": x}, configure=configure)["y"]
    np.testing.assert_array_equal(y, x.reshape(3, 12).T)


def test_shape_of_a_static_tensor_folds_to_a_constant():
    def define(network):
        x = network.add_input("x", trt.float32, (2, 3, 5, 7))
        shape = network.add_shape(x).get_output(0)
        assert shape.dtype == trt.int64 and tuple(shape.shape) == (4,)
        assert not shape.is_shape_tensor
        output(network, shape)

    x = np.zeros((2, 3, 5, 7), dtype=np.float32)
    y = build_and_run(define, {"x": x})["y"]
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [2, 3, 5, 7])


def test_shape_of_a_dynamic_tensor_is_computed_per_run():
    def define(network):
        x = network.add_input("x", trt.bool, (-1, 4, -1))
        shape = network.add_shape(x).get_output(0)
        assert tuple(shape.shape) == (3,)
        output(network, shape)

    configure = profile("x", (1, 4, 1), (2, 4, 2), (6, 4, 6))
    for dims in [(1, 4, 6), (5, 4, 2)]:
        y = build_and_run(define, {"x": np.ones(dims, dtype=bool)}, configure=configure)["y"]
        np.testing.assert_array_equal(y, dims)


# -- concatenation ------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concatenation_along_each_axis(axis):
    sizes = (1, 3, 2)
    arrays = []
    for size in sizes:
        shape = [2, 3, 4]
        shape[axis] = size
        arrays.append(RNG.standard_normal(shape).astype(np.float32))

    def define(network):
        inputs = [network.add_input(f"x{i}", trt.float32, a.shape) for i, a in enumerate(arrays)]
        layer = network.add_concatenation(inputs)
        layer.axis = axis
        output(network, layer.get_output(0))

    y = build_and_run(define, {f"x{i}": a for i, a in enumerate(arrays)})["y"]
    np.testing.assert_array_equal(y, np.concatenate(arrays, axis=axis))


@pytest.mark.parametrize(
    ("rank", "axis"), [(1, 0), (2, 0), (3, 0), (4, 1), (5, 2)], ids=lambda v: str(v)
)
def test_concatenation_default_axis_is_rank_minus_three(rank, axis):
    a = RNG.standard_normal((2,) * rank).astype(np.float32)
    b = RNG.standard_normal((2,) * rank).astype(np.float32)

    def define(network):
        layer = network.add_concatenation(
            [
                network.add_input("a", trt.float32, a.shape),
                network.add_input("b", trt.float32, b.shape),
            ]
        )
        assert layer.type == trt.LayerType.CONCATENATION
        assert layer.axis == axis and layer.num_inputs == 2
        output(network, layer.get_output(0))

    y = build_and_run(define, {"a": a, "b": b})["y"]
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=axis))


def test_concatenation_of_one_input_and_of_dynamic_inputs():
    a = RNG.standard_normal((3, 2)).astype(np.float32)
    b = RNG.standard_normal((3, 5)).astype(np.float32)

    def define(network):
        x = network.add_input("a", trt.float32, (-1, 2))
        y = network.add_input("b", trt.float32, (-1, -1))
        single = network.add_concatenation([x])
        both = network.add_concatenation([x, y])
        both.axis = 1
        assert tuple(single.get_output(0).shape) == (-1, 2)
        assert tuple(both.get_output(0).shape) == (-1, -1)
        output(network, single.get_output(0), "single")
        output(network, both.get_output(0), "both")

    def configure(builder, config):
        shapes = builder.create_optimization_profile()
        shapes.set_shape("a", (1, 2), (3, 2), (4, 2))
        shapes.set_shape("b", (1, 1), (3, 5), (4, 8))
        config.add_optimization_profile(shapes)

    out = build_and_run(define, {"a": a, "b": b}, configure=configure)
    np.testing.assert_array_equal(out["single"], a)
    np.testing.assert_array_equal(out["both"], np.concatenate([a, b], axis=1))


def test_concatenation_axis_must_not_be_negative():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    layer = network.add_concatenation([network.add_input("x", trt.float32, (2, 3))])
    with pytest.raises(ValueError, match="at least 0"):
        layer.axis = -1
    assert layer.axis == 0


@pytest.mark.parametrize(
    ("shapes", "dtypes", "axis", "message"),
    [
        ([(2, 3), (2, 4)], [trt.float32] * 2, 0, "dimension 1 differs in shapes [2, 3], [2, 4]"),
        ([(2, 3), (2, 3, 1)], [trt.float32] * 2, 0, "same rank"),
        ([(2, 3), (2, 3)], [trt.float32, trt.int32], 0, "same type, got FLOAT, INT32"),
        ([(2, 3), (2, 3)], [trt.float32] * 2, 2, "axis 2 is out of range"),
    ],
    ids=["shapes", "ranks", "types", "axis"],
)
def test_invalid_concatenation_fails_to_build(shapes, dtypes, axis, message, logger):
    def define(network):
        inputs = [
            network.add_input(f"x{i}", dtype, shape)
            for i, (dtype, shape) in enumerate(zip(dtypes, shapes, strict=True))
        ]
        layer = network.add_concatenation(inputs)
        layer.name = "bad_concat"
        layer.axis = axis
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_concat", message)


# -- slice --------------------------------------------------------------------------------

PAD_MODES = {
    trt.SampleMode.WRAP: "wrap",
    trt.SampleMode.CLAMP: "edge",
    trt.SampleMode.REFLECT: "reflect",
    trt.SampleMode.FILL: "constant",
}


def slice_reference(x, start, size, stride, mode=trt.SampleMode.STRICT_BOUNDS, fill=0.0):
    """Pad far enough with numpy's matching pad mode, then index the coordinates."""
    margin = 64
    if mode == trt.SampleMode.STRICT_BOUNDS:
        padded = x
        margin = 0
    elif mode == trt.SampleMode.FILL:
        padded = np.pad(x, margin, mode="constant", constant_values=fill)
    else:
        padded = np.pad(x, margin, mode=PAD_MODES[mode])
    coords = [margin + b + np.arange(n) * s for b, n, s in zip(start, size, stride, strict=True)]
    return padded[np.ix_(*coords)]


@pytest.mark.parametrize(
    ("shape", "start", "size", "stride"),
    [
        ((5, 6), (1, 0), (2, 3), (2, 2)),
        ((4, 5), (3, 4), (4, 5), (-1, -1)),
        ((4, 5), (2, 1), (3, 2), (0, 3)),
        ((3, 4, 5), (0, 1, 4), (3, 2, 2), (1, 2, -3)),
        ((4, 5), (0, 0), (0, 5), (1, 1)),
    ],
    ids=["positive", "reverse", "zero_stride", "mixed", "empty"],
)
def test_slice_in_bounds(shape, start, size, stride):
    x = RNG.standard_normal(shape).astype(np.float32)

    def define(network):
        layer = network.add_slice(network.add_input("x", trt.float32, shape), start, size, stride)
        assert layer.mode == trt.SampleMode.STRICT_BOUNDS and layer.axes is None
        assert layer.start == start and layer.shape == size and layer.stride == stride
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_array_equal(y, slice_reference(x, start, size, stride))


def test_slice_examples_from_the_tensorrt_docs():
    x = np.array([[0, 2, 4], [1, 3, 5]], dtype=np.int32)

    def define(network):
        inp = network.add_input("x", trt.int32, x.shape)
        output(network, network.add_slice(inp, (1, 0), (1, 2), (1, 2)).get_output(0), "plain")
        with_axes = network.add_slice(inp, (1,), (2,), (1,))
        with_axes.axes = (1,)
        assert with_axes.axes == (1,)
        output(network, with_axes.get_output(0), "axes")
        negative_axes = network.add_slice(inp, (1,), (2,), (1,))
        negative_axes.axes = (-1,)
        output(network, negative_axes.get_output(0), "negative_axes")

    out = build_and_run(define, {"x": x})
    np.testing.assert_array_equal(out["plain"], [[1, 5]])
    np.testing.assert_array_equal(out["axes"], [[2, 4], [3, 5]])
    np.testing.assert_array_equal(out["negative_axes"], [[2, 4], [3, 5]])


@pytest.mark.parametrize("mode", list(PAD_MODES), ids=lambda m: m.name)
@pytest.mark.parametrize(
    ("shape", "start", "size", "stride"),
    [
        ((4, 5), (-3, 2), (9, 6), (1, 1)),
        ((4, 5), (6, -7), (5, 4), (-2, 3)),
        ((1, 3), (-2, 5), (4, 7), (1, -1)),
    ],
    ids=["around", "far_strided", "single_row"],
)
def test_slice_sample_modes_read_past_the_edges(mode, shape, start, size, stride):
    x = RNG.standard_normal(shape).astype(np.float32)
    fill_value = np.array(7.5, dtype=np.float32)

    def define(network):
        layer = network.add_slice(network.add_input("x", trt.float32, shape), start, size, stride)
        layer.mode = mode
        if mode == trt.SampleMode.FILL:
            layer.set_input(4, constant(network, fill_value))
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    expected = slice_reference(x, start, size, stride, mode, fill=float(fill_value))
    np.testing.assert_array_equal(y, expected)


def test_fill_without_a_value_fills_zeros_and_fills_empty_inputs():
    x = RNG.standard_normal((2, 3)).astype(np.float32)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        layer = network.add_slice(inp, (-1, 1), (4, 3), (1, 1))
        layer.mode = trt.SampleMode.FILL
        output(network, layer.get_output(0))
        empty = network.add_slice(inp, (0, 0), (0, 3), (1, 1)).get_output(0)
        from_empty = network.add_slice(empty, (0, 0), (2, 2), (1, 1))
        from_empty.mode = trt.SampleMode.FILL
        from_empty.set_input(4, constant(network, np.array([2.5], dtype=np.float32)))
        output(network, from_empty.get_output(0), "from_empty")

    out = build_and_run(define, {"x": x})
    expected = slice_reference(x, (-1, 1), (4, 3), (1, 1), trt.SampleMode.FILL)
    np.testing.assert_array_equal(out["y"], expected)
    np.testing.assert_array_equal(out["from_empty"], np.full((2, 2), 2.5, dtype=np.float32))


def test_dynamic_slice_parameters_from_shape_tensors():
    """Drop the first row and reverse the columns of an (N, M) input, N and M dynamic."""

    def define(network):
        x = network.add_input("x", trt.float32, (-1, -1))
        shape = network.add_shape(x).get_output(0)
        ops = trt.ElementWiseOperation
        size = network.add_elementwise(shape, constant(network, np.array([1, 0])), ops.SUB)
        last_column = network.add_elementwise(shape, constant(network, np.array([0, 1])), ops.PROD)
        start = network.add_elementwise(
            last_column.get_output(0), constant(network, np.array([1, -1])), ops.SUM
        )
        layer = network.add_slice(x, (0, 0), (0, 0), (0, 0))
        layer.set_input(1, start.get_output(0))
        layer.set_input(2, size.get_output(0))
        layer.set_input(3, constant(network, np.array([1, -1], dtype=np.int32)))
        assert layer.num_inputs == 4
        assert tuple(layer.get_output(0).shape) == (-1, -1)
        assert size.get_output(0).is_shape_tensor
        output(network, layer.get_output(0))

    plan = build_plan(define, configure=profile("x", (2, 1), (3, 4), (6, 8)))
    assert plan is not None
    engine = load(plan)
    context = engine.create_execution_context()
    for shape in [(3, 4), (6, 2)]:
        x = RNG.standard_normal(shape).astype(np.float32)
        y = run_with_context(engine, context, {"x": x})["y"]
        np.testing.assert_array_equal(y, x[1:, ::-1])


def test_dynamic_axes_give_unknown_dims_until_run_time():
    x = RNG.standard_normal((3, 4)).astype(np.float32)

    def define(network):
        inp = network.add_input("x", trt.float32, (-1, 4))
        layer = network.add_slice(inp, (1,), (2,), (2,))
        batch = network.add_gather(
            network.add_shape(inp).get_output(0), constant(network, np.array([0])), 0
        )
        # min(N, 1) is 1 at run time, but not known while N is dynamic.
        axis_one = network.add_elementwise(
            batch.get_output(0), constant(network, np.array([1])), trt.ElementWiseOperation.MIN
        )
        layer.set_input(5, axis_one.get_output(0))
        assert tuple(layer.get_output(0).shape) == (-1, -1)
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x}, configure=profile("x", (1, 4), (3, 4), (5, 4)))["y"]
    np.testing.assert_array_equal(y, x[:, 1:4:2])


@pytest.mark.parametrize(
    ("start", "size", "stride", "configure_layer", "message"),
    [
        ((0, 2), (2, 3), (1, 1), None, "reads coordinates 2 to 4 of axis 1, which has size 4"),
        ((-1, 0), (2, 2), (1, 1), None, "reads coordinates -1 to 0 of axis 0"),
        ((1, 0), (3, 2), (-1, 1), None, "coordinates 1 to -1 of axis 0"),
        ((0, 0), (2, 2), (1, 1), "fill_in_wrong_mode", "needs SampleMode.FILL, not CLAMP"),
        ((0, 0), (2, 2), (1, 1), "fill_type", "the fill value must have the data's type"),
        ((0,), (2,), (1,), None, "start has 1 values but 2 axes are sliced"),
        ((0, 0), (2, -1), (1, 1), None, "negative sizes"),
        ((0,), (2,), (1,), "axes_twice", "name an axis twice"),
        ((0,), (2,), (1,), "axis_past_rank", "slice axis 2 is out of range for rank 2"),
    ],
    ids=[
        "past_end",
        "negative_start",
        "reverse_past_start",
        "fill_wrong_mode",
        "fill_type",
        "param_length",
        "negative_size",
        "axes_twice",
        "axis_past_rank",
    ],
)
def test_invalid_slice_fails_to_build(start, size, stride, configure_layer, message, logger):
    def define(network):
        layer = network.add_slice(network.add_input("x", trt.float32, (3, 4)), start, size, stride)
        layer.name = "bad_slice"
        if configure_layer == "fill_in_wrong_mode":
            layer.mode = trt.SampleMode.CLAMP
            layer.set_input(4, constant(network, np.array(0.0, dtype=np.float32)))
        elif configure_layer == "fill_type":
            layer.mode = trt.SampleMode.FILL
            layer.set_input(4, constant(network, np.array(0, dtype=np.int32)))
        elif configure_layer == "axes_twice":
            layer.start, layer.shape, layer.stride = (0, 0), (2, 2), (1, 1)
            layer.axes = (1, -1)
        elif configure_layer == "axis_past_rank":
            layer.axes = (2,)
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_slice", message)


def test_out_of_bounds_strict_slice_of_a_dynamic_input_is_refused_at_run_time(logger):
    def define(network):
        layer = network.add_slice(
            network.add_input("x", trt.float32, (-1, 4)), (0, 0), (3, 4), (1, 1)
        )
        assert tuple(layer.get_output(0).shape) == (3, 4)
        output(network, layer.get_output(0))

    plan = build_plan(define, configure=profile("x", (3, 4), (4, 4), (5, 4)))
    assert plan is not None
    engine = load(plan)
    context = engine.create_execution_context()
    x = RNG.standard_normal((4, 4)).astype(np.float32)
    np.testing.assert_array_equal(run_with_context(engine, context, {"x": x})["y"], x[:3])

    plan = build_plan(define, logger, configure=profile("x", (2, 4), (4, 4), (5, 4)))
    assert plan is None
    assert any(
        "min shapes" in e and "reads coordinates 0 to 2 of axis 0" in e for e in logger.errors
    )


# -- gather -------------------------------------------------------------------------------


def normalized(indices, size):
    """ONNX's negative indices, and a mask of those in range."""
    wrapped = np.where(indices < 0, indices + size, indices)
    return np.clip(wrapped, 0, max(size - 1, 0)), (wrapped >= 0) & (wrapped < size)


@pytest.mark.parametrize("index_type", [np.int32, np.int64])
@pytest.mark.parametrize(("axis", "indices_shape"), [(0, (2, 3)), (1, (4,)), (2, ()), (2, (2, 2))])
def test_gather_default_mode(axis, indices_shape, index_type):
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    size = x.shape[axis]
    indices = np.asarray(RNG.integers(-size - 2, size + 2, indices_shape), dtype=index_type)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        layer = network.add_gather(inp, constant(network, indices), axis)
        assert layer.mode == trt.GatherMode.DEFAULT
        assert layer.axis == axis and layer.num_elementwise_dims == 0
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    clipped, valid = normalized(indices, size)
    expected = np.take(x, clipped, axis=axis)
    mask = valid.reshape((1,) * axis + valid.shape + (1,) * (x.ndim - axis - 1))
    np.testing.assert_array_equal(y, np.where(mask, expected, 0))


def test_gather_out_of_range_indices_give_zeros():
    x = np.arange(1, 7, dtype=np.int64).reshape(2, 3)
    indices = np.array([-4, -3, -1, 0, 2, 3, 1000], dtype=np.int32)

    def define(network):
        inp = network.add_input("x", trt.int64, x.shape)
        layer = network.add_gather(inp, network.add_input("i", trt.int32, indices.shape), 1)
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x, "i": indices})["y"]
    np.testing.assert_array_equal(y, [[0, 1, 3, 1, 3, 0, 0], [0, 4, 6, 4, 6, 0, 0]])


@pytest.mark.parametrize(
    ("data_shape", "indices_shape", "axis"),
    [((3, 4, 5), (3, 2), 1), ((1, 4, 5), (3, 2, 2), 2), ((3, 4, 5), (1, 6), 1)],
    ids=["same_batch", "broadcast_data", "broadcast_indices"],
)
def test_gather_default_mode_with_an_elementwise_dim(data_shape, indices_shape, axis):
    x = RNG.standard_normal(data_shape).astype(np.float32)
    size = x.shape[axis]
    indices = RNG.integers(-size, size + 1, indices_shape).astype(np.int32)

    def define(network):
        layer = network.add_gather_v2(
            network.add_input("x", trt.float32, x.shape),
            network.add_input("i", trt.int32, indices.shape),
            trt.GatherMode.DEFAULT,
        )
        layer.axis = axis
        layer.num_elementwise_dims = 1
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x, "i": indices})["y"]
    batch = max(x.shape[0], indices.shape[0])
    rows = []
    for b in range(batch):
        data = x[min(b, x.shape[0] - 1)]
        clipped, valid = normalized(indices[min(b, indices.shape[0] - 1)], size)
        picked = np.take(data, clipped, axis=axis - 1)
        mask = valid.reshape((1,) * (axis - 1) + valid.shape + (1,) * (data.ndim - axis))
        rows.append(np.where(mask, picked, 0))
    np.testing.assert_array_equal(y, np.stack(rows))


@pytest.mark.parametrize(
    ("axis", "indices_shape"), [(0, (2, 4, 5)), (1, (3, 6, 5)), (2, (3, 2, 2))]
)
def test_gather_element_mode(axis, indices_shape):
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    size = x.shape[axis]
    indices = RNG.integers(-size - 1, size + 1, indices_shape).astype(np.int64)

    def define(network):
        layer = network.add_gather_v2(
            network.add_input("x", trt.float32, x.shape),
            network.add_input("i", trt.int64, indices.shape),
            trt.GatherMode.ELEMENT,
        )
        layer.axis = axis
        assert layer.mode == trt.GatherMode.ELEMENT
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x, "i": indices})["y"]
    clipped, valid = normalized(indices, size)
    region = x[
        tuple(slice(0, n) if d != axis else slice(None) for d, n in enumerate(indices_shape))
    ]
    expected = np.take_along_axis(region, clipped, axis=axis)
    np.testing.assert_array_equal(y, np.where(valid, expected, 0))


def gather_nd_reference(x, indices, batch):
    out_shape = indices.shape[:-1] + x.shape[batch + indices.shape[-1] :]
    out = np.zeros(out_shape, dtype=x.dtype)
    for position in np.ndindex(*indices.shape[:-1]):
        source = x[position[:batch]]
        target = indices[position]
        limits = source.shape[: len(target)]
        wrapped = tuple(
            int(t) + n if t < 0 else int(t) for t, n in zip(target, limits, strict=True)
        )
        if all(0 <= t < n for t, n in zip(wrapped, limits, strict=True)):
            out[position] = source[wrapped]
    return out


@pytest.mark.parametrize(
    ("data_shape", "indices_shape", "batch"),
    [
        ((3, 4, 5), (6, 2), 0),
        ((3, 4, 5), (2, 2, 3), 0),
        ((3, 4, 5), (3, 1), 0),
        ((3, 4, 5), (3, 4, 1), 1),
        ((3, 4, 5), (3, 2, 2), 1),
        ((3, 4, 5), (3, 4, 1), 2),
        ((3, 4), (2, 0), 0),
    ],
    ids=["pairs", "full_depth", "rows", "batched_rows", "batched_elements", "two_batch", "depth0"],
)
def test_gather_nd_mode(data_shape, indices_shape, batch):
    x = RNG.standard_normal(data_shape).astype(np.float32)
    indices = RNG.integers(-5, 6, indices_shape).astype(np.int32)

    def define(network):
        layer = network.add_gather_v2(
            network.add_input("x", trt.float32, x.shape),
            network.add_input("i", trt.int32, indices.shape),
            trt.GatherMode.ND,
        )
        layer.num_elementwise_dims = batch
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x, "i": indices})["y"]
    np.testing.assert_array_equal(y, gather_nd_reference(x, indices, batch))


def test_gather_with_dynamic_data_and_indices():
    def define(network):
        layer = network.add_gather(
            network.add_input("x", trt.float32, (-1, 4)),
            network.add_input("i", trt.int32, (-1,)),
            0,
        )
        assert tuple(layer.get_output(0).shape) == (-1, 4)
        output(network, layer.get_output(0))

    def configure(builder, config):
        shapes = builder.create_optimization_profile()
        shapes.set_shape("x", (1, 4), (3, 4), (8, 4))
        shapes.set_shape("i", (1,), (2,), (6,))
        config.add_optimization_profile(shapes)

    x = RNG.standard_normal((5, 4)).astype(np.float32)
    indices = np.array([4, -5, 2], dtype=np.int32)
    y = build_and_run(define, {"x": x, "i": indices}, configure=configure)["y"]
    np.testing.assert_array_equal(y, x[[4, 0, 2]])


@pytest.mark.parametrize(
    ("mode", "data_shape", "indices_shape", "index_type", "attributes", "message"),
    [
        (trt.GatherMode.DEFAULT, (3, 4), (2,), trt.float32, {}, "indices must be INT32 or INT64"),
        (trt.GatherMode.DEFAULT, (3, 4), (2,), trt.int32, {"axis": 2}, "axis 2 is out of range"),
        (trt.GatherMode.DEFAULT, (3, 4), (3,), trt.int32, {"num_elementwise_dims": 2}, "0 or 1"),
        (trt.GatherMode.DEFAULT, (3, 4), (3,), trt.int32, {"num_elementwise_dims": 1}, "axis 0 is"),
        (
            trt.GatherMode.DEFAULT,
            (3, 4),
            (2, 2),
            trt.int32,
            {"num_elementwise_dims": 1, "axis": 1},
            "cannot be broadcast",
        ),
        (trt.GatherMode.ELEMENT, (3, 4), (3,), trt.int32, {}, "must have the rank of the data"),
        (trt.GatherMode.ELEMENT, (3, 4), (3, 5), trt.int32, {}, "larger than the data"),
        (
            trt.GatherMode.ELEMENT,
            (3, 4),
            (3, 4),
            trt.int32,
            {"num_elementwise_dims": 1},
            "must be 0 in ELEMENT mode",
        ),
        (trt.GatherMode.ND, (3, 4), (2, 3), trt.int32, {}, "index 3 dimensions"),
        (trt.GatherMode.ND, (3, 4), (2, 1), trt.int32, {"num_elementwise_dims": 2}, "less than"),
        (trt.GatherMode.ND, (3, 4), (2, 1), trt.int32, {"num_elementwise_dims": 1}, "differs"),
    ],
    ids=[
        "float_indices",
        "axis",
        "two_elementwise_dims",
        "elementwise_axis",
        "elementwise_broadcast",
        "element_rank",
        "element_larger",
        "element_elementwise",
        "nd_depth",
        "nd_elementwise_rank",
        "nd_batch_mismatch",
    ],
)
def test_invalid_gather_fails_to_build(
    mode, data_shape, indices_shape, index_type, attributes, message, logger
):
    def define(network):
        layer = network.add_gather_v2(
            network.add_input("x", trt.float32, data_shape),
            network.add_input("i", index_type, indices_shape),
            mode,
        )
        layer.name = "bad_gather"
        for key, value in attributes.items():
            setattr(layer, key, value)
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_gather", message)


def test_gather_axis_and_elementwise_dims_must_not_be_negative(logger):
    network = trt.Builder(logger).create_network()
    data = network.add_input("x", trt.float32, (3, 4))
    indices = network.add_input("i", trt.int32, (2,))
    assert network.add_gather(data, indices, -1) is None
    assert len(logger.errors) == 1 and "axis" in logger.errors[0]
    layer = network.add_gather(data, indices, 1)
    with pytest.raises(ValueError, match="at least 0"):
        layer.num_elementwise_dims = -1


# -- every data type ----------------------------------------------------------------------

TYPES = [
    trt.float32,
    trt.float16,
    trt.bfloat16,
    trt.int8,
    trt.int32,
    trt.int64,
    trt.uint8,
    trt.bool,
    trt.fp8,
]


@pytest.mark.parametrize("dtype", TYPES, ids=lambda t: t.name)
def test_every_layer_moves_every_type(dtype):
    """Values 0..7 survive every type (booleans become 0/1), so results compare exactly."""
    x = RNG.integers(0, 8, (3, 4)).astype(np.float32)
    indices = np.array([2, -1, 0], dtype=np.int32)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        data, again = (network.add_cast(inp, dtype).get_output(0) for _ in range(2))
        shuffle = network.add_shuffle(data)
        shuffle.first_transpose = (1, 0)
        shuffle.reshape_dims = (2, -1)
        concat = network.add_concatenation([data, again])
        concat.axis = 1
        sliced = network.add_slice(data, (3, -1), (2, 6), (-2, 1))
        sliced.mode = trt.SampleMode.WRAP
        filled = network.add_slice(data, (-1, 0), (5, 4), (1, 1))
        filled.mode = trt.SampleMode.FILL
        gathered = network.add_gather(data, network.add_input("i", trt.int32, (3,)), 1)
        element = network.add_gather_v2(
            data, constant(network, np.array([[5, 0]] * 3)), trt.GatherMode.ELEMENT
        )
        element.axis = 1
        layers = {"shuffle": shuffle, "concat": concat, "slice": sliced, "fill": filled}
        layers.update({"gather": gathered, "element": element})
        for name, layer in layers.items():
            assert layer.get_output(0).dtype == dtype
            output(network, network.add_cast(layer.get_output(0), trt.float32).get_output(0), name)

    out = build_and_run(define, {"x": x, "i": indices})
    v = (x != 0).astype(np.float32) if dtype == trt.bool else x
    np.testing.assert_array_equal(out["shuffle"], v.T.reshape(2, -1))
    np.testing.assert_array_equal(out["concat"], np.concatenate([v, v], axis=1))
    wrap = slice_reference(v, (3, -1), (2, 6), (-2, 1), trt.SampleMode.WRAP)
    np.testing.assert_array_equal(out["slice"], wrap)
    np.testing.assert_array_equal(
        out["fill"], slice_reference(v, (-1, 0), (5, 4), (1, 1), trt.SampleMode.FILL)
    )
    np.testing.assert_array_equal(out["gather"], v[:, [2, 3, 0]])
    np.testing.assert_array_equal(out["element"], np.stack([[0, r[0]] for r in v]))
