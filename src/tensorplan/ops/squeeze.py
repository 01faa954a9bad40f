"""Squeeze and unsqueeze: remove or insert size-1 dims at axes given as a shape tensor."""

from __future__ import annotations

from .base import Op

OPS: list[Op] = []
