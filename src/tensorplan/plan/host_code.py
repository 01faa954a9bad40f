"""Host code a plan may carry: plugin libraries and an embedded lean runtime.

Host code is data to the plan reader: it is copied and checksummed, never loaded here.
Loading it is the runtime's business, and only when the user allows it
(runtime/host_code.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from .format import PlanFlag

PYTHON_MODULE = "python-module"
"""A Python source file that defines `get_plugin_creators()` (plugins/library.py)."""
SHARED_LIBRARY = "shared-library"
"""A shared library with the C entry point `getCreators` (plugins/library.py)."""
LEAN_RUNTIME = "lean-runtime"
"""A lean-runtime archive (runtime/lean_archive.py), embedded by BuilderFlag.VERSION_COMPATIBLE."""
KINDS = (PYTHON_MODULE, SHARED_LIBRARY, LEAN_RUNTIME)
MAX_LIBRARIES = 64
LEAN_RUNTIME_NAME = "tensorplan-lean-runtime.zip"


@dataclass(frozen=True)
class HostLibrary:
    """One library of a plan's host-code section."""

    name: str
    kind: str
    data: bytes
    sha256: str

    @classmethod
    def of(cls, name: str, kind: str, data: bytes) -> HostLibrary:
        return cls(name, kind, bytes(data), hashlib.sha256(data).hexdigest())

    @property
    def intact(self) -> bool:
        """Whether the bytes still have the checksum the plan recorded."""
        return hashlib.sha256(self.data).hexdigest() == self.sha256


def library_from_path(path: str | os.PathLike) -> HostLibrary:
    """The library at `path`: a `.py` file is a Python module, anything else a shared
    library. OSError when it cannot be read."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read()
    kind = PYTHON_MODULE if path.endswith(".py") else SHARED_LIBRARY
    return HostLibrary.of(os.path.basename(path), kind, data)


def build_host_code(
    paths: list[str],
    version_compatible: bool,
    exclude_lean_runtime: bool,
    lean_runtime: Callable[[], bytes],
) -> tuple[int, list[HostLibrary]]:
    """The plan flags and host code a build asks for: the libraries of
    `config.plugins_to_serialize`, and with BuilderFlag.VERSION_COMPATIBLE this version's
    lean runtime (`lean_runtime()`) unless EXCLUDE_LEAN_RUNTIME is also set.
    ValueError naming a library that cannot be read."""
    libraries = []
    for path in paths:
        try:
            libraries.append(library_from_path(path))
        except (OSError, TypeError) as error:
            raise ValueError(f"plugins_to_serialize: cannot read '{path}': {error}") from None
    flags = 0
    if version_compatible:
        flags |= PlanFlag.VERSION_COMPATIBLE
        if exclude_lean_runtime:
            flags |= PlanFlag.EXCLUDES_LEAN_RUNTIME
        else:
            libraries.append(HostLibrary.of(LEAN_RUNTIME_NAME, LEAN_RUNTIME, lean_runtime()))
    if len(libraries) > MAX_LIBRARIES:
        raise ValueError(f"a plan carries at most {MAX_LIBRARIES} host-code libraries")
    return int(flags), libraries
