"""The odd numbers and strings both mutators put where a reader expects a sane one."""

from __future__ import annotations

import random
from collections.abc import Callable

import atheris

BOUNDARY_INTS = (
    0, 1, -1, -2, 2, 3, 4, 7, 8, 9, 16, 63, 64, 65, 127, 128, 255, 256, 1023, 1024, 4095, 4096,
    65535, 65536, 1 << 20, (1 << 31) - 1, 1 << 31, -(1 << 31), (1 << 32) - 1, 1 << 32, 1 << 40,
    (1 << 44) + 1, 1 << 53, (1 << 63) - 1, 1 << 63, -(1 << 63), 1 << 64, 10**30,
)  # fmt: skip
"""Off-by-ones around powers of two and the limits of 32- and 64-bit integers and of
docs/plan-format.md (a tensor's 2^40 bytes, the arena's 2^44)."""

ODD_FLOATS = (0.0, -0.0, 0.5, -1.5, 1e-45, 3.4e38, 1e308, -1e308, float("inf"), float("nan"))

ODD_STRINGS = ("", " ", "x", "\x00", "é", "\ud7ff", "../../etc/passwd", "a" * 5000, "FLOAT")


def odd_int(rng: random.Random, near: int | None = None) -> int:
    """A boundary integer, or (half the time, given `near`) a step away from `near`."""
    if near is not None and rng.random() < 0.5:
        return rng.choice((near + 1, near - 1, near * 2, near // 2, -near, near + 256, near << 20))
    return rng.choice(BOUNDARY_INTS)


def structured_or_raw(
    data: bytes,
    max_size: int,
    seed: int,
    edit: Callable[[bytes, random.Random], bytes | None],
    raw_damage: float,
) -> bytes:
    """atheris's custom mutator: `data` changed by `edit`, or by libFuzzer's byte mutations
    with probability `raw_damage`, when `edit` cannot read `data`, or when its result is too
    long."""
    rng = random.Random(seed)
    if rng.random() >= raw_damage:
        edited = edit(data, rng)
        if edited is not None and len(edited) <= max_size:
            return edited
    return atheris.Mutate(data, max_size)
