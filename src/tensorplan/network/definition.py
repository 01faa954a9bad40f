"""INetworkDefinition: the network API, and network-level shape inference."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..device import torch_dtype
from ..errors import report_error
from ..ops import get_op
from ..ops.base import ShapeError, TensorMeta, meta_of
from ..ops.recurrent import RNNOperation
from ..plan.format import MAX_RANK
from ..types import (
    ActivationType,
    CumulativeOperation,
    DataType,
    ElementWiseOperation,
    ErrorCodeTRT,
    FillOperation,
    GatherMode,
    MatrixOperation,
    NetworkDefinitionCreationFlag,
    PoolingType,
    ReduceOperation,
    ScaleMode,
    ScatterMode,
    TopKOperation,
    UnaryOperation,
    Weights,
    as_shape,
)
from .layer import ILayer
from .layers.constant import IConstantLayer
from .layers.conv import IConvolutionLayer, IDeconvolutionLayer
from .layers.cumulative import ICumulativeLayer
from .layers.einsum import IEinsumLayer
from .layers.elementwise import (
    IActivationLayer,
    ICastLayer,
    IElementWiseLayer,
    IIdentityLayer,
    ISelectLayer,
    IUnaryLayer,
)
from .layers.extension import (
    IBitCastLayer,
    ICol2ImLayer,
    IDetLayer,
    IDFTLayer,
    ILpPoolingLayer,
    IMaxUnpoolLayer,
    INMSLayer,
    ISTFTLayer,
    IUniqueLayer,
)
from .layers.fill import IFillLayer
from .layers.indexing import IOneHotLayer, IReverseSequenceLayer, IScatterLayer
from .layers.matmul import IMatrixMultiplyLayer
from .layers.nonzero import INonZeroLayer
from .layers.normalization import INormalizationLayer, ISoftMaxLayer
from .layers.padding import IPaddingLayer
from .layers.plugin import IPluginV3Layer
from .layers.pooling import IPoolingLayer
from .layers.quantize import IDequantizeLayer, IDynamicQuantizeLayer, IQuantizeLayer
from .layers.recurrent import IRNNLayer
from .layers.reduce import IReduceLayer, ITopKLayer
from .layers.resize import IGridSampleLayer, IResizeLayer
from .layers.scale import ILRNLayer, IParametricReLULayer, IScaleLayer
from .layers.shaping import (
    IConcatenationLayer,
    IGatherLayer,
    IShapeLayer,
    IShuffleLayer,
    ISliceLayer,
)
from .layers.squeeze import ISqueezeLayer, IUnsqueezeLayer
from .tensor import ITensor

if TYPE_CHECKING:
    from ..builder.builder import Builder

_network_numbers = itertools.count()


class INetworkDefinition:
    """A network of layers from which the Builder builds an engine (always explicit batch)."""

    def __init__(self, builder: Builder | None = None, flags: int = 0) -> None:
        self._builder = builder
        self._flags = int(flags)
        self._logger = builder.logger if builder is not None else None
        self._error_recorder = builder.error_recorder if builder is not None else None
        self.name = f"Unnamed Network {next(_network_numbers)}"
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._layers: list[ILayer] = []
        self._metas: dict[ITensor, TensorMeta | None] = {}
        self._errors: dict[ILayer, str] = {}
        self._reported: set[ILayer] = set()
        self._inferred_layers = 0
        """How many of the first layers `infer_in_order` has inferred since the last change."""

    # -- properties -------------------------------------------------------------------------

    @property
    def builder(self) -> Builder | None:
        return self._builder

    @property
    def flags(self) -> int:
        return self._flags

    def get_flag(self, flag: NetworkDefinitionCreationFlag) -> bool:
        return bool(self._flags >> int(flag) & 1)

    @property
    def has_implicit_batch_dimension(self) -> bool:
        return False

    @property
    def error_recorder(self) -> Any:
        return self._error_recorder

    @error_recorder.setter
    def error_recorder(self, recorder: Any) -> None:
        self._error_recorder = recorder

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_layer(self, index: int) -> ILayer | None:
        return self._layers[index] if 0 <= index < len(self._layers) else None

    def get_input(self, index: int) -> ITensor | None:
        return self._inputs[index] if 0 <= index < len(self._inputs) else None

    def get_output(self, index: int) -> ITensor | None:
        return self._outputs[index] if 0 <= index < len(self._outputs) else None

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, index: int) -> ILayer:
        if not -len(self._layers) <= index < len(self._layers):
            raise IndexError(f"layer index {index} out of range for {len(self._layers)} layers")
        return self._layers[index]

    def __enter__(self) -> INetworkDefinition:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    # -- inputs and outputs -----------------------------------------------------------------

    def add_input(self, name: str, dtype: DataType, shape: Any) -> ITensor | None:
        api = "INetworkDefinition::addInput"
        if not isinstance(name, str) or not name:
            return self._invalid(api, "an input needs a non-empty name")
        if any(t.name == name for t in self._inputs):
            return self._invalid(api, f"the network already has an input named '{name}'")
        try:
            dims = as_shape(shape)
            dtype = DataType(dtype)
        except (TypeError, ValueError) as error:
            return self._invalid(api, f"input '{name}': {error}")
        if any(d < -1 for d in dims):
            return self._invalid(api, f"input '{name}' has invalid dimensions {list(dims)}")
        if len(dims) > MAX_RANK:
            return self._invalid(
                api, f"input '{name}' has {len(dims)} dimensions; at most {MAX_RANK} are supported"
            )
        tensor = ITensor(self, name, dtype=dtype, shape=dims)
        self._inputs.append(tensor)
        return tensor

    def mark_output(self, tensor: ITensor) -> None:
        if not self._owns(tensor, "INetworkDefinition::markOutput"):
            return
        if tensor not in self._outputs:
            self._outputs.append(tensor)

    def unmark_output(self, tensor: ITensor) -> None:
        if tensor in self._outputs:
            self._outputs.remove(tensor)

    def remove_tensor(self, tensor: ITensor) -> None:
        if tensor in self._inputs:
            self._inputs.remove(tensor)
            self._changed()

    # -- layers -----------------------------------------------------------------------------

    def add_constant(self, shape: Any, weights: Weights) -> IConstantLayer | None:
        try:
            return self._append(IConstantLayer(self, shape, weights))
        except (TypeError, ValueError) as error:
            return self._invalid("INetworkDefinition::addConstant", str(error))

    def add_elementwise(
        self, input1: ITensor, input2: ITensor, op: ElementWiseOperation
    ) -> IElementWiseLayer | None:
        return self._add(IElementWiseLayer, [input1, input2], {"op": op})

    def add_unary(self, input: ITensor, op: UnaryOperation) -> IUnaryLayer | None:
        return self._add(IUnaryLayer, [input], {"op": op})

    def add_activation(self, input: ITensor, type: ActivationType) -> IActivationLayer | None:
        return self._add(IActivationLayer, [input], {"type": type})

    def add_select(
        self, condition: ITensor, then_input: ITensor, else_input: ITensor
    ) -> ISelectLayer | None:
        return self._add(ISelectLayer, [condition, then_input, else_input], {})

    def add_cast(self, input: ITensor, to_type: DataType) -> ICastLayer | None:
        return self._add(ICastLayer, [input], {"to_type": to_type})

    def add_identity(self, input: ITensor) -> IIdentityLayer | None:
        return self._add(IIdentityLayer, [input], {})

    def add_matrix_multiply(
        self, input0: ITensor, op0: MatrixOperation, input1: ITensor, op1: MatrixOperation
    ) -> IMatrixMultiplyLayer | None:
        return self._add(IMatrixMultiplyLayer, [input0, input1], {"op0": op0, "op1": op1})

    def add_convolution_nd(
        self,
        input: ITensor,
        num_output_maps: int,
        kernel_shape: Any,
        kernel: Weights,
        bias: Weights | None = None,
    ) -> IConvolutionLayer | None:
        attrs = {"num_output_maps": num_output_maps, "kernel_size_nd": kernel_shape}
        return self._add(IConvolutionLayer, [input], attrs, kernel=kernel, bias=bias)

    def add_deconvolution_nd(
        self,
        input: ITensor,
        num_output_maps: int,
        kernel_shape: Any,
        kernel: Weights,
        bias: Weights | None = None,
    ) -> IDeconvolutionLayer | None:
        attrs = {"num_output_maps": num_output_maps, "kernel_size_nd": kernel_shape}
        return self._add(IDeconvolutionLayer, [input], attrs, kernel=kernel, bias=bias)

    def add_pooling_nd(
        self, input: ITensor, type: PoolingType, window_size: Any
    ) -> IPoolingLayer | None:
        return self._add(IPoolingLayer, [input], {"type": type, "window_size_nd": window_size})

    def add_shuffle(self, input: ITensor) -> IShuffleLayer | None:
        return self._add(IShuffleLayer, [input], {})

    def add_concatenation(self, inputs: Sequence[ITensor]) -> IConcatenationLayer | None:
        inputs = list(inputs)
        first = inputs[0] if inputs else None
        rank = len(first.shape) if isinstance(first, ITensor) and first._network is self else 0
        return self._add(IConcatenationLayer, inputs, {"axis": max(rank - 3, 0)})

    def add_slice(self, input: ITensor, start: Any, shape: Any, stride: Any) -> ISliceLayer | None:
        attrs = {"start": start, "shape": shape, "stride": stride}
        return self._add(ISliceLayer, [input], attrs)

    def add_gather(self, input: ITensor, indices: ITensor, axis: int) -> IGatherLayer | None:
        return self._add(IGatherLayer, [input, indices], {"axis": axis})

    def add_gather_v2(
        self, input: ITensor, indices: ITensor, mode: GatherMode
    ) -> IGatherLayer | None:
        return self._add(IGatherLayer, [input, indices], {"mode": mode})

    def add_shape(self, input: ITensor) -> IShapeLayer | None:
        return self._add(IShapeLayer, [input], {})

    def add_reduce(
        self, input: ITensor, op: ReduceOperation, axes: int, keep_dims: bool
    ) -> IReduceLayer | None:
        attrs = {"op": op, "axes": axes, "keep_dims": keep_dims}
        return self._add(IReduceLayer, [input], attrs)

    def add_topk(self, input: ITensor, op: TopKOperation, k: int, axes: int) -> ITopKLayer | None:
        return self._add(ITopKLayer, [input], {"op": op, "k": k, "axes": axes})

    def add_softmax(self, input: ITensor) -> ISoftMaxLayer | None:
        # TensorRT's default axis: rank - 3, or 0 for inputs of rank below 3
        rank = len(input.shape) if isinstance(input, ITensor) and input._network is self else 0
        return self._add(ISoftMaxLayer, [input], {"axes": 1 << max(rank - 3, 0)})

    def add_normalization(
        self, input: ITensor, scale: ITensor, bias: ITensor, axesMask: int
    ) -> INormalizationLayer | None:
        return self._add(INormalizationLayer, [input, scale, bias], {"axes": axesMask})

    def add_non_zero(self, input: ITensor) -> INonZeroLayer | None:
        return self._add(INonZeroLayer, [input], {})

    def add_rnn(
        self,
        input: ITensor,
        mode: RNNOperation,
        weights: ITensor,
        recurrence: ITensor,
        bias: ITensor | None = None,
        sequence_lens: ITensor | None = None,
        initial_h: ITensor | None = None,
        initial_c: ITensor | None = None,
        peepholes: ITensor | None = None,
    ) -> IRNNLayer | None:
        """Extension: ONNX RNN/GRU/LSTM (`mode`, an RNNOperation) over X, W, R and the optional
        ONNX inputs B, sequence_lens, initial_h, initial_c and P."""
        optional = [bias, sequence_lens, initial_h, initial_c, peepholes]
        return self._add(IRNNLayer, [input, weights, recurrence], {"mode": mode}, optional=optional)

    def add_nms(
        self, boxes: ITensor, scores: ITensor, max_output_boxes_per_class: ITensor
    ) -> INMSLayer | None:
        return self._add(INMSLayer, [boxes, scores, max_output_boxes_per_class], {})

    def add_bitcast(self, input: ITensor, to_type: DataType) -> IBitCastLayer | None:
        """Extension: ONNX BitCast (see IBitCastLayer)."""
        return self._add(IBitCastLayer, [input], {"to_type": to_type})

    def add_unique(self, input: ITensor) -> IUniqueLayer | None:
        """Extension: ONNX Unique (see IUniqueLayer)."""
        return self._add(IUniqueLayer, [input], {})

    def add_lp_pooling(self, input: ITensor, window_size: Any, p: float) -> ILpPoolingLayer | None:
        """Extension: ONNX LpPool (see ILpPoolingLayer)."""
        return self._add(ILpPoolingLayer, [input], {"window_size_nd": window_size, "p": p})

    def add_det(self, input: ITensor) -> IDetLayer | None:
        """Extension: ONNX Det (see IDetLayer)."""
        return self._add(IDetLayer, [input], {})

    def add_dft(
        self, input: ITensor, axis: int, inverse: bool = False, onesided: bool = False
    ) -> IDFTLayer | None:
        """Extension: ONNX DFT (see IDFTLayer); set dft_length with set_input(1, ...)."""
        attrs = {"axis": axis, "inverse": inverse, "onesided": onesided}
        return self._add(IDFTLayer, [input], attrs)

    def add_stft(
        self, signal: ITensor, frame_step: ITensor, onesided: bool = True
    ) -> ISTFTLayer | None:
        """Extension: ONNX STFT (see ISTFTLayer); window and frame_length by set_input."""
        return self._add(ISTFTLayer, [signal, frame_step], {"onesided": onesided})

    def add_max_unpool(
        self, input: ITensor, indices: ITensor, kernel_shape: Any
    ) -> IMaxUnpoolLayer | None:
        """Extension: ONNX MaxUnpool (see IMaxUnpoolLayer)."""
        return self._add(IMaxUnpoolLayer, [input, indices], {"kernel_shape": kernel_shape})

    def add_col2im(
        self, input: ITensor, image_shape: ITensor, block_shape: ITensor
    ) -> ICol2ImLayer | None:
        """Extension: ONNX Col2Im (see ICol2ImLayer)."""
        return self._add(ICol2ImLayer, [input, image_shape, block_shape], {})

    def add_resize(self, input: ITensor) -> IResizeLayer | None:
        return self._add(IResizeLayer, [input], {})

    def add_grid_sample(self, input: ITensor, grid: ITensor) -> IGridSampleLayer | None:
        return self._add(IGridSampleLayer, [input, grid], {})

    def add_padding_nd(
        self, input: ITensor, pre_padding: Any, post_padding: Any
    ) -> IPaddingLayer | None:
        attrs = {"pre_padding_nd": pre_padding, "post_padding_nd": post_padding}
        return self._add(IPaddingLayer, [input], attrs)

    def add_scale(
        self,
        input: ITensor,
        mode: ScaleMode,
        shift: Weights | None = None,
        scale: Weights | None = None,
        power: Weights | None = None,
    ) -> IScaleLayer | None:
        # TensorRT: the channel axis is the third from last (C of NCHW)
        rank = len(input.shape) if isinstance(input, ITensor) and input._network is self else 0
        return self.add_scale_nd(input, mode, shift, scale, power, max(rank - 3, 0))

    def add_scale_nd(
        self,
        input: ITensor,
        mode: ScaleMode,
        shift: Weights | None = None,
        scale: Weights | None = None,
        power: Weights | None = None,
        channel_axis: int = 0,
    ) -> IScaleLayer | None:
        attrs = {"mode": mode, "channel_axis": channel_axis}
        return self._add(IScaleLayer, [input], attrs, shift=shift, scale=scale, power=power)

    def add_parametric_relu(self, input: ITensor, slopes: ITensor) -> IParametricReLULayer | None:
        return self._add(IParametricReLULayer, [input, slopes], {})

    def add_lrn(
        self, input: ITensor, window: int, alpha: float, beta: float, k: float
    ) -> ILRNLayer | None:
        attrs = {"window_size": window, "alpha": alpha, "beta": beta, "k": k}
        return self._add(ILRNLayer, [input], attrs)

    def add_scatter(
        self, data: ITensor, indices: ITensor, updates: ITensor, mode: ScatterMode
    ) -> IScatterLayer | None:
        return self._add(IScatterLayer, [data, indices, updates], {"mode": mode})

    def add_one_hot(
        self, indices: ITensor, values: ITensor, depth: ITensor, axis: int
    ) -> IOneHotLayer | None:
        return self._add(IOneHotLayer, [indices, values, depth], {"axis": axis})

    def add_reverse_sequence(
        self, input: ITensor, sequence_lens: ITensor
    ) -> IReverseSequenceLayer | None:
        return self._add(IReverseSequenceLayer, [input, sequence_lens], {})

    def add_cumulative(
        self,
        input: ITensor,
        axis: ITensor,
        op: CumulativeOperation,
        exclusive: bool,
        reverse: bool,
    ) -> ICumulativeLayer | None:
        attrs = {"op": op, "exclusive": exclusive, "reverse": reverse}
        return self._add(ICumulativeLayer, [input, axis], attrs)

    def add_squeeze(self, input: ITensor, axes: ITensor) -> ISqueezeLayer | None:
        return self._add(ISqueezeLayer, [input, axes], {})

    def add_unsqueeze(self, input: ITensor, axes: ITensor) -> IUnsqueezeLayer | None:
        return self._add(IUnsqueezeLayer, [input, axes], {})

    def add_fill(
        self, shape: Any, op: FillOperation, output_type: DataType = DataType.FLOAT
    ) -> IFillLayer | None:
        attrs = {"dimensions": shape, "operation": op, "to_type": output_type}
        return self._add(IFillLayer, [], attrs)

    def add_einsum(self, inputs: Sequence[ITensor], equation: str) -> IEinsumLayer | None:
        return self._add(IEinsumLayer, list(inputs), {"equation": equation})

    def add_quantize(
        self, input: ITensor, scale: ITensor, output_type: DataType = DataType.INT8
    ) -> IQuantizeLayer | None:
        return self._add(IQuantizeLayer, [input, scale], {"to_type": output_type})

    def add_dequantize(
        self, input: ITensor, scale: ITensor, output_type: DataType = DataType.FLOAT
    ) -> IDequantizeLayer | None:
        return self._add(IDequantizeLayer, [input, scale], {"to_type": output_type})

    def add_dynamic_quantize(
        self,
        input: ITensor,
        axis: int,
        block_size: int,
        output_type: DataType,
        scale_type: DataType,
    ) -> IDynamicQuantizeLayer | None:
        attrs = {
            "axis": axis,
            "block_size": block_size,
            "to_type": output_type,
            "scale_type": scale_type,
        }
        return self._add(IDynamicQuantizeLayer, [input], attrs)

    def add_plugin_v3(
        self, inputs: Sequence[ITensor], shape_inputs: Sequence[ITensor], plugin: Any
    ) -> IPluginV3Layer | None:
        """A layer computed by `plugin` (an IPluginV3 with core, build and runtime capabilities)."""
        inputs, shape_inputs = list(inputs), list(shape_inputs)
        return self._add(
            IPluginV3Layer,
            [*inputs, *shape_inputs],
            {},
            plugin=plugin,
            num_shape_inputs=len(shape_inputs),
        )

    # -- internals --------------------------------------------------------------------------

    def _add(self, layer_type: type[ILayer], inputs: list, attrs: dict, **extra: Any):
        """Create and append a layer; None with a reported error for invalid arguments."""
        api = f"INetworkDefinition::add{layer_type.__name__[1:-5]}"
        if not inputs and layer_type._op_name and get_op(layer_type._op_name).num_inputs[0]:
            return self._invalid(api, "the layer needs at least one input tensor")
        for index, tensor in enumerate(inputs):
            if not self._owns(tensor, api, f"input {index}"):
                return None
        try:
            layer = layer_type(self, inputs, attrs, **extra)
        except (TypeError, ValueError) as error:
            return self._invalid(api, str(error))
        return self._append(layer)

    def _append(self, layer: ILayer) -> ILayer:
        self._layers.append(layer)
        return layer

    def _owns(self, tensor: Any, api: str, what: str = "tensor") -> bool:
        if isinstance(tensor, ITensor) and tensor._network is self:
            return True
        detail = f"{what} must be an ITensor of this network, got {type(tensor).__name__}"
        report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, detail)
        return False

    def _invalid(self, api: str, detail: str) -> None:
        report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, detail)
        return None

    def _changed(self, layer: ILayer | None = None) -> None:
        """Something that shapes depend on changed (in `layer`, when given): forget every
        inferred shape. A layer not inferred yet has nothing inferred downstream of it (a
        layer is inferred after its inputs), so its changes forget nothing; this keeps
        importers that configure each new layer linear."""
        fresh = layer is not None and all(t not in self._metas for t in layer._outputs)
        if fresh:  # nothing inferred reads it, a layer that failed included
            return
        self._metas.clear()
        self._errors.clear()
        self._reported.clear()
        self._inferred_layers = 0

    def _infer_in_order(self, tensor: ITensor) -> None:
        """Infer the layers in creation order (a topological order) up to `tensor`'s producer,
        each once however often this is asked: so that each layer finds its inputs inferred,
        in time linear in the number of layers."""
        producer = tensor._producer
        if producer is None or tensor in self._metas:
            return
        while self._inferred_layers <= producer._index < len(self._layers):
            layer = self._layers[self._inferred_layers]
            if layer._outputs and layer._outputs[0] not in self._metas:
                self._infer_upstream(layer)
            self._inferred_layers += 1

    def _meta(self, tensor: ITensor) -> TensorMeta | None:
        """The inferred meta of a tensor; None (with the error reported once) if it has none."""
        if tensor not in self._metas:
            self._infer_upstream(tensor._producer)
        meta = self._metas.get(tensor)
        if meta is None:
            failed = self._failed_layer(tensor)
            if failed is not None and failed not in self._reported:
                self._reported.add(failed)
                report_error(
                    self,
                    ErrorCodeTRT.INVALID_CONFIG,
                    "INetworkDefinition::inferShapes",
                    self._errors[failed],
                    category="Shape Error",
                )
        return meta

    def _failed_layer(self, tensor: ITensor) -> ILayer | None:
        """The layer whose error left `tensor` without a meta."""
        layer = tensor._producer
        seen = set()
        while layer is not None and layer not in self._errors and layer not in seen:
            seen.add(layer)
            upstream = [
                t._producer
                for t in layer._node_inputs()
                if isinstance(t, ITensor) and t._producer is not None and self._metas.get(t) is None
            ]
            layer = upstream[0] if upstream else None
        return layer if layer in self._errors else None

    def _input_meta(self, tensor: ITensor) -> TensorMeta:
        return TensorMeta(tensor._input_dtype, tensor._input_shape)

    def _infer_upstream(self, target: ILayer | None) -> None:
        """Infer `target` and every layer it depends on, depth first without recursion.

        The stack is the current path (one pending producer is pushed at a time), so a
        producer met again on the path is a cycle, while one reached twice by different
        paths (a diamond, or `add_elementwise(y, y)`) is simply inferred once.
        """
        if target is None:
            return
        stack = [target]
        on_path = {target}
        while stack:
            layer = stack[-1]
            if layer._outputs[0] in self._metas:
                stack.pop()
                on_path.discard(layer)
                continue
            producer = next(
                (
                    t._producer
                    for t in layer._node_inputs()
                    if isinstance(t, ITensor) and t._producer is not None and t not in self._metas
                ),
                None,
            )
            if producer is None:
                self._infer_layer(layer)
            elif producer in on_path:
                self._fail(layer, f"layer '{layer.name}' is part of a cycle")
            else:
                stack.append(producer)
                on_path.add(producer)

    def _infer_layer(self, layer: ILayer) -> None:
        inputs: list[TensorMeta | None] = []
        for item in layer._node_inputs():
            if item is None:
                inputs.append(None)
            elif isinstance(item, torch.Tensor):
                inputs.append(meta_of(item))
            elif item._producer is None:
                inputs.append(self._input_meta(item))
            elif self._metas.get(item) is None:
                self._fail(layer)
                return
            else:
                inputs.append(self._metas[item])
        try:
            metas = layer._infer(inputs)
        except (ShapeError, ValueError, TypeError) as error:
            self._fail(layer, f"{layer.name}: {error}")
            return
        for index, meta in enumerate(metas):
            if meta.rank > MAX_RANK:
                detail = (
                    f"output {index} has {meta.rank} dimensions; at most {MAX_RANK} are supported"
                )
                self._fail(layer, f"{layer.name}: {detail}")
                return
        for index, (tensor, meta) in enumerate(zip(layer._outputs, metas, strict=False)):
            dtype = layer._output_types.get(index, tensor._requested_dtype)
            if dtype is not None and dtype != meta.dtype:
                value = None if meta.value is None else meta.value.to(torch_dtype(dtype))
                meta = TensorMeta(dtype, meta.shape, value)
            self._metas[tensor] = meta

    def _fail(self, layer: ILayer, message: str | None = None) -> None:
        if message is not None:
            self._errors[layer] = message
        for tensor in layer._outputs:
            self._metas[tensor] = None

    def _is_shape_tensor(self, tensor: ITensor) -> bool:
        """TensorRT's rule: a tensor some layer needs as a shape input, or an input of a layer
        whose output is a shape tensor (except a shape layer's input, which is only measured)."""
        needed = {
            item
            for layer in self._layers
            if layer._op_name
            for index, item in enumerate(layer._node_inputs())
            if isinstance(item, ITensor) and index in get_op(layer._op_name).shape_inputs
        }
        pending = list(needed)
        while pending:
            producer = pending.pop()._producer
            if producer is None or isinstance(producer, IShapeLayer):
                continue
            for item in producer._node_inputs():
                if isinstance(item, ITensor) and item not in needed:
                    needed.add(item)
                    pending.append(item)
        return tensor in needed
