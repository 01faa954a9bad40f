"""Everything deserialize_cuda_engine accepts: buffers of every kind and stream readers."""

from __future__ import annotations

import mmap
import zlib

import numpy as np
import pytest
import runtime_networks as nets

import tensorplan as trt

SERIALIZATION = (1, "Serialization")


def loads_and_runs(source: object, logger) -> None:
    engine = trt.Runtime(logger).deserialize_cuda_engine(source)
    assert engine is not None, logger.errors
    nets.execute(engine.create_execution_context(), rows=3)
    assert logger.errors == []


def refused(source: object, logger) -> str:
    """Deserialize `source`: None, one Serialization error, no exception; the detail."""
    engine = trt.Runtime(logger).deserialize_cuda_engine(source)
    assert engine is None
    assert len(logger.errors) == 1, logger.errors
    api, code, category, detail = nets.parse_error(logger.errors[0])
    assert (api, code, category) == ("IRuntime::deserializeCudaEngine", *SERIALIZATION)
    return detail


BUFFERS = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "IHostMemory": trt.IHostMemory,
    "numpy uint8": lambda plan: np.frombuffer(plan, dtype=np.uint8),
    "numpy int32 view": lambda plan: np.frombuffer(plan, dtype=np.uint8).view(np.int32),
    "numpy float32 2-D view": lambda plan: np.frombuffer(plan, np.float32).reshape(4, -1),
    "numpy big-endian view": lambda plan: np.frombuffer(plan, dtype=">u4"),
    "numpy structured view": lambda plan: np.frombuffer(plan, dtype="u1,u1,u2"),
    "non-contiguous view": lambda plan: np.frombuffer(plan * 2, np.uint8).reshape(2, -1).T[:, 0],
    "memoryview of a slice": lambda plan: memoryview(b"junk" + plan + b"junk")[4:-4],
}


@pytest.mark.parametrize("make", BUFFERS.values(), ids=BUFFERS.keys())
def test_buffers(logger, make):
    plan = nets.plan()
    assert len(plan) % 16 == 0, "the views above need a length divisible by 16"
    loads_and_runs(make(plan), logger)


def test_mmap_of_a_file_is_not_held_after_loading(logger, tmp_path):
    path = tmp_path / "engine.plan"
    path.write_bytes(nets.plan())
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        loads_and_runs(mapped, logger)
    # leaving the block closed the map: no view of it outlived deserialization


def test_an_engine_does_not_depend_on_its_buffer(logger):
    source = bytearray(nets.plan())
    engine = trt.Runtime(logger).deserialize_cuda_engine(source)
    source[:] = bytes(len(source))
    nets.execute(engine.create_execution_context(), rows=2)


class ChunkedReader(trt.IStreamReader):
    """Returns at most `chunk` bytes per read, as a socket or pipe may."""

    def __init__(self, data: bytes, chunk: int) -> None:
        trt.IStreamReader.__init__(self)
        self.data, self.position, self.chunk = data, 0, chunk
        self.requests: list[int] = []

    def read(self, size: int) -> bytes:
        self.requests.append(size)
        part = self.data[self.position : self.position + min(size, self.chunk)]
        self.position += len(part)
        return part


class SeekingReader(trt.IStreamReaderV2):
    """An IStreamReaderV2 over bytes, starting somewhere else to check that it is rewound."""

    def __init__(self, data: bytes, chunk: int = 1 << 30) -> None:
        trt.IStreamReaderV2.__init__(self)
        self.data, self.position, self.chunk = data, 17, chunk
        self.streams: set[int] = set()

    def read(self, num_bytes: int, stream: int) -> bytes:
        self.streams.add(stream)
        part = self.data[self.position : self.position + min(num_bytes, self.chunk)]
        self.position += len(part)
        return part

    def seek(self, offset: int, where: trt.SeekPosition) -> bool:
        base = {trt.SeekPosition.SET: 0, trt.SeekPosition.CUR: self.position}
        self.position = base.get(where, len(self.data)) + offset
        return True


@pytest.mark.parametrize("chunk", [1 << 30, 1000, 7, 1])
def test_stream_reader_with_short_reads(logger, chunk):
    reader = ChunkedReader(nets.plan(), chunk)
    loads_and_runs(reader, logger)
    assert reader.requests[0] == 64  # the header first: its size says how much more to read
    assert reader.position == len(nets.plan())


@pytest.mark.parametrize("chunk", [1 << 30, 5])
def test_stream_reader_v2(logger, chunk):
    reader = SeekingReader(nets.plan(), chunk)
    loads_and_runs(reader, logger)
    assert reader.streams == {0}


def test_a_file_object_reads_like_an_istreamreader(logger, tmp_path):
    path = tmp_path / "engine.plan"
    path.write_bytes(nets.plan())
    with path.open("rb") as file:
        loads_and_runs(file, logger)


class Raising(trt.IStreamReader):
    def read(self, size: int) -> bytes:
        raise OSError("disk on fire")


class ReturnsText(trt.IStreamReader):
    def read(self, size: int) -> str:
        return "x" * size


class ReturnsNone(trt.IStreamReaderV2):
    def read(self, num_bytes: int, stream: int) -> None:
        return None

    def seek(self, offset: int, where: trt.SeekPosition) -> bool:
        return True


class CannotSeek(trt.IStreamReaderV2):
    def read(self, num_bytes: int, stream: int) -> bytes:
        return bytes(num_bytes)

    def seek(self, offset: int, where: trt.SeekPosition) -> bool:
        return False


class SeekRaises(CannotSeek):
    def seek(self, offset: int, where: trt.SeekPosition) -> bool:
        raise ValueError("no seeking here")


class TooGenerous(trt.IStreamReader):
    def read(self, size: int) -> bytes:
        return nets.plan()


class Endless(trt.IStreamReader):
    """A valid header that claims a huge plan, then zeros forever: refused by the size check."""

    def __init__(self, claimed: int, fix_crc: bool = False) -> None:
        super().__init__()
        header = bytearray(nets.plan()[:64])
        header[24:32] = claimed.to_bytes(8, "little")
        if fix_crc:
            header[52:56] = zlib.crc32(header[:52]).to_bytes(4, "little")
        self.header = bytes(header)
        self.reads = 0

    def read(self, size: int) -> bytes:
        self.reads += 1
        return self.header if self.reads == 1 else bytes(min(size, 4096))


class Unimplemented(trt.IStreamReader):
    pass


READERS = {
    "raises": (Raising(), "disk on fire"),
    "returns str": (ReturnsText(), "returned str, not bytes"),
    "returns None": (ReturnsNone(), "returned NoneType, not bytes"),
    "cannot seek": (CannotSeek(), "could not seek"),
    "seek raises": (SeekRaises(), "no seeking here"),
    "returns more than asked": (TooGenerous(), "when asked for 64"),
    "empty": (ChunkedReader(b"", 10), "truncated: the stream ended after 0 bytes of 64"),
    "ends early": (ChunkedReader(nets.plan()[:1000], 300), "ended after 1000 bytes"),
    "damaged header": (Endless(1 << 60), "header is corrupted"),
    "absurd size": (Endless(1 << 60, fix_crc=True), "absurd size of 1152921504606846976 bytes"),
    "read not implemented": (Unimplemented(), "must be implemented"),
}


@pytest.mark.parametrize(("reader", "message"), READERS.values(), ids=READERS.keys())
def test_readers_that_fail(logger, reader, message):
    assert message in refused(reader, logger)


def test_a_damaged_header_is_refused_before_the_rest_is_read(logger):
    reader = Endless(1 << 60)
    refused(reader, logger)
    assert reader.reads == 1


NOT_PLANS = {
    "None": (None, "NoneType is neither a buffer nor a stream reader"),
    "int": (42, "int is neither a buffer"),
    "str": ("plan.engine", "str is neither a buffer"),
    "object array": (np.array([object()] * 64), "ndarray of Python objects is not a plan"),
    "empty bytes": (b"", "0 bytes is shorter than the 64-byte header"),
    "a list of ints": (list(b"\x89TPLAN\r\n"), "list is neither a buffer"),
}


@pytest.mark.parametrize(("source", "message"), NOT_PLANS.values(), ids=NOT_PLANS.keys())
def test_things_that_are_not_plans(logger, source, message):
    assert message in refused(source, logger)
