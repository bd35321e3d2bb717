"""Activation functions: ``sigmoid sigmoid_simple relu leaky_relu softmax softmax_simple log_softmax``
and, beyond DeZero, ``gelu elu softplus silu``.

Where the derivative can be written from the output (relu, softmax,
log_softmax, elu, softplus, sigmoid), backward keeps only the output, so the
pre-activation array dies as soon as the user drops it; leaky_relu keeps only a
boolean mask.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from leafgrad import ops
from leafgrad.checks import ARRAY, AXIS, NUMBER, checked, choice, normalize_axes, shape_of
from leafgrad.config import _enable_backprop
from leafgrad.core import Function, Variable, as_variable
from leafgrad.cuda import get_array_module
from leafgrad.functions.math import exp, sigmoid
from leafgrad.functions.reduce import sum

__all__ = ["sigmoid", "sigmoid_simple", "relu", "leaky_relu", "softmax", "softmax_simple",
           "log_softmax", "gelu", "elu", "softplus", "silu",
           # DeZero's Function classes, with its constructor arguments
           "ReLU", "LeakyReLU", "Softmax", "LogSoftmax"]


@checked(x=ARRAY)
def sigmoid_simple(x: Any) -> Variable:
    """The logistic function written with ``exp`` (the book's first version; prefer ``sigmoid``)."""
    x = as_variable(x)
    return 1 / (1 + exp(-x))


# =============================================================================
# relu / leaky_relu
# =============================================================================
class ReLU(Function):
    """``max(x, 0)``; backward keeps only the output (``x > 0`` exactly where ``y > 0``)."""

    retain_inputs = ()
    retain_outputs = (0,)
    fresh_gradients = True
    overwrites_gy = True

    def forward(self, x):
        return _relu_array(x)

    def backward(self, gy):
        # The mask is a constant factor.  When the walk hands us a gy that nobody else
        # holds, it is masked where it lies, as hand-written NumPy does (no new array).
        y, = self.get_retained_outputs()
        return ops.mul(gy, ops.data(y) > 0, overwrite_a=self.may_overwrite_gy)


#: Rows of zeros, one per float dtype, for _relu_array (read-only, shared).
_ZERO_ROWS: dict = {}
_ZERO_ROW_LENGTH = 8192


def _relu_array(x: Any) -> Any:
    """``max(x, 0)`` on an array.

    NumPy's ``maximum`` runs its vectorized loop only when both operands advance:
    against the scalar 0 it is 2-3x slower (NumPy 1.26 and 2.4 alike).  So a
    contiguous NumPy float array is compared row by row, viewed as ``(-1, k)``,
    with a row of ``k`` zeros (``k`` up to 8192, dividing its size); same result.
    """
    if type(x) is np.ndarray and x.dtype.kind == "f" and x.flags.c_contiguous:
        k = _ZERO_ROW_LENGTH
        while k >= 256 and x.size % k:
            k //= 2
        if k >= 256 and x.size >= k:
            zeros = _ZERO_ROWS.get(x.dtype)
            if zeros is None:
                zeros = _ZERO_ROWS[x.dtype] = np.zeros(_ZERO_ROW_LENGTH, x.dtype)
                zeros.flags.writeable = False
            return np.maximum(x.reshape(-1, k), zeros[:k]).reshape(x.shape)
    return get_array_module(x).maximum(x, 0)


@checked(x=ARRAY)
def relu(x: Any) -> Variable:
    """Rectified linear unit ``max(x, 0)`` element-wise."""
    return ReLU()(x)


class LeakyReLU(Function):
    """``x`` for ``x > 0``, ``slope * x`` otherwise; backward keeps only the boolean mask ``x > 0``."""

    retain_inputs = ()

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def forward(self, x):
        positive = x > 0
        if _enable_backprop.get():
            self.save_for_backward(positive)
        return get_array_module(x).where(positive, x, x * self.slope)

    def backward(self, gy):
        positive, = self.saved
        xp = get_array_module(positive)
        dtype = gy.dtype.type
        return gy * xp.where(positive, dtype(1), dtype(self.slope))


@checked(x=ARRAY, slope=NUMBER)
def leaky_relu(x: Any, slope: float = 0.2) -> Variable:
    """Leaky ReLU: ``x`` where ``x > 0``, ``slope * x`` elsewhere."""
    return LeakyReLU(float(slope))(x)


# =============================================================================
# softmax / log_softmax
# =============================================================================
class _OverAxis(Function):
    """Base of ``Softmax`` and ``LogSoftmax``: an ``axis``, and a backward that keeps only the output."""

    float_inputs = (0,)
    retain_inputs = ()
    retain_outputs = (0,)

    def __init__(self, axis: Any = 1) -> None:
        self.axis = axis


class Softmax(_OverAxis):
    """``exp(x) / sum(exp(x))`` over ``axis``, shifted by the maximum; backward keeps only the output."""

    def forward(self, x):
        xp = get_array_module(x)
        y = x - x.max(axis=self.axis, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        return y

    def backward(self, gy):
        y, = self.get_retained_outputs()
        gx = y * gy
        return gx - y * ops.sum(gx, self.axis, keepdims=True)


@checked(x=ARRAY, axis=AXIS)
def softmax(x: Any, axis: Any = 1) -> Variable:
    """Softmax over ``axis`` (default 1, the class axis of a batch), stable for inputs of any magnitude."""
    return Softmax(normalize_axes("softmax", axis, shape_of(x)))(x)


@checked(x=ARRAY, axis=AXIS)
def softmax_simple(x: Any, axis: Any = 1) -> Variable:
    """Softmax written with ``exp`` and ``sum`` (the book's first version: overflows for large inputs)."""
    x = as_variable(x)
    y = exp(x)
    return y / sum(y, axis=axis, keepdims=True)


class LogSoftmax(_OverAxis):
    """``x - logsumexp(x)`` over ``axis``; backward keeps only the output."""

    def forward(self, x):
        xp = get_array_module(x)
        m = x.max(axis=self.axis, keepdims=True)
        y = x - m
        s = xp.exp(y).sum(axis=self.axis, keepdims=True)
        xp.log(s, out=s)
        y -= s
        return y

    def backward(self, gy):
        y, = self.get_retained_outputs()
        return gy - ops.exp(y) * ops.sum(gy, self.axis, keepdims=True)


@checked(x=ARRAY, axis=AXIS)
def log_softmax(x: Any, axis: Any = 1) -> Variable:
    """``log(softmax(x))`` over ``axis`` (default 1), computed stably."""
    return LogSoftmax(normalize_axes("log_softmax", axis, shape_of(x)))(x)


# =============================================================================
# Beyond DeZero: gelu / elu / softplus / silu
# =============================================================================
_SQRT_2PI_INV = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_INV = 1.0 / math.sqrt(2.0)
_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def _erfc_nonneg(z, xp):
    """``erfc(z)`` for ``z >= 0`` (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7)."""
    t = 1.0 / (1.0 + 0.5 * z)
    poly = 0.17087277
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
              0.09678418, 0.37409196, 1.00002368, -1.26551223):
        poly = c + t * poly
    return t * xp.exp(poly - z * z)


def _normal_cdf(x):
    """The standard normal CDF ``Phi(x) = erfc(-x / sqrt(2)) / 2``, in ``x``'s dtype."""
    xp = get_array_module(x)
    z = xp.abs(x) * _SQRT_2_INV
    half_tail = 0.5 * _erfc_nonneg(z, xp)  # Phi(-|x|)
    return xp.where(x >= 0, 1.0 - half_tail, half_tail).astype(x.dtype, copy=False)


class NormalCdf(Function):
    """``Phi(x)``, the standard normal CDF; its derivative is the normal density."""

    float_inputs = (0,)
    retain_inputs = (0,)

    def forward(self, x):
        return _normal_cdf(x)

    def backward(self, gy):
        x, = self.get_retained_inputs()
        return gy * ops.exp(x * x * -0.5) * _SQRT_2PI_INV


class GELU(Function):
    """``x * Phi(x)`` (exact) or its tanh approximation; backward reads the input."""

    float_inputs = (0,)
    retain_inputs = (0,)

    def __init__(self, approximate: str) -> None:
        self.approximate = approximate

    def forward(self, x):
        xp = get_array_module(x)
        if self.approximate == "tanh":
            inner = x * x
            inner *= _GELU_C
            inner += 1.0
            inner *= x
            inner *= _GELU_K
            y = xp.tanh(inner)
            y += 1.0
            y *= x
            y *= 0.5
            return y
        return x * _normal_cdf(x)

    def backward(self, gy):
        x, = self.get_retained_inputs()
        if self.approximate == "tanh":
            t = ops.tanh((x + x * x * x * _GELU_C) * _GELU_K)
            inner_grad = (1 + x * x * (3 * _GELU_C)) * _GELU_K
            return gy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner_grad)
        density = ops.exp(x * x * -0.5) * _SQRT_2PI_INV
        return gy * (ops.call(NormalCdf(), x) + x * density)


@checked(x=ARRAY, approximate=choice("none", "tanh"))
def gelu(x: Any, approximate: str = "none") -> Variable:
    """Gaussian error linear unit ``x * Phi(x)``, as ``torch.nn.functional.gelu``.

    ``approximate="none"`` uses the normal CDF (an erf fit accurate to about
    1e-7, float32 precision); ``"tanh"`` uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU(approximate)(x)


class ELU(Function):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Backward keeps the output (the derivative is ``y + alpha`` where ``x <= 0``)
    and the boolean mask ``x > 0``.
    """

    float_inputs = (0,)
    retain_inputs = ()
    retain_outputs = (0,)

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def forward(self, x):
        xp = get_array_module(x)
        positive = x > 0
        if _enable_backprop.get():
            self.save_for_backward(positive)
        neg = xp.expm1(xp.minimum(x, 0))
        neg *= self.alpha
        return xp.where(positive, x, neg)

    def backward(self, gy):
        y, = self.get_retained_outputs()
        positive, = self.saved
        return gy * ops.where(positive, 1.0, y + self.alpha)


@checked(x=ARRAY, alpha=NUMBER)
def elu(x: Any, alpha: float = 1.0) -> Variable:
    """Exponential linear unit: ``x`` where ``x > 0``, ``alpha * (exp(x) - 1)`` elsewhere."""
    return ELU(float(alpha))(x)


class Softplus(Function):
    """``log(1 + exp(beta x)) / beta``, stably; backward keeps only the output.

    The derivative ``sigmoid(beta x)`` equals ``1 - exp(-beta y)``.
    """

    float_inputs = (0,)
    retain_inputs = ()
    retain_outputs = (0,)

    def __init__(self, beta: float) -> None:
        self.beta = beta

    def forward(self, x):
        xp = get_array_module(x)
        bx = x * self.beta if self.beta != 1.0 else x
        y = xp.asarray(-xp.abs(bx))  # (an array even for a 0-d input: written in place below)
        xp.exp(y, out=y)
        xp.log1p(y, out=y)
        y += xp.maximum(bx, 0)
        if self.beta != 1.0:
            y /= self.beta
        return y

    def backward(self, gy):
        y, = self.get_retained_outputs()
        return gy * (1 - ops.exp(y * -self.beta))  # sigmoid(beta x), from the output


@checked(x=ARRAY, beta=NUMBER)
def softplus(x: Any, beta: float = 1.0) -> Variable:
    """Softplus ``log(1 + exp(beta x)) / beta`` element-wise, finite for inputs of any magnitude."""
    beta = float(beta)
    if beta <= 0:
        raise ValueError(f"softplus: beta must be positive, got {beta}")
    return Softplus(beta)(x)


class SiLU(Function):
    """``x * sigmoid(x)`` (swish); backward reads the input."""

    float_inputs = (0,)
    retain_inputs = (0,)

    def forward(self, x):
        s = ops.sigmoid(x)
        s *= x
        return s

    def backward(self, gy):
        x, = self.get_retained_inputs()
        s = ops.sigmoid(x)
        return gy * (s * (1 + x * (1 - s)))


@checked(x=ARRAY)
def silu(x: Any) -> Variable:
    """Sigmoid linear unit (swish) ``x * sigmoid(x)`` element-wise."""
    return SiLU()(x)
