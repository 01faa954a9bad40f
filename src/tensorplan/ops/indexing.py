"""Ops that move elements by index: scatter, one-hot and reverse sequence."""

from __future__ import annotations

from .base import Op

OPS: list[Op] = []
