"""Operations on arrays *or* Variables, for writing a gradient formula once.

A function's ``backward`` runs on two walks (see :mod:`leafgrad.engine`):

* the first-order walk gives it plain arrays, and it must be fast;
* the recorded walk (``backward(create_graph=True)``, ``leafgrad.grad(...,
  create_graph=True)``) gives it Variables, so that the gradient itself is a
  graph and can be differentiated again.

The arithmetic operators already work on both (``gy * y`` is an array product
or a ``Mul`` node).  For everything else a formula calls the helpers below:
each looks at what it was given and does the NumPy (or CuPy) thing with arrays,
and calls the differentiable function of :mod:`leafgrad.functions` with
Variables.  So ``Tanh.backward`` is one line, ``gy * (1 - y * y)``, and
``Sin.backward`` is ``gy * ops.cos(x)``, on both walks.

``call(node, *xs)`` does the same for a whole Function: on arrays it runs
``node.forward`` directly (no graph, no Variables); with Variables it records
``node``.  Heavy gradients live in the forward of such a small gradient
function (``Pooling2DGrad``, ``GetItemGrad``, ``Deconv2d``...), as in Chainer.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from leafgrad import core, utils
from leafgrad.cuda import array_types, get_array_module

__all__ = ["is_variable", "call", "sum_to", "broadcast_to", "reshape", "transpose", "sum", "mean",
           "matmul", "exp", "log", "sin", "cos", "tanh", "sigmoid", "where", "get_item", "concat",
           "mul", "data"]


def is_variable(*xs: Any) -> bool:
    """True when any of ``xs`` is a Variable: the formula is being recorded."""
    for x in xs:
        if isinstance(x, core.Variable):
            return True
    return False


def _F():
    import leafgrad.functions as F
    return F


def call(node: Any, *xs: Any) -> Any:
    """``node`` (a Function instance) applied to ``xs``: its forward on arrays, a recorded call on Variables."""
    if is_variable(*xs):
        return node(*xs)
    return node.forward(*xs)


# =============================================================================
# Shapes
# =============================================================================
def sum_to(x: Any, shape: tuple) -> Any:
    """Sum ``x`` down to ``shape`` (the reverse of broadcasting); ``x`` itself if it has that shape."""
    if x.shape == shape:
        return x
    if isinstance(x, core.Variable):
        return _F().sum_to(x, shape)
    return utils.sum_to(x, shape)


def broadcast_to(x: Any, shape: tuple) -> Any:
    """``x`` broadcast to ``shape`` (a read-only view on arrays)."""
    if isinstance(x, core.Variable):
        return _F().broadcast_to(x, shape)
    return get_array_module(x).broadcast_to(x, shape)


def reshape(x: Any, shape: tuple) -> Any:
    """``x`` with a new shape."""
    if isinstance(x, core.Variable):
        return _F().reshape(x, shape)
    return x.reshape(shape)


def transpose(x: Any, axes: Optional[Sequence[int]] = None) -> Any:
    """``x`` with its axes permuted (reversed when ``axes`` is None)."""
    if isinstance(x, core.Variable):
        return _F().transpose(x, axes)
    return x.transpose(axes)


def get_item(x: Any, slices: Any) -> Any:
    """``x[slices]``."""
    if isinstance(x, core.Variable):
        return _F().get_item(x, slices)
    return x[slices]


def concat(xs: Sequence[Any], axis: int) -> Any:
    """``xs`` joined along ``axis``."""
    if is_variable(*xs):
        return _F().concat(list(xs), axis)
    return get_array_module(xs[0]).concatenate(xs, axis=axis)


# =============================================================================
# Reductions and products
# =============================================================================
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Sum over ``axis`` (an array, never a NumPy scalar, on the array walk)."""
    if isinstance(x, core.Variable):
        return _F().sum(x, axis, keepdims)
    return get_array_module(x).asarray(x.sum(axis=axis, keepdims=keepdims))


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Mean over ``axis``, in ``x``'s floating dtype."""
    if isinstance(x, core.Variable):
        return _F().mean(x, axis, keepdims)
    return get_array_module(x).asarray(x.mean(axis=axis, keepdims=keepdims), dtype=x.dtype)


def matmul(a: Any, b: Any) -> Any:
    """The matrix product ``a @ b`` (``matmul``, not ``dot``: NumPy's ``dot`` zero-fills its result
    before BLAS overwrites it, one more pass over a weight-sized gradient)."""
    if is_variable(a, b):
        return _F().matmul(a, b)
    return get_array_module(a).matmul(a, b)


# =============================================================================
# Element-wise
# =============================================================================
def exp(x: Any) -> Any:
    """``exp(x)``."""
    if isinstance(x, core.Variable):
        return _F().exp(x)
    return get_array_module(x).exp(x)


def log(x: Any) -> Any:
    """Natural logarithm."""
    if isinstance(x, core.Variable):
        return _F().log(x)
    return get_array_module(x).log(x)


def sin(x: Any) -> Any:
    """``sin(x)``."""
    if isinstance(x, core.Variable):
        return _F().sin(x)
    return get_array_module(x).sin(x)


def cos(x: Any) -> Any:
    """``cos(x)``."""
    if isinstance(x, core.Variable):
        return _F().cos(x)
    return get_array_module(x).cos(x)


def tanh(x: Any) -> Any:
    """``tanh(x)``."""
    if isinstance(x, core.Variable):
        return _F().tanh(x)
    return get_array_module(x).tanh(x)


def sigmoid(x: Any) -> Any:
    """The logistic function, as ``0.5 * tanh(0.5 x) + 0.5`` (no overflow): ``Sigmoid``'s forward on arrays."""
    if isinstance(x, core.Variable):
        return _F().sigmoid(x)
    y = get_array_module(x).tanh(x * 0.5)
    y *= 0.5
    y += 0.5
    return y


def where(condition: Any, a: Any, b: Any) -> Any:
    """``a`` where the boolean array ``condition`` holds, else ``b`` (either may be a number)."""
    if is_variable(a, b):
        return _F().where(condition, a, b)
    return get_array_module(condition).where(condition, a, b)


def mul(a: Any, b: Any, overwrite_a: bool = False) -> Any:
    """``a * b``; with ``overwrite_a`` (arrays only) the product is written into ``a``."""
    if overwrite_a and isinstance(a, array_types):
        a *= b
        return a
    return a * b


def data(x: Any) -> Any:
    """The array of ``x``: a Variable's ``data``, or ``x`` itself (for a constant factor such as a sign)."""
    return x.data if isinstance(x, core.Variable) else x
