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
from leafgrad.checks import ARRAY, BOOL, NUMBER, OPTIONAL_ARRAY, checked, shape_of
from leafgrad.config import Config, is_grad_enabled
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
    """``p v`` with ``p = softmax(q k^T * scale + mask)`` (with dropout: ``p * keep / (1 - dropout_p)``).

    Keeps ``q``, ``k`` and ``v`` (and a reference to the caller's mask, and with dropout the
    boolean ``keep`` array): neither the scores nor the probabilities.  Backward recomputes ``p``
    from ``q`` and ``k`` (one ``(..., Tq, Tk)`` product and softmax), as an
    ``AttentionProbabilities`` node on the recorded walk, so the gradient is differentiable again.
    """

    retain_inputs = (0, 1, 2)
    float_inputs = (0, 1, 2)
    fresh_gradients = True

    def __init__(self, scale: float, causal: bool, dropout_p: float = 0.0) -> None:
        self.scale = scale
        self.causal = causal
        self.dropout_p = dropout_p

    def forward(self, q, k, v, mask=None):
        xp = get_array_module(q)
        p = _probabilities(q, k, mask, self.scale, self.causal)
        keep = None
        if self.dropout_p:  # drawn as F.dropout draws: rand > ratio, from NumPy's (CuPy's) global generator
            keep = xp.random.rand(*p.shape) > self.dropout_p
            p *= keep
            p *= 1.0 / (1.0 - self.dropout_p)
        if is_grad_enabled() and (mask is not None or keep is not None):
            self.save_for_backward(mask, keep)
        return xp.matmul(p, v)

    def backward(self, gy):
        q, k, v = self.get_retained_inputs()
        mask, keep = self.saved if self.saved else (None, None)
        if ops.is_variable(q, k, v):  # recorded: p as a node of the graph on q and k
            probs = AttentionProbabilities(self.scale, self.causal)
            p = probs(q, k) if mask is None else probs(q, k, mask)
        else:
            p = _probabilities(q, k, mask, self.scale, self.causal)
        need = self.needs_input_grad
        kept = None  # the dropout as a constant factor, in the inputs' float type
        if keep is not None:
            kept = keep.astype(ops.data(q).dtype)
            kept *= 1.0 / (1.0 - self.dropout_p)
        pd = p if kept is None else p * kept
        gv = ops.sum_to(ops.matmul(ops.transpose(pd, _swap(pd.ndim)), gy), v.shape) if need[2] else None
        del pd
        gq = gk = None
        if need[0] or need[1]:
            gp = ops.matmul(gy, ops.transpose(v, _swap(v.ndim)))
            if kept is not None:
                gp = ops.mul(gp, kept, overwrite_a=True)
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


@checked(q=ARRAY, k=ARRAY, v=ARRAY, mask=OPTIONAL_ARRAY, causal=BOOL, dropout_p=NUMBER)
def scaled_dot_product_attention(q: Any, k: Any, v: Any, mask: Any = None, causal: bool = False,
                                 dropout_p: float = 0.0) -> Variable:
    """``softmax(q k^T / sqrt(D) + mask) v`` over the last two axes, as ``torch.nn.functional.scaled_dot_product_attention``.

    ``q`` is ``(..., Tq, D)``, ``k`` ``(..., Tk, D)``, ``v`` ``(..., Tk, Dv)`` (e.g. ``(B, H, T, D)``; the
    leading axes broadcast); the result is ``(..., Tq, Dv)``.  ``mask``, broadcastable to
    ``(..., Tq, Tk)``, is boolean (True: may attend) or additive (floats, ``-inf`` to block); it gets
    no gradient.  ``causal=True`` lets query ``i`` attend keys ``0 .. Tk - Tq + i``: with ``Tq < Tk``
    the queries are the last ``Tq`` positions (a key/value cache).  A query that may attend no key gets NaN.
    ``dropout_p``: in training mode (``Config.train``, as ``F.dropout``) each probability is zeroed
    with that chance and the rest scaled by ``1 / (1 - dropout_p)``, the mask drawn as ``F.dropout``
    draws it; under ``test_mode()`` there is no dropout.
    Backward keeps ``q``, ``k`` and ``v`` only (and with dropout its boolean mask, a quarter of the
    probabilities' bytes in float32); it recomputes the probabilities.
    """
    name = "scaled_dot_product_attention"
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{name}: dropout_p must be in [0, 1), got {dropout_p}")
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
    node = ScaledDotProductAttention(scale, causal, float(dropout_p) if Config.train else 0.0)
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
