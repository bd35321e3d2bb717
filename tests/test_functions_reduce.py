"""Reductions: sum max min mean average var logsumexp, over random shapes and axes."""
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import leafgrad.functions as F
from leafgrad import Variable
from test_functions_common import check_double, check_grad, rand


def _np_logsumexp(a, axis=None, keepdims=False):
    m = a.max(axis=axis, keepdims=True)
    y = np.log(np.exp(a - m).sum(axis=axis, keepdims=True)) + m
    return y if keepdims else (y.reshape(()) if axis is None else np.squeeze(y, axis=axis))


REDUCTIONS = {
    # name: (leafgrad function(x, axis, keepdims), NumPy reference(a, axis, keepdims))
    "sum": (F.sum, lambda a, axis, k: a.sum(axis=axis, keepdims=k)),
    "max": (F.max, lambda a, axis, k: a.max(axis=axis, keepdims=k)),
    "min": (F.min, lambda a, axis, k: a.min(axis=axis, keepdims=k)),
    "mean": (F.mean, lambda a, axis, k: a.mean(axis=axis, keepdims=k)),
    "average": (lambda x, axis, k: F.average(x, axis, keepdims=k),
                lambda a, axis, k: a.mean(axis=axis, keepdims=k)),
    "var": (F.var, lambda a, axis, k: a.var(axis=axis, keepdims=k)),
    "logsumexp": (F.logsumexp, _np_logsumexp),
}
AXES = [None, 0, 1, -1, (0, 2), (-1, 0), ()]


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_forward_matches_numpy(name, axis, keepdims):
    f, ref = REDUCTIONS[name]
    a = rand(2, 3, 4, seed=0)
    y = f(Variable(a), axis, keepdims)
    expected = ref(a, axis, keepdims)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [None, 1, (0, -1)], ids=str)
def test_backward_and_double_backward(name, axis):
    f = REDUCTIONS[name][0]
    a = rand(2, 3, 2, seed=1)
    check_grad(lambda x: f(x, axis, False), a)
    check_double(lambda x: f(x * x, axis, True), a)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_zero_dimensional_input(name):
    f, ref = REDUCTIONS[name]
    a = np.array(1.5)
    x = Variable(a)
    y = f(x, None, False)
    assert y.shape == ()
    np.testing.assert_allclose(y.data, ref(a, None, False))
    y.backward()
    assert x.grad.shape == ()


def test_max_gradient_goes_to_every_maximum_like_dezero():
    x = Variable(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]))
    F.sum(F.max(x, axis=1)).backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 1, 1], [1, 0, 0]])
    assert F.max(x).data == 3.0 and x.max(axis=0).shape == (3,) and x.min(keepdims=True).shape == (1, 1)


def test_average_with_weights():
    a = rand(3, 4, seed=2)
    w1 = np.array([1.0, 2.0, 0.5, 3.0])
    y = F.average(Variable(a), axis=1, weights=w1)
    np.testing.assert_allclose(y.data, np.average(a, axis=1, weights=w1))
    w2 = np.abs(rand(3, 4, seed=3))
    np.testing.assert_allclose(F.average(Variable(a), weights=w2).data, np.average(a, weights=w2))
    np.testing.assert_allclose(F.average(Variable(a), axis=0, weights=w2).data, np.average(a, axis=0, weights=w2))
    check_grad(lambda x: F.average(x, axis=-1, weights=w1), a)
    check_grad(lambda w: F.average(a, axis=1, weights=w), w1)
    with pytest.raises(ValueError, match=r"average: weights of shape \(3,\) do not fit an input of shape \(3, 4\)"):
        F.average(Variable(a), axis=1, weights=np.ones(3))


def test_var_ddof():
    a = rand(5, 3, seed=4)
    np.testing.assert_allclose(F.var(Variable(a), axis=0, ddof=1).data, a.var(axis=0, ddof=1))
    check_grad(lambda x: F.var(x, axis=0, ddof=1), a)
    with pytest.raises(ValueError, match="var: ddof=5 leaves no degrees of freedom"):
        F.var(Variable(a), axis=0, ddof=5)


def test_logsumexp_handles_minus_infinity():
    a = np.array([[-np.inf, -np.inf], [0.0, -np.inf]])
    y = F.logsumexp(Variable(a), axis=1)
    assert y.data[0] == -np.inf and y.data[1] == 0.0


def test_errors_name_function_axis_and_shape():
    x = Variable(rand(2, 3))
    for name in ["sum", "max", "min", "mean", "var", "logsumexp"]:
        with pytest.raises(IndexError, match=rf"{name}: axis 3 is out of range for an input of shape \(2, 3\)"):
            getattr(F, name)(x, axis=3)
        with pytest.raises(ValueError, match=rf"{name}: axis -3 is out of range"):
            getattr(F, name)(x, axis=-3)
    with pytest.raises(ValueError, match=r"sum: repeated axis in \(1, -1\)"):
        F.sum(x, axis=(1, -1))
    with pytest.raises(TypeError, match="mean: axis must be None, an int or a tuple of ints, got 1.5"):
        F.mean(x, axis=1.5)
    with pytest.raises(ValueError, match=r"max: cannot reduce an empty input of shape \(0, 3\)"):
        F.max(Variable(np.zeros((0, 3))))


# =============================================================================
# memory: reductions keep nothing (max keeps a boolean mask)
# =============================================================================
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_input_freed(no_gc, name):
    f = REDUCTIONS[name][0]
    x = Variable(rand(6, 5))
    h = x * 2.0
    ref = weakref.ref(h.data)
    y = f(h, 1, False)
    del h
    assert ref() is None
    F.sum(y).backward()
    assert x.grad.shape == (6, 5)


# =============================================================================
# Hypothesis: random shapes, axes (negative too), keepdims, 0-d inputs
# =============================================================================
@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3))
    ndim = len(shape)
    if ndim == 0:
        axis = draw(st.sampled_from([None, ()]))
    else:
        axis = draw(st.one_of(
            st.none(),
            st.integers(-ndim, ndim - 1),
            st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).map(
                lambda ax: tuple(a - ndim if a % 2 else a for a in ax))))
    return shape, axis


@settings(max_examples=25, deadline=None)
@given(shape_and_axis(), st.booleans(), st.sampled_from(sorted(REDUCTIONS)))
def test_property_reductions(shape_axis, keepdims, name):
    shape, axis = shape_axis
    f, ref = REDUCTIONS[name]
    a = rand(*shape)
    x = Variable(a)
    y = f(x, axis, keepdims)
    expected = ref(a, axis, keepdims)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.data, expected, rtol=1e-10, atol=1e-12)
    F.sum(y).backward()
    assert x.grad.shape == shape
    if name == "sum":
        np.testing.assert_array_equal(x.grad.data, np.ones(shape))
    elif name in ("mean", "average"):
        n = a.size // max(np.size(expected), 1)
        np.testing.assert_allclose(x.grad.data, np.full(shape, 1.0 / n))
    elif name == "logsumexp":  # the softmax over the reduced axes sums to 1 per output
        np.testing.assert_allclose(x.grad.data.sum(), np.size(expected))


@settings(max_examples=25, deadline=None)
@given(shape_and_axis())
def test_property_sum_gradient_check(shape_axis):
    shape, axis = shape_axis
    w = rand(*np.shape(np.sum(np.zeros(shape), axis=axis, keepdims=True)), seed=1)
    check_grad(lambda x: F.sum(x, axis, keepdims=True) * w, rand(*shape))
