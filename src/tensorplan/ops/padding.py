"""The padding op."""

from __future__ import annotations

from .base import Op

OPS: list[Op] = []
