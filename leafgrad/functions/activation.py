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
from leafgrad.config import is_grad_enabled
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

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Relu."""
        g.op("Relu", *inputs, out=outputs[0])


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
            return np.maximum(x.reshape(-1, k), _zero_row(x.dtype, k)).reshape(x.shape)
    return get_array_module(x).maximum(x, 0)


def _zero_row(dtype: Any, n: int) -> np.ndarray:
    """``n`` zeros of ``dtype`` (read-only, from a row shared per dtype, grown as needed)."""
    zeros = _ZERO_ROWS.get(dtype)
    if zeros is None or zeros.size < n:
        zeros = _ZERO_ROWS[dtype] = np.zeros(max(n, _ZERO_ROW_LENGTH), dtype)
        zeros.flags.writeable = False
    return zeros[:n]


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
        if is_grad_enabled():
            self.save_for_backward(positive)
        return get_array_module(x).where(positive, x, x * self.slope)

    def backward(self, gy):
        positive, = self.saved
        xp = get_array_module(positive)
        dtype = gy.dtype.type
        return gy * xp.where(positive, dtype(1), dtype(self.slope))

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): LeakyRelu."""
        g.op("LeakyRelu", inputs[0], out=outputs[0], alpha=float(self.slope))


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
    retain_inputs = ()

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

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Softmax (spelled out over several axes)."""
        g.softmax(inputs[0], self.axis, outputs[0], log=False)


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
    retain_inputs = ()

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

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): LogSoftmax (spelled out over several axes)."""
        g.softmax(inputs[0], self.axis, outputs[0], log=True)


@checked(x=ARRAY, axis=AXIS)
def log_softmax(x: Any, axis: Any = 1) -> Variable:
    """``log(softmax(x))`` over ``axis`` (default 1), computed stably."""
    return LogSoftmax(normalize_axes("log_softmax", axis, shape_of(x)))(x)


# =============================================================================
# Beyond DeZero: gelu / elu / softplus / silu
# =============================================================================
_SQRT_2PI_INV = 1.0 / math.sqrt(2.0 * math.pi)
_LOG_SQRT_2PI_INV = math.log(_SQRT_2PI_INV)
_LOG2_E = 1.0 / math.log(2.0)
_LOG2_SQRT_2PI_INV = math.log2(_SQRT_2PI_INV)
_SQRT_2_INV = 1.0 / math.sqrt(2.0)
_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715
# Numerical Recipes' Chebyshev fit of erfc: for z >= 0, with t = 1 / (1 + z / 2),
# erfc(z) = t exp(-z^2 + P(t)) within a relative error of 1.2e-7.  The coefficients of P,
# highest power first; its constant term also carries the 1/2 of Phi(-|x|) = erfc(|x| / sqrt 2) / 2.
_ERFC_P = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
           0.09678418, 0.37409196, 1.00002368)
_ERFC_P0 = -1.26551223 + math.log(0.5)


# For float32 inputs a shorter fit, of Phi(-a) itself: with t = 1 / (1 + p a), a >= 0,
# Phi(-a) = t S(t) exp(-a^2 / 2), S of degree 6 (coefficients highest power first), fitted here
# for the least maximum relative error over 0 <= a <= 14: 7.7e-7 in exact arithmetic, in 23
# passes instead of the 31 of the float64 fit above.  Evaluated in float32 the result is within
# 2e-6 of Phi(-a) for a <= 6; further out float32's rounding of a^2 / 2 dominates (1e-5 at a = 13).
_PHI32_P = 0.362
_PHI32_S = (0.047940325418129495, -0.18001655888474682, 0.17662650607654573, 0.02882520886792512,
            0.13943195216212204, 0.14268890380899102, 0.1445039349081122)


#: Elements per chunk of the element-wise kernels below: a chunk and its scratch arrays stay in
#: a core's L2 cache, so each of the many passes reads cache, not main memory.
_CHUNK = 65536


def _by_chunks(kernel, xs: tuple, n_scratch: int, masks: int = 0):
    """``y = kernel(*xs)`` computed chunk by chunk: ``kernel(*x_parts, y_part, *scratch_parts)`` writes ``y_part``.

    The inputs ``xs`` have the shape of the first (the others are broadcast to it).  On NumPy
    the flattened arrays go through in chunks of ``_CHUNK`` elements with ``n_scratch`` reusable
    scratch arrays (and ``masks`` boolean ones, after them); on CuPy in one piece.
    """
    x0 = xs[0]
    xp = get_array_module(x0)
    shape = x0.shape
    flat = [xp.ascontiguousarray(xp.broadcast_to(x, shape)).reshape(-1) for x in xs]
    y = xp.empty(flat[0].shape, dtype=flat[0].dtype)
    n = y.size
    chunk = min(n, _CHUNK) if xp is np else n
    scratch = [xp.empty(chunk, dtype=y.dtype) for _ in range(n_scratch)]
    scratch += [xp.empty(chunk, dtype=bool) for _ in range(masks)]
    for s in range(0, n, max(chunk, 1)):
        e = min(s + chunk, n)
        kernel(*[x[s:e] for x in flat], y[s:e], *[b[:e - s] for b in scratch])
    return y.reshape(shape)


def _lower_tail(a, t, p, half_sq, xp):
    """Into ``p``: ``Phi(-a)`` for ``a = |x|``; into ``half_sq``: ``a^2 / 2``; ``t`` is scratch."""
    xp.multiply(a, 0.5 * _SQRT_2_INV, out=t)   # z / 2 with z = a / sqrt(2)
    t += 1.0
    xp.divide(1.0, t, out=t)
    xp.multiply(t, _ERFC_P[0], out=p)
    for c in _ERFC_P[1:]:
        p += c
        p *= t
    p += _ERFC_P0
    xp.multiply(a, a, out=half_sq)
    half_sq *= 0.5                               # z^2
    p -= half_sq
    xp.exp(p, out=p)
    p *= t


def _lower_tail32(a, t, p, e, xp):
    """``_lower_tail`` with float32's fit (``_PHI32_S``); ``e`` is scratch."""
    xp.add(a, 1.0 / _PHI32_P, out=t)
    xp.divide(1.0 / _PHI32_P, t, out=t)          # 1 / (1 + p a) in two passes
    xp.multiply(t, _PHI32_S[0], out=p)
    for c in _PHI32_S[1:]:
        p += c
        p *= t
    xp.multiply(a, a, out=e)
    e *= -0.5 * _LOG2_E
    xp.exp2(e, out=e)                            # exp(-a^2 / 2); NumPy's exp2 is the faster loop
    p *= e


def _gelu_exact_kernel(x, y, a, t, p):
    """``x Phi(x)`` as ``max(x, 0) - |x| Phi(-|x|)`` (no cancellation in either tail)."""
    xp = get_array_module(x)
    xp.abs(x, out=a)
    (_lower_tail32 if x.dtype == np.float32 else _lower_tail)(a, t, p, y, xp)
    a *= p
    if xp is np:   # against a row of zeros: NumPy's vectorized loop (see _relu_array)
        np.maximum(x, _zero_row(x.dtype, x.size), out=y)
    else:  # pragma: no cover - CuPy
        xp.maximum(x, 0, out=y)
    y -= a


def _gelu_exact_grad_kernel(x, gy, d, a, t, p):
    """``gy (Phi(x) + x phi(x))``, the gradient of ``x Phi(x)``."""
    xp = get_array_module(x)
    xp.abs(x, out=a)
    _lower_tail(a, t, p, d, xp)                  # p = Phi(-|x|), d = x^2 / 2
    xp.subtract(_LOG_SQRT_2PI_INV, d, out=d)
    xp.exp(d, out=d)
    d *= x                                       # x phi(x)
    p -= 0.5
    xp.sign(x, out=a)
    p *= a
    xp.subtract(0.5, p, out=p)                   # Phi(x) = 1/2 + sign(x) (1/2 - Phi(-|x|))
    d += p
    d *= gy


#: Below this ``x^2``, ``Phi(x)`` is 1/2 to working precision and ``y / x`` is not used.
_TINY_SQ = 1e-36


def _gelu_exact_grad_from_output_kernel(x, gy, y, d, sq, usable):
    """``gy (Phi(x) + x phi(x))`` with ``Phi(x) = y / x`` read from the forward's output ``y = x Phi(x)``."""
    xp = get_array_module(x)
    xp.multiply(x, x, out=sq)
    if xp is np and sq.size and sq.min() > _TINY_SQ:   # the usual chunk: no x near 0, no mask
        np.divide(y, x, out=d)
    elif xp is np:
        np.greater(sq, _TINY_SQ, out=usable)
        d.fill(0.5)
        np.divide(y, x, out=d, where=usable)      # Phi(x); 1/2 where x is (nearly) 0
    else:  # pragma: no cover - CuPy
        xp.greater(sq, _TINY_SQ, out=usable)
        d[...] = xp.where(usable, y / xp.where(usable, x, 1), 0.5)
    sq *= -0.5 * _LOG2_E
    sq += _LOG2_SQRT_2PI_INV
    xp.exp2(sq, out=sq)                           # phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    sq *= x                                       # x phi(x)
    d += sq
    d *= gy


def _gelu_tanh_kernel(x, y):
    """``x (1 + tanh(k (x + c x^3))) / 2``."""
    xp = get_array_module(x)
    xp.multiply(x, x, out=y)
    y *= _GELU_C * _GELU_K
    y += _GELU_K
    y *= x
    xp.tanh(y, out=y)
    y += 1.0
    y *= x
    y *= 0.5


def _gelu_tanh_grad_kernel(x, gy, d, t, slope):
    """``gy ((1 + t) / 2 + x (1 - t^2) u' / 2)`` with ``t = tanh(u)``, ``u = k (x + c x^3)``."""
    xp = get_array_module(x)
    xp.multiply(x, x, out=t)
    xp.multiply(t, 1.5 * _GELU_C * _GELU_K, out=slope)  # u' / 2
    slope += 0.5 * _GELU_K
    slope *= x
    t *= _GELU_C * _GELU_K
    t += _GELU_K
    t *= x
    xp.tanh(t, out=t)
    xp.multiply(t, t, out=d)
    xp.subtract(1.0, d, out=d)
    slope *= d
    xp.multiply(t, 0.5, out=d)
    d += 0.5
    d += slope
    d *= gy


class GELU(Function):
    """``x * Phi(x)`` (exact) or its tanh approximation; backward keeps the input (and, exact form,
    the output: in a network the next layer keeps it too, so it costs nothing more there).

    Forward and gradient are in-place passes over cache-sized chunks (NumPy pays one pass
    per ufunc: over a chunk in L2 cache rather than over the whole array in memory).  The
    gradient is the forward of ``GELUGrad``, whose own backward gives the higher orders.
    """

    float_inputs = (0,)
    retain_inputs = (0,)
    fresh_gradients = True

    def __init__(self, approximate: str) -> None:
        self.approximate = approximate
        if approximate == "none":
            self.retain_outputs = (0,)

    def forward(self, x):
        if self.approximate == "tanh":
            return _by_chunks(_gelu_tanh_kernel, (x,), 0)
        return _by_chunks(_gelu_exact_kernel, (x,), 3)

    def backward(self, gy):
        x, = self.get_retained_inputs()
        if self.approximate == "none":  # Phi(x) = y / x: the output spares the erf
            y, = self.get_retained_outputs()
            return ops.call(GELUGradFromOutput("none"), x, gy, ops.data(y))
        return ops.call(GELUGrad(self.approximate), x, gy)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): ``x Phi(x)`` with Erf, or the tanh formula (opset 18 has no Gelu)."""
        x = inputs[0]
        if self.approximate == "tanh":
            cube = g.op("Mul", g.op("Mul", x, x), x)
            inner = g.op("Add", x, g.op("Mul", cube, g.scalar(0.044715, x)))
            t = g.op("Tanh", g.op("Mul", inner, g.scalar(math.sqrt(2.0 / math.pi), x)))
        else:
            t = g.op("Erf", g.op("Mul", x, g.scalar(1.0 / math.sqrt(2.0), x)))
        half_x = g.op("Mul", x, g.scalar(0.5, x))
        g.op("Add", half_x, g.op("Mul", half_x, t), out=outputs[0])


class GELUGrad(Function):
    """The gradient of GELU, ``gy * gelu'(x)``, from ``x`` and ``gy`` (one pass over cache-sized chunks).

    Its own backward: ``g * gy * gelu''(x)`` for ``x`` and ``GELUGrad(x, g)`` for ``gy``.
    """

    float_inputs = (0, 1)
    retain_inputs = (0, 1)
    fresh_gradients = True

    def __init__(self, approximate: str) -> None:
        self.approximate = approximate

    def forward(self, x, gy):
        if self.approximate == "tanh":
            return _by_chunks(_gelu_tanh_grad_kernel, (x, gy), 2)
        return _by_chunks(_gelu_exact_grad_kernel, (x, gy), 3)

    def backward(self, g):
        x, gy = self.get_retained_inputs()
        need_x, need_gy = self.needs_input_grad[0], self.needs_input_grad[1]
        gx = ggy = None
        if need_x:
            if self.approximate == "tanh":
                t = ops.tanh((x + x * x * x * _GELU_C) * _GELU_K)
                du = (1 + x * x * (3 * _GELU_C)) * _GELU_K   # u'
                ddu = x * (6 * _GELU_C * _GELU_K)            # u''
                second = (1 - t * t) * (du + 0.5 * x * (ddu - 2 * t * du * du))
            else:  # (Phi + x phi)' = 2 phi - x^2 phi
                second = ops.exp(x * x * -0.5) * _SQRT_2PI_INV * (2 - x * x)
            gx = g * gy * second
        if need_gy:
            ggy = ops.call(GELUGrad(self.approximate), x, g)
        return gx, ggy


class GELUGradFromOutput(GELUGrad):
    """``GELUGrad(x, gy)`` given also GELU's output ``y`` (a constant): ``Phi(x) = y / x`` needs no erf.

    Exact form only.  Its value does not depend on ``y`` beyond that shortcut, so ``y`` gets
    no gradient; its backward is ``GELUGrad``'s.
    """
    retain_inputs = (0, 1)

    def forward(self, x, gy, y):
        return _by_chunks(_gelu_exact_grad_from_output_kernel, (x, gy, y), 1, masks=1)

    def backward(self, g):
        return super().backward(g) + (None,)


@checked(x=ARRAY, approximate=choice("none", "tanh"))
def gelu(x: Any, approximate: str = "none") -> Variable:
    """Gaussian error linear unit ``x * Phi(x)``, as ``torch.nn.functional.gelu``.

    ``approximate="none"`` uses the normal CDF (fits of erfc relative to the value itself, tails
    included: about 1e-7 in float64, 2e-6 in float32 for x >= -6); ``"tanh"`` uses
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
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
        if is_grad_enabled():
            self.save_for_backward(positive)
        neg = xp.expm1(xp.minimum(x, 0))
        neg *= self.alpha
        return xp.where(positive, x, neg)

    def backward(self, gy):
        y, = self.get_retained_outputs()
        positive, = self.saved
        return gy * ops.where(positive, 1.0, y + self.alpha)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Elu."""
        g.op("Elu", inputs[0], out=outputs[0], alpha=float(self.alpha))


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

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Softplus(beta x) / beta."""
        x = inputs[0]
        y = g.op("Softplus", g.op("Mul", x, g.scalar(self.beta, x)))
        g.op("Div", y, g.scalar(self.beta, x), out=outputs[0])


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

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): x * Sigmoid(x)."""
        g.op("Mul", inputs[0], g.op("Sigmoid", inputs[0]), out=outputs[0])


@checked(x=ARRAY)
def silu(x: Any) -> Variable:
    """Sigmoid linear unit (swish) ``x * sigmoid(x)`` element-wise."""
    return SiLU()(x)
