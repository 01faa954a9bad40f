"""IPluginV3Layer: a layer computed by a user's IPluginV3."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...ops.base import ShapeError, TensorMeta
from ...ops.plugin import SHAPE_INPUT_BASE, capability, describe_outputs
from ...plugins.fields import records_of
from ...types import PluginCapabilityType
from ..layer import ILayer
from ..tensor import ITensor

if TYPE_CHECKING:
    from ..definition import INetworkDefinition


class IPluginV3Layer(ILayer):
    """A plugin layer; its inputs are the data inputs followed by the shape inputs."""

    _op_name = "plugin_v3"

    def __init__(
        self,
        network: INetworkDefinition,
        inputs: list[ITensor | None],
        attrs: dict[str, Any],
        plugin: Any = None,
        num_shape_inputs: int = 0,
    ) -> None:
        try:
            core = capability(plugin, PluginCapabilityType.CORE)
            build = capability(plugin, PluginCapabilityType.BUILD)
            runtime = capability(plugin, PluginCapabilityType.RUNTIME)
            num_outputs = int(build.num_outputs)
            fields = records_of(runtime.get_fields_to_serialize() or [])
        except ShapeError:
            raise
        except Exception as error:  # user code: report it as this call's invalid argument
            raise ValueError(f"the plugin could not be added: {error!r}") from None
        num_data = len(inputs) - num_shape_inputs
        if num_data > SHAPE_INPUT_BASE or num_shape_inputs > SHAPE_INPUT_BASE:
            raise ValueError(f"a plugin layer takes at most {SHAPE_INPUT_BASE} inputs of each kind")
        if not 1 <= num_outputs <= SHAPE_INPUT_BASE:
            raise ValueError(f"plugin num_outputs must be 1 to 64, got {num_outputs}")
        attrs = {
            **attrs,
            "plugin_name": str(core.plugin_name),
            "plugin_version": str(core.plugin_version),
            "plugin_namespace": str(core.plugin_namespace),
            "fields": fields,
        }
        super().__init__(network, inputs, attrs, num_outputs=num_outputs)
        self._num_data = num_data
        self._plugin = plugin
        self._attrs["plugin"] = plugin  # for the builder; not part of the op's schema

    @property
    def plugin(self) -> Any:
        return self._plugin

    def _node_inputs(self) -> list[ITensor | None]:
        data, shape_inputs = self._inputs[: self._num_data], self._inputs[self._num_data :]
        if not shape_inputs:
            return list(data)
        return [*data, *[None] * (SHAPE_INPUT_BASE - len(data)), *shape_inputs]

    def _infer(self, inputs: list[TensorMeta | None]) -> list[TensorMeta]:
        self._attrs.update(describe_outputs(self._plugin, inputs))
        return super()._infer(inputs)
