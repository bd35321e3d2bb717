"""Neural-network building blocks: ``linear linear_simple dropout embed_id``."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from leafgrad import ops
from leafgrad.checks import ARRAY, LABELS, NUMBER, OPTIONAL_ARRAY, check_labels, checked, shape_of
from leafgrad.config import _enable_backprop, _train
from leafgrad.core import Function, Variable, as_variable
from leafgrad.cuda import array_types, get_array_module
from leafgrad.functions.linalg import matmul

__all__ = ["linear", "linear_simple", "dropout", "embed_id",
           # DeZero's Function classes, with its constructor arguments
           "Linear"]


# =============================================================================
# linear
# =============================================================================
class Linear(Function):
    """Fused ``x @ W + b`` (``b`` optional).

    An input with more than two axes ``(..., in)`` is multiplied as one ``(rows, in)``
    matrix, forward and backward (one BLAS call; ``ndarray.dot`` on 3-D has none).
    Backward keeps ``x`` and ``W`` (not ``b``, not the output) and computes
    ``gW = x.T @ gy``, ``gx = gy @ W.T`` and ``gb = gy.sum(0)`` only for the
    inputs that need a gradient: a constant input batch costs no ``gx``.
    """

    fresh_gradients = True

    retain_inputs = (0, 1)

    def forward(self, x, W, b=None):
        if x.ndim > 2:  # (..., in) as one (rows, in) product: ndarray.dot has no BLAS path past 2-D
            y = x.reshape(-1, x.shape[-1]).dot(W).reshape(x.shape[:-1] + (W.shape[1],))
        else:
            y = x.dot(W)
        if b is not None:
            self.b_shape = b.shape
            y += b
        return y

    def backward(self, gy):
        x, W = self.get_retained_inputs()
        need = self.needs_input_grad
        gx = gW = None
        if gy.ndim > 2:  # a stack of rows: (..., out) -> (rows, out), one 2-D product each
            gy2 = ops.reshape(gy, (-1, gy.shape[-1]))
            if need[0]:
                gx = ops.reshape(ops.matmul(gy2, ops.transpose(W)), x.shape)
            if need[1]:
                gW = ops.matmul(ops.transpose(ops.reshape(x, (-1, x.shape[-1]))), gy2)
        else:
            if need[0]:
                gx = ops.matmul(gy, ops.transpose(W))
            if need[1]:
                gW = ops.matmul(ops.transpose(x), gy)
        if len(need) == 2:
            return gx, gW
        return gx, gW, (ops.sum_to(gy, self.b_shape) if need[2] else None)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): MatMul, then Add of the bias if any."""
        x, W, b = (list(inputs) + [""])[:3]
        if not b:
            g.op("MatMul", x, W, out=outputs[0])
        else:
            g.op("Add", g.op("MatMul", x, W), b, out=outputs[0])


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


@checked(x=ARRAY, W=ARRAY, b=OPTIONAL_ARRAY)
def linear(x: Any, W: Any, b: Any = None) -> Variable:
    """``x @ W + b`` in one function; ``x`` is ``(N, in)`` (or ``(..., in)``), ``W`` is ``(in, out)``."""
    b_shape = None if b is None else shape_of(b)
    message = _linear_error(shape_of(x), shape_of(W), b_shape)
    if message is not None:
        raise ValueError("linear: " + message)
    if b is None:
        return Linear()(x, W)
    return Linear()(x, W, b)


@checked(x=ARRAY, W=ARRAY, b=OPTIONAL_ARRAY)
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
    """``x * mask / (1 - ratio)``, the mask drawn in ``forward``; backward keeps only the mask.

    The mask is ``xp.random.rand(*x.shape) > ratio``, as in DeZero, so a seeded
    program draws the same numbers.
    """

    float_inputs = (0,)
    retain_inputs = ()
    fresh_gradients = True

    def __init__(self, dropout_ratio: float) -> None:
        self.dropout_ratio = dropout_ratio

    def forward(self, x):
        xp = get_array_module(x)
        mask = xp.random.rand(*x.shape) > self.dropout_ratio
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
        scale = xp.array(1.0 - self.dropout_ratio).astype(dtype)  # DeZero's rounding of 1 - ratio
        self.save_for_backward(mask, scale)
        y = x * mask
        y /= scale
        return y

    def backward(self, gy):
        mask, scale = self.saved
        return gy * mask / scale

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): inference, the identity (export records under test_mode())."""
        g.op("Identity", inputs[0], out=outputs[0])


@checked(x=ARRAY, dropout_ratio=NUMBER)
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
    return Dropout(dropout_ratio)(x)


# =============================================================================
# embed_id
# =============================================================================
def _scatter_rows(gy, ids, shape):
    """Zeros of ``shape`` ``(V, ...)`` with the rows of ``gy`` added at ``ids`` (repeats add up, in order)."""
    xp = get_array_module(gy)
    gw = xp.zeros(shape, dtype=gy.dtype)
    flat = ids.reshape(-1)
    if flat.size == 0:
        return gw
    rows = gy.reshape((flat.size,) + tuple(shape[1:]))
    if xp is not np:  # pragma: no cover - CuPy
        import cupyx  # type: ignore[import-not-found]
        cupyx.scatter_add(gw, flat, rows)
        return gw
    # sort the ids (stable: each id's rows keep their order) and add each run at once;
    # several times faster than np.add.at
    order = np.argsort(flat, kind="stable")
    sorted_ids = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    gw[sorted_ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return gw


class EmbedID(Function):
    """``W[ids]`` (rows of ``W``); backward keeps only the ids, not ``W``.

    Its gradient is ``EmbedIDGrad``, a scatter-add of the rows, whose own
    backward is this gather again.
    """

    retain_inputs = ()
    fresh_gradients = True

    def forward(self, W, ids):
        self.w_shape = W.shape
        if _enable_backprop.get():
            self.save_for_backward(ids)
        return W[ids]

    def backward(self, gy):
        ids, = self.saved
        return ops.call(EmbedIDGrad(self.w_shape), gy, ids), None

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Gather of rows (ids cast to int64 unless int32 or int64)."""
        W, ids = inputs
        if g.dtype(ids) not in (np.int32, np.int64):
            ids = g.op("Cast", ids, to=7)  # 7: INT64
        g.op("Gather", W, ids, out=outputs[0], axis=0)


class EmbedIDGrad(Function):
    """``gy``'s rows added into zeros of ``W``'s shape at ``ids``; backward: the rows of ``gW`` at ``ids``."""

    retain_inputs = ()
    fresh_gradients = True

    def __init__(self, w_shape: tuple) -> None:
        self.w_shape = w_shape

    def forward(self, gy, ids):
        if _enable_backprop.get():
            self.save_for_backward(ids)
        return _scatter_rows(gy, ids, self.w_shape)

    def backward(self, ggw):
        ids, = self.saved
        return ops.call(EmbedID(), ggw, ids), None


@checked(x=LABELS, W=ARRAY)
def embed_id(x: Any, W: Any) -> Variable:
    """Rows of the embedding matrix ``W`` picked by the integer ids ``x`` (``W[x]``).

    The gradient adds up over repeated ids; ``W`` itself is not kept for backward.
    """
    ids = x.data if isinstance(x, Variable) else x
    if not isinstance(ids, array_types):
        ids = np.asarray(ids)
    w_shape = shape_of(W)
    if len(w_shape) < 1:
        raise ValueError(f"embed_id: W must have at least one axis, got shape {w_shape}")
    check_labels("embed_id", ids, w_shape[0], what="id")
    return EmbedID()(W, ids)
