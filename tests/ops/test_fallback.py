"""A slower path taken at run time reaches the engine's logger at INFO, once per layer and
reason, naming the layer."""

from __future__ import annotations

import numpy as np

import tensorplan as trt
from helpers import build_plan, load, run
from tensorplan.ops import fallback
from tensorplan.ops.elementwise import Activation

INFO = trt.ILogger.Severity.INFO


def test_each_reason_is_logged_once_per_layer(logger):
    log = fallback.FallbackLog(logger)
    fallback.report("outside any execution: nowhere")
    with fallback.reporting(log):
        for layer in ("a", "a", "b"):
            fallback.at_layer(layer)
            fallback.report("why")
        assert fallback.declined("the kernel", "a strided output") is False
    fallback.report("after it: nowhere")
    assert logger.messages == [
        (INFO, "layer 'a': why"),
        (INFO, "layer 'b': why"),
        (
            INFO,
            "layer 'b': the kernel cannot run it (a strided output); a slower torch path "
            "runs instead",
        ),
    ]


def test_a_kernel_that_declines_is_reported_once_by_its_engine(logger, monkeypatch):
    """The executor names the running layer; two contexts of one engine report it once."""
    original = Activation.run

    def declining(self, inputs, outputs, attrs):
        fallback.declined("a fast kernel", "a test's reason")
        original(self, inputs, outputs, attrs)

    monkeypatch.setattr(Activation, "run", declining)

    def define(network):
        x = network.add_input("x", trt.float32, (2, 3))
        layer = network.add_activation(x, trt.ActivationType.SIGMOID)
        layer.name = "gate"
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    engine = load(build_plan(define), logger)
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    for _ in range(2):
        np.testing.assert_allclose(run(engine, {"x": x})["y"], 1 / (1 + np.exp(-x)), rtol=1e-6)
    reported = [m for s, m in logger.messages if s == INFO and "test's reason" in m]
    assert reported == [
        "layer 'gate': a fast kernel cannot run it (a test's reason); a slower torch path runs "
        "instead"
    ]
