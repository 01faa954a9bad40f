"""`tensorplan`: build, inspect and run plans from the command line."""

from __future__ import annotations

import argparse
import sys

from . import demo, inspect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tensorplan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (demo, inspect):
        module.add_parser(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
