"""`tensorplan lean-runtime export PATH`: write this tensorplan's lean runtime to a file.

The file is what `Runtime.load_runtime(PATH)` loads: a zip archive of the runtime-only
sources with a manifest (format, version, checksums); see runtime/lean_archive.py.
"""

from __future__ import annotations

import argparse

from ..runtime.lean_archive import export_archive, read_archive


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("lean-runtime", help="lean-runtime files")
    actions = parser.add_subparsers(dest="lean_command", required=True)
    export = actions.add_parser("export", help="write this tensorplan's lean runtime to a file")
    export.add_argument("path", help="where to write the lean-runtime file")
    export.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    data = export_archive()
    archive = read_archive(data)
    try:
        with open(args.path, "wb") as file:
            file.write(data)
    except OSError as error:
        print(f"tensorplan lean-runtime export: {args.path}: {error}")
        return 1
    print(
        f"wrote {args.path}: tensorplan {archive.version} lean runtime, {len(archive.files)} "
        f"files, {len(data)} bytes, sha256 {archive.checksum}"
    )
    return 0
