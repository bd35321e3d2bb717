"""Memory measurements, each run in a fresh process: ``python _child.py '<json request>'``.

Prints one JSON object on the last line of stdout.  Requests:

* ``{"kind": "step_peak", "framework": ..., "sizes": [...], "batch": ...}``: peak memory
  growth of one training step (item 2).
* ``{"kind": "keep_losses", "framework": ..., "sizes": [...], "batch": ..., "steps": ...}``:
  memory growth over ``steps`` training steps that keep every loss (item 6).
* ``{"kind": "checkpoint_peak", "variant": "plain"|"checkpoint", "sizes": ..., "batch": ...,
  "every": k}``: peak memory growth of one leafgrad step, plain or checkpointed (item 7).

Method, per step measured: one warm-up step first (lazy initialisation, BLAS
buffers, caches), ``gc.collect()``, then the peak RSS (VmHWM) is reset to the
current RSS through ``/proc/self/clear_refs`` and read again after the step
(where the reset is refused, the first step is measured, one-time costs included);
the process runs with glibc's mmap threshold fixed at 128 KiB so that freed
arrays leave RSS at once.  For NumPy-based frameworks ``tracemalloc``'s peak
over one more step is reported too (PyTorch's tensors are invisible to it), and
what the first step leaves allocated for good (gradients, optimizer buffers),
which the growth of a later step does not show.
"""
from __future__ import annotations

import gc
import json
import sys
import tracemalloc
from typing import Any, Callable, Dict

import _common
from _common import MiB, hwm_mib, reset_hwm, rss_mib
from _mlp import init_mlp, leafgrad_step, make_step

_NUMPY_BASED = {"leafgrad", "numpy", "dezero"}


def _peak_of(step: Callable[[], Any], numpy_based: bool) -> Dict[str, Any]:
    """RSS and tracemalloc peak growth of one call of ``step`` (after a warm-up call)."""
    gc.collect()
    exact = reset_hwm()
    persistent = None
    if exact:
        if numpy_based:  # what the first step leaves allocated: gradients, optimizer buffers
            tracemalloc.start()
            cur = tracemalloc.get_traced_memory()[0]
            step()  # warm-up
            gc.collect()
            persistent = (tracemalloc.get_traced_memory()[0] - cur) / MiB
            tracemalloc.stop()
        else:
            step()  # warm-up
        gc.collect()
        reset_hwm()
    # else: the first step is the measured one (it includes one-time allocations)
    rss0 = rss_mib()
    step()
    out: Dict[str, Any] = {"rss_before_mib": rss0, "hwm_reset": exact,
                           "rss_peak_growth_mib": hwm_mib() - rss0}
    if persistent is not None:
        out["tracemalloc_kept_after_first_step_mib"] = persistent
    if numpy_based:
        tracemalloc.start()
        step()  # allocate, under tracing, what lives from one step to the next (gradients)
        gc.collect()
        cur0 = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        out["tracemalloc_peak_growth_mib"] = (tracemalloc.get_traced_memory()[1] - cur0) / MiB
        tracemalloc.stop()
    return out


def step_peak(req: Dict[str, Any]) -> Dict[str, Any]:
    """Item 2: peak memory growth of one MLP step."""
    fw = req["framework"]
    step = make_step(fw, req["sizes"], req["batch"])
    return _peak_of(step, fw in _NUMPY_BASED)


def checkpoint_peak(req: Dict[str, Any]) -> Dict[str, Any]:
    """Item 7: peak memory growth of one leafgrad step, plain or checkpointed."""
    every = req["every"] if req["variant"] == "checkpoint" else None
    step = leafgrad_step(init_mlp(req["sizes"], req["batch"]), checkpoint_every=every)
    return _peak_of(step, True)


def keep_losses(req: Dict[str, Any]) -> Dict[str, Any]:
    """Item 6: memory growth over ``steps`` steps that append every loss to a list."""
    fw = req["framework"]
    steps = req["steps"]
    step = make_step(fw, req["sizes"], req["batch"])
    for _ in range(5):  # warm-up, not kept
        step()
    numpy_based = fw in _NUMPY_BASED
    if numpy_based:
        tracemalloc.start()
    gc.collect()
    rss0 = rss_mib()
    cur0 = tracemalloc.get_traced_memory()[0] if numpy_based else 0
    losses = []
    for _ in range(steps):
        losses.append(step())
    gc.collect()
    out: Dict[str, Any] = {"rss_growth_mib": rss_mib() - rss0, "steps": steps,
                           "kept": len(losses)}
    if numpy_based:
        out["tracemalloc_growth_mib"] = (tracemalloc.get_traced_memory()[0] - cur0) / MiB
        tracemalloc.stop()
    return out


KINDS = {"step_peak": step_peak, "keep_losses": keep_losses, "checkpoint_peak": checkpoint_peak}


def main() -> None:
    req = json.loads(sys.argv[1])
    if _common.load(req.get("framework", "leafgrad")) is None:
        print(json.dumps({"error": "framework not available"}))
        return
    result = KINDS[req["kind"]](req)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
