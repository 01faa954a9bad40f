"""`import tensorplan` stays light: the onnx package (slower to import than the rest of
tensorplan) is imported only when the ONNX parser is first asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tensorplan as trt

PROBE = """
import sys
import tensorplan as trt
before = "onnx" in sys.modules
parser = trt.OnnxParser
print(before, "onnx" in sys.modules, parser.__name__, "OnnxParser" in trt.__all__)
"""


def test_onnx_is_imported_on_first_use_of_the_parser():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True", "OnnxParser", "True"]


def test_unknown_names_are_still_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        trt.NoSuchThing  # noqa: B018
