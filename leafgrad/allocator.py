"""The C allocator under NumPy: keep freed array memory for the next step instead of returning it.

A training step allocates its temporaries (activations, gradients, scratch) and frees them
again, tens of megabytes, step after step.  glibc's ``malloc`` hands memory above a threshold
back to the operating system when it is freed (``munmap``, or trimming the top of the heap),
and the next step has every page faulted in and zeroed by the kernel again.  The threshold
adapts to the largest block freed so far, so whether a step pays depends on what the process
happened to free before: a GPT step of nanoGPT's CPU size took 83-90 ms in a fresh process
against 66-67 ms once the thresholds were fixed (``benchmarks/bench_gpt.py --fresh``); PyTorch's
step did not change.

``keep_freed_memory()`` sets the two thresholds once, to the values glibc's own adaptation
reaches at most (memory blocks up to 32 MiB are reused, at most 64 MiB of free memory is kept at
the top of the heap): blocks larger than 32 MiB still go back to the system when freed.  The peak
memory of a step is unchanged; what the process keeps between steps is what the step will need
again.  ``import leafgrad`` calls it, unless the environment says otherwise:

* ``LEAFGRAD_MALLOC=system`` leaves the allocator as it is;
* glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, when set, win.

On systems without glibc (macOS, Windows, musl) it does nothing and returns False.
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: Blocks up to this size are served from (and freed back to) the heap: glibc's adaptive maximum on 64-bit.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of the heap kept for reuse, up to this much (glibc adapts it to twice the above).
TRIM_THRESHOLD = 64 * 1024 * 1024

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_GLIBC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _glibc():
    """glibc's ``mallopt`` as a ctypes function, or None when the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # only glibc has it
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Have glibc keep freed blocks up to ``mmap_threshold`` bytes (and up to ``trim_threshold`` bytes
    of free heap) for reuse; True when it was set, False where the C library is not glibc."""
    for label, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2 ** 31:
            raise ValueError(f"keep_freed_memory: {label} must be a byte count in [0, 2**31), got {value!r}")
    mallopt = _glibc()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))


def _at_import() -> bool:
    """What ``import leafgrad`` does: ``keep_freed_memory()`` unless the environment chose otherwise."""
    if os.environ.get("LEAFGRAD_MALLOC", "").strip().lower() == "system":
        return False
    if any(name in os.environ for name in _GLIBC_ENV):
        return False
    return keep_freed_memory()


#: Whether ``import leafgrad`` set the thresholds.
applied_at_import = _at_import()
