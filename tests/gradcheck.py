"""Gradient checks that catch a wrong formula, at every order and on both walks.

A function ``f`` under test is wrapped in a scalar loss with random weights,

    L(x) = sum(w * f(x)) + 0.5 * sum(c * f(x) ** 2),

so its gradient is the vector-Jacobian product of ``f`` with the cotangent
``w + c * f(x)``: random (a gradient with the right values in the wrong places
fails), and itself a function of ``x`` (the backward of ``f``'s gradient
functions is exercised at the next order).  Then:

* first order: ``dL/dx_k`` from the first-order walk and from the recorded
  walk (``create_graph=True``) both equal central differences of ``L``;
* second order: the recorded walk differentiated again, ``d/dx_j sum_k <u_k,
  dL/dx_k>`` with random ``u``, equals central differences of that sum computed
  with first-order gradients, which the first check verified (never the
  recorded graph checked against itself);
* third order likewise, against differences of the verified second order;
* float32 inputs give float32 outputs and gradients at every order checked.
"""
from __future__ import annotations

import zlib
from typing import Callable, List, Optional, Sequence

import numpy as np

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Variable

EPS = 1e-6
RTOL, ATOL = 1e-5, 1e-6


class _PublicFunctions:
    """``leafgrad.functions`` as the gradient table reads it: a name missing there is an error that
    says how to export it (rather than a bare AttributeError while the tests are collected)."""

    def __getattr__(self, name: str):
        try:
            return getattr(F, name)
        except AttributeError:
            raise AttributeError(
                f"leafgrad.functions has no public name {name!r}: list it in the __all__ of its module "
                f"(leafgrad/functions/<module>.py), which leafgrad.functions re-exports") from None


#: What the rows of the gradient table call: ``leafgrad.functions``, with a clear error for a missing name.
public_functions = _PublicFunctions()


def _as_list(ys) -> list:
    return list(ys) if isinstance(ys, (list, tuple)) else [ys]


def _random_like(shape: tuple, dtype, rs: np.random.RandomState) -> np.ndarray:
    return np.asarray(rs.randn(*shape)).astype(dtype)


class GradCase:
    """``f(*inputs)`` with the inputs at positions ``wrt`` differentiated (all float inputs by default).

    Inputs that are not differentiated are passed to ``f`` as they are (arrays become constants).

    A row declares here, once, everything the tests read about its function:

    * ``of``: the public name of ``leafgrad.functions`` the row checks (default: the row's ``name``;
      ``None`` for a row of an internal gradient function or of another module's function);
    * ``orders``: the derivative orders checked (default ``(1, 2, 3)`` for element-wise rows, else
      ``(1, 2)``); ``recorded=False``: the function cannot be differentiated on the recorded walk;
    * ``elementwise``: ``f`` of one input maps each element alone (also checked on 0-d arrays);
    * ``reference``: the forward computed with NumPy on the same arguments (arrays);
    * ``kinks``: ``kinks(*inputs)`` gives, for each kink or bound, the signed distance of every
      element to it: the inputs must lie on both sides of each, and not at it;
    * ``linear_pieces``: the second derivative is zero away from the kinks;
    * ``keeps``: what a recorded call keeps until backward: input positions, and ``"output"``
      (``()``: nothing); every other differentiated input's array is freed right away;
    * ``stable``: input positions that may hold magnitudes of 1e4 (values and gradients stay finite).
    """

    def __init__(self, name: str, f: Callable, inputs: Sequence[np.ndarray],
                 wrt: Optional[Sequence[int]] = None, orders: Optional[Sequence[int]] = None,
                 recorded: bool = True, *, of: Optional[str] = "", elementwise: bool = False,
                 reference: Optional[Callable] = None, kinks: Optional[Callable] = None,
                 linear_pieces: bool = False, keeps: Optional[Sequence] = None,
                 stable: Sequence[int] = ()) -> None:
        self.name, self.f = name, f
        self.inputs = [np.asarray(a) for a in inputs]
        if wrt is None:
            wrt = [k for k, a in enumerate(self.inputs) if a.dtype.kind == "f"]
        self.wrt = list(wrt)
        if orders is None:
            orders = (1, 2, 3) if elementwise else (1, 2)
        self.orders = tuple(orders)
        self.recorded = recorded  # False: the function cannot be differentiated on the recorded walk
        self.of = name if of == "" else of
        self.elementwise, self.reference, self.kinks = elementwise, reference, kinks
        self.linear_pieces = linear_pieces
        self.keeps = None if keeps is None else tuple(keeps)
        self.stable = tuple(stable)
        self.seed = zlib.crc32(name.encode())
        self._weights: dict = {}

    def __repr__(self) -> str:
        return self.name

    # ---- building blocks -----------------------------------------------------------
    def arrays(self, dtype=np.float64) -> List[np.ndarray]:
        """Copies of the inputs, floats converted to ``dtype``."""
        return [a.astype(dtype) if a.dtype.kind == "f" else a.copy() for a in self.inputs]

    def _weights_for(self, i: int, shape: tuple, dtype) -> tuple:
        key = (i, shape)
        if key not in self._weights:
            rs = np.random.RandomState(self.seed + 7 * i)
            self._weights[key] = (np.asarray(rs.randn(*shape)), np.asarray(rs.uniform(0.5, 1.5, shape)))
        w, c = self._weights[key]
        return w.astype(dtype), c.astype(dtype)

    def loss(self, variables: Sequence[Variable], arrays: Sequence[np.ndarray]) -> Variable:
        """``L = sum_i sum(w_i * y_i) + 0.5 * sum(c_i * y_i ** 2)`` over the outputs ``y_i`` of ``f``."""
        args = list(arrays)
        for k, v in zip(self.wrt, variables):
            args[k] = v
        total = None
        for i, y in enumerate(_as_list(self.f(*args))):
            w, c = self._weights_for(i, y.shape, y.dtype)
            term = F.sum(w * y) + 0.5 * F.sum(c * y * y)
            total = term if total is None else total + term
        return total

    def unit(self, j: int, shape: tuple, dtype, order: int) -> np.ndarray:
        """The random weights ``u`` (order 2) or ``v`` (order 3) of the gradient with respect to input ``j``."""
        rs = np.random.RandomState(self.seed + 1000 * order + j)
        return _random_like(shape, dtype, rs)

    # ---- derivatives ---------------------------------------------------------------
    def value(self, arrays: Sequence[np.ndarray]) -> float:
        with lg.no_grad():
            return float(self.loss([Variable(arrays[k]) for k in self.wrt], arrays).data)

    def _variables(self, arrays):
        return [Variable(arrays[k]) for k in self.wrt]

    def first(self, arrays, recorded: bool, keep_graph: bool = False):
        """``dL/dx_k`` for each differentiated input: arrays (Variables with ``keep_graph``)."""
        xs = self._variables(arrays)
        gs = lg.grad(self.loss(xs, arrays), xs, create_graph=recorded)
        if keep_graph:
            return xs, gs
        return [np.zeros_like(x.data) if g is None else g.data for x, g in zip(xs, gs)]

    def second(self, arrays, keep_graph: bool = False):
        """``d/dx_j sum_k <u_k, dL/dx_k>`` through the recorded walk."""
        xs, gs = self.first(arrays, recorded=True, keep_graph=True)
        total = None
        for j, (x, g) in enumerate(zip(xs, gs)):
            if g is not None and (g.creator is not None or g.requires_grad):
                term = F.sum(self.unit(j, x.shape, x.dtype, 2) * g)
                total = term if total is None else total + term
        hs = [None] * len(xs) if total is None else lg.grad(total, xs, create_graph=keep_graph)
        if keep_graph:
            return xs, hs
        return [np.zeros_like(x.data) if h is None else h.data for x, h in zip(xs, hs)]

    def third(self, arrays):
        """``d/dx_i sum_j <v_j, (second order)_j>`` through the recorded walk."""
        xs, hs = self.second(arrays, keep_graph=True)
        total = None
        for j, (x, h) in enumerate(zip(xs, hs)):
            if h is not None and (h.creator is not None or h.requires_grad):
                term = F.sum(self.unit(j, x.shape, x.dtype, 3) * h)
                total = term if total is None else total + term
        ts = [None] * len(xs) if total is None else lg.grad(total, xs)
        return [np.zeros_like(x.data) if t is None else t.data for x, t in zip(xs, ts)]

    def contracted(self, order: int) -> Callable[[Sequence[np.ndarray]], float]:
        """The scalar whose numerical gradient is the reference at ``order``: L, or a contraction of
        the (already verified) derivative of order ``order - 1``."""
        if order == 1:
            return self.value
        lower = (lambda a: self.first(a, recorded=False)) if order == 2 else self.second

        def scalar(arrays):
            gs = lower(arrays)
            return float(sum(np.sum(self.unit(j, g.shape, g.dtype, order) * g) for j, g in enumerate(gs)))
        return scalar


def numerical_gradient(fn: Callable[[List[np.ndarray]], float], arrays: List[np.ndarray], k: int,
                       eps: float = EPS) -> np.ndarray:
    """``d fn(arrays) / d arrays[k]`` by central differences (``arrays[k]`` perturbed in place, then restored)."""
    x = arrays[k]
    grad = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = fn(arrays)
        x[idx] = old - eps
        down = fn(arrays)
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def check_order(case: GradCase, order: int, rtol: float = RTOL, atol: float = ATOL) -> None:
    """The derivatives of ``case`` of this order equal central differences of the verified lower order."""
    arrays = case.arrays()
    reference = [numerical_gradient(case.contracted(order), arrays, k) for k in case.wrt]
    if order == 1:
        walks = {"first-order walk": case.first(arrays, recorded=False)}
        if case.recorded:
            walks["recorded walk"] = case.first(arrays, recorded=True)
    else:
        walks = {"recorded walk": case.second(arrays) if order == 2 else case.third(arrays)}
    for walk, grads in walks.items():
        for k, g, ref in zip(case.wrt, grads, reference):
            np.testing.assert_allclose(
                g, ref, rtol=rtol, atol=atol,
                err_msg=f"{case.name}: order {order} derivative with respect to input {k}, {walk}")


def check_float32(case: GradCase) -> None:
    """float32 in gives float32 out, and float32 gradients at every order the case checks."""
    arrays = case.arrays(np.float32)
    args = list(arrays)
    for k in case.wrt:
        args[k] = Variable(arrays[k])
    for y in _as_list(case.f(*args)):
        assert y.dtype == np.float32, f"{case.name}: output is {y.dtype}"
    results = {"first order, first-order walk": case.first(arrays, recorded=False)}
    if case.recorded:
        results["first order, recorded walk"] = case.first(arrays, recorded=True)
        if 2 in case.orders:
            results["second order"] = case.second(arrays)
        if 3 in case.orders:
            results["third order"] = case.third(arrays)
    for what, grads in results.items():
        for k, g in zip(case.wrt, grads):
            assert g.dtype == np.float32, f"{case.name}: {what} gradient of input {k} is {g.dtype}"
