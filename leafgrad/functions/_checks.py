"""Argument checks shared by the functions, raising errors that name the function and the values at fault."""
from __future__ import annotations

import operator
from typing import Any, Optional

import numpy as np

__all__ = ["shape_of", "normalize_axis", "normalize_axes", "AxisError"]

#: NumPy's AxisError (a ValueError and an IndexError), wherever this NumPy version keeps it.
AxisError = getattr(getattr(np, "exceptions", np), "AxisError")


def shape_of(x: Any) -> tuple:
    """The shape of a Variable, an array or a scalar."""
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    return tuple(shape)


def _as_int(name: str, axis: Any) -> int:
    try:
        return operator.index(axis)
    except TypeError:
        raise TypeError(f"{name}: axis must be an int, a tuple of ints or None, got {axis!r}") from None


def normalize_axis(name: str, axis: Any, shape: tuple, extra: int = 0) -> int:
    """``axis`` as a non-negative int for an input of ``shape``.

    ``extra=1`` allows one position past the last axis (for functions that add an axis,
    such as ``expand_dims`` and ``stack``).
    """
    a = _as_int(name, axis)
    ndim = len(shape) + extra
    if not -ndim <= a < ndim:
        raise AxisError(f"{name}: axis {a} is out of range for an input of shape {tuple(shape)}")
    return a + ndim if a < 0 else a


def normalize_axes(name: str, axis: Any, shape: tuple) -> Optional[tuple]:
    """``axis`` (None, an int, or a tuple/list of ints) as None or a tuple of non-negative ints."""
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        axes = tuple(normalize_axis(name, a, shape) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"{name}: repeated axis in {tuple(axis)} for an input of shape {tuple(shape)}")
        return axes
    return (normalize_axis(name, axis, shape),)
