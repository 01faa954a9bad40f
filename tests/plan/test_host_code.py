"""The host-code gate: a plan carrying host code is refused before any of it is touched.

The plans here are crafted: the test plan plus a host-code section and the HAS_HOST_CODE
flag, with valid checksums, so the gate (not a checksum) is what decides.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator

import planedit
import pytest
from plan_cases import refuse, valid_plan
from planedit import HAS_HOST_CODE, HOST_CODE, Section

import tensorplan as trt

LIBRARY = b"\x7fELF" + bytes(60) + b"not really a library"


ENTRY = {
    "name": "lib.so",
    "kind": "shared-library",
    "offset": 0,
    "nbytes": 1,
    "sha256": hashlib.sha256(LIBRARY[:1]).hexdigest(),
}


def host_code_plan(entry: dict | None = None, library: bytes = LIBRARY) -> bytes:
    """The test plan with a host-code section holding `library`, listed in the metadata."""
    entry = entry or {
        "name": "libplugin.so",
        "kind": "shared-library",
        "offset": 0,
        "nbytes": len(library),
        "sha256": hashlib.sha256(library).hexdigest(),
    }
    listed = planedit.with_metadata(valid_plan(), lambda meta: meta.update(host_code=[entry]))
    parts = [*planedit.sections(listed), Section(HOST_CODE, 8, library)]
    return planedit.assemble(parts, flags=HAS_HOST_CODE)


_WATCHED_EVENTS = {"open", "os.mkdir", "os.rename", "shutil.copyfile", "ctypes.dlopen"}
_watching: list[list[tuple[str, tuple]]] = []


def _audit(event: str, args: tuple) -> None:
    if not _watching or event not in _WATCHED_EVENTS:
        return
    if event == "open" and not _opens_for_writing(*args[1:3]):
        return  # reading a file (a lazy import, say) is not what is watched
    _watching[-1].append((event, args))


def _opens_for_writing(mode: str | None, flags: int) -> bool:
    if isinstance(mode, str):  # open(), io.open()
        return bool(set(mode) & set("wax+"))
    return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))  # os.open()


sys.addaudithook(_audit)


@contextlib.contextmanager
def disk_writes() -> Iterator[list[tuple[str, tuple]]]:
    """Every file opened for writing, directory made, file copied or library loaded inside."""
    events: list[tuple[str, tuple]] = []
    _watching.append(events)
    try:
        yield events
    finally:
        _watching.pop()


@pytest.fixture
def temporary_directories(tmp_path, monkeypatch):
    """The runtime's temporary directory and $TMPDIR, both empty; checked untouched after."""
    runtime_dir, env_dir = tmp_path / "runtime", tmp_path / "env"
    runtime_dir.mkdir()
    env_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(env_dir))
    monkeypatch.setattr("tempfile.tempdir", None)
    yield runtime_dir
    assert list(runtime_dir.iterdir()) == []
    assert list(env_dir.iterdir()) == []


def test_refused_unless_allowed_and_nothing_touches_the_disk(logger, temporary_directories):
    runtime = trt.Runtime(logger)
    runtime.temporary_directory = temporary_directories
    assert runtime.engine_host_code_allowed is False
    plan = host_code_plan()  # building may initialize CUDA, which loads libraries
    with disk_writes() as writes:
        detail = refuse(
            plan,
            logger,
            trt.ErrorCodeTRT.FAILED_INITIALIZATION,
            "API Usage Error",
            runtime=runtime,
        )
    assert writes == []
    assert "HAS_HOST_CODE" in detail
    assert "engine_host_code_allowed" in detail


def test_the_gate_comes_before_the_section_is_read(logger):
    """A corrupted host-code section is not even checksummed while host code is refused."""
    plan = bytearray(host_code_plan())
    plan[-1] ^= 0xFF
    detail = refuse(bytes(plan), logger, trt.ErrorCodeTRT.FAILED_INITIALIZATION, "API Usage Error")
    assert "HAS_HOST_CODE" in detail


def test_allowed_host_code_that_cannot_be_loaded_is_a_clean_error(logger, temporary_directories):
    """Not a real library: every allowed way to load it fails, and nothing is left behind."""
    runtime = trt.Runtime(logger)
    runtime.temporary_directory = str(temporary_directories)
    runtime.engine_host_code_allowed = True
    with disk_writes() as writes:
        detail = refuse(
            host_code_plan(),
            logger,
            trt.ErrorCodeTRT.FAILED_INITIALIZATION,
            "Initialization Failure",
            runtime=runtime,
        )
    assert "host code 'libplugin.so' cannot be loaded" in detail
    assert "ALLOW_IN_MEMORY_FILES" in detail and str(temporary_directories) in detail
    assert {event for event, _ in writes} <= {"open", "ctypes.dlopen"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**ENTRY, "nbytes": 4096}, "ends at byte 4096"),
        ({**ENTRY, "offset": -1}, "non-negative"),
        ({**ENTRY, "kind": "library"}, "kind 'library' is not one of"),
        ({**ENTRY, "sha256": "0" * 64}, "its sha256 does not match"),
        ({"name": "lib.so", "offset": 0, "nbytes": 1}, "exactly the keys"),
        ({**ENTRY, "name": 7}, "host_code[0].name"),
    ],
)
def test_allowed_host_code_is_still_checked(logger, entry, message):
    runtime = trt.Runtime(logger)
    runtime.engine_host_code_allowed = True
    plan = bytearray(host_code_plan(entry))
    assert message in refuse(bytes(plan), logger, runtime=runtime)
    plan[-1] ^= 0xFF
    assert "'host code' is corrupted" in refuse(bytes(plan), logger, runtime=runtime)


def test_the_watcher_sees_writes(tmp_path):
    """disk_writes() is what the tests above rely on: it must notice a write."""
    with disk_writes() as writes:
        (tmp_path / "file").write_bytes(b"x")
    assert [event for event, _ in writes] == ["open"]
