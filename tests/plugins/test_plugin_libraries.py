"""Plugin libraries carried by plans (config.plugins_to_serialize), and how the runtime may
materialize them: in memory, as a temporary file, or not at all."""

from __future__ import annotations

import errno
import gc
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import tensorplan as trt
from helpers import build_plan, run
from plan.planedit import HAS_HOST_CODE, HOST_CODE, header, metadata, table, with_entry
from tensorplan.plan import reader as plan_reader
from tensorplan.runtime import host_code
from tensorplan.runtime import runtime as runtime_module

IN_MEMORY = 1 << int(trt.TempfileControlFlag.ALLOW_IN_MEMORY_FILES)
TEMPORARY = 1 << int(trt.TempfileControlFlag.ALLOW_TEMPORARY_FILES)

LIBRARY = '''
"""A plugin library as a user ships it: a module whose get_plugin_creators() gives creators."""
import os

import numpy as np
import torch

import tensorplan as trt
from tensorplan.device import execution_device, tensor_at, torch_dtype

PATH = __file__
MODE = os.stat(__file__).st_mode & 0o777


class Scaler(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild, trt.IPluginV3OneRuntime):
    def __init__(self, factor):
        trt.IPluginV3.__init__(self)
        self.plugin_name, self.plugin_version, self.plugin_namespace = "HostScaler", "1", "hc"
        self.num_outputs = 1
        trt.IPluginV3OneBuild.__init__(self)
        self.factor = factor

    def get_capability_interface(self, type):
        return self

    def clone(self):
        return Scaler(self.factor)

    def get_output_data_types(self, types):
        return [types[0]]

    def get_output_shapes(self, inputs, shape_inputs, builder):
        return [inputs[0]]

    def get_fields_to_serialize(self):
        data = np.array([self.factor], np.float32)
        return trt.PluginFieldCollection([trt.PluginField("factor", data, trt.PluginFieldType.FLOAT32)])

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
        device = execution_device()
        x = tensor_at(inputs[0], tuple(input_desc[0].dims), torch_dtype(input_desc[0].type), device)
        y = tensor_at(outputs[0], tuple(output_desc[0].dims), torch_dtype(output_desc[0].type), device)
        torch.mul(x, self.factor, out=y)


class ScalerCreator(trt.IPluginCreatorV3One):
    def __init__(self):
        trt.IPluginCreatorV3One.__init__(self)
        self.name, self.plugin_version, self.plugin_namespace = "HostScaler", "1", "hc"

    def create_plugin(self, name, fc, phase):
        return Scaler(float(fc[0].data[0]))


def get_plugin_creators():
    return [ScalerCreator()]
'''


@pytest.fixture
def library(tmp_path):
    path = tmp_path / "lib" / "scaler_plugin.py"
    path.parent.mkdir()
    path.write_text(LIBRARY)
    return path


@pytest.fixture
def plan(library):
    """A plan whose only plugin comes from `library`, which it carries as host code."""
    spec = importlib.util.spec_from_file_location("scaler_plugin_for_building", library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def define(network):
        x = network.add_input("x", trt.float32, (2, 3))
        network.mark_output(network.add_plugin_v3([x], [], module.Scaler(3.0)).get_output(0))

    def configure(builder, config):
        config.plugins_to_serialize = [str(library)]

    built = build_plan(define, configure=configure)
    assert built is not None
    return bytes(built)


@pytest.fixture
def directories(tmp_path, monkeypatch):
    """The runtime's temporary directory and $TMPDIR, both empty; checked empty after."""
    runtime_dir, env_dir = tmp_path / "runtime", tmp_path / "env"
    runtime_dir.mkdir()
    env_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(env_dir))
    yield runtime_dir, env_dir
    assert list(runtime_dir.iterdir()) == []
    assert list(env_dir.iterdir()) == []


def runtime_for(logger, flags=IN_MEMORY | TEMPORARY, directory=None):
    runtime = trt.Runtime(logger)
    runtime.engine_host_code_allowed = True
    runtime.tempfile_control_flags = flags
    runtime.temporary_directory = directory
    return runtime


def loaded_module(runtime):
    (library,) = runtime._host_libraries.values()
    return sys.modules[library.module_name]


def check_runs(engine):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (y,) = run(engine, {"x": x}).values()
    np.testing.assert_array_equal(y, 3 * x)


def test_the_plan_carries_the_library_and_says_so(plan, library):
    assert header(plan)["flags"] & HAS_HOST_CODE
    (entry,) = metadata(plan)["host_code"]
    assert entry["name"] == "scaler_plugin.py" and entry["kind"] == "python-module"
    assert entry["nbytes"] == library.stat().st_size


def test_refused_without_the_flag_and_nothing_is_written(plan, logger, directories, monkeypatch):
    def never(*args):
        raise AssertionError("host code was materialized")

    monkeypatch.setattr(runtime_module, "load_host_library", never)
    monkeypatch.setattr(plan_reader._Checker, "host_code", never)
    runtime = trt.Runtime(logger)
    runtime.temporary_directory = str(directories[0])
    assert runtime.deserialize_cuda_engine(plan) is None
    (error,) = logger.errors
    assert "HAS_HOST_CODE" in error and "engine_host_code_allowed" in error
    assert "'scaler_plugin.py'" in error
    assert not any(
        name.startswith("_tensorplan_hostcode_") and "scaler" in name for name in sys.modules
    )


def test_loaded_through_an_in_memory_file(plan, logger, directories):
    runtime = runtime_for(logger, directory=str(directories[0]))
    engine = runtime.deserialize_cuda_engine(plan)
    assert engine is not None, logger.errors
    assert loaded_module(runtime).PATH.startswith("/proc/self/fd/")
    check_runs(engine)


@pytest.mark.parametrize("where", ["temporary_directory", "$TMPDIR"])
def test_loaded_through_an_owner_only_temporary_file(plan, logger, directories, where):
    runtime_dir, env_dir = directories
    directory = str(runtime_dir) if where == "temporary_directory" else None
    runtime = runtime_for(logger, TEMPORARY, directory)
    engine = runtime.deserialize_cuda_engine(plan)
    assert engine is not None, logger.errors
    module = loaded_module(runtime)
    expected = runtime_dir if directory else env_dir
    assert os.path.dirname(module.PATH) == str(expected)
    assert module.MODE == 0o600
    assert not os.path.exists(module.PATH)  # removed at once
    check_runs(engine)


def test_a_failing_in_memory_file_falls_back_to_a_temporary_file(
    plan, logger, directories, monkeypatch
):
    def refuse(*args):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "memfd_create", refuse)
    runtime = runtime_for(logger, directory=str(directories[0]))
    assert runtime.deserialize_cuda_engine(plan) is not None, logger.errors
    assert os.path.dirname(loaded_module(runtime).PATH) == str(directories[0])


def fail_writes(monkeypatch, directory):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(directory))

    monkeypatch.setattr(host_code.tempfile, "mkstemp", read_only)


def mount_noexec(monkeypatch, directory):
    real = os.statvfs

    class NoExec:
        def __init__(self, result):
            self.f_flag = result.f_flag | os.ST_NOEXEC

    monkeypatch.setattr(
        os,
        "statvfs",
        lambda path: NoExec(real(path)) if str(path) == str(directory) else real(path),
    )


@pytest.mark.parametrize(
    ("setup", "flags", "expected"),
    [
        (None, 0, ["allows neither ALLOW_IN_MEMORY_FILES nor ALLOW_TEMPORARY_FILES"]),
        ("missing", TEMPORARY, ["ALLOW_TEMPORARY_FILES in directory", "is not a directory"]),
        ("read-only", TEMPORARY, ["ALLOW_TEMPORARY_FILES in directory", "Read-only file system"]),
        ("noexec", TEMPORARY, ["ALLOW_TEMPORARY_FILES in directory", "mounted noexec"]),
        ("noexec, no memfd", IN_MEMORY | TEMPORARY, ["ALLOW_IN_MEMORY_FILES (memfd_create) failed", "mounted noexec"]),
    ],
)  # fmt: skip
def test_refused_when_no_allowed_way_works(
    plan, logger, directories, monkeypatch, setup, flags, expected
):
    directory = directories[0] / "gone" if setup == "missing" else directories[0]
    if setup == "read-only":
        fail_writes(monkeypatch, directory)
    if setup and setup.startswith("noexec"):
        mount_noexec(monkeypatch, directory)
    if setup == "noexec, no memfd":
        monkeypatch.delattr(os, "memfd_create")
    runtime = runtime_for(logger, flags, str(directory))
    assert runtime.deserialize_cuda_engine(plan) is None
    (error,) = logger.errors
    assert "Error Code 6" in error and "'scaler_plugin.py'" in error
    for text in expected:
        assert text in error
    if flags & TEMPORARY:
        assert str(directory) in error


def test_a_corrupted_library_is_refused(plan, logger):
    entries = table(plan)
    index = next(i for i, e in enumerate(entries) if e["kind"] == HOST_CODE)
    section = entries[index]
    damaged = bytearray(plan)
    damaged[section["offset"] + 10] ^= 0x20
    runtime = runtime_for(logger)
    assert runtime.deserialize_cuda_engine(bytes(damaged)) is None
    assert "section 'host code' is corrupted" in logger.errors[-1]
    data = damaged[section["offset"] : section["offset"] + section["length"]]
    fixed = with_entry(bytes(damaged), index, crc=zlib.crc32(data))
    assert runtime.deserialize_cuda_engine(fixed) is None
    assert "host-code library 'scaler_plugin.py' is corrupted: its sha256" in logger.errors[-1]
    assert runtime._host_libraries == {}


def test_loaded_code_stays_in_its_runtime(plan, logger):
    first, second = runtime_for(logger), runtime_for(logger)
    engines = [first.deserialize_cuda_engine(plan) for _ in range(2)]
    engines.append(second.deserialize_cuda_engine(plan))
    assert all(engine is not None for engine in engines), logger.errors
    names = {loaded_module(runtime).__name__ for runtime in (first, second)}
    assert len(names) == 2 and all(n.startswith("_tensorplan_hostcode_") for n in names)
    assert "scaler_plugin" not in sys.modules
    assert trt.get_plugin_registry().get_creator("HostScaler", "1", "hc") is None
    assert first.get_plugin_registry().get_creator("HostScaler", "1", "hc") is not None
    for engine in engines:
        check_runs(engine)
    name = loaded_module(first).__name__
    del first, engines
    gc.collect()
    assert name not in sys.modules


def test_an_unreadable_library_fails_the_build(tmp_path, logger):
    def define(network):
        x = network.add_input("x", trt.float32, (2,))
        network.mark_output(network.add_identity(x).get_output(0))

    def configure(builder, config):
        config.plugins_to_serialize = [str(tmp_path / "missing.py")]

    assert build_plan(define, logger, configure) is None
    assert "plugins_to_serialize: cannot read" in logger.errors[0]


C_LIBRARY = r"""
#include <stdint.h>
#include <string.h>
typedef struct { const char *name; const void *data; int32_t type; int32_t length; } TPPluginField;
typedef struct { int32_t dtype; int32_t rank; int64_t dims[8]; void *data; } TPPluginTensor;
typedef int32_t (*TPEnqueue)(const TPPluginTensor *, int32_t, TPPluginTensor *, int32_t,
                             const TPPluginField *, int32_t, void *, void *);
typedef struct { int32_t abi_version; const char *name, *version, *plugin_namespace;
                 int32_t num_outputs; int32_t shape_like_input; TPEnqueue enqueue; } TPPluginCreator;

static int32_t add_offset(const TPPluginTensor *in, int32_t nin, TPPluginTensor *out, int32_t nout,
                          const TPPluginField *fields, int32_t nfields, void *ws, void *stream) {
    float offset = 0;
    for (int i = 0; i < nfields; i++)
        if (!strcmp(fields[i].name, "offset") && fields[i].type == 1) offset = *(const float *)fields[i].data;
    if (in[0].dtype != 0) return 3;  /* FLOAT only */
    int64_t n = 1;
    for (int d = 0; d < in[0].rank; d++) n *= in[0].dims[d];
    for (int64_t i = 0; i < n; i++) ((float *)out[0].data)[i] = ((const float *)in[0].data)[i] + offset;
    return 0;
}
static const TPPluginCreator creator = {1, "CAddOffset", "1", "cabi", 1, 0, add_offset};
static const TPPluginCreator *const creators[] = {&creator};
const TPPluginCreator *const *getCreators(int32_t *nb) { *nb = 1; return creators; }
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_a_shared_library_plugin_through_the_c_abi(tmp_path, logger, directories, monkeypatch):
    monkeypatch.setenv("TENSORPLAN_DEVICE", "cpu")  # the C kernel reads host pointers
    source, library = tmp_path / "offset.c", tmp_path / "liboffset.so"
    source.write_text(C_LIBRARY)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(library), str(source)], check=True)
    registry = trt.IPluginRegistry()
    handle = registry.load_library(str(library))
    assert handle is not None and [c.name for c in registry.all_creators] == ["CAddOffset"]
    fields = trt.PluginFieldCollection(
        [trt.PluginField("offset", np.array([1.5], np.float32), trt.PluginFieldType.FLOAT32)]
    )
    plugin = registry.get_creator("CAddOffset", "1", "cabi").create_plugin(
        "offset", fields, trt.TensorRTPhase.BUILD
    )

    def define(network):
        x = network.add_input("x", trt.float32, (-1, 2))
        network.mark_output(network.add_plugin_v3([x], [], plugin).get_output(0))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 2), (2, 2), (4, 2))
        config.add_optimization_profile(profile)
        config.plugins_to_serialize = [str(library)]

    plan = build_plan(define, configure=configure)
    registry.deregister_library(handle)
    assert registry.all_creators == []
    runtime = runtime_for(logger, TEMPORARY, str(directories[0]))
    engine = runtime.deserialize_cuda_engine(plan)
    assert engine is not None, logger.errors
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    (y,) = run(engine, {"x": x}).values()
    np.testing.assert_array_equal(y, x + 1.5)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (None, "No such file"),
        ("x = 1\n", "defines no get_plugin_creators() function"),
        ("def get_plugin_creators():\n    raise KeyError('boom')\n", "failed while loading: KeyError('boom')"),
        ("def get_plugin_creators():\n    return []\n", "provides no plugin creators"),
    ],
)  # fmt: skip
def test_load_library_reports_libraries_that_provide_no_creators(tmp_path, logger, source, message):
    path = tmp_path / "lib.py"
    if source is not None:
        path.write_text(source)
    registry = trt.IPluginRegistry()
    registry._logger = logger
    assert registry.load_library(str(path)) is None
    (error,) = logger.errors
    assert error.startswith("IPluginRegistry::loadLibrary: Error Code 3") and message in error
    assert not [m for m in sys.modules if m.startswith("_tensorplan_plugin_")]


def test_load_library_registers_a_python_module_once(library, logger):
    registry = trt.IPluginRegistry(parent=trt.get_plugin_registry())
    registry._logger = logger
    handle = registry.load_library(str(library))
    assert [c.name for c in handle.creators] == ["HostScaler"]
    assert registry.get_creator("HostScaler", "1", "hc") is handle.creators[0]
    assert handle.module_name in sys.modules and "scaler_plugin" not in sys.modules
    assert registry.load_library(str(library)) is None  # its creators are registered already
    assert "already registered" in logger.errors[-1]
    assert [c.name for c in registry.all_creators_recursive][:1] == ["HostScaler"]
    registry.deregister_library(handle)
    assert registry.get_creator("HostScaler", "1", "hc") is None
    assert handle.module_name not in sys.modules


def test_threads_deserializing_one_host_code_plan_load_its_library_once(plan, logger):
    """The check-and-load of a plan's library is one step: racing threads share one load."""
    runtime = runtime_for(logger)
    barrier = threading.Barrier(8)

    def deserialize(_: int) -> object:
        barrier.wait()
        return runtime.deserialize_cuda_engine(plan)

    for _ in range(5):
        with ThreadPoolExecutor(max_workers=8) as pool:
            engines = list(pool.map(deserialize, range(8)))
        assert all(engine is not None for engine in engines), logger.errors
    assert len(runtime._host_libraries) == 1
    check_runs(engines[0])


def test_a_library_whose_plugins_are_taken_is_reported_to_the_runtimes_recorder(
    plan, logger, recorder
):
    """The registry's refusal reaches the error recorder of the runtime that deserializes."""
    first = runtime_for(logger)
    assert first.deserialize_cuda_engine(plan) is not None
    second = runtime_for(logger)
    creator = first.get_plugin_registry().get_creator("HostScaler", "1", "hc")
    assert second.get_plugin_registry().register_creator(creator, "hc")
    second.error_recorder = recorder
    assert second.deserialize_cuda_engine(plan) is None
    ((code, desc),) = recorder.errors
    assert code == trt.ErrorCodeTRT.INVALID_ARGUMENT
    assert "provides plugins already registered" in desc and "'HostScaler'" in desc
    assert logger.errors == []
