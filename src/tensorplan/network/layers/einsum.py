"""The Einstein-summation layer."""

from __future__ import annotations

from ..layer import ILayer


class IEinsumLayer(ILayer):
    _op_name = "einsum"
