"""One Triton kernel per pointwise program (ops/pointwise.py), generated from its steps.

The source is written from the formulas of ops/formulas.py (the ones the CPU kernels compute
with): step kinds and operation codes (checked enums) select formulas, operand references
name registers, and every number of a plan (an activation's alpha and beta) is a kernel
argument, so nothing from a plan reaches the source as text. The
source is compiled by Triton when the kernel first runs; the functions live in memory (their
source is registered with `linecache`, where Triton reads it), never in a file.

Each program instance handles BLOCK output elements: it loads every input once (dense,
broadcast through strides, or one scalar), computes in FLOAT, rounds each intermediate to
the type its layer computes in, and stores the last result in the output's type.
"""

from __future__ import annotations

import functools
import hashlib
import linecache
from collections.abc import Callable, Sequence

import torch
import triton

from ..device import FAST_KERNEL_TYPES, torch_dtype
from . import fallback, formulas
from .formulas import TRITON, Source
from .pointwise import Step, StepKind

BLOCK = 1024
"""Output elements per program instance."""

DENSE, SCALAR, STRIDED = "dense", "scalar", "strided"
"""How an input is read: at the output's index, once, or through its broadcast strides."""

_ROUNDING = {
    torch.float16: "tl.float16",
    torch.bfloat16: "tl.bfloat16",
}
"""The Triton types intermediates are rounded to (FLOAT ones stay as they are)."""


def run_program(steps: Sequence[Step], inputs: Sequence[torch.Tensor], out: torch.Tensor) -> bool:
    """out = the program applied to `inputs`, in one kernel; False (nothing done) for
    outputs the kernel does not write (not dense, or not FLOAT, HALF or BF16)."""
    kernel = "the generated pointwise kernel"
    if out.dtype not in FAST_KERNEL_TYPES:
        return fallback.declined(kernel, f"a {out.dtype} output")
    if not out.is_contiguous():
        return fallback.declined(kernel, "an output that is not dense")
    count = out.numel()
    if count == 0:
        return True
    shape = out.shape
    kinds, strides = [], []
    for tensor in inputs:
        if tensor.device != out.device:
            return fallback.declined(kernel, f"an input on {tensor.device}")
        if tensor.numel() == 1:
            kinds.append(SCALAR)
        elif tensor.shape == shape and tensor.is_contiguous():
            kinds.append(DENSE)
        else:
            kinds.append(STRIDED)
            strides += tensor.expand(shape).stride()
    sizes = list(shape) if STRIDED in kinds else []
    shapes = tuple(Step(step.kind, step.code, step.operands) for step in steps)  # no numbers
    kernel = _kernel(shapes, tuple(kinds), tuple(t.dtype for t in inputs), out.dim())
    params = [
        v for step in steps if step.kind == StepKind.ACTIVATION for v in (step.alpha, step.beta)
    ]
    grid = (triton.cdiv(count, BLOCK),)
    kernel[grid](out, *inputs, count, *sizes, *strides, *params, BLOCK=BLOCK, num_warps=4)
    return True


@functools.lru_cache(maxsize=256)
def _kernel(
    steps: tuple[Step, ...],
    kinds: tuple[str, ...],
    dtypes: tuple[torch.dtype, ...],
    rank: int,
) -> Callable:
    source = kernel_source(steps, kinds, dtypes, rank)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    filename = f"<tensorplan pointwise {digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"__name__": f"tensorplan_pointwise_{digest}"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["pointwise_kernel"]


def kernel_source(
    steps: Sequence[Step], kinds: Sequence[str], dtypes: Sequence[torch.dtype], rank: int
) -> str:
    """The Triton source of the kernel that runs `steps` on inputs read as `kinds`."""
    strided = [i for i, kind in enumerate(kinds) if kind == STRIDED]
    activations = [j for j, step in enumerate(steps) if step.kind == StepKind.ACTIVATION]
    params = ["out_ptr", *(f"in{i}_ptr" for i in range(len(kinds))), "count"]
    if strided:
        params += [f"size{d}" for d in range(rank)]
        params += [f"stride{i}_{d}" for i in strided for d in range(rank)]
    params += [f"{name}{j}" for j in activations for name in ("alpha", "beta")]
    params.append("BLOCK: tl.constexpr")
    body = [
        "index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
        "inside = index < count",
    ]
    if strided:
        body.append("rest = index")
        for d in reversed(range(1, rank)):
            body += [f"coord{d} = rest % size{d}", f"rest = rest // size{d}"]
        body.append("coord0 = rest")
    for i, kind in enumerate(kinds):
        if kind == SCALAR:
            body.append(f"r{i} = tl.load(in{i}_ptr).to(tl.float32)")
            continue
        if kind == DENSE:
            offset = "index"
        else:
            offset = " + ".join(f"coord{d} * stride{i}_{d}" for d in range(rank)) or "0"
        body.append(f"r{i} = tl.load(in{i}_ptr + ({offset}), mask=inside, other=0).to(tl.float32)")
    types = list(dtypes)
    for j, step in enumerate(steps):
        register = f"r{len(kinds) + j}"
        operands = [Source(f"r{i}") for i in step.operands]
        if step.kind == StepKind.ELEMENTWISE:
            expression = formulas.BINARY[step.code](TRITON, *operands)
        elif step.kind == StepKind.UNARY:
            expression = formulas.UNARY[step.code](TRITON, *operands)
        elif step.kind == StepKind.ACTIVATION:
            alpha, beta = Source(f"alpha{j}"), Source(f"beta{j}")
            expression = formulas.ACTIVATIONS[step.code](TRITON, *operands, alpha, beta)
        else:
            expression = operands[0]
        result_type = (
            torch_dtype(step.code) if step.kind == StepKind.CAST else types[step.operands[0]]
        )
        types.append(result_type)
        body.append(f"{register} = {expression}")
        if result_type in _ROUNDING and j < len(steps) - 1:
            body.append(f"{register} = {register}.to({_ROUNDING[result_type]}).to(tl.float32)")
    last = f"r{len(kinds) + len(steps) - 1}"
    body.append(f"tl.store(out_ptr + index, {last}.to(out_ptr.dtype.element_ty), mask=inside)")
    lines = [
        "import triton",
        "import triton.language as tl",
        "from triton.language.extra import libdevice",
        "",
        "",
        "@triton.jit",
        f"def pointwise_kernel({', '.join(params)}):",
        *(f"    {line}" for line in body),
        "",
    ]
    return "\n".join(lines)
