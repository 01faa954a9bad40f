"""IProgressMonitor: the phases a build reports, cancellation, and the tqdm monitor."""

from __future__ import annotations

import io

import numpy as np

import tensorplan as trt
from helpers import build_plan, load, run
from tensorplan.builder.progress import IProgressMonitor, TqdmProgressMonitor

PHASES = {
    "Building engine": (None, 4),
    "Lowering": ("Building engine", 1),
    "Optimizing": ("Building engine", None),  # one step per optimization pass
    "Planning memory": ("Building engine", None),  # shape inference, plugins, memory, tactics
    "Serializing": ("Building engine", 1),
}


class RecordingMonitor(IProgressMonitor):
    """Records every call; returns False from step_complete at call number `cancel_at`."""

    def __init__(self, cancel_at: int | None = None) -> None:
        IProgressMonitor.__init__(self)
        self.events: list[tuple] = []
        self.cancel_at = cancel_at
        self.steps = 0

    def phase_start(self, phase_name, parent_phase, num_steps):
        self.events.append(("start", phase_name, parent_phase, num_steps))

    def step_complete(self, phase_name, step):
        self.events.append(("step", phase_name, step))
        self.steps += 1
        return self.steps - 1 != self.cancel_at

    def phase_finish(self, phase_name):
        self.events.append(("finish", phase_name))


def relu_network(network):
    x = network.add_input("x", trt.float32, (2, 3))
    y = network.add_activation(x, trt.ActivationType.RELU).get_output(0)
    y.name = "y"
    network.mark_output(y)


def with_monitor(monitor):
    def configure(builder, config):
        assert config.progress_monitor is None  # TensorRT's default
        config.progress_monitor = monitor

    return configure


def test_a_build_reports_every_phase_and_step_in_order():
    monitor = RecordingMonitor()
    plan = build_plan(relu_network, configure=with_monitor(monitor))
    assert plan is not None
    starts = [e for e in monitor.events if e[0] == "start"]
    assert [e[1] for e in starts] == list(PHASES)
    num_steps = {name: steps for _, name, _, steps in starts}
    for _, name, parent, steps in starts:
        assert (parent, steps) == (PHASES[name][0], PHASES[name][1] or steps)
    assert num_steps["Optimizing"] >= 4
    open_phases: list[str] = []
    completed: dict[str, list[int]] = {}
    for event in monitor.events:
        if event[0] == "start":
            open_phases.append(event[1])
        elif event[0] == "step":
            assert event[1] == open_phases[-1], "a step is reported for the innermost phase"
            completed.setdefault(event[1], []).append(event[2])
        else:
            assert open_phases.pop() == event[1], "phases finish innermost first"
    assert not open_phases
    assert completed == {name: list(range(steps)) for name, steps in num_steps.items()}
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.testing.assert_array_equal(run(load(plan), {"x": x})["y"], np.maximum(x, 0))


def test_false_from_any_step_complete_cancels_the_build(logger):
    full = RecordingMonitor()
    assert build_plan(relu_network, configure=with_monitor(full)) is not None
    steps = [event for event in full.events if event[0] == "step"]
    for cancel_at, (_, phase, step) in enumerate(steps):
        logger.messages.clear()
        monitor = RecordingMonitor(cancel_at)
        assert build_plan(relu_network, logger, with_monitor(monitor)) is None
        assert monitor.steps == cancel_at + 1, "no step is reported after the cancellation"
        started = [e[1] for e in monitor.events if e[0] == "start"]
        finished = [e[1] for e in monitor.events if e[0] == "finish"]
        assert sorted(started) == sorted(finished), "every started phase is finished"
        assert logger.errors == [
            "IBuilder::buildSerializedNetwork: Error Code 1: Unspecified Error (the build was "
            f"cancelled by the progress monitor at step {step} of phase '{phase}')"
        ]


def test_a_monitor_that_raises_fails_the_build_with_the_cause(logger):
    class Broken(RecordingMonitor):
        def phase_start(self, phase_name, parent_phase, num_steps):
            if phase_name == "Optimizing":
                raise RuntimeError("monitor bug")
            super().phase_start(phase_name, parent_phase, num_steps)

    monitor = Broken()
    assert build_plan(relu_network, logger, with_monitor(monitor)) is None
    assert len(logger.errors) == 1
    assert (
        "the progress monitor's phase_start raised RuntimeError('monitor bug')"
        in (logger.errors[0])
    )
    assert ("finish", "Building engine") in monitor.events


def test_a_monitor_returning_nothing_does_not_cancel():
    class Silent(IProgressMonitor):
        def step_complete(self, phase_name, step):
            return None

    assert build_plan(relu_network, configure=with_monitor(Silent())) is not None


def test_the_base_class_continues_and_ignores_phases():
    monitor = IProgressMonitor()
    assert monitor.phase_start("p", None, 2) is None
    assert monitor.step_complete("p", 0) is True
    assert monitor.phase_finish("p") is None
    assert build_plan(relu_network, configure=with_monitor(monitor)) is not None


def test_tqdm_monitor_draws_a_bar_per_phase_and_keeps_the_top_one():
    stream = io.StringIO()
    monitor = TqdmProgressMonitor(file=stream, disable=False)
    assert build_plan(relu_network, configure=with_monitor(monitor)) is not None
    text = stream.getvalue()
    for name in PHASES:
        assert name in text
    assert "Building engine: 100%" in text and "4/4 [" in text
    assert monitor._bars == {}, "every bar is closed"


def test_tqdm_monitor_stays_silent_when_not_a_terminal():
    stream = io.StringIO()  # not a TTY: tqdm's disable=None turns the bars off
    assert build_plan(relu_network, configure=with_monitor(TqdmProgressMonitor(stream))) is not None
    assert stream.getvalue() == ""
