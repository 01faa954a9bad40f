"""Plugin libraries: files that provide plugin creators, loaded from a path.

Two kinds, chosen by tensorplan (TensorRT only knows shared libraries):

- A **Python module** (a `.py` file) that defines `get_plugin_creators()`, returning its
  IPluginCreatorV3One objects. It is executed under a private module name given by the
  caller (never its own name), so two loads never share state, and no bytecode file is
  written next to it.
- A **shared library** with TensorRT's entry-point convention: a C function
  `getCreators(int32_t *nb_creators)` returning an array of creator descriptors. Since a
  C++ IPluginCreatorV3One cannot be called from Python, tensorplan defines the small C ABI
  below (version 1); each descriptor becomes a Python creator (`CPluginCreator`).

    typedef struct { const char *name; const void *data; int32_t type; int32_t length; }
        TPPluginField;                     /* type: PluginFieldType, length: elements */
    typedef struct { int32_t dtype; int32_t rank; int64_t dims[8]; void *data; }
        TPPluginTensor;                    /* dtype: DataType; data: host or device pointer */
    typedef int32_t (*TPEnqueue)(const TPPluginTensor *inputs, int32_t nb_inputs,
        TPPluginTensor *outputs, int32_t nb_outputs, const TPPluginField *fields,
        int32_t nb_fields, void *workspace, void *stream);   /* 0 on success */
    typedef struct {
        int32_t abi_version;               /* 1 */
        const char *name, *version, *plugin_namespace;
        int32_t num_outputs;               /* each output has the shape and type of ... */
        int32_t shape_like_input;          /* ... this input */
        TPEnqueue enqueue;
    } TPPluginCreator;
    const TPPluginCreator *const *getCreators(int32_t *nb_creators);
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys
from typing import Any

import numpy as np

from ..types import DataType, PluginCapabilityType, TensorRTPhase
from .fields import FieldRecord, collection_of, records_of
from .interfaces import (
    FIELD_NUMPY_TYPES,
    IPluginCreatorV3One,
    IPluginV3,
    IPluginV3OneBuild,
    IPluginV3OneCore,
    IPluginV3OneRuntime,
    PluginFieldCollection,
)

PYTHON_ENTRY_POINT = "get_plugin_creators"
C_ENTRY_POINT = "getCreators"
C_ABI_VERSION = 1
MAX_CREATORS = 1024


class LibraryError(ValueError):
    """A plugin library that loaded but does not provide creators as it should."""


class PluginLibrary:
    """A loaded plugin library: what keeps it alive, and its creators."""

    def __init__(self, name: str, handle: Any, creators: list[Any], module_name: str = ""):
        self.name = name
        self.handle = handle
        self.creators = creators
        self.module_name = module_name
        """The private sys.modules name of a Python module library ("" for others)."""

    def __repr__(self) -> str:
        return f"<PluginLibrary {self.name!r}: {len(self.creators)} creators>"


def open_library(kind: str, path: str, name: str, module_name: str) -> PluginLibrary:
    """Load the library of `kind` ("python-module" or "shared-library") at `path`.

    OSError when the file cannot be read or mapped (the caller may try another path);
    LibraryError when it loaded but provides no valid creators.
    """
    if kind == "python-module":
        return load_python_module(path, name, module_name)
    if kind == "shared-library":
        return load_shared_library(path, name)
    raise LibraryError(f"'{name}' is of kind {kind!r}, which is not a plugin library")


def load_python_module(path: str, name: str, module_name: str) -> PluginLibrary:
    """Execute the module at `path` as `module_name` and collect its creators."""
    with open(path, "rb") as file:
        source = file.read()
    spec = importlib.util.spec_from_loader(module_name, loader=None, origin=path)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = path
    sys.modules[module_name] = module  # for code that looks its module up (dataclasses, ...)
    try:
        exec(compile(source, path, "exec"), module.__dict__)
        entry = getattr(module, PYTHON_ENTRY_POINT, None)
        if not callable(entry):
            raise LibraryError(f"'{name}' defines no {PYTHON_ENTRY_POINT}() function")
        creators = list(entry())
        _check_creators(creators, name)
    except LibraryError:
        del sys.modules[module_name]
        raise
    except Exception as error:  # the library's own code failed while loading
        del sys.modules[module_name]
        raise LibraryError(f"'{name}' failed while loading: {error!r}") from None
    return PluginLibrary(name, module, creators, module_name)


def load_shared_library(path: str, name: str) -> PluginLibrary:
    """dlopen the library at `path` and wrap the creators its `getCreators` returns."""
    library = ctypes.CDLL(path)
    entry = getattr(library, C_ENTRY_POINT, None)
    if entry is None:
        raise LibraryError(f"'{name}' exports no {C_ENTRY_POINT} function")
    entry.restype = ctypes.POINTER(ctypes.POINTER(TPPluginCreator))
    entry.argtypes = [ctypes.POINTER(ctypes.c_int32)]
    count = ctypes.c_int32(0)
    array = entry(ctypes.byref(count))
    if not 0 <= count.value <= MAX_CREATORS or (count.value and not array):
        raise LibraryError(f"'{name}': {C_ENTRY_POINT} returned {count.value} creators")
    creators = []
    for index in range(count.value):
        descriptor = array[index]
        if not descriptor:
            raise LibraryError(f"'{name}': creator {index} is a null pointer")
        creators.append(CPluginCreator(descriptor.contents, library, name))
    _check_creators(creators, name)
    return PluginLibrary(name, library, creators)


def _check_creators(creators: list[Any], name: str) -> None:
    if not creators:
        raise LibraryError(f"'{name}' provides no plugin creators")
    for creator in creators:
        if not all(isinstance(getattr(creator, a, None), str) for a in ("name", "plugin_version")):
            raise LibraryError(
                f"'{name}' provides {creator!r}, which has no string name and plugin_version"
            )


# -- the C ABI -------------------------------------------------------------------------------


class TPPluginField(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("data", ctypes.c_void_p),
        ("type", ctypes.c_int32),
        ("length", ctypes.c_int32),
    ]


class TPPluginTensor(ctypes.Structure):
    _fields_ = [
        ("dtype", ctypes.c_int32),
        ("rank", ctypes.c_int32),
        ("dims", ctypes.c_int64 * 8),
        ("data", ctypes.c_void_p),
    ]


TPEnqueue = ctypes.CFUNCTYPE(
    ctypes.c_int32,
    ctypes.POINTER(TPPluginTensor),
    ctypes.c_int32,
    ctypes.POINTER(TPPluginTensor),
    ctypes.c_int32,
    ctypes.POINTER(TPPluginField),
    ctypes.c_int32,
    ctypes.c_void_p,
    ctypes.c_void_p,
)


class TPPluginCreator(ctypes.Structure):
    _fields_ = [
        ("abi_version", ctypes.c_int32),
        ("name", ctypes.c_char_p),
        ("version", ctypes.c_char_p),
        ("plugin_namespace", ctypes.c_char_p),
        ("num_outputs", ctypes.c_int32),
        ("shape_like_input", ctypes.c_int32),
        ("enqueue", TPEnqueue),
    ]


class CPluginCreator(IPluginCreatorV3One):
    """A creator described by a shared library through the C ABI."""

    def __init__(self, descriptor: TPPluginCreator, library: ctypes.CDLL, library_name: str):
        if descriptor.abi_version != C_ABI_VERSION:
            raise LibraryError(
                f"'{library_name}' uses plugin C ABI version {descriptor.abi_version}; "
                f"tensorplan knows version {C_ABI_VERSION}"
            )
        if not descriptor.name or not descriptor.enqueue or not 1 <= descriptor.num_outputs <= 64:
            raise LibraryError(f"'{library_name}' has a creator without name, enqueue or outputs")
        self.name = descriptor.name.decode("utf-8", "replace")
        self.plugin_version = (descriptor.version or b"1").decode("utf-8", "replace")
        self.plugin_namespace = (descriptor.plugin_namespace or b"").decode("utf-8", "replace")
        IPluginCreatorV3One.__init__(self)
        self._descriptor = descriptor
        self._library = library  # keeps the shared object mapped while the creator lives

    def create_plugin(
        self, name: str, field_collection: PluginFieldCollection, phase: TensorRTPhase
    ) -> IPluginV3:
        return CPlugin(self, records_of(field_collection or []))


class CPlugin(IPluginV3, IPluginV3OneCore, IPluginV3OneBuild, IPluginV3OneRuntime):
    """A plugin whose enqueue is a C function of a shared library."""

    def __init__(self, creator: CPluginCreator, fields: tuple[FieldRecord, ...]) -> None:
        self.plugin_name = creator.name
        self.plugin_version = creator.plugin_version
        self.plugin_namespace = creator.plugin_namespace
        self.num_outputs = int(creator._descriptor.num_outputs)
        IPluginV3OneCore.__init__(self)
        IPluginV3OneBuild.__init__(self)
        self._creator = creator
        self._fields = fields

    def get_capability_interface(self, type: PluginCapabilityType) -> Any:
        return self

    def clone(self) -> CPlugin:
        return CPlugin(self._creator, self._fields)

    def get_output_data_types(self, input_types: list[DataType]) -> list[DataType]:
        return [input_types[self._like()]] * self.num_outputs

    def get_output_shapes(self, inputs: list, shape_inputs: list, expr_builder: Any) -> list:
        return [inputs[self._like()]] * self.num_outputs

    def get_fields_to_serialize(self) -> PluginFieldCollection:
        return collection_of(self._fields)

    def enqueue(
        self,
        input_desc: list,
        output_desc: list,
        inputs: list[int],
        outputs: list[int],
        workspace: int,
        stream: int,
    ) -> None:
        tensors_in = (TPPluginTensor * max(len(inputs), 1))()
        tensors_out = (TPPluginTensor * max(len(outputs), 1))()
        for array, descs, pointers in (
            (tensors_in, input_desc, inputs),
            (tensors_out, output_desc, outputs),
        ):
            for slot, desc, pointer in zip(array, descs, pointers, strict=False):
                dims = list(desc.dims)
                slot.dtype, slot.rank, slot.data = int(desc.type), len(dims), pointer
                slot.dims[: len(dims)] = dims
        keep = [np.ascontiguousarray(np.frombuffer(r.data, dtype=np.uint8)) for r in self._fields]
        fields = (TPPluginField * max(len(self._fields), 1))()
        for slot, record, data in zip(fields, self._fields, keep, strict=False):
            slot.name = record.name.encode()
            slot.data = data.ctypes.data if data.size else None
            slot.type = int(record.type)
            slot.length = len(record.data) // np.dtype(FIELD_NUMPY_TYPES[record.type]).itemsize
        status = self._creator._descriptor.enqueue(
            tensors_in, len(inputs), tensors_out, len(outputs), fields, len(self._fields),
            workspace or None, stream or None,
        )  # fmt: skip
        if status != 0:
            raise RuntimeError(f"plugin '{self.plugin_name}' enqueue returned {status}")

    def _like(self) -> int:
        return int(self._creator._descriptor.shape_like_input)
