"""Fused GPU kernels for the optimizers: one CuPy ``ElementwiseKernel`` launch per parameter update.

Used only for a parameter on a GPU whose data, gradient and state arrays are CuPy
arrays of one dtype, float32 or float64 (:func:`fusable`); everything else takes
the optimizers' array code, which runs on NumPy and CuPy alike.

Each kernel body performs the operations of that array code in the same order,
each rounded to the parameter's dtype, with the hyperparameters cast to that
dtype as NumPy casts a Python float; compiled with ``--fmad=false`` so that no
product and sum are contracted into one FMA, its results equal NumPy's bit for
bit (CUDA's ``/`` and ``sqrt`` are correctly rounded unless fast math is asked for).
``tests/test_kernels.py`` runs the bodies on the CPU, compiled as C++.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from leafgrad.cuda import cupy

__all__ = ["SOURCES", "fusable", "launch", "used"]

#: Per kernel: input parameters (the gradient, then scalars), in-out parameters (the parameter's
#: data, then its state), and the loop body in CUDA C++.  ``T`` is the parameter's dtype.
SOURCES: Dict[str, Tuple[str, str, str]] = {
    "sgd": ("T grad, T lr", "T param",
            "param -= grad * lr;"),
    "momentum_sgd": ("T grad, T lr, T momentum", "T param, T v",
                     "v = v * momentum - grad * lr;\n"
                     "param += v;"),
    "adagrad": ("T grad, T lr, T eps", "T param, T h",
                "h += grad * grad;\n"
                "param -= grad * lr / (sqrt(h) + eps);"),
    "adadelta": ("T grad, T rho, T one_minus_rho, T eps", "T param, T msg, T msdx",
                 "msg = msg * rho + grad * one_minus_rho * grad;\n"
                 "T dx = sqrt((msdx + eps) / (msg + eps)) * grad;\n"
                 "msdx = msdx * rho + dx * one_minus_rho * dx;\n"
                 "param -= dx;"),
    "adam": ("T grad, T lr, T one_minus_beta1, T one_minus_beta2, T eps", "T param, T m, T v",
             "m += (grad - m) * one_minus_beta1;\n"
             "v += (grad * grad - v) * one_minus_beta2;\n"
             "param -= m * lr / (sqrt(v) + eps);"),
}

_FLOAT_TYPES = ("float32", "float64")
_compiled: Dict[str, Any] = {}


def fusable(data: Any, grad: Any, *state: Any) -> bool:
    """Whether a fused kernel updates this parameter: all CuPy arrays, one dtype, float32 or float64."""
    if cupy is None or not isinstance(data, cupy.ndarray) or data.dtype.name not in _FLOAT_TYPES:
        return False
    return all(isinstance(a, cupy.ndarray) and a.dtype == data.dtype for a in (grad, *state))


def launch(name: str, *args: Any) -> None:
    """Run kernel ``name`` of :data:`SOURCES`: gradient and Python-float scalars, then the arrays it updates."""
    kernel = _compiled.get(name)
    if kernel is None:
        in_params, out_params, body = SOURCES[name]
        kernel = _compiled[name] = cupy.ElementwiseKernel(
            in_params, out_params, body, f"leafgrad_{name}", options=("--fmad=false",), no_return=True)
    kernel(*args)


def used() -> List[str]:
    """The names of the kernels launched so far in this process (compiled on first use)."""
    return sorted(_compiled)
