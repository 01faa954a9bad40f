"""The optimization profiles of a build: checked against the network's inputs, and every
value's shape inferred at each profile's min, opt and max points."""

from __future__ import annotations

from typing import Any

import torch

from ..ir import Graph, GraphError, Profile, infer_graph
from ..network.definition import INetworkDefinition
from ..ops.base import UNKNOWN, TensorMeta
from ..plan.format import MAX_SHAPE_VALUES
from ..types import DataType, volume
from .config import IBuilderConfig, IOptimizationProfile
from .lowering import BuildError


def check_profiles(
    graph: Graph, config: IBuilderConfig, network: INetworkDefinition
) -> list[Profile]:
    """The config's profiles checked against the graph's inputs (one empty profile if static).

    Every profile must give the value ranges (set_shape_input) of the inputs that are shape
    tensors of the network.
    """
    shape_tensors = {tensor.name for tensor in network._inputs if network._is_shape_tensor(tensor)}
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


def profile_shape_sets(graph: Graph, profiles: list[Profile]) -> list[list[TensorMeta]]:
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
