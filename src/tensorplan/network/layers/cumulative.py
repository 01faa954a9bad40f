"""The cumulative (scan) layer."""

from __future__ import annotations

from ..layer import ILayer, attribute


class ICumulativeLayer(ILayer):
    _op_name = "cumulative"
    op = attribute("op")
    exclusive = attribute("exclusive")
    reverse = attribute("reverse")
