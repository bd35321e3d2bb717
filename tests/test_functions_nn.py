"""Linear algebra and layer functions: matmul linear linear_simple dropout embed_id batch_norm layer_norm."""
import weakref

import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Variable, test_mode
from test_functions_common import check_double, check_grad, rand


# =============================================================================
# matmul
# =============================================================================
def test_matmul_2d():
    a, b = rand(3, 4, seed=0), rand(4, 2, seed=1)
    np.testing.assert_allclose(F.matmul(Variable(a), Variable(b)).data, a @ b)
    np.testing.assert_allclose((Variable(a) @ b).data, a @ b)
    check_grad(lambda x: F.matmul(x, b), a)
    check_grad(lambda w: F.matmul(a, w), b)
    check_double(lambda x: F.matmul(x, x.T), a)


def test_matmul_batched_broadcast():
    a, b = rand(2, 3, 4, seed=0), rand(4, 5, seed=1)
    np.testing.assert_allclose(F.matmul(Variable(a), Variable(b)).data, a @ b)
    check_grad(lambda x: F.matmul(x, b), a)
    check_grad(lambda w: F.matmul(a, w), b)
    c = rand(3, 1, 2, 3, seed=2)
    d = rand(4, 3, 2, seed=3)
    np.testing.assert_allclose(F.matmul(Variable(c), Variable(d)).data, c @ d)
    check_grad(lambda x: F.matmul(x, d), c)
    check_double(lambda x: F.matmul(x, x * 2.0), rand(2, 3, 3, seed=4))


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        F.matmul(Variable(rand(2, 3)), Variable(rand(4, 5)))
    with pytest.raises(ValueError, match=r"matmul: the batch axes of shapes \(2, 2, 3\) and \(3, 3, 1\)"):
        F.matmul(Variable(rand(2, 2, 3)), Variable(rand(3, 3, 1)))


# =============================================================================
# linear
# =============================================================================
@pytest.mark.parametrize("fn", [F.linear, F.linear_simple], ids=["linear", "linear_simple"])
def test_linear_forward_backward(fn):
    x, W, b = rand(5, 3, seed=0), rand(3, 4, seed=1), rand(4, seed=2)
    np.testing.assert_allclose(fn(Variable(x), Variable(W), Variable(b)).data, x @ W + b)
    np.testing.assert_allclose(fn(Variable(x), Variable(W)).data, x @ W)
    check_grad(lambda v: fn(v, W, b), x)
    check_grad(lambda v: fn(x, v, b), W)
    check_grad(lambda v: fn(x, W, v), b)
    check_double(lambda v: fn(v, v.T, b[:3]), rand(3, 3, seed=3))
    check_double(lambda v: fn(x, v * v, b), W)


def test_linear_batched_input_and_row_bias():
    x, W, b = rand(2, 5, 3, seed=0), rand(3, 4, seed=1), rand(1, 4, seed=2)
    np.testing.assert_allclose(F.linear(Variable(x), Variable(W), Variable(b)).data, x @ W + b)
    check_grad(lambda v: F.linear(v, W, b), x)
    check_grad(lambda v: F.linear(x, v, b), W)
    check_grad(lambda v: F.linear(x, W, v), b)
    check_double(lambda v: F.linear(v * v, W, b), x[:, :2])


class _CountingArray(np.ndarray):
    """An ndarray that counts reads of ``.T``."""

    count = 0

    @property
    def T(self):
        type(self).count += 1
        return np.asarray(self).T


def test_linear_skips_input_gradient_for_a_constant_batch():
    x = rand(6, 3)  # a plain array: a constant
    W = Variable(rand(3, 4).view(_CountingArray))
    b = Variable(np.zeros(4))
    y = F.linear(x, W, b)
    _CountingArray.count = 0
    F.sum(y).backward()
    assert _CountingArray.count == 0  # gx = gy @ W.T was never computed
    np.testing.assert_allclose(W.grad.data, x.T @ np.ones((6, 4)))
    np.testing.assert_allclose(b.grad.data, np.full(4, 6.0))


def test_linear_errors():
    x = Variable(rand(5, 3))
    with pytest.raises(ValueError, match=r"linear: x of shape \(5, 3\) and W of shape \(4, 2\) do not match"):
        F.linear(x, Variable(rand(4, 2)))
    with pytest.raises(ValueError, match=r"linear: W must be 2-D"):
        F.linear(x, Variable(rand(3)))
    with pytest.raises(ValueError, match=r"linear: b of shape \(3,\) does not broadcast to the output shape "
                                         r"\(5, 2\)"):
        F.linear(x, Variable(rand(3, 2)), Variable(rand(3)))


def test_linear_keeps_x_and_W_but_not_b_nor_output(no_gc):
    x0, W, b0 = Variable(rand(5, 3)), Variable(rand(3, 4)), Variable(rand(4))
    x, b = x0 * 1.0, b0 * 1.0  # intermediates
    x_ref, b_ref = weakref.ref(x.data), weakref.ref(b.data)
    h = F.linear(x, W, b)
    h_ref = weakref.ref(h.data)
    y = F.relu(h)
    del x, b, h
    assert x_ref() is not None  # needed for gW
    assert b_ref() is None  # the bias gradient needs only gy
    assert h_ref() is None  # relu keeps its own output, not its input
    F.sum(y).backward()
    assert x0.grad is not None and W.grad is not None and b0.grad is not None
    assert x_ref() is None  # released after backward


def test_mlp_step_matches_hand_written_numpy():
    """One forward/backward of a ReLU MLP with softmax cross entropy equals the NumPy formulas."""
    rs = np.random.RandomState(0)
    sizes = [20, 16, 16, 10]
    x = rs.rand(8, sizes[0]).astype(np.float32)
    t = rs.randint(0, 10, size=8)
    Ws = [(rs.randn(i, o) * 0.1).astype(np.float32) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(o, np.float32) for o in sizes[1:]]
    # leafgrad
    params = [Variable(a.copy()) for pair in zip(Ws, bs) for a in pair]
    h = x
    for i in range(3):
        h = F.linear(h, params[2 * i], params[2 * i + 1])
        if i < 2:
            h = F.relu(h)
    loss = F.softmax_cross_entropy(h, t)
    loss.backward()
    # NumPy
    acts = [x]
    for i in range(3):
        z = acts[-1] @ Ws[i] + bs[i]
        acts.append(np.maximum(z, 0) if i < 2 else z)
    z = acts[-1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    ref_loss = -np.log(p[np.arange(8), t]).mean()
    g = p.copy()
    g[np.arange(8), t] -= 1
    g /= 8
    grads = []
    for i in reversed(range(3)):
        grads.append((acts[i].T @ g, g.sum(axis=0)))
        g = g @ Ws[i].T
        if i > 0:
            g = g * (acts[i] > 0)
    grads = [a for pair in reversed(grads) for a in pair]
    np.testing.assert_allclose(loss.data, ref_loss, rtol=1e-6)
    for prm, ref in zip(params, grads):
        assert prm.grad.dtype == np.float32
        np.testing.assert_allclose(prm.grad.data, ref, rtol=1e-5, atol=1e-7)


# =============================================================================
# dropout
# =============================================================================
def test_dropout_matches_dezero_random_stream_and_scale():
    x = rand(4, 5, dtype=np.float32)
    np.random.seed(7)
    y = F.dropout(Variable(x), 0.3)
    after = np.random.rand(3)  # dropout consumed exactly DeZero's draws
    np.random.seed(7)
    mask = np.random.rand(4, 5) > 0.3
    expected = x * mask / np.array(0.7, dtype=np.float32)
    np.testing.assert_array_equal(np.random.rand(3), after)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, expected)


def test_dropout_backward_and_test_mode():
    np.random.seed(1)
    x = Variable(rand(6, 4))
    y = F.dropout(x)
    mask = y.data != 0
    F.sum(y).backward()
    np.testing.assert_allclose(x.grad.data, mask / 0.5)
    with test_mode():
        assert F.dropout(x) is x
    assert lg.Config.train
    z = F.dropout(Variable(rand(3)), 0.0)
    assert np.all(z.data != 0)


def test_dropout_double_backward():
    np.random.seed(2)
    w = rand(3, 4)

    def f(x):
        np.random.seed(3)  # the same mask at every call
        return F.dropout(x * x) * w
    check_grad(f, rand(3, 4, seed=4))
    check_double(f, rand(3, 4, seed=4))


def test_dropout_errors_and_memory(no_gc):
    with pytest.raises(ValueError, match=r"dropout: dropout_ratio must be in \[0, 1\), got 1.0"):
        F.dropout(Variable(rand(3)), 1.0)
    x = Variable(rand(10, 10))
    h = x * 2.0
    ref = weakref.ref(h.data)
    y = F.dropout(h)
    del h
    assert ref() is None  # only the boolean mask is kept
    F.sum(y).backward()
    assert x.grad is not None


# =============================================================================
# embed_id
# =============================================================================
def test_embed_id():
    W = rand(5, 3, seed=0)
    ids = np.array([[0, 4], [4, 4]])
    Wv = Variable(W)
    y = F.embed_id(ids, Wv)
    np.testing.assert_array_equal(y.data, W[ids])
    F.sum(y).backward()
    np.testing.assert_array_equal(Wv.grad.data[:, 0], [1, 0, 0, 0, 3])
    check_grad(lambda w: F.embed_id(ids, w), W)
    check_double(lambda w: F.embed_id(ids, w * w), W)
    with pytest.raises(ValueError, match=r"embed_id: id 5 at position 1 is outside \[0, 5\)"):
        F.embed_id(np.array([1, 5]), Wv)
    with pytest.raises(TypeError, match="embed_id: x must be integer labels"):
        F.embed_id(np.array([1.0]), Wv)


def test_embed_id_does_not_keep_the_table(no_gc):
    W0 = Variable(rand(5, 3))
    W = W0 * 1.0
    ref = weakref.ref(W.data)
    y = F.embed_id(np.array([1, 2, 2]), W)
    del W
    assert ref() is None
    F.sum(y).backward()
    np.testing.assert_array_equal(W0.grad.data[:, 0], [0, 1, 2, 0, 0])


# =============================================================================
# batch_norm / layer_norm
# =============================================================================
def _bn_ref(x, gamma, beta, eps, axes):
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    shape = [1] * x.ndim
    shape[1] = -1
    return (x - mu) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape), mu, var


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 2), (4, 3, 5)])
def test_batch_norm_training_forward_and_running_stats(shape):
    x = rand(*shape, seed=0) * 2 + 1
    gamma, beta = rand(3, seed=1), rand(3, seed=2)
    mean, var = np.zeros(3), np.ones(3)
    mean0, var0 = mean.copy(), var.copy()
    y = F.batch_norm(Variable(x), Variable(gamma), Variable(beta), mean, var)
    axes = (0,) + tuple(range(2, len(shape)))
    ref, mu, v = _bn_ref(x, gamma, beta, 2e-5, axes)
    np.testing.assert_allclose(y.data, ref, rtol=1e-10, atol=1e-12)
    m = x.size // 3
    np.testing.assert_allclose(mean, 0.9 * mean0 + 0.1 * mu.reshape(3))
    np.testing.assert_allclose(var, 0.9 * var0 + 0.1 * m / (m - 1) * v.reshape(3))
    # test mode uses (and does not change) the running statistics
    mean1, var1 = mean.copy(), var.copy()
    with test_mode():
        z = F.batch_nrom(Variable(x), Variable(gamma), Variable(beta), mean, var)
    pshape = [1] * len(shape)
    pshape[1] = 3
    expected = ((x - mean1.reshape(pshape)) / np.sqrt(var1.reshape(pshape) + 2e-5) * gamma.reshape(pshape)
                + beta.reshape(pshape))
    np.testing.assert_allclose(z.data, expected, rtol=1e-10)
    np.testing.assert_array_equal(mean, mean1)
    np.testing.assert_array_equal(var, var1)


@pytest.mark.parametrize("shape", [(5, 3), (3, 3, 2, 2)])
def test_batch_norm_backward(shape):
    x = rand(*shape, seed=0)
    gamma, beta = rand(3, seed=1), rand(3, seed=2)
    stats = lambda: (np.zeros(3), np.ones(3))  # noqa: E731
    w = rand(*shape, seed=3)  # weights so that the gradient is not trivially 0
    check_grad(lambda v: F.batch_norm(v, gamma, beta, *stats()) * w, x)
    check_grad(lambda g: F.batch_norm(x, g, beta, *stats()) * w, gamma)
    check_grad(lambda b: F.batch_norm(x, gamma, b, *stats()) * w, beta)
    with test_mode():
        check_grad(lambda v: F.batch_norm(v, gamma, beta, np.full(3, 0.1), np.full(3, 2.0)) * w, x)


def test_batch_norm_and_layer_norm_double_backward():
    gamma, beta = rand(3, seed=1), rand(3, seed=2)
    check_double(lambda v: F.batch_norm(v, gamma, beta, np.zeros(3), np.ones(3)), rand(4, 3, seed=0))
    check_double(lambda v: F.layer_norm(v, gamma, beta), rand(2, 3, seed=0))


def test_batch_norm_errors():
    x = Variable(rand(4, 3))
    g = Variable(np.ones(3))
    with pytest.raises(ValueError, match=r"batch_norm: gamma has shape \(2,\), expected \(3,\)"):
        F.batch_norm(x, Variable(np.ones(2)), g, np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=r"batch_norm: var has shape \(4,\), expected \(3,\)"):
        F.batch_norm(x, g, g, np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match=r"batch_norm: expected an input of shape \(N, C\)"):
        F.batch_norm(Variable(rand(3)), g, g, np.zeros(3), np.ones(3))


def test_batch_norm_float32_and_memory(no_gc):
    x0 = Variable(rand(8, 3, 2, 2, dtype=np.float32))
    gamma, beta = Variable(np.ones(3, np.float32)), Variable(np.zeros(3, np.float32))
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    x = x0 * 2.0
    ref = weakref.ref(x.data)
    y = F.batch_norm(x, gamma, beta, mean, var)
    del x
    assert ref() is None  # backward works from the normalized output and 1/std alone
    assert y.dtype == np.float32 and mean.dtype == np.float32 and var.dtype == np.float32
    F.sum(y * y).backward()
    assert x0.grad.dtype == np.float32 and gamma.grad.dtype == np.float32


def test_layer_norm():
    x = rand(4, 2, 3, seed=0)
    gamma, beta = rand(3, seed=1), rand(3, seed=2)
    mu, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(F.layer_norm(Variable(x), gamma, beta).data,
                               (x - mu) / np.sqrt(v + 1e-5) * gamma + beta, rtol=1e-10)
    np.testing.assert_allclose(F.layer_norm(Variable(x)).data, (x - mu) / np.sqrt(v + 1e-5), rtol=1e-10)
    g2 = rand(2, 3, seed=3)
    mu2, v2 = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    np.testing.assert_allclose(F.layer_norm(Variable(x), g2, eps=1e-3).data,
                               (x - mu2) / np.sqrt(v2 + 1e-3) * g2, rtol=1e-10)
    w = rand(4, 2, 3, seed=4)
    check_grad(lambda v: F.layer_norm(v, gamma, beta) * w, x)
    check_grad(lambda g: F.layer_norm(x, g, beta) * w, gamma)
    check_grad(lambda b: F.layer_norm(x, gamma, b) * w, beta)
    with pytest.raises(ValueError, match=r"layer_norm: gamma has shape \(2,\), which is not the trailing shape "
                                         r"of an input of shape \(4, 2, 3\)"):
        F.layer_norm(Variable(x), np.ones(2))


def test_layer_norm_memory(no_gc):
    x0 = Variable(rand(4, 6))
    x = x0 * 2.0
    ref = weakref.ref(x.data)
    y = F.layer_norm(x, Variable(np.ones(6)), Variable(np.zeros(6)))
    del x
    assert ref() is None
    F.sum(y * y).backward()
    assert x0.grad is not None
