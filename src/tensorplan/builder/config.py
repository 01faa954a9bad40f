"""IBuilderConfig and IOptimizationProfile."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import report_error
from ..plan.format import MAX_PROFILES
from ..types import (
    BuilderFlag,
    DeviceType,
    Dims,
    EngineCapability,
    ErrorCodeTRT,
    HardwareCompatibilityLevel,
    MemoryPoolType,
    PreviewFeature,
    ProfilingVerbosity,
    QuantizationFlag,
    as_shape,
)
from .timing import ITimingCache, deserialize_timing_cache, environment, header_mismatch


class IOptimizationProfile:
    """The range of shapes each dynamic input may take: (min, opt, max) per input."""

    def __init__(self, owner: Any = None) -> None:
        self._logger = getattr(owner, "_logger", None)
        self._error_recorder = getattr(owner, "_error_recorder", None)
        self._shapes: dict[str, tuple[tuple[int, ...], ...]] = {}
        self._shape_values: dict[str, tuple[tuple[int, ...], ...]] = {}
        self._valid = True
        self.extra_memory_target = 1.0

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        """Set the shapes of a dynamic input; invalid shapes are reported and make the profile invalid."""
        shapes = tuple(as_shape(s) for s in (min, opt, max))
        problem = _shape_problem(shapes)
        if problem:
            self._valid = False
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IOptimizationProfile::setDimensions",
                f"input '{input}': {problem}",
            )
            return
        self._shapes[input] = shapes

    def get_shape(self, input: str) -> list[Dims]:
        shapes = self._shapes.get(input)
        return [Dims(s) for s in shapes] if shapes else []

    def set_shape_input(self, input: str, min: Any, opt: Any, max: Any) -> None:
        self._shape_values[input] = tuple(tuple(int(v) for v in s) for s in (min, opt, max))

    def get_shape_input(self, input: str) -> list[list[int]]:
        values = self._shape_values.get(input)
        return [list(v) for v in values] if values else []

    def __bool__(self) -> bool:
        return self._valid


def _shape_problem(shapes: tuple[tuple[int, ...], ...]) -> str | None:
    low, opt, high = shapes
    if not len(low) == len(opt) == len(high):
        return f"min {list(low)}, opt {list(opt)} and max {list(high)} have different ranks"
    if any(d < 0 for s in shapes for d in s):
        return (
            f"dimensions must not be negative: min {list(low)}, opt {list(opt)}, max {list(high)}"
        )
    if not all(a <= b <= c for a, b, c in zip(low, opt, high, strict=True)):
        return f"need min <= opt <= max, got min {list(low)}, opt {list(opt)}, max {list(high)}"
    return None


def _device_memory() -> int:
    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class IBuilderConfig:
    """How the builder builds: flags, memory limits, optimization profiles and more."""

    def __init__(self, owner: Any = None) -> None:
        self._logger = getattr(owner, "_logger", None)
        self._error_recorder = getattr(owner, "_error_recorder", None)
        self.reset()

    def reset(self) -> None:
        """Back to the defaults TensorRT uses."""
        self.flags = 1 << int(BuilderFlag.TF32)
        self._pool_limits = {MemoryPoolType.WORKSPACE: _device_memory()}
        self._profiles: list[IOptimizationProfile] = []
        self._preview_features: set[PreviewFeature] = set()
        self.quantization_flags = 0
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self.default_device_type = DeviceType.GPU
        self.DLA_core = -1
        self.engine_capability = EngineCapability.STANDARD
        self.builder_optimization_level = 3
        self.max_aux_streams = -1
        self.max_num_tactics = -1
        self.avg_timing_iterations = 1
        self.hardware_compatibility_level = HardwareCompatibilityLevel.NONE
        self.plugins_to_serialize: list[str] = []
        self.progress_monitor = None
        self.profile_stream = 0
        self.int8_calibrator = None
        self.algorithm_selector = None
        self.l2_limit_for_tiling = -1
        self.remote_auto_tuning_config = ""
        self._timing_cache: ITimingCache | None = None

    def set_flag(self, flag: BuilderFlag) -> None:
        self.flags |= 1 << int(flag)

    def clear_flag(self, flag: BuilderFlag) -> None:
        self.flags &= ~(1 << int(flag))

    def get_flag(self, flag: BuilderFlag) -> bool:
        return bool(self.flags >> int(flag) & 1)

    def set_quantization_flag(self, flag: QuantizationFlag) -> None:
        self.quantization_flags |= 1 << int(flag)

    def clear_quantization_flag(self, flag: QuantizationFlag) -> None:
        self.quantization_flags &= ~(1 << int(flag))

    def get_quantization_flag(self, flag: QuantizationFlag) -> bool:
        return bool(self.quantization_flags >> int(flag) & 1)

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        if pool_size < 0:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IBuilderConfig::setMemoryPoolLimit",
                f"pool size must not be negative, got {pool_size}",
            )
            return
        self._pool_limits[MemoryPoolType(pool)] = int(pool_size)

    def get_memory_pool_limit(self, pool: MemoryPoolType) -> int:
        return self._pool_limits.get(MemoryPoolType(pool), 0)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        """Add a profile; its index, or -1 (with a reported error) for an invalid profile."""
        if not isinstance(profile, IOptimizationProfile) or not profile:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IBuilderConfig::addOptimizationProfile",
                "the optimization profile is not valid",
            )
            return -1
        if len(self._profiles) >= MAX_PROFILES:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IBuilderConfig::addOptimizationProfile",
                f"the config has {MAX_PROFILES} optimization profiles, the most an engine may have",
            )
            return -1
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    def create_timing_cache(self, serialized_timing_cache: Any) -> ITimingCache | None:
        """A timing cache from ITimingCache.serialize's bytes (b"": a new empty cache), or None
        with the cause reported when the bytes are not a valid cache."""
        return deserialize_timing_cache(serialized_timing_cache, self)

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        """Use `cache` in builds with this config (they read and add timings). A cache made on
        another device or torch version is refused (False, reported) unless `ignore_mismatch`."""
        if not isinstance(cache, ITimingCache):
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IBuilderConfig::setTimingCache",
                f"expected an ITimingCache, got {type(cache).__name__}",
            )
            return False
        mismatch = header_mismatch(cache._header, environment())
        if mismatch and not ignore_mismatch:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IBuilderConfig::setTimingCache",
                f"the timing cache was {mismatch}; pass ignore_mismatch=True to use it anyway",
            )
            return False
        self._timing_cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        """The cache set with set_timing_cache, or None."""
        return self._timing_cache

    def set_preview_feature(self, feature: PreviewFeature, enable: bool) -> None:
        if enable:
            self._preview_features.add(PreviewFeature(feature))
        else:
            self._preview_features.discard(PreviewFeature(feature))

    def get_preview_feature(self, feature: PreviewFeature) -> bool:
        return PreviewFeature(feature) in self._preview_features

    def can_run_on_DLA(self, layer: Any) -> bool:
        return False

    def get_device_type(self, layer: Any) -> DeviceType:
        return DeviceType.GPU

    def set_device_type(self, layer: Any, device_type: DeviceType) -> None:
        if DeviceType(device_type) != DeviceType.GPU:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IBuilderConfig::setDeviceType",
                "this platform has no DLA; only DeviceType.GPU is available",
            )

    def is_device_type_set(self, layer: Any) -> bool:
        return False

    def reset_device_type(self, layer: Any) -> None:
        pass
