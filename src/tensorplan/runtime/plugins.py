"""Binding a plan's plugin layers to plugin objects made by the runtime's registered creators.

As TensorRT does at deserialization: look the creator up by name, version and namespace in
the runtime's registry (then its parent), `create_plugin(name, fields, TensorRTPhase.RUNTIME)`,
`attach_to_context`, `set_tactic`, and give the plugin its workspace from the allocator.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import report_error
from ..ir import Program
from ..memory import allocate
from ..ops.base import ShapeError
from ..ops.plugin import PluginBinding, PluginV3, capability, plugin_id
from ..plugins.fields import collection_of
from ..plugins.interfaces import IPluginResourceContext
from ..types import ErrorCodeTRT, PluginCapabilityType, TensorRTPhase

API = "IRuntime::deserializeCudaEngine"


def bind_plugins(owner: Any, program: Program, registry: Any, device: torch.device) -> bool:
    """Attach a PluginBinding to every plugin node of `program`; False (reported on `owner`,
    a Runtime) when a creator is missing or a plugin cannot be made."""
    context = IPluginResourceContext(owner.gpu_allocator, owner.error_recorder)
    for node in program.graph.nodes:
        if node.op != PluginV3.name:
            continue
        attrs = node.attrs
        where = f"layer '{node.name}': plugin {plugin_id(attrs)}"
        creator = registry.get_creator(
            attrs["plugin_name"], attrs["plugin_version"], attrs["plugin_namespace"]
        )
        if creator is None:
            report_error(
                owner,
                ErrorCodeTRT.UNSPECIFIED_ERROR,
                API,
                f"{where} cannot be deserialized: no IPluginCreator for it is registered in the "
                "runtime's plugin registry or its parent; register one (or load its library) "
                "before deserializing",
                category="Serialization",
            )
            return False
        try:
            plugin = creator.create_plugin(
                attrs["plugin_name"], collection_of(attrs["fields"]), TensorRTPhase.RUNTIME
            )
            if plugin is None:
                raise ValueError("create_plugin returned None")
            attached = capability(plugin, PluginCapabilityType.RUNTIME).attach_to_context(context)
            if attached is None:
                raise ValueError("attach_to_context returned None")
            runtime = capability(attached, PluginCapabilityType.RUNTIME)
            runtime.set_tactic(attrs["tactic"])
        except ShapeError as error:
            return _failed(owner, f"{where}: {error}")
        except Exception as error:  # the user's creator or plugin failed
            return _failed(owner, f"{where} could not be created: {error!r}")
        workspace = allocate(
            owner, API, owner.gpu_allocator, attrs["workspace"], device, f"workspace of {where}"
        )
        if workspace is None:
            return False
        attrs["binding"] = PluginBinding(attached, runtime, workspace, device)
    return True


def _failed(owner: Any, detail: str) -> bool:
    report_error(owner, ErrorCodeTRT.FAILED_INITIALIZATION, API, detail)
    return False
