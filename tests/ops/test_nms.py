"""INMSLayer built into plans and run, against ONNX's reference NonMaxSuppression."""

from __future__ import annotations

import numpy as np
import pytest
from onnx.reference.ops.op_non_max_suppression import NonMaxSuppression

import tensorplan as trt
from helpers import build_plan, dtype_of, load, run_with_allocator

RNG = np.random.default_rng(7)


def nms_network(
    boxes: np.ndarray,
    scores: np.ndarray,
    max_boxes: int,
    iou: float | None = None,
    score: float | None = None,
    **properties,
):
    """NMS over inputs `boxes` and `scores`; the thresholds and the limit as constants."""

    def define(network):
        b = network.add_input("boxes", dtype_of(boxes), boxes.shape)
        s = network.add_input("scores", dtype_of(scores), scores.shape)
        limit = network.add_constant((), trt.Weights(np.array(max_boxes, np.int32)))
        layer = network.add_nms(b, s, limit.get_output(0))
        for index, value in ((3, iou), (4, score)):
            if value is not None:
                constant = network.add_constant((), trt.Weights(np.array(value, np.float32)))
                layer.set_input(index, constant.get_output(0))
        for key, value in properties.items():
            setattr(layer, key, value)
        layer.get_output(0).name = "selected"
        layer.get_output(1).name = "count"
        network.mark_output(layer.get_output(0))
        network.mark_output(layer.get_output(1))

    return define


def reference(boxes, scores, max_boxes, iou, score, center=False, onnx_order=True):
    """ONNX NonMaxSuppression (scores [batch, classes, boxes]); TensorRT's order on request."""
    evaluator = NonMaxSuppression.__new__(NonMaxSuppression)
    (selected,) = NonMaxSuppression._run(
        evaluator,
        boxes,
        scores.transpose(0, 2, 1),
        np.array([max_boxes], np.int64),
        np.array([iou or 0.0], np.float32),
        np.array([score or 0.0], np.float32),
        center_point_box=int(center),
    )
    if onnx_order:
        return selected
    values = scores[selected[:, 0], selected[:, 2], selected[:, 1]]
    order = np.lexsort((-values, selected[:, 0]))  # stable: ties keep class order
    return selected[order]


def run_nms(boxes, scores, max_boxes, iou=None, score=None, **properties):
    plan = build_plan(nms_network(boxes, scores, max_boxes, iou, score, **properties))
    assert plan is not None
    return run_with_allocator(load(plan), {"boxes": boxes, "scores": scores})


def random_case(batch: int, count: int, classes: int):
    corners = RNG.integers(0, 6, (batch, count, 2)).astype(np.float32)
    sizes = RNG.integers(1, 4, (batch, count, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + sizes], axis=-1)
    scores = RNG.integers(1, 20, (batch, count, classes)).astype(np.float32) / 20
    return boxes, scores


@pytest.mark.parametrize("onnx_order", [False, True])
@pytest.mark.parametrize(
    ("batch", "count", "classes", "max_boxes", "iou", "score"),
    [
        (1, 6, 1, 3, 0.5, 0.0),
        (2, 12, 3, 4, 0.3, 0.4),
        (3, 20, 2, 20, 0.0, None),
        (1, 8, 2, 0, 0.5, 0.1),
    ],
)
def test_matches_the_onnx_reference(batch, count, classes, max_boxes, iou, score, onnx_order):
    boxes, scores = random_case(batch, count, classes)
    out = run_nms(boxes, scores, max_boxes, iou, score, onnx_order=onnx_order)
    expected = reference(boxes, scores, max_boxes, iou, score, onnx_order=onnx_order)
    np.testing.assert_array_equal(out["selected"], expected)
    assert out["selected"].dtype == np.int32
    assert out["count"] == len(expected)


def test_onnx_suppress_by_iou_example():
    boxes = np.array(
        [[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, -0.1, 1, 0.9], [0, 10, 1, 11], [0, 10.1, 1, 11.1]]],
        np.float32,
    )
    scores = np.array([[[0.9], [0.75], [0.6], [0.95], [0.5]]], np.float32)
    out = run_nms(boxes, scores, 3, 0.5, 0.0)
    np.testing.assert_array_equal(out["selected"], [[0, 0, 3], [0, 0, 0]])


def test_center_sizes_format_and_int64_indices():
    boxes, scores = random_case(2, 10, 2)
    centers = np.concatenate(
        [(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], -1
    )
    out = run_nms(
        centers,
        scores,
        5,
        0.2,
        bounding_box_format=trt.BoundingBoxFormat.CENTER_SIZES,
        indices_type=trt.int64,
    )
    assert out["selected"].dtype == np.int64
    expected = reference(centers, scores, 5, 0.2, None, center=True, onnx_order=False)
    np.testing.assert_array_equal(out["selected"], expected)


def test_per_class_boxes():
    boxes, scores = random_case(1, 8, 2)
    shifted = boxes + 7 * RNG.integers(0, 2, (1, 8, 1)).astype(np.float32)
    per_class = np.stack([boxes, shifted], axis=2)
    out = run_nms(per_class, scores, 8, 0.3)
    first = reference(boxes, scores[..., :1], 8, 0.3, None)
    second = reference(shifted, scores[..., 1:], 8, 0.3, None)
    second[:, 1] = 1
    expected = np.concatenate([first, second])
    values = scores[0, expected[:, 2], expected[:, 1]]
    np.testing.assert_array_equal(out["selected"], expected[np.argsort(-values, kind="stable")])


def test_topk_box_limit_keeps_the_best_candidates():
    boxes, scores = random_case(1, 12, 1)
    scores[0, :, 0] = np.linspace(0.9, 0.1, 12)
    boxes[0] = np.arange(12, dtype=np.float32)[:, None] * 10 + np.array([0, 0, 1, 1])
    out = run_nms(boxes, scores, 12, 0.5, topk_box_limit=4)
    np.testing.assert_array_equal(out["selected"][:, 2], [0, 1, 2, 3])


def test_half_inputs():
    boxes, scores = random_case(1, 10, 2)
    out = run_nms(boxes.astype(np.float16), scores.astype(np.float16), 4, 0.4)
    np.testing.assert_array_equal(
        out["selected"], reference(boxes, scores, 4, 0.4, None, onnx_order=False)
    )


def test_default_properties_and_network_shapes():
    network = trt.Builder(trt.Logger()).create_network()
    boxes, scores = random_case(1, 4, 1)
    nms_network(boxes, scores, 2)(network)
    layer = network.get_layer(1)
    assert isinstance(layer, trt.INMSLayer)
    assert layer.type == trt.LayerType.NMS
    assert layer.bounding_box_format == trt.BoundingBoxFormat.CORNER_PAIRS
    assert layer.topk_box_limit == 5000
    assert layer.indices_type == trt.int32
    assert layer.onnx_order is False
    assert tuple(layer.get_output(0).shape) == (-1, 3)
    assert tuple(layer.get_output(1).shape) == ()


def test_dynamic_number_of_boxes():
    def define(network):
        b = network.add_input("boxes", trt.float32, (1, -1, 4))
        s = network.add_input("scores", trt.float32, (1, -1, 2))
        limit = network.add_constant((), trt.Weights(np.array(3, np.int32))).get_output(0)
        layer = network.add_nms(b, s, limit)
        assert tuple(layer.get_output(0).shape) == (-1, 3)
        layer.get_output(0).name = "selected"
        network.mark_output(layer.get_output(0))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("boxes", (1, 1, 4), (1, 8, 4), (1, 16, 4))
        profile.set_shape("scores", (1, 1, 2), (1, 8, 2), (1, 16, 2))
        config.add_optimization_profile(profile)

    engine = load(build_plan(define, configure=configure))
    for count in (5, 13):
        boxes, scores = random_case(1, count, 2)
        out = run_with_allocator(engine, {"boxes": boxes, "scores": scores})
        expected = reference(boxes, scores, 3, None, None, onnx_order=False)
        np.testing.assert_array_equal(out["selected"], expected)


@pytest.mark.parametrize(
    ("boxes_shape", "scores_shape", "message"),
    [
        ((1, 6, 4), (1, 5, 2), "boxes must have shape"),
        ((1, 6, 3), (1, 6, 2), "boxes must have shape"),
        ((1, 6, 4), (6, 2), "scores must have shape"),
    ],
)
def test_mismatched_shapes_fail_to_build(logger, boxes_shape, scores_shape, message):
    boxes = np.zeros(boxes_shape, np.float32)
    scores = np.zeros(scores_shape, np.float32)
    assert build_plan(nms_network(boxes, scores, 2), logger) is None
    assert any(message in m and "[NMS]" in m for m in logger.errors)


def test_topk_box_limit_above_5000_fails_to_build(logger):
    boxes, scores = random_case(1, 4, 1)
    assert build_plan(nms_network(boxes, scores, 2, topk_box_limit=5001), logger) is None
    assert any("topk_box_limit must be at most 5000" in m for m in logger.errors)
