"""What each row of the gradient table declares about its function, checked.

The declarations (``GradCase``'s keyword arguments: ``reference``, ``kinks``, ``linear_pieces``,
``keeps``, ``stable``, ``elementwise``) live in the row of ``tests/test_gradients.py``, once:
a new function declares them there and these tests pick them up; no second list names it.
"""
import weakref

import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Variable

from gradcheck import _as_list
from test_gradients import CASES

#: Inputs closer than this to a kink or bound would make central differences straddle it.
KINK_MARGIN = 1e-3


def _rows(attribute):
    rows = [c for c in CASES if getattr(c, attribute) not in (None, False, ())]
    return pytest.mark.parametrize("case", rows, ids=[c.name for c in rows])


def _arguments(case, arrays):
    """The row's arguments, the differentiated ones as Variables."""
    args = list(arrays)
    for k in case.wrt:
        args[k] = Variable(arrays[k])
    return args


# =============================================================================
# forward values: against the NumPy reference the row declares
# =============================================================================
@_rows("reference")
def test_forward_matches_the_declared_numpy_reference(case):
    arrays = case.arrays()
    for got, want in zip(_as_list(case.f(*_arguments(case, arrays))), _as_list(case.reference(*arrays))):
        np.testing.assert_allclose(got.data, want, rtol=1e-7, atol=1e-10,
                                   err_msg=f"{case.name}: forward differs from its declared NumPy reference")


# =============================================================================
# piecewise functions: the gradient checks sample both sides of every kink, away from it
# =============================================================================
@_rows("kinks")
def test_gradient_inputs_lie_on_both_sides_of_every_declared_kink(case):
    for i, distance in enumerate(case.kinks(*case.arrays())):
        distance = np.asarray(distance, dtype=np.float64)
        assert np.any(distance < 0) and np.any(distance > 0), (
            f"{case.name}: the row's inputs all lie on one side of kink {i} (signed distances "
            f"{np.unique(np.sign(distance))}): give it inputs below and above each kink or bound")
        closest = float(np.min(np.abs(distance)))
        assert closest >= KINK_MARGIN, (
            f"{case.name}: an input lies {closest:g} from kink {i}, closer than {KINK_MARGIN}: "
            f"central differences would straddle it")


_ONE_INPUT_ELEMENTWISE = [c for c in CASES if c.elementwise and len(c.inputs) == 1]


@pytest.mark.parametrize("case", _ONE_INPUT_ELEMENTWISE, ids=[c.name for c in _ONE_INPUT_ELEMENTWISE])
def test_an_element_wise_function_whose_derivative_jumps_declares_kinks(case):
    """The derivative on a fine grid over [-3, 3] (where finite and at most 10): a jump of more than
    5 % is a kink, which the row must declare (and then straddle, checked above)."""
    grid = np.linspace(-3.0, 3.0, 6001)
    x = Variable(grid)
    with np.errstate(all="ignore"):
        g = lg.grad(F.sum(case.f(x)), [x])[0].data
    ok = np.isfinite(g) & (np.abs(g) <= 10)
    both = ok[1:] & ok[:-1]
    jump = both & (np.abs(np.diff(g)) > 0.05 * (1 + np.abs(g[1:])))
    if case.kinks is None:
        where = np.unique(np.round(grid[1:][jump], 2))
        assert not jump.any(), (f"{case.name}: its derivative jumps near x = {where.tolist()}, and its row "
                                f"declares no kinks: add kinks=lambda x: [x - where] and inputs on both sides")


def test_every_piecewise_linear_row_declares_its_kinks():
    bare = [c.name for c in CASES if c.linear_pieces and c.kinks is None]
    assert not bare, f"rows declared linear_pieces without kinks=...: {bare}"


@_rows("linear_pieces")
def test_piecewise_linear_functions_have_zero_second_derivative(case):
    """``d/dx <u, J_f(x)^T w>`` is zero when ``f`` is linear on each piece (w, u random)."""
    arrays = case.arrays()
    xs = [Variable(arrays[k]) for k in case.wrt]
    args = list(arrays)
    for k, x in zip(case.wrt, xs):
        args[k] = x
    rs = np.random.RandomState(0)
    total = sum(F.sum(rs.randn(*y.shape) * y) for y in _as_list(case.f(*args)))
    gs = lg.grad(total, xs, create_graph=True)
    terms = [F.sum(rs.randn(*g.shape) * g) for g in gs if g is not None]
    if not terms:
        return
    hs = lg.grad(sum(terms[1:], terms[0]), xs)
    for k, h in zip(case.wrt, hs):
        if h is not None:
            np.testing.assert_allclose(h.data, 0.0, atol=1e-12,
                                       err_msg=f"{case.name}: declared linear_pieces, second derivative "
                                               f"with respect to input {k} is not zero")


# =============================================================================
# memory: what a recorded call keeps until backward is what the row declares
# =============================================================================
@_rows("keeps")
def test_inputs_not_declared_kept_are_freed_at_once(case, no_gc):
    arrays = case.arrays()
    leaves = [Variable(arrays[k]) for k in case.wrt]
    args = list(arrays)
    hidden = {}
    for k, x in zip(case.wrt, leaves):
        h = x * 1.0  # an intermediate: only the function under test may keep its array
        hidden[k] = weakref.ref(h.data)
        args[k] = h
    del h
    ys = _as_list(case.f(*args))
    del args
    kept = sorted(k for k, ref in hidden.items() if ref() is not None)
    declared = sorted(k for k in case.keeps if k != "output")
    assert kept == declared, (f"{case.name}: a recorded call keeps the arrays of inputs {kept}, "
                              f"its row declares keeps={list(case.keeps)}")
    outputs = [weakref.ref(y.data) for y in ys]
    loss = sum(F.sum(y) for y in ys)  # sum keeps nothing: an output array stays only if f keeps it
    del ys
    alive = any(ref() is not None for ref in outputs)
    assert alive == ("output" in case.keeps), (
        f"{case.name}: its output array is {'kept' if alive else 'not kept'}, "
        f"its row declares keeps={list(case.keeps)}")
    loss.backward()
    assert all(x.grad is not None for x in leaves)
    assert all(ref() is None for ref in hidden.values()), f"{case.name}: an input array outlived backward"


# =============================================================================
# stability: finite values and gradients for inputs of magnitude 1e4
# =============================================================================
@_rows("stable")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_magnitude_1e4(case, dtype):
    arrays = case.arrays(dtype)
    for k in case.stable:
        signs = np.where(np.random.RandomState(k).rand(*arrays[k].shape) < 0.5, -1.0, 1.0)
        signs.flat[0] = 0.0  # and one zero
        arrays[k] = (signs * 1e4).astype(dtype)
    for y in _as_list(case.f(*_arguments(case, arrays))):
        assert np.all(np.isfinite(y.data)), f"{case.name}: forward not finite at 1e4: {y.data}"
    grads = case.first(arrays, recorded=False)
    for k, g in zip(case.wrt, grads):
        assert np.all(np.isfinite(g)), f"{case.name}: gradient of input {k} not finite at 1e4: {g}"


# =============================================================================
# reach: every gradient formula of the library runs in some row's graph
# =============================================================================
def test_every_library_formula_is_reached_by_a_row():
    """A Function class of leafgrad that defines ``backward`` appears in the graph a row records
    (its forward, or its recorded gradient): a class no row reaches has an unchecked formula."""
    from leafgrad import graph
    from test_library_rules import LIBRARY_FUNCTIONS
    reached = set()
    for case in CASES:
        arrays = case.arrays()
        xs = [Variable(arrays[k]) for k in case.wrt]
        loss = case.loss(xs, arrays)
        reached |= {type(f) for f in graph.functions_of([loss])}
        if case.recorded:
            gs = lg.grad(loss, xs, create_graph=True)
            reached |= {type(f) for g in gs if g is not None for f in graph.functions_of([g])}
    unreached = [f"{c.__module__}.{c.__qualname__}" for c in LIBRARY_FUNCTIONS
                 if "backward" in vars(c) and c not in reached]
    assert not unreached, (f"no row of tests/test_gradients.py runs {unreached}: add a row for the public "
                           f"function that uses it (or, for a gradient function, a row calling it, of=None)")
