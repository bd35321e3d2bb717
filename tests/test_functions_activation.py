"""Activations: sigmoid(_simple) relu leaky_relu softmax(_simple) log_softmax gelu elu softplus silu."""
import math
import weakref

import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Variable
from test_functions_common import check_double, check_grad, rand


def _softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_erf = np.vectorize(math.erf)

ACTIVATIONS = {
    "sigmoid_simple": (F.sigmoid_simple, lambda x: 1 / (1 + np.exp(-x))),
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (F.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x)),
    "leaky_relu_neg_slope": (lambda x: F.leaky_relu(x, slope=-0.3), lambda x: np.where(x > 0, x, -0.3 * x)),
    "softmax": (F.softmax, _softmax),
    "softmax_axis0": (lambda x: F.softmax(x, axis=0), lambda x: _softmax(x, 0)),
    "softmax_simple": (F.softmax_simple, _softmax),
    "log_softmax": (F.log_softmax, lambda x: np.log(_softmax(x))),
    "log_softmax_neg_axis": (lambda x: F.log_softmax(x, axis=-1), lambda x: np.log(_softmax(x, -1))),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    "elu": (F.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    "elu_alpha": (lambda x: F.elu(x, alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    "elu_neg_alpha": (lambda x: F.elu(x, alpha=-0.5), lambda x: np.where(x > 0, x, -0.5 * np.expm1(x))),
    "softplus": (F.softplus, lambda x: np.log1p(np.exp(x))),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0), lambda x: np.log1p(np.exp(2 * x)) / 2),
    "silu": (F.silu, lambda x: x / (1 + np.exp(-x))),
}
PIECEWISE_LINEAR = {"relu", "leaky_relu", "leaky_relu_neg_slope"}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_matches_reference(name):
    f, ref = ACTIVATIONS[name]
    x = rand(4, 5, seed=0) * 2
    np.testing.assert_allclose(f(Variable(x)).data, ref(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward(name):
    check_grad(ACTIVATIONS[name][0], rand(3, 4, seed=1))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_double_backward(name):
    f = ACTIVATIONS[name][0]
    if name in PIECEWISE_LINEAR:  # second derivative 0: check through a product
        check_double(lambda x: f(x) * x, rand(2, 3, seed=2))
    else:
        check_double(f, rand(2, 3, seed=2))


def test_sigmoid_forward_backward_double():
    x = rand(3, 4, seed=3)
    np.testing.assert_allclose(F.sigmoid(Variable(x)).data, 1 / (1 + np.exp(-x)), rtol=1e-12)
    check_grad(F.sigmoid, x)
    check_double(F.sigmoid, x)


def test_softmax_rows_sum_to_one_and_errors():
    y = F.softmax(Variable(rand(3, 5)))
    np.testing.assert_allclose(y.data.sum(axis=1), 1.0)
    with pytest.raises(IndexError, match=r"softmax: axis 1 is out of range for an input of shape \(5,\)"):
        F.softmax(Variable(rand(5)))
    with pytest.raises(ValueError, match=r"log_softmax: axis 2 is out of range"):
        F.log_softmax(Variable(rand(5, 2)), axis=2)


def test_gelu_bad_approximate():
    with pytest.raises(ValueError, match="gelu: approximate must be"):
        F.gelu(Variable(rand(3)), approximate="erf")


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 5e-6), (np.float64, 2e-7)])
def test_gelu_exact_relative_accuracy_over_both_tails(dtype, rtol):
    # float32 has its own shorter fit, float64 the longer one: both against math.erfc, relative
    # to the value itself (the lower tail's tiny values included, as long as they are normal)
    x = np.concatenate([np.linspace(-13, 13, 20001), np.logspace(-30, 1, 200), -np.logspace(-30, 1, 200),
                        [0.0]]).astype(dtype)
    with lg.no_grad():
        y = F.gelu(Variable(x)).data
    assert y.dtype == dtype
    ref = np.array([float(v) * 0.5 * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    normal = np.abs(ref) > np.finfo(dtype).tiny
    np.testing.assert_allclose(y[normal], ref[normal], rtol=rtol, atol=0)
    assert np.all(np.abs(y[~normal] - ref[~normal]) <= 2 * np.finfo(dtype).tiny)


def test_gelu_exact_gradient_at_and_near_zero():
    # backward reads Phi(x) as y / x: where x is 0 (or its square underflows) Phi is 1/2
    x = Variable(np.array([0.0, 1e-30, -1e-20, 1.0], np.float32))
    F.sum(F.gelu(x)).backward()
    phi1 = 0.5 * math.erfc(-1 / math.sqrt(2)) + math.exp(-0.5) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(x.grad.data, [0.5, 0.5, 0.5, phi1], rtol=1e-6)
    assert x.grad.dtype == np.float32


def test_softplus_bad_beta():
    with pytest.raises(ValueError, match="softplus: beta must be positive"):
        F.softplus(Variable(rand(3)), beta=0)


def test_relu_gradient_is_mask_and_leaky_matches_dezero_formula():
    x = Variable(np.array([-1.0, 0.0, 2.0], np.float32))
    F.sum(F.relu(x)).backward()
    np.testing.assert_array_equal(x.grad.data, [0, 0, 1])
    x.cleargrad()
    F.sum(F.leaky_relu(x)).backward()
    np.testing.assert_allclose(x.grad.data, [0.2, 0.2, 1.0])
    assert x.grad.dtype == np.float32


# =============================================================================
# memory: functions whose derivative is written from the output keep only the output
# =============================================================================
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "softmax", "log_softmax", "elu", "softplus"])
def test_preactivation_freed(no_gc, name):
    f = ACTIVATIONS[name][0]
    x = Variable(rand(8, 5))
    h = x * 2.0
    ref = weakref.ref(h.data)
    y = f(h)
    del h
    assert ref() is None, f"{name} kept its input"
    assert y.data is not None
    F.sum(y * y).backward()
    assert x.grad is not None


@pytest.mark.parametrize("name", ["relu", "softmax", "log_softmax", "elu", "softplus"])
def test_output_kept_functions_double_backward_after_output_dropped(name):
    """Second order through a function whose user-visible output Variable is gone."""
    f = ACTIVATIONS[name][0]
    x = Variable(rand(3, 4, seed=5))
    loss = F.sum(f(x) * x)  # f's output Variable is dropped right away
    gx, = lg.grad(loss, [x], create_graph=True)
    ggx, = lg.grad(F.sum(gx * gx), [x])
    assert ggx is not None and np.all(np.isfinite(ggx.data))
