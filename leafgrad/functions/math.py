"""Element-wise math: ``square exp log sin cos tanh sigmoid abs clip maximum minimum where``.

Each gradient is one formula, run on arrays by the first-order walk and on
Variables by the recorded one (see :mod:`leafgrad.ops`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from leafgrad import ops
from leafgrad.checks import ARRAY, BOUND, CONDITION, checked
from leafgrad.config import _enable_backprop
from leafgrad.core import Function, Variable, _operands
from leafgrad.cuda import array_types, get_array_module

__all__ = ["square", "exp", "log", "sin", "cos", "tanh", "sigmoid",
           "abs", "clip", "maximum", "minimum", "where",
           # DeZero's Function classes, with its constructor arguments
           "Exp", "Log", "Sin", "Cos", "Tanh", "Sigmoid", "Clip"]


class Square(Function):
    """``x ** 2``."""

    fresh_gradients = True

    retain_inputs = (0,)

    def forward(self, x):
        return x * x

    def backward(self, gy):
        x, = self.get_retained_inputs()
        return 2 * x * gy

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Mul(x, x)."""
        g.op("Mul", inputs[0], inputs[0], out=outputs[0])


@checked(x=ARRAY)
def square(x: Any) -> Variable:
    """``x ** 2`` element-wise."""
    return Square()(x)


class Exp(Function):
    """``exp(x)``; backward reads only the output."""

    float_inputs = (0,)
    fresh_gradients = True

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        y, = self.get_retained_outputs()
        return gy * y

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Exp."""
        g.op("Exp", *inputs, out=outputs[0])


@checked(x=ARRAY)
def exp(x: Any) -> Variable:
    """``exp(x)`` element-wise."""
    return Exp()(x)


class Log(Function):
    """Natural logarithm."""

    float_inputs = (0,)
    fresh_gradients = True

    retain_inputs = (0,)

    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        x, = self.get_retained_inputs()
        return gy / x

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Log."""
        g.op("Log", *inputs, out=outputs[0])


@checked(x=ARRAY)
def log(x: Any) -> Variable:
    """Natural logarithm element-wise."""
    return Log()(x)


class Sin(Function):
    """``sin(x)``."""

    float_inputs = (0,)
    fresh_gradients = True

    retain_inputs = (0,)

    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        x, = self.get_retained_inputs()
        return gy * ops.cos(x)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Sin."""
        g.op("Sin", *inputs, out=outputs[0])


@checked(x=ARRAY)
def sin(x: Any) -> Variable:
    """``sin(x)`` element-wise."""
    return Sin()(x)


class Cos(Function):
    """``cos(x)``."""

    float_inputs = (0,)
    fresh_gradients = True

    retain_inputs = (0,)

    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        x, = self.get_retained_inputs()
        return gy * -ops.sin(x)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Cos."""
        g.op("Cos", *inputs, out=outputs[0])


@checked(x=ARRAY)
def cos(x: Any) -> Variable:
    """``cos(x)`` element-wise."""
    return Cos()(x)


class Tanh(Function):
    """``tanh(x)``; backward reads only the output."""

    float_inputs = (0,)
    fresh_gradients = True

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y, = self.get_retained_outputs()
        return gy * (1 - y * y)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Tanh."""
        g.op("Tanh", *inputs, out=outputs[0])


@checked(x=ARRAY)
def tanh(x: Any) -> Variable:
    """``tanh(x)`` element-wise."""
    return Tanh()(x)


class Sigmoid(Function):
    """The logistic function, computed as ``0.5 * tanh(0.5 x) + 0.5`` (no overflow)."""

    float_inputs = (0,)
    fresh_gradients = True

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return ops.sigmoid(x)  # on an array: 0.5 * tanh(0.5 x) + 0.5

    def backward(self, gy):
        y, = self.get_retained_outputs()
        return gy * y * (1 - y)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Sigmoid."""
        g.op("Sigmoid", *inputs, out=outputs[0])


@checked(x=ARRAY)
def sigmoid(x: Any) -> Variable:
    """The logistic function ``1 / (1 + exp(-x))`` element-wise."""
    return Sigmoid()(x)


# =============================================================================
# Beyond DeZero: abs, clip, maximum, minimum, where
# =============================================================================
def _number(c: Any) -> Any:
    """A NumPy scalar as a Python number (a NumPy float64 would promote float32 arrays under NumPy 2)."""
    if isinstance(c, np.generic):
        return c.item()
    if isinstance(c, Variable):
        c = c.data
    if isinstance(c, array_types) and c.ndim == 0:
        return c.item()
    return c


class Abs(Function):
    """``|x|``; backward reads the sign of the input."""

    retain_inputs = (0,)

    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy):
        x, = self.get_retained_inputs()
        x = ops.data(x)  # the sign is a constant factor: its derivative is 0 (almost everywhere)
        return gy * get_array_module(x).sign(x)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Abs."""
        g.op("Abs", *inputs, out=outputs[0])


@checked(x=ARRAY)
def abs(x: Any) -> Variable:
    """``|x|`` element-wise (gradient ``sign(x)``, 0 at 0)."""
    return Abs()(x)


class Clip(Function):
    """``x`` limited to ``[x_min, x_max]``; backward keeps only a boolean mask, not ``x``."""

    retain_inputs = ()

    def __init__(self, x_min: Any, x_max: Any) -> None:
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x):
        xp = get_array_module(x)
        lo, hi = self.x_min, self.x_max
        y = xp.clip(x, lo, hi)
        if _enable_backprop.get():
            # the gradient passes where x_min <= x <= x_max, boundaries included (as in DeZero)
            if lo is None:
                mask = x <= hi
            elif hi is None:
                mask = x >= lo
            else:
                mask = x >= lo
                mask &= x <= hi
            self.save_for_backward(mask)
        return y

    def backward(self, gy):
        mask, = self.saved
        return gy * mask

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Clip, a missing bound left out."""
        x = inputs[0]
        bounds = [("" if c is None else g.scalar(c, x)) for c in (self.x_min, self.x_max)]
        g.op("Clip", x, *bounds, out=outputs[0])


@checked(x=ARRAY, x_min=BOUND, x_max=BOUND)
def clip(x: Any, x_min: Any, x_max: Any) -> Variable:
    """``x`` clipped to ``[x_min, x_max]`` element-wise (either bound may be None)."""
    x_min, x_max = _number(x_min), _number(x_max)
    if x_min is None and x_max is None:
        raise ValueError("clip: x_min and x_max cannot both be None")
    if isinstance(x_min, (int, float)) and isinstance(x_max, (int, float)) and x_min > x_max:
        raise ValueError(f"clip: x_min ({x_min}) is greater than x_max ({x_max})")
    return Clip(x_min, x_max)(x)


class Maximum(Function):
    """Element-wise ``maximum(x0, x1)`` with broadcasting; ties share the gradient equally (as PyTorch)."""

    retain_inputs = ()
    _ufunc = "maximum"
    _wins = "greater"

    def forward(self, x0, x1):
        xp = get_array_module(x0)
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        y = getattr(xp, self._ufunc)(x0, x1)
        if _enable_backprop.get():
            # share of the gradient that goes to x0: 1 where it wins, 1/2 on ties, 0 elsewhere
            w0 = getattr(xp, self._wins)(x0, x1)
            share = xp.empty(y.shape, dtype=y.dtype)
            share[...] = w0
            ties = x0 == x1
            if ties.any():
                share[xp.broadcast_to(ties, y.shape)] = 0.5
            self.save_for_backward(share)
        return y

    def backward(self, gy):
        share, = self.saved
        need0, need1 = self.needs_input_grad
        return (ops.sum_to(gy * share, self.x0_shape) if need0 else None,
                ops.sum_to(gy * (1 - share), self.x1_shape) if need1 else None)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Max (Min for ``minimum``)."""
        g.op("Max" if self._ufunc == "maximum" else "Min", *inputs, out=outputs[0])


class Minimum(Maximum):
    """Element-wise ``minimum(x0, x1)`` with broadcasting."""

    _ufunc = "minimum"
    _wins = "less"


def _check_broadcast(name: str, *shapes: tuple) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{name}: shapes {', '.join(str(tuple(s)) for s in shapes)} "
                         "cannot be broadcast together") from None


@checked(x0=ARRAY, x1=ARRAY)
def maximum(x0: Any, x1: Any) -> Variable:
    """Element-wise maximum of ``x0`` and ``x1`` (NumPy broadcasting; a scalar takes the other's dtype)."""
    x0, x1 = _operands(x0, x1)
    _check_broadcast("maximum", x0.shape, x1.shape)
    return Maximum()(x0, x1)


@checked(x0=ARRAY, x1=ARRAY)
def minimum(x0: Any, x1: Any) -> Variable:
    """Element-wise minimum of ``x0`` and ``x1`` (NumPy broadcasting; a scalar takes the other's dtype)."""
    x0, x1 = _operands(x0, x1)
    _check_broadcast("minimum", x0.shape, x1.shape)
    return Minimum()(x0, x1)


class Where(Function):
    """``condition ? x0 : x1`` element-wise; ``condition`` (input 0) is a constant boolean array."""

    retain_inputs = ()

    def forward(self, condition, x0, x1):
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        self.save_for_backward(condition)
        return get_array_module(x0).where(condition, x0, x1)

    def backward(self, gy):
        c, = self.saved
        _, need0, need1 = self.needs_input_grad
        return (None,
                ops.sum_to(ops.where(c, gy, 0.0), self.x0_shape) if need0 else None,
                ops.sum_to(ops.where(c, 0.0, gy), self.x1_shape) if need1 else None)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Where, the condition cast to bool if it is not."""
        c = inputs[0] if g.dtype(inputs[0]) == bool else g.op("Cast", inputs[0], to=9)  # 9: BOOL
        g.op("Where", c, inputs[1], inputs[2], out=outputs[0])


@checked(condition=CONDITION, x0=ARRAY, x1=ARRAY)
def where(condition: Any, x0: Any, x1: Any) -> Variable:
    """``x0`` where ``condition`` is true, else ``x1`` (like ``np.where`` / ``torch.where``, with broadcasting).

    ``condition`` is a boolean array (or a Variable holding one); it gets no gradient.
    """
    if isinstance(condition, Variable):
        condition = condition.data
    if not isinstance(condition, array_types):
        condition = np.asarray(condition)
    if condition.dtype != bool:
        condition = condition.astype(bool)
    x0, x1 = _operands(x0, x1)
    _check_broadcast("where", condition.shape, x0.shape, x1.shape)
    return Where()(condition, x0, x1)
