"""The cumulative op: running sums and products along an axis."""

from __future__ import annotations

from .base import Op

OPS: list[Op] = []
