"""Per-channel ops: scale, parametric ReLU and local response normalization."""

from __future__ import annotations

from .base import Op

OPS: list[Op] = []
