"""Ops of the pooling family (in progress)."""

from __future__ import annotations

OPS: list = []
