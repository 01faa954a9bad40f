"""CRC-32 of large sections in parallel chunks: the same answer as zlib, and corruption found."""

from __future__ import annotations

import zlib

import numpy as np
import planedit
import pytest
from plan_cases import reference, refuse, valid_plan
from planedit import WEIGHTS, Section

import tensorplan as trt
from helpers import run
from tensorplan.plan.checksum import CHUNK, crc32, crc32_combine

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 12345])
@pytest.mark.parametrize("threads", [1, 3])
def test_parallel_crc_is_zlibs(size, threads):
    data = RNG.integers(0, 256, size, dtype=np.uint8).tobytes()
    assert crc32(memoryview(data), threads) == zlib.crc32(data)


@pytest.mark.parametrize("split", [0, 1, 1000, 4095])
def test_crc32_combine(split):
    data = RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    a, b = data[:split], data[split:]
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(data)


@pytest.mark.parametrize("threads", [1, 4])
def test_a_large_weights_section_is_verified_in_chunks(logger, threads):
    """The test plan with its weights section grown past two chunks, then one byte damaged."""
    metadata, weights = planedit.sections(valid_plan())
    grown = weights.data + bytes(2 * CHUNK + 100 - len(weights.data))
    plan = planedit.assemble([metadata, Section(WEIGHTS, 4096, grown)])
    runtime = trt.Runtime(logger)
    runtime.max_threads = threads
    engine = runtime.deserialize_cuda_engine(plan)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(run(engine, {"x": x})["y"], reference(x), rtol=1e-6)
    damaged = bytearray(plan)
    damaged[len(plan) - CHUNK - 50] ^= 0x10
    detail = refuse(bytes(damaged), logger, runtime=runtime)
    assert "section 'weights' is corrupted" in detail
