"""ITensor: a tensor of a network definition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import report_error
from ..plan.format import MAX_RANK
from ..types import DataType, Dims, ErrorCodeTRT, TensorLocation, as_shape

if TYPE_CHECKING:
    from .definition import INetworkDefinition
    from .layer import ILayer


class ITensor:
    """A tensor in an INetworkDefinition: a network input or a layer's output."""

    def __init__(
        self,
        network: INetworkDefinition,
        name: str,
        producer: ILayer | None = None,
        dtype: DataType = DataType.FLOAT,
        shape: tuple[int, ...] = (),
    ) -> None:
        self._network = network
        self._name = name
        self._producer = producer
        self._input_dtype = DataType(dtype)
        self._input_shape = tuple(shape)
        self._requested_dtype: DataType | None = None
        self._dimension_names: dict[int, str] = {}
        self._dynamic_range: tuple[float, float] | None = None
        self.location = TensorLocation.DEVICE
        self.allowed_formats = 1
        self.broadcast_across_batch = False

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = str(value)  # shapes do not depend on names: nothing to re-infer

    @property
    def shape(self) -> Dims:
        """The shape, with -1 for dimensions known only at run time."""
        if self._producer is None:
            return Dims(self._input_shape)
        meta = self._network._meta(self)
        return Dims(meta.shape) if meta is not None else Dims()

    @shape.setter
    def shape(self, value: Any) -> None:
        if self._producer is not None:
            report_error(
                self._network,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "ITensor::setDimensions",
                f"tensor '{self._name}' is not a network input; only inputs have a settable shape",
            )
            return
        shape = as_shape(value)
        if len(shape) > MAX_RANK:
            report_error(
                self._network,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "ITensor::setDimensions",
                f"input '{self._name}': {len(shape)} dimensions; at most {MAX_RANK} are supported",
            )
            return
        self._input_shape = shape
        self._network._changed()

    @property
    def dtype(self) -> DataType:
        if self._requested_dtype is not None:
            return self._requested_dtype
        if self._producer is None:
            return self._input_dtype
        meta = self._network._meta(self)
        return meta.dtype if meta is not None else DataType.FLOAT

    @dtype.setter
    def dtype(self, value: DataType) -> None:
        value = DataType(value)
        if self._producer is None:
            self._input_dtype = value
        else:
            self._requested_dtype = value
        self._network._changed(self._producer)

    @property
    def is_network_input(self) -> bool:
        return self._producer is None and self in self._network._inputs

    @property
    def is_network_output(self) -> bool:
        return self in self._network._outputs

    @property
    def is_shape_tensor(self) -> bool:
        """Whether the tensor's values are used as a shape (computed on the host)."""
        return self._network._is_shape_tensor(self)

    is_shape = is_shape_tensor

    @property
    def is_execution_tensor(self) -> bool:
        return not self.is_shape_tensor or self.is_network_output

    @property
    def dynamic_range(self) -> tuple[float, float] | None:
        return self._dynamic_range

    @dynamic_range.setter
    def dynamic_range(self, value: tuple[float, float]) -> None:
        low, high = value
        self._dynamic_range = (float(low), float(high))

    def set_dynamic_range(self, min: float, max: float) -> bool:
        self.dynamic_range = (min, max)
        return True

    def reset_dynamic_range(self) -> None:
        self._dynamic_range = None

    def get_dimension_name(self, index: int) -> str | None:
        return self._dimension_names.get(index)

    def set_dimension_name(self, index: int, name: str | None) -> None:
        if name is None:
            self._dimension_names.pop(index, None)
        else:
            self._dimension_names[index] = name

    def __repr__(self) -> str:
        return f"<ITensor {self._name!r}>"
