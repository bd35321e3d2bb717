"""Array-module helpers so that the same code runs on NumPy and, when a GPU is usable, CuPy.

``gpu_enable`` (DeZero's name) is True when CuPy is installed *and* finds a
GPU; :func:`gpu_unavailable_reason` says in one sentence why not.  Both ask
CUDA only when first read (and remember the answer), so importing leafgrad
never starts CUDA: a CPU-only program, or one that forks workers, pays nothing
for CuPy being installed.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

try:  # CuPy is optional; without it every array lives in NumPy.
    import cupy  # type: ignore[import-not-found]
    import cupyx  # type: ignore[import-not-found]  # noqa: F401

    _import_error: Optional[BaseException] = None
except Exception as err:  # not installed, or a CuPy build that cannot load its CUDA libraries
    cupy = None
    _import_error = err

__all__ = ["gpu_enable", "get_array_module", "as_numpy", "as_cupy", "array_types", "DEVICES",
           "gpu_unavailable_reason", "require_gpu"]

#: The devices a :class:`~leafgrad.training.Trainer` (and ``leafgrad train --device``) can use.
DEVICES = ("cpu", "gpu")

#: How to install CuPy: an extra cannot pick the wheel that matches the machine's CUDA, so name both.
INSTALL_HINT = ('pip install "leafgrad[gpu]" for CUDA 12 or pip install "leafgrad[gpu-cuda13]" for CUDA 13 '
                '(the "CUDA Version" that nvidia-smi prints)')

#: The array types a Variable accepts.
array_types: tuple[type, ...] = (np.ndarray,) if cupy is None else (np.ndarray, cupy.ndarray)

_UNKNOWN = object()
_reason: Any = _UNKNOWN  # gpu_unavailable_reason()'s answer, once asked


def _find_reason(cupy_module: Any, import_error: Optional[BaseException]) -> Optional[str]:
    """Why ``cupy_module`` (None when its import failed with ``import_error``) cannot run on a GPU; None if it can."""
    if cupy_module is None:
        if isinstance(import_error, ModuleNotFoundError) and import_error.name in ("cupy", "cupyx"):
            return f"CuPy is not installed; install it with {INSTALL_HINT}"
        return (f"CuPy is installed but cannot be imported ({type(import_error).__name__}: {import_error}); "
                f"its wheel must match the machine's CUDA: {INSTALL_HINT}")
    try:
        count = cupy_module.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError: no driver, a driver older than CuPy's CUDA, no device
        return (f"CuPy is installed but cannot use a GPU ({err}); nvidia-smi shows whether this machine has "
                "an NVIDIA GPU and driver, and the CUDA version CuPy's wheel must match")
    if count < 1:
        return ("CuPy is installed but finds no GPU (CUDA reports 0 devices; nvidia-smi lists the GPUs, "
                "and CUDA_VISIBLE_DEVICES may hide them)")
    return None


def gpu_unavailable_reason() -> Optional[str]:
    """None when CuPy can run on a GPU here; otherwise why not and how to fix it, in one sentence."""
    global _reason
    if _reason is _UNKNOWN:
        _reason = _find_reason(cupy, _import_error)
    return _reason


def require_gpu(what: str) -> None:
    """Raise a ``RuntimeError`` saying that ``what`` needs CuPy on a GPU, and why there is none, if there is none."""
    reason = gpu_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"{what} needs CuPy on a GPU, but {reason}")


def __getattr__(name: str) -> Any:
    # gpu_enable is computed on first use (PEP 562), so that importing leafgrad does not start CUDA.
    if name == "gpu_enable":
        return gpu_unavailable_reason() is None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_array_module(x: Any):
    """Return ``numpy`` or ``cupy``, whichever module ``x`` (an array or a Variable) belongs to."""
    if cupy is None:
        return np
    data = getattr(x, "data", x) if not isinstance(x, array_types) else x
    return cupy.get_array_module(data)


def as_numpy(x: Any) -> np.ndarray:
    """Return ``x`` (a Variable, array or scalar) as a NumPy array, copying from the GPU if needed."""
    data = getattr(x, "data", x) if not isinstance(x, array_types) else x
    if np.isscalar(data):
        return np.array(data)
    if isinstance(data, np.ndarray):
        return data
    return cupy.asnumpy(data)


def as_cupy(x: Any):
    """Return ``x`` (a Variable or an array) as a CuPy array; raises a ``RuntimeError`` when no GPU is usable."""
    data = getattr(x, "data", x) if not isinstance(x, array_types) else x
    require_gpu("as_cupy")
    return cupy.asarray(data)
