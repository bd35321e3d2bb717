"""Element-wise math: ``square exp log sin cos tanh sigmoid``.

Each backward comes twice: on Variables (``backward``, differentiable again)
and on arrays (``backward_array``, for first-order gradients).
"""
from __future__ import annotations

from typing import Any

from leafgrad.core import Function, Variable
from leafgrad.cuda import get_array_module

__all__ = ["square", "exp", "log", "sin", "cos", "tanh", "sigmoid"]


class Square(Function):
    """``x ** 2``."""

    retain_inputs = (0,)

    def forward(self, x):
        return x * x

    def backward(self, gy):
        x, = self.inputs
        return 2 * x * gy

    def backward_array(self, gy):
        return 2 * self.inputs[0].data * gy


def square(x: Any) -> Variable:
    """``x ** 2`` element-wise."""
    return Square()(x)


class Exp(Function):
    """``exp(x)``; backward reads only the output."""

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.output_variable(0)

    def backward_array(self, gy):
        return gy * self.output_data[0]


def exp(x: Any) -> Variable:
    """``exp(x)`` element-wise."""
    return Exp()(x)


class Log(Function):
    """Natural logarithm."""

    retain_inputs = (0,)

    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        x, = self.inputs
        return gy / x

    def backward_array(self, gy):
        return gy / self.inputs[0].data


def log(x: Any) -> Variable:
    """Natural logarithm element-wise."""
    return Log()(x)


class Sin(Function):
    """``sin(x)``."""

    retain_inputs = (0,)

    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * cos(x)

    def backward_array(self, gy):
        x = self.inputs[0].data
        return gy * get_array_module(x).cos(x)


def sin(x: Any) -> Variable:
    """``sin(x)`` element-wise."""
    return Sin()(x)


class Cos(Function):
    """``cos(x)``."""

    retain_inputs = (0,)

    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * -sin(x)

    def backward_array(self, gy):
        x = self.inputs[0].data
        return -gy * get_array_module(x).sin(x)


def cos(x: Any) -> Variable:
    """``cos(x)`` element-wise."""
    return Cos()(x)


class Tanh(Function):
    """``tanh(x)``; backward reads only the output."""

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output_variable(0)
        return gy * (1 - y * y)

    def backward_array(self, gy):
        y = self.output_data[0]
        return gy * (1 - y * y)


def tanh(x: Any) -> Variable:
    """``tanh(x)`` element-wise."""
    return Tanh()(x)


class Sigmoid(Function):
    """The logistic function, computed as ``0.5 * tanh(0.5 x) + 0.5`` (no overflow)."""

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        xp = get_array_module(x)
        y = xp.tanh(x * 0.5)
        y *= 0.5
        y += 0.5
        return y

    def backward(self, gy):
        y = self.output_variable(0)
        return gy * y * (1 - y)

    def backward_array(self, gy):
        y = self.output_data[0]
        return gy * y * (1 - y)


def sigmoid(x: Any) -> Variable:
    """The logistic function ``1 / (1 + exp(-x))`` element-wise."""
    return Sigmoid()(x)
