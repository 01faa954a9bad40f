"""A pointwise node's program is data: plans whose programs are damaged are refused."""

from __future__ import annotations

import numpy as np
import planedit
import pytest
from plan_cases import refuse

import tensorplan as trt
from helpers import build_plan, load, output, run

X = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)


def _pointwise_node(meta_: dict) -> dict:
    return next(n for n in meta_["nodes"] if n["op"] == "pointwise")


def _read_a_later_step(meta_: dict) -> None:
    _pointwise_node(meta_)["attrs"]["program"][2] = 99


def _unknown_operation(meta_: dict) -> None:
    _pointwise_node(meta_)["attrs"]["program"][1] = 999


@pytest.mark.parametrize(
    ("edit", "message"),
    [(_read_a_later_step, "neither one of the"), (_unknown_operation, "does not fuse operation")],
)
def test_plans_with_damaged_programs_are_refused(logger, edit, message):
    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        y = network.add_unary(x, trt.UnaryOperation.ABS).get_output(0)
        output(network, network.add_unary(y, trt.UnaryOperation.SQRT).get_output(0))

    plan = build_plan(define)
    np.testing.assert_allclose(run(load(plan), {"x": X})["y"], np.sqrt(np.abs(X)), rtol=1e-6)
    assert message in refuse(planedit.with_metadata(bytes(plan), edit), logger)
