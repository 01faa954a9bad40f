"""IPluginRegistry: plugin creators by (name, version, namespace), with a parent to search."""

from __future__ import annotations

import threading
from typing import Any

from ..errors import report_error
from ..types import ErrorCodeTRT


class IPluginRegistry:
    """A registry of plugin creators; a runtime's own registry searches the global one next."""

    def __init__(self, parent: IPluginRegistry | None = None) -> None:
        self._parent = parent
        self._creators: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        self._error_recorder = None
        self._logger = None
        self.parent_search_enabled = True

    @property
    def error_recorder(self) -> Any:
        return self._error_recorder

    @error_recorder.setter
    def error_recorder(self, recorder: Any) -> None:
        self._error_recorder = recorder

    def register_creator(self, creator: Any, plugin_namespace: str = "") -> bool:
        """Register a creator under its name and version in `plugin_namespace`."""
        key = (str(creator.name), str(creator.plugin_version), str(plugin_namespace))
        with self._lock:
            if key in self._creators:
                report_error(
                    self,
                    ErrorCodeTRT.INVALID_ARGUMENT,
                    "IPluginRegistry::registerCreator",
                    f"a creator for plugin '{key[0]}' version '{key[1]}' in namespace "
                    f"'{key[2]}' is already registered",
                )
                return False
            self._creators[key] = creator
        return True

    def deregister_creator(self, creator: Any) -> bool:
        with self._lock:
            for key, registered in list(self._creators.items()):
                if registered is creator:
                    del self._creators[key]
                    return True
        return False

    def get_creator(self, type: str, version: str, plugin_namespace: str = "") -> Any:
        """The creator registered here, else in the parent (if searching it is enabled)."""
        creator = self._creators.get((type, version, plugin_namespace))
        if creator is None and self._parent is not None and self.parent_search_enabled:
            return self._parent.get_creator(type, version, plugin_namespace)
        return creator

    @property
    def all_creators(self) -> list[Any]:
        return list(self._creators.values())


_GLOBAL_REGISTRY = IPluginRegistry()


def get_plugin_registry() -> IPluginRegistry:
    """The process-wide plugin registry."""
    return _GLOBAL_REGISTRY
