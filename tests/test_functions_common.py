"""Helpers shared by the ``test_functions_*`` files, and checks that sweep the whole function library:
exports, float32 in -> float32 out / gradients / second-order gradients, stability at magnitude 1e4."""
import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Variable
from leafgrad.utils import gradient_check


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


def grad_of(f, seed=1):
    """``x -> d/dx sum(w * f(x))`` as a differentiable function (``create_graph=True``), ``w`` fixed random.

    ``gradient_check(grad_of(f), x)`` then checks the second derivative of ``f``.
    """
    weights = {}

    def g(x):
        xv = x if isinstance(x, Variable) else Variable(x)
        y = f(xv)
        if y.shape not in weights:
            weights[y.shape] = np.asarray(np.random.RandomState(seed).randn(*y.shape))
        w = weights[y.shape].astype(y.dtype)
        gx, = lg.grad(F.sum(y * w), [xv], create_graph=True)
        assert gx is not None, "f's gradient does not depend on x"
        return gx

    return g


def check_double(f, x, **kwargs):
    """Second-order gradients of ``f`` at ``x`` match numerical differentiation of its gradient."""
    assert gradient_check(grad_of(f), np.array(x, dtype=np.float64, copy=True), **kwargs)


# =============================================================================
# a known engine limitation, detected rather than assumed
# =============================================================================
def _multi_output_backward_works() -> bool:
    """False while the engine's ``None in gys`` test compares gradient arrays with None (core bug)."""
    x = Variable(np.ones((2, 2)))
    a, b = F.split(x, 2, axis=1)
    try:
        F.sum(a * b).backward()
    except ValueError:
        return False
    return True


#: marks a test that needs first-order backward through a multi-output function whose
#: outputs all get gradients (split; second order of batch_norm / layer_norm)
needs_multi_output_backward = pytest.mark.xfail(
    not _multi_output_backward_works(), strict=True,
    reason="engine bug: `None in gys` in engine._walk compares gradient arrays with None; "
           "it should read `any(g is None for g in gys)`")


def _scalar_constant_ops_keep_float32() -> bool:
    """False while ``0-d float32 Variable / 3`` gives float64 (core's *Constant functions on NumPy 1.x)."""
    return (F.sum(Variable(np.ones(2, np.float32))) / 2).dtype == np.float32


#: marks a test of a book-style composite (``sum(...) / N``) whose float32-ness rests on the core's
#: scalar-constant functions (AddConstant, MulConstant, DivConstant, ...) keeping 0-d float32 float32
needs_float32_scalar_constants = pytest.mark.xfail(
    not _scalar_constant_ops_keep_float32(), strict=True,
    reason="core bug on NumPy 1.x: a 0-d float32 array combined with a Python number gives float64 in "
           "AddConstant/MulConstant/DivConstant/ConstantSub/ConstantDiv forward and backward")

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
# float32 everywhere: forward, backward, double backward
# =============================================================================
LABELS = np.array([0, 2, 1, 2])

#: name -> function of one (4, 3) float Variable returning a Variable
UNARY = {
    "sin": F.sin, "cos": F.cos, "tanh": F.tanh, "exp": F.exp, "square": F.square,
    "log": lambda x: F.log(F.exp(x)),
    "abs": F.abs, "clip": lambda x: F.clip(x, -0.5, 0.5) * x,
    "maximum": lambda x: F.maximum(x, 0.1) * x, "minimum": lambda x: F.minimum(x, x[::-1]) * x,
    "where": lambda x: F.where(x.data > 0, x * x, 2.0),
    "sigmoid": F.sigmoid, "sigmoid_simple": F.sigmoid_simple,
    "relu": lambda x: F.relu(x) * x, "leaky_relu": lambda x: F.leaky_relu(x) * x,
    "softmax": F.softmax, "softmax_simple": F.softmax_simple, "log_softmax": F.log_softmax,
    "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "elu": F.elu,
    "softplus": F.softplus, "silu": F.silu,
    "reshape": lambda x: F.reshape(x * x, (3, 4)), "transpose": lambda x: F.transpose(x * x),
    "get_item": lambda x: (x * x)[[0, 0, 2], 1:], "expand_dims": lambda x: F.expand_dims(x * x, 1),
    "flatten": lambda x: F.flatten(x * x), "broadcast_to": lambda x: F.broadcast_to(x[0] * x[1], (2, 3)),
    "sum_to": lambda x: F.sum_to(x * x, (1, 3)), "concat": lambda x: F.concat([x * x, x], axis=1),
    "stack": lambda x: F.stack([x * x, x], axis=-1), "split": lambda x: F.split(x * x, [1], axis=1)[1],
    "sum": lambda x: F.sum(x * x, axis=0), "mean": lambda x: F.mean(x * x, axis=-1, keepdims=True),
    "average": lambda x: F.average(x * x, axis=1, weights=np.array([1.0, 2.0, 3.0], np.float32)),
    "max": lambda x: F.max(x * x, axis=1), "min": lambda x: F.min(x * x),
    "var": lambda x: F.var(x, axis=0), "logsumexp": lambda x: F.logsumexp(x, axis=1),
    "matmul": lambda x: F.matmul(x, x.T), "linear": lambda x: F.linear(x, x.T, x[:, 0]),
    "linear_simple": lambda x: F.linear_simple(x, x.T, x[:, 0]),
    "layer_norm": lambda x: F.layer_norm(x, x[0], x[1]),
    "batch_norm": lambda x: F.batch_norm(x, x[0], x[1], np.zeros(3, x.dtype), np.ones(3, x.dtype)),
    "dropout": lambda x: F.dropout(x * x),
    "mean_squared_error": lambda x: F.mean_squared_error(x * x, x[::-1]),
    "mean_squared_error_simple": lambda x: F.mean_squared_error_simple(x * x, x[::-1]),
    "softmax_cross_entropy": lambda x: F.softmax_cross_entropy(x, LABELS),
    "softmax_cross_entropy_ignore": lambda x: F.softmax_cross_entropy(x, np.array([0, -1, 1, 2]),
                                                                      ignore_index=-1),
    "softmax_cross_entropy_simple": lambda x: F.softmax_cross_entropy_simple(x, LABELS),
    "sigmoid_cross_entropy": lambda x: F.sigmoid_cross_entropy(x, (x.data > 0).astype(np.int32)),
    "binary_cross_entropy": lambda x: F.binary_cross_entropy(F.sigmoid(x), (x.data > 0.5)),
}


def _marked(name):
    if name in ("batch_norm", "layer_norm"):
        return pytest.param(name, marks=needs_multi_output_backward)
    if name in ("mean_squared_error_simple", "softmax_cross_entropy_simple", "binary_cross_entropy"):
        return pytest.param(name, marks=needs_float32_scalar_constants)
    return name


@pytest.mark.parametrize("name", [_marked(n) for n in sorted(UNARY)])
def test_float32_forward_backward_double_backward(name):
    f = UNARY[name]
    x = Variable(rand(4, 3, dtype=np.float32, seed=3))
    y = f(x)
    assert y.dtype == np.float32, f"{name}: forward gave {y.dtype}"
    gx, = lg.grad(F.sum(y), [x], create_graph=True)
    assert gx.dtype == np.float32, f"{name}: gradient is {gx.dtype}"
    ggx, = lg.grad(F.sum(gx * gx), [x])
    if ggx is not None:
        assert ggx.dtype == np.float32, f"{name}: second-order gradient is {ggx.dtype}"
    # the array path (create_graph=False) too
    x.cleargrad()
    F.sum(f(x)).backward()
    assert x.grad.dtype == np.float32


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

