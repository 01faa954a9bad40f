"""The fill op: tensors generated from a shape (linspace, random uniform, random normal)."""

from __future__ import annotations

from .base import Op

OPS: list[Op] = []
