"""Reductions: ``sum max min``."""
from __future__ import annotations

from typing import Any

from leafgrad import utils
from leafgrad.core import Function, Variable
from leafgrad.cuda import get_array_module
from leafgrad.functions.shape import broadcast_to

__all__ = ["sum", "max", "min"]


class Sum(Function):
    """Sum over ``axis``."""

    retain_inputs = ()

    def __init__(self, axis: Any, keepdims: bool) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        y = x.sum(axis=self.axis, keepdims=self.keepdims)
        return get_array_module(x).asarray(y)

    def backward(self, gy):
        gy = utils.reshape_sum_backward(gy, self.x_shape, self.axis, self.keepdims)
        return broadcast_to(gy, self.x_shape)

    def backward_array(self, gy):
        gy = utils.reshape_sum_backward(gy, self.x_shape, self.axis, self.keepdims)
        return get_array_module(gy).broadcast_to(gy, self.x_shape)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Sum of ``x`` over ``axis`` (all axes when None)."""
    if isinstance(axis, list):
        axis = tuple(axis)
    return Sum(axis, keepdims)(x)


class Max(Function):
    """Maximum over ``axis``; the gradient goes to every position that holds the maximum."""

    retain_inputs = (0,)
    retain_outputs = (0,)
    _reduce = "max"

    def __init__(self, axis: Any = None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        y = getattr(x, self._reduce)(axis=self.axis, keepdims=self.keepdims)
        return get_array_module(x).asarray(y)

    def backward(self, gy):
        x, = self.inputs
        y = self.output_variable(0)
        shape = utils.max_backward_shape(x, self.axis)
        gy = gy.reshape(shape)
        y = y.reshape(shape)
        cond = x.data == y.data
        gy = broadcast_to(gy, cond.shape)
        return gy * cond

    def backward_array(self, gy):
        x = self.inputs[0].data
        shape = utils.max_backward_shape(x, self.axis)
        cond = x == self.output_data[0].reshape(shape)
        return gy.reshape(shape) * cond


class Min(Max):
    """Minimum over ``axis``."""

    _reduce = "min"


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Maximum of ``x`` over ``axis``."""
    return Max(axis, keepdims)(x)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Minimum of ``x`` over ``axis``."""
    return Min(axis, keepdims)(x)
