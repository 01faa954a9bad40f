"""The built-in seeds, built once for the fuzz tests, on the CPU (the targets use host pointers)."""

from __future__ import annotations

import os

import pytest

from fuzz import seeds


@pytest.fixture(scope="session")
def plan_seeds() -> list[bytes]:
    return seeds.plan_seeds()


@pytest.fixture(scope="session")
def onnx_seeds() -> list[bytes]:
    return seeds.onnx_seeds()


@pytest.fixture(autouse=True)
def on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENSORPLAN_DEVICE", "cpu")
    assert os.environ["TENSORPLAN_DEVICE"] == "cpu"
