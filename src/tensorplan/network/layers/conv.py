"""Layers of the convolution ops, and what every sliding-window layer shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...ops.conv import SPATIAL_RANKS, spatial_defaults
from ...types import Dims, Weights, as_weights, volume
from ..layer import ILayer, attribute
from ..tensor import ITensor

if TYPE_CHECKING:
    from ..definition import INetworkDefinition


class WindowLayer(ILayer):
    """A layer with a 2D or 3D window, whose per-dimension defaults follow the window's rank."""

    stride_nd = attribute("stride_nd", Dims)
    pre_padding = attribute("pre_padding", Dims)
    post_padding = attribute("post_padding", Dims)
    padding_mode = attribute("padding_mode")

    _size_key: str
    """The attribute holding the window's size, whose rank sets the defaults."""

    def __init__(
        self, network: INetworkDefinition, inputs: list[ITensor | None], attrs: dict[str, Any]
    ) -> None:
        super().__init__(network, inputs, attrs)
        rank = len(self._attrs[self._size_key])
        if rank not in SPATIAL_RANKS:
            raise ValueError(
                f"{self._size_key} must have 2 or 3 dimensions, got {list(attrs[self._size_key])}"
            )
        for key, default in spatial_defaults(rank).items():
            if key in self._attrs and not self._attrs[key]:
                self._attrs[key] = default

    @property
    def padding_nd(self) -> Dims:
        """The pre-padding; setting it sets both the pre- and the post-padding (TensorRT)."""
        return self.pre_padding

    @padding_nd.setter
    def padding_nd(self, value: Any) -> None:
        self.pre_padding = value
        self.post_padding = value


class _ConvolutionBase(WindowLayer):
    """Weights `kernel` and `bias` become the op's inputs 1 and 2 unless tensors are set there."""

    _size_key = "kernel_size_nd"
    num_output_maps = attribute("num_output_maps")
    kernel_size_nd = attribute("kernel_size_nd", Dims)
    num_groups = attribute("num_groups")
    dilation_nd = attribute("dilation_nd", Dims)

    def __init__(
        self,
        network: INetworkDefinition,
        inputs: list[ITensor | None],
        attrs: dict[str, Any],
        kernel: Any,
        bias: Any = None,
    ) -> None:
        super().__init__(network, inputs, attrs)
        self._weight_tensors: dict[str, torch.Tensor] = {}
        self.kernel = kernel
        self.bias = bias if bias is not None else Weights()

    @property
    def kernel(self) -> Weights:
        return self._kernel

    @kernel.setter
    def kernel(self, value: Any) -> None:
        self._kernel = as_weights(value)
        self._weight_tensors.pop("kernel", None)
        self._network._changed(self)

    @property
    def bias(self) -> Weights:
        return self._bias

    @bias.setter
    def bias(self, value: Any) -> None:
        self._bias = as_weights(value)
        self._weight_tensors.pop("bias", None)
        self._network._changed(self)

    def _node_inputs(self) -> list[ITensor | torch.Tensor | None]:
        x, kernel, bias = (*self._inputs, None, None)[:3]
        if kernel is None:
            values = self._flat("kernel")
            kernel = values.view(self._kernel_layout(values.numel()))
        if bias is None and self._bias.size:
            bias = self._flat("bias")
        return [x, kernel, bias]

    def _flat(self, role: str) -> torch.Tensor:
        """Weights as a flat CPU tensor, copied once per assignment (TensorRT copies at build)."""
        if role not in self._weight_tensors:
            array = np.array(getattr(self, role).numpy()).reshape(-1)
            self._weight_tensors[role] = torch.from_numpy(array)
        return self._weight_tensors[role]

    def _kernel_layout(self, count: int) -> tuple[int, ...]:
        """The kernel's shape for `count` weights; flat when they fit no shape (the op says why)."""
        raise NotImplementedError


class IConvolutionLayer(_ConvolutionBase):
    _op_name = "convolution"

    def _kernel_layout(self, count: int) -> tuple[int, ...]:
        # GKCRS order: (K, C/G, *kernel_size), C/G taken from the count
        maps, kernel_size = self.num_output_maps, tuple(self.kernel_size_nd)
        per_channel = maps * volume(kernel_size)
        if count and count % per_channel == 0:
            return (maps, count // per_channel, *kernel_size)
        return (count,)


class IDeconvolutionLayer(_ConvolutionBase):
    _op_name = "deconvolution"

    def _kernel_layout(self, count: int) -> tuple[int, ...]:
        # CKRS order: (C, K/G, *kernel_size), C taken from the count
        maps, groups, kernel_size = (
            self.num_output_maps,
            self.num_groups,
            tuple(self.kernel_size_nd),
        )
        per_channel = maps // groups * volume(kernel_size)
        if maps % groups == 0 and count and count % per_channel == 0:
            return (count // per_channel, maps // groups, *kernel_size)
        return (count,)
