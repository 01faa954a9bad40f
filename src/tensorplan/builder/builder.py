"""Builder: builds an optimized plan from a network definition."""

from __future__ import annotations

import time
from typing import Any

import torch

from ..collector import paused_garbage_collection
from ..errors import report_error
from ..ir import GraphError, Program
from ..logging import ILogger, log
from ..memory import IHostMemory
from ..network.definition import INetworkDefinition
from ..plan.host_code import build_host_code
from ..plan.writer import write_plan
from ..runtime.lean_archive import export_archive
from ..types import BuilderFlag, ErrorCodeTRT
from .config import IBuilderConfig, IOptimizationProfile
from .lowering import BuildError
from .pipeline import BuildState, run_pipeline
from .progress import BuildCancelled, BuildProgress

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
        state = BuildState(network, config, self._logger, time_tactics)
        run_pipeline(state, progress or BuildProgress(None))
        try:
            flags, host_code = build_host_code(
                list(config.plugins_to_serialize),
                config.get_flag(BuilderFlag.VERSION_COMPATIBLE),
                config.get_flag(BuilderFlag.EXCLUDE_LEAN_RUNTIME),
                export_archive,
            )
        except ValueError as error:
            raise BuildError(str(error)) from None
        tf32 = config.get_flag(BuilderFlag.TF32)
        return Program(
            network.name,
            state.graph,
            state.profiles,
            state.memory,
            flags,
            host_code=host_code,
            tf32=tf32,
        )
