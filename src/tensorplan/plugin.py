"""`tensorplan.plugin`: the quick plugin API (TensorRT's `tensorrt.plugin`); see plugins/quick.py.

    import tensorplan.plugin as tpp

    @tpp.register("demo::scaled_add")
    def scaled_add_desc(x: tpp.TensorDesc, y: tpp.TensorDesc, scale: float) -> tpp.TensorDesc:
        return x.like()

    @tpp.impl("demo::scaled_add")
    def scaled_add_impl(x, y, scale: float, outputs, stream) -> None:
        outputs[0].copy_(x + scale * y)

For the ONNX parser: `find_plugin_creator(op_type, domain)` and `add_onnx_plugin(...)`.
"""

from .plugins.quick import (
    AutoTuneCombination,
    ShapeExpr,
    ShapeExprs,
    TensorDesc,
    add_onnx_plugin,
    autotune,
    find_plugin_creator,
    from_shape_expr,
    impl,
    op,
    register,
)

__all__ = [
    "AutoTuneCombination",
    "ShapeExpr",
    "ShapeExprs",
    "TensorDesc",
    "add_onnx_plugin",
    "autotune",
    "find_plugin_creator",
    "from_shape_expr",
    "impl",
    "op",
    "register",
]
