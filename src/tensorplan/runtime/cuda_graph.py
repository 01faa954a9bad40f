"""Replaying a context's kernels as one CUDA graph, so that Python launch overhead vanishes.

For a program with static shapes, the kernels of an execution depend only on the context's
shapes, addresses and shape-tensor values (its preparation key). The first execution with a
key runs eagerly (it warms up library handles and workspaces); the second captures the step
list into a CUDA graph on a side stream; from then on each execution is one graph launch on
the caller's stream. A new key drops the graph. Steps that cannot be captured (a host
synchronization inside a kernel, say) make that key run eagerly for good.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

CUDA_GRAPHS = os.environ.get("TENSORPLAN_CUDA_GRAPHS", "1") != "0"
"""Set TENSORPLAN_CUDA_GRAPHS=0 to run every execution eagerly."""


class GraphRunner:
    """Runs a step list eagerly or by replaying its CUDA graph, per preparation key."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._key: object = None
        self._runs = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._eager_only = False

    def run(self, key: object, run: Callable[[], None], stream: torch.cuda.Stream) -> None:
        """Run on `stream` (already current): by graph when the key has been seen before."""
        if key != self._key:
            self._key, self._runs, self._graph, self._eager_only = key, 0, None, False
        self._runs += 1
        capturing = torch.cuda.is_current_stream_capturing()  # the caller captures us
        if not CUDA_GRAPHS or capturing or self._eager_only or self._runs < 2:
            run()
            return
        if self._graph is None:
            self._graph = self._capture(run, stream)
            if self._graph is None:
                self._eager_only = True
                run()
                return
        self._graph.replay()

    def _capture(
        self, run: Callable[[], None], stream: torch.cuda.Stream
    ) -> torch.cuda.CUDAGraph | None:
        graph = torch.cuda.CUDAGraph()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(stream)
        try:
            with torch.cuda.graph(graph, stream=side):
                run()
        except Exception:  # not capturable: run these steps eagerly from now on
            return None
        stream.wait_stream(side)
        return graph
