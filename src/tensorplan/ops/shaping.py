"""Ops of the shaping family (in progress)."""

from __future__ import annotations

OPS: list = []
