"""`tensorplan`: build, inspect and run plans from the command line."""

from __future__ import annotations

import argparse
import os
import sys

from . import build, demo, inspect, lean, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tensorplan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (demo, build, run, inspect, lean):
        module.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # `tensorplan ... | head` closed stdout early: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
