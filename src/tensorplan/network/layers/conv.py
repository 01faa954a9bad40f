"""Layers of the convolution ops."""

from __future__ import annotations

from typing import Any

from ...types import Dims, Weights, as_weights
from ..layer import ILayer, attribute


class _ConvolutionBase(ILayer):
    num_output_maps = attribute("num_output_maps")
    kernel_size_nd = attribute("kernel_size_nd", Dims)
    stride_nd = attribute("stride_nd", Dims)
    padding_nd = attribute("padding_nd", Dims)
    pre_padding = attribute("pre_padding", Dims)
    post_padding = attribute("post_padding", Dims)
    padding_mode = attribute("padding_mode")
    num_groups = attribute("num_groups")
    dilation_nd = attribute("dilation_nd", Dims)

    def __init__(self, network: Any, inputs: list, attrs: dict, kernel: Any, bias: Any = None):
        super().__init__(network, inputs, attrs)
        self.kernel = kernel
        self.bias = bias if bias is not None else Weights()

    @property
    def kernel(self) -> Weights:
        return self._kernel

    @kernel.setter
    def kernel(self, value: Any) -> None:
        self._kernel = as_weights(value)
        self._network._changed()

    @property
    def bias(self) -> Weights:
        return self._bias

    @bias.setter
    def bias(self, value: Any) -> None:
        self._bias = as_weights(value)
        self._network._changed()


class IConvolutionLayer(_ConvolutionBase):
    _op_name = "convolution"


class IDeconvolutionLayer(_ConvolutionBase):
    _op_name = "deconvolution"
