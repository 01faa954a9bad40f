"""Tactic selection and TensorRT's timing cache.

Where a layer has several implementations ("tactics"), the builder times each one on the
execution device at the first optimization profile's opt shapes and writes the fastest into
the plan. An ITimingCache remembers the winner by layer configuration (TimingCacheKey), so
identical layers are timed once per build and a cache kept across builds skips timing
altogether. An op has tactics when it declares them (`Op.tactic`: the attribute naming the
implementation and the enum of its choices); a tactic hash is the choice's value. Today the
fused attention op has them: torch's scaled-dot-product-attention backends (ops/fused.py
AttentionBackend).

A serialized cache is plain data: a fixed header, then UTF-8 JSON (see `_HEADER`).
"""

from __future__ import annotations

import enum
import functools
import json
import math
import platform
import statistics
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import torch

from ..device import execution_device, torch_dtype
from ..errors import report_error
from ..ir import Graph, MemoryPlan, Node
from ..logging import ILogger, log
from ..memory import IHostMemory
from ..ops import get_op
from ..ops.base import TensorMeta
from ..ops.shaping import Shuffle
from ..runtime.executor import tf32_mode
from ..types import BuilderFlag, DataType, ErrorCodeTRT
from .lowering import BuildError

CACHE_MAGIC = b"TPTCACHE"
CACHE_VERSION = 1
_HEADER = struct.Struct("<8sIIQ")
"""magic, format version, CRC-32 of the body, body length; the body follows: UTF-8 JSON
{"device": str, "torch": str, "entries": [{"key": key fields, "tactic": int, "ms": float}]}."""

INVALID_TACTIC_HASH = (1 << 64) - 1
"""TensorRT's TimingCacheValue::kINVALID_TACTIC_HASH."""

TIMING_RUNS = 5
"""Measurements per tactic (each the mean of `avg_timing_iterations` runs); the median counts."""
GRAPH_RUNS = 10
"""On CUDA, runs per measurement at least (replayed from one CUDA graph)."""

_KEY_FIELDS = frozenset({"op", "inputs", "attrs", "tf32", "device"})


class TimingCacheKey:
    """A layer configuration: op, input types and shapes (at the first profile's opt point),
    the attributes that change the implementation, BuilderFlag.TF32 and the device name.

    Its text (`str(key)`) is canonical JSON; `TimingCacheKey.parse` reads it back.
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        try:
            text = json.dumps(_checked_key_fields(fields), sort_keys=True, separators=(",", ":"))
        except TypeError as error:
            raise ValueError(f"a timing-cache key holds plain data only: {error}") from None
        self._text = text
        self._fields = json.loads(text)

    @staticmethod
    def parse(text: str) -> TimingCacheKey:
        """The key whose text is `text`; ValueError naming the problem when it is not one."""
        if not isinstance(text, str):
            raise TypeError(f"expected the text of a TimingCacheKey, got {type(text).__name__}")
        try:
            fields = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise ValueError(f"not the text of a TimingCacheKey: {error}") from None
        return TimingCacheKey(fields)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"TimingCacheKey.parse({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimingCacheKey) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


class TimingCacheValue:
    """A cache entry's value: the chosen tactic and its time in milliseconds.

    Negative or NaN times and INVALID_TACTIC_HASH are invalid (TensorRT's rule); `query` of a
    missing key returns TimingCacheValue(INVALID_TACTIC_HASH, -1.0).
    """

    INVALID_TACTIC_HASH = INVALID_TACTIC_HASH

    def __init__(self, tacticHash: int, timingMSec: float) -> None:
        self.tacticHash = int(tacticHash)
        self.timingMSec = float(timingMSec)

    @property
    def is_valid(self) -> bool:
        return 0 <= self.tacticHash < INVALID_TACTIC_HASH and 0 <= self.timingMSec < math.inf

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimingCacheValue):
            return False
        return (other.tacticHash, other.timingMSec) == (self.tacticHash, self.timingMSec)

    def __repr__(self) -> str:
        return f"TimingCacheValue({self.tacticHash}, {self.timingMSec!r})"


class ITimingCache:
    """Tactic timings collected by builds, by layer configuration.

    Create one with `IBuilderConfig.create_timing_cache` and attach it with
    `set_timing_cache`; it can be shared by several configs and builders. Its verification
    header records the device name and torch version it was created with.
    """

    def __init__(self, owner: Any = None, header: tuple[str, str] | None = None) -> None:
        self._logger = getattr(owner, "_logger", None)
        self._error_recorder = getattr(owner, "_error_recorder", None)
        self._header = header or environment()
        """(device name, torch version) of the environment whose timings this cache holds."""
        self._entries: dict[TimingCacheKey, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def combine(self, input_cache: ITimingCache, ignore_mismatch: bool) -> bool:
        """Add the entries of `input_cache` whose keys this cache lacks (conflicting entries
        are skipped). A cache of another device or torch version is refused (False, with an
        error) unless `ignore_mismatch`."""
        if not isinstance(input_cache, ITimingCache):
            raise TypeError(f"expected an ITimingCache, got {type(input_cache).__name__}")
        mismatch = header_mismatch(input_cache._header, self._header)
        if mismatch and not ignore_mismatch:
            self._report(
                "ITimingCache::combine",
                f"the input cache was {mismatch}; pass ignore_mismatch=True to combine it anyway",
            )
            return False
        with input_cache._lock:
            entries = list(input_cache._entries.items())
        with self._lock:
            for key, value in entries:
                self._entries.setdefault(key, value)
        return True

    def query(self, key: TimingCacheKey) -> TimingCacheValue:
        """The value of `key`, or TimingCacheValue(INVALID_TACTIC_HASH, -1.0) if it has none."""
        found = self._lookup(key)
        return found if found is not None else TimingCacheValue(INVALID_TACTIC_HASH, -1.0)

    def queryKeys(self) -> list[TimingCacheKey]:
        """Every key, in the order the entries were added."""
        with self._lock:
            return list(self._entries)

    def reset(self) -> bool:
        """Remove every entry."""
        with self._lock:
            self._entries.clear()
        return True

    def serialize(self) -> IHostMemory:
        """The cache as bytes, for `IBuilderConfig.create_timing_cache`."""
        device, version = self._header
        with self._lock:
            entries = [
                {"key": key._fields, "tactic": tactic, "ms": ms}
                for key, (tactic, ms) in self._entries.items()
            ]
        body = json.dumps(
            {"device": device, "torch": version, "entries": entries}, separators=(",", ":")
        ).encode()
        header = _HEADER.pack(CACHE_MAGIC, CACHE_VERSION, zlib.crc32(body), len(body))
        return IHostMemory(header + body)

    def update(self, key: TimingCacheKey, value: TimingCacheValue) -> bool:
        """Replace the value of an existing `key`: False if the key is missing or the value
        invalid; a NaN time deletes the entry (True). A tactic the layer does not have fails
        the next build that uses this entry."""
        if not isinstance(key, TimingCacheKey) or not isinstance(value, TimingCacheValue):
            raise TypeError("update takes a TimingCacheKey and a TimingCacheValue")
        with self._lock:
            if key not in self._entries:
                return False
            if math.isnan(value.timingMSec):
                del self._entries[key]
                return True
            if not value.is_valid:
                return False
            self._entries[key] = (value.tacticHash, value.timingMSec)
        return True

    def _lookup(self, key: TimingCacheKey) -> TimingCacheValue | None:
        if not isinstance(key, TimingCacheKey):
            raise TypeError(f"expected a TimingCacheKey, got {type(key).__name__}")
        with self._lock:
            found = self._entries.get(key)
        return None if found is None else TimingCacheValue(*found)

    def _record(self, key: TimingCacheKey, value: TimingCacheValue) -> None:
        """Add or replace an entry (the builder's timings)."""
        with self._lock:
            self._entries[key] = (value.tacticHash, value.timingMSec)

    def _report(self, api: str, detail: str) -> None:
        report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, detail)


def deserialize_timing_cache(data: Any, owner: Any) -> ITimingCache | None:
    """The cache that `data` (bytes from ITimingCache.serialize) holds, or None with the cause
    reported to `owner`'s error recorder or logger. b"" gives a new empty cache."""
    api = "IBuilderConfig::createTimingCache"
    try:
        data = memoryview(data).cast("B")
    except (TypeError, ValueError):
        report_error(owner, ErrorCodeTRT.INVALID_ARGUMENT, api, "expected a bytes-like object")
        return None
    if len(data) == 0:
        return ITimingCache(owner)
    try:
        header, entries = _parse_cache(bytes(data))
    except ValueError as error:
        report_error(owner, ErrorCodeTRT.INVALID_ARGUMENT, api, f"invalid timing cache: {error}")
        return None
    cache = ITimingCache(owner, header)
    for key, value in entries:
        cache._record(key, value)
    return cache


def environment() -> tuple[str, str]:
    """(device name, torch version): a cache's verification header, and keys' device."""
    return _device_name(execution_device()), torch.__version__


def header_mismatch(made: tuple[str, str], here: tuple[str, str]) -> str | None:
    """How a cache's verification header differs from another's (None when it does not)."""
    if made == here:
        return None
    return f"made on '{made[0]}' with torch {made[1]}, not on '{here[0]}' with torch {here[1]}"


def select_tactics(
    graph: Graph,
    metas: list[TensorMeta],
    memory: MemoryPlan,
    config: Any,
    logger: ILogger | None,
    tf32: bool,
) -> None:
    """Give each node whose op has tactics the fastest one at `metas` (the first profile's
    opt point).

    Timings come from the config's timing cache where it has them (unless
    DISABLE_TIMING_CACHE), else from timing each backend; with ERROR_ON_TIMING_CACHE_MISS a
    layer the cache lacks fails the build. Without a cache set on the config, a private one
    serves this build, so identical layers are timed once.
    """
    nodes = [node for node in graph.nodes if get_op(node.op).tactic is not None]
    if not nodes:
        return
    cache = config.get_timing_cache()
    if cache is None:
        cache = ITimingCache(config)
    reuse = not config.get_flag(BuilderFlag.DISABLE_TIMING_CACHE)
    strict = config.get_flag(BuilderFlag.ERROR_ON_TIMING_CACHE_MISS)
    device = execution_device()
    device_name = _device_name(device)
    inputs = _InputMaker(graph, metas, memory, device)
    iterations = max(1, int(config.avg_timing_iterations))
    for node in nodes:
        attr, choices = get_op(node.op).tactic
        where = f"layer '{node.name}' ({node.op})"
        input_metas = [None if v is None else metas[v] for v in node.inputs]
        if not all(meta is None or meta.is_static for meta in input_metas):
            log(logger, ILogger.Severity.VERBOSE, f"{where}: shapes not static; torch chooses")
            continue
        key = _layer_key(node, input_metas, tf32, device_name)
        cached = cache._lookup(key) if reuse else None
        if cached is not None:
            node.attrs[attr] = _tactic_of(cached, choices, where)
            log(
                logger,
                ILogger.Severity.VERBOSE,
                f"{where}: tactic {node.attrs[attr].name} from the timing cache "
                f"({cached.timingMSec:.4f} ms)",
            )
            continue
        if strict:
            raise BuildError(
                f"{where}: ERROR_ON_TIMING_CACHE_MISS is set and the timing cache has no entry "
                f"for {key}; build once without the flag to fill the cache"
            )
        runner = _node_runner(node, inputs)
        with tf32_mode(tf32), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns of each backend that cannot run
            timings = {t: _time(runner(t), device, iterations) for t in choices}
        runnable = {backend: ms for backend, ms in timings.items() if ms is not None}
        report = ", ".join(
            f"{b.name} {'cannot run' if ms is None else f'{ms:.4f} ms'}"
            for b, ms in timings.items()
        )
        if not runnable:
            log(logger, ILogger.Severity.VERBOSE, f"{where}: {report}; torch chooses")
            continue
        best = min(runnable, key=runnable.__getitem__)
        node.attrs[attr] = best
        if reuse:
            cache._record(key, TimingCacheValue(int(best), runnable[best]))
        log(logger, ILogger.Severity.VERBOSE, f"{where}: {report}; chose {best.name}")


def _layer_key(
    node: Node, inputs: list[TensorMeta | None], tf32: bool, device_name: str
) -> TimingCacheKey:
    """The timing-cache key of `node` with inputs `inputs`."""
    op = get_op(node.op)
    attrs = op.encode_attrs(node.attrs)
    if op.tactic is not None:  # what is timed is not part of the key
        attrs.pop(op.tactic[0], None)
    return TimingCacheKey(
        {
            "op": node.op,
            "inputs": [None if m is None else [m.dtype.name, list(m.shape)] for m in inputs],
            "attrs": attrs,
            "tf32": tf32,
            "device": device_name,
        }
    )


def _tactic_of(value: TimingCacheValue, choices: type[enum.IntEnum], where: str) -> enum.IntEnum:
    try:
        return choices(value.tacticHash)
    except ValueError:
        raise BuildError(
            f"{where}: the timing cache chooses tactic {value.tacticHash}, which this layer does "
            f"not have (its tactics: {', '.join(f'{t.name} = {int(t)}' for t in choices)})"
        ) from None


class _InputMaker:
    """Tensors of the graph's values at the timing shapes, on the device: constants as they
    are, views of other values as the runtime makes them (same strides), others random."""

    def __init__(
        self, graph: Graph, metas: list[TensorMeta], memory: MemoryPlan, device: torch.device
    ) -> None:
        self._graph = graph
        self._metas = metas
        self._memory = memory
        self._device = device
        self._producers = graph.producers()

    def tensor(self, value_id: int) -> torch.Tensor:
        meta = self._metas[value_id]
        if meta.value is not None:
            return meta.value.to(self._device)
        if value_id in self._memory.views:
            node = self._graph.nodes[self._producers[value_id]]
            return Shuffle.view(self.tensor(node.inputs[0]), meta.shape, node.attrs)
        generator = torch.Generator().manual_seed(value_id)
        values = torch.randn(meta.shape, generator=generator).to(torch_dtype(meta.dtype))
        return values.to(self._device)

    def empty(self, value_id: int) -> torch.Tensor:
        meta = self._metas[value_id]
        return torch.empty(meta.shape, dtype=torch_dtype(meta.dtype), device=self._device)


def _node_runner(node: Node, inputs: _InputMaker) -> Callable[[enum.IntEnum], Callable[[], None]]:
    """tactic -> a call that runs `node` once with that tactic, on tensors of its timing
    shapes; the call raises RuntimeError when the tactic cannot run them."""
    op = get_op(node.op)
    tensors = [None if v is None else inputs.tensor(v) for v in node.inputs]
    outputs = [inputs.empty(v) for v in node.outputs]

    def on(tactic: enum.IntEnum) -> Callable[[], None]:
        attrs = {**node.attrs, op.tactic[0]: tactic}
        return lambda: op.run_tactic(tensors, outputs, attrs)

    return on


def _time(run: Callable[[], None], device: torch.device, iterations: int) -> float | None:
    """The median time of `run` in milliseconds, or None when it raises RuntimeError (torch:
    the backend cannot run these inputs)."""
    try:
        run()  # warm-up
    except RuntimeError:
        return None
    samples = []
    if device.type == "cuda":
        iterations = max(iterations, GRAPH_RUNS)
        replay = _captured(run, iterations)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(TIMING_RUNS):
            start.record()
            if replay is None:
                for _ in range(iterations):
                    run()
            else:
                replay()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / iterations)
    else:
        for _ in range(TIMING_RUNS):
            started = time.perf_counter()
            for _ in range(iterations):
                run()
            samples.append((time.perf_counter() - started) * 1e3 / iterations)
    return statistics.median(samples)


def _captured(run: Callable[[], None], iterations: int) -> Callable[[], None] | None:
    """`iterations` runs captured in one CUDA graph, replayed by the returned function: the
    runtime replays graphs, so tactics are compared by GPU time, not by launch overhead.
    None when the runs cannot be captured (then they are timed as launched)."""
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    try:
        with torch.cuda.graph(graph, stream=side):
            for _ in range(iterations):
                run()
    except RuntimeError:
        return None
    torch.cuda.current_stream().wait_stream(side)
    return graph.replay


def _device_name(device: torch.device) -> str:
    """The GPU's name; for the CPU its model and torch's thread count (timings depend on it)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_cpu_model()} ({torch.get_num_threads()} threads)"


@functools.cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def _parse_cache(data: bytes) -> tuple[tuple[str, str], list[tuple[TimingCacheKey, Any]]]:
    """The header and entries of a serialized cache; ValueError saying what is wrong."""
    if len(data) < _HEADER.size:
        raise ValueError(f"{len(data)} bytes is shorter than the {_HEADER.size}-byte header")
    magic, version, crc, length = _HEADER.unpack_from(data)
    if magic != CACHE_MAGIC:
        raise ValueError(f"bad magic {magic!r} (expected {CACHE_MAGIC!r})")
    if version != CACHE_VERSION:
        raise ValueError(f"format version {version}; this tensorplan reads {CACHE_VERSION}")
    body = data[_HEADER.size :]
    if length != len(body):
        raise ValueError(f"the header says {length} body bytes, there are {len(body)}")
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch: the cache is corrupt")
    try:
        document = json.loads(body.decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ValueError(f"the body is not JSON: {error}") from None
    if not isinstance(document, dict) or set(document) != {"device", "torch", "entries"}:
        raise ValueError("the body must be an object with keys device, torch and entries")
    device, version, entries = document["device"], document["torch"], document["entries"]
    if not isinstance(device, str) or not isinstance(version, str):
        raise ValueError("device and torch must be strings")
    if not isinstance(entries, list):
        raise ValueError("entries must be a list")
    parsed = []
    seen = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"key", "tactic", "ms"}:
            raise ValueError(f"entry {index} must be an object with keys key, tactic and ms")
        key = TimingCacheKey(entry["key"])
        tactic, ms = entry["tactic"], entry["ms"]
        if isinstance(tactic, bool) or not isinstance(tactic, int):
            raise ValueError(f"entry {index}: tactic must be an integer, got {tactic!r}")
        if isinstance(ms, bool) or not isinstance(ms, (int, float)):
            raise ValueError(f"entry {index}: ms must be a number, got {ms!r}")
        value = TimingCacheValue(tactic, ms)
        if not value.is_valid:
            raise ValueError(f"entry {index}: invalid value {value!r}")
        if key in seen:
            raise ValueError(f"entry {index}: a second entry for one key")
        seen.add(key)
        parsed.append((key, value))
    return (device, version), parsed


def _checked_key_fields(fields: Any) -> dict[str, Any]:
    """Key fields as plain data; ValueError naming what does not fit."""
    if not isinstance(fields, dict) or set(fields) != _KEY_FIELDS:
        raise ValueError(f"a timing-cache key is an object with keys {sorted(_KEY_FIELDS)}")
    op, inputs, attrs = fields["op"], fields["inputs"], fields["attrs"]
    if not isinstance(op, str) or not isinstance(fields["device"], str):
        raise ValueError("a key's op and device must be strings")
    if not isinstance(fields["tf32"], bool):
        raise ValueError("a key's tf32 must be a boolean")
    if not isinstance(attrs, dict):
        raise ValueError("a key's attrs must be an object")
    if not isinstance(inputs, list):
        raise ValueError("a key's inputs must be a list")
    for index, item in enumerate(inputs):
        if item is None:
            continue
        valid = (
            isinstance(item, list)
            and len(item) == 2
            and item[0] in DataType.__members__
            and isinstance(item[1], list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in item[1])
        )
        if not valid:
            raise ValueError(f"input {index} of a key must be null or [DataType name, [dims]]")
    return fields
