"""Attention: ``scaled_dot_product_attention``.

``softmax(q k^T / sqrt(D) + mask) v`` over the last two axes, as one function.
Backward keeps only the inputs ``q``, ``k``, ``v`` and recomputes the attention
probabilities ``p`` from them: neither the scores nor ``p`` (a ``(..., Tq, Tk)``
array per call, larger than ``q``, ``k``, ``v`` together once ``T > 3 D / 2``) stay
alive between forward and backward.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Optional

import numpy as np

from leafgrad import ops
from leafgrad.checks import ARRAY, BOOL, OPTIONAL_ARRAY, checked, shape_of
from leafgrad.config import _enable_backprop
from leafgrad.core import Function, Variable
from leafgrad.cuda import array_types, get_array_module

__all__ = ["scaled_dot_product_attention"]


def _swap(ndim: int) -> tuple:
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


@functools.lru_cache(maxsize=32)
def _causal_bias(tq: int, tk: int, dtype: str) -> np.ndarray:
    """``(tq, tk)``: 0 where query ``i`` may see key ``j`` (``j <= tk - tq + i``), ``-inf`` elsewhere (read-only)."""
    bias = np.zeros((tq, tk), dtype=dtype)
    bias[np.triu(np.ones((tq, tk), dtype=bool), k=tk - tq + 1)] = -np.inf
    bias.flags.writeable = False
    return bias


#: The softmax may subtract from each row its first score instead of its maximum when no
#: score anywhere exceeds a row's first score by more than this: nothing overflows, and what
#: underflows is below exp(-60) of its row's largest term.
_SHIFT_SLACK = 20.0


def _row_sum(a):
    """``sum(a, -1, keepdims=True)``; for a C-contiguous NumPy array as one matrix-vector product
    (a reduction over a short last axis is several times slower in NumPy)."""
    if isinstance(a, np.ndarray) and a.flags.c_contiguous and a.ndim >= 2 and a.dtype.kind == "f":
        n = a.shape[-1]
        return a.reshape(-1, n).dot(np.ones(n, dtype=a.dtype)).reshape(a.shape[:-1] + (1,))
    return ops.sum(a, -1, keepdims=True)


def _probabilities(q, k, mask, scale: float, causal: bool):
    """``softmax(q k^T * scale + mask)`` over the last axis, computed in place in one ``(..., Tq, Tk)`` array."""
    xp = get_array_module(q)
    s = xp.matmul(q * scale, k.swapaxes(-1, -2))
    tq, tk = s.shape[-2], s.shape[-1]
    if causal:  # query i sees keys 0 .. Tk - Tq + i (the last Tq positions of a longer context)
        if xp is np:
            s += _causal_bias(tq, tk, s.dtype.str)
        else:
            xp.copyto(s, -xp.inf, where=xp.triu(xp.ones((tq, tk), dtype=bool), k=tk - tq + 1))
    if mask is not None:
        if mask.dtype == bool:
            xp.copyto(s, -xp.inf, where=~mask)
        else:
            s += mask
    # Subtracting each row's maximum is a slow reduction over a short axis.  Each row's first
    # score (key 0, seen by every causal query) serves as well when it is finite and no score
    # exceeds it by more than _SHIFT_SLACK: a row's result then depends on its own scores only
    # (a causal row never on later keys).  Otherwise (or on a GPU: no host check) the maximum.
    first = s[..., :1].copy() if xp is np and s.size else None
    if first is not None and first.min() > -np.inf and s.max() <= first.min() + _SHIFT_SLACK:
        s -= first
    else:
        s -= s.max(axis=-1, keepdims=True)
    xp.exp(s, out=s)
    s /= _row_sum(s)
    return s


def _probabilities_backward(p, gp, q, k, scale: float, need_q: bool, need_k: bool):
    """Gradients of ``q`` and ``k`` from the probabilities' gradient ``gp`` (arrays or Variables).

    Softmax backward ``gs = p (gp - sum(p gp))``, then ``gq = gs k scale``, ``gk = gs^T q scale``.
    On arrays the fresh products are scaled in place.
    """
    gs = ops.mul(gp - _row_sum(p * gp), p, overwrite_a=True)
    gq = gk = None
    if need_q:
        gq = ops.sum_to(ops.mul(ops.matmul(gs, k), scale, overwrite_a=True), q.shape)
    if need_k:
        gk = ops.mul(ops.matmul(ops.transpose(gs, _swap(gs.ndim)), q), scale, overwrite_a=True)
        gk = ops.sum_to(gk, k.shape)
    return gq, gk


class AttentionProbabilities(Function):
    """``softmax(q k^T * scale + mask)``; inputs ``q, k`` (and the constant ``mask``), keeps ``q``, ``k`` and ``p``.

    The gradient function of ``ScaledDotProductAttention`` on the recorded walk
    (and its own backward gives the next order).
    """

    retain_inputs = (0, 1)
    retain_outputs = (0,)
    float_inputs = (0, 1)

    def __init__(self, scale: float, causal: bool) -> None:
        self.scale = scale
        self.causal = causal

    def forward(self, q, k, mask=None):
        return _probabilities(q, k, mask, self.scale, self.causal)

    def backward(self, gp):
        q, k = self.get_retained_inputs()
        p, = self.get_retained_outputs()
        need = self.needs_input_grad
        gq, gk = _probabilities_backward(p, gp, q, k, self.scale, need[0], len(need) > 1 and need[1])
        return (gq, gk) if len(need) == 2 else (gq, gk, None)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): MatMul, the causal and given masks (Where / Add), Softmax."""
        q, k, mask = (list(inputs) + [""])[:3]
        nq = len(g.shape(q))
        kt = g.op("Transpose", k, perm=list(range(len(g.shape(k)) - 2)) + [len(g.shape(k)) - 1, len(g.shape(k)) - 2])
        s = g.op("MatMul", g.op("Mul", q, g.scalar(self.scale, q)), kt)
        blocked = g.scalar(-np.inf, q)
        if self.causal:
            tq, tk = g.shape(q)[nq - 2], g.shape(k)[-2]
            s = g.op("Where", g.const(np.triu(np.ones((tq, tk), dtype=bool), k=tk - tq + 1)), blocked, s)
        if mask:
            s = g.op("Where", mask, s, blocked) if g.dtype(mask) == bool else g.op("Add", s, mask)
        g.op("Softmax", s, out=outputs[0], axis=-1)


class ScaledDotProductAttention(Function):
    """``p v`` with ``p = softmax(q k^T * scale + mask)``.

    Keeps ``q``, ``k`` and ``v`` (and a reference to the caller's mask): neither the
    scores nor the probabilities.  Backward recomputes ``p`` from ``q`` and ``k`` (one
    ``(..., Tq, Tk)`` product and softmax), as an ``AttentionProbabilities`` node on the
    recorded walk, so the gradient is differentiable again.
    """

    retain_inputs = (0, 1, 2)
    float_inputs = (0, 1, 2)
    fresh_gradients = True

    def __init__(self, scale: float, causal: bool) -> None:
        self.scale = scale
        self.causal = causal

    def forward(self, q, k, v, mask=None):
        if mask is not None and _enable_backprop.get():
            self.save_for_backward(mask)
        p = _probabilities(q, k, mask, self.scale, self.causal)
        return get_array_module(p).matmul(p, v)

    def backward(self, gy):
        q, k, v = self.get_retained_inputs()
        mask = self.saved[0] if self.saved else None
        if ops.is_variable(q, k, v):  # recorded: p as a node of the graph on q and k
            probs = AttentionProbabilities(self.scale, self.causal)
            p = probs(q, k) if mask is None else probs(q, k, mask)
        else:
            p = _probabilities(q, k, mask, self.scale, self.causal)
        need = self.needs_input_grad
        gv = ops.sum_to(ops.matmul(ops.transpose(p, _swap(p.ndim)), gy), v.shape) if need[2] else None
        gq = gk = None
        if need[0] or need[1]:
            gp = ops.matmul(gy, ops.transpose(v, _swap(v.ndim)))
            gq, gk = _probabilities_backward(p, gp, q, k, self.scale, need[0], need[1])
        return (gq, gk, gv) if len(need) == 3 else (gq, gk, gv, None)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): ``AttentionProbabilities``' form, then MatMul with ``v``."""
        p = g.fresh("attention_p")
        AttentionProbabilities.to_onnx(self, g, [inputs[0], inputs[1]] + list(inputs[3:]), [p])
        g.op("MatMul", p, inputs[2], out=outputs[0])


def _data(x: Any) -> Any:
    if isinstance(x, Variable):
        return x.data
    return x if isinstance(x, array_types) else np.asarray(x)


@checked(q=ARRAY, k=ARRAY, v=ARRAY, mask=OPTIONAL_ARRAY, causal=BOOL)
def scaled_dot_product_attention(q: Any, k: Any, v: Any, mask: Any = None, causal: bool = False) -> Variable:
    """``softmax(q k^T / sqrt(D) + mask) v`` over the last two axes, as ``torch.nn.functional.scaled_dot_product_attention``.

    ``q`` is ``(..., Tq, D)``, ``k`` ``(..., Tk, D)``, ``v`` ``(..., Tk, Dv)`` (e.g. ``(B, H, T, D)``; the
    leading axes broadcast); the result is ``(..., Tq, Dv)``.  ``mask``, broadcastable to
    ``(..., Tq, Tk)``, is boolean (True: may attend) or additive (floats, ``-inf`` to block); it gets
    no gradient.  ``causal=True`` lets query ``i`` attend keys ``0 .. Tk - Tq + i``: with ``Tq < Tk``
    the queries are the last ``Tq`` positions (a key/value cache).  A query that may attend no key gets NaN.
    Backward keeps ``q``, ``k`` and ``v`` only; it recomputes the probabilities.
    """
    name = "scaled_dot_product_attention"
    qs, ks, vs = shape_of(q), shape_of(k), shape_of(v)
    if len(qs) < 2 or len(ks) < 2 or len(vs) < 2:
        raise ValueError(f"{name}: q, k and v need at least two axes (..., T, D), got shapes {qs}, {ks}, {vs}")
    if qs[-1] != ks[-1]:
        raise ValueError(f"{name}: q of shape {qs} and k of shape {ks} differ in their last axis (D)")
    if ks[-2] != vs[-2]:
        raise ValueError(f"{name}: k of shape {ks} and v of shape {vs} differ in their key axis (Tk)")
    try:
        lead = np.broadcast_shapes(qs[:-2], ks[:-2], vs[:-2])
    except ValueError:
        raise ValueError(f"{name}: the leading axes of q {qs}, k {ks} and v {vs} do not broadcast") from None
    if tuple(lead) != tuple(qs[:-2]):
        raise ValueError(f"{name}: the leading axes of k {ks} and v {vs} must broadcast to those of q {qs}")
    tq, tk = qs[-2], ks[-2]
    causal = bool(causal)
    if causal and tq > tk:
        raise ValueError(f"{name}: causal attention needs no more queries than keys, got Tq={tq} > Tk={tk}")
    scale = 1.0 / math.sqrt(qs[-1]) if qs[-1] else 1.0
    node = ScaledDotProductAttention(scale, causal)
    if mask is None:
        return node(q, k, v)
    m = _data(mask)
    if m.dtype != bool and m.dtype.kind != "f":
        raise TypeError(f"{name}: mask must be boolean (True: attend) or floating (added to the scores), "
                        f"got dtype {m.dtype}")
    try:
        ok = tuple(np.broadcast_shapes(m.shape, tuple(lead) + (tq, tk))) == tuple(lead) + (tq, tk)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: mask of shape {m.shape} does not broadcast to the scores' shape "
                         f"{tuple(lead) + (tq, tk)}")
    return node(q, k, v, m)
