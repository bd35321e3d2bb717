"""Element-wise math: sin cos tanh exp log square abs clip maximum minimum where sigmoid."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import leafgrad.functions as F
from leafgrad import Variable
from test_functions_common import check_double, check_grad, rand

# Forward against NumPy, gradients at every order (both sides of each kink), what each keeps:
# declared in each function's row of tests/test_gradients.py and checked there and in
# tests/test_function_rows.py.


def test_clip_passes_gradient_at_the_bounds_like_dezero():
    x = Variable(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    F.sum(F.clip(x, -1.0, 1.0)).backward()
    np.testing.assert_array_equal(x.grad.data, [0, 1, 1, 1, 0])


def test_clip_one_sided_and_errors():
    x = Variable(np.array([-2.0, 0.5, 2.0]))
    np.testing.assert_array_equal(F.clip(x, None, 1.0).data, [-2.0, 0.5, 1.0])
    np.testing.assert_array_equal(F.clip(x, 0.0, None).data, [0.0, 0.5, 2.0])
    with pytest.raises(ValueError, match=r"clip: x_min \(2.0\) is greater than x_max \(1.0\)"):
        F.clip(x, 2.0, 1.0)
    with pytest.raises(ValueError, match="clip"):
        F.clip(x, None, None)


def test_clip_with_numpy_float64_bounds_keeps_float32():
    x = Variable(rand(5, dtype=np.float32))
    y = F.clip(x, np.float64(-0.5), np.float64(0.5))
    assert y.dtype == np.float32


# =============================================================================
# maximum / minimum / where (broadcasting)
# =============================================================================
@pytest.mark.parametrize("fn,ref", [(F.maximum, np.maximum), (F.minimum, np.minimum)])
def test_maximum_minimum_forward_backward_broadcast(fn, ref):
    a, b = rand(3, 4, seed=1), rand(4, seed=2)
    y = fn(Variable(a), Variable(b))
    np.testing.assert_array_equal(y.data, ref(a, b))
    check_grad(lambda x: fn(x, b), a)
    check_grad(lambda x: fn(a, x), b)
    check_double(lambda x: fn(x, b[:3]) * x, a[:2, :3])


def test_maximum_with_a_scalar_keeps_float32_and_ties_share():
    x = Variable(np.array([-1.0, 0.0, 2.0], np.float32))
    y = F.maximum(x, 0.0)
    assert y.dtype == np.float32
    F.sum(y).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.5, 1.0])
    assert x.grad.dtype == np.float32
    z = Variable(np.array([1.0, 3.0]))
    w = Variable(np.array([1.0, 2.0]))
    F.sum(F.minimum(z, w)).backward()
    np.testing.assert_array_equal(z.grad.data, [0.5, 0.0])
    np.testing.assert_array_equal(w.grad.data, [0.5, 1.0])


def test_maximum_shape_error():
    with pytest.raises(ValueError, match=r"maximum: shapes \(2, 3\), \(4,\) cannot be broadcast"):
        F.maximum(Variable(np.zeros((2, 3))), Variable(np.zeros(4)))


def test_where_forward_backward():
    a, b = rand(3, 4, seed=1), rand(3, 1, seed=2)
    cond = rand(3, 4, seed=3) > 0
    y = F.where(cond, Variable(a), Variable(b))
    np.testing.assert_array_equal(y.data, np.where(cond, a, b))
    check_grad(lambda x: F.where(cond, x, b), a)
    check_grad(lambda x: F.where(cond, a, x), b)
    check_double(lambda x: F.where(cond, x * x, x), a)
    # a scalar branch takes the Variable's dtype
    x32 = Variable(a.astype(np.float32))
    assert F.where(cond, x32, 0.0).dtype == np.float32
    with pytest.raises(ValueError, match="where: shapes"):
        F.where(np.ones((2, 2), bool), x32, 0.0)


@settings(max_examples=25, deadline=None)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), st.data())
def test_maximum_property_broadcasting(shapes, data):
    s0, s1 = shapes.input_shapes
    a = data.draw(hnp.arrays(np.float64, s0, elements=st.floats(-5, 5, width=64)))
    b = data.draw(hnp.arrays(np.float64, s1, elements=st.floats(-5, 5, width=64)))
    x0, x1 = Variable(a.copy()), Variable(b.copy())
    y = F.maximum(x0, x1)
    np.testing.assert_array_equal(y.data, np.maximum(a, b))
    assert y.shape == shapes.result_shape
    F.sum(y).backward()
    assert x0.grad.shape == s0 and x1.grad.shape == s1
    # every output element sends exactly 1 in total to the two inputs
    total = x0.grad.data.sum() + x1.grad.data.sum()
    np.testing.assert_allclose(total, float(np.prod(shapes.result_shape)))
