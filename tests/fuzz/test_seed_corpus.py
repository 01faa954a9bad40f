"""TENSORPLAN_SEED_CORPUS=DIR saves every plan and ONNX model a test run makes, once each."""

from __future__ import annotations

import hashlib

import onnx
import pytest
from fuzz.contract import QuietLogger
from fuzz.onnx_target import build_parsed
from onnx import TensorProto, helper

import seed_corpus
import tensorplan as trt

WRAPPED = (
    (trt.Builder, "build_serialized_network"),
    (trt.ICudaEngine, "serialize"),
    (trt.OnnxParser, "parse"),
    (trt.OnnxParser, "parse_from_file"),
)


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The wrapped methods as they are now, put back after the test."""
    for owner, name in WRAPPED:
        monkeypatch.setattr(owner, name, getattr(owner, name))
    return monkeypatch


def test_plans_and_models_are_saved_by_their_sha1(restored, tmp_path, onnx_seeds):
    restored.setenv("TENSORPLAN_SEED_CORPUS", str(tmp_path / "corpus"))
    seed_corpus.pytest_configure(None)
    model = tmp_path / "model.onnx"
    model.write_bytes(onnx_seeds[0])
    plans = []
    for _ in range(2):  # the same model and plan twice: saved once
        builder = trt.Builder(QuietLogger())
        network = builder.create_network()
        assert trt.OnnxParser(network, QuietLogger()).parse_from_file(str(model))
        plans.append(bytes(build_parsed(builder, network)))
    engine = trt.Runtime(QuietLogger()).deserialize_cuda_engine(plans[0])
    plans.append(bytes(engine.serialize()))
    assert (
        trt.OnnxParser(trt.Builder(QuietLogger()).create_network(), QuietLogger()).parse(
            b"\x08\xff"
        )
        is False
    )  # saved too: what fails to parse is a seed as well

    def names(*contents: bytes) -> set[str]:
        return {hashlib.sha1(data).hexdigest() for data in contents}

    assert {p.stem for p in (tmp_path / "corpus" / "plan").glob("*.plan")} == names(*plans)
    saved = {p.stem for p in (tmp_path / "corpus" / "onnx").glob("*.onnx")}
    assert saved == names(onnx_seeds[0], b"\x08\xff")


def test_models_of_more_than_max_seed_nodes_are_not_saved(restored, tmp_path):
    restored.setenv("TENSORPLAN_SEED_CORPUS", str(tmp_path / "corpus"))
    seed_corpus.pytest_configure(None)

    def chain(nodes: int) -> onnx.ModelProto:
        names = ["x", *(f"t{i}" for i in range(nodes - 1)), "y"]
        graph = helper.make_graph(
            [helper.make_node("Relu", [names[i]], [names[i + 1]]) for i in range(nodes)],
            "chain",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    kept, dropped = chain(seed_corpus.MAX_SEED_NODES), chain(seed_corpus.MAX_SEED_NODES + 1)
    for model in (kept, dropped, dropped.SerializeToString()):
        network = trt.Builder(QuietLogger()).create_network()
        assert trt.OnnxParser(network, QuietLogger()).parse(model)
    saved = {p.stem for p in (tmp_path / "corpus" / "onnx").glob("*.onnx")}
    assert saved == {hashlib.sha1(kept.SerializeToString()).hexdigest()}


def test_without_the_variable_nothing_is_wrapped(restored):
    restored.delenv("TENSORPLAN_SEED_CORPUS", raising=False)
    before = [getattr(owner, name) for owner, name in WRAPPED]
    seed_corpus.pytest_configure(None)
    assert [getattr(owner, name) for owner, name in WRAPPED] == before
