"""Helpers shared by functions and tests: array-level reductions, shape helpers, gradient checking."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from leafgrad import cuda

__all__ = [
    "sum_to", "reshape_sum_backward", "logsumexp", "max_backward_shape",
    "numerical_grad", "gradient_check", "array_equal", "array_allclose",
    "get_conv_outsize", "get_deconv_outsize", "pair",
    "get_dot_graph", "plot_dot_graph",
    "get_file", "cache_dir",
]


# =============================================================================
# Array-level helpers used by backward formulas
# =============================================================================
def sum_to(x: Any, shape: tuple) -> Any:
    """Sum the array ``x`` down to ``shape`` (the reverse of broadcasting)."""
    if x.shape == shape:
        return x
    ndim = len(shape)
    lead = x.ndim - ndim
    lead_axis = tuple(range(lead))
    axis = tuple(i + lead for i, sx in enumerate(shape) if sx == 1)
    y = x.sum(lead_axis + axis, keepdims=True)
    if lead > 0:
        y = y.squeeze(lead_axis)
    return y


def _normalize_axis(axis: Any, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, (tuple, list)):
        axis = (axis,)
    return tuple(a if a >= 0 else a + ndim for a in axis)


def reshape_sum_backward(gy: Any, x_shape: tuple, axis: Any, keepdims: bool) -> Any:
    """Reshape the gradient of a sum so that it broadcasts back to ``x_shape``."""
    ndim = len(x_shape)
    tupled_axis = axis
    if axis is None:
        tupled_axis = None
    elif not isinstance(axis, (tuple, list)):
        tupled_axis = (axis,)
    if not (ndim == 0 or tupled_axis is None or keepdims):
        actual_axis = sorted(a if a >= 0 else a + ndim for a in tupled_axis)
        shape = list(gy.shape)
        for a in actual_axis:
            shape.insert(a, 1)
    else:
        shape = gy.shape
    return gy.reshape(shape)


def logsumexp(x: Any, axis: Any = 1) -> Any:
    """``log(sum(exp(x), axis, keepdims=True))`` computed without overflow."""
    xp = cuda.get_array_module(x)
    m = x.max(axis=axis, keepdims=True)
    y = x - m
    xp.exp(y, out=y)
    s = y.sum(axis=axis, keepdims=True)
    xp.log(s, out=s)
    m += s
    return m


def max_backward_shape(x: Any, axis: Any) -> list:
    """The shape that the output of ``max(x, axis)`` takes with the reduced axes kept as 1."""
    if axis is None:
        axis = range(x.ndim)
    elif isinstance(axis, int):
        axis = (axis,)
    axis = [a if a >= 0 else a + x.ndim for a in axis]
    return [s if ax not in axis else 1 for ax, s in enumerate(x.shape)]


# =============================================================================
# Convolution shape helpers
# =============================================================================
def get_conv_outsize(input_size: int, kernel_size: int, stride: int, pad: int) -> int:
    """Output length of a convolution along one axis."""
    return (input_size + pad * 2 - kernel_size) // stride + 1


def get_deconv_outsize(size: int, k: int, s: int, p: int) -> int:
    """Output length of a transposed convolution along one axis."""
    return s * (size - 1) + k - 2 * p


def pair(x: Union[int, tuple]) -> tuple:
    """``x`` as a pair: an int ``n`` becomes ``(n, n)``; a pair is returned as is."""
    if isinstance(x, (int, np.integer)):
        return (int(x), int(x))
    if isinstance(x, tuple):
        if len(x) != 2:
            raise ValueError(f"pair: expected an int or a pair, got a tuple of length {len(x)}")
        return x
    raise ValueError(f"pair: expected an int or a pair, got {x!r}")


# =============================================================================
# Gradient checking
# =============================================================================
def numerical_grad(f: Callable, x: Any, *args: Any, **kwargs: Any) -> Any:
    """The gradient of ``sum(f(x))`` at ``x`` by central differences (eps = 1e-4)."""
    eps = 1e-4
    from leafgrad.core import Variable
    x = x.data if isinstance(x, Variable) else x
    xp = cuda.get_array_module(x)
    np_x = cuda.as_numpy(x) if xp is not np else x
    grad = xp.zeros_like(x)
    it = np.nditer(np_x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx].copy()
        x[idx] = tmp_val + eps
        y1 = f(x, *args, **kwargs)
        y1 = (y1.data if isinstance(y1, Variable) else y1).copy()
        x[idx] = tmp_val - eps
        y2 = f(x, *args, **kwargs)
        y2 = (y2.data if isinstance(y2, Variable) else y2).copy()
        diff = (y1 - y2).sum()
        grad[idx] = diff / (2 * eps)
        x[idx] = tmp_val
        it.iternext()
    return grad


def gradient_check(f: Callable, x: Any, *args: Any, rtol: float = 1e-4, atol: float = 1e-5,
                   **kwargs: Any) -> bool:
    """True when backpropagation through ``f`` at ``x`` matches the numerical gradient.

    ``x`` is converted to float64 first (as DeZero does); ``f(x, *args, **kwargs)``
    may return a Variable of any shape.  What is compared is the gradient of
    ``sum(w * f(x))`` for a fixed random ``w`` (DeZero used ``sum(f(x))``, whose
    equal weights hide a gradient with the right values in the wrong places, and
    under which ``softmax`` is a constant).  NumPy's global random state is not touched.
    """
    from leafgrad.core import Variable, as_variable
    x = as_variable(x)
    x.data = x.data.astype(np.float64)
    y = f(x, *args, **kwargs)
    w = np.asarray(np.random.RandomState(0).randn(*y.shape))

    def weighted(v: Any, *a: Any, **k: Any) -> Any:
        out = f(v, *a, **k)
        return (out.data if isinstance(out, Variable) else out) * w

    num_grad = numerical_grad(weighted, x, *args, **kwargs)
    x.cleargrad()
    y.grad = Variable(w.astype(y.dtype, copy=False))  # the seed: the gradient of sum(w * y)
    y.backward()
    if x.grad is None:
        print("gradient_check: backward gave no gradient for x")
        return False
    bp_grad = x.grad.data
    if bp_grad.shape != num_grad.shape:
        print(f"gradient_check: shapes differ: backprop {bp_grad.shape}, numerical {num_grad.shape}")
        return False
    res = array_allclose(num_grad, bp_grad, atol=atol, rtol=rtol)
    if not res:
        print("")
        print("========== FAILED (Gradient Check) ==========")
        print("Numerical Grad")
        print(" shape: {}".format(num_grad.shape))
        print(" values: {} ...".format(str(num_grad.flatten()[:10])[1:-1]))
        print("Backprop Grad")
        print(" shape: {}".format(bp_grad.shape))
        print(" values: {} ...".format(str(bp_grad.flatten()[:10])[1:-1]))
    return bool(res)


def array_equal(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` (Variables or arrays, NumPy or CuPy) are equal element-wise."""
    a = a.data if hasattr(a, "creator") else a
    b = b.data if hasattr(b, "creator") else b
    return bool(np.array_equal(cuda.as_numpy(a), cuda.as_numpy(b)))


def array_allclose(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """True when ``a`` and ``b`` (Variables or arrays, NumPy or CuPy) are close element-wise."""
    a = a.data if hasattr(a, "creator") else a
    b = b.data if hasattr(b, "creator") else b
    return bool(np.allclose(cuda.as_numpy(a), cuda.as_numpy(b), atol=atol, rtol=rtol))
from leafgrad.graphviz import get_dot_graph, plot_dot_graph  # noqa: E402
from leafgrad.download import get_file, cache_dir  # noqa: E402
