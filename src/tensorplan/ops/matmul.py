"""Ops of the matmul family (in progress)."""

from __future__ import annotations

OPS: list = []
