"""IRNNLayer (ONNX RNN, GRU, LSTM) built into plans and run, against ONNX's reference
evaluator and a per-sequence numpy reference written from the ONNX specification."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import tensorplan as trt
from helpers import build_and_run, build_plan, dtype_of
from tensorplan.ops.recurrent import onnx_activations

RNG = np.random.default_rng(2024)
Mode = trt.RNNOperation
Act = trt.RNNActivation
GATES = {Mode.RELU: 1, Mode.TANH: 1, Mode.GRU: 3, Mode.LSTM: 4}
ONNX_OP = {Mode.TANH: "RNN", Mode.GRU: "GRU", Mode.LSTM: "LSTM"}
DIRECTIONS = {
    "forward": trt.RNNDirection.FORWARD,
    "reverse": trt.RNNDirection.REVERSE,
    "bidirectional": trt.RNNDirection.BIDIRECTIONAL,
}
INPUT_NAMES = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
OPTIONAL_KEYWORDS = ("bias", "sequence_lens", "initial_h", "initial_c", "peepholes")


def rnn_network(mode, arrays, constants=("W", "R", "B", "P"), **properties):
    """An RNN layer over `arrays` (ONNX input names); W, R, B and P as constants, the others
    as network inputs; its outputs Y, Y_h (and Y_c) marked."""

    def define(network):
        tensors = {}
        for name, array in arrays.items():
            if name in constants:
                weights = trt.Weights(np.ascontiguousarray(array))
                tensors[name] = network.add_constant(array.shape, weights).get_output(0)
            else:
                tensors[name] = network.add_input(name, dtype_of(array), array.shape)
        optional = {
            keyword: tensors.get(name)
            for keyword, name in zip(OPTIONAL_KEYWORDS, INPUT_NAMES[3:], strict=True)
        }
        layer = network.add_rnn(tensors["X"], mode, tensors["W"], tensors["R"], **optional)
        for key, value in properties.items():
            setattr(layer, key, value)
        for index, name in enumerate(("Y", "Y_h", "Y_c")[: layer.num_outputs]):
            layer.get_output(index).name = name
            network.mark_output(layer.get_output(index))

    return define


def run_rnn(mode, arrays, **properties):
    feeds = {
        k: v for k, v in arrays.items() if k in ("X", "sequence_lens", "initial_h", "initial_c")
    }
    return build_and_run(rnn_network(mode, arrays, **properties), feeds)


# -- the references -------------------------------------------------------------------------


def onnx_reference(op_type, arrays, **attributes):
    """ONNX's ReferenceEvaluator on one node with every output."""
    names = [
        name if name in arrays else "" for name in INPUT_NAMES[: 8 if op_type == "LSTM" else 6]
    ]
    while names and not names[-1]:
        names.pop()
    outputs = ["Y", "Y_h", "Y_c"] if op_type == "LSTM" else ["Y", "Y_h"]
    node = helper.make_node(op_type, names, outputs, **attributes)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(arrays[n].dtype), None)
            for n in names
            if n
        ],
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    results = ReferenceEvaluator(model).run(None, {n: arrays[n] for n in names if n})
    return dict(zip(outputs, results, strict=True))


NUMPY_ACTIVATIONS = {
    Act.RELU: lambda x, a, b: np.maximum(x, 0),
    Act.TANH: lambda x, a, b: np.tanh(x),
    Act.SIGMOID: lambda x, a, b: 0.5 * (1 + np.tanh(x / 2)),
    Act.AFFINE: lambda x, a, b: a * x + b,
    Act.LEAKY_RELU: lambda x, a, b: np.where(x >= 0, x, a * x),
    Act.THRESHOLDED_RELU: lambda x, a, b: np.where(x > a, x, 0),
    Act.SCALED_TANH: lambda x, a, b: a * np.tanh(b * x),
    Act.HARD_SIGMOID: lambda x, a, b: np.clip(a * x + b, 0, 1),
    Act.ELU: lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1)),
    Act.SOFTSIGN: lambda x, a, b: x / (1 + np.abs(x)),
    Act.SOFTPLUS: lambda x, a, b: np.log1p(np.exp(x)),
}
DEFAULTS = {
    Mode.RELU: [Act.RELU],
    Mode.TANH: [Act.TANH],
    Mode.GRU: [Act.SIGMOID, Act.TANH],
    Mode.LSTM: [Act.SIGMOID, Act.TANH, Act.TANH],
}


def spec_reference(
    mode,
    arrays,
    direction="forward",
    activations=None,
    alphas=None,
    betas=None,
    clip=0.0,
    input_forget=False,
    linear_before_reset=False,
    layout=0,
):
    """The ONNX equations, one sequence and one direction at a time, in float64."""
    a = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in arrays.items()}
    x, w, r = a["X"], a["W"], a["R"]
    if layout:
        x = x.swapaxes(0, 1)
        a = {k: (v.swapaxes(0, 1) if k in ("initial_h", "initial_c") else v) for k, v in a.items()}
    steps, batch, _ = x.shape
    dirs, hidden = w.shape[0], r.shape[2]
    gates = GATES[mode]
    b = a.get("B", np.zeros((dirs, 2 * gates * hidden)))
    lens = a.get("sequence_lens", np.full(batch, steps))
    h0 = a.get("initial_h", np.zeros((dirs, batch, hidden)))
    c0 = a.get("initial_c", np.zeros((dirs, batch, hidden)))
    p = a.get("P", np.zeros((dirs, 3 * hidden)))
    kinds = list(activations) if activations else DEFAULTS[mode]
    per = len(DEFAULTS[mode])
    if len(kinds) == per:
        kinds = kinds * dirs
    alphas = alphas or [0.0] * len(kinds)
    betas = betas or [0.0] * len(kinds)
    alphas, betas = (
        list(alphas) * (len(kinds) // len(alphas)),
        list(betas) * (len(kinds) // len(betas)),
    )
    clamp = (lambda v: np.clip(v, -clip, clip)) if clip else (lambda v: v)
    y = np.zeros((steps, dirs, batch, hidden))
    y_h, y_c = np.zeros((dirs, batch, hidden)), np.zeros((dirs, batch, hidden))
    for d in range(dirs):
        fs = [
            (lambda v, k=k, al=al, be=be: NUMPY_ACTIVATIONS[k](v, al, be))
            for k, al, be in zip(kinds, alphas, betas, strict=True)
        ][d * per : (d + 1) * per]
        wd, rd, wb, rb, pd = w[d], r[d], b[d, : gates * hidden], b[d, gates * hidden :], p[d]
        backwards = direction == "reverse" or d == 1
        for n in range(batch):
            length = min(max(int(lens[n]), 0), steps)
            order = range(length - 1, -1, -1) if backwards else range(length)
            h, c = h0[d, n], c0[d, n]
            for t in order:
                xt = x[t, n]
                if mode in (Mode.RELU, Mode.TANH):
                    h = fs[0](clamp(xt @ wd.T + h @ rd.T + wb + rb))
                elif mode == Mode.GRU:
                    wz, wr, wh = np.split(wd, 3)
                    rz, rr, rh = np.split(rd, 3)
                    wbz, wbr, wbh = np.split(wb, 3)
                    rbz, rbr, rbh = np.split(rb, 3)
                    z = fs[0](clamp(xt @ wz.T + h @ rz.T + wbz + rbz))
                    rt = fs[0](clamp(xt @ wr.T + h @ rr.T + wbr + rbr))
                    if linear_before_reset:
                        cand = fs[1](clamp(xt @ wh.T + rt * (h @ rh.T + rbh) + wbh))
                    else:
                        cand = fs[1](clamp(xt @ wh.T + (rt * h) @ rh.T + rbh + wbh))
                    h = (1 - z) * cand + z * h
                else:
                    pre = xt @ wd.T + h @ rd.T + wb + rb
                    pi_, po_, pf_, pc_ = np.split(pre, 4)
                    p_i, p_o, p_f = np.split(pd, 3)
                    i = fs[0](clamp(pi_ + p_i * c))
                    f = 1 - i if input_forget else fs[0](clamp(pf_ + p_f * c))
                    c = f * c + i * fs[1](clamp(pc_))
                    o = fs[0](clamp(po_ + p_o * c))
                    h = o * fs[2](c)
                y[t, d, n] = h
            y_h[d, n], y_c[d, n] = h, c
    if layout:
        y, y_h, y_c = y.transpose(2, 0, 1, 3), y_h.swapaxes(0, 1), y_c.swapaxes(0, 1)
    result = {"Y": y, "Y_h": y_h}
    if mode == Mode.LSTM:
        result["Y_c"] = y_c
    return result


def assert_outputs(got, expected, rtol=1e-3, atol=1e-7):
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].shape == value.shape, name
        np.testing.assert_allclose(got[name], value, rtol=rtol, atol=atol, err_msg=name)


def random_arrays(
    mode,
    steps=4,
    batch=3,
    input_size=5,
    hidden=4,
    dirs=1,
    dtype=np.float32,
    layout=0,
    optional=("B", "initial_h"),
    scale=0.5,
):
    gates = GATES[mode]
    x_shape = (steps, batch, input_size) if layout == 0 else (batch, steps, input_size)
    state = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
    shapes = {
        "X": x_shape,
        "W": (dirs, gates * hidden, input_size),
        "R": (dirs, gates * hidden, hidden),
        "B": (dirs, 2 * gates * hidden),
        "initial_h": state,
        "initial_c": state,
        "P": (dirs, 3 * hidden),
    }
    arrays = {
        name: (RNG.standard_normal(shape) * scale).astype(dtype)
        for name, shape in shapes.items()
        if name in ("X", "W", "R") or name in optional
    }
    if "sequence_lens" in optional:
        arrays["sequence_lens"] = RNG.integers(0, steps + 1, batch).astype(np.int32)
    return arrays


# -- ONNX's backend node tests (onnx/backend/test/case/node/{rnn,gru,lstm}.py) ----------------


HIDDEN = {
    "RNN": {
        "defaults": 4,
        "initial_bias": 5,
        "seq_length": 5,
        "batchwise": 4,
        "reverse": 4,
        "bidirectional": 4,
    },
    "GRU": {
        "defaults": 5,
        "initial_bias": 3,
        "seq_length": 5,
        "batchwise": 6,
        "reverse": 5,
        "bidirectional": 5,
    },
    "LSTM": {
        "defaults": 3,
        "initial_bias": 4,
        "peepholes": 3,
        "batchwise": 7,
        "reverse": 3,
        "bidirectional": 3,
    },
}
"""Hidden sizes of ONNX's backend tests."""
BATCHWISE_SCALE = {"RNN": 0.5, "GRU": 0.2, "LSTM": 0.3}


def _onnx_case(name):
    """The inputs and attributes of ONNX's backend test `name` ("OP:case")."""
    op, case = name.split(":")
    hidden = HIDDEN[op][case]
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    attributes = {"hidden_size": hidden}
    x = np.array([[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]], dtype=np.float32)
    scale = np.float32(0.1)
    if case == "defaults":
        x = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]], dtype=np.float32)
    elif case == "initial_bias":
        x = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]], dtype=np.float32)
    elif case == "seq_length":
        x = np.arange(1.0, 19.0, dtype=np.float32).reshape(2, 3, 3)
    elif case == "peepholes":
        x = np.arange(1.0, 9.0, dtype=np.float32).reshape(1, 2, 4)
    elif case == "batchwise":
        scale = np.float32(BATCHWISE_SCALE[op])
        attributes["layout"] = 1
    elif case == "reverse":
        attributes["direction"] = "reverse"
    else:
        scale = np.array([[[0.5]], [[2.0]]], dtype=np.float32)
        attributes["direction"] = "bidirectional"
    input_size = x.shape[2]
    arrays = {
        "X": x,
        "W": scale * np.ones((1, gates * hidden, input_size), np.float32),
        "R": scale * np.ones((1, gates * hidden, hidden), np.float32),
    }
    if case == "initial_bias":
        zeros = np.zeros((1, gates * hidden), np.float32)
        arrays["B"] = np.concatenate([zeros + np.float32(0.1), zeros], axis=1)
    elif case == "seq_length":
        arrays["W"] = RNG.standard_normal(arrays["W"].shape).astype(np.float32)
        arrays["R"] = RNG.standard_normal(arrays["R"].shape).astype(np.float32)
        arrays["B"] = RNG.standard_normal((1, 2 * gates * hidden)).astype(np.float32)
    elif case == "peepholes":
        batch = x.shape[1]
        arrays["B"] = np.zeros((1, 2 * gates * hidden), np.float32)
        arrays["sequence_lens"] = np.full(batch, x.shape[0], np.int32)
        arrays["initial_h"] = np.zeros((1, batch, hidden), np.float32)
        arrays["initial_c"] = np.zeros((1, batch, hidden), np.float32)
        arrays["P"] = scale * np.ones((1, 3 * hidden), np.float32)
    return arrays, attributes


ONNX_CASES = [
    f"{op}:{case}"
    for op in ("RNN", "GRU", "LSTM")
    for case in (
        "defaults",
        "initial_bias",
        "peepholes" if op == "LSTM" else "seq_length",
        "batchwise",
        "reverse",
        "bidirectional",
    )
]


@pytest.mark.parametrize("name", ONNX_CASES)
def test_onnx_backend_cases_match_onnx_reference(name):
    arrays, attributes = _onnx_case(name)
    op = name.split(":")[0]
    mode = {"RNN": Mode.TANH, "GRU": Mode.GRU, "LSTM": Mode.LSTM}[op]
    properties = {"hidden_size": attributes["hidden_size"]}
    if "direction" in attributes:
        properties["direction"] = DIRECTIONS[attributes["direction"]]
    if "layout" in attributes:
        properties["layout"] = attributes["layout"]
    got = run_rnn(mode, arrays, **properties)
    assert_outputs(got, onnx_reference(op, arrays, **attributes))


# -- every attribute and input --------------------------------------------------------------


@pytest.mark.parametrize("mode", [Mode.TANH, Mode.RELU, Mode.GRU, Mode.LSTM], ids=str)
@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("layout", [0, 1])
def test_all_inputs_with_sequence_lens(mode, direction, layout):
    dirs = 2 if direction == "bidirectional" else 1
    optional = ["B", "sequence_lens", "initial_h"]
    if mode == Mode.LSTM:
        optional += ["initial_c", "P"]
    arrays = random_arrays(mode, dirs=dirs, layout=layout, optional=optional, steps=5, batch=4)
    arrays["sequence_lens"] = np.array([5, 0, 2, 3], dtype=np.int32)
    got = run_rnn(mode, arrays, direction=DIRECTIONS[direction], layout=layout)
    expected = spec_reference(mode, arrays, direction=direction, layout=layout)
    assert_outputs(got, expected, atol=1e-6)
    # past each sequence's length: zeros in Y; a length of 0 keeps the initial state
    y_padding = got["Y"][3:, :, 2] if layout == 0 else got["Y"][2, 3:]
    np.testing.assert_array_equal(y_padding, 0)
    initial = arrays["initial_h"][:, 1] if layout == 0 else arrays["initial_h"][1]
    np.testing.assert_array_equal(got["Y_h"][:, 1] if layout == 0 else got["Y_h"][1], initial)


def test_sequence_lens_as_int64_constant_equal_to_full_length_changes_nothing():
    arrays = random_arrays(Mode.GRU, optional=("B",))
    full = run_rnn(Mode.GRU, arrays)
    arrays["sequence_lens"] = np.full(3, 4, dtype=np.int64)
    with_lens = run_rnn(Mode.GRU, arrays)
    assert_outputs(with_lens, full, rtol=0, atol=0)


@pytest.mark.parametrize("linear_before_reset", [False, True])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_gru_linear_before_reset(linear_before_reset, direction):
    dirs = 2 if direction == "bidirectional" else 1
    arrays = random_arrays(Mode.GRU, dirs=dirs, optional=("B", "initial_h"), scale=1.0)
    got = run_rnn(
        Mode.GRU, arrays, linear_before_reset=linear_before_reset, direction=DIRECTIONS[direction]
    )
    expected = spec_reference(
        Mode.GRU, arrays, direction=direction, linear_before_reset=linear_before_reset
    )
    assert_outputs(got, expected, atol=1e-6)
    if linear_before_reset:
        other = spec_reference(Mode.GRU, arrays, direction=direction)
        assert not np.allclose(other["Y"], expected["Y"], atol=1e-4)


def test_lstm_input_forget_couples_the_gates():
    arrays = random_arrays(Mode.LSTM, optional=("B", "initial_h", "initial_c", "P"), scale=1.0)
    got = run_rnn(Mode.LSTM, arrays, input_forget=True)
    assert_outputs(got, spec_reference(Mode.LSTM, arrays, input_forget=True), atol=1e-6)
    uncoupled = spec_reference(Mode.LSTM, arrays)
    assert not np.allclose(uncoupled["Y_c"], got["Y_c"], atol=1e-3)


@pytest.mark.parametrize("mode", [Mode.TANH, Mode.GRU, Mode.LSTM], ids=str)
def test_clip_bounds_gate_pre_activations(mode):
    arrays = random_arrays(mode, optional=("B", "initial_h"), scale=3.0)
    arrays["X"] *= 10
    got = run_rnn(mode, arrays, clip=0.7)
    expected = spec_reference(mode, arrays, clip=0.7)
    assert_outputs(got, expected, atol=1e-6)
    if mode == Mode.TANH:
        assert np.abs(got["Y"]).max() <= np.tanh(0.7) + 1e-6
    assert not np.allclose(spec_reference(mode, arrays)["Y"], expected["Y"], atol=1e-3)


ALPHA_BETA = {
    Act.AFFINE: (0.7, -0.2),
    Act.LEAKY_RELU: (0.1, 0.0),
    Act.THRESHOLDED_RELU: (0.3, 0.0),
    Act.SCALED_TANH: (1.5, 0.8),
    Act.HARD_SIGMOID: (0.3, 0.4),
    Act.ELU: (0.9, 0.0),
}


@pytest.mark.parametrize("activation", list(Act), ids=lambda a: a.name)
def test_rnn_activation(activation):
    arrays = random_arrays(Mode.TANH, optional=("B",))
    alpha, beta = ALPHA_BETA.get(activation, (0.0, 0.0))
    got = run_rnn(
        Mode.TANH,
        arrays,
        activations=[activation],
        activation_alpha=[alpha],
        activation_beta=[beta],
    )
    expected = spec_reference(
        Mode.TANH, arrays, activations=[activation], alphas=[alpha], betas=[beta]
    )
    assert_outputs(got, expected, atol=1e-6)


@pytest.mark.parametrize("activation", sorted(ALPHA_BETA), ids=lambda a: a.name)
def test_activation_defaults_are_onnx_operator_defaults(activation):
    arrays = random_arrays(Mode.TANH, optional=("B",))
    got = run_rnn(Mode.TANH, arrays, activations=[activation])
    alpha, beta = {
        Act.AFFINE: (1.0, 0.0),
        Act.LEAKY_RELU: (0.01, 0.0),
        Act.THRESHOLDED_RELU: (1.0, 0.0),
        Act.SCALED_TANH: (1.0, 1.0),
        Act.HARD_SIGMOID: (0.2, 0.5),
        Act.ELU: (1.0, 0.0),
    }[activation]
    expected = spec_reference(
        Mode.TANH, arrays, activations=[activation], alphas=[alpha], betas=[beta]
    )
    assert_outputs(got, expected, atol=1e-6)


@pytest.mark.parametrize("mode", [Mode.GRU, Mode.LSTM], ids=str)
def test_bidirectional_with_different_activations_per_direction(mode):
    arrays = random_arrays(mode, dirs=2, optional=("B", "initial_h"))
    if mode == Mode.GRU:
        activations = [Act.HARD_SIGMOID, Act.SOFTSIGN, Act.SIGMOID, Act.SCALED_TANH]
        alphas, betas = [0.3, 0.0, 0.0, 1.2], [0.4, 0.0, 0.0, 0.7]
    else:
        activations = [Act.SIGMOID, Act.ELU, Act.TANH, Act.HARD_SIGMOID, Act.TANH, Act.SOFTPLUS]
        alphas, betas = [0.0, 0.5, 0.0, 0.25, 0.0, 0.0], [0.0, 0.0, 0.0, 0.45, 0.0, 0.0]
    properties = {
        "direction": trt.RNNDirection.BIDIRECTIONAL,
        "activations": activations,
        "activation_alpha": alphas,
        "activation_beta": betas,
    }
    got = run_rnn(mode, arrays, **properties)
    expected = spec_reference(
        mode,
        arrays,
        direction="bidirectional",
        activations=activations,
        alphas=alphas,
        betas=betas,
    )
    assert_outputs(got, expected, atol=1e-6)


def test_onnx_activations_reads_alphas_only_for_the_functions_that_take_them():
    kinds, alphas, betas = onnx_activations(
        ["Sigmoid", "LeakyRelu", "tanh", "HardSigmoid", "ScaledTanh", "Affine"],
        [0.2, 0.3],
        [0.6],
    )
    assert kinds == (
        Act.SIGMOID,
        Act.LEAKY_RELU,
        Act.TANH,
        Act.HARD_SIGMOID,
        Act.SCALED_TANH,
        Act.AFFINE,
    )
    assert alphas == (0.0, 0.2, 0.0, 0.3, 1.0, 1.0)
    assert betas == (0.0, 0.0, 0.0, 0.6, 1.0, 0.0)
    with pytest.raises(ValueError, match="Gelu"):
        onnx_activations(["Gelu"])


# -- types, dynamic shapes, defaults ----------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "rtol", "atol"), [(np.float16, 1e-2, 2e-3), (np.float64, 1e-10, 1e-12)]
)
@pytest.mark.parametrize("mode", [Mode.TANH, Mode.GRU, Mode.LSTM], ids=str)
def test_types(mode, dtype, rtol, atol):
    optional = ["B", "initial_h", "sequence_lens"] + (
        ["initial_c", "P"] if mode == Mode.LSTM else []
    )
    arrays = random_arrays(mode, dtype=dtype, optional=optional, dirs=2)
    got = run_rnn(mode, arrays, direction=trt.RNNDirection.BIDIRECTIONAL)
    for value in got.values():
        assert value.dtype == dtype
    expected = spec_reference(mode, arrays, direction="bidirectional")
    assert_outputs(got, expected, rtol=rtol, atol=atol)


def test_bfloat16_through_casts():
    arrays = random_arrays(Mode.LSTM, optional=("B", "initial_h", "initial_c", "P"))

    def define(network):
        tensors = {}
        for name, array in arrays.items():
            source = network.add_input(name, trt.float32, array.shape)
            tensors[name] = network.add_cast(source, trt.bfloat16).get_output(0)
        layer = network.add_rnn(
            tensors["X"],
            Mode.LSTM,
            tensors["W"],
            tensors["R"],
            tensors["B"],
            None,
            tensors["initial_h"],
            tensors["initial_c"],
            tensors["P"],
        )
        for index, name in enumerate(("Y", "Y_h", "Y_c")):
            assert layer.get_output(index).dtype == trt.bfloat16
            out = network.add_cast(layer.get_output(index), trt.float32).get_output(0)
            out.name = name
            network.mark_output(out)

    rounded = {
        name: torch.from_numpy(array).bfloat16().float().numpy() for name, array in arrays.items()
    }
    got = build_and_run(define, arrays)
    assert_outputs(got, spec_reference(Mode.LSTM, rounded), rtol=2e-2, atol=1e-2)


def test_padding_past_sequence_lens_is_never_read():
    arrays = random_arrays(Mode.GRU, optional=("B", "sequence_lens"), dirs=2)
    arrays["sequence_lens"] = np.array([2, 4, 1], dtype=np.int32)
    for n, length in enumerate(arrays["sequence_lens"]):
        arrays["X"][length:, n] = np.nan
    got = run_rnn(Mode.GRU, arrays, direction=trt.RNNDirection.BIDIRECTIONAL)
    assert_outputs(got, spec_reference(Mode.GRU, arrays, direction="bidirectional"), atol=1e-6)


def test_dynamic_sequence_and_batch_through_a_profile():
    arrays = random_arrays(Mode.LSTM, steps=6, batch=2, optional=("B", "sequence_lens"))
    arrays["sequence_lens"] = np.array([6, 3], dtype=np.int32)
    seen = {}

    def define(network):
        x = network.add_input("X", trt.float32, (-1, -1, 5))
        lens = network.add_input("sequence_lens", trt.int32, (-1,))
        w = network.add_constant(arrays["W"].shape, trt.Weights(arrays["W"])).get_output(0)
        r = network.add_constant(arrays["R"].shape, trt.Weights(arrays["R"])).get_output(0)
        b = network.add_constant(arrays["B"].shape, trt.Weights(arrays["B"])).get_output(0)
        layer = network.add_rnn(x, Mode.LSTM, w, r, b, lens)
        for index, name in enumerate(("Y", "Y_h", "Y_c")):
            layer.get_output(index).name = name
            network.mark_output(layer.get_output(index))
            seen[name] = tuple(layer.get_output(index).shape)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("X", (1, 1, 5), (4, 2, 5), (8, 4, 5))
        profile.set_shape("sequence_lens", (1,), (2,), (4,))
        config.add_optimization_profile(profile)

    got = build_and_run(
        define, {"X": arrays["X"], "sequence_lens": arrays["sequence_lens"]}, configure=configure
    )
    assert seen == {"Y": (-1, 1, -1, 4), "Y_h": (1, -1, 4), "Y_c": (1, -1, 4)}
    assert_outputs(got, spec_reference(Mode.LSTM, arrays), atol=1e-6)


def test_layer_defaults_and_properties():
    def define(network):
        x = network.add_input("X", trt.float32, (3, 2, 4))
        w = network.add_input("W", trt.float32, (1, 12, 4))
        r = network.add_input("R", trt.float32, (1, 12, 4))
        gru = network.add_rnn(x, Mode.GRU, w, r)
        assert isinstance(gru, trt.IRNNLayer)
        assert gru.type == trt.LayerType.PLUGIN
        assert gru.mode == Mode.GRU
        assert gru.num_outputs == 2 and gru.num_inputs == 3
        assert gru.direction == trt.RNNDirection.FORWARD
        assert gru.hidden_size == 0
        assert gru.activations == () and gru.activation_alpha == () and gru.activation_beta == ()
        assert gru.clip == 0.0 and gru.layout == 0
        assert gru.input_forget is False and gru.linear_before_reset is False
        assert tuple(gru.get_output(0).shape) == (3, 1, 2, 4)
        gru.activations = [Act.HARD_SIGMOID, Act.TANH]
        assert gru.activations == (Act.HARD_SIGMOID, Act.TANH)
        with pytest.raises(AttributeError):
            gru.mode = Mode.LSTM
        with pytest.raises(ValueError):
            gru.activations = [42]
        lstm = network.add_rnn(
            x,
            Mode.LSTM,
            network.add_input("W4", trt.float32, (1, 16, 4)),
            network.add_input("R4", trt.float32, (1, 16, 4)),
        )
        assert lstm.num_outputs == 3 and lstm.get_input(3) is None
        lens = network.add_input("lens", trt.int32, (2,))
        lstm.set_input(4, lens)
        assert lstm.get_input(4) is lens and lstm.num_inputs == 5
        network.mark_output(gru.get_output(1))

    assert build_plan(define) is not None


# -- invalid input ----------------------------------------------------------------------------


def _invalid_network(mode, shapes, **properties):
    def define(network):
        tensors = [
            None if spec is None else network.add_input(name, spec[1], spec[0])
            for name, spec in shapes.items()
        ]
        layer = network.add_rnn(tensors[0], mode, *tensors[1:])
        layer.name = "recurrent"
        for key, value in properties.items():
            setattr(layer, key, value)
        network.mark_output(layer.get_output(0))

    return define


F32 = trt.float32
BASE = {"X": ((3, 2, 4), F32), "W": ((1, 12, 4), F32), "R": ((1, 12, 4), F32)}


@pytest.mark.parametrize(
    ("mode", "shapes", "properties", "message"),
    [
        (Mode.GRU, BASE | {"W": ((1, 12, 5), F32)}, {}, "W dimension 2 must be input_size = 4"),
        (Mode.LSTM, BASE, {}, "W dimension 1 must be 4*hidden_size = 16"),
        (Mode.GRU, BASE | {"R": ((1, 9, 3), F32)}, {}, "W dimension 1 must be 3*hidden_size = 9"),
        (Mode.GRU, BASE, {"hidden_size": 5}, "W dimension 1 must be 3*hidden_size = 15"),
        (Mode.GRU, BASE, {"direction": trt.RNNDirection.BIDIRECTIONAL}, "num_directions = 2"),
        (Mode.GRU, BASE | {"B": ((1, 12), F32)}, {}, "B dimension 1 must be 6*hidden_size = 24"),
        (Mode.GRU, BASE | {"B": None, "L": ((3,), trt.int32)}, {}, "batch_size = 2"),
        (Mode.GRU, BASE | {"B": None, "L": ((2,), F32)}, {}, "sequence_lens must be INT32"),
        (
            Mode.GRU,
            BASE | {"B": None, "L": None, "H": ((1, 2, 4), F32), "C": ((1, 2, 4), F32)},
            {},
            "initial_c is an input of LSTM only",
        ),
        (
            Mode.GRU,
            BASE | {"B": None, "L": None, "H": ((2, 1, 4), F32)},
            {},
            "initial_h dimension 0 must be num_directions = 1",
        ),
        (Mode.GRU, BASE | {"X": ((3, 2, 4), trt.int32)}, {}, "X must be FLOAT"),
        (Mode.GRU, BASE | {"W": ((1, 12, 4), trt.float16)}, {}, "W must have X's type FLOAT"),
        (Mode.GRU, BASE, {"input_forget": True}, "input_forget applies to LSTM only"),
        (
            Mode.TANH,
            BASE | {"W": ((1, 4, 4), F32), "R": ((1, 4, 4), F32)},
            {"linear_before_reset": True},
            "linear_before_reset applies to GRU only",
        ),
        (Mode.GRU, BASE, {"activations": [Act.TANH]}, "2 activations per direction"),
        (Mode.GRU, BASE, {"activation_alpha": [1.0]}, "one value per activation (2)"),
        (Mode.GRU, BASE, {"layout": 2}, "layout must be 0 or 1"),
        (Mode.GRU, BASE, {"clip": -1.0}, "clip must be at least 0"),
    ],
)
def test_invalid_networks_fail_to_build(logger, mode, shapes, properties, message):
    assert build_plan(_invalid_network(mode, shapes, **properties), logger) is None
    assert any("recurrent" in error and message in error for error in logger.errors), logger.errors


def test_add_rnn_refuses_foreign_optional_inputs(logger):
    def define(network):
        x = network.add_input("X", F32, (3, 2, 4))
        w = network.add_input("W", F32, (1, 12, 4))
        assert network.add_rnn(x, Mode.GRU, w, w, bias=np.zeros((1, 24), np.float32)) is None

    build_plan(define, logger)
    assert any("bias must be None or an ITensor" in error for error in logger.errors)
