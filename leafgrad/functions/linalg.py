"""Matrix products: ``matmul``."""
from __future__ import annotations

from typing import Any

from leafgrad.core import Function, Variable

__all__ = ["matmul"]


class MatMul(Function):
    """``x @ W`` for 2-D operands."""

    retain_inputs = (0, 1)

    def forward(self, x, W):
        return x.dot(W)

    def backward(self, gy):
        x, W = self.inputs
        gx = matmul(gy, W.T)
        gW = matmul(x.T, gy)
        return gx, gW

    def backward_array(self, gy):
        x, W = self.inputs
        ex, eW = self._edges
        gx = None if ex is None else gy.dot(W.data.T)
        gW = None if eW is None else x.data.T.dot(gy)
        return gx, gW


def matmul(x: Any, W: Any) -> Variable:
    """The matrix product ``x @ W`` of two 2-D operands."""
    xs, ws = getattr(x, "shape", None), getattr(W, "shape", None)
    if xs is None or ws is None or len(xs) != 2 or len(ws) != 2 or xs[1] != ws[0]:
        raise ValueError(f"matmul: shapes {xs} and {ws} are not aligned "
                         "(expected (m, k) @ (k, n))")
    return MatMul()(x, W)
