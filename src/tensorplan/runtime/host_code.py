"""Materializing a plan's host code as a loadable file, only in the ways the user allows.

TensorRT's rules (`Runtime.tempfile_control_flags`, `Runtime.temporary_directory`):

1. `ALLOW_IN_MEMORY_FILES`: an anonymous in-memory file (`os.memfd_create`), loaded through
   its `/proc/self/fd/N` path; nothing touches a file system.
2. Otherwise, or if that fails, `ALLOW_TEMPORARY_FILES`: a new file in the runtime's
   temporary directory (else `$TMPDIR`, else `/tmp`), created exclusively with owner-only
   permissions (0600), loaded, and removed at once, whether loading worked or not. A
   directory mounted `noexec` is refused up front, as the loader would be.

The caller checks `engine_host_code_allowed` before calling anything here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import TypeVar

from ..plan.host_code import HostLibrary
from ..types import TempfileControlFlag

T = TypeVar("T")

IN_MEMORY = 1 << int(TempfileControlFlag.ALLOW_IN_MEMORY_FILES)
TEMPORARY = 1 << int(TempfileControlFlag.ALLOW_TEMPORARY_FILES)


class HostCodeError(Exception):
    """Host code that could not be materialized or loaded; the message says what was tried."""


def load_host_library(
    library: HostLibrary, flags: int, directory: str | None, load: Callable[[str], T]
) -> T:
    """`load(path)` on a materialized copy of `library`, trying the allowed ways in order.

    An OSError while writing or loading (the file system, or a loader refusing the file)
    moves on to the next allowed way; any other exception from `load` propagates. Raises
    HostCodeError, naming every way tried and why it failed, when none worked.
    """
    failures = []
    if flags & IN_MEMORY:
        try:
            return _load_in_memory(library, load)
        except OSError as error:
            failures.append(f"ALLOW_IN_MEMORY_FILES (memfd_create) failed: {error}")
    if flags & TEMPORARY:
        where = temporary_directory(directory)
        try:
            return _load_temporary(library, where, load)
        except OSError as error:
            failures.append(f"ALLOW_TEMPORARY_FILES in directory '{where}' failed: {error}")
    if not flags & (IN_MEMORY | TEMPORARY):
        raise HostCodeError(
            f"host code '{library.name}' cannot be loaded: tempfile_control_flags ({flags}) "
            "allows neither ALLOW_IN_MEMORY_FILES nor ALLOW_TEMPORARY_FILES"
        )
    raise HostCodeError(f"host code '{library.name}' cannot be loaded: " + "; ".join(failures))


def temporary_directory(directory: str | None) -> str:
    """The directory for temporary files: the runtime's, else $TMPDIR, else /tmp."""
    return directory or os.environ.get("TMPDIR") or "/tmp"


def _load_in_memory(library: HostLibrary, load: Callable[[str], T]) -> T:
    create = getattr(os, "memfd_create", None)
    if create is None:
        raise OSError("anonymous in-memory files are not available on this platform")
    descriptor = create(f"tensorplan:{library.name}", os.MFD_CLOEXEC)
    try:
        _write_all(descriptor, library.data)
        return load(f"/proc/self/fd/{descriptor}")
    finally:
        os.close(descriptor)


def _load_temporary(library: HostLibrary, directory: str, load: Callable[[str], T]) -> T:
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"'{directory}' is not a directory")
    if os.statvfs(directory).f_flag & os.ST_NOEXEC:
        raise PermissionError(f"'{directory}' is on a file system mounted noexec")
    suffix = os.path.splitext(library.name)[1]
    descriptor, path = tempfile.mkstemp(prefix="tensorplan-", suffix=suffix, dir=directory)
    try:
        try:
            _write_all(descriptor, library.data)
        finally:
            os.close(descriptor)
        return load(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]
