"""Runtime: deserializes plans into engines, with TensorRT's members and behaviour."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..device import execution_device, host_bytes
from ..errors import report_error
from ..logging import ILogger
from ..memory import IGpuAllocator, allocate
from ..plan.format import PlanError, SectionKind
from ..plan.host_code import LEAN_RUNTIME, HostLibrary
from ..plan.reader import read_plan, verify_section
from ..plugins.library import LibraryError, PluginLibrary, open_library
from ..plugins.registry import IPluginRegistry, get_plugin_registry
from ..types import ErrorCodeTRT, TempfileControlFlag
from ..version import __version__
from .engine import ICudaEngine
from .host_code import HostCodeError, load_host_library
from .lean_archive import MAX_ARCHIVE_BYTES, ArchiveError, LeanArchive, load_package, read_archive
from .plugins import bind_plugins
from .stream_reader import IStreamReader, IStreamReaderV2, read_plan_stream

DESERIALIZE = "IRuntime::deserializeCudaEngine"
LOAD_RUNTIME = "IRuntime::loadRuntime"
_runtime_numbers = itertools.count()
ALL_TEMPFILE_FLAGS = (1 << int(TempfileControlFlag.ALLOW_IN_MEMORY_FILES)) | (
    1 << int(TempfileControlFlag.ALLOW_TEMPORARY_FILES)
)


class Runtime:
    """Allows a serialized ICudaEngine (a plan) to be deserialized."""

    def __init__(self, logger: ILogger) -> None:
        if logger is None:
            raise TypeError("Runtime needs a logger, e.g. tensorplan.Logger()")
        self._logger = logger
        self._error_recorder = None
        self.gpu_allocator: IGpuAllocator | None = None
        self._max_threads = 1
        self._temporary_directory: str | None = None
        self._tempfile_control_flags = ALL_TEMPFILE_FLAGS
        self.engine_host_code_allowed = False
        self._plugin_registry = IPluginRegistry(parent=get_plugin_registry())
        self._plugin_registry._logger = logger
        self._number = next(_runtime_numbers)
        self._host_libraries: dict[str, PluginLibrary] = {}
        """Plugin libraries loaded from plans' host code, by sha256 (each loaded once)."""
        self._host_code_lock = threading.Lock()
        self._module_names: list[str] = []
        weakref.finalize(self, _forget_modules, self._module_names)

    # -- members ----------------------------------------------------------------------------

    @property
    def logger(self) -> ILogger:
        return self._logger

    @property
    def error_recorder(self) -> Any:
        return self._error_recorder

    @error_recorder.setter
    def error_recorder(self, recorder: Any) -> None:
        self._error_recorder = recorder

    @property
    def DLA_core(self) -> int:
        return -1

    @DLA_core.setter
    def DLA_core(self, core: int) -> None:
        report_error(
            self,
            ErrorCodeTRT.INVALID_ARGUMENT,
            "IRuntime::setDLACore",
            f"DLA core {core} is out of range: this platform has 0 DLA cores",
        )

    @property
    def num_DLA_cores(self) -> int:
        return 0

    @property
    def max_threads(self) -> int:
        return self._max_threads

    @max_threads.setter
    def max_threads(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IRuntime::setMaxThreads",
                f"max_threads must be an integer of at least 1, got {value!r}; "
                f"keeping {self._max_threads}",
            )
            return
        self._max_threads = value

    @property
    def temporary_directory(self) -> str | None:
        return self._temporary_directory

    @temporary_directory.setter
    def temporary_directory(self, path: str | os.PathLike | None) -> None:
        self._temporary_directory = None if path is None else os.fspath(path)

    @property
    def tempfile_control_flags(self) -> int:
        return self._tempfile_control_flags

    @tempfile_control_flags.setter
    def tempfile_control_flags(self, flags: int) -> None:
        if isinstance(flags, bool) or not isinstance(flags, int) or flags & ~ALL_TEMPFILE_FLAGS:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IRuntime::setTempfileControlFlags",
                f"{flags!r} is not a bitmask of TempfileControlFlag bits (0 to "
                f"{ALL_TEMPFILE_FLAGS}); keeping {self._tempfile_control_flags}",
            )
            return
        self._tempfile_control_flags = flags

    def get_plugin_registry(self) -> IPluginRegistry:
        return self._plugin_registry

    def load_runtime(self, path: str) -> Any:
        """A Runtime of the lean-runtime file at `path` (`tensorplan lean-runtime export`),
        loaded in its own module namespace and sharing this runtime's logger, error recorder
        and allocator; None with a reported error for a missing, corrupt or incompatible file."""
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_ARCHIVE_BYTES + 1)
        except (OSError, TypeError, ValueError) as error:
            detail = f"cannot read '{path}': {error}"
            report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, LOAD_RUNTIME, detail)
            return None
        try:
            archive = read_archive(data)
        except ArchiveError as error:
            report_error(
                self,
                ErrorCodeTRT.UNSUPPORTED_STATE,
                LOAD_RUNTIME,
                f"'{path}' is not a tensorplan lean runtime this version can load: {error}",
            )
            return None
        return self._lean_runtime(archive, LOAD_RUNTIME, f"'{path}'")

    def __enter__(self) -> Runtime:
        warnings.warn(
            "Context managers are deprecated and have no effect.", DeprecationWarning, stacklevel=2
        )
        return self

    def __exit__(self, *args: object) -> None:
        pass

    # -- deserialization --------------------------------------------------------------------

    def deserialize_cuda_engine(self, serialized_engine: Any) -> ICudaEngine | None:
        """An engine from a plan (any buffer, IStreamReader or IStreamReaderV2), or None.

        Never raises for bad data: the cause goes to the error recorder, or the logger.
        """
        try:
            plan = self._plan_bytes(serialized_engine)
            contents = read_plan(
                plan,
                __version__,
                host_code_allowed=self.engine_host_code_allowed,
                threads=self._max_threads,
                verify_weights=False,
            )
        except PlanError as error:
            if error.incompatible:
                report_error(
                    self,
                    ErrorCodeTRT.FAILED_INITIALIZATION,
                    DESERIALIZE,
                    str(error),
                    category="API Usage Error",
                )
            else:
                report_error(
                    self, ErrorCodeTRT.UNSPECIFIED_ERROR, DESERIALIZE, str(error), "Serialization"
                )
            return None
        if contents.lean_runtime is not None:
            return self._deserialize_with_lean_runtime(plan, contents.header, contents.lean_runtime)
        program, header = contents.program, contents.header
        if not self._load_plugin_libraries(program.host_code):
            return None
        device = execution_device()
        if not bind_plugins(self, program, self._plugin_registry, device):
            return None
        weights = header.sections.get(SectionKind.WEIGHTS)
        size = weights.length if weights else 0
        allocation = allocate(self, DESERIALIZE, self.gpu_allocator, size, device, "weights")
        if allocation is None:
            return None
        if size and not self._upload_weights(plan, weights, allocation):
            allocation.release()
            return None
        return ICudaEngine(self, program, allocation, contents.layout)

    def _upload_weights(self, plan: memoryview, weights: Any, allocation: Any) -> bool:
        """Copy the weights section to the device while its checksum is computed (on up to
        `max_threads` threads), so that loading takes the longer of the two, not their sum;
        False with a reported error when the checksum does not match."""
        source = host_bytes(plan[weights.offset : weights.offset + weights.length])
        with ThreadPoolExecutor(max_workers=1) as copier:
            copied = copier.submit(allocation.bytes.copy_, source)
            try:
                verify_section(plan, weights, self._max_threads)
            except PlanError as error:
                copied.result()
                report_error(
                    self, ErrorCodeTRT.UNSPECIFIED_ERROR, DESERIALIZE, str(error), "Serialization"
                )
                return False
            copied.result()
        return True

    # -- host code ----------------------------------------------------------------------------

    def _load_plugin_libraries(self, libraries: list[HostLibrary]) -> bool:
        """Load the plan's plugin libraries (once per runtime, also when several threads
        deserialize at once) and register their creators in this runtime's registry only;
        False with a reported error when one cannot be."""
        with self._host_code_lock:
            for library in libraries:
                if library.kind == LEAN_RUNTIME or library.sha256 in self._host_libraries:
                    continue
                if not self._load_plugin_library(library):
                    return False
        return True

    def _load_plugin_library(self, library: HostLibrary) -> bool:
        module_name = f"_tensorplan_hostcode_{library.sha256[:16]}_{self._number}"
        try:
            loaded = load_host_library(
                library,
                self._tempfile_control_flags,
                self._temporary_directory,
                lambda path: open_library(library.kind, path, library.name, module_name),
            )
        except (HostCodeError, LibraryError) as error:
            report_error(self, ErrorCodeTRT.FAILED_INITIALIZATION, DESERIALIZE, str(error))
            return False
        if not self._plugin_registry.register_library(loaded, DESERIALIZE, reporter=self):
            return False
        if loaded.module_name:
            self._module_names.append(loaded.module_name)
        self._host_libraries[library.sha256] = loaded
        return True

    def _deserialize_with_lean_runtime(
        self, plan: memoryview, header: Any, library: HostLibrary
    ) -> Any:
        """Run a version-compatible plan of another tensorplan version through the lean
        runtime it embeds, materialized per the temp-file flags."""
        try:
            archive = load_host_library(
                library,
                self._tempfile_control_flags,
                self._temporary_directory,
                lambda path: read_archive(_read_file(path)),
            )
        except (HostCodeError, ArchiveError) as error:
            detail = f"the plan's embedded lean runtime cannot be loaded: {error}"
            report_error(self, ErrorCodeTRT.FAILED_INITIALIZATION, DESERIALIZE, detail)
            return None
        if archive.version != header.library_version:
            report_error(
                self,
                ErrorCodeTRT.FAILED_INITIALIZATION,
                DESERIALIZE,
                f"the plan was built by tensorplan {header.library_version} but its embedded "
                f"lean runtime is version {archive.version}",
            )
            return None
        runtime = self._lean_runtime(archive, DESERIALIZE, "the plan's embedded lean runtime")
        if runtime is None:
            return None
        runtime.engine_host_code_allowed = True
        runtime.tempfile_control_flags = self._tempfile_control_flags
        runtime.temporary_directory = self._temporary_directory
        runtime.max_threads = self._max_threads
        return runtime.deserialize_cuda_engine(bytes(plan))

    def _lean_runtime(self, archive: LeanArchive, api: str, what: str) -> Any:
        """A Runtime of a checked lean-runtime archive, sharing this runtime's logger, error
        recorder and allocator; its plugin registry searches this runtime's next."""
        try:
            package = load_package(archive)
            runtime = package.Runtime(self._logger)
        except Exception as error:  # the archive's code failed to import: report, not crash
            detail = f"{what} (tensorplan {archive.version}) could not be loaded: {error!r}"
            report_error(self, ErrorCodeTRT.FAILED_INITIALIZATION, api, detail)
            return None
        runtime.error_recorder = self._error_recorder
        runtime.gpu_allocator = self.gpu_allocator
        runtime.get_plugin_registry()._parent = self._plugin_registry
        return runtime

    def _plan_bytes(self, source: Any) -> memoryview:
        """The plan as a flat byte view, read from a stream reader if that is what `source` is."""
        is_buffer = isinstance(source, (bytes, bytearray, memoryview))
        if isinstance(source, (IStreamReader, IStreamReaderV2)) or (
            hasattr(source, "read") and not is_buffer
        ):
            try:
                return memoryview(read_plan_stream(source))
            except PlanError:
                raise
            except Exception as error:  # a user's reader failed
                raise PlanError(f"the stream reader failed: {error!r}") from None
        try:
            view = memoryview(source)
        except (TypeError, ValueError, BufferError):
            raise PlanError(
                f"{type(source).__name__} is neither a buffer nor a stream reader"
            ) from None
        if "O" in view.format:  # numpy object arrays export pointers, not data
            raise PlanError(f"{type(source).__name__} of Python objects is not a plan buffer")
        if view.format == "B" and view.ndim == 1 and view.c_contiguous:
            return view
        if view.c_contiguous:
            with contextlib.suppress(TypeError, ValueError):  # formats cast() does not know
                return view.cast("B")
        return memoryview(view.tobytes())


def _read_file(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read(MAX_ARCHIVE_BYTES + 1)


def _forget_modules(names: list[str]) -> None:
    """Remove a garbage-collected runtime's private host-code modules from sys.modules."""
    for name in names:
        sys.modules.pop(name, None)
