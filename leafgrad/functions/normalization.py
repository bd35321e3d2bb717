"""Normalization: ``batch_norm`` (and DeZero's spelling ``batch_nrom``) and ``layer_norm``.

Both are built on one function, ``Standardize``: over some axes, it computes
``xhat = (x - mean) / sqrt(var + eps)`` and outputs ``xhat``, ``mean`` and
``var`` (``batch_norm`` updates its running averages with the last two).  Its
backward reads only the outputs ``xhat`` and ``var``, so it keeps no copy of
``x``.  The scale and shift (``gamma``, ``beta``) are ordinary ``*`` and ``+``.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from leafgrad import ops
from leafgrad.checks import ARRAY, NUMBER, OPTIONAL_ARRAY, checked, shape_of
from leafgrad.config import _train
from leafgrad.core import Function, Variable, as_variable
from leafgrad.cuda import array_types, get_array_module
from leafgrad.functions.shape import reshape

__all__ = ["batch_norm", "batch_nrom", "layer_norm", "BatchNorm"]


def _mean(a: Any, axes: tuple) -> Any:
    """``mean(a, axes, keepdims=True)``; over the trailing axes of a C-contiguous NumPy array as one
    matrix-vector product (NumPy's reduction over short rows is several times slower)."""
    if (isinstance(a, np.ndarray) and a.flags.c_contiguous and a.dtype.kind == "f" and a.size
            and axes == tuple(range(a.ndim - len(axes), a.ndim))):
        lead = a.shape[:a.ndim - len(axes)]
        n = a.size // max(int(np.prod(lead, dtype=np.int64)), 1)
        return a.reshape(-1, n).dot(np.full(n, 1.0 / n, dtype=a.dtype)).reshape(lead + (1,) * len(axes))
    return ops.mean(a, axes, keepdims=True)


def _subtract_from(a: Any, b: Any) -> Any:
    """``a - b``, written into ``a`` when both are arrays (``a`` a fresh array of the caller's)."""
    if isinstance(a, array_types) and isinstance(b, array_types):
        a -= b
        return a
    return a - b


class Standardize(Function):
    """``xhat = (x - mean) / sqrt(var + eps)`` over ``axes``; outputs ``xhat``, ``mean`` and ``var``.

    ``mean`` and ``var`` (the biased variance) keep the reduced axes as 1.
    Each output may carry a gradient; usually only ``xhat`` does.
    """

    float_inputs = (0,)
    retain_inputs = ()
    retain_outputs = (0, 2)

    def __init__(self, axes: tuple, eps: float) -> None:
        self.axes = axes
        self.eps = eps

    def forward(self, x):
        xp = get_array_module(x)
        mu = _mean(x, self.axes)
        xhat = x - mu
        var = _mean(xp.square(xhat), self.axes)
        inv_std = var + self.eps
        xp.sqrt(inv_std, out=inv_std)
        xp.reciprocal(inv_std, out=inv_std)
        xhat *= inv_std
        self.x_shape = x.shape
        self.n = x.size // mu.size if mu.size else 1
        return xhat, mu, var

    def backward(self, gxhat, gmean, gvar):
        xhat, var = self.get_retained_outputs()
        inv_std = (var + self.eps) ** -0.5
        axes, n = self.axes, self.n
        terms = []
        if gxhat is not None:
            g = _subtract_from(gxhat - _mean(gxhat, axes), xhat * _mean(gxhat * xhat, axes))
            terms.append(ops.mul(g, inv_std, overwrite_a=True))
        if gmean is not None:  # d mean / dx = 1 / n
            terms.append(ops.broadcast_to(gmean * (1.0 / n), self.x_shape))
        if gvar is not None:   # d var / dx = 2 (x - mean) / n = 2 xhat / (n inv_std)
            terms.append(xhat * (gvar * (2.0 / n) / inv_std))
        gx = terms[0]
        for term in terms[1:]:
            gx = gx + term
        return gx

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): ReduceMean, Sub, Mul, ReduceMean, Add, Sqrt, Div: ``xhat``, ``mean``, ``var``."""
        x = inputs[0]
        xhat, mu, var = outputs
        g.reduce("ReduceMean", x, self.axes, True, mu)
        d = g.op("Sub", x, mu)
        g.reduce("ReduceMean", g.op("Mul", d, d), self.axes, True, var)
        g.op("Div", d, g.op("Sqrt", g.op("Add", var, g.scalar(self.eps, x))), out=xhat)


def _array(name: str, label: str, a: Any, shape: tuple) -> Any:
    """A running-statistics array, checked against ``shape``."""
    data = a.data if isinstance(a, Variable) else a
    if not isinstance(data, array_types):
        raise TypeError(f"{name}: {label} must be an array updated in place, got {type(data).__name__}")
    if data.shape != shape:
        raise ValueError(f"{name}: {label} has shape {data.shape}, expected {shape}")
    return data


@checked(x=ARRAY, gamma=ARRAY, beta=ARRAY, mean=ARRAY, var=ARRAY, decay=NUMBER, eps=NUMBER)
def batch_norm(x: Any, gamma: Any, beta: Any, mean: Any, var: Any,
               decay: float = 0.9, eps: float = 2e-5) -> Variable:
    """Batch normalization over every axis but the channel axis 1: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.

    In training mode (``Config.train``) it normalizes with the batch statistics
    and updates the running ``mean`` and ``var`` arrays in place
    (``running = decay * running + (1 - decay) * batch``, the variance unbiased);
    under ``test_mode()`` it normalizes with ``mean`` and ``var``.  ``gamma``,
    ``beta``, ``mean`` and ``var`` have shape ``(C,)``.
    """
    return _batch_norm("batch_norm", x, gamma, beta, mean, var, decay, eps)[0]


def _batch_norm(name: str, x: Any, gamma: Any, beta: Any, mean: Any, var: Any,
                decay: float, eps: float) -> tuple:
    """``batch_norm``, and the ``1 / sqrt(var + eps)`` of the batch in training (None under test mode)."""
    x_shape = shape_of(x)
    if len(x_shape) < 2:
        raise ValueError(f"{name}: expected an input of shape (N, C) or (N, C, H, W), got shape {x_shape}")
    c = x_shape[1]
    for label, p in (("gamma", gamma), ("beta", beta)):
        if shape_of(p) != (c,):
            raise ValueError(f"{name}: {label} has shape {shape_of(p)}, expected ({c},) for an input "
                             f"of shape {x_shape}")
    running_mean = _array(name, "mean", mean, (c,))
    running_var = _array(name, "var", var, (c,))
    axes = (0,) + tuple(range(2, len(x_shape)))
    param_shape = (1, c) + (1,) * (len(x_shape) - 2)
    if len(x_shape) > 2:
        gamma, beta = reshape(gamma, param_shape), reshape(beta, param_shape)

    batch_inv_std = None
    if _train.get():
        xhat, batch_mean, batch_var = Standardize(axes, eps)(x)
        m = int(np.prod(x_shape, dtype=np.int64)) // c  # values per channel
        adjust = m / (m - 1.0 if m - 1.0 > 1.0 else 1.0)  # unbiased variance, as DeZero
        running_mean *= decay
        running_mean += (1 - decay) * batch_mean.data.reshape(c)
        running_var *= decay
        running_var += (1 - decay) * adjust * batch_var.data.reshape(c)
        batch_inv_std = ((batch_var.data + eps) ** -0.5).reshape(c)
    else:
        xp = get_array_module(running_var)
        inv_std = 1.0 / xp.sqrt(running_var + eps)
        xhat = (as_variable(x) - running_mean.reshape(param_shape)) * inv_std.reshape(param_shape)
    return xhat * gamma + beta, batch_inv_std


class BatchNorm(Function):
    """DeZero's function object for batch normalization: ``BatchNorm(mean, var, decay, eps)(x, gamma, beta)``.

    ``avg_mean`` and ``avg_var`` are the running-statistics arrays given,
    updated in place in training; ``inv_std`` is ``1 / sqrt(var + eps)`` of the
    last training batch.  A call records ``batch_norm``'s graph (``Standardize``,
    a product and a sum), not a node of its own: its gradients, at every
    order, are theirs.
    """
    retain_inputs = ()  # records batch_norm's graph, not a node of its own

    def __init__(self, mean: Any, var: Any, decay: float, eps: float) -> None:
        self.avg_mean, self.avg_var = mean, var
        self.decay, self.eps = decay, eps
        self.inv_std = None

    def __call__(self, x: Any, gamma: Any, beta: Any) -> Variable:
        y, inv_std = _batch_norm("BatchNorm", x, gamma, beta, self.avg_mean, self.avg_var, self.decay, self.eps)
        if inv_std is not None:
            self.inv_std = inv_std
        return y


#: DeZero 0.0.13's spelling of ``batch_norm``.
batch_nrom = batch_norm


@checked(x=ARRAY, gamma=OPTIONAL_ARRAY, beta=OPTIONAL_ARRAY, eps=NUMBER)
def layer_norm(x: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5) -> Variable:
    """Layer normalization over the trailing axes that ``gamma`` spans (the last axis when ``gamma`` is None).

    ``gamma`` and ``beta`` have shape ``x.shape[-k:]``, as ``torch.nn.functional.layer_norm``'s
    ``weight`` and ``bias`` with ``normalized_shape = x.shape[-k:]``.
    """
    x_shape = shape_of(x)
    ref: Optional[tuple] = None
    for label, p in (("gamma", gamma), ("beta", beta)):
        if p is not None:
            s = shape_of(p)
            if ref is None:
                ref = s
            if s != ref or len(s) == 0 or len(s) > len(x_shape) or x_shape[len(x_shape) - len(s):] != s:
                raise ValueError(f"layer_norm: {label} has shape {s}, which is not the trailing shape of "
                                 f"an input of shape {x_shape}")
    k = len(ref) if ref is not None else 1
    if len(x_shape) < k or len(x_shape) == 0:
        raise ValueError(f"layer_norm: needs an input with at least one axis, got shape {x_shape}")
    axes = tuple(range(len(x_shape) - k, len(x_shape)))
    y, _, _ = Standardize(axes, eps)(x)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y
