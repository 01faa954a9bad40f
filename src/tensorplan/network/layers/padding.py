"""The padding layer."""

from __future__ import annotations

from ..layer import ILayer


class IPaddingLayer(ILayer):
    _op_name = "padding"
