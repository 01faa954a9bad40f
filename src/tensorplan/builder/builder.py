"""Builder: builds an optimized plan from a network definition."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import torch

from ..collector import paused_garbage_collection
from ..errors import report_error
from ..ir import Graph, GraphError, Profile, Program, infer_graph
from ..logging import ILogger, log
from ..memory import IHostMemory
from ..network.definition import INetworkDefinition
from ..ops.base import UNKNOWN, ShapeError, TensorMeta
from ..ops.plugin import configure_plugins
from ..plan.format import MAX_SHAPE_VALUES
from ..plan.host_code import build_host_code
from ..plan.writer import write_plan
from ..runtime.lean_archive import export_archive
from ..types import BuilderFlag, DataType, ErrorCodeTRT, volume
from .config import IBuilderConfig, IOptimizationProfile
from .fusion import fuse, fuse_pointwise
from .lowering import BuildError, lower
from .memory_plan import plan_memory
from .passes import compact, eliminate_dead_code, fold_constants, remove_identities
from .precision import PrecisionConstraints, assign_precision
from .progress import BuildCancelled, BuildProgress
from .timing import select_tactics

API = "IBuilder::buildSerializedNetwork"


class Builder:
    """Builds engines from networks: `build_serialized_network(network, config)` -> plan."""

    def __init__(self, logger: ILogger) -> None:
        if logger is None:
            raise TypeError("Builder needs a logger")
        self._logger = logger
        self._error_recorder = None
        self.gpu_allocator = None
        self.max_threads = 1

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
    def platform_has_fast_fp16(self) -> bool:
        return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (5, 3)

    @property
    def platform_has_tf32(self) -> bool:
        return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0)

    @property
    def platform_has_fast_int8(self) -> bool:
        return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (6, 1)

    @property
    def num_DLA_cores(self) -> int:
        return 0

    @property
    def max_DLA_batch_size(self) -> int:
        return 1

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(self, flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig(self)

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile(self)

    def get_plugin_registry(self) -> Any:
        from ..plugins.registry import get_plugin_registry

        return get_plugin_registry()

    def reset(self) -> None:
        pass

    def is_network_supported(self, network: INetworkDefinition, config: IBuilderConfig) -> bool:
        try:
            with paused_garbage_collection():
                self._build_program(network, config, time_tactics=False)
        except (BuildError, GraphError):
            return False
        return True

    def build_serialized_network(
        self, network: INetworkDefinition, config: IBuilderConfig
    ) -> IHostMemory | None:
        """The plan of `network`, or None with the cause reported."""
        started = time.perf_counter()
        progress = BuildProgress(getattr(config, "progress_monitor", None))
        try:
            with paused_garbage_collection(), progress.phase("Building engine", 4):
                program = self._build_program(network, config, progress)
                with progress.phase("Serializing", 1):
                    plan = IHostMemory(write_plan(program))
                    progress.step()
        except (BuildError, GraphError) as error:
            report_error(self, ErrorCodeTRT.INVALID_CONFIG, API, str(error), category="Build Error")
            return None
        except BuildCancelled as error:
            report_error(self, ErrorCodeTRT.UNSPECIFIED_ERROR, API, str(error))
            return None
        elapsed = time.perf_counter() - started
        log(
            self._logger,
            ILogger.Severity.INFO,
            f"Built engine '{program.name}': {len(program.graph.nodes)} layers, "
            f"{plan.nbytes} plan bytes, {program.memory.arena_size} activation bytes "
            f"in {elapsed:.3f} s",
        )
        return plan

    def build_engine_with_config(self, network: INetworkDefinition, config: IBuilderConfig) -> Any:
        """Build and deserialize in one step; an ICudaEngine or None."""
        plan = self.build_serialized_network(network, config)
        if plan is None:
            return None
        from ..runtime.runtime import Runtime

        runtime = Runtime(self._logger)
        runtime.error_recorder = self._error_recorder
        runtime.gpu_allocator = self.gpu_allocator
        return runtime.deserialize_cuda_engine(plan)

    def _build_program(
        self,
        network: INetworkDefinition,
        config: IBuilderConfig,
        progress: BuildProgress | None = None,
        time_tactics: bool = True,
    ) -> Program:
        if not isinstance(network, INetworkDefinition):
            raise BuildError("the network must be an INetworkDefinition")
        progress = progress or BuildProgress(None)
        with progress.phase("Lowering", 1):
            graph, inferred = lower(network)
            shape_tensors = {
                tensor.name for tensor in network._inputs if network._is_shape_tensor(tensor)
            }
            profiles = _profiles(graph, config, shape_tensors)
            progress.step()
        constraints = PrecisionConstraints.of(network)
        passes = (
            partial(fold_constants, inferred=inferred),
            remove_identities,
            partial(fuse, keep=constraints.names),
            partial(assign_precision, flags=config.flags, constraints=constraints),
            remove_identities,
            partial(fuse_pointwise, keep=constraints.names),
            eliminate_dead_code,
            compact,
        )
        with progress.phase("Optimizing", len(passes)):
            for optimize in passes:
                optimize(graph)
                progress.step()
        tf32 = config.get_flag(BuilderFlag.TF32)
        with progress.phase("Planning memory", 1):
            shape_sets = _profile_shape_sets(graph, profiles)
            try:
                configure_plugins(graph, shape_sets)
            except ShapeError as error:
                raise BuildError(str(error)) from None
            memory = plan_memory(graph, shape_sets)
            if time_tactics:  # at the first profile's opt point
                select_tactics(graph, shape_sets[1], memory, config, self._logger, tf32)
            progress.step()
        try:
            flags, host_code = build_host_code(
                list(config.plugins_to_serialize),
                config.get_flag(BuilderFlag.VERSION_COMPATIBLE),
                config.get_flag(BuilderFlag.EXCLUDE_LEAN_RUNTIME),
                export_archive,
            )
        except ValueError as error:
            raise BuildError(str(error)) from None
        return Program(network.name, graph, profiles, memory, flags, host_code=host_code, tf32=tf32)


def _profiles(graph: Graph, config: IBuilderConfig, shape_tensors: set[str]) -> list[Profile]:
    """The config's profiles checked against the graph's inputs (one empty profile if static).

    `shape_tensors` names the inputs whose values shape the network: every profile must give
    their value ranges (set_shape_input).
    """
    inputs = {graph.values[v].name: graph.values[v] for v in graph.inputs}
    dynamic = sorted(name for name, value in inputs.items() if UNKNOWN in value.shape)
    hosts = sorted(name for name in shape_tensors if name in inputs)
    if not dynamic and not hosts:  # profiles choose nothing here: a static engine has one
        return [Profile({})]
    if not config._profiles:
        if dynamic:
            raise BuildError(
                f"the network has dynamic inputs {dynamic} but no optimization profile; "
                "add one with config.add_optimization_profile"
            )
        if hosts:
            raise BuildError(
                f"inputs {hosts} are shape tensors but there is no optimization profile; add "
                "one that gives their values with set_shape_input"
            )
    profiles = []
    for index, profile in enumerate(config._profiles):
        shapes = {}
        for name in dynamic:
            if name not in profile._shapes:
                raise BuildError(f"optimization profile {index} sets no shapes for input '{name}'")
            declared = inputs[name].shape
            for shape in profile._shapes[name]:
                fits = len(shape) == len(declared) and all(
                    fixed in (UNKNOWN, d) for d, fixed in zip(shape, declared, strict=True)
                )
                if not fits:
                    raise BuildError(
                        f"optimization profile {index}: shape {list(shape)} of input '{name}' "
                        f"does not match its dimensions {list(declared)}"
                    )
            shapes[name] = profile._shapes[name]
        values = {name: _shape_values(index, profile, name, inputs[name], shapes) for name in hosts}
        profiles.append(Profile(shapes, values))
    return profiles


def _shape_values(
    index: int, profile: IOptimizationProfile, name: str, value: Any, shapes: dict
) -> tuple[tuple[int, ...], ...]:
    """The (min, opt, max) values of shape-tensor input `name`, checked against its shapes."""
    triple = profile._shape_values.get(name)
    if triple is None:
        raise BuildError(
            f"input '{name}' is a shape tensor; optimization profile {index} must give its "
            "values with set_shape_input"
        )
    if value.dtype not in (DataType.INT32, DataType.INT64) or len(value.shape) > 1:
        raise BuildError(
            f"shape tensor input '{name}' must be a 0-D or 1-D INT32 or INT64 tensor, "
            f"got {value.dtype.name} {list(value.shape)}"
        )
    counts = [volume(shape) for shape in shapes.get(name, (value.shape,) * 3)]
    if max(counts) > MAX_SHAPE_VALUES:
        raise BuildError(f"shape tensor input '{name}' has more than {MAX_SHAPE_VALUES} elements")
    for label, values, count in zip(("min", "opt", "max"), triple, counts, strict=True):
        if len(values) != count:
            raise BuildError(
                f"optimization profile {index}: {label} values {list(values)} of shape tensor "
                f"input '{name}' must have {count} elements"
            )
    if not all(a <= b <= c for a, b, c in zip(*triple, strict=True)):
        raise BuildError(
            f"optimization profile {index}: values of shape tensor input '{name}' need "
            f"min <= opt <= max, got {[list(v) for v in triple]}"
        )
    return triple


def _profile_shape_sets(graph: Graph, profiles: list[Profile]) -> list[list[TensorMeta]]:
    """Every value's meta at each profile's min, opt and max shapes (checks them all); points
    that give the same shapes and values share one inference (a static network has one)."""
    by_name = {graph.values[v].name: v for v in graph.inputs}
    shape_sets = []
    inferred: dict[tuple, list[TensorMeta]] = {}
    for index, profile in enumerate(profiles):
        for pick, label in enumerate(("min", "opt", "max")):
            point = tuple(
                (kind, name, tuple(triple[pick]))
                for kind, triples in (("shape", profile.shapes), ("value", profile.values))
                for name, triple in sorted(triples.items())
            )
            if point not in inferred:
                shapes = {by_name[name]: triple[pick] for name, triple in profile.shapes.items()}
                values = {
                    by_name[name]: torch.tensor(triple[pick], dtype=torch.int64)
                    for name, triple in profile.values.items()
                }
                try:
                    inferred[point] = infer_graph(graph, shapes, values)
                except GraphError as error:
                    raise BuildError(
                        f"optimization profile {index} ({label} shapes): {error}"
                    ) from None
            shape_sets.append(inferred[point])
    return shape_sets
