"""IPluginRegistry: plugin creators by (name, version, namespace), with a parent to search."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import sys
import threading
from typing import Any

from ..errors import report_error
from ..types import ErrorCodeTRT
from .library import LibraryError, PluginLibrary, open_library

_registry_numbers = itertools.count()


class IPluginRegistry:
    """A registry of plugin creators; a runtime's own registry searches the global one next."""

    def __init__(self, parent: IPluginRegistry | None = None) -> None:
        self._parent = parent
        self._creators: dict[tuple[str, str, str], Any] = {}
        self._libraries: list[PluginLibrary] = []
        self._resources: dict[str, list] = {}
        self._lock = threading.RLock()
        self._error_recorder = None
        self._logger = None
        self._number = next(_registry_numbers)
        self.parent_search_enabled = True

    @property
    def error_recorder(self) -> Any:
        return self._error_recorder

    @error_recorder.setter
    def error_recorder(self, recorder: Any) -> None:
        self._error_recorder = recorder

    def register_creator(self, creator: Any, plugin_namespace: str = "") -> bool:
        """Register a creator under its name and version in `plugin_namespace`; False (with a
        reported error) when that key is taken or the creator has no name and version."""
        api = "IPluginRegistry::registerCreator"
        name, version = getattr(creator, "name", None), getattr(creator, "plugin_version", None)
        if not isinstance(name, str) or not name or not isinstance(version, str):
            detail = f"{creator!r} needs a non-empty string name and a string plugin_version"
            report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, detail)
            return False
        key = (name, version, str(plugin_namespace))
        with self._lock:
            if key in self._creators:
                report_error(
                    self,
                    ErrorCodeTRT.INVALID_ARGUMENT,
                    api,
                    f"a creator for plugin '{key[0]}' version '{key[1]}' in namespace "
                    f"'{key[2]}' is already registered",
                )
                return False
            self._creators[key] = creator
        if hasattr(creator, "plugin_namespace"):
            with contextlib.suppress(AttributeError):  # a read-only namespace keeps its value
                creator.plugin_namespace = key[2]  # TensorRT sets it on registration
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

    @property
    def all_creators_recursive(self) -> list[Any]:
        """The creators here, then the parent's (when parent search is enabled)."""
        creators = self.all_creators
        if self._parent is not None and self.parent_search_enabled:
            creators += self._parent.all_creators_recursive
        return creators

    def load_library(self, plugin_path: str) -> PluginLibrary | None:
        """Load a plugin library (a `.py` module or a shared library, plugins/library.py)
        and register its creators; its handle, or None with a reported error (also when one
        of its creators is already registered: then none is)."""
        api = "IPluginRegistry::loadLibrary"
        path = os.fspath(plugin_path) if isinstance(plugin_path, (str, os.PathLike)) else None
        if path is None:
            detail = f"plugin_path must be a path, got {plugin_path!r}"
            report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, detail)
            return None
        kind = "python-module" if path.endswith(".py") else "shared-library"
        name = os.path.basename(path)
        try:
            with open(path, "rb") as file:
                digest = hashlib.sha256(file.read()).hexdigest()
            module_name = f"_tensorplan_plugin_{digest[:16]}_{self._number}"
            library = open_library(kind, path, name, module_name)
        except (OSError, LibraryError) as error:
            detail = f"cannot load plugin library '{path}': {error}"
            report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, detail)
            return None
        if not self.register_library(library, api):
            return None
        return library

    def register_library(self, library: PluginLibrary, api: str, reporter: Any = None) -> bool:
        """Register every creator of a loaded library, or none (False, reported to `reporter`,
        by default this registry) if one of them is already registered."""
        with self._lock:
            taken = [
                creator
                for creator in library.creators
                if (creator.name, creator.plugin_version, _namespace(creator)) in self._creators
            ]
            if taken:
                names = ", ".join(
                    f"'{c.name}' version '{c.plugin_version}' namespace '{_namespace(c)}'"
                    for c in taken
                )
                report_error(
                    self if reporter is None else reporter,
                    ErrorCodeTRT.INVALID_ARGUMENT,
                    api,
                    f"library '{library.name}' provides plugins already registered: {names}",
                )
                _forget(library)
                return False
            for creator in library.creators:
                self._creators[(creator.name, creator.plugin_version, _namespace(creator))] = (
                    creator
                )
            self._libraries.append(library)
        return True

    def deregister_library(self, handle: PluginLibrary) -> None:
        """Deregister the creators a library registered, and forget the library."""
        with self._lock:
            if handle not in self._libraries:
                return
            self._libraries.remove(handle)
            for creator in handle.creators:
                self.deregister_creator(creator)
        _forget(handle)

    def acquire_plugin_resource(self, key: str, resource: Any) -> Any:
        """The resource registered under `key` (a clone of `resource` the first time);
        each call counts one reference."""
        with self._lock:
            entry = self._resources.get(key)
            if entry is None:
                entry = self._resources[key] = [resource.clone(), 0]
            entry[1] += 1
            return entry[0]

    def release_plugin_resource(self, key: str) -> int:
        """Drop one reference; the last one releases the resource. 0, or -1 for a key that
        is not registered."""
        with self._lock:
            entry = self._resources.get(key)
            if entry is None:
                return -1
            entry[1] -= 1
            if entry[1] == 0:
                del self._resources[key]
                entry[0].release()
            return 0


def _namespace(creator: Any) -> str:
    return str(getattr(creator, "plugin_namespace", "") or "")


def _forget(library: PluginLibrary) -> None:
    """Drop a Python module library's private module from sys.modules."""
    if library.module_name:
        sys.modules.pop(library.module_name, None)


_GLOBAL_REGISTRY = IPluginRegistry()


def get_plugin_registry() -> IPluginRegistry:
    """The process-wide plugin registry."""
    return _GLOBAL_REGISTRY
