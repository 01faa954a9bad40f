"""The ONNX mutator's edits decode as models and differ from the model edited."""

from __future__ import annotations

import random

import onnx

from fuzz import onnx_mutator

EDITS = 300


def test_edits_decode_and_change_the_model(onnx_seeds):
    changed = 0
    for seed in range(EDITS):
        model = onnx_seeds[seed % len(onnx_seeds)]
        edited = onnx_mutator.edit_model(model, random.Random(seed))
        assert edited is not None, seed
        onnx.ModelProto.FromString(edited)
        changed += edited != model
    assert changed >= EDITS * 0.9, f"only {changed} of {EDITS} edits changed the model"


def test_bytes_that_do_not_decode_are_left_to_byte_mutations():
    assert onnx_mutator.edit_model(b"\xff\xff\xff", random.Random(0)) is None
