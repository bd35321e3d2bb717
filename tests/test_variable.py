"""Variable: construction, properties, repr, operators (DeZero-compatible) and the extras."""
import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Parameter, Variable


def test_rejects_unsupported_types():
    with pytest.raises(TypeError, match="is not supported"):
        Variable(1.0)
    with pytest.raises(TypeError, match="list"):
        Variable([1, 2])
    assert Variable(None).data is None


def test_properties():
    x = Variable(np.zeros((2, 3), np.float32), name="x")
    assert x.name == "x"
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and x.dtype == np.float32
    assert len(x) == 2


def test_repr_matches_dezero():
    assert repr(Variable(None)) == "variable(None)"
    assert repr(Variable(np.array(1.0))) == "variable(1.0)"
    assert repr(Variable(np.array([[1, 2, 3], [4, 5, 6]]))) == "variable([[1 2 3]\n          [4 5 6]])"


@pytest.mark.parametrize("op,ref", [
    (lambda a, b: a + b, np.add), (lambda a, b: a - b, np.subtract),
    (lambda a, b: a * b, np.multiply), (lambda a, b: a / b, np.divide),
])
def test_binary_operators_with_variables_arrays_and_scalars(op, ref):
    a = np.random.rand(2, 3) + 1
    b = np.random.rand(2, 3) + 1
    va, vb = Variable(a), Variable(b)
    for lhs, rhs in [(va, vb), (va, b), (a, vb), (va, 2.0), (2.0, vb), (va, np.float64(3)), (np.float64(3), vb)]:
        y = op(lhs, rhs)
        assert isinstance(y, Variable)
        lv = lhs.data if isinstance(lhs, Variable) else lhs
        rv = rhs.data if isinstance(rhs, Variable) else rhs
        np.testing.assert_allclose(y.data, ref(lv, rv))


def test_unary_pow_matmul_and_methods():
    a = np.random.rand(2, 3)
    x = Variable(a)
    np.testing.assert_allclose((-x).data, -a)
    np.testing.assert_allclose((x ** 3).data, a ** 3)
    w = np.random.rand(3, 4)
    np.testing.assert_allclose((x @ w).data, a @ w)
    np.testing.assert_allclose((a @ Variable(w)).data, a @ w)
    np.testing.assert_allclose(x.matmul(w).data, a @ w)
    np.testing.assert_allclose(x.dot(w).data, a @ w)
    assert x.reshape(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,)
    assert x.transpose().shape == (3, 2) and x.T.shape == (3, 2) and x.transpose(1, 0).shape == (3, 2)
    np.testing.assert_allclose(x.sum(axis=0).data, a.sum(axis=0))
    np.testing.assert_allclose(x.max(axis=1).data, a.max(axis=1))
    np.testing.assert_allclose(x.min().data, a.min())
    np.testing.assert_allclose(x[1].data, a[1])
    np.testing.assert_allclose(x[:, [0, 2]].data, a[:, [0, 2]])


def test_pow_rejects_variable_exponent():
    x = Variable(np.array(2.0))
    with pytest.raises(TypeError, match="pow"):
        x ** x


def test_item_detach_requires_grad():
    x = Variable(np.array(3.0))
    assert x.requires_grad and x.item() == 3.0
    y = x * 2
    d = y.detach()
    assert d.creator is None and not d.requires_grad and d.data is y.data


def test_parameter_is_a_variable():
    p = Parameter(np.ones(2))
    assert isinstance(p, Variable)
    (p * 2).sum().backward()
    np.testing.assert_allclose(p.grad.data, [2, 2])


def test_float32_stays_float32_with_scalars_and_float64_scalars():
    x = Variable(np.ones((2, 2), np.float32))
    for y in [x * 1.5, x + np.float64(2), 1.5 - x, np.float64(2.0) / x, x ** 2, x ** np.float64(2.0),
              x * np.array(2.0), x / 3]:
        assert y.dtype == np.float32, y
    y = (x * np.float64(1.5) + 0.25) / np.float64(3.0)
    F.sum(y).backward()
    assert x.grad.dtype == np.float32


def test_unsupported_operand_error_names_the_problem():
    with pytest.raises(TypeError, match="list"):
        F.exp([1.0, 2.0])


def test_broadcast_error_names_function_and_shapes():
    with pytest.raises(ValueError, match=r"Add.*\(2, 3\).*\(4,\)"):
        Variable(np.zeros((2, 3))) + np.zeros(4)


def test_matmul_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        F.matmul(Variable(np.zeros((2, 3))), np.zeros((4, 5)))
