"""Array-module helpers so that the same code runs on NumPy and, when installed, CuPy."""
from __future__ import annotations

from typing import Any

import numpy as np

try:  # CuPy is optional; without it every array lives in NumPy.
    import cupy  # type: ignore[import-not-found]
    import cupyx  # type: ignore[import-not-found]  # noqa: F401

    gpu_enable = True
except Exception:  # ImportError, or a CuPy build that finds no CUDA driver
    cupy = None
    gpu_enable = False

__all__ = ["gpu_enable", "get_array_module", "as_numpy", "as_cupy", "array_types"]

#: The array types a Variable accepts.
array_types: tuple[type, ...] = (np.ndarray,) if cupy is None else (np.ndarray, cupy.ndarray)


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
    """Return ``x`` (a Variable or an array) as a CuPy array; raises when CuPy is not available."""
    data = getattr(x, "data", x) if not isinstance(x, array_types) else x
    if not gpu_enable:
        raise RuntimeError("as_cupy: CuPy is not installed or finds no GPU (pip install cupy-cuda12x)")
    return cupy.asarray(data)
