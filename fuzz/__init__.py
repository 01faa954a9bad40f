"""Fuzz targets for tensorplan's two file readers, run with atheris: `python -m fuzz --help`.

docs/fuzzing.md says how to run them, build a seed corpus and replay a crash.
"""
