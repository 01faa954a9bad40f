"""Layers of the pointwise ops."""

from __future__ import annotations

from ..layer import ILayer, attribute


class IElementWiseLayer(ILayer):
    """A binary operation of two tensors of equal rank, with broadcast of size-1 dims."""

    _op_name = "elementwise"
    op = attribute("op")


class IUnaryLayer(ILayer):
    _op_name = "unary"
    op = attribute("op")


class IActivationLayer(ILayer):
    _op_name = "activation"
    type = attribute("type")
    alpha = attribute("alpha")
    beta = attribute("beta")


class ISelectLayer(ILayer):
    _op_name = "select"


class ICastLayer(ILayer):
    _op_name = "cast"
    to_type = attribute("to_type")


class IIdentityLayer(ILayer):
    _op_name = "identity"
