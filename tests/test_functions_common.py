"""Helpers shared by the ``test_functions_*`` files, and checks that sweep the whole function library:
exports and stability at magnitude 1e4 (gradients at every order: test_gradients.py)."""
import numpy as np
import pytest

import leafgrad.functions as F
from leafgrad import Variable
from leafgrad.utils import gradient_check

from gradcheck import ATOL, RTOL, GradCase, check_order


# =============================================================================
# helpers (imported by the other test_functions_* files)
# =============================================================================
def rand(*shape, dtype=np.float64, seed=None):
    """Standard normal numbers of ``shape`` (``shape=()`` gives a 0-d array)."""
    rs = np.random.RandomState(seed) if seed is not None else np.random
    return np.asarray(rs.randn(*shape)).astype(dtype)


def check_grad(f, x, **kwargs):
    """``gradient_check`` of ``f`` at ``x`` (a copy: gradient_check perturbs in place)."""
    assert gradient_check(f, np.array(x, dtype=np.float64, copy=True), **kwargs)


def check_double(f, x, rtol=RTOL, atol=ATOL):
    """First and second-order gradients of ``f`` at ``x`` match central differences (see gradcheck.py).

    The second order is checked against differences of the first-order walk's
    gradient, which the first check verified: never against the recorded graph itself.
    """
    case = GradCase(getattr(f, "__name__", "f"), f, [np.array(x, dtype=np.float64, copy=True)])
    check_order(case, 1, rtol=rtol, atol=atol)
    check_order(case, 2, rtol=rtol, atol=atol)


# =============================================================================
# the library's names
# =============================================================================
DEZERO_NAMES = (
    "sin cos tanh exp log reshape transpose get_item expand_dims flatten sum sum_to broadcast_to "
    "average matmul linear linear_simple sigmoid sigmoid_simple relu softmax softmax_simple "
    "log_softmax leaky_relu mean_squared_error mean_squared_error_simple softmax_cross_entropy "
    "softmax_cross_entropy_simple sigmoid_cross_entropy binary_cross_entropy accuracy dropout "
    "batch_nrom batch_norm embed_id max min clip add sub rsub mul div neg pow"
).split()
EXTRA_NAMES = ("mean var abs maximum minimum where concat stack split logsumexp gelu elu softplus "
               "silu layer_norm square").split()


@pytest.mark.parametrize("name", DEZERO_NAMES + EXTRA_NAMES)
def test_exported(name):
    assert callable(getattr(F, name))
    assert name in F.__all__
    assert getattr(F, name).__doc__


def test_batch_nrom_is_batch_norm():
    assert F.batch_nrom is F.batch_norm


# =============================================================================
# float32 everywhere (forward, every order): tests/test_gradients.py
# stability: finite values and gradients for inputs of magnitude 1e4
# =============================================================================
LABELS = np.array([0, 2, 1, 2])


#: functions that must stay finite (values and gradients) for inputs of magnitude 1e4
STABLE = {
    "softmax": lambda x: F.softmax(x) * np.arange(3.0, dtype=np.float32),
    "log_softmax": F.log_softmax,
    "softmax_cross_entropy": lambda x: F.softmax_cross_entropy(x, LABELS),
    "softmax_cross_entropy_ignore": lambda x: F.softmax_cross_entropy(x, LABELS, ignore_index=1),
    "sigmoid": F.sigmoid,
    "sigmoid_cross_entropy": lambda x: F.sigmoid_cross_entropy(x, (x.data < 0).astype(np.float32)),
    "logsumexp": lambda x: F.logsumexp(x, axis=1),
    "logsumexp_all": F.logsumexp,
    "softplus": F.softplus, "gelu": F.gelu, "elu": F.elu, "silu": F.silu,
}


@pytest.mark.parametrize("name", sorted(STABLE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_magnitude_1e4(name, dtype):
    x = Variable(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4], [-1e4, 5e3, -1e4]], dtype))
    y = STABLE[name](x)
    assert np.all(np.isfinite(y.data)), y.data
    F.sum(y).backward()
    assert np.all(np.isfinite(x.grad.data)), x.grad.data

