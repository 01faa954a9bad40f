"""The cumulative (scan) layer."""

from __future__ import annotations

from ..layer import ILayer


class ICumulativeLayer(ILayer):
    _op_name = "cumulative"
