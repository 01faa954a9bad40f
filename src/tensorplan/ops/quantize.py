"""Quantize, dequantize and dynamic quantize."""

from __future__ import annotations

from .base import Op

OPS: list[Op] = []
