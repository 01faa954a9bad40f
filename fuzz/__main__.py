"""`python -m fuzz {plan,onnx}`: run a target under atheris (libFuzzer), or replay inputs.

    python -m fuzz plan --corpus DIR -- -max_total_time=3600    fuzz for an hour
    python -m fuzz onnx crash-0123abcd                           replay one input

An empty corpus directory is first filled with the built-in seeds (fuzz/seeds.py). What follows
`--` goes to libFuzzer: flags, which override the defaults below, and more corpus directories
to read (new inputs go to the --corpus one); see docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings

import atheris

LIBFUZZER_DEFAULTS = ("-timeout=5", "-rss_limit_mb=3072", "-max_len=1048576")
"""No input may take more than 5 s, nor bring the process above 3 GiB (torch alone holds about
0.3 GiB here, and up to 1 GiB on a GPU host); plans and models stay under 1 MiB."""


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args = _parser().parse_args(argv[:split])
    libfuzzer_flags = argv[split + 1 :]
    os.environ["TENSORPLAN_DEVICE"] = "cpu"  # the targets hand the engine host pointers
    warnings.simplefilter("ignore")  # a warning per input would slow the fuzzer down
    with atheris.instrument_imports(include=["tensorplan"]):
        from fuzz import onnx_mutator, onnx_target, plan_mutator, plan_target, seeds
    check, mutate, make_seeds = {
        "plan": (plan_target.check_plan, plan_mutator.mutate_plan, seeds.plan_seeds),
        "onnx": (onnx_target.check_model, onnx_mutator.mutate_model, seeds.onnx_seeds),
    }[args.target]
    if args.inputs:
        paths = args.inputs
    else:
        corpus = args.corpus or tempfile.mkdtemp(prefix=f"tensorplan-fuzz-{args.target}-")
        if not os.path.isdir(corpus) or not os.listdir(corpus):
            seeds.write_seeds(corpus, make_seeds())
        paths = [corpus]
    artifacts = args.artifacts or os.path.join(tempfile.gettempdir(), "tensorplan-fuzz")
    os.makedirs(artifacts, exist_ok=True)
    print(f"fuzz: corpus {paths}, crashes to {artifacts}", file=sys.stderr)
    prefix = f"-artifact_prefix={os.path.join(artifacts, '')}"
    atheris.Setup(
        [sys.argv[0], *LIBFUZZER_DEFAULTS, prefix, *paths, *libfuzzer_flags],
        check,
        custom_mutator=mutate,
    )
    atheris.Fuzz()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=("plan", "onnx"), help="the reader to fuzz")
    parser.add_argument(
        "inputs", nargs="*", help="files to replay (crash-*, timeout-*, oom-*) instead of fuzzing"
    )
    parser.add_argument("--corpus", help="corpus directory (default: a new temporary one)")
    parser.add_argument(
        "--artifacts",
        help="where crash, timeout and oom inputs go (default: $TMPDIR/tensorplan-fuzz)",
    )
    return parser


if __name__ == "__main__":
    main()
