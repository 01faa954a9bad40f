"""Non-maximum suppression: INMSLayer, with an extension for ONNX NonMaxSuppression's order."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..types import BoundingBoxFormat, DataType, LayerType
from .base import UNKNOWN, Bool, Enum, Int, Op, ShapeError, TensorMeta

MAX_TOPK_BOX_LIMIT = 5000
"""TensorRT's upper bound (and default) for topk_box_limit on current GPUs."""

_INDEX_TYPES = (DataType.INT32, DataType.INT64)


class NMS(Op):
    """INMSLayer: greedy per-class NMS of each batch item.

    Inputs: boxes [B, N, 4] (shared by the classes) or [B, N, C, 4], scores [B, N, C],
    max_output_boxes_per_class (a shape tensor: 0-D INT32 or INT64), optional IoU threshold
    and score threshold (0-D FLOAT, default 0). A box is a candidate when its score exceeds
    the score threshold; the `topk_box_limit` best candidates of a batch item are considered;
    a candidate is selected when its IoU with every box already selected for its class is at
    most the IoU threshold. Outputs: SelectedIndices [count, 3] rows (batch, class, box) and
    NumOutputBoxes (0-D INT32).

    Order: by batch, then by decreasing score (TensorRT); ties by class, then box index.
    Extension `onnx_order`: by batch, then class, then decreasing score (ONNX).
    """

    name = "nms"
    layer_type = LayerType.NMS
    num_inputs = (3, 5)
    num_outputs = 2
    shape_inputs = frozenset({2})
    data_dependent = True
    attrs = {
        "bounding_box_format": Enum(BoundingBoxFormat, BoundingBoxFormat.CORNER_PAIRS),
        "topk_box_limit": Int(MAX_TOPK_BOX_LIMIT, low=1),
        "indices_type": Enum(DataType, DataType.INT32),
        "onnx_order": Bool(False),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        boxes, scores, limit = inputs[:3]
        if boxes.dtype not in (DataType.FLOAT, DataType.HALF) or scores.dtype != boxes.dtype:
            raise ShapeError(
                "boxes and scores must both be FLOAT or both HALF, got "
                f"{boxes.dtype.name} and {scores.dtype.name}"
            )
        if scores.rank != 3:
            raise ShapeError(f"scores must have shape [batch, boxes, classes], got {_s(scores)}")
        expected = (scores.shape[0], scores.shape[1], 4)
        if boxes.rank == 4:
            expected = (*expected[:2], scores.shape[2], 4)
        if boxes.rank not in (3, 4) or not _fits(boxes.shape, expected):
            raise ShapeError(
                f"boxes must have shape [batch, boxes, 4] or [batch, boxes, classes, 4] to match "
                f"scores {_s(scores)}, got {_s(boxes)}"
            )
        if limit.dtype not in _INDEX_TYPES or limit.rank != 0:
            raise ShapeError(
                "max_output_boxes_per_class must be a 0-D INT32 or INT64 tensor, got "
                f"{limit.dtype.name} of shape {_s(limit)}"
            )
        for index, what in ((3, "IoU threshold"), (4, "score threshold")):
            meta = inputs[index] if index < len(inputs) else None
            if meta is not None and (meta.dtype != DataType.FLOAT or meta.rank != 0):
                raise ShapeError(
                    f"the {what} must be a 0-D FLOAT tensor, got {meta.dtype.name} of shape "
                    f"{_s(meta)}"
                )
        if attrs["indices_type"] not in _INDEX_TYPES:
            raise ShapeError(f"indices_type must be INT32 or INT64, got {attrs['indices_type']}")
        if attrs["topk_box_limit"] > MAX_TOPK_BOX_LIMIT:
            raise ShapeError(
                f"topk_box_limit must be at most {MAX_TOPK_BOX_LIMIT}, got {attrs['topk_box_limit']}"
            )
        return [
            TensorMeta(attrs["indices_type"], (UNKNOWN, 3)),
            TensorMeta(DataType.INT32, ()),
        ]

    def run_dynamic(
        self, inputs: list[torch.Tensor | None], attrs: dict[str, Any]
    ) -> list[torch.Tensor]:
        boxes, scores, limit = inputs[:3]
        iou_threshold = _scalar(inputs, 3)
        score_threshold = _scalar(inputs, 4)
        per_class = max(int(limit), 0)
        corners = _corners(boxes.float(), attrs["bounding_box_format"])
        scores = scores.float()
        rows = []
        for batch in range(scores.shape[0]):
            candidates = _candidates(scores[batch], score_threshold, attrs["topk_box_limit"])
            rows.append(
                _select_batch(
                    batch, corners[batch], scores[batch], candidates, iou_threshold, per_class
                )
            )
        selected = torch.cat(rows) if rows else torch.zeros((0, 4), dtype=torch.float64)
        if not attrs["onnx_order"]:
            # TensorRT: within a batch item by decreasing score; a stable sort keeps the
            # class-then-selection order among equal scores
            order = torch.sort(selected[:, 3], descending=True, stable=True).indices
            selected = selected[order]
            order = torch.sort(selected[:, 0], stable=True).indices
            selected = selected[order]
        dtype = torch.int32 if attrs["indices_type"] == DataType.INT32 else torch.int64
        indices = selected[:, :3].to(dtype=dtype, device=boxes.device).contiguous()
        count = torch.tensor(len(selected), dtype=torch.int32, device=boxes.device)
        return [indices, count]


def _candidates(scores: torch.Tensor, threshold: float, limit: int) -> torch.Tensor:
    """Mask [N, C] of the boxes of one batch item above the score threshold, at most `limit`
    of them (the best scores)."""
    mask = scores > threshold
    if int(mask.sum()) > limit:
        flat = torch.where(mask, scores, float("-inf")).flatten()
        keep = torch.sort(flat, descending=True, stable=True).indices[:limit]
        mask = torch.zeros_like(flat, dtype=torch.bool)
        mask[keep] = True
        mask = mask.view(scores.shape)
    return mask


def _select_batch(
    batch: int,
    corners: torch.Tensor,
    scores: torch.Tensor,
    candidates: torch.Tensor,
    iou_threshold: float,
    per_class: int,
) -> torch.Tensor:
    """Rows (batch, class, box, score), float64 on the CPU, of one batch item's selections,
    per class in decreasing score (equal scores: lower box index first, as ONNX)."""
    rows = []
    for cls in range(scores.shape[1]):
        boxes = corners[:, cls] if corners.dim() == 3 else corners
        chosen = torch.nonzero(candidates[:, cls]).flatten()
        if per_class == 0 or chosen.numel() == 0:
            continue
        order = torch.sort(scores[chosen, cls], descending=True, stable=True).indices
        chosen = chosen[order]
        suppresses = (_iou(boxes[chosen]) > iou_threshold).cpu().numpy()
        suppressed = np.zeros(len(chosen), dtype=bool)
        kept: list[int] = []
        for position in range(len(chosen)):
            if not suppressed[position]:
                kept.append(position)
                suppressed |= suppresses[position]
                if len(kept) == per_class:
                    break
        box_index = chosen[kept].cpu().double()
        score = scores[chosen[kept], cls].cpu().double()
        rows.append(
            torch.stack(
                [
                    torch.full_like(box_index, batch),
                    torch.full_like(box_index, cls),
                    box_index,
                    score,
                ],
                dim=1,
            )
        )
    return torch.cat(rows) if rows else torch.zeros((0, 4), dtype=torch.float64)


def _corners(boxes: torch.Tensor, fmt: BoundingBoxFormat) -> torch.Tensor:
    """Boxes as (min_a, min_b, max_a, max_b) in the box's own coordinate order."""
    if fmt == BoundingBoxFormat.CENTER_SIZES:
        center, half = boxes[..., :2], boxes[..., 2:] / 2
        return torch.cat([center - half, center + half], dim=-1)
    first, second = boxes[..., :2], boxes[..., 2:]
    return torch.cat([torch.minimum(first, second), torch.maximum(first, second)], dim=-1)


def _iou(corners: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU [K, K]; 0 for boxes that do not overlap or have no area (as ONNX)."""
    low = torch.maximum(corners[:, None, :2], corners[None, :, :2])
    high = torch.minimum(corners[:, None, 2:], corners[None, :, 2:])
    sides = high - low
    overlap = (sides > 0).all(dim=-1)
    intersection = sides.clamp(min=0).prod(dim=-1)
    area = (corners[:, 2:] - corners[:, :2]).prod(dim=-1)
    union = area[:, None] + area[None, :] - intersection
    valid = overlap & (area[:, None] > 0) & (area[None, :] > 0) & (union > 0)
    return torch.where(valid, intersection / torch.where(valid, union, 1.0), 0.0)


def _scalar(inputs: list[torch.Tensor | None], index: int) -> float:
    tensor = inputs[index] if index < len(inputs) else None
    return 0.0 if tensor is None else float(tensor.reshape(()).item())


def _fits(shape: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Whether `shape` equals `expected` where both dims are known."""
    return len(shape) == len(expected) and all(
        a == b or UNKNOWN in (a, b) for a, b in zip(shape, expected, strict=True)
    )


def _s(meta: TensorMeta) -> list[int]:
    return list(meta.shape)


OPS: list[Op] = [NMS()]
