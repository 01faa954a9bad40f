"""INMSLayer, and the extension layers tensorplan adds beyond TensorRT's layer set.

The extension layers report LayerType.PLUGIN (TensorRT would run these ops as plugins);
docs/api-differences.md describes each.
"""

from __future__ import annotations

from ...types import Dims
from ..layer import ILayer, attribute


class IBitCastLayer(ILayer):
    """Extension (ONNX BitCast): the input's bytes read as `to_type` (same element size)."""

    _op_name = "bitcast"
    to_type = attribute("to_type")


class INMSLayer(ILayer):
    """Non-maximum suppression; SelectedIndices has a data-dependent first dimension.

    Extensions: `indices_type` (INT32, default, or INT64) and `onnx_order` (False: rows by
    batch then decreasing score, as TensorRT; True: by batch, class, then decreasing score,
    as ONNX NonMaxSuppression).
    """

    _op_name = "nms"
    bounding_box_format = attribute("bounding_box_format")
    topk_box_limit = attribute("topk_box_limit")
    indices_type = attribute("indices_type")
    onnx_order = attribute("onnx_order")


class IUniqueLayer(ILayer):
    """Extension (ONNX Unique): outputs Y, indices, inverse_indices and counts; all but
    inverse_indices have a data-dependent size. `axis` None (default) treats the input as
    flat; `sorted` (default True) orders Y ascending, else by first occurrence."""

    _op_name = "unique"
    axis = attribute("axis")
    sorted = attribute("sorted")


class ILpPoolingLayer(ILayer):
    """Extension (ONNX LpPool): the p-norm of each window of the trailing 1 to 3 dims,
    padding counting as zeros. Empty stride/dilation/padding mean ones and zeros."""

    _op_name = "lp_pooling"
    window_size_nd = attribute("window_size_nd", Dims)
    stride_nd = attribute("stride_nd", Dims)
    dilation_nd = attribute("dilation_nd", Dims)
    pre_padding = attribute("pre_padding", Dims)
    post_padding = attribute("post_padding", Dims)
    padding_mode = attribute("padding_mode")
    p = attribute("p")


class IDetLayer(ILayer):
    """Extension (ONNX Det): determinants of the square matrices in the last two dims."""

    _op_name = "det"


class IDFTLayer(ILayer):
    """Extension (ONNX DFT, opset 20): complex values as a trailing dim of 2 (real input:
    1). Input 1 (set_input), optional: dft_length, a 0-D INT32/INT64 shape tensor."""

    _op_name = "dft"
    axis = attribute("axis")
    inverse = attribute("inverse")
    onesided = attribute("onesided")


class ISTFTLayer(ILayer):
    """Extension (ONNX STFT): inputs signal, frame_step (shape tensor), then optional window
    (input 2) and frame_length (input 3, shape tensor) through set_input."""

    _op_name = "stft"
    onesided = attribute("onesided")


class IMaxUnpoolLayer(ILayer):
    """Extension (ONNX MaxUnpool): inputs values and INT32/INT64 indices, then optionally
    output_shape (input 2, a shape tensor) through set_input."""

    _op_name = "max_unpool"
    kernel_shape = attribute("kernel_shape", Dims)
    strides = attribute("strides", Dims)
    pads = attribute("pads", Dims)


class ICol2ImLayer(ILayer):
    """Extension (ONNX Col2Im): inputs blocks, image_shape and block_shape (shape tensors)."""

    _op_name = "col2im"
    dilations = attribute("dilations", Dims)
    pads = attribute("pads", Dims)
    strides = attribute("strides", Dims)
