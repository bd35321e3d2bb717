"""Neural-network building blocks: ``linear linear_simple dropout embed_id``."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from leafgrad import utils
from leafgrad.config import _train
from leafgrad.core import Function, Variable, as_variable
from leafgrad.cuda import array_types, get_array_module
from leafgrad.functions._checks import shape_of
from leafgrad.functions.linalg import matmul
from leafgrad.functions.shape import get_item, reshape, sum_to, transpose

__all__ = ["linear", "linear_simple", "dropout", "embed_id"]


# =============================================================================
# linear
# =============================================================================
class Linear(Function):
    """Fused ``x @ W + b`` (``b`` optional).

    Backward keeps ``x`` and ``W`` (not ``b``, not the output) and computes
    ``gW = x.T @ gy``, ``gx = gy @ W.T`` and ``gb = gy.sum(0)`` only for the
    inputs that need a gradient: a constant input batch costs no ``gx``.
    """

    fresh_gradients = True

    retain_inputs = (0, 1)

    def forward(self, x, W, b=None):
        y = x.dot(W)
        if b is not None:
            self.b_shape = b.shape
            y += b
        return y

    def backward_array(self, gy):
        x, W = self.inputs[0].data, self.inputs[1].data
        edges = self._edges
        gx = None if edges[0] is None else gy.dot(W.T)
        gW = None
        if edges[1] is not None:
            if x.ndim == 2:
                gW = x.T.dot(gy)
            else:  # a stack of rows: (..., in) -> (rows, in)
                gW = x.reshape(-1, x.shape[-1]).T.dot(gy.reshape(-1, gy.shape[-1]))
        if len(edges) == 2:
            return gx, gW
        gb = None
        if edges[2] is not None:
            if gy.ndim == 2 and len(self.b_shape) == 1:
                gb = gy.sum(axis=0)
            else:
                gb = utils.sum_to(gy, self.b_shape)
        return gx, gW, gb

    def backward(self, gy):
        x, W = self.inputs[0], self.inputs[1]
        edges = self._edges
        gx = None if edges[0] is None else linear(gy, transpose(W))
        gW = None
        if edges[1] is not None:
            if x.ndim == 2:
                gW = matmul(transpose(x), gy)
            else:
                gW = matmul(transpose(reshape(x, (-1, x.shape[-1]))), reshape(gy, (-1, gy.shape[-1])))
        if len(edges) == 2:
            return gx, gW
        gb = None if edges[2] is None else sum_to(gy, self.b_shape)
        return gx, gW, gb


def _linear_error(x_shape: tuple, w_shape: tuple, b_shape: Optional[tuple]) -> Optional[str]:
    if len(w_shape) != 2:
        return f"W must be 2-D (in, out), got shape {w_shape}"
    if len(x_shape) == 0 or x_shape[-1] != w_shape[0]:
        return (f"x of shape {x_shape} and W of shape {w_shape} do not match "
                f"(x.shape[-1] must equal W.shape[0] = {w_shape[0]})")
    if b_shape is not None and b_shape != (w_shape[1],):
        out = x_shape[:-1] + (w_shape[1],)
        try:
            ok = tuple(np.broadcast_shapes(out, b_shape)) == out
        except ValueError:
            ok = False
        if not ok:
            return f"b of shape {b_shape} does not broadcast to the output shape {out}"
    return None


def linear(x: Any, W: Any, b: Any = None) -> Variable:
    """``x @ W + b`` in one function; ``x`` is ``(N, in)`` (or ``(..., in)``), ``W`` is ``(in, out)``."""
    b_shape = None if b is None else shape_of(b)
    message = _linear_error(shape_of(x), shape_of(W), b_shape)
    if message is not None:
        raise ValueError("linear: " + message)
    if b is None:
        return Linear()(x, W)
    return Linear()(x, W, b)


def linear_simple(x: Any, W: Any, b: Any = None) -> Variable:
    """``matmul(x, W) + b`` as two functions (the book's first version; prefer ``linear``).

    The product's array is not kept by ``+``, so it is freed as soon as this returns.
    """
    x, W = as_variable(x), as_variable(W)
    t = matmul(x, W)
    if b is None:
        return t
    return t + b


# =============================================================================
# dropout
# =============================================================================
class Dropout(Function):
    """``x * mask / (1 - ratio)``; backward keeps only the boolean mask."""

    retain_inputs = ()

    def __init__(self, mask: Any, scale: Any) -> None:
        self.mask = mask  # drawn by ``dropout`` before the call, in DeZero's order
        self.scale = scale  # 1 - ratio, as a 0-d array in x's dtype

    def forward(self, x):
        mask, self.mask = self.mask, None
        self.save_for_backward(mask)
        y = x * mask
        y /= self.scale
        return y

    def backward(self, gy):
        return gy * self.saved[0] / self.scale

    def backward_array(self, gy):
        gx = gy * self.saved[0]
        gx /= self.scale
        return gx


def dropout(x: Any, dropout_ratio: float = 0.5) -> Variable:
    """Inverted dropout: in training mode (``Config.train``) zero each element with probability
    ``dropout_ratio`` and scale the rest by ``1 / (1 - dropout_ratio)``; under ``test_mode()``, ``x`` itself.

    The mask is drawn as ``np.random.rand(*x.shape) > dropout_ratio``, as in
    DeZero, so a seeded program draws the same numbers.
    """
    x = as_variable(x)
    if not 0.0 <= dropout_ratio < 1.0:
        raise ValueError(f"dropout: dropout_ratio must be in [0, 1), got {dropout_ratio}")
    if not _train.get():
        return x
    xp = get_array_module(x.data)
    mask = xp.random.rand(*x.shape) > dropout_ratio
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    scale = xp.array(1.0 - dropout_ratio).astype(dtype)
    return Dropout(mask, scale)(x)


# =============================================================================
# embed_id
# =============================================================================
def embed_id(x: Any, W: Any) -> Variable:
    """Rows of the embedding matrix ``W`` picked by the integer ids ``x`` (``W[x]``).

    The gradient adds up over repeated ids; ``W`` itself is not kept for backward.
    """
    ids = x.data if isinstance(x, Variable) else x
    if not isinstance(ids, array_types):
        ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embed_id: ids must be integers, got dtype {ids.dtype}")
    w_shape = shape_of(W)
    if len(w_shape) < 1:
        raise ValueError(f"embed_id: W must have at least one axis, got shape {w_shape}")
    if ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= w_shape[0]:
            bad = lo if lo < 0 else hi
            raise IndexError(f"embed_id: id {bad} is outside [0, {w_shape[0]}) for W of shape {w_shape}")
    return get_item(W, ids)
