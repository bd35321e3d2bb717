"""Shape functions: reshape transpose get_item expand_dims flatten broadcast_to sum_to concat stack split."""
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import leafgrad.functions as F
from leafgrad import Variable
from test_functions_common import check_double, check_grad, rand

MASK = np.array([[True, False, True], [False, False, True], [True, True, True], [False, True, False]])
SMALL_SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3)


# =============================================================================
# forward against NumPy, backward, double backward
# =============================================================================
CASES = {
    "reshape": (lambda x: F.reshape(x, (4, 3)), lambda a: a.reshape(4, 3)),
    "reshape_-1": (lambda x: F.reshape(x, (-1,)), lambda a: a.reshape(-1)),
    "reshape_method": (lambda x: x.reshape(2, 6), lambda a: a.reshape(2, 6)),
    "transpose": (F.transpose, lambda a: a.T),
    "transpose_axes": (lambda x: x.transpose(1, 0), lambda a: a.transpose(1, 0)),
    "T": (lambda x: x.T, lambda a: a.T),
    "get_item_basic": (lambda x: x[1:, ::2], lambda a: a[1:, ::2]),
    "get_item_int": (lambda x: x[2], lambda a: a[2]),
    "get_item_advanced_repeats": (lambda x: x[[0, 0, 2, 0]], lambda a: a[[0, 0, 2, 0]]),
    "get_item_pairs": (lambda x: x[np.array([0, 1, 1]), np.array([2, 2, 0])],
                       lambda a: a[np.array([0, 1, 1]), np.array([2, 2, 0])]),
    "get_item_bool": (lambda x: x[MASK], lambda a: a[MASK]),
    "get_item_newaxis_ellipsis": (lambda x: x[None, ..., 1], lambda a: a[None, ..., 1]),
    "expand_dims_0": (lambda x: F.expand_dims(x, 0), lambda a: np.expand_dims(a, 0)),
    "expand_dims_-1": (lambda x: F.expand_dims(x, -1), lambda a: np.expand_dims(a, -1)),
    "flatten": (F.flatten, lambda a: a.reshape(a.shape[0], -1)),
    "broadcast_to": (lambda x: F.broadcast_to(x[:1], (2, 4, 3)), lambda a: np.broadcast_to(a[:1], (2, 4, 3))),
    "sum_to": (lambda x: F.sum_to(x, (1, 3)), lambda a: a.sum(axis=0, keepdims=True)),
    "sum_to_lead": (lambda x: F.sum_to(x, (3,)), lambda a: a.sum(axis=0)),
    "concat": (lambda x: F.concat([x, x[:2] * 2], axis=0), lambda a: np.concatenate([a, a[:2] * 2], 0)),
    "concat_-1": (lambda x: F.concat([x, x[:, :1]], axis=-1), lambda a: np.concatenate([a, a[:, :1]], -1)),
    "stack": (lambda x: F.stack([x, x * 3]), lambda a: np.stack([a, a * 3])),
    "stack_-1": (lambda x: F.stack([x, x * 3, x], axis=-1), lambda a: np.stack([a, a * 3, a], -1)),
    "split_last": (lambda x: F.split(x, 3, axis=1)[2], lambda a: np.split(a, 3, axis=1)[2]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_numpy(name):
    f, ref = CASES[name]
    a = rand(4, 3, seed=0)
    y = f(Variable(a))
    np.testing.assert_array_equal(y.data, ref(a))


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward(name):
    check_grad(CASES[name][0], rand(4, 3, seed=1))


@pytest.mark.parametrize("name", sorted(CASES))
def test_double_backward(name):
    f = CASES[name][0]
    check_double(lambda x: f(x * x), rand(4, 3, seed=2))


def test_get_item_scatter_adds_repeated_indices():
    x = Variable(np.arange(4.0))
    F.sum(x[[0, 0, 3, 0]] * np.array([1.0, 2.0, 3.0, 4.0])).backward()
    np.testing.assert_array_equal(x.grad.data, [7.0, 0.0, 0.0, 3.0])


def test_split_forward_backward_all_pieces():
    a = rand(5, 4, seed=3)
    pieces = F.split(Variable(a), [1, 3], axis=0)
    assert [p.shape for p in pieces] == [(1, 4), (2, 4), (2, 4)]
    for p, r in zip(pieces, np.split(a, [1, 3], axis=0)):
        np.testing.assert_array_equal(p.data, r)
    check_grad(lambda x: F.concat([q * (i + 1) for i, q in enumerate(F.split(x, 2, axis=1))], axis=0), a)
    check_double(lambda x: F.stack(F.split(x * x, 4, axis=-1), axis=0), a)


def test_split_one_piece_used():
    x = Variable(rand(4, 6))
    a, b, c = F.split(x, 3, axis=1)
    F.sum(b * 2.0).backward()
    expected = np.zeros((4, 6))
    expected[:, 2:4] = 2.0
    np.testing.assert_array_equal(x.grad.data, expected)


def test_split_returns_a_list_even_for_one_section():
    out = F.split(Variable(rand(4, 2)), 1)
    assert isinstance(out, list) and len(out) == 1 and out[0].shape == (4, 2)


# =============================================================================
# errors name the function and the values at fault
# =============================================================================
def test_errors():
    x = Variable(rand(2, 3))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape an input of shape \(2, 3\) \(6 elements\) "
                                         r"into shape \(4,\)"):
        F.reshape(x, (4,))
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\) are not a permutation"):
        F.transpose(x, (0, 0))
    with pytest.raises(IndexError, match=r"transpose: axis 2 is out of range for an input of shape \(2, 3\)"):
        F.transpose(x, (0, 2))
    with pytest.raises(ValueError, match=r"broadcast_to: an input of shape \(2, 3\) cannot be broadcast "
                                         r"to shape \(4, 3\)"):
        F.broadcast_to(x, (4, 3))
    with pytest.raises(ValueError, match=r"sum_to: an input of shape \(2, 3\) cannot be summed to shape "
                                         r"\(3, 2\)"):
        F.sum_to(x, (3, 2))
    with pytest.raises(IndexError, match=r"expand_dims: axis 3 is out of range for an input of shape \(2, 3\)"):
        F.expand_dims(x, 3)
    with pytest.raises(ValueError, match=r"flatten: .*shape \(\)"):
        F.flatten(Variable(np.array(1.0)))
    with pytest.raises(ValueError, match=r"concat: input 1 has shape \(2, 4\), which does not match input "
                                         r"0's shape \(2, 3\) outside axis 0"):
        F.concat([x, Variable(rand(2, 4))])
    with pytest.raises(ValueError, match=r"stack: input 1 has shape \(2,\), which differs from input 0's shape \(3,\)"):
        F.stack([x[0], x[:, 0]])
    with pytest.raises(ValueError, match=r"split: axis 1 of length 3 .* cannot be split into 2 equal sections"):
        F.split(x, 2, axis=1)
    with pytest.raises(TypeError, match="concat: xs must be a list or tuple"):
        F.concat(x)
    with pytest.raises(ValueError, match="concat: needs at least one input"):
        F.concat([])
    with pytest.raises(IndexError, match="index 5 is out of bounds"):
        x[5]


# =============================================================================
# memory: shape functions keep nothing
# =============================================================================
@pytest.mark.parametrize("fn", [lambda h: F.reshape(h, (-1,)), F.transpose, lambda h: h[[0, 0, 1]],
                                lambda h: F.concat([h, h], axis=1), lambda h: F.stack([h, h]),
                                lambda h: F.broadcast_to(h, (2, 6, 5)), lambda h: F.sum_to(h, (1, 5)),
                                lambda h: F.split(h, 2)[0]],
                         ids=["reshape", "transpose", "get_item", "concat", "stack", "broadcast_to", "sum_to",
                              "split"])
def test_input_freed(no_gc, fn):
    x = Variable(rand(6, 5))
    h = x * 2.0
    ref = weakref.ref(h.data)
    y = fn(h) * 1.0  # a copy: views of h (reshape, transpose) would keep its array alive themselves
    del h
    assert ref() is None
    F.sum(y).backward()
    assert x.grad.shape == (6, 5)


# =============================================================================
# Hypothesis: random shapes and axes, including 0-d arrays and negative axes
# =============================================================================
@settings(max_examples=25, deadline=None)
@given(SMALL_SHAPES, st.data())
def test_property_transpose(shape, data):
    a = rand(*shape)
    axes = data.draw(st.permutations(range(len(shape)))) if shape else []
    axes = [ax - len(shape) if data.draw(st.booleans()) else ax for ax in axes]
    x = Variable(a)
    y = F.transpose(x, axes if shape else None)
    np.testing.assert_array_equal(y.data, np.transpose(a, axes if shape else None))
    w = rand(*y.shape)
    F.sum(y * w).backward()
    np.testing.assert_array_equal(x.grad.data, np.transpose(w, np.argsort([ax % len(shape) for ax in axes]))
                                  if shape else w)


@settings(max_examples=25, deadline=None)
@given(SMALL_SHAPES, st.data())
def test_property_reshape_and_expand_dims(shape, data):
    a = rand(*shape)
    x = Variable(a)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    y = F.expand_dims(x, axis)
    np.testing.assert_array_equal(y.data, np.expand_dims(a, axis))
    z = F.reshape(y, (-1,))
    w = rand(*z.shape)
    F.sum(z * w).backward()
    np.testing.assert_array_equal(x.grad.data, w.reshape(shape))


@settings(max_examples=25, deadline=None)
@given(hnp.mutually_broadcastable_shapes(num_shapes=1, max_dims=4, max_side=3))
def test_property_broadcast_to_and_sum_to(shapes):
    src, dst = shapes.input_shapes[0], shapes.result_shape
    a = rand(*src)
    x = Variable(a)
    y = F.broadcast_to(x, dst)
    np.testing.assert_array_equal(y.data, np.broadcast_to(a, dst))
    F.sum(y).backward()
    n = int(np.prod(dst)) // max(int(np.prod(src)), 1)
    np.testing.assert_allclose(x.grad.data, np.full(src, n))
    # sum_to is the reverse
    b = rand(*dst)
    s = F.sum_to(Variable(b), src)
    assert s.shape == src
    np.testing.assert_allclose(s.data.sum(), b.sum())


@settings(max_examples=25, deadline=None)
@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), st.data())
def test_property_concat_stack(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = data.draw(st.integers(1, 3))
    arrays = [rand(*shape) for _ in range(n)]
    xs = [Variable(a) for a in arrays]
    y = F.concat(xs, axis=axis)
    np.testing.assert_array_equal(y.data, np.concatenate(arrays, axis=axis))
    w = rand(*y.shape)
    F.sum(y * w).backward()
    for x, gw in zip(xs, np.split(w, n, axis=axis)):
        np.testing.assert_array_equal(x.grad.data, gw)
    saxis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    z = F.stack(arrays, axis=saxis)
    np.testing.assert_array_equal(z.data, np.stack(arrays, axis=saxis))
