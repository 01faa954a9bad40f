"""ILayer, the base of every layer, and `attribute`, which ties a layer property to its op."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..errors import report_error
from ..ops import get_op
from ..ops.base import TensorMeta, infer_node
from ..types import DataType, ErrorCodeTRT, LayerType
from .tensor import ITensor

if TYPE_CHECKING:
    from .definition import INetworkDefinition

LAYER_TYPE_NAMES = {
    LayerType.CONVOLUTION: "Convolution",
    LayerType.DECONVOLUTION: "Deconvolution",
    LayerType.MATRIX_MULTIPLY: "Matrix Multiply",
    LayerType.ELEMENTWISE: "ElementWise",
    LayerType.UNARY: "Unary",
    LayerType.ACTIVATION: "Activation",
    LayerType.SELECT: "Select",
    LayerType.CAST: "Cast",
    LayerType.IDENTITY: "Identity",
    LayerType.CONSTANT: "Constant",
    LayerType.POOLING: "Pooling",
    LayerType.SHUFFLE: "Shuffle",
    LayerType.REDUCE: "Reduce",
    LayerType.SOFTMAX: "Softmax",
    LayerType.CONCATENATION: "Concatenation",
    LayerType.SLICE: "Slice",
    LayerType.GATHER: "Gather",
    LayerType.SHAPE: "Shape",
    LayerType.TOPK: "TopK",
    LayerType.NORMALIZATION: "Normalization",
    LayerType.RESIZE: "Resize",
    LayerType.GRID_SAMPLE: "GridSample",
    LayerType.PADDING: "Padding",
    LayerType.SCALE: "Scale",
    LayerType.PARAMETRIC_RELU: "ParametricReLU",
    LayerType.LRN: "LRN",
    LayerType.SCATTER: "Scatter",
    LayerType.ONE_HOT: "OneHot",
    LayerType.REVERSE_SEQUENCE: "ReverseSequence",
    LayerType.CUMULATIVE: "Cumulative",
    LayerType.SQUEEZE: "Squeeze",
    LayerType.UNSQUEEZE: "Unsqueeze",
    LayerType.FILL: "Fill",
    LayerType.EINSUM: "Einsum",
    LayerType.QUANTIZE: "Quantize",
    LayerType.DEQUANTIZE: "Dequantize",
    LayerType.DYNAMIC_QUANTIZE: "DynamicQuantize",
    LayerType.PLUGIN_V3: "PluginV3",
    LayerType.NON_ZERO: "NonZero",
    LayerType.NMS: "NMS",
    LayerType.PLUGIN: "Plugin",
}


class attribute:
    """A layer property stored in the layer's op attributes, checked by the op's schema.

    `wrap` converts the stored value for the getter (e.g. a tuple to Dims).
    """

    def __init__(self, key: str, wrap: Callable[[Any], Any] | None = None) -> None:
        self.key = key
        self.wrap = wrap

    def __get__(self, layer: ILayer | None, owner: type) -> Any:
        if layer is None:
            return self
        value = layer._attrs[self.key]
        return self.wrap(value) if self.wrap is not None and value is not None else value

    def __set__(self, layer: ILayer, value: Any) -> None:
        spec = get_op(layer._op_name).attrs[self.key]
        layer._attrs[self.key] = spec.check(value)
        layer._network._changed(layer)


class ILayer:
    """A layer of a network: one op of the IR with its inputs, attributes and outputs."""

    _op_name: ClassVar[str | None]
    """The op this layer is; None for layers that lower to something else (constants)."""
    _layer_type: ClassVar[LayerType | None] = None

    def __init__(
        self,
        network: INetworkDefinition,
        inputs: list[ITensor | None],
        attrs: dict[str, Any] | None = None,
        num_outputs: int | None = None,
    ) -> None:
        op = get_op(self._op_name) if self._op_name else None
        self._network = network
        self._inputs = list(inputs)
        self._attrs = op.check_attrs(attrs or {}) if op else {}
        self._index = network.num_layers
        self._name = f"(Unnamed Layer* {self._index}) [{LAYER_TYPE_NAMES.get(self._kind())}]"
        count = num_outputs if num_outputs is not None else op.num_outputs if op else 1
        suffixes = ["_output"] if count == 1 else [f"_output_{i}" for i in range(count)]
        self._outputs = [ITensor(network, self._name + s, producer=self) for s in suffixes]
        self._precision: DataType | None = None
        self._output_types: dict[int, DataType] = {}
        self.metadata = ""

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = str(value)

    @property
    def type(self) -> LayerType:
        return self._kind()

    def _kind(self) -> LayerType:
        """The layer type (subclasses such as IActivationLayer reuse `type` for their own kind)."""
        if self._layer_type is not None:
            return self._layer_type
        return get_op(self._op_name).layer_type

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_input(self, index: int) -> ITensor | None:
        return self._inputs[index] if 0 <= index < len(self._inputs) else None

    def set_input(self, index: int, tensor: ITensor) -> None:
        high = get_op(self._op_name).num_inputs[1]
        if not 0 <= index < high or not isinstance(tensor, ITensor):
            report_error(
                self._network,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "ILayer::setInput",
                f"layer '{self._name}' takes inputs 0 to {high - 1} as ITensor, got index {index}",
            )
            return
        while len(self._inputs) <= index:
            self._inputs.append(None)
        self._inputs[index] = tensor
        self._network._changed(self)

    def get_output(self, index: int) -> ITensor | None:
        return self._outputs[index] if 0 <= index < len(self._outputs) else None

    @property
    def precision(self) -> DataType:
        return self._precision if self._precision is not None else DataType.FLOAT

    @precision.setter
    def precision(self, value: DataType) -> None:
        self._precision = DataType(value)

    @property
    def precision_is_set(self) -> bool:
        return self._precision is not None

    def reset_precision(self) -> None:
        self._precision = None

    def set_output_type(self, index: int, dtype: DataType) -> None:
        self._output_types[index] = DataType(dtype)
        self._network._changed(self)

    def get_output_type(self, index: int) -> DataType:
        if index in self._output_types:
            return self._output_types[index]
        output = self.get_output(index)
        return output.dtype if output is not None else DataType.FLOAT

    def output_type_is_set(self, index: int) -> bool:
        return index in self._output_types

    def reset_output_type(self, index: int) -> None:
        self._output_types.pop(index, None)
        self._network._changed(self)

    def _infer(self, inputs: list[TensorMeta | None]) -> list[TensorMeta]:
        """Output metas from the metas of `_node_inputs()`."""
        return infer_node(get_op(self._op_name), inputs, self._attrs, values_known=False)

    def _node_inputs(self) -> list[ITensor | torch.Tensor | None]:
        """The op's inputs: tensors of the network, or constants made from the layer's weights."""
        return list(self._inputs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r}>"
