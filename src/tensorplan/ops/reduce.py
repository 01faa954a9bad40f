"""Ops of the reduce family (in progress)."""

from __future__ import annotations

OPS: list = []
