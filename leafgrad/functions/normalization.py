"""Normalization: ``batch_norm`` (and DeZero's spelling ``batch_nrom``) and ``layer_norm``.

Both are built on one function, ``Standardize``: ``xhat = (x - mean) / sqrt(var + eps)``
over some axes, with two outputs, ``inv_std = 1 / sqrt(var + eps)`` and ``xhat``.
Its backward is written entirely in terms of those two outputs, so it keeps
no copy of ``x``, and, being made of differentiable functions of graph-connected
outputs, it can be differentiated again.  The scale and shift (``gamma``,
``beta``) are ordinary ``*`` and ``+``.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from leafgrad.config import _train
from leafgrad.core import Function, Variable
from leafgrad.cuda import array_types, get_array_module
from leafgrad.functions._checks import shape_of
from leafgrad.functions.reduce import mean
from leafgrad.functions.shape import reshape

__all__ = ["batch_norm", "batch_nrom", "layer_norm"]


class Standardize(Function):
    """``(x - mean) * inv_std`` over ``axes``; outputs ``inv_std`` (kept dims) and ``xhat``.

    ``inv_std`` comes first: it normally gets no gradient, and a missing first
    gradient is what the engine tests for cheapest.

    ``self.mean`` and ``self.var`` hold the batch statistics after ``forward``
    until the caller takes them (``batch_norm`` updates its running averages with them).
    """

    retain_inputs = ()
    retain_outputs = (0, 1)

    def __init__(self, axes: tuple, eps: float) -> None:
        self.axes = axes
        self.eps = eps

    def forward(self, x):
        xp = get_array_module(x)
        mu = x.mean(axis=self.axes, keepdims=True)
        xc = x - mu
        var = xp.square(xc).mean(axis=self.axes, keepdims=True)
        inv_std = var + self.eps
        xp.sqrt(inv_std, out=inv_std)
        xp.reciprocal(inv_std, out=inv_std)
        xc *= inv_std
        self.n = x.size // mu.size if mu.size else 1
        self.mean, self.var = mu, var
        return inv_std, xc

    def take_stats(self) -> tuple:
        """The batch mean and (biased) variance of the last forward, then forgotten."""
        stats = self.mean, self.var
        self.mean = self.var = None
        return stats

    def backward_array(self, gr, gxh):
        r, xh = self.output_data
        axes = self.axes
        gx = gxh - gxh.mean(axis=axes, keepdims=True)
        gx -= xh * (gxh * xh).mean(axis=axes, keepdims=True)
        gx *= r
        if gr.any():  # inv_std was used downstream: d inv_std / dx = -inv_std**2 * xhat / n
            gx -= xh * (gr * r * r / self.n)
        return gx

    def backward(self, gr, gxh):
        r, xh = self.output_variable(0), self.output_variable(1)
        axes = self.axes
        gx = (gxh - mean(gxh, axes, keepdims=True) - xh * mean(gxh * xh, axes, keepdims=True)) * r
        return gx - xh * (gr * r * r / self.n)


def _array(name: str, label: str, a: Any, shape: tuple) -> Any:
    """A running-statistics array, checked against ``shape``."""
    data = a.data if isinstance(a, Variable) else a
    if not isinstance(data, array_types):
        raise TypeError(f"{name}: {label} must be an array updated in place, got {type(data).__name__}")
    if data.shape != shape:
        raise ValueError(f"{name}: {label} has shape {data.shape}, expected {shape}")
    return data


def batch_norm(x: Any, gamma: Any, beta: Any, mean: Any, var: Any,
               decay: float = 0.9, eps: float = 2e-5) -> Variable:
    """Batch normalization over every axis but the channel axis 1: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.

    In training mode (``Config.train``) it normalizes with the batch statistics
    and updates the running ``mean`` and ``var`` arrays in place
    (``running = decay * running + (1 - decay) * batch``, the variance unbiased);
    under ``test_mode()`` it normalizes with ``mean`` and ``var``.  ``gamma``,
    ``beta``, ``mean`` and ``var`` have shape ``(C,)``.
    """
    x_shape = shape_of(x)
    if len(x_shape) < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C) or (N, C, H, W), got shape {x_shape}")
    c = x_shape[1]
    for label, p in (("gamma", gamma), ("beta", beta)):
        if shape_of(p) != (c,):
            raise ValueError(f"batch_norm: {label} has shape {shape_of(p)}, expected ({c},) for an input "
                             f"of shape {x_shape}")
    running_mean = _array("batch_norm", "mean", mean, (c,))
    running_var = _array("batch_norm", "var", var, (c,))
    axes = (0,) + tuple(range(2, len(x_shape)))
    param_shape = (1, c) + (1,) * (len(x_shape) - 2)
    if len(x_shape) > 2:
        gamma, beta = reshape(gamma, param_shape), reshape(beta, param_shape)

    if _train.get():
        f = Standardize(axes, eps)
        _, xhat = f(x)
        batch_mean, batch_var = f.take_stats()
        m = int(np.prod(x_shape, dtype=np.int64)) // c  # values per channel
        adjust = m / (m - 1.0 if m - 1.0 > 1.0 else 1.0)  # unbiased variance, as DeZero
        running_mean *= decay
        running_mean += (1 - decay) * batch_mean.reshape(c)
        running_var *= decay
        running_var += (1 - decay) * adjust * batch_var.reshape(c)
    else:
        xp = get_array_module(running_var)
        inv_std = 1.0 / xp.sqrt(running_var + eps)
        xhat = (x - running_mean.reshape(param_shape)) * inv_std.reshape(param_shape)
    return xhat * gamma + beta


#: DeZero 0.0.13's spelling of ``batch_norm``.
batch_nrom = batch_norm


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
    f = Standardize(axes, eps)
    _, y = f(x)
    f.take_stats()
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y
