"""Activations: sigmoid(_simple) relu leaky_relu softmax(_simple) log_softmax gelu elu softplus silu."""
import numpy as np
import pytest

import leafgrad.functions as F
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
