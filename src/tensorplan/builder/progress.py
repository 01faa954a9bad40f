"""Build progress: TensorRT's IProgressMonitor, the builder's side of it, and a tqdm monitor.

The builder reports a phase tree to `IBuilderConfig.progress_monitor`:

    Building engine            (4 steps, one per phase below)
      Lowering                 (1 step)
      Optimizing               (one step per optimization pass)
      Planning memory          (1 step)
      Serializing              (1 step)

A monitor whose `step_complete` returns False cancels the build: the builder finishes the
open phases, reports the cancellation and returns None, as TensorRT does.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from tqdm import tqdm


class IProgressMonitor:
    """Application-implemented progress reporting interface (TensorRT's IProgressMonitor).

    Subclass it, call `IProgressMonitor.__init__(self)`, and override the three methods.
    TensorRT requires them to be thread-safe; tensorplan calls them from the building thread.
    """

    def __init__(self) -> None:
        pass

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        """A phase with `num_steps` steps begins; `parent_phase` is None for a top-level one."""

    def step_complete(self, phase_name: str, step: int) -> bool:
        """Step `step` (0 to num_steps - 1) of `phase_name` is done; False cancels the build."""
        return True

    def phase_finish(self, phase_name: str) -> None:
        """`phase_name` has ended (possibly before all its steps, on error or cancellation)."""


class BuildCancelled(Exception):
    """The progress monitor cancelled the build, or failed; the message says which."""


class BuildProgress:
    """The builder's side: opens phases and reports steps to a monitor (or to nobody).

    A phase that ends normally inside another counts as one step of its parent.
    """

    def __init__(self, monitor: Any) -> None:
        self._monitor = monitor
        self._open: list[list[Any]] = []  # [name, steps completed], innermost last

    @contextmanager
    def phase(self, name: str, num_steps: int) -> Iterator[None]:
        """Run the body as phase `name`, a child of the innermost open phase."""
        parent = self._open[-1][0] if self._open else None
        self._call("phase_start", name, parent, num_steps)
        self._open.append([name, 0])
        try:
            yield
        finally:
            self._open.pop()
            self._call("phase_finish", name)
        if self._open:
            self.step()

    def step(self) -> None:
        """The innermost open phase finished a step; BuildCancelled if the monitor says stop."""
        current = self._open[-1]
        name, step = current
        current[1] += 1
        carry_on = self._call("step_complete", name, step)
        # TensorRT's binding requires a bool; a monitor that returns nothing is not a cancellation.
        if carry_on is not None and not carry_on:
            raise BuildCancelled(
                f"the build was cancelled by the progress monitor at step {step} of phase '{name}'"
            )

    def _call(self, method: str, *args: Any) -> Any:
        if self._monitor is None:
            return None
        try:
            return getattr(self._monitor, method)(*args)
        except Exception as error:  # a user's monitor failing ends the build, not the process
            raise BuildCancelled(f"the progress monitor's {method} raised {error!r}") from None


class TqdmProgressMonitor(IProgressMonitor):
    """Shows each phase as a tqdm progress bar, nested by depth; the top-level bar stays.

    `disable=None` shows the bars only when `file` is a terminal (tqdm's rule).
    """

    def __init__(self, file: IO[str] | None = None, disable: bool | None = None) -> None:
        IProgressMonitor.__init__(self)
        self._file = file if file is not None else sys.stderr
        self._disable = disable
        self._bars: dict[str, tqdm] = {}
        self._lock = threading.Lock()

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        with self._lock:
            depth = len(self._bars)
            self._bars[phase_name] = tqdm(
                total=num_steps,
                desc=phase_name,
                position=depth,
                leave=depth == 0,
                file=self._file,
                disable=self._disable,
                unit="step",
                dynamic_ncols=True,
            )

    def step_complete(self, phase_name: str, step: int) -> bool:
        with self._lock:
            bar = self._bars.get(phase_name)
            if bar is not None:
                bar.update(step + 1 - bar.n)
        return True

    def phase_finish(self, phase_name: str) -> None:
        with self._lock:
            bar = self._bars.pop(phase_name, None)
            if bar is not None:
                bar.close()
