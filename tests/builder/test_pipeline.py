"""The declared pass pipeline: every pass runs in order, and TENSORPLAN_DUMP_PASSES shows
the graph after each one."""

from __future__ import annotations

import numpy as np

import tensorplan as trt
from helpers import build_plan, load, run
from tensorplan.builder.pipeline import DUMP_VARIABLE, PIPELINE

X = np.random.default_rng(5).standard_normal((2, 3)).astype(np.float32)


def relu_then_scale(network):
    x = network.add_input("x", trt.float32, X.shape)
    relu = network.add_activation(x, trt.ActivationType.RELU).get_output(0)
    two = network.add_constant((1, 1), trt.Weights(np.full((1, 1), 2, np.float32)))
    y = network.add_elementwise(relu, two.get_output(0), trt.ElementWiseOperation.PROD)
    y.get_output(0).name = "y"
    network.mark_output(y.get_output(0))


def test_the_graph_after_every_pass_is_dumped_in_pipeline_order(tmp_path, monkeypatch):
    monkeypatch.setenv(DUMP_VARIABLE, str(tmp_path / "passes"))
    plan = build_plan(relu_then_scale)
    np.testing.assert_allclose(run(load(plan), {"x": X})["y"], np.maximum(X, 0) * 2)
    names = sorted(path.name for path in (tmp_path / "passes").iterdir())
    assert names == [f"{i:02d}-{p.name}.txt" for i, p in enumerate(PIPELINE)]
    assert [p.name for p in PIPELINE][-3:] == ["configure_plugins", "plan_memory", "select_tactics"]
    index = [p.name for p in PIPELINE].index("fuse_pointwise")
    before = (tmp_path / "passes" / names[index - 1]).read_text()
    after = tmp_path / "passes" / names[index]
    assert ": activation(" in before and ": elementwise(" in before
    text = after.read_text()
    assert ": pointwise(" in text and ": activation(" not in text
    assert "reads  %0 'x' FLOAT[2, 3]" in text


def test_a_dump_that_cannot_be_written_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(DUMP_VARIABLE, str(blocker / "passes"))
    logger = trt.Logger(trt.Logger.WARNING)
    messages = []
    logger.log = lambda severity, message: messages.append((severity, message))
    plan = build_plan(relu_then_scale, logger=logger)
    assert plan is not None
    assert any(DUMP_VARIABLE in m and s == trt.ILogger.Severity.WARNING for s, m in messages)
