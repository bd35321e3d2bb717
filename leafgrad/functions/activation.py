"""Activation functions: ``sigmoid sigmoid_simple relu leaky_relu softmax softmax_simple log_softmax``
and, beyond DeZero, ``gelu elu softplus silu``.

Where the derivative can be written from the output (relu, leaky_relu,
softmax, log_softmax, elu, softplus, sigmoid), backward keeps only the output,
so the pre-activation array dies as soon as the user drops it.
"""
from __future__ import annotations

import math
from typing import Any

from leafgrad.core import Function, Variable, as_variable
from leafgrad.cuda import get_array_module
from leafgrad.functions._checks import normalize_axes, shape_of
from leafgrad.functions.math import exp, sigmoid, tanh
from leafgrad.functions.reduce import sum

__all__ = ["sigmoid", "sigmoid_simple", "relu", "leaky_relu", "softmax", "softmax_simple",
           "log_softmax", "gelu", "elu", "softplus", "silu"]


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

    def forward(self, x):
        return get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        return gy * (self.output_data[0] > 0)

    def backward_array(self, gy):
        return gy * (self.output_data[0] > 0)

    def backward_array_inplace(self, gy):
        # gy belongs to the engine alone: mask it where it lies (as hand-written NumPy does)
        gy *= self.output_data[0] > 0
        return gy


def relu(x: Any) -> Variable:
    """Rectified linear unit ``max(x, 0)`` element-wise."""
    return ReLU()(x)


class LeakyReLU(Function):
    """``x`` for ``x > 0``, ``slope * x`` otherwise.

    For ``slope >= 0`` the sign of the output tells the branch, so only the
    output is kept; a negative slope keeps the input instead.
    """

    retain_inputs = ()
    retain_outputs = (0,)

    def __init__(self, slope: float) -> None:
        self.slope = slope
        if slope < 0:
            self.retain_inputs = (0,)
            self.retain_outputs = ()

    def forward(self, x):
        return get_array_module(x).where(x > 0, x, x * self.slope)

    def _factor(self):
        """``1`` where ``x > 0``, ``slope`` elsewhere, in the gradient's dtype."""
        ref = self.output_data[0] if self.slope >= 0 else self.inputs[0].data
        xp = get_array_module(ref)
        return xp.where(ref > 0, ref.dtype.type(1), ref.dtype.type(self.slope))

    def backward(self, gy):
        return gy * self._factor()

    def backward_array(self, gy):
        return gy * self._factor()


def leaky_relu(x: Any, slope: float = 0.2) -> Variable:
    """Leaky ReLU: ``x`` where ``x > 0``, ``slope * x`` elsewhere."""
    return LeakyReLU(float(slope))(x)


# =============================================================================
# softmax / log_softmax
# =============================================================================
class _OverAxis(Function):
    """Base of ``Softmax`` and ``LogSoftmax``: an ``axis``, and a backward that keeps only the output."""

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
        y = self.output_variable(0)
        gx = y * gy
        return gx - y * sum(gx, self.axis, keepdims=True)

    def backward_array(self, gy):
        y = self.output_data[0]
        gx = y * gy
        gx -= y * gx.sum(axis=self.axis, keepdims=True)
        return gx


def softmax(x: Any, axis: Any = 1) -> Variable:
    """Softmax over ``axis`` (default 1, the class axis of a batch), stable for inputs of any magnitude."""
    return Softmax(normalize_axes("softmax", axis, shape_of(x)))(x)


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
        y = self.output_variable(0)
        return gy - exp(y) * sum(gy, self.axis, keepdims=True)

    def backward_array(self, gy):
        xp = get_array_module(gy)
        gx = xp.exp(self.output_data[0])
        gx *= gy.sum(axis=self.axis, keepdims=True)
        xp.subtract(gy, gx, out=gx)
        return gx


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

    retain_inputs = (0,)

    def forward(self, x):
        return _normal_cdf(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * exp(x * x * -0.5) * _SQRT_2PI_INV

    def backward_array(self, gy):
        x = self.inputs[0].data
        g = x * x
        g *= -0.5
        get_array_module(x).exp(g, out=g)
        g *= _SQRT_2PI_INV
        g *= gy
        return g


class GELU(Function):
    """``x * Phi(x)`` (exact) or its tanh approximation; backward reads the input."""

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
        x, = self.inputs
        if self.approximate == "tanh":
            t = tanh((x + x * x * x * _GELU_C) * _GELU_K)
            dinner = (1 + x * x * (3 * _GELU_C)) * _GELU_K
            return gy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner)
        return gy * (NormalCdf()(x) + x * exp(x * x * -0.5) * _SQRT_2PI_INV)

    def backward_array(self, gy):
        xp = get_array_module(gy)
        x = self.inputs[0].data
        if self.approximate == "tanh":
            x2 = x * x
            t = xp.tanh((x + x * x2 * _GELU_C) * _GELU_K)
            dinner = (1.0 + x2 * (3 * _GELU_C)) * _GELU_K
            g = (1.0 - t * t) * dinner
            g *= x
            g += 1.0 + t
            g *= 0.5
            g *= gy
            return g
        pdf = x * x
        pdf *= -0.5
        xp.exp(pdf, out=pdf)
        pdf *= _SQRT_2PI_INV
        pdf *= x
        pdf += _normal_cdf(x)
        pdf *= gy
        return pdf


def gelu(x: Any, approximate: str = "none") -> Variable:
    """Gaussian error linear unit ``x * Phi(x)``, as ``torch.nn.functional.gelu``.

    ``approximate="none"`` uses the normal CDF (an erf fit accurate to about
    1e-7, float32 precision); ``"tanh"`` uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU(approximate)(x)


class ELU(Function):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise; backward keeps only the output when ``alpha >= 0``."""

    retain_inputs = ()
    retain_outputs = (0,)

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        if alpha < 0:  # then the output's sign no longer tells the branch
            self.retain_inputs = (0,)

    def forward(self, x):
        xp = get_array_module(x)
        neg = xp.expm1(xp.minimum(x, 0))
        neg *= self.alpha
        return xp.where(x > 0, x, neg)

    def _positive(self):
        ref = self.output_data[0] if self.alpha >= 0 else self.inputs[0].data
        return ref > 0

    def backward(self, gy):
        y = self.output_variable(0)
        pos = self._positive()
        return gy * ((y + self.alpha) * ~pos + pos)

    def backward_array(self, gy):
        xp = get_array_module(gy)
        y = self.output_data[0]
        return gy * xp.where(self._positive(), y.dtype.type(1), y + self.alpha)


def elu(x: Any, alpha: float = 1.0) -> Variable:
    """Exponential linear unit: ``x`` where ``x > 0``, ``alpha * (exp(x) - 1)`` elsewhere."""
    return ELU(float(alpha))(x)


class Softplus(Function):
    """``log(1 + exp(beta x)) / beta``, stably; backward keeps only the output.

    The derivative ``sigmoid(beta x)`` equals ``1 - exp(-beta y)`` (computed as ``-expm1``).
    """

    retain_inputs = ()
    retain_outputs = (0,)

    def __init__(self, beta: float) -> None:
        self.beta = beta

    def forward(self, x):
        xp = get_array_module(x)
        bx = x * self.beta if self.beta != 1.0 else x
        y = -xp.abs(bx)
        xp.exp(y, out=y)
        xp.log1p(y, out=y)
        y += xp.maximum(bx, 0)
        if self.beta != 1.0:
            y /= self.beta
        return y

    def backward(self, gy):
        y = self.output_variable(0)
        return gy * (1 - exp(y * -self.beta))

    def backward_array(self, gy):
        xp = get_array_module(gy)
        g = self.output_data[0] * -self.beta
        xp.expm1(g, out=g)
        g *= gy
        xp.negative(g, out=g)
        return g


def softplus(x: Any, beta: float = 1.0) -> Variable:
    """Softplus ``log(1 + exp(beta x)) / beta`` element-wise, finite for inputs of any magnitude."""
    beta = float(beta)
    if beta <= 0:
        raise ValueError(f"softplus: beta must be positive, got {beta}")
    return Softplus(beta)(x)


class SiLU(Function):
    """``x * sigmoid(x)`` (swish); backward reads the input."""

    retain_inputs = (0,)

    def forward(self, x):
        xp = get_array_module(x)
        s = xp.tanh(x * 0.5)
        s *= 0.5
        s += 0.5
        s *= x
        return s

    def backward(self, gy):
        x, = self.inputs
        s = sigmoid(x)
        return gy * (s * (1 + x * (1 - s)))

    def backward_array(self, gy):
        xp = get_array_module(gy)
        x = self.inputs[0].data
        s = xp.tanh(x * 0.5)
        s *= 0.5
        s += 0.5
        g = 1.0 - s
        g *= x
        g += 1.0
        g *= s
        g *= gy
        return g


def silu(x: Any) -> Variable:
    """Sigmoid linear unit (swish) ``x * sigmoid(x)`` element-wise."""
    return SiLU()(x)
