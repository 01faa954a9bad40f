"""CRC-32 of large buffers, in parallel chunks combined as zlib's crc32_combine does."""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

CHUNK = 32 << 20


def crc32(data: memoryview, threads: int = 1) -> int:
    """zlib.crc32 of `data`, computed on up to `threads` threads (zlib releases the GIL)."""
    if threads <= 1 or len(data) <= CHUNK:
        return zlib.crc32(data)
    chunks = [data[start : start + CHUNK] for start in range(0, len(data), CHUNK)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        checksums = list(pool.map(zlib.crc32, chunks))
    result = checksums[0]
    for chunk, checksum in zip(chunks[1:], checksums[1:], strict=True):
        result = crc32_combine(result, checksum, len(chunk))
    return result


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's algorithm, GF(2) matrices)."""
    if length2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = _square(odd)
    odd = _square(even)
    while True:
        even = _square(odd)
        if length2 & 1:
            crc1 = _times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _square(even)
        if length2 & 1:
            crc1 = _times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2


def _times(matrix: list[int], vector: int) -> int:
    result = 0
    index = 0
    while vector:
        if vector & 1:
            result ^= matrix[index]
        vector >>= 1
        index += 1
    return result


def _square(matrix: list[int]) -> list[int]:
    return [_times(matrix, matrix[n]) for n in range(32)]
