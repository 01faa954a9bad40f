"""Ops of the normalization family (in progress)."""

from __future__ import annotations

OPS: list = []
