"""Reductions: ``sum max min mean average var logsumexp``.

Every reduction takes NumPy's ``axis`` (None, an int, or a tuple; negative
axes count from the end) and ``keepdims``; an axis out of range raises an
error that names the function and the input's shape.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from leafgrad import ops, utils
from leafgrad.checks import ARRAY, AXIS, BOOL, INT, OPTIONAL_ARRAY, checked, normalize_axes, shape_of
from leafgrad.config import _enable_backprop
from leafgrad.core import Function, Variable
from leafgrad.cuda import get_array_module
from leafgrad.functions.shape import reshape

__all__ = ["sum", "max", "min", "mean", "average", "var", "logsumexp",
           # DeZero's Function classes, with its constructor arguments
           "Sum", "Max", "Min"]

Axis = Union[None, int, Sequence[int]]


def _axes(axes: Any, ndim: int) -> tuple:
    """``axes`` (None, an int or a tuple, possibly negative) as a tuple of non-negative ints."""
    if axes is None:
        return tuple(range(ndim))
    if not isinstance(axes, (tuple, list)):
        axes = (axes,)
    return tuple(a % ndim if ndim else a for a in axes)


def _kept_shape(x_shape: tuple, axes: Any) -> tuple:
    """The shape of a reduction over ``axes`` with ``keepdims=True``."""
    axes = _axes(axes, len(x_shape))
    return tuple(1 if i in axes else s for i, s in enumerate(x_shape))


def _reduced_shape(x_shape: tuple, axes: Any) -> tuple:
    """The shape of a reduction over ``axes`` with ``keepdims=False``."""
    axes = _axes(axes, len(x_shape))
    return tuple(s for i, s in enumerate(x_shape) if i not in axes)


def _count(x_shape: tuple, axes: Any) -> int:
    """How many elements each output of a reduction over ``axes`` gathers."""
    axes = _axes(axes, len(x_shape))
    return int(np.prod([x_shape[a] for a in axes], dtype=np.int64))


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
        return ops.broadcast_to(gy, self.x_shape)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): ReduceSum."""
        g.reduce("ReduceSum", inputs[0], self.axis, self.keepdims, outputs[0])


@checked(x=ARRAY, axis=AXIS, keepdims=BOOL)
def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Sum of ``x`` over ``axis`` (all axes when None)."""
    if axis is not None:
        axis = normalize_axes("sum", axis, shape_of(x))
    return Sum(axis, keepdims)(x)


class Max(Function):
    """Maximum over ``axis``; the gradient goes to every position that holds the maximum.

    Backward keeps only a boolean mask of those positions, not ``x`` nor the result.
    """

    retain_inputs = ()
    _reduce = "max"

    def __init__(self, axis: Any = None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        y = getattr(x, self._reduce)(axis=self.axis, keepdims=True)
        y = get_array_module(x).asarray(y)
        self.kept_shape = y.shape
        if _enable_backprop.get():
            self.save_for_backward(x == y)
        if not self.keepdims:
            y = y.reshape(_reduced_shape(x.shape, self.axis))
        return y

    def backward(self, gy):
        at_extremum, = self.saved
        return ops.reshape(gy, self.kept_shape) * at_extremum

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): ReduceMax (ReduceMin for ``min``)."""
        g.reduce("ReduceMax" if self._reduce == "max" else "ReduceMin", inputs[0], self.axis, self.keepdims, outputs[0])


class Min(Max):
    """Minimum over ``axis``."""

    _reduce = "min"


def _extremum(cls: type, x: Any, axis: Axis, keepdims: bool) -> Variable:
    """``Max`` or ``Min`` (``cls``) of ``x`` over ``axis``; an empty reduction is an error, as in NumPy."""
    name = cls._reduce
    x_shape = shape_of(x)
    axes = normalize_axes(name, axis, x_shape)
    if 0 in x_shape and _count(x_shape, axes) == 0:
        raise ValueError(f"{name}: cannot reduce an empty input of shape {x_shape}")
    return cls(axes, keepdims)(x)


@checked(x=ARRAY, axis=AXIS, keepdims=BOOL)
def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Maximum of ``x`` over ``axis``."""
    return _extremum(Max, x, axis, keepdims)


@checked(x=ARRAY, axis=AXIS, keepdims=BOOL)
def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Minimum of ``x`` over ``axis``."""
    return _extremum(Min, x, axis, keepdims)


class Mean(Function):
    """Arithmetic mean over ``axis``; backward keeps nothing."""

    retain_inputs = ()

    def __init__(self, axis: Optional[tuple], keepdims: bool) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        self.n = _count(x.shape, self.axis)
        return get_array_module(x).asarray(x.mean(axis=self.axis, keepdims=self.keepdims))

    def backward(self, gy):
        gy = ops.reshape(gy, _kept_shape(self.x_shape, self.axis)) / self.n
        return ops.broadcast_to(gy, self.x_shape)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): ReduceMean."""
        g.reduce("ReduceMean", inputs[0], self.axis, self.keepdims, outputs[0])


@checked(x=ARRAY, axis=AXIS, keepdims=BOOL)
def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Arithmetic mean of ``x`` over ``axis`` (all axes when None), like ``np.mean`` / ``torch.mean``."""
    axes = normalize_axes("mean", axis, shape_of(x))
    return Mean(axes, keepdims)(x)


@checked(x=ARRAY, axis=AXIS, weights=OPTIONAL_ARRAY, keepdims=BOOL)
def average(x: Any, axis: Axis = None, weights: Any = None, keepdims: bool = False) -> Variable:
    """Mean of ``x`` over ``axis``, weighted by ``weights`` when given (as ``np.average``).

    ``weights`` has ``x``'s shape, or, with an int ``axis``, is 1-D with length ``x.shape[axis]``.
    It may be a Variable, in which case it gets a gradient too.
    """
    if weights is None:
        return mean(x, axis, keepdims)
    x_shape = shape_of(x)
    axes = normalize_axes("average", axis, x_shape)
    w_shape = shape_of(weights)
    same_shape = w_shape == x_shape
    if not same_shape:
        if axes is None or len(axes) != 1 or len(w_shape) != 1 or w_shape[0] != x_shape[axes[0]]:
            raise ValueError(f"average: weights of shape {w_shape} do not fit an input of shape {x_shape} "
                             f"and axis {axis} (give x's shape, or 1-D weights of the axis' length)")
        weights = reshape(weights, tuple(-1 if i == axes[0] else 1 for i in range(len(x_shape))))
    norm = sum(weights, axes, keepdims) if same_shape else sum(weights, None, False)
    if isinstance(norm.data, np.ndarray) and not norm.data.all():  # (not read from a GPU: no wait)
        raise ValueError(f"average: the weights sum to zero (over axis {axis}), "
                         "so the weighted mean is undefined")
    return sum(x * weights, axes, keepdims) / norm


class Var(Function):
    """Variance over ``axis`` with ``ddof``; backward reads the input."""

    retain_inputs = (0,)

    def __init__(self, axis: Optional[tuple], keepdims: bool, ddof: int) -> None:
        self.axis = axis
        self.keepdims = keepdims
        self.ddof = ddof

    def forward(self, x):
        self.scale = 2.0 / (_count(x.shape, self.axis) - self.ddof)
        return get_array_module(x).asarray(x.var(axis=self.axis, keepdims=self.keepdims, ddof=self.ddof))

    def backward(self, gy):
        x, = self.get_retained_inputs()
        centered = x - ops.mean(x, self.axis, keepdims=True)
        return ops.reshape(gy, _kept_shape(x.shape, self.axis)) * centered * self.scale


@checked(x=ARRAY, axis=AXIS, keepdims=BOOL, ddof=INT)
def var(x: Any, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Variable:
    """Variance of ``x`` over ``axis`` (``np.var``: ``ddof=0`` by default; PyTorch's default is ``ddof=1``)."""
    x_shape = shape_of(x)
    axes = normalize_axes("var", axis, x_shape)
    if _count(x_shape, axes) - ddof <= 0:
        raise ValueError(f"var: ddof={ddof} leaves no degrees of freedom for an input of shape {x_shape} "
                         f"reduced over axis {axis}")
    return Var(axes, keepdims, ddof)(x)


class LogSumExp(Function):
    """``log(sum(exp(x)))`` over ``axis``, without overflow; backward reads the input and the result."""

    float_inputs = (0,)
    retain_inputs = (0,)
    retain_outputs = (0,)

    def __init__(self, axis: Optional[tuple], keepdims: bool) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        xp = get_array_module(x)
        m = xp.asarray(x.max(axis=self.axis, keepdims=True))
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))  # all -inf (or an inf): shift by 0 there
        e = xp.asarray(x - m)  # a 0-d difference comes back as a scalar
        xp.exp(e, out=e)
        s = xp.asarray(e.sum(axis=self.axis, keepdims=True))
        with np.errstate(divide="ignore"):  # log(0) = -inf is the answer for all -inf inputs
            y = xp.log(s)
        y += m
        self.kept_shape = y.shape
        if not self.keepdims:
            y = y.reshape(_reduced_shape(x.shape, self.axis))
        return y

    def backward(self, gy):
        x, y = self.get_retained_inputs() + self.get_retained_outputs()
        return ops.reshape(gy, self.kept_shape) * ops.exp(x - ops.reshape(y, self.kept_shape))

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): ReduceLogSumExp."""
        g.reduce("ReduceLogSumExp", inputs[0], self.axis, self.keepdims, outputs[0])


@checked(x=ARRAY, axis=AXIS, keepdims=BOOL)
def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """``log(sum(exp(x), axis))`` computed stably (finite for inputs of any magnitude)."""
    x_shape = shape_of(x)
    axes = normalize_axes("logsumexp", axis, x_shape)
    if _count(x_shape, axes) == 0:
        raise ValueError(f"logsumexp: cannot reduce an empty input of shape {x_shape}")
    return LogSumExp(axes, keepdims)(x)

