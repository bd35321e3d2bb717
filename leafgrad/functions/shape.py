"""Shape functions: ``reshape transpose broadcast_to sum_to get_item``."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from leafgrad import utils
from leafgrad.core import Function, Variable, as_variable
from leafgrad.cuda import get_array_module

__all__ = ["reshape", "transpose", "broadcast_to", "sum_to", "get_item"]


class Reshape(Function):
    """A new shape for the same elements."""

    retain_inputs = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.x_shape)

    def backward_array(self, gy):
        return gy.reshape(self.x_shape)


def reshape(x: Any, shape: tuple) -> Variable:
    """``x`` with a new ``shape`` (one entry may be -1)."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    if x.shape == shape:
        return as_variable(x)
    return Reshape(shape)(x)


class Transpose(Function):
    """Permute the axes."""

    retain_inputs = ()

    def __init__(self, axes: Optional[tuple] = None) -> None:
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def _inverse_axes(self):
        if self.axes is None:
            return None
        n = len(self.axes)
        return tuple(np.argsort([a % n for a in self.axes]).tolist())

    def backward(self, gy):
        return transpose(gy, self._inverse_axes())

    def backward_array(self, gy):
        return gy.transpose(self._inverse_axes())


def transpose(x: Any, axes: Optional[tuple] = None) -> Variable:
    """``x`` with its axes permuted by ``axes`` (reversed when None)."""
    if axes is not None:
        axes = tuple(axes)
    return Transpose(axes)(x)


class BroadcastTo(Function):
    """Repeat ``x`` along axes of size 1 (and new leading axes) to reach ``shape``."""

    retain_inputs = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.x_shape)

    def backward_array(self, gy):
        return utils.sum_to(gy, self.x_shape)


def broadcast_to(x: Any, shape: tuple) -> Variable:
    """``x`` broadcast to ``shape``."""
    shape = tuple(shape)
    if x.shape == shape:
        return as_variable(x)
    return BroadcastTo(shape)(x)


class SumTo(Function):
    """Sum ``x`` down to ``shape`` (the reverse of broadcasting)."""

    retain_inputs = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return utils.sum_to(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.x_shape)

    def backward_array(self, gy):
        return get_array_module(gy).broadcast_to(gy, self.x_shape)


def sum_to(x: Any, shape: tuple) -> Variable:
    """Sum ``x`` down to ``shape``."""
    shape = tuple(shape)
    if x.shape == shape:
        return as_variable(x)
    return SumTo(shape)(x)


class GetItem(Function):
    """``x[slices]``: basic and advanced indexing."""

    retain_inputs = ()

    def __init__(self, slices: Any) -> None:
        self.slices = slices

    def forward(self, x):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        return x[self.slices]

    def backward(self, gy):
        return GetItemGrad(self.slices, self.x_shape)(gy)

    def backward_array(self, gy):
        return _scatter_add(gy, self.slices, self.x_shape)


def _scatter_add(gy, slices, shape):
    xp = get_array_module(gy)
    gx = xp.zeros(shape, dtype=gy.dtype)
    if xp is np:
        np.add.at(gx, slices, gy)
    else:  # pragma: no cover - CuPy
        xp.add.at(gx, slices, gy)
    return gx


class GetItemGrad(Function):
    """The gradient of ``get_item``: scatter-add ``gy`` into zeros (repeated indices add up)."""

    retain_inputs = ()

    def __init__(self, slices: Any, in_shape: tuple) -> None:
        self.slices = slices
        self.in_shape = in_shape

    def forward(self, gy):
        return _scatter_add(gy, self.slices, self.in_shape)

    def backward(self, ggx):
        return get_item(ggx, self.slices)

    def backward_array(self, ggx):
        return ggx[self.slices]


def get_item(x: Any, slices: Any) -> Variable:
    """``x[slices]``; the gradient adds up over repeated indices."""
    if isinstance(slices, Variable):
        slices = slices.data
    elif isinstance(slices, list):
        slices = np.asarray(slices)
    return GetItem(slices)(x)
