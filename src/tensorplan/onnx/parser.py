"""OnnxParser and ParserError: TensorRT's ONNX parser API over tensorplan's importers.

`parse` never raises for any model bytes: a model that cannot be imported makes it return
False, with ParserErrors that name the node and operator (and the logger told, at ERROR,
as TensorRT's parser does).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from ..collector import paused_garbage_collection
from ..logging import ILogger, log
from ..network.definition import INetworkDefinition
from ..network.tensor import ITensor
from ..types import ErrorCode, OnnxParserFlag
from .context import NeedsConstant
from .graph import import_model
from .importers import find_importer
from .model import DEFAULT_DOMAINS, ModelError, load_model


class ParserError:
    """One error of a parse: its code, what went wrong, and the node it happened in."""

    def __init__(
        self,
        code: ErrorCode,
        desc: str,
        node: int = -1,
        node_name: str = "",
        node_operator: str = "",
        func: str = "",
        local_function_stack: Sequence[str] = (),
    ) -> None:
        self._code = ErrorCode(code)
        self._desc = desc
        self._node = node
        self._node_name = node_name
        self._node_operator = node_operator
        self._func = func
        self._stack = list(local_function_stack)

    def code(self) -> ErrorCode:
        return self._code

    def desc(self) -> str:
        return self._desc

    def file(self) -> str:
        """The source file that found the error (the importer's module)."""
        return os.path.basename(__file__)

    def line(self) -> int:
        return 0

    def func(self) -> str:
        return self._func

    def node(self) -> int:
        """The index of the ONNX node, -1 when the error is not about a node."""
        return self._node

    def node_name(self) -> str:
        return self._node_name

    def node_operator(self) -> str:
        return self._node_operator

    def local_function_stack(self) -> list[str]:
        return list(self._stack)

    def local_function_stack_size(self) -> int:
        return len(self._stack)

    def __str__(self) -> str:
        where = (
            f"In node {self._node} with name: {self._node_name} and operator: "
            f"{self._node_operator} "
            if self._node >= 0
            else ""
        )
        return f"{where}({self._func}): {self._code.name}: {self._desc}"

    def __repr__(self) -> str:
        return f"<ParserError {self}>"


class OnnxParser:
    """Parses ONNX models into an INetworkDefinition: each node becomes network layers."""

    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        if not isinstance(network, INetworkDefinition):
            raise TypeError("OnnxParser needs an INetworkDefinition")
        self._network = network
        self._logger = logger
        self._errors: list[ParserError] = []
        self.flags = 1 << int(OnnxParserFlag.NATIVE_INSTANCENORM)  # TensorRT 10's default
        self._loaded: onnx.ModelProto | None = None
        self._user_initializers: dict[str, bytes] = {}
        self._outputs_by_node: dict[str, list[ITensor]] = {}
        self._subgraphs: list[tuple[list[int], bool]] = []
        self._constant_requests: set[str] = set()

    def __enter__(self) -> OnnxParser:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    # -- flags ----------------------------------------------------------------------------------

    def set_flag(self, flag: OnnxParserFlag) -> None:
        self.flags |= 1 << int(flag)

    def clear_flag(self, flag: OnnxParserFlag) -> None:
        self.flags &= ~(1 << int(flag))

    def get_flag(self, flag: OnnxParserFlag) -> bool:
        return bool(self.flags >> int(flag) & 1)

    # -- errors ---------------------------------------------------------------------------------

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> ParserError | None:
        return self._errors[index] if 0 <= index < len(self._errors) else None

    def clear_errors(self) -> None:
        self._errors.clear()

    # -- parsing --------------------------------------------------------------------------------

    def parse(self, model: Any, path: str | None = None) -> bool:
        """Parse serialized ONNX model bytes; `path` locates external data files."""
        try:
            proto = load_model(_as_bytes(model), path)
        except ModelError as error:
            return self._fail(error, "parse")
        return self._import(proto, "parse")

    def parse_from_file(self, model: str) -> bool:
        try:
            with open(model, "rb") as file:
                data = file.read()
        except OSError as error:
            return self._fail(
                ModelError(ErrorCode.MODEL_DESERIALIZE_FAILED, f"cannot read '{model}': {error}"),
                "parseFromFile",
            )
        return self.parse(data, model)

    def parse_with_weight_descriptors(self, model: Any) -> bool:
        """Deprecated in TensorRT 10.13; as parse (weights are always read from the model)."""
        return self.parse(model)

    def load_model_proto(self, model: Any, path: str | None = None) -> bool:
        """Load a model to parse later with parse_model_proto (after load_initializer calls)."""
        if self._loaded is not None:
            return self._fail(
                ModelError(ErrorCode.INVALID_VALUE, "a model is already loaded"), "loadModelProto"
            )
        try:
            self._loaded = load_model(_as_bytes(model), path)
        except ModelError as error:
            return self._fail(error, "loadModelProto")
        return True

    def load_initializer(self, name: str, data: int, size: int) -> bool:
        """Give the bytes of initializer `name` at host address `data` (copied now)."""
        api = "loadInitializer"
        if self._loaded is None:
            return self._fail(ModelError(ErrorCode.INVALID_VALUE, "no model is loaded"), api)
        proto = next((t for t in self._loaded.graph.initializer if t.name == name), None)
        if proto is None:
            return self._fail(
                ModelError(ErrorCode.INVALID_VALUE, f"the model has no initializer '{name}'"), api
            )
        expected = _initializer_bytes(proto)
        if expected != size:
            return self._fail(
                ModelError(
                    ErrorCode.INVALID_VALUE,
                    f"initializer '{name}' holds {expected} bytes, {size} were given",
                ),
                api,
            )
        self._user_initializers[name] = ctypes.string_at(data, size) if size else b""
        return True

    def parse_model_proto(self) -> bool:
        if self._loaded is None:
            return self._fail(
                ModelError(ErrorCode.INVALID_VALUE, "no model is loaded"), "parseModelProto"
            )
        for proto in self._loaded.graph.initializer:
            if proto.name in self._user_initializers:
                proto.ClearField("external_data")
                proto.data_location = onnx.TensorProto.DEFAULT
                proto.raw_data = self._user_initializers[proto.name]
        return self._import(self._loaded, "parseModelProto")

    # -- support queries ------------------------------------------------------------------------

    def supports_operator(self, op_name: str) -> bool:
        """Whether an op of the default domain can be imported (directly or as a function)."""
        if find_importer(op_name) is not None:
            return True
        try:
            schema = onnx.defs.get_schema(op_name)
        except onnx.defs.SchemaError:
            return False
        return schema.has_function or schema.has_context_dependent_function

    def supports_model(self, model: Any, path: str | None = None) -> tuple[bool, list]:
        """Whether the model imports, and its nodes (by index) in runs that do or do not."""
        supported = self.supports_model_v2(model, path)
        return supported, [(list(nodes), ok) for nodes, ok in self._subgraphs]

    def supports_model_v2(self, model: Any, path: str | None = None) -> bool:
        self._subgraphs = []
        try:
            proto = load_model(_as_bytes(model), path)
        except ModelError as error:
            return self._fail(error, "supportsModel")
        scratch = INetworkDefinition(self._network.builder, self._network.flags)
        failed = -1
        try:
            import_model(scratch, proto)
        except ModelError as error:
            failed = error.node if error.node >= 0 else len(proto.graph.node)
        except Exception:  # an importer bug is an unsupported model, never a crash
            failed = len(proto.graph.node)
        self._subgraphs = _subgraphs(proto.graph, failed, self.supports_operator)
        return failed < 0

    @property
    def num_subgraphs(self) -> int:
        return len(self._subgraphs)

    def is_subgraph_supported(self, index: int) -> bool:
        return 0 <= index < len(self._subgraphs) and self._subgraphs[index][1]

    def get_subgraph_nodes(self, index: int) -> list[int]:
        return list(self._subgraphs[index][0]) if 0 <= index < len(self._subgraphs) else []

    def get_layer_output_tensor(self, name: str, i: int) -> ITensor | None:
        """Output `i` of the first ONNX node called `name`, after a parse."""
        outputs = self._outputs_by_node.get(name, [])
        return outputs[i] if 0 <= i < len(outputs) else None

    def get_used_vc_plugin_libraries(self) -> list[str]:
        return []

    # -- internals ------------------------------------------------------------------------------

    def _import(self, proto: onnx.ModelProto, func: str) -> bool:
        self._constant_requests = set()
        try:
            with paused_garbage_collection():
                ctx = import_model(self._network, proto)
        except NeedsConstant as error:
            self._constant_requests = set(error.sources)
            return self._fail(error, func)
        except ModelError as error:
            return self._fail(error, func)
        except Exception as error:  # an importer bug must not crash the caller
            return self._fail(
                ModelError(
                    ErrorCode.INTERNAL_ERROR, f"{type(error).__name__}: {error}", -1, "", ""
                ),
                func,
            )
        for node in proto.graph.node:
            if node.name and node.name not in self._outputs_by_node:
                self._outputs_by_node[node.name] = [ctx.tensors.get(n) for n in node.output]
        return True

    def _fail(self, error: ModelError, func: str) -> bool:
        parser_error = ParserError(
            error.code, error.desc, error.node, error.node_name, error.node_operator, func
        )
        self._errors.append(parser_error)
        log(self._logger, ILogger.Severity.ERROR, f"ONNX parser: {parser_error}")
        return False


def _as_bytes(model: Any) -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    if isinstance(model, onnx.ModelProto):
        return model.SerializeToString()
    return bytes(memoryview(model))


def _initializer_bytes(proto: onnx.TensorProto) -> int:
    count = int(np.prod(list(proto.dims), dtype=np.int64)) if proto.dims else 1
    itemsize = onnx.helper.tensor_dtype_to_np_dtype(proto.data_type).itemsize
    return count * itemsize


def _subgraphs(graph: onnx.GraphProto, failed: int, supported: Any) -> list[tuple[list[int], bool]]:
    """Runs of consecutive nodes; the failing node and ops without an importer are
    unsupported (TensorRT's SubGraphCollection)."""
    runs: list[tuple[list[int], bool]] = []
    for index, node in enumerate(graph.node):
        ok = node.domain in DEFAULT_DOMAINS and supported(node.op_type) and index != failed
        if runs and runs[-1][1] == ok:
            runs[-1][0].append(index)
        else:
            runs.append(([index], ok))
    return runs
