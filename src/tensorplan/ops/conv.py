"""Ops of the conv family (in progress)."""

from __future__ import annotations

OPS: list = []
