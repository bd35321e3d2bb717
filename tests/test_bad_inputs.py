"""Every public function refuses what it cannot compute, tested as properties over all of them.

The argument kinds come from the functions themselves (``@checked`` in ``leafgrad.checks``), and
valid calls from the gradient table (``test_gradients.CASES``): nothing is listed twice.
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Variable, checks

from test_gradients import CASES

PUBLIC = sorted(name for name in F.__all__ if not isinstance(getattr(F, name), type))
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: A value of the right kind for each kind, so that only the argument under test is wrong.
GOOD = {
    checks.ARRAY: np.ones((2, 3)), checks.OPTIONAL_ARRAY: None, checks.ARRAYS: [np.ones((2, 3))],
    checks.LABELS: np.array([0, 1]), checks.CONDITION: np.ones((2, 3), bool), checks.NUMBER: 0.5,
    checks.BOUND: 0.5, checks.INT: 1, checks.OPTIONAL_INT: None,
    checks.AXIS: None, checks.SHAPE: (3, 2), checks.PAIR: 1, checks.OPTIONAL_PAIR: None,
    checks.BOOL: False, checks.SECTIONS: 2,
}

_variable_gone_complex = Variable(np.ones(2))
_variable_gone_complex.data = np.array([1 + 2j, 3j])  # assigned after construction: still refused

#: Values no array argument may be.
NOT_ARRAYS = st.sampled_from([
    None, "abc", b"bytes", {"a": 1}, object(), np.array(["a", "b"]), np.array([1 + 2j]),
    np.array([None, 1], dtype=object), 1 + 2j, _variable_gone_complex, Variable(None),
])
#: Values of the wrong kind for each kind of non-array argument.
WRONG = {
    checks.NUMBER: st.sampled_from(["abc", None, [1.0], 1 + 2j, True]),
    checks.BOUND: st.sampled_from(["abc", {}, 1 + 2j]),
    checks.INT: st.sampled_from([1.5, "1", None, True, (1,)]),
    checks.OPTIONAL_INT: st.sampled_from([1.5, "1", True]),
    checks.AXIS: st.sampled_from([1.5, "0", (0, "1"), {0}]),
    checks.SHAPE: st.sampled_from(["abc", 1.5, (2, 1.5), None]),
    checks.PAIR: st.sampled_from([2.0, (1, 2, 3), "a", None, (1, 1.5)]),
    checks.OPTIONAL_PAIR: st.sampled_from([2.0, (1, 2, 3), "a"]),
    checks.BOOL: st.sampled_from(["yes", 2, None, 0.5]),
    checks.SECTIONS: st.sampled_from(["abc", 1.5, None, (1, "2")]),
}
_ARRAY_KINDS = (checks.ARRAY, checks.OPTIONAL_ARRAY, checks.LABELS, checks.CONDITION)


def _call(name, argument, bad):
    """Call ``F.<name>`` with good values everywhere but ``argument``, which is ``bad``."""
    fn = getattr(F, name)
    kinds = fn.argument_kinds
    import inspect
    args = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name == argument:
            args[p.name] = bad
        elif p.name in kinds and kinds[p.name] in GOOD:
            args[p.name] = GOOD[kinds[p.name]]
        elif p.default is inspect.Parameter.empty:
            args[p.name] = 2  # an undeclared required argument (pow's exponent)
    return fn(**args)


# A public function without @checked: tests/test_library_rules.py names it (here it has no kinds to test).
_KINDS = {name: getattr(getattr(F, name), "argument_kinds", {}) for name in PUBLIC}


ARRAY_ARGUMENTS = [(name, arg) for name in PUBLIC for arg, kind in _KINDS[name].items()
                   if kind in _ARRAY_KINDS or kind is checks.ARRAYS]
OTHER_ARGUMENTS = [(name, arg) for name in PUBLIC for arg, kind in _KINDS[name].items()
                   if kind in WRONG]


@pytest.mark.parametrize("name,argument", ARRAY_ARGUMENTS, ids=[f"{n}-{a}" for n, a in ARRAY_ARGUMENTS])
@SETTINGS
@given(bad=NOT_ARRAYS)
def test_an_array_argument_that_is_not_real_numbers_is_a_type_error_naming_function_and_argument(
        name, argument, bad):
    kind = getattr(F, name).argument_kinds[argument]
    if kind is checks.ARRAYS:
        bad = [np.ones((2, 3)), bad]  # one bad element of the sequence
    elif bad is None and kind is checks.OPTIONAL_ARRAY:
        return  # None is allowed there
    with pytest.raises(TypeError) as info:
        _call(name, argument, bad)
    message = str(info.value)
    assert message.startswith(f"{getattr(F, name).__name__}: {argument}"), message


@pytest.mark.parametrize("name,argument", OTHER_ARGUMENTS, ids=[f"{n}-{a}" for n, a in OTHER_ARGUMENTS])
@SETTINGS
@given(data=st.data())
def test_a_non_array_argument_of_the_wrong_kind_is_refused_naming_function_and_argument(name, argument, data):
    bad = data.draw(WRONG[getattr(F, name).argument_kinds[argument]])
    with pytest.raises((TypeError, ValueError)) as info:
        _call(name, argument, bad)
    message = str(info.value)
    assert message.startswith(f"{getattr(F, name).__name__}: {argument}"), message


def test_a_function_class_names_the_argument_it_cannot_use():
    with pytest.raises(TypeError, match=r"^Linear: argument W must be a Variable or an array of real numbers"):
        F.Linear()(np.ones((2, 3)), "abc")
    with pytest.raises(TypeError, match=r"^Exp: argument x is None"):
        F.Exp()(None)
    with pytest.raises(TypeError, match=r"^Add: argument x1 .* got \[1, 2\] \(list\)"):
        Variable(np.ones(2)) + [1, 2]
    with pytest.raises(TypeError, match=r"^Variable: data must be an array of real numbers"):
        Variable(np.array([1j]))


# =============================================================================
# Integer and bool inputs: what the computation in floating point gives
# =============================================================================
def _integers(case, dtype):
    """The case's inputs with every float input replaced by small integers (or bools)."""
    rs = np.random.RandomState(len(case.name))
    out = []
    for a in case.arrays():
        if a.dtype.kind == "f":
            ints = np.clip(np.round(a * 2), -4, 4) if dtype is not bool else rs.rand(*a.shape) > 0.5
            out.append(ints.astype(dtype))
        else:
            out.append(a)
    return out


def _outcome(f, arrays):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            with lg.no_grad():
                ys = f(*arrays)
        except (TypeError, ValueError) as err:
            return err
    return [y.data for y in (ys if isinstance(ys, (list, tuple)) else [ys])]


@pytest.mark.parametrize("case", [c for c in CASES if c.name != "checkpoint"], ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_integer_inputs_give_what_the_float_computation_gives(case, dtype):
    """Integers are computed on exactly (as NumPy does) or in floating point, never truncated."""
    ints = _integers(case, dtype)
    floats = [a.astype(np.float64) if k in case.wrt else a for k, a in enumerate(ints)]
    got, expected = _outcome(case.f, ints), _outcome(case.f, floats)
    if not isinstance(expected, list):  # the float version refuses these values (a label, a range): so must this
        assert type(got) is type(expected), f"{case.name}: {got!r} for integers, {expected!r} for floats"
        return
    assert isinstance(got, list), f"{case.name}: integers refused: {got}"
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.astype(np.float64), e, rtol=1e-12, atol=1e-12, equal_nan=True,
                                   err_msg=f"{case.name}: {g.dtype} result")


@pytest.mark.parametrize("case", [c for c in CASES if c.name != "checkpoint"], ids=lambda c: c.name)
def test_bool_inputs_give_numpys_answer_never_a_truncated_one(case):
    """Bools follow NumPy (``True + True`` is ``True``; ``-True`` is refused, naming the function);
    a floating result is the floating computation's (the mean of ``[True, False]`` is 0.5)."""
    bools = _integers(case, bool)
    floats = [a.astype(np.float64) if k in case.wrt else a for k, a in enumerate(bools)]
    got, expected = _outcome(case.f, bools), _outcome(case.f, floats)
    if not isinstance(got, list):
        assert str(got).split(":")[0].isidentifier(), f"{case.name}: unclear refusal {got!r}"
        return
    if isinstance(expected, list):
        for g, e in zip(got, expected):
            if g.dtype.kind == "f":
                np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=case.name)


ELEMENTWISE = [c for c in CASES if c.elementwise and len(c.inputs) == 1]  # rows declaring elementwise=True


@pytest.mark.parametrize("case", ELEMENTWISE, ids=lambda c: c.name)
@SETTINGS
@given(value=st.floats(0.25, 2.5), dtype=st.sampled_from([np.float32, np.float64]))
def test_element_wise_functions_take_0d_arrays_at_every_order(case, value, dtype):
    x = Variable(np.array(value, dtype))
    y = case.f(x)
    assert y.shape == () and y.dtype == dtype
    reference = case.f(Variable(np.array([value], dtype)))
    np.testing.assert_allclose(y.data, reference.data[0], rtol=1e-6)
    gx, = lg.grad(y, [x], create_graph=True)
    ggx, = lg.grad(gx, [x])
    assert gx.shape == () and gx.dtype == dtype
    assert ggx is None or (ggx.shape == () and ggx.dtype == dtype)


# =============================================================================
# Labels, probabilities and targets: values out of range
# =============================================================================
def _scores(n, c):
    return np.random.RandomState(n * 7 + c).randn(n, c)


LABELLED = {
    "softmax_cross_entropy": lambda x, t: F.softmax_cross_entropy(x, t),
    "softmax_cross_entropy_simple": lambda x, t: F.softmax_cross_entropy_simple(x, t),
    "accuracy": lambda x, t: F.accuracy(x, t),
    "embed_id": lambda x, t: F.embed_id(t, x),  # ids t pick rows of a table of x.shape[0] rows
}


@pytest.mark.parametrize("name", sorted(LABELLED))
@SETTINGS
@given(data=st.data(), n=st.integers(1, 6), c=st.integers(2, 5))
def test_labels_out_of_range_are_named_with_their_position(name, data, n, c):
    x = _scores(n, c) if name != "embed_id" else _scores(c, 3)
    classes = c
    labels = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    where = data.draw(st.integers(0, n - 1))
    bad = data.draw(st.one_of(st.integers(classes, classes + 50), st.integers(-50, -1)))
    labels[where] = bad
    with pytest.raises(ValueError, match=rf"^{name}: (label|id) {bad} at position {where} is outside "
                                         rf"\[0, {classes}\)"):
        LABELLED[name](x, labels)


@pytest.mark.parametrize("name", sorted(LABELLED))
@SETTINGS
@given(labels=hnp.arrays(np.float64, st.integers(1, 4), elements=st.floats(-2, 5)))
def test_labels_that_are_not_integers_are_a_type_error(name, labels):
    x = _scores(len(labels), 3) if name != "embed_id" else _scores(3, 3)
    with pytest.raises(TypeError, match=rf"^{name}: (t|x) must be integer labels"):
        LABELLED[name](x, labels)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "softmax_cross_entropy_simple", "accuracy"])
@SETTINGS
@given(n=st.integers(1, 5), extra=st.integers(1, 3))
def test_labels_that_do_not_fit_the_batch_are_a_value_error(name, n, extra):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        LABELLED[name](_scores(n, 3), np.zeros(n + extra, np.int64))


def test_ignored_labels_may_be_out_of_range():
    x = _scores(3, 4)
    loss = F.softmax_cross_entropy(x, np.array([1, -100, 3]), ignore_index=-100)
    assert np.isfinite(loss.data)


@pytest.mark.parametrize("name,argument", [("binary_cross_entropy", "p"), ("binary_cross_entropy", "t"),
                                           ("sigmoid_cross_entropy", "t")])
@SETTINGS
@given(data=st.data(), n=st.integers(1, 6))
def test_probabilities_and_targets_outside_0_1_are_named_with_their_position(name, argument, data, n):
    values = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    where = data.draw(st.integers(0, n - 1))
    bad = data.draw(st.one_of(st.floats(1.001, 1e6), st.floats(-1e6, -0.001)))
    values[where] = bad
    other = np.full(n, 0.5)
    p, t = (values, other) if argument == "p" else (other, values)
    with pytest.raises(ValueError, match=rf"^{name}: {argument} has the value .* at position {where}, "
                                         r"outside \[0\.0, 1\.0\]"):
        getattr(F, name)(p, t)


def test_weights_summing_to_zero_are_refused():
    with pytest.raises(ValueError, match="average: the weights sum to zero"):
        F.average(np.array([1.0, 2.0]), weights=np.array([1.0, -1.0]))


# =============================================================================
# Every public function returns a Variable, in training, test mode and under no_grad
# =============================================================================
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("mode", ["train", "test", "no_grad"])
def test_every_public_function_returns_a_variable(case, mode):
    switch = {"train": lg.using_config("train", True), "test": lg.test_mode(), "no_grad": lg.no_grad()}[mode]
    with switch:
        ys = case.f(*case.arrays())
    for y in ys if isinstance(ys, (list, tuple)) else [ys]:
        assert isinstance(y, Variable), f"{case.name} returned {type(y).__name__} in {mode}"
