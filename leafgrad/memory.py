"""See where the memory goes: ``with leafgrad.memory.track() as mem: ...`` then ``mem.peak``, ``mem.current``.

On NumPy the figures come from :mod:`tracemalloc`: NumPy reports every array
buffer it allocates to it, and Python reports its own objects (Variables,
Functions, graph edges).  ``peak`` is the highest the traced bytes rose above
their level at the start of the block; ``current`` is the net change at its
end: bytes allocated inside the block and still alive, minus bytes freed.

tracemalloc only sees memory allocated while tracing is on.  A block turns
tracing on if it is off, so arrays made before it are invisible to it: it
cannot see them being freed.  Open an outer block first (or call
``tracemalloc.start()``) to see frees too: blocks nest, and an inner block
does not disturb the peak of an outer one.

On CuPy (``device="gpu"``) the figures come from CuPy's memory pool: a memory
hook counts the bytes the pool hands out to arrays and takes back.

tracemalloc is process-wide, so allocations by other threads during the block
are counted too, and tracing slows allocation down while it is on.

A learner can see what the memory model does with it::

    import numpy as np, leafgrad as lg, leafgrad.functions as F
    from leafgrad.memory import track

    x = lg.Variable(np.random.rand(1000, 1000))   # 8 MB
    with track() as mem:
        y = F.sum(F.exp(F.sin(x)) * 2)            # sin's output dies as soon as exp has used it
    print(mem)     # peak 15.3 MiB, current 7.6 MiB: only exp's output stays, for backward
"""
from __future__ import annotations

import threading
import tracemalloc
from typing import Any, List, Optional

__all__ = ["MemoryReport", "track", "format_bytes"]

_lock = threading.Lock()
_active: List["MemoryReport"] = []     # open tracemalloc trackers, outermost first
_started_by_us = False                 # whether the outermost tracker started tracemalloc


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human-readable string: ``'512 B'``, ``'7.6 KiB'``, ``'8.0 MiB'``."""
    sign = "-" if n < 0 else ""
    n = abs(float(n))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024.0 or unit == "GiB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024.0
    return f"{sign}{n:.1f} GiB"  # pragma: no cover - unreachable


class MemoryReport:
    """A context manager that measures the memory allocated inside its ``with`` block.

    After (or during) the block:

    * ``peak``: the most the traced bytes rose above their level at the start;
    * ``current``: the net change of traced bytes at the end of the block (during
      the block: now); negative when the block freed more than it kept;
    * ``device``: ``"cpu"`` (tracemalloc) or ``"gpu"`` (CuPy's memory pool).

    Use :func:`track` to make one.
    """

    def __init__(self, device: str = "cpu", label: Optional[str] = None) -> None:
        if device not in ("cpu", "gpu"):
            raise ValueError(f"leafgrad.memory.track: device must be 'cpu' or 'gpu', got {device!r}")
        self.device = device
        self.label = label
        self._base = 0
        self._peak_abs = 0
        self._end: Optional[int] = None
        self._hook: Any = None

    # ---- the context manager ------------------------------------------------------
    def __enter__(self) -> "MemoryReport":
        if self.device == "gpu":
            self._enter_gpu()
            return self
        global _started_by_us
        with _lock:
            if not tracemalloc.is_tracing():
                tracemalloc.start()
                _started_by_us = True
            current, peak = tracemalloc.get_traced_memory()
            for outer in _active:  # the peak so far belongs to the outer blocks: save it
                outer._peak_abs = max(outer._peak_abs, peak)
            tracemalloc.reset_peak()
            self._base = current
            self._peak_abs = current
            self._end = None
            _active.append(self)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.device == "gpu":
            self._exit_gpu()
            return
        global _started_by_us
        with _lock:
            current, peak = tracemalloc.get_traced_memory()
            for tracker in _active:
                tracker._peak_abs = max(tracker._peak_abs, peak)
            self._end = current
            if self in _active:
                _active.remove(self)
            if not _active and _started_by_us:
                tracemalloc.stop()
                _started_by_us = False

    # ---- the figures ------------------------------------------------------------------
    @property
    def current(self) -> int:
        """Net bytes: allocated inside the block and alive at its end (or now), minus those freed."""
        if self._end is not None:
            return self._end - self._base
        if self.device == "gpu":
            return self._hook.current
        return tracemalloc.get_traced_memory()[0] - self._base

    @property
    def peak(self) -> int:
        """The most the traced bytes rose above their level at the start of the block."""
        if self.device == "gpu":
            return self._hook.peak - self._base if self._hook is not None else 0
        peak_abs = self._peak_abs
        if self._end is None and tracemalloc.is_tracing():
            peak_abs = max(peak_abs, tracemalloc.get_traced_memory()[1])
        return max(peak_abs - self._base, 0)

    def __repr__(self) -> str:
        label = f"{self.label}: " if self.label else ""
        return f"{label}peak {format_bytes(self.peak)}, current {format_bytes(self.current)}"

    # ---- CuPy --------------------------------------------------------------------------
    def _enter_gpu(self) -> None:
        from leafgrad.cuda import cupy
        if cupy is None:
            raise RuntimeError("leafgrad.memory.track(device='gpu'): CuPy is not installed")
        self._hook = _pool_hook_class()()
        self._base = 0
        self._end = None
        self._hook.__enter__()

    def _exit_gpu(self) -> None:
        self._hook.__exit__(None, None, None)
        self._end = self._hook.current


def _pool_hook_class() -> type:
    """A CuPy ``MemoryHook`` that counts the pool's bytes handed to arrays (made on first GPU use)."""
    from cupy.cuda import memory_hook  # type: ignore[import-not-found]

    class PoolHook(memory_hook.MemoryHook):
        def __init__(self) -> None:
            self.name = f"LeafgradPoolHook-{id(self)}"  # unique: nested blocks each register one
            self.current = 0
            self.peak = 0

        def malloc_postprocess(self, **kwargs: Any) -> None:
            self.current += kwargs["mem_size"]
            if self.current > self.peak:
                self.peak = self.current

        def free_postprocess(self, **kwargs: Any) -> None:
            self.current -= kwargs["mem_size"]

    return PoolHook


def track(device: str = "cpu", label: Optional[str] = None) -> MemoryReport:
    """A context manager measuring the peak and current bytes allocated inside a ``with`` block.

    ``device="cpu"`` (default) measures NumPy arrays and Python objects through
    :mod:`tracemalloc`; ``device="gpu"`` measures CuPy's memory pool.  ``label``
    prefixes the printed report::

        with track(label="forward") as fwd:
            loss = model(x)
        print(fwd)            # forward: peak 1.2 MiB, current 0.9 MiB
        fwd.peak              # bytes, an int
    """
    return MemoryReport(device=device, label=label)
