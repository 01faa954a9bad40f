"""Lean runtimes: `tensorplan lean-runtime export`, Runtime.load_runtime, version-compatible plans."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import tensorplan as trt
from helpers import build_plan, run
from tensorplan.cli.main import main
from tensorplan.runtime.lean_archive import MANIFEST, export_archive, read_archive

IN_MEMORY = 1 << int(trt.TempfileControlFlag.ALLOW_IN_MEMORY_FILES)
TEMPORARY = 1 << int(trt.TempfileControlFlag.ALLOW_TEMPORARY_FILES)


def define(network):
    x = network.add_input("x", trt.float32, (-1, 3))
    network.mark_output(network.add_unary(x, trt.UnaryOperation.EXP).get_output(0))


def flags(*builder_flags):
    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 3), (2, 3), (4, 3))
        config.add_optimization_profile(profile)
        for flag in builder_flags:
            config.set_flag(flag)

    return configure


def check_runs(engine):
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    (y,) = run(engine, {"x": x}).values()
    np.testing.assert_allclose(y, np.exp(x), rtol=1e-6)


def rewritten(data: bytes, version: str | None = None, edit=None) -> bytes:
    """The archive with its version.py (and manifest) saying `version`, every checksum
    recomputed; `edit(files, manifest)` may change more before the checksums are redone."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(files.pop(MANIFEST))
    if version is not None:
        files["tensorplan/version.py"] = f'__version__ = "{version}"\n'.encode()
        manifest["tensorplan_version"] = version
    if edit is not None:
        edit(files, manifest)
    manifest["files"] = {path: hashlib.sha256(body).hexdigest() for path, body in files.items()}
    lines = "".join(f"{manifest['files'][p]}  {p}\n" for p in sorted(manifest["files"]))
    manifest["sha256"] = hashlib.sha256(lines.encode()).hexdigest()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(MANIFEST, json.dumps(manifest))
        for path, body in files.items():
            archive.writestr(path, body)
    return buffer.getvalue()


@pytest.fixture
def exported(tmp_path, capsys):
    path = tmp_path / "lean.tplr"
    assert main(["lean-runtime", "export", str(path)]) == 0
    assert f"tensorplan {trt.__version__} lean runtime" in capsys.readouterr().out
    return path


def test_export_writes_the_runtime_only_sources_with_a_manifest(exported):
    archive = read_archive(exported.read_bytes())
    assert archive.version == trt.__version__
    assert archive.manifest["format"] == "tensorplan-lean-runtime"
    tops = {path.split("/")[1] for path in archive.files}
    assert {"runtime", "plan", "ops", "plugins", "lean", "types.py"} <= tops
    assert not tops & {"builder", "network", "onnx", "cli", "examples"}
    assert exported.read_bytes() == export_archive()  # reproducible


def test_load_runtime_gives_an_isolated_runtime_sharing_logger_recorder_allocator(
    exported, logger, recorder
):
    runtime = trt.Runtime(logger)
    allocator = object()
    runtime.gpu_allocator = allocator
    lean = runtime.load_runtime(str(exported))
    assert lean is not None, logger.errors
    assert type(lean).__module__.startswith("_tensorplan_lean_")
    assert lean.logger is logger and lean.gpu_allocator is allocator
    assert lean.deserialize_cuda_engine(b"junk") is None
    assert "IRuntime::deserializeCudaEngine" in logger.errors[-1]
    runtime.error_recorder = recorder
    assert runtime.load_runtime(str(exported)).error_recorder is recorder


def test_a_version_compatible_plan_without_lean_runtime_runs_through_a_loaded_one(exported, logger):
    plan = build_plan(
        define,
        configure=flags(trt.BuilderFlag.VERSION_COMPATIBLE, trt.BuilderFlag.EXCLUDE_LEAN_RUNTIME),
    )
    lean = trt.Runtime(logger).load_runtime(str(exported))
    engine = lean.deserialize_cuda_engine(plan)
    assert engine is not None, logger.errors
    assert type(engine).__module__.startswith("_tensorplan_lean_")
    check_runs(engine)


def test_two_lean_runtime_versions_live_in_one_process(exported, tmp_path, logger):
    older = tmp_path / "older.tplr"
    older.write_bytes(rewritten(exported.read_bytes(), "0.0.9"))
    runtime = trt.Runtime(logger)
    current, old = runtime.load_runtime(str(exported)), runtime.load_runtime(str(older))
    assert current is not None and old is not None, logger.errors
    packages = [sys.modules[type(r).__module__.split(".")[0]] for r in (current, old)]
    assert [p.__version__ for p in packages] == [trt.__version__, "0.0.9"]
    assert packages[0] is not packages[1]
    assert packages[0].DataType is not trt.DataType
    plan = build_plan(define, configure=flags())
    for lean in (current, old):
        check_runs(lean.deserialize_cuda_engine(plan))


def newer_format(files, manifest):
    manifest["format_version"] = 2


def extra_file(files, manifest):
    files["tensorplan/evil/../../x.py"] = b"print('escaped')"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:100], "not a lean-runtime archive"),
        (lambda data: b"\x7fELF" + bytes(100), "not a lean-runtime archive"),
        (lambda data: rewritten(data, edit=newer_format), "format version 2 is newer"),
        (lambda data: rewritten(data, edit=extra_file), "which is not a package source"),
        (lambda data: rewritten(data, edit=lambda f, m: m.pop("tensorplan_version")), "no tensorplan_version"),
        (lambda data: rewritten(data, edit=lambda f, m: m.update(python="2.7")), "made for Python '2.7'"),
        (lambda data: _corrupt_member(data), "is corrupted: its sha256 does not match"),
    ],
)  # fmt: skip
def test_corrupt_or_incompatible_lean_runtimes_are_refused(exported, logger, damage, message):
    exported.write_bytes(damage(exported.read_bytes()))
    assert trt.Runtime(logger).load_runtime(str(exported)) is None
    (error,) = logger.errors
    assert error.startswith("IRuntime::loadRuntime: Error Code 10: Unsupported State")
    assert str(exported) in error and message in error


def _corrupt_member(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["tensorplan/types.py"] += b"\n# tampered\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, body in files.items():
            archive.writestr(path, body)
    return buffer.getvalue()


@pytest.fixture
def older_plan(monkeypatch):
    """A version-compatible plan as tensorplan 0.0.9 wrote it: its header and its embedded
    lean runtime both say 0.0.9."""
    archive = rewritten(export_archive(), "0.0.9")
    monkeypatch.setattr("tensorplan.builder.builder.export_archive", lambda: archive)
    monkeypatch.setattr("tensorplan.plan.writer.__version__", "0.0.9")
    plan = build_plan(define, configure=flags(trt.BuilderFlag.VERSION_COMPATIBLE))
    assert plan is not None
    return bytes(plan)


def test_an_older_version_compatible_plan_runs_on_its_embedded_lean_runtime(
    older_plan, logger, tmp_path
):
    runtime = trt.Runtime(logger)
    assert runtime.deserialize_cuda_engine(older_plan) is None
    assert "engine_host_code_allowed" in logger.errors[-1]
    assert "'tensorplan-lean-runtime.zip'" in logger.errors[-1]
    runtime.engine_host_code_allowed = True
    runtime.tempfile_control_flags = TEMPORARY
    runtime.temporary_directory = str(tmp_path)
    engine = runtime.deserialize_cuda_engine(older_plan)
    assert engine is not None, logger.errors
    package = sys.modules[type(engine).__module__.split(".")[0]]
    assert package.__version__ == "0.0.9"
    assert os.listdir(tmp_path) == []
    check_runs(engine)


def test_an_embedded_lean_runtime_of_another_version_is_refused(older_plan, logger):
    from plan.planedit import with_header

    plan = with_header(older_plan, library_version=b"0.0.8".ljust(16, b"\0"))
    runtime = trt.Runtime(logger)
    runtime.engine_host_code_allowed = True
    assert runtime.deserialize_cuda_engine(plan) is None
    assert (
        "built by tensorplan 0.0.8 but its embedded lean runtime is version 0.0.9"
        in (logger.errors[-1])
    )


def test_a_version_compatible_plan_of_this_version_runs_natively(logger):
    plan = build_plan(define, configure=flags(trt.BuilderFlag.VERSION_COMPATIBLE))
    runtime = trt.Runtime(logger)
    runtime.engine_host_code_allowed = True
    runtime.tempfile_control_flags = 0  # nothing needs loading
    engine = runtime.deserialize_cuda_engine(plan)
    assert type(engine) is trt.ICudaEngine, logger.errors
    check_runs(engine)
    again = runtime.deserialize_cuda_engine(bytes(engine.serialize()))
    check_runs(again)


def test_importing_the_lean_package_imports_no_builder_and_no_onnx():
    """tensorplan.lean's own imports (the package root stubbed out, since `import tensorplan`
    is the full library) reach none of the build-time modules."""
    code = (
        "import importlib.util, sys, types\n"
        "spec = importlib.util.find_spec('tensorplan')\n"
        "root = types.ModuleType('tensorplan')\n"
        "root.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['tensorplan'] = root\n"
        "import tensorplan.lean\n"
        "parts = [m.split('.') for m in sys.modules if m.startswith('tensorplan.')]\n"
        "bad = [p for p in parts if p[1] in ('builder', 'network', 'onnx', 'cli')]\n"
        "assert not bad, bad\n"
        "assert tensorplan.lean.Runtime\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
