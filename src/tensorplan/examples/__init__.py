"""Models that ship with tensorplan, for the demo, the CLI and first experiments."""

from __future__ import annotations

from pathlib import Path

SMALL_CNN = "small_cnn.onnx"
"""A small image classifier (images [batch, 3, 32, 32] -> probabilities [batch, 10]);
`python -m tensorplan.examples.make_small_cnn` regenerates it."""


def model_path(name: str = SMALL_CNN) -> Path:
    """The path of a shipped example model."""
    return Path(__file__).with_name(name)
