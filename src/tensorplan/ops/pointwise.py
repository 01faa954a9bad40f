"""A fused chain of pointwise layers: one kernel instead of one per layer.

The builder (builder/fusion.py, `fuse_pointwise`) turns connected elementwise, unary,
activation and cast layers whose inner results nothing else reads into one `pointwise` node.
Its `program` lists the steps, each an operation of one of those ops applied to the node's
inputs or to earlier steps' results; the last step's result is the output. On the GPU a
Triton kernel generated for the program (ops/cuda_pointwise.py) reads each input once and
writes the output once, holding every intermediate in registers; elsewhere the steps run one
by one through the layers' own ops, so the results are exactly the chain's.

The program is data: step kinds and operation codes are enum values checked against the
tables below, operand references are checked to point at inputs or earlier steps.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any

import torch

from ..device import torch_dtype
from ..types import (
    FLOATS,
    ActivationType,
    DataType,
    ElementWiseOperation,
    LayerType,
    UnaryOperation,
)
from . import formulas
from .base import Floats, Ints, Op, ShapeError, TensorMeta
from .elementwise import Activation, Cast, ElementWise, Unary

MAX_STEPS = 32
"""Most steps one fused node runs (longer chains become several nodes)."""

FIELDS_PER_STEP = 4
"""A step in the flat `program`: kind, operation code, first operand, second operand (-1)."""

CAST_SOURCES = FLOATS | {DataType.BOOL, DataType.INT8, DataType.INT32, DataType.INT64}
"""Types a cast step converts from: every one of them converts exactly to FLOAT first."""


class StepKind(enum.IntEnum):
    """Which layer's operation a step performs; the values are stored in plans."""

    ELEMENTWISE = 0
    UNARY = 1
    ACTIVATION = 2
    CAST = 3


BINARY_OPERATIONS = frozenset(formulas.BINARY)
UNARY_OPERATIONS = frozenset(formulas.UNARY)
ACTIVATIONS = frozenset(formulas.ACTIVATIONS)
"""The operations a step may perform: those with a formula (ops/formulas.py)."""

_OPS = {
    StepKind.ELEMENTWISE: (ElementWise(), "op", ElementWiseOperation, BINARY_OPERATIONS),
    StepKind.UNARY: (Unary(), "op", UnaryOperation, UNARY_OPERATIONS),
    StepKind.ACTIVATION: (Activation(), "type", ActivationType, ACTIVATIONS),
    StepKind.CAST: (Cast(), "to_type", DataType, FLOATS),
}
"""Per kind: the layer's op, the attribute its code is, the code's enum and the codes taken."""


@dataclass(frozen=True)
class Step:
    """One operation of a program: operands are input indices, or num_inputs + step index."""

    kind: StepKind
    code: enum.IntEnum
    operands: tuple[int, ...]
    alpha: float = 0.0
    beta: float = 0.0

    def attrs(self) -> dict[str, Any]:
        """The attributes of the layer op the step runs."""
        op, key, _, _ = _OPS[self.kind]
        attrs = {key: self.code}
        if self.kind == StepKind.ACTIVATION:
            attrs |= {"alpha": self.alpha, "beta": self.beta}
        return op.check_attrs(attrs)

    @property
    def op(self) -> Op:
        return _OPS[self.kind][0]


def encode_program(steps: list[Step]) -> dict[str, tuple]:
    """The `program` and `params` attributes of a pointwise node running `steps`."""
    program: list[int] = []
    params: list[float] = []
    for step in steps:
        operands = (*step.operands, -1)[:2]
        program += [int(step.kind), int(step.code), *operands]
        params += [step.alpha, step.beta]
    return {"program": tuple(program), "params": tuple(params)}


def decode_program(attrs: dict[str, Any], num_inputs: int) -> list[Step]:
    """The steps of checked `attrs`; ShapeError naming the first thing that is wrong."""
    program, params = attrs["program"], attrs["params"]
    if not program or len(program) % FIELDS_PER_STEP:
        raise ShapeError(
            f"the program has {len(program)} fields; it needs {FIELDS_PER_STEP} per step"
        )
    count = len(program) // FIELDS_PER_STEP
    if len(params) != 2 * count:
        raise ShapeError(f"the program has {count} steps but {len(params)} parameters")
    steps = []
    for index in range(count):
        kind, code, first, second = program[index * FIELDS_PER_STEP : (index + 1) * FIELDS_PER_STEP]
        if kind not in StepKind._value2member_map_:
            raise ShapeError(f"step {index} has the unknown kind {kind}")
        kind = StepKind(kind)
        _, _, codes, taken = _OPS[kind]
        if code not in codes._value2member_map_ or codes(code) not in taken:
            raise ShapeError(f"step {index}: {kind.name} does not fuse operation {code}")
        arity = 2 if kind == StepKind.ELEMENTWISE else 1
        operands = (first, second)[:arity]
        if arity == 1 and second != -1:
            raise ShapeError(f"step {index}: a {kind.name} step takes one operand")
        for operand in operands:
            if not 0 <= operand < num_inputs + index:
                raise ShapeError(
                    f"step {index} reads operand {operand}, which is neither one of the "
                    f"{num_inputs} inputs nor an earlier step"
                )
        alpha, beta = params[2 * index : 2 * index + 2]
        steps.append(Step(kind, codes(code), operands, alpha, beta))
    read = {operand for step in steps for operand in step.operands}
    unread = [i for i in range(num_inputs + count - 1) if i not in read]
    if unread:
        raise ShapeError(
            f"operand {unread[0]} is read by no step: every input and every step but the last "
            "feeds a later step"
        )
    return steps


class Pointwise(Op):
    """A chain of elementwise, unary, activation and cast operations as one kernel.

    Inputs: the chain's inputs (activations and constants), broadcast as its layers
    broadcast them. Every step computes in FLOAT, HALF or BF16; casts may read BOOL and
    integer inputs.
    """

    name = "pointwise"
    reads_channels_last = True
    reads_strided_views = True
    layer_type = LayerType.ELEMENTWISE
    num_inputs = (1, 2 * MAX_STEPS)
    attrs = {
        "program": Ints((), max_len=FIELDS_PER_STEP * MAX_STEPS),
        "params": Floats((), max_len=2 * MAX_STEPS),
    }
    """program: FIELDS_PER_STEP integers per step (StepKind, the operation's enum value,
    operands); params: alpha and beta per step (the activations' parameters)."""

    checks_structure = True

    def check_structure(self, attrs: dict[str, Any], inputs: list[TensorMeta | None]) -> None:
        decode_program(attrs, len(inputs))

    def summary(self, attrs: dict[str, Any]) -> str:
        """The steps in order (the program is checked: its codes are valid)."""
        program = attrs["program"]
        names = []
        for index in range(0, len(program), FIELDS_PER_STEP):
            kind = StepKind(program[index])
            names.append(_OPS[kind][2](program[index + 1]).name)
        return f"{len(names)} fused steps: {' > '.join(names)} (one generated kernel on CUDA)"

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        if any(meta is None for meta in inputs):
            raise ShapeError("every input of a pointwise node is required")
        steps = decode_program(attrs, len(inputs))
        values = list(inputs)
        for index, step in enumerate(steps):
            operands = [values[i] for i in step.operands]
            allowed = CAST_SOURCES if step.kind == StepKind.CAST else FLOATS
            for meta in operands:
                if meta.dtype not in allowed:
                    raise ShapeError(
                        f"step {index} ({step.kind.name}) reads {meta.dtype.name}; fused steps "
                        "compute in FLOAT, HALF or BF16"
                    )
            try:
                (result,) = step.op.infer(operands, step.attrs())
            except ShapeError as error:
                raise ShapeError(f"step {index} ({step.kind.name}): {error}") from None
            values.append(TensorMeta(result.dtype, result.shape))
        return [values[-1]]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        out = outputs[0]
        steps = _steps(attrs["program"], attrs["params"], len(inputs))
        if out.is_cuda:
            from .cuda_pointwise import run_program

            if run_program(steps, inputs, out):
                return
        values = list(inputs)
        for index, step in enumerate(steps):
            operands = [values[i] for i in step.operands]
            if index == len(steps) - 1:
                result = out
            else:
                shape = torch.broadcast_shapes(*(t.shape for t in operands))
                dtype = torch_dtype(step.code) if step.kind == StepKind.CAST else operands[0].dtype
                result = torch.empty(shape, dtype=dtype, device=out.device)
            step.op.run(operands, [result], step.attrs())
            values.append(result)


@functools.lru_cache(maxsize=1024)
def _steps(program: tuple[int, ...], params: tuple[float, ...], num_inputs: int) -> list[Step]:
    """The decoded steps of a checked program (decoded once, run many times)."""
    return decode_program({"program": program, "params": params}, num_inputs)


OPS = [Pointwise()]
