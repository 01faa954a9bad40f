"""Every member of Runtime, with TensorRT's defaults and failure behaviour."""

from __future__ import annotations

import gc
import os
import pathlib

import pytest
import runtime_networks as nets

import tensorplan as trt
from tensorplan.plugins.registry import get_plugin_registry

API_USAGE = (int(trt.ErrorCodeTRT.INVALID_ARGUMENT), "API Usage Error")


def only_error(errors: list[str]) -> tuple[str, int, str, str]:
    assert len(errors) == 1, errors
    return nets.parse_error(errors[0])


def test_a_logger_is_required_and_kept(logger):
    with pytest.raises(TypeError, match="logger"):
        trt.Runtime(None)
    runtime = trt.Runtime(logger)
    assert runtime.logger is logger
    assert runtime.logger is logger  # the same object every time, not a wrapper


def test_defaults(logger):
    runtime = trt.Runtime(logger)
    assert runtime.error_recorder is None
    assert runtime.gpu_allocator is None
    assert runtime.DLA_core == -1
    assert runtime.num_DLA_cores == 0
    assert runtime.max_threads == 1
    assert runtime.temporary_directory is None
    assert runtime.tempfile_control_flags == 3
    assert runtime.engine_host_code_allowed is False
    assert logger.messages == []


def test_tempfile_control_flags_are_bit_positions(logger):
    runtime = trt.Runtime(logger)
    in_memory = 1 << int(trt.TempfileControlFlag.ALLOW_IN_MEMORY_FILES)
    temporary = 1 << int(trt.TempfileControlFlag.ALLOW_TEMPORARY_FILES)
    assert (in_memory, temporary) == (1, 2)
    assert runtime.tempfile_control_flags == in_memory | temporary
    for flags in (0, in_memory, temporary, 3):
        runtime.tempfile_control_flags = flags
        assert runtime.tempfile_control_flags == flags
    assert logger.errors == []


@pytest.mark.parametrize("flags", [4, -1, 1.0, "3", None])
def test_invalid_tempfile_control_flags_keep_the_old_value(logger, flags):
    runtime = trt.Runtime(logger)
    runtime.tempfile_control_flags = 1
    runtime.tempfile_control_flags = flags
    assert runtime.tempfile_control_flags == 1
    api, code, category, detail = only_error(logger.errors)
    assert (api, (code, category)) == ("IRuntime::setTempfileControlFlags", API_USAGE)
    assert repr(flags) in detail


def test_dla_core_cannot_be_set(logger):
    runtime = trt.Runtime(logger)
    for core in (0, 1, -1):
        runtime.DLA_core = core
        assert runtime.DLA_core == -1
    assert len(logger.errors) == 3
    api, code, category, detail = nets.parse_error(logger.errors[0])
    assert (api, (code, category)) == ("IRuntime::setDLACore", API_USAGE)
    assert "0 DLA cores" in detail
    with pytest.raises(AttributeError):
        runtime.num_DLA_cores = 1
    assert runtime.num_DLA_cores == 0


@pytest.mark.parametrize("value", [0, -3, 2.5, "4", None, True])
def test_invalid_max_threads_keep_the_old_value(logger, value):
    runtime = trt.Runtime(logger)
    runtime.max_threads = 4
    runtime.max_threads = value
    assert runtime.max_threads == 4
    api, code, category, detail = only_error(logger.errors)
    assert (api, (code, category)) == ("IRuntime::setMaxThreads", API_USAGE)
    assert "keeping 4" in detail


def test_max_threads_still_loads_and_runs(logger):
    runtime = trt.Runtime(logger)
    runtime.max_threads = 16
    engine = runtime.deserialize_cuda_engine(nets.plan())
    nets.execute(engine.create_execution_context(), rows=3)
    assert logger.errors == []


def test_temporary_directory_takes_paths_and_none_resets(logger, tmp_path):
    runtime = trt.Runtime(logger)
    runtime.temporary_directory = str(tmp_path)
    assert runtime.temporary_directory == str(tmp_path)
    runtime.temporary_directory = pathlib.Path(tmp_path, "sub")
    assert runtime.temporary_directory == os.path.join(tmp_path, "sub")
    runtime.temporary_directory = None
    assert runtime.temporary_directory is None


def test_engine_host_code_allowed_is_a_plain_switch(logger):
    runtime = trt.Runtime(logger)
    runtime.engine_host_code_allowed = True
    assert runtime.engine_host_code_allowed is True
    runtime.engine_host_code_allowed = False
    assert runtime.engine_host_code_allowed is False


def test_plugin_registry_is_the_runtimes_own_with_the_global_one_as_parent(logger):
    runtime = trt.Runtime(logger)
    registry = runtime.get_plugin_registry()
    assert registry is runtime.get_plugin_registry()
    assert registry is not get_plugin_registry()
    assert registry is not trt.Runtime(logger).get_plugin_registry()

    class Creator:
        name, plugin_version = "RuntimeTestPlugin", "1"

    creator = Creator()
    assert get_plugin_registry().register_creator(creator, "runtime_tests")
    try:
        assert registry.get_creator("RuntimeTestPlugin", "1", "runtime_tests") is creator
        registry.parent_search_enabled = False
        assert registry.get_creator("RuntimeTestPlugin", "1", "runtime_tests") is None
    finally:
        get_plugin_registry().deregister_creator(creator)
    local = Creator()
    assert registry.register_creator(local, "runtime_tests")
    assert get_plugin_registry().get_creator("RuntimeTestPlugin", "1", "runtime_tests") is None


@pytest.mark.parametrize("path", ["missing", "a directory", None])
def test_load_runtime_of_an_unreadable_path(logger, tmp_path, path):
    runtime = trt.Runtime(logger)
    target = {"missing": tmp_path / "nope.so", "a directory": tmp_path, None: None}[path]
    assert runtime.load_runtime(target) is None
    api, code, category, detail = only_error(logger.errors)
    assert (api, (code, category)) == ("IRuntime::loadRuntime", API_USAGE)
    assert "cannot read" in detail


def test_load_runtime_of_a_file_that_is_not_a_lean_runtime(logger, tmp_path):
    library = tmp_path / "libnvinfer_lean.so"
    library.write_bytes(b"\x7fELF" + bytes(100))
    assert trt.Runtime(logger).load_runtime(str(library)) is None
    api, code, category, detail = only_error(logger.errors)
    assert (api, code, category) == ("IRuntime::loadRuntime", 10, "Unsupported State")
    assert str(library) in detail


def test_context_manager_is_deprecated_and_does_nothing(logger):
    runtime = trt.Runtime(logger)
    with pytest.warns(DeprecationWarning), runtime as entered:
        assert entered is runtime
    engine = runtime.deserialize_cuda_engine(nets.plan())
    assert engine is not None


def test_deleting_the_runtime_leaves_its_engines_working(logger):
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(nets.plan())
    del runtime
    gc.collect()
    nets.execute(engine.create_execution_context(), rows=2)
    assert logger.errors == []


def test_errors_go_to_the_recorder_when_set_else_the_logger(logger, recorder):
    runtime = trt.Runtime(logger)
    runtime.max_threads = 0
    assert len(logger.errors) == 1
    runtime.error_recorder = recorder
    assert runtime.error_recorder is recorder
    runtime.max_threads = 0
    runtime.DLA_core = 0
    assert runtime.deserialize_cuda_engine(b"not a plan") is None
    assert runtime.load_runtime(None) is None
    assert len(logger.errors) == 1  # nothing more reached the logger
    codes = [int(code) for code, _ in recorder.errors]
    assert codes == [3, 3, 1, 3]
    assert "IRuntime::deserializeCudaEngine" in recorder.errors[2][1]
    runtime.error_recorder = None
    runtime.max_threads = 0
    assert len(logger.errors) == 2


def test_logger_severity_is_error(logger):
    runtime = trt.Runtime(logger)
    assert runtime.deserialize_cuda_engine(b"") is None
    assert [severity for severity, _ in logger.messages] == [trt.ILogger.Severity.ERROR]
