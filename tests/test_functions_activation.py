"""Activations: sigmoid(_simple) relu leaky_relu softmax(_simple) log_softmax gelu elu softplus silu."""
import math

import numpy as np
import pytest

import leafgrad.functions as F
import leafgrad as lg
from leafgrad import Variable
from test_functions_common import rand


# Forward against NumPy, gradients at every order, what each keeps, stability: declared in each
# function's row of tests/test_gradients.py and checked there and in tests/test_function_rows.py.


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


@pytest.mark.parametrize("dtype, rtol, tail_rtol", [(np.float32, 2e-6, 1e-5), (np.float64, 2e-7, 2e-7)])
def test_gelu_exact_relative_accuracy_over_both_tails(dtype, rtol, tail_rtol):
    # float32 has its own shorter fit, float64 the longer one: both against math.erfc, relative
    # to the value itself (the lower tail's tiny values included, as long as they are normal).
    # Below x = -6 float32's own rounding of x^2 / 2 (up to 84 at x = -13, half an ulp of it is
    # 4e-6 relative in exp(-x^2 / 2)) allows ``tail_rtol``.
    x = np.concatenate([np.linspace(-13, 13, 20001), np.logspace(-30, 1, 200), -np.logspace(-30, 1, 200),
                        [0.0]]).astype(dtype)
    with lg.no_grad():
        y = F.gelu(Variable(x)).data
    assert y.dtype == dtype
    ref = np.array([float(v) * 0.5 * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    normal = np.abs(ref) > np.finfo(dtype).tiny
    near = normal & (x >= -6)
    np.testing.assert_allclose(y[near], ref[near], rtol=rtol, atol=0)
    np.testing.assert_allclose(y[normal], ref[normal], rtol=tail_rtol, atol=0)
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


@pytest.mark.parametrize("shape, dtype", [((4, 8, 16, 16), np.float32), ((128, 1000), np.float64),
                                          ((7, 1000), np.float16), ((3, 5), np.float32), ((0, 8192), np.float32)])
def test_relu_forward_is_numpy_maximum_whatever_the_layout(shape, dtype):
    """Large contiguous arrays take the row-by-row path (see activation._relu_array); same answer."""
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    if x.size:
        x.flat[:4] = [np.nan, -0.0, np.inf, -np.inf]
    for a in (x, x.T):  # contiguous, and a transposed view
        y = F.relu(a).data
        expected = np.maximum(a, 0)
        assert y.dtype == dtype and y.shape == a.shape and y.flags.writeable
        np.testing.assert_array_equal(y, expected)
        assert np.array_equal(np.signbit(y), np.signbit(expected))


@pytest.mark.parametrize("name", ["relu", "softmax", "log_softmax", "elu", "softplus"])
def test_output_kept_functions_double_backward_after_output_dropped(name):
    """Second order through a function whose user-visible output Variable is gone."""
    f = getattr(F, name)
    x = Variable(rand(3, 4, seed=5))
    loss = F.sum(f(x) * x)  # f's output Variable is dropped right away
    gx, = lg.grad(loss, [x], create_graph=True)
    ggx, = lg.grad(F.sum(gx * gx), [x])
    assert ggx is not None and np.all(np.isfinite(ggx.data))
