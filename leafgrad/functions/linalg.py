"""Matrix products: ``matmul`` (2-D, and batched N-D with broadcasting as ``np.matmul``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from leafgrad import utils
from leafgrad.core import Function, Variable
from leafgrad.cuda import get_array_module

__all__ = ["matmul"]


class MatMul(Function):
    """``x @ W``; for 2-D operands ``x.dot(W)``, otherwise ``np.matmul`` over broadcast batch axes."""

    fresh_gradients = True

    retain_inputs = (0, 1)

    def forward(self, x, W):
        if x.ndim == 2 and W.ndim == 2:
            return x.dot(W)
        return get_array_module(x).matmul(x, W)

    def backward(self, gy):
        x, W = self.inputs
        ex, eW = self._edges
        if x.ndim == 2 and W.ndim == 2:
            gx = None if ex is None else matmul(gy, W.T)
            gW = None if eW is None else matmul(x.T, gy)
            return gx, gW
        from leafgrad.functions.shape import sum_to, transpose
        gx = None if ex is None else sum_to(matmul(gy, transpose(W, _swap_last(W.ndim))), x.shape)
        gW = None if eW is None else sum_to(matmul(transpose(x, _swap_last(x.ndim)), gy), W.shape)
        return gx, gW

    def backward_array(self, gy):
        x, W = self.inputs[0].data, self.inputs[1].data
        ex, eW = self._edges
        if x.ndim == 2 and W.ndim == 2:
            gx = None if ex is None else gy.dot(W.T)
            gW = None if eW is None else x.T.dot(gy)
            return gx, gW
        xp = get_array_module(gy)
        gx = None if ex is None else utils.sum_to(xp.matmul(gy, xp.swapaxes(W, -1, -2)), x.shape)
        gW = None if eW is None else utils.sum_to(xp.matmul(xp.swapaxes(x, -1, -2), gy), W.shape)
        return gx, gW


def _swap_last(ndim: int) -> tuple:
    """Axes that swap the last two axes of an ``ndim``-D array."""
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


def matmul(x: Any, W: Any) -> Variable:
    """The matrix product ``x @ W``.

    Two 2-D operands ``(m, k) @ (k, n)`` as in DeZero; operands with more axes
    are stacks of matrices whose leading (batch) axes broadcast, as in
    ``np.matmul`` and ``torch.matmul``.
    """
    xs, ws = getattr(x, "shape", None), getattr(W, "shape", None)
    if xs is None or ws is None or len(xs) < 2 or len(ws) < 2 or xs[-1] != ws[-2]:
        raise ValueError(f"matmul: shapes {xs} and {ws} are not aligned "
                         "(expected (m, k) @ (k, n), or stacks (..., m, k) @ (..., k, n))")
    if len(xs) > 2 or len(ws) > 2:
        try:
            np.broadcast_shapes(xs[:-2], ws[:-2])
        except ValueError:
            raise ValueError(f"matmul: the batch axes of shapes {xs} and {ws} do not broadcast") from None
    return MatMul()(x, W)
