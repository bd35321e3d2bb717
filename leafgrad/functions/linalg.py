"""Matrix products: ``matmul`` (2-D, and batched N-D with broadcasting as ``np.matmul``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from leafgrad import ops
from leafgrad.checks import ARRAY, checked
from leafgrad.core import Function, Variable
from leafgrad.cuda import get_array_module

__all__ = ["matmul",
           # DeZero's Function classes, with its constructor arguments
           "MatMul"]


class MatMul(Function):
    """``x @ W``; for 2-D operands ``x.dot(W)``, otherwise ``np.matmul`` over broadcast batch axes."""

    fresh_gradients = True

    retain_inputs = (0, 1)

    def forward(self, x, W):
        if x.ndim == 2 and W.ndim == 2:
            return x.dot(W)
        return get_array_module(x).matmul(x, W)

    def backward(self, gy):
        x, W = self.get_retained_inputs()
        need_x, need_W = self.needs_input_grad
        if x.ndim == 2 and W.ndim == 2:
            return (ops.matmul(gy, ops.transpose(W)) if need_x else None,
                    ops.matmul(ops.transpose(x), gy) if need_W else None)
        # stacks of matrices: the batch axes of an operand that was broadcast are summed back
        gx = ops.sum_to(ops.matmul(gy, ops.transpose(W, _swap_last(W.ndim))), x.shape) if need_x else None
        gW = ops.sum_to(ops.matmul(ops.transpose(x, _swap_last(x.ndim)), gy), W.shape) if need_W else None
        return gx, gW

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): MatMul."""
        g.op("MatMul", *inputs, out=outputs[0])


def _swap_last(ndim: int) -> tuple:
    """Axes that swap the last two axes of an ``ndim``-D array."""
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


@checked(x=ARRAY, W=ARRAY)
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
