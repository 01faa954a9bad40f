"""tensorplan.onnx.backend: ONNX's backend interface, every run through a real plan."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tests.onnx.conftest import make_model

import tensorplan.onnx.backend as backend


def test_is_an_onnx_backend():
    assert issubclass(backend.TensorplanBackend, onnx.backend.base.Backend)
    assert backend.supports_device("CPU")
    assert backend.supports_device("CUDA") == __import__("torch").cuda.is_available()


def test_run_model_builds_and_runs_a_plan(add_model):
    x = np.array([[1.0, 2.0, -9.0], [0.0, 5.0, 1.0]], dtype=np.float32)
    (y,) = backend.run_model(add_model, [x])
    np.testing.assert_array_equal(y, np.maximum(x + np.array([1.0, -2.0, 3.0]), 0))


def test_dynamic_dims_get_a_profile_per_input_shape():
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    axes = onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    model = make_model(
        [node], [("x", TensorProto.FLOAT, ["n", "m"])], [("y", TensorProto.FLOAT, ["n"])], [axes]
    )
    rep = backend.prepare(model)
    for shape in ((2, 3), (5, 1), (2, 3)):
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        (y,) = rep.run({"x": x})
        np.testing.assert_allclose(y, x.sum(1), rtol=1e-6)
    assert len(rep._engines) == 2  # one engine per input signature


def test_inputs_needed_at_build_time_become_constants():
    # Slice's starts and ends are graph inputs: the engine is built for the given values
    node = helper.make_node("Slice", ["x", "starts", "ends"], ["y"])
    model = make_model(
        [node],
        [
            ("x", TensorProto.FLOAT, [6]),
            ("starts", TensorProto.INT64, [1]),
            ("ends", TensorProto.INT64, [1]),
        ],
        [("y", TensorProto.FLOAT, None)],
    )
    rep = backend.prepare(model)
    x = np.arange(6, dtype=np.float32)
    for start, end in ((1, 4), (-2, 100), (1, 4)):
        (y,) = rep.run([x, np.array([start]), np.array([end])])
        np.testing.assert_array_equal(y, x[start:end])
    assert len(rep._engines) == 2


def test_run_node():
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], alpha=2.0, transB=1)
    a = np.ones((2, 3), dtype=np.float32)
    b = np.arange(12, dtype=np.float32).reshape(4, 3)
    c = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    (y,) = backend.run_node(node, [a, b, c])
    np.testing.assert_allclose(y, 2.0 * a @ b.T + c)


def test_unsupported_models_raise_with_the_parser_errors():
    node = helper.make_node("FrobnicateTensor", ["x"], ["y"], name="mystery")
    model = make_model([node], [("x", TensorProto.FLOAT, [2])], [("y", TensorProto.FLOAT, [2])])
    with pytest.raises(backend.BackendError, match=r"mystery.*FrobnicateTensor"):
        backend.run_model(model, [np.zeros(2, dtype=np.float32)])
