"""The Einstein-summation layer."""

from __future__ import annotations

from ..layer import ILayer, attribute


class IEinsumLayer(ILayer):
    """Einstein summation of its inputs by `equation` (see ops/einsum.py for the extensions)."""

    _op_name = "einsum"
    equation = attribute("equation")
