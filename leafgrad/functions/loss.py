"""Loss functions: ``mean_squared_error softmax_cross_entropy sigmoid_cross_entropy binary_cross_entropy``
and the book's composite ``_simple`` versions.

As in DeZero, every loss is summed over the batch and divided by the batch
size ``N = len(x)`` (for ``(N, 1)`` targets that is the mean).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from leafgrad import ops
from leafgrad.checks import ARRAY, LABELS, OPTIONAL_INT, check_labels, check_range, checked, labels_in_range, shape_of
from leafgrad.core import Function, Variable, as_variable
from leafgrad.cuda import array_types, get_array_module
from leafgrad.functions.activation import Softmax, softmax
from leafgrad.functions.math import clip, log
from leafgrad.functions.reduce import sum
from leafgrad.functions.shape import reshape

__all__ = ["mean_squared_error", "mean_squared_error_simple", "softmax_cross_entropy",
           "softmax_cross_entropy_simple", "sigmoid_cross_entropy", "binary_cross_entropy",
           # DeZero's Function classes, with its constructor arguments
           "MeanSquaredError", "SoftmaxCrossEntropy"]


def _batch_size(shape: tuple) -> int:
    return shape[0] if shape else 1


# =============================================================================
# mean squared error
# =============================================================================
def _check_same_shape(name: str, s0: tuple, s1: tuple) -> None:
    """Allow broadcasting only when the result has one operand's shape (catches (N, 1) vs (N,))."""
    try:
        out = tuple(np.broadcast_shapes(s0, s1))
    except ValueError:
        out = None
    if out is None or (out != s0 and out != s1):
        raise ValueError(f"{name}: shapes {s0} and {s1} do not match"
                         + ("" if out is None else f" (they would broadcast to {out})"))


class MeanSquaredError(Function):
    """``sum((x0 - x1) ** 2) / len(x0)``; backward reads both inputs."""

    float_inputs = (0, 1)
    retain_inputs = (0, 1)

    def forward(self, x0, x1):
        diff = x0 - x1
        self.n = _batch_size(diff.shape)
        y = (diff * diff).sum() / self.n
        return get_array_module(diff).asarray(y, dtype=diff.dtype)  # NumPy 1.x: float32 scalar / int is float64

    def backward(self, gy):
        x0, x1 = self.get_retained_inputs()
        need0, need1 = self.needs_input_grad
        g = (x0 - x1) * (gy * (2.0 / self.n))
        return (ops.sum_to(g, x0.shape) if need0 else None,
                ops.sum_to(-g, x1.shape) if need1 else None)


@checked(x0=ARRAY, x1=ARRAY)
def mean_squared_error(x0: Any, x1: Any) -> Variable:
    """``sum((x0 - x1) ** 2) / len(x0)``: the mean over the batch of the squared error summed per sample."""
    _check_same_shape("mean_squared_error", shape_of(x0), shape_of(x1))
    return MeanSquaredError()(x0, x1)


@checked(x0=ARRAY, x1=ARRAY)
def mean_squared_error_simple(x0: Any, x1: Any) -> Variable:
    """``mean_squared_error`` written with ``sub``, ``pow`` and ``sum`` (the book's first version).

    Same shape policy as ``mean_squared_error``: ``(3,)`` against ``(3, 1)`` is
    refused (it would broadcast to 9 differences), and 0-d arrays are one sample.
    """
    _check_same_shape("mean_squared_error_simple", shape_of(x0), shape_of(x1))
    x0, x1 = as_variable(x0), as_variable(x1)
    diff = x0 - x1
    return sum(diff ** 2) / _batch_size(diff.shape)


# =============================================================================
# softmax cross entropy
# =============================================================================
class SoftmaxCrossEntropy(Function):
    """Fused ``-mean(log(softmax(x))[t])``.

    Backward keeps the probabilities and the labels, never the logits; the
    gradient ``(p - onehot(t)) / N`` is one multiplication plus a scatter.

    Labels on the GPU that the caller could not check on the host (``labels_checked``)
    are checked on the device, without waiting for it: an out-of-range label makes the
    loss NaN.
    """

    float_inputs = (0,)
    retain_inputs = ()

    def __init__(self, ignore_index: Optional[int] = None, labels_checked: bool = False) -> None:
        self.ignore_index = ignore_index
        self.labels_checked = labels_checked

    def forward(self, x, t):
        xp = get_array_module(x)
        n, c = x.shape
        m = x.max(axis=1, keepdims=True)
        p = x - m
        xp.exp(p, out=p)
        s = p.sum(axis=1, keepdims=True)
        p /= s
        keep, count, valid = None, n, None
        if self.ignore_index is not None:
            keep = t != self.ignore_index
            t = xp.where(keep, t, 0)
            count = xp.maximum(keep.sum(), 1).astype(x.dtype)  # on the device: no wait for a GPU
        if xp is not np and not self.labels_checked:
            valid = labels_in_range(t, c)
            t = xp.clip(t, 0, c - 1)  # CuPy would wrap an out-of-range index around
        # log p[t] = x[t] - max - log(sum): finite for logits of any magnitude
        log_pt = x[xp.arange(n), t] - m[:, 0]
        log_pt -= xp.log(s[:, 0])
        if keep is not None:
            log_pt *= keep
        y = xp.asarray(-log_pt.sum() / count, dtype=x.dtype)
        if valid is not None:
            y = xp.where(valid, y, xp.asarray(np.nan, dtype=x.dtype))
        self.save_for_backward(p, t, keep, count)
        return y

    def backward(self, gy):
        if not self.needs_input_grad[0]:
            return None, None
        p, t, keep, count = self.saved
        xp = get_array_module(p)
        # On the recorded walk p must be softmax(x) as a node of the graph (x itself was not kept)
        prob = self.derived_from_inputs(p, Softmax(1), (0,))
        onehot = xp.zeros_like(p)
        onehot[xp.arange(p.shape[0]), t] = 1
        gx = (prob - onehot) * (gy / count)
        if keep is not None:
            gx = gx * keep[:, None]
        return gx, None


def _labels(name: str, x: Any, t: Any, ignore_index: Optional[int] = None) -> Any:
    """Labels ``t`` for scores ``x`` of shape ``(N, C)``: ``N`` integers in ``[0, C)``, as an array.

    (``t``'s integer dtype was checked at the argument boundary.)
    """
    x_shape = shape_of(x)
    if len(x_shape) != 2:
        raise ValueError(f"{name}: expected x of shape (N, C), got shape {x_shape}")
    n, c = x_shape
    if isinstance(t, Variable):
        t = t.data
    if not isinstance(t, array_types):
        t = np.asarray(t)
    if t.size != n or t.ndim > 2 or (t.ndim == 2 and t.shape[1] != 1):
        raise ValueError(f"{name}: x has {n} rows but labels t have shape {t.shape} (expected ({n},))")
    t = t.reshape(n)
    check_labels(name, t, c, ignore_index)  # (on the host only: see check_labels)
    return t


@checked(x=ARRAY, t=LABELS, ignore_index=OPTIONAL_INT)
def softmax_cross_entropy(x: Any, t: Any, ignore_index: Optional[int] = None) -> Variable:
    """Cross entropy of ``softmax(x)`` against integer labels ``t``, averaged over the batch.

    ``x`` has shape ``(N, C)``; ``t`` holds ``N`` labels in ``[0, C)``.  With
    ``ignore_index`` set (as in PyTorch, e.g. ``-100``), samples whose label
    equals it contribute neither loss nor gradient, and the mean is over the
    others (0, with zero gradient, when every sample is ignored).
    """
    if ignore_index is not None:
        ignore_index = int(ignore_index)
    t = _labels("softmax_cross_entropy", x, t, ignore_index)
    return SoftmaxCrossEntropy(ignore_index, labels_checked=isinstance(t, np.ndarray))(x, t)


@checked(x=ARRAY, t=LABELS)
def softmax_cross_entropy_simple(x: Any, t: Any) -> Variable:
    """``softmax_cross_entropy`` written with ``softmax``, ``clip``, ``log`` and indexing (the book's version).

    The formula is the book's (it overflows for huge logits: that is its lesson);
    the labels are checked as ``softmax_cross_entropy`` checks them.
    """
    t = _labels("softmax_cross_entropy_simple", x, t)
    x = as_variable(x)
    n = x.shape[0]
    p = softmax(x)
    p = clip(p, 1e-15, 1.0)  # avoid log(0)
    log_p = log(p)
    tlog_p = log_p[np.arange(n), t]
    return -1 * sum(tlog_p) / n


# =============================================================================
# sigmoid / binary cross entropy
# =============================================================================
class SigmoidCrossEntropy(Function):
    """Fused ``-sum(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) / N``, as ``softplus(x) - t x``.

    Finite for logits of any magnitude.  Backward reads ``x`` (and ``t``).
    """

    float_inputs = (0, 1)
    retain_inputs = (0, 1)

    def forward(self, x, t):
        xp = get_array_module(x)
        self.n = _batch_size(x.shape)
        y = xp.asarray(-xp.abs(x))  # (an array even for a 0-d input: written in place below)
        xp.exp(y, out=y)
        xp.log1p(y, out=y)
        y += xp.maximum(x, 0)
        y -= t * x
        return xp.asarray(y.sum() / self.n, dtype=y.dtype)

    def backward(self, gy):
        x, t = self.get_retained_inputs()
        need_x, need_t = self.needs_input_grad
        scale = gy / self.n
        return ((ops.sigmoid(x) - t) * scale if need_x else None,
                ops.sum_to(x * -scale, t.shape) if need_t else None)


def _targets(name: str, x: Any, t: Any) -> Any:
    """Targets ``t`` reshaped to ``x``'s shape when their ranks differ (as DeZero), in ``x``'s float dtype.

    Integer or boolean labels, and constant targets of another float type, take
    the dtype of ``x`` (so float32 logits give a float32 loss).
    """
    if not isinstance(t, (Variable,) + array_types):
        t = np.asarray(t)
    x_shape, t_shape = shape_of(x), shape_of(t)
    if len(x_shape) != len(t_shape):  # labels (N,) for logits (N, 1)
        if int(np.prod(t_shape, dtype=np.int64)) != int(np.prod(x_shape, dtype=np.int64)):
            raise ValueError(f"{name}: targets of shape {t_shape} do not fit inputs of shape {x_shape}")
        t = reshape(t, x_shape) if isinstance(t, Variable) else t.reshape(x_shape)
        t_shape = x_shape
    _check_same_shape(name, x_shape, t_shape)
    dtype = getattr(x, "dtype", None)
    if dtype is not None and dtype.kind == "f":
        if isinstance(t, Variable):
            if t.dtype.kind in "biu":
                t = t.data.astype(dtype)
        elif t.dtype != dtype:
            t = t.astype(dtype)
    return t


@checked(x=ARRAY, t=ARRAY)
def sigmoid_cross_entropy(x: Any, t: Any) -> Variable:
    """Binary cross entropy of ``sigmoid(x)`` against targets ``t`` in [0, 1], summed and divided by ``len(x)``.

    Computed from the logits as ``softplus(x) - t * x``: finite for any ``x``
    (DeZero clipped the probabilities at 1e-15 instead).
    """
    t = _targets("sigmoid_cross_entropy", x, t)
    check_range("sigmoid_cross_entropy", "t", t.data if isinstance(t, Variable) else t, 0.0, 1.0)
    return SigmoidCrossEntropy()(x, t)


@checked(p=ARRAY, t=ARRAY)
def binary_cross_entropy(p: Any, t: Any) -> Variable:
    """Binary cross entropy of probabilities ``p`` against targets ``t``, summed and divided by ``len(t)``.

    As in DeZero, ``p`` is clipped to ``[1e-15, 0.999]`` before the logarithms.
    Prefer ``sigmoid_cross_entropy`` on logits, which is exact and stable.
    """
    t = _targets("binary_cross_entropy", p, t)
    check_range("binary_cross_entropy", "p", p.data if isinstance(p, Variable) else np.asarray(p), 0.0, 1.0)
    check_range("binary_cross_entropy", "t", t.data if isinstance(t, Variable) else t, 0.0, 1.0)
    n = _batch_size(shape_of(t))
    p = clip(p, 1e-15, 0.999)
    tlog_p = t * log(p) + (1 - t) * log(1 - p)
    return -1 * sum(tlog_p) / n
