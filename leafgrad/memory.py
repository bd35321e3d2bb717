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

On the GPU the figures come from CuPy's memory pool: a memory hook counts the
bytes the pool hands out to arrays and takes back (on the thread that opened
the block).  By default (``device="auto"``) a block follows the arrays: it
measures the host and, when CuPy finds a GPU, the pool too, and reports the
pool's figures when the block allocated or freed anything there (``mem.device``
says which; ``mem.cpu`` and ``mem.gpu`` hold both).  ``device="cpu"`` or
``"gpu"`` measures one of them only.

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

import functools
import threading
import tracemalloc
from typing import Any, List, Optional

from leafgrad import cuda

__all__ = ["MemoryReport", "track", "format_bytes", "TRACK_DEVICES"]

#: What :func:`track` can measure: ``"auto"`` follows the arrays (the host, and the GPU when CuPy finds one).
TRACK_DEVICES = ("auto", "cpu", "gpu")

_lock = threading.Lock()
_active: List["_HostMemory"] = []      # open tracemalloc trackers, outermost first
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


class _HostMemory:
    """The bytes :mod:`tracemalloc` traces inside a block: NumPy's arrays and Python's objects."""

    def __init__(self) -> None:
        self._base = 0
        self._peak_abs = 0
        self._end: Optional[int] = None

    def enter(self) -> None:
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

    def exit(self) -> None:
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

    @property
    def current(self) -> int:
        """Net bytes: allocated inside the block and alive at its end (or now), minus those freed."""
        if self._end is not None:
            return self._end - self._base
        return tracemalloc.get_traced_memory()[0] - self._base

    @property
    def peak(self) -> int:
        """The most the traced bytes rose above their level at the start of the block."""
        peak_abs = self._peak_abs
        if self._end is None and tracemalloc.is_tracing():
            peak_abs = max(peak_abs, tracemalloc.get_traced_memory()[1])
        return max(peak_abs - self._base, 0)


class _PoolMemory:
    """The bytes CuPy's memory pool hands out to arrays inside a block, and takes back (on this thread)."""

    def __init__(self) -> None:
        self._hook: Any = None

    def enter(self) -> None:
        self._hook = _pool_hook_class()()
        self._hook.__enter__()

    def exit(self) -> None:
        self._hook.__exit__(None, None, None)

    @property
    def current(self) -> int:
        """Net bytes handed out inside the block and not taken back (negative: older arrays were freed)."""
        return self._hook.current if self._hook is not None else 0

    @property
    def peak(self) -> int:
        """The most the bytes handed out rose above their level at the start of the block."""
        return self._hook.peak if self._hook is not None else 0


class MemoryReport:
    """A context manager that measures the memory allocated inside its ``with`` block.

    After (or during) the block:

    * ``peak``: the most the measured bytes rose above their level at the start;
    * ``current``: their net change at the end of the block (during the block:
      now); negative when the block freed more than it kept;
    * ``device``: where those figures come from: ``"cpu"`` (tracemalloc) or
      ``"gpu"`` (CuPy's memory pool);
    * ``cpu`` and ``gpu``: both figures (objects with ``peak`` and ``current``),
      None for what was not measured.

    With ``device="auto"`` (the default) the host is always measured and, when
    CuPy finds a GPU, the pool too; ``device`` is then ``"gpu"`` if the pool
    handed out or took back any bytes inside the block, else ``"cpu"``.

    Use :func:`track` to make one.
    """

    def __init__(self, device: str = "auto", label: Optional[str] = None) -> None:
        if device not in TRACK_DEVICES:
            raise ValueError(f"leafgrad.memory.track: device must be one of {', '.join(map(repr, TRACK_DEVICES))}, "
                             f"got {device!r}")
        if device == "gpu":
            cuda.require_gpu("leafgrad.memory.track(device='gpu')")
        self.label = label
        self.cpu: Optional[_HostMemory] = None if device == "gpu" else _HostMemory()
        on_gpu = device == "gpu" or (device == "auto" and cuda.gpu_enable)
        self.gpu: Optional[_PoolMemory] = _PoolMemory() if on_gpu else None

    # ---- the context manager ------------------------------------------------------
    def __enter__(self) -> "MemoryReport":
        if self.cpu is not None:
            self.cpu.enter()
        if self.gpu is not None:
            self.gpu.enter()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.gpu is not None:
            self.gpu.exit()
        if self.cpu is not None:
            self.cpu.exit()

    # ---- the figures ------------------------------------------------------------------
    @property
    def device(self) -> str:
        """``"gpu"`` when the figures are the GPU pool's, ``"cpu"`` when they are tracemalloc's."""
        if self.gpu is not None and (self.cpu is None or self.gpu.peak or self.gpu.current):
            return "gpu"
        return "cpu"

    @property
    def current(self) -> int:
        """Net bytes: allocated inside the block and alive at its end (or now), minus those freed."""
        return self._figures().current

    @property
    def peak(self) -> int:
        """The most the measured bytes rose above their level at the start of the block."""
        return self._figures().peak

    def _figures(self) -> Any:
        return self.gpu if self.device == "gpu" else self.cpu

    def __repr__(self) -> str:
        label = f"{self.label}: " if self.label else ""
        text = f"{label}peak {format_bytes(self.peak)}, current {format_bytes(self.current)}"
        if self.device == "gpu":
            text += " on the GPU"
            if self.cpu is not None:
                text += f" (host: peak {format_bytes(self.cpu.peak)}, current {format_bytes(self.cpu.current)})"
        return text


@functools.lru_cache(maxsize=None)
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


def track(device: str = "auto", label: Optional[str] = None) -> MemoryReport:
    """A context manager measuring the peak and current bytes allocated inside a ``with`` block.

    ``device="cpu"`` measures NumPy arrays and Python objects through
    :mod:`tracemalloc`; ``device="gpu"`` measures CuPy's memory pool;
    ``device="auto"`` (default) measures the host and, when CuPy finds a GPU,
    the pool too, and reports where the block allocated (``mem.device``).
    ``label`` prefixes the printed report::

        with track(label="forward") as fwd:
            loss = model(x)
        print(fwd)            # forward: peak 1.2 MiB, current 0.9 MiB
        fwd.peak              # bytes, an int
    """
    return MemoryReport(device=device, label=label)
