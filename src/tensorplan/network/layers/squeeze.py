"""Layers that remove or insert size-1 dims."""

from __future__ import annotations

from ..layer import ILayer


class ISqueezeLayer(ILayer):
    _op_name = "squeeze"


class IUnsqueezeLayer(ILayer):
    _op_name = "unsqueeze"
