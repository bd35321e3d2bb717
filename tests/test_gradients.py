"""Every public differentiable function, every differentiable argument: gradients checked at every order.

One table, ``CASES``: a new function gets its row here (``test_every_public_function_has_a_case``
fails until it does), and the row declares everything else the tests read about the function
(its public name, orders, element-wise, NumPy reference, kinks, what it keeps, stability: see
``GradCase`` in ``gradcheck.py``; the checks of those declarations are in ``test_function_rows.py``).
"""
import math
import zlib
from types import SimpleNamespace

import numpy as np
import pytest

import leafgrad as lg
from leafgrad import Variable
from leafgrad.checkpoint import checkpoint
from leafgrad.functions import conv
from leafgrad.functions.activation import GELUGrad, GELUGradFromOutput
from leafgrad.functions.attention import AttentionProbabilities
from leafgrad.functions.nn import EmbedIDGrad
from leafgrad.functions.normalization import Standardize
from leafgrad.functions.shape import GetItemGrad

from gradcheck import GradCase, check_float32, check_order
from gradcheck import public_functions as F  # leafgrad.functions; a missing name says how to export it


def rnd(name, *shape, lo=None, hi=None, away=0.0):
    """Reproducible inputs: standard normal (or uniform in [lo, hi]), at least ``away`` from 0."""
    rs = np.random.RandomState(zlib.crc32(name.encode()) + len(shape) * 31 + sum(shape))
    if lo is not None:
        return rs.uniform(lo, hi, shape)
    x = rs.randn(*shape)
    if away:
        x = np.where(x >= 0, x + away, x - away)
    return x


def distinct(name, *shape):
    """Values with no ties and no two within 0.05 of each other (for max, pooling, maximum)."""
    rs = np.random.RandomState(zlib.crc32(name.encode()))
    n = int(np.prod(shape))
    return (rs.permutation(n) * 0.1 - 0.05 * n + 0.033).reshape(shape)


LABELS = np.array([0, 2, 1, 2])
LABELS_IGNORED = np.array([0, -1, 1, 2])  # -1: ignored
IDS = np.array([[0, 3, 3], [1, 0, 2]])
ATTEND = np.array([[True, False, True, True], [False, True, True, False], [True, True, True, True]])
BIAS = np.array([[0.0, -1.5, 0.3, -np.inf], [0.2, 0.0, -0.7, 1.1], [-np.inf, 0.5, 0.0, 0.0]])
CONDITION = np.array([[True, False, True, True], [False, True, False, True], [True, True, False, False]])
THIRD = (1, 2, 3)  # third order too, as the book's step 35 does for tanh
ELEMENTWISE = THIRD  # the old spelling, for rows written before `elementwise=True` (prefer that)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_erf = np.vectorize(math.erf)


def _dropout(x):
    np.random.seed(7)  # the same mask at every evaluation
    return F.dropout(x, 0.4)


def _attention_dropout(q, k, v):
    np.random.seed(7)  # the same dropout mask at every evaluation
    return F.scaled_dot_product_attention(q, k, v, causal=True, dropout_p=0.4)


def _running_stats(x, n):
    """Fresh running mean and variance for ``batch_norm`` (which updates them), on ``x``'s device."""
    xp = lg.cuda.get_array_module(x)
    return xp.zeros(n), xp.ones(n)


def _segment(x, W):
    return F.tanh(F.matmul(x, W)) * x


def _standardize_all_outputs(x):
    return Standardize((0,), 1e-5)(x)  # xhat, mean and var, each with a gradient


# The gradient functions, checked as functions of their own inputs: their backward is
# what the second and third derivatives of the functions above run.
_POOL_X = distinct("pool-indexes", 1, 2, 4, 4)
_POOL_GEOM = conv._geometry("pooling", (4, 4), 2, 2, 0)
# what the gradient functions read from the pooling they differentiate
_MAX_POOLING = SimpleNamespace(input_shape=_POOL_X.shape, geom=_POOL_GEOM,
                               indexes=conv._max_pool(_POOL_X, _POOL_GEOM, want_index=True)[1])
_AVERAGE_POOLING = SimpleNamespace(input_shape=(1, 2, 5, 5), geom=conv._geometry("average_pooling", (5, 5), 3, 2, 1))
_CONVOLUTION = SimpleNamespace(kernel_size=(3, 3), stride=1, pad=1)


C = GradCase
CASES = [
    # ---- arithmetic (the operators of Variable) ---------------------------------------
    C("add", F.add, [rnd("a", 3, 4), rnd("b", 4)]),
    C("add_same_shape", F.add, of="add", inputs=[rnd("a", 3, 4), rnd("b", 3, 4)]),
    C("add_constant", lambda x: F.add(2.5, x), of="add", inputs=[rnd("x", 3, 4)]),
    C("sub", F.sub, [rnd("a", 3, 4), rnd("b", 3, 1)]),
    C("rsub", F.rsub, [rnd("a", 4), rnd("b", 3, 4)]),
    C("sub_constant", lambda x: F.sub(x, 1.5), of="sub", inputs=[rnd("x", 3, 4)]),
    C("constant_sub", lambda x: F.rsub(x, 2.0), of="rsub", inputs=[rnd("x", 3, 4)]),
    C("mul", F.mul, [rnd("a", 3, 4), rnd("b", 4)]),
    C("mul_constant", lambda x: F.mul(x, 1.7), of="mul", inputs=[rnd("x", 3, 4)]),
    C("div", F.div, [rnd("a", 3, 4), rnd("b", 4, away=0.5)]),
    C("rdiv", F.rdiv, [rnd("a", 3, 1, away=0.5), rnd("b", 3, 4)]),
    C("div_constant", lambda x: F.div(x, 1.3), of="div", inputs=[rnd("x", 3, 4)]),
    C("constant_div", lambda x: F.rdiv(x, 2.0), of="rdiv", inputs=[rnd("x", 3, 4, away=0.5)]),
    C("neg", F.neg, [rnd("x", 3, 4)]),
    C("pow", lambda x: F.pow(x, 3), [rnd("x", 3, 4)], elementwise=True, reference=lambda x: x ** 3),
    C("pow_fractional", lambda x: F.pow(x, 2.5), [rnd("x", 3, 4, lo=0.5, hi=2.0)], of="pow", elementwise=True),
    # ---- element-wise math ----------------------------------------------------------
    C("square", F.square, [rnd("x", 3, 4)], elementwise=True, reference=np.square),
    C("exp", F.exp, [rnd("x", 3, 4)], elementwise=True, reference=np.exp, keeps=["output"]),
    C("log", F.log, [rnd("x", 3, 4, lo=0.5, hi=3.0)], elementwise=True, reference=np.log, keeps=[0]),
    C("sin", F.sin, [rnd("x", 3, 4)], elementwise=True, reference=np.sin, keeps=[0]),
    C("cos", F.cos, [rnd("x", 3, 4)], elementwise=True, reference=np.cos, keeps=[0]),
    C("tanh", F.tanh, [rnd("x", 3, 4)], elementwise=True, reference=np.tanh, keeps=["output"]),
    C("sigmoid", F.sigmoid, [rnd("x", 3, 4)], elementwise=True, reference=_sigmoid, keeps=["output"], stable=[0]),
    C("abs", F.abs, [rnd("x", 3, 4, away=0.1)], elementwise=True, reference=np.abs, keeps=[0],
      kinks=lambda x: [x], linear_pieces=True),
    C("clip", lambda x: F.clip(x, -0.5, 0.7), [distinct("clip", 3, 4) * 2], elementwise=True,
      reference=lambda x: np.clip(x, -0.5, 0.7), kinks=lambda x: [x + 0.5, x - 0.7], linear_pieces=True, keeps=[]),
    C("maximum", F.maximum, [distinct("m0", 3, 4), distinct("m1", 4) + 0.01], reference=np.maximum,
      kinks=lambda a, b: [a - b], linear_pieces=True),
    C("maximum_scalar", lambda x: F.maximum(x, 0.1), [distinct("ms", 3, 4)], of="maximum", elementwise=True,
      kinks=lambda x: [x - 0.1], linear_pieces=True, keeps=[]),
    C("minimum", F.minimum, [distinct("n0", 3, 1) + 0.01, distinct("n1", 3, 4)], reference=np.minimum,
      kinks=lambda a, b: [a - b], linear_pieces=True),
    C("where", lambda x0, x1: F.where(CONDITION, x0, x1), [rnd("w0", 3, 4), rnd("w1", 4)],
      reference=lambda x0, x1: np.where(CONDITION, x0, x1), kinks=lambda x0, x1: [np.where(CONDITION, 1.0, -1.0)],
      linear_pieces=True, keeps=[]),
    # ---- activations ------------------------------------------------------------------
    C("sigmoid_simple", F.sigmoid_simple, [rnd("x", 3, 4)], elementwise=True, reference=_sigmoid),
    C("relu", F.relu, [rnd("x", 3, 4, away=0.1)], elementwise=True, reference=lambda x: np.maximum(x, 0),
      kinks=lambda x: [x], linear_pieces=True, keeps=["output"]),
    C("leaky_relu", F.leaky_relu, [rnd("x", 3, 4, away=0.1)], elementwise=True,
      reference=lambda x: np.where(x > 0, x, 0.2 * x), kinks=lambda x: [x], linear_pieces=True, keeps=[]),
    C("leaky_relu_negative_slope", lambda x: F.leaky_relu(x, -0.3), [rnd("x", 3, 4, away=0.1)], of="leaky_relu",
      elementwise=True, reference=lambda x: np.where(x > 0, x, -0.3 * x), kinks=lambda x: [x], linear_pieces=True),
    C("softmax", F.softmax, [rnd("x", 3, 4)], reference=_softmax, keeps=["output"], stable=[0]),
    C("softmax_axes", lambda x: F.softmax(x, axis=(0, 2)), [rnd("x", 2, 3, 2)], of="softmax",
      reference=lambda x: _softmax(x, (0, 2))),
    C("softmax_simple", F.softmax_simple, [rnd("x", 3, 4)], reference=_softmax),
    C("log_softmax", F.log_softmax, [rnd("x", 3, 4)], reference=lambda x: np.log(_softmax(x)), keeps=["output"],
      stable=[0]),
    C("log_softmax_axis0", lambda x: F.log_softmax(x, axis=0), [rnd("x", 3, 4)], of="log_softmax",
      reference=lambda x: np.log(_softmax(x, 0))),
    C("gelu", F.gelu, [rnd("x", 3, 4)], elementwise=True, reference=lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
      stable=[0]),
    C("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [rnd("x", 3, 4)], of="gelu", elementwise=True,
      reference=lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    C("elu", F.elu, [rnd("x", 3, 4, away=0.1)], elementwise=True, reference=lambda x: np.where(x > 0, x, np.expm1(x)),
      kinks=lambda x: [x], keeps=["output"], stable=[0]),
    C("elu_negative_alpha", lambda x: F.elu(x, -0.5), [rnd("x", 3, 4, away=0.1)], of="elu", elementwise=True,
      reference=lambda x: np.where(x > 0, x, -0.5 * np.expm1(x)), kinks=lambda x: [x]),
    C("softplus", F.softplus, [rnd("x", 3, 4)], elementwise=True, reference=lambda x: np.log1p(np.exp(x)),
      keeps=["output"], stable=[0]),
    C("softplus_beta", lambda x: F.softplus(x, beta=2.0), [rnd("x", 3, 4)], of="softplus", elementwise=True,
      reference=lambda x: np.log1p(np.exp(2 * x)) / 2),
    C("silu", F.silu, [rnd("x", 3, 4)], elementwise=True, reference=lambda x: x * _sigmoid(x), stable=[0]),
    # ---- shapes -------------------------------------------------------------------------
    C("reshape", lambda x: F.reshape(x, (2, 6)), [rnd("x", 3, 4)]),
    C("transpose", lambda x: F.transpose(x, (1, 2, 0)), [rnd("x", 2, 3, 4)]),
    C("broadcast_to", lambda x: F.broadcast_to(x, (2, 3, 4)), [rnd("x", 3, 1)]),
    C("sum_to", lambda x: F.sum_to(x, (3, 1)), [rnd("x", 2, 3, 4)]),
    C("get_item", lambda x: F.get_item(x, ([0, 0, 2], slice(1, None))), [rnd("x", 3, 4)]),
    C("get_item_basic", lambda x: F.get_item(x, (slice(1, None), slice(None, None, 2))), [rnd("x", 3, 4)],
      of="get_item"),
    C("expand_dims", lambda x: F.expand_dims(x, -1), [rnd("x", 3, 4)]),
    C("flatten", F.flatten, [rnd("x", 2, 3, 2)]),
    C("concat", lambda a, b, c: F.concat([a, b, c], axis=1), [rnd("a", 2, 3), rnd("b", 2, 1), rnd("c", 2, 2)]),
    C("stack", lambda a, b, c: F.stack([a, b, c], axis=1), [rnd("a", 2, 3), rnd("b", 2, 3), rnd("c", 2, 3)]),
    C("split", lambda x: F.split(x, [1, 3], axis=1), [rnd("x", 3, 4)]),
    C("split_one_piece_used", lambda x: F.split(x, 2, axis=0)[1], [rnd("x", 4, 3)], of="split"),
    # ---- reductions -----------------------------------------------------------------------
    C("sum", lambda x: F.sum(x, axis=1, keepdims=True), [rnd("x", 3, 4)]),
    C("sum_all", F.sum, of="sum", inputs=[rnd("x", 3, 4)]),
    C("max", lambda x: F.max(x, axis=1), [distinct("max", 3, 4)]),
    C("min", lambda x: F.min(x, axis=(0, 2), keepdims=True), [distinct("min", 2, 3, 2)]),
    C("mean", lambda x: F.mean(x, axis=-1), [rnd("x", 3, 4)]),
    C("average", lambda x, w: F.average(x, axis=1, weights=w), [rnd("x", 3, 4), rnd("w", 4, lo=0.5, hi=1.5)]),
    C("average_same_shape", lambda x, w: F.average(x, weights=w), [rnd("x", 3, 2), rnd("w", 3, 2, lo=0.5, hi=1.5)],
      of="average"),
    C("var", lambda x: F.var(x, axis=0, ddof=1), [rnd("x", 4, 3)]),
    C("logsumexp", lambda x: F.logsumexp(x, axis=1), [rnd("x", 3, 4)], orders=THIRD, stable=[0]),
    # ---- linear algebra, layers' functions ----------------------------------------------
    C("matmul", F.matmul, [rnd("x", 3, 4), rnd("W", 4, 2)]),
    C("matmul_batched", F.matmul, of="matmul", inputs=[rnd("x", 2, 3, 4), rnd("W", 4, 2)]),
    C("linear", F.linear, [rnd("x", 3, 4), rnd("W", 4, 2), rnd("b", 2)]),
    C("linear_no_bias", F.linear, of="linear", inputs=[rnd("x", 3, 4), rnd("W", 4, 2)]),
    C("linear_3d", F.linear, of="linear", inputs=[rnd("x", 2, 3, 4), rnd("W", 4, 2), rnd("b", 2)]),
    C("linear_simple", F.linear_simple, [rnd("x", 3, 4), rnd("W", 4, 2), rnd("b", 2)]),
    C("dropout", _dropout, [rnd("x", 3, 4)]),
    C("embed_id", lambda W: F.embed_id(IDS, W), [rnd("W", 4, 3)]),
    C("batch_norm", lambda x, g, b: F.batch_norm(x, g, b, *_running_stats(x, 3)),
      [rnd("x", 4, 3), rnd("g", 3), rnd("b", 3)]),
    C("batch_norm_4d", lambda x, g, b: F.batch_norm(x, g, b, *_running_stats(x, 2)),
      [rnd("x", 2, 2, 2, 2), rnd("g", 2), rnd("b", 2)], of="batch_norm"),
    C("batch_nrom", lambda x, g, b: F.batch_nrom(x, g, b, *_running_stats(x, 3)),
      [rnd("x", 4, 3), rnd("g", 3), rnd("b", 3)]),
    C("layer_norm", F.layer_norm, [rnd("x", 3, 4), rnd("g", 4), rnd("b", 4)]),
    C("standardize_all_outputs", _standardize_all_outputs, of=None, inputs=[rnd("x", 4, 3)]),
    # ---- attention ------------------------------------------------------------------------
    C("scaled_dot_product_attention", F.scaled_dot_product_attention,
      [rnd("q", 2, 2, 3, 4), rnd("k", 2, 2, 3, 4), rnd("v", 2, 2, 3, 5)]),
    C("scaled_dot_product_attention_causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=True),
      [rnd("q", 2, 3, 4), rnd("k", 2, 3, 4), rnd("v", 2, 3, 2)], of="scaled_dot_product_attention"),
    C("scaled_dot_product_attention_cache", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=True),
      [rnd("q", 2, 2, 4), rnd("k", 2, 4, 4), rnd("v", 2, 4, 3)], of="scaled_dot_product_attention"),
    C("scaled_dot_product_attention_bool_mask", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=ATTEND),
      [rnd("q", 2, 3, 4), rnd("k", 2, 4, 4), rnd("v", 2, 4, 2)], of="scaled_dot_product_attention"),
    C("scaled_dot_product_attention_float_mask", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=BIAS),
      [rnd("q", 3, 4), rnd("k", 4, 4), rnd("v", 4, 2)], of="scaled_dot_product_attention"),
    C("scaled_dot_product_attention_broadcast_kv", F.scaled_dot_product_attention,
      [rnd("q", 2, 3, 4), rnd("k", 1, 3, 4), rnd("v", 3, 2)], of="scaled_dot_product_attention"),
    C("scaled_dot_product_attention_dropout", _attention_dropout,
      [rnd("q", 2, 3, 4), rnd("k", 2, 4, 4), rnd("v", 2, 4, 2)], of="scaled_dot_product_attention"),
    C("attention_probabilities", lambda q, k: AttentionProbabilities(0.5, True)(q, k),
      [rnd("q", 2, 3, 4), rnd("k", 2, 3, 4)], of=None),
    # ---- losses -------------------------------------------------------------------------
    C("mean_squared_error", F.mean_squared_error, [rnd("a", 4, 3), rnd("b", 4, 3)]),
    C("mean_squared_error_simple", F.mean_squared_error_simple, [rnd("a", 4, 3), rnd("b", 4, 3)]),
    C("softmax_cross_entropy", lambda x: F.softmax_cross_entropy(x, LABELS), [rnd("x", 4, 3)], stable=[0]),
    C("softmax_cross_entropy_ignore", lambda x: F.softmax_cross_entropy(x, LABELS_IGNORED, ignore_index=-1),
      [rnd("x", 4, 3)], of="softmax_cross_entropy", stable=[0]),
    C("softmax_cross_entropy_simple", lambda x: F.softmax_cross_entropy_simple(x, LABELS), [rnd("x", 4, 3)]),
    C("sigmoid_cross_entropy", F.sigmoid_cross_entropy, [rnd("x", 4, 1), rnd("t", 4, 1, lo=0.0, hi=1.0)], stable=[0]),
    C("binary_cross_entropy", F.binary_cross_entropy,
      [rnd("p", 4, 1, lo=0.1, hi=0.9), rnd("t", 4, 1, lo=0.0, hi=1.0)]),
    # ---- convolution ----------------------------------------------------------------------
    C("conv2d", lambda x, W, b: F.conv2d(x, W, b, 1, 1), [rnd("x", 2, 2, 4, 4), rnd("W", 3, 2, 3, 3), rnd("b", 3)]),
    C("conv2d_stride2", lambda x, W: F.conv2d(x, W, None, 2, 1), [rnd("x", 1, 2, 5, 4), rnd("W", 2, 2, 3, 2)],
      of="conv2d"),
    C("conv2d_simple", lambda x, W, b: F.conv2d_simple(x, W, b, 1, 1),
      [rnd("x", 2, 2, 3, 3), rnd("W", 3, 2, 3, 3), rnd("b", 3)]),
    C("deconv2d", lambda x, W, b: F.deconv2d(x, W, b, 2, 1), [rnd("x", 1, 2, 3, 3), rnd("W", 2, 3, 3, 3), rnd("b", 3)]),
    C("pooling", lambda x: F.pooling(x, 3, 2, 1), [distinct("pool", 2, 2, 5, 5)], orders=THIRD),
    C("pooling_2x2", lambda x: F.pooling(x, 2, 2), [distinct("pool2", 1, 2, 4, 4)], orders=THIRD, of="pooling"),
    C("pooling_simple", lambda x: F.pooling_simple(x, 2, 2), [distinct("pools", 1, 2, 4, 4)]),
    C("average_pooling", lambda x: F.average_pooling(x, 3, 2, 1), [rnd("x", 1, 2, 5, 5)], orders=THIRD),
    C("im2col", lambda x: F.im2col(x, 3, 2, 1), [rnd("x", 1, 2, 4, 4)], orders=THIRD),
    C("im2col_tensor", lambda x: F.im2col(x, 2, 1, 0, to_matrix=False), [rnd("x", 1, 2, 3, 3)], of="im2col"),
    C("col2im", lambda x: F.col2im(x, (1, 2, 4, 4), 2, 2, 0, to_matrix=False), [rnd("x", 1, 2, 2, 2, 2, 2)],
      orders=THIRD),
    C("pooling2d_grad", lambda gy: conv.Pooling2DGrad(_MAX_POOLING)(gy), [rnd("gy", 1, 2, 2, 2)], of=None),
    C("pooling2d_with_indexes", lambda x: conv.Pooling2DWithIndexes(_MAX_POOLING)(x), [rnd("x", 1, 2, 4, 4)], of=None),
    C("average_pooling2d_grad", lambda gy: conv.AveragePooling2DGrad(_AVERAGE_POOLING)(gy), [rnd("gy", 1, 2, 3, 3)],
      of=None),
    C("conv2d_grad_w", lambda x, gy: conv.Conv2DGradW(_CONVOLUTION)(x, gy),
      [rnd("x", 1, 2, 3, 3), rnd("gy", 1, 2, 3, 3)], of=None),
    C("gelu_grad", lambda x, gy: GELUGrad("none")(x, gy), [rnd("x", 3, 4), rnd("gy", 3, 4)], orders=THIRD, of=None),
    C("gelu_grad_from_output", lambda x, gy: GELUGradFromOutput("none")(x, gy, F.gelu(x).data),
      [rnd("x", 3, 4), rnd("gy", 3, 4)], orders=THIRD, of=None),
    C("gelu_tanh_grad", lambda x, gy: GELUGrad("tanh")(x, gy), [rnd("x", 3, 4), rnd("gy", 3, 4)],
      orders=THIRD, of=None),
    C("embed_id_grad", lambda gy: EmbedIDGrad((4, 3))(gy, IDS), [rnd("gy", 2, 3, 3)], of=None),
    C("get_item_grad", lambda gy: GetItemGrad(([0, 0, 2], slice(1, None)), (3, 4))(gy), [rnd("gy", 3, 3)], of=None),
    # ---- gradient checkpointing (its recorded walk is refused: first order only) -----------
    C("checkpoint", lambda x, W: checkpoint(_segment, x, W), [rnd("x", 3, 4), rnd("W", 4, 4)],
      orders=(1,), recorded=False, of=None),
]
BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "two cases share a name"

#: Public names of leafgrad.functions that have no row, and why.
EXEMPT = {
    "accuracy": "a metric: not differentiable (returns a Variable without a graph)",
    "im2col_array": "an array function (no Variables, no graph); checked through im2col",
    "col2im_array": "an array function (no Variables, no graph); checked through col2im",
}


def _ids(cases):
    return [c.name for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_first_order_both_walks(case):
    check_order(case, 1)


SECOND = [c for c in CASES if 2 in c.orders]
THIRD = [c for c in CASES if 3 in c.orders]


@pytest.mark.parametrize("case", SECOND, ids=_ids(SECOND))
def test_second_order(case):
    check_order(case, 2)


@pytest.mark.parametrize("case", THIRD, ids=_ids(THIRD))
def test_third_order(case):
    check_order(case, 3)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_float32_in_float32_out_at_every_order(case):
    check_float32(case)


def test_every_public_function_has_a_case():
    """A public function of leafgrad.functions has a row of its own (``of`` is its exact name) or an exemption."""
    covered = {case.of for case in CASES}
    missing = [name for name in F.__all__ if not isinstance(getattr(F, name), type)
               and name not in EXEMPT and name not in covered]
    assert not missing, (f"no gradient-check row for {missing}: add a row to CASES in {__file__} "
                         f"(a variant row names its function with of=...)")


def test_every_row_names_a_public_function_or_none():
    """``of`` is a public name of leafgrad.functions (a variant row must say which), or None for internal rows."""
    wrong = [f"{case.name} (of={case.of!r})" for case in CASES
             if case.of is not None and (case.of not in F.__all__ or isinstance(getattr(F, case.of), type))]
    assert not wrong, (f"rows naming no public function: {wrong}: a variant row declares of='<function>', "
                       f"a row of an internal function of=None")


def test_exemptions_are_public_and_have_no_row():
    stale = [name for name in EXEMPT if name not in F.__all__ or name in {c.of for c in CASES}]
    assert not stale, f"EXEMPT lists {stale}, which are not public or have a row: remove them from EXEMPT"


def test_checkpoint_refuses_the_recorded_walk():
    case = BY_NAME["checkpoint"]
    x, W = (Variable(a) for a in case.arrays())
    with pytest.raises(RuntimeError, match="double backward"):
        lg.grad(F.sum(case.f(x, W)), [x], create_graph=True)
