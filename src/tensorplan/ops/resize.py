"""Sampling ops: resize (nearest, linear, cubic) and grid sample."""

from __future__ import annotations

from .base import Op

OPS: list[Op] = []
