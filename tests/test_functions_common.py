"""Helpers shared by the ``test_functions_*`` files, and the library's exports (gradients at every order:
test_gradients.py; what each row declares, stability included: test_function_rows.py)."""
import numpy as np
import pytest

import leafgrad.functions as F
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


@pytest.mark.parametrize("name", DEZERO_NAMES)
def test_dezero_names_are_exported(name):
    assert name in F.__all__, f"DeZero's function {name} is not in leafgrad.functions.__all__"


@pytest.mark.parametrize("name", F.__all__)
def test_every_public_name_is_callable_and_documented(name):
    assert callable(getattr(F, name)), f"{name} is in __all__ but not callable"
    assert getattr(F, name).__doc__, f"{name} has no docstring"


def test_batch_nrom_is_batch_norm():
    assert F.batch_nrom is F.batch_norm


# float32 everywhere (forward, every order): tests/test_gradients.py.
# Stability at magnitude 1e4: declared in each row (stable=...), checked in tests/test_function_rows.py.
