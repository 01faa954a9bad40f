"""A pytest plugin that saves the suite's plans and ONNX models as a fuzzing seed corpus.

With TENSORPLAN_SEED_CORPUS=DIR, every plan the tests build or serialize goes to
DIR/plan/<sha1>.plan and every ONNX model they parse to DIR/onnx/<sha1>.onnx (once each,
none over MAX_SEED_BYTES); docs/fuzzing.md says how to use them. Without it, nothing changes.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from typing import Any

import onnx
import pytest

import tensorplan as trt

ENVIRONMENT_VARIABLE = "TENSORPLAN_SEED_CORPUS"
MAX_SEED_BYTES = 4 << 20
"""Larger inputs slow a fuzzer down more than they teach it."""
MAX_SEED_NODES = 2000
"""Nor are models of more nodes kept: one takes over a second to parse and build under the
fuzzer's instrumentation (a 20,000-node chain takes 8 s, past the 5 s a run may take), and
small models reach the same code."""


def pytest_configure(config: pytest.Config) -> None:
    directory = os.environ.get(ENVIRONMENT_VARIABLE)
    if not directory:
        return
    plans, models = os.path.join(directory, "plan"), os.path.join(directory, "onnx")
    _save_results(trt.Builder, "build_serialized_network", plans, ".plan")
    _save_results(trt.ICudaEngine, "serialize", plans, ".plan")
    _save_arguments(trt.OnnxParser, "parse", models, ".onnx", _model_bytes)
    _save_arguments(trt.OnnxParser, "parse_from_file", models, ".onnx", _file_bytes)


def save_seed(directory: str, suffix: str, data: bytes | None) -> None:
    """Write `data` as `directory`/<sha1><suffix>, unless it is None, too large, or there."""
    if data is None or len(data) > MAX_SEED_BYTES:
        return
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, hashlib.sha1(data).hexdigest() + suffix)
    if not os.path.exists(path):
        with open(path, "wb") as file:
            file.write(data)


def _save_results(cls: type, name: str, directory: str, suffix: str) -> None:
    """Wrap `cls.name` (whatever it is now) to save each plan it returns."""
    method = getattr(cls, name)

    @functools.wraps(method)
    def saving(*args: Any, **kwargs: Any) -> Any:
        plan = method(*args, **kwargs)
        save_seed(directory, suffix, None if plan is None else bytes(plan))
        return plan

    setattr(cls, name, saving)


def _save_arguments(
    cls: type, name: str, directory: str, suffix: str, data_of: Callable[[Any], bytes | None]
) -> None:
    """Wrap `cls.name` (whatever it is now) to save the model its first argument gives."""
    method = getattr(cls, name)

    @functools.wraps(method)
    def saving(self: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        save_seed(directory, suffix, data_of(model))
        return method(self, model, *args, **kwargs)

    setattr(cls, name, saving)


def _model_bytes(model: Any) -> bytes | None:
    """The bytes of a model given to parse (a buffer or a ModelProto) of at most
    MAX_SEED_NODES nodes; None for anything else."""
    if isinstance(model, onnx.ModelProto):
        return model.SerializeToString() if _small(model) else None
    try:
        data = bytes(memoryview(model))
    except (TypeError, ValueError):
        return None
    try:
        proto = onnx.load_from_string(data)
    except Exception:  # damaged on purpose: a seed all the same
        return data
    return data if _small(proto) else None


def _small(model: onnx.ModelProto) -> bool:
    return len(model.graph.node) <= MAX_SEED_NODES


def _file_bytes(path: Any) -> bytes | None:
    """The bytes of the model file given to parse_from_file; None when it cannot be read or
    is large."""
    try:
        if os.path.getsize(path) > MAX_SEED_BYTES:
            return None
        with open(path, "rb") as file:
            return _model_bytes(file.read())
    except (OSError, TypeError, ValueError):
        return None
