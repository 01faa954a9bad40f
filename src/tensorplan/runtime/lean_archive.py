"""Lean-runtime files: the runtime-only package as one archive, and loading one in isolation.

A lean-runtime file is a zip archive holding `MANIFEST.json` and the sources of the
runtime-only part of tensorplan under `tensorplan/` (no builder, network, ONNX or CLI):

    {"format": "tensorplan-lean-runtime", "format_version": 1,
     "tensorplan_version": "0.1.0", "plan_format_version": 1, "python": "3.11",
     "files": {"tensorplan/ops/base.py": "<sha256>", ...}, "sha256": "<checksum>"}

`sha256` is the SHA-256 of the lines `<file sha256>  <path>\\n` of every file, sorted by
path. Loading checks all of it, then imports the package from memory (never from the file,
never writing one) under the private name `_tensorplan_lean_<checksum[:16]>`, so two
versions live side by side and neither is the caller's `tensorplan`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.abc
import importlib.util
import io
import json
import pathlib
import re
import sys
import zipfile
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..plan.format import FORMAT_VERSION as PLAN_FORMAT_VERSION

FORMAT = "tensorplan-lean-runtime"
FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
PACKAGE_DIR = "tensorplan"
PARTS = (
    "collector.py", "device.py", "errors.py", "ir.py", "logging.py", "memory.py", "types.py",
    "version.py", "plugin.py", "registry.py", "lean", "ops", "plan", "plugins", "runtime",
)  # fmt: skip
"""What of the package a lean runtime holds: modules and whole sub-packages."""
ROOT_INIT = (
    '"""tensorplan lean runtime: deserialize and execute plans (no builder, no ONNX)."""\n\n'
    "from .lean import *  # noqa: F403\n"
    "from .lean import __all__, __version__  # noqa: F401\n"
)
MAX_ARCHIVE_BYTES = 1 << 26
MAX_FILES = 1024
PACKAGE_PREFIX = "_tensorplan_lean_"
_VERSION = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


class ArchiveError(ValueError):
    """A file that is not a lean runtime this tensorplan can load; the message says why."""


@dataclass(frozen=True)
class LeanArchive:
    """A checked lean runtime: its manifest and sources."""

    manifest: dict[str, Any]
    files: dict[str, bytes]

    @property
    def version(self) -> str:
        return self.manifest["tensorplan_version"]

    @property
    def checksum(self) -> str:
        return self.manifest["sha256"]

    @property
    def package_name(self) -> str:
        return PACKAGE_PREFIX + self.checksum[:16]


def export_archive() -> bytes:
    """This tensorplan's lean runtime as archive bytes (the same bytes every time)."""
    return _export(tuple(sorted(package_sources().items())))


def package_sources() -> dict[str, bytes]:
    """The runtime-only sources of the running package, by archive path."""
    root = sys.modules[__package__.split(".")[0]]
    embedded = getattr(root, "__lean_files__", None)
    if embedded is not None:  # running from a loaded lean runtime: re-export it
        return {path: data for path, data in embedded.items() if path != MANIFEST}
    base = pathlib.Path(root.__file__).parent
    files = {f"{PACKAGE_DIR}/__init__.py": ROOT_INIT.encode()}
    for part in PARTS:
        paths = [base / part] if part.endswith(".py") else sorted((base / part).rglob("*.py"))
        for path in paths:
            if "__pycache__" not in path.parts:
                files[f"{PACKAGE_DIR}/{path.relative_to(base).as_posix()}"] = path.read_bytes()
    return files


def read_archive(data: bytes) -> LeanArchive:
    """The lean runtime in `data`, with its manifest and every checksum verified;
    ArchiveError naming the problem otherwise."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveError(f"{len(data)} bytes is larger than a lean runtime may be")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_FILES:
                raise ArchiveError(f"the archive has {len(entries)} files; at most {MAX_FILES}")
            if sum(entry.file_size for entry in entries) > MAX_ARCHIVE_BYTES:
                raise ArchiveError("the archive expands to more than a lean runtime may hold")
            files = {entry.filename: archive.read(entry) for entry in entries}
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as error:
        raise ArchiveError(f"it is not a lean-runtime archive ({error})") from None
    if MANIFEST not in files:
        raise ArchiveError(f"it is not a lean-runtime archive (no {MANIFEST})")
    manifest = _manifest(files.pop(MANIFEST))
    listed = manifest["files"]
    if set(listed) != set(files):
        extra = sorted(set(files) ^ set(listed))[:5]
        raise ArchiveError(f"the archive's files and its manifest disagree (e.g. {extra})")
    for path, data_bytes in files.items():
        if not _safe_path(path):
            raise ArchiveError(f"the archive holds '{path}', which is not a package source")
        if hashlib.sha256(data_bytes).hexdigest() != listed[path]:
            raise ArchiveError(f"'{path}' is corrupted: its sha256 does not match the manifest")
    if _checksum(listed) != manifest["sha256"]:
        raise ArchiveError("the manifest's checksum does not match its files")
    if f"{PACKAGE_DIR}/__init__.py" not in files:
        raise ArchiveError(f"the archive has no {PACKAGE_DIR}/__init__.py")
    if _version_of(files) != manifest["tensorplan_version"]:
        raise ArchiveError(
            f"the manifest says version {manifest['tensorplan_version']} but its version.py "
            f"says {_version_of(files)}"
        )
    return LeanArchive(manifest, files)


def load_package(archive: LeanArchive) -> ModuleType:
    """The archive's package, imported from memory under its private name (once per
    process: a second load of the same archive returns the same package)."""
    name = archive.package_name
    if name in sys.modules:
        return sys.modules[name]
    finder = _ArchiveFinder(name, archive.files)
    sys.meta_path.append(finder)
    try:
        package = importlib.import_module(name)
    except BaseException:
        sys.meta_path.remove(finder)
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]
        raise
    package.__lean_files__ = dict(archive.files)
    package.__lean_manifest__ = dict(archive.manifest)
    return package


@functools.lru_cache(maxsize=4)
def _export(sources: tuple[tuple[str, bytes], ...]) -> bytes:
    files = dict(sources)
    listed = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tensorplan_version": _version_of(files),
        "plan_format_version": PLAN_FORMAT_VERSION,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "files": listed,
        "sha256": _checksum(listed),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in [(MANIFEST, json.dumps(manifest, indent=1).encode()), *sources]:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _version_of(files: dict[str, bytes]) -> str | None:
    """The version the archive's version.py states (what its Runtime will report)."""
    match = _VERSION.search(files.get(f"{PACKAGE_DIR}/version.py", b"").decode("utf-8", "replace"))
    return match.group(1) if match else None


def _manifest(raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as error:
        raise ArchiveError(f"{MANIFEST} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{MANIFEST} does not describe a {FORMAT}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ArchiveError(f"{MANIFEST} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ArchiveError(
            f"lean-runtime format version {version} is newer than this tensorplan supports "
            f"({FORMAT_VERSION})"
        )
    python = manifest.get("python")
    if not isinstance(python, str) or python.split(".")[0] != str(sys.version_info.major):
        raise ArchiveError(
            f"it was made for Python {python!r}, not Python {sys.version_info.major}"
        )
    if not isinstance(manifest.get("tensorplan_version"), str):
        raise ArchiveError(f"{MANIFEST} has no tensorplan_version")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in listed.items()
    ):
        raise ArchiveError(f"{MANIFEST} has no valid files list")
    if not isinstance(manifest.get("sha256"), str) or len(manifest["sha256"]) != 64:
        raise ArchiveError(f"{MANIFEST} has no valid sha256")
    return manifest


def _checksum(listed: dict[str, str]) -> str:
    lines = "".join(f"{listed[path]}  {path}\n" for path in sorted(listed))
    return hashlib.sha256(lines.encode()).hexdigest()


def _safe_path(path: str) -> bool:
    """A package source: `tensorplan/<identifier>/.../<identifier>.py`."""
    *directories, file = path.split("/")
    return (
        directories[:1] == [PACKAGE_DIR]
        and all(part.isidentifier() for part in directories)
        and file.endswith(".py")
        and file[:-3].isidentifier()
    )


class _ArchiveFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `package` and its modules from the archive's sources in memory."""

    def __init__(self, package: str, files: dict[str, bytes]) -> None:
        self.package = package
        self.files = files

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.package and not fullname.startswith(self.package + "."):
            return None
        base = "/".join([PACKAGE_DIR, *fullname.split(".")[1:]])
        if f"{base}/__init__.py" in self.files:
            return importlib.util.spec_from_loader(
                fullname, self, origin=f"{base}/__init__.py", is_package=True
            )
        if f"{base}.py" in self.files:
            return importlib.util.spec_from_loader(fullname, self, origin=f"{base}.py")
        return None

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        origin = module.__spec__.origin
        code = compile(self.files[origin], f"<{self.package}>/{origin}", "exec")
        exec(code, module.__dict__)
