"""Losses and metrics: mean_squared_error softmax_cross_entropy sigmoid_cross_entropy binary_cross_entropy
accuracy, and the book's ``_simple`` versions."""
import weakref

import numpy as np
import pytest

import leafgrad.functions as F
from leafgrad import Variable
from test_functions_common import check_double, check_grad, rand


def _log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


# =============================================================================
# mean squared error
# =============================================================================
@pytest.mark.parametrize("fn", [F.mean_squared_error, F.mean_squared_error_simple], ids=["fused", "simple"])
def test_mean_squared_error(fn):
    a, b = rand(5, 2, seed=0), rand(5, 2, seed=1)
    np.testing.assert_allclose(fn(Variable(a), Variable(b)).data, ((a - b) ** 2).sum() / 5)
    check_grad(lambda x: fn(x, b), a)
    check_grad(lambda x: fn(a, x), b)
    check_double(lambda x: fn(x * x, b), a)


@pytest.mark.parametrize("fn", [F.mean_squared_error, F.mean_squared_error_simple], ids=["fused", "simple"])
def test_mean_squared_error_broadcast_and_shape_error(fn):
    name = fn.__name__
    a, b = rand(5, 3, seed=0), rand(3, seed=1)
    np.testing.assert_allclose(fn(Variable(a), b).data, ((a - b) ** 2).sum() / 5)
    check_grad(lambda x: fn(a, x), b)
    with pytest.raises(ValueError, match=rf"{name}: shapes \(5, 1\) and \(5,\) do not match "
                                         r"\(they would broadcast to \(5, 5\)\)"):
        fn(Variable(rand(5, 1)), rand(5))
    with pytest.raises(ValueError, match=rf"{name}: shapes \(3,\) and \(3, 1\) do not match"):
        fn(rand(3), rand(3, 1))  # 9 differences instead of 3


@pytest.mark.parametrize("fn", [F.mean_squared_error, F.mean_squared_error_simple], ids=["fused", "simple"])
def test_mean_squared_error_of_0d_arrays_is_one_sample(fn):
    a, b = np.array(2.0), np.array(0.5)
    y = fn(Variable(a), Variable(b))
    assert y.shape == () and float(y.data) == 2.25
    check_grad(lambda x: fn(x, b), a)


# =============================================================================
# softmax cross entropy
# =============================================================================
T = np.array([0, 2, 1, 2, 3])


@pytest.mark.parametrize("fn", [F.softmax_cross_entropy, F.softmax_cross_entropy_simple], ids=["fused", "simple"])
def test_softmax_cross_entropy(fn):
    x = rand(5, 4, seed=0)
    expected = -_log_softmax(x)[np.arange(5), T].mean()
    np.testing.assert_allclose(fn(Variable(x), T).data, expected, rtol=1e-12)
    check_grad(lambda v: fn(v, T), x)
    check_double(lambda v: fn(v, T), x)


def test_softmax_cross_entropy_gradient_formula_and_label_shapes():
    x = rand(5, 4, seed=1).astype(np.float32)
    xv = Variable(x)
    loss = F.softmax_cross_entropy(xv, T.reshape(5, 1).astype(np.int32))  # (N, 1) labels, as DeZero's ravel
    loss.backward()
    p = np.exp(_log_softmax(x.astype(np.float64)))
    onehot = np.eye(4)[T]
    np.testing.assert_allclose(xv.grad.data, (p - onehot) / 5, rtol=1e-5, atol=1e-7)
    assert loss.dtype == np.float32 and xv.grad.dtype == np.float32
    # labels given as a Variable get no gradient, and do not break anything
    tv = Variable(T)
    F.softmax_cross_entropy(Variable(x), tv).backward()
    assert tv.grad is None


def test_softmax_cross_entropy_ignore_index():
    x = rand(5, 4, seed=2)
    t = np.array([0, -100, 1, -100, 3])
    keep = t != -100
    expected = -_log_softmax(x)[np.arange(5)[keep], t[keep]].mean()
    xv = Variable(x)
    loss = F.softmax_cross_entropy(xv, t, ignore_index=-100)
    np.testing.assert_allclose(loss.data, expected, rtol=1e-12)
    loss.backward()
    np.testing.assert_array_equal(xv.grad.data[~keep], 0.0)
    check_grad(lambda v: F.softmax_cross_entropy(v, t, ignore_index=-100), x)
    check_double(lambda v: F.softmax_cross_entropy(v, t, ignore_index=-100), x)
    # an ignore index inside [0, C) is honoured too
    np.testing.assert_allclose(F.softmax_cross_entropy(Variable(x), T, ignore_index=2).data,
                               -_log_softmax(x)[[0, 2, 4], T[[0, 2, 4]]].mean(), rtol=1e-12)
    # every sample ignored: loss 0, gradient 0
    xv = Variable(x)
    loss = F.softmax_cross_entropy(xv, np.full(5, -1), ignore_index=-1)
    loss.backward()
    assert loss.data == 0.0 and np.all(xv.grad.data == 0.0)


def test_softmax_cross_entropy_errors():
    x = Variable(rand(3, 4))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: label 4 at position 1 is outside \[0, 4\)"):
        F.softmax_cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: label -1 at position 1 is outside \[0, 4\)"):
        F.softmax_cross_entropy(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: label -1 at position 1 is outside"):
        F.softmax_cross_entropy(x, np.array([0, -1, 1]), ignore_index=-100)
    with pytest.raises(TypeError, match="softmax_cross_entropy: t must be integer labels .* got an array of dtype float64"):
        F.softmax_cross_entropy(x, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: x has 3 rows but labels t have shape \(2,\) \(expected \(3,\)\)"):
        F.softmax_cross_entropy(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: expected x of shape \(N, C\), got shape \(4,\)"):
        F.softmax_cross_entropy(Variable(rand(4)), np.array([0]))


def test_softmax_cross_entropy_keeps_probabilities_not_logits(no_gc):
    x0 = Variable(rand(6, 5))
    x = x0 * 2.0
    ref = weakref.ref(x.data)
    loss = F.softmax_cross_entropy(x, np.array([0, 1, 2, 3, 4, 0]))
    del x
    assert ref() is None
    saved = loss.creator.saved
    assert saved[0].shape == (6, 5) and np.allclose(saved[0].sum(axis=1), 1.0)  # the probabilities
    loss.backward()
    assert x0.grad is not None
    assert loss.creator.saved is None  # released after backward


# =============================================================================
# sigmoid / binary cross entropy
# =============================================================================
def _bce_ref(p, t):
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum() / len(p)


def test_sigmoid_cross_entropy():
    x = rand(6, 1, seed=0)
    t = np.array([0, 1, 1, 0, 1, 0])  # (N,) int labels for (N, 1) logits, as in DeZero
    np.testing.assert_allclose(F.sigmoid_cross_entropy(Variable(x), t).data,
                               _bce_ref(1 / (1 + np.exp(-x)), t.reshape(6, 1)), rtol=1e-12)
    check_grad(lambda v: F.sigmoid_cross_entropy(v, t), x)
    check_double(lambda v: F.sigmoid_cross_entropy(v, t), x)
    soft = np.abs(rand(6, 1, seed=1)) % 1.0  # soft targets get a gradient when they are Variables
    check_grad(lambda s: F.sigmoid_cross_entropy(x, s), soft)
    x32 = Variable(x.astype(np.float32))
    loss = F.sigmoid_cross_entropy(x32, t)
    loss.backward()
    assert loss.dtype == np.float32 and x32.grad.dtype == np.float32
    with pytest.raises(ValueError, match=r"sigmoid_cross_entropy: targets of shape \(5,\) do not fit inputs "
                                         r"of shape \(6, 1\)"):
        F.sigmoid_cross_entropy(x32, np.ones(5))


def test_binary_cross_entropy():
    p = 1 / (1 + np.exp(-rand(6, 1, seed=0)))
    t = np.array([0, 1, 1, 0, 1, 0])
    np.testing.assert_allclose(F.binary_cross_entropy(Variable(p), t).data, _bce_ref(p, t.reshape(6, 1)),
                               rtol=1e-12)
    check_grad(lambda v: F.binary_cross_entropy(v, t), p)
    check_double(lambda v: F.binary_cross_entropy(v, t), p)
    # clipped as DeZero: finite at 0 and 1
    assert np.isfinite(F.binary_cross_entropy(Variable(np.array([0.0, 1.0])), np.array([1, 0])).data)


def test_binary_cross_entropy_float32():
    p32 = Variable(np.array([[0.2], [0.7]], np.float32))
    assert F.binary_cross_entropy(p32, np.array([0, 1])).dtype == np.float32


# =============================================================================
# accuracy
# =============================================================================
def test_accuracy():
    y = Variable(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], np.float32))
    t = np.array([1, 1, 1])
    acc = F.accuracy(y, t)
    assert isinstance(acc, Variable) and acc.creator is None
    np.testing.assert_allclose(acc.data, 2 / 3)
    assert acc.data.dtype == np.float64 and acc.data.shape == ()  # as DeZero: as_array(result.mean())
    assert F.accuracy(y.data, Variable(t.reshape(3, 1))).data == acc.data
    with pytest.raises(ValueError, match=r"accuracy: y of shape \(3, 2\) gives 3 predictions but labels t "
                                         r"have shape \(2,\)"):
        F.accuracy(y, np.array([1, 0]))
