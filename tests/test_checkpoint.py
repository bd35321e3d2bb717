"""Tests for leafgrad.checkpoint: exact gradients, dropout, memory, random state, errors."""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leafgrad as lg
import leafgrad.functions as F
from leafgrad.checkpoint import Checkpoint, checkpoint
from leafgrad.utils import gradient_check


def _params(n, width, seed=0):
    rng = np.random.default_rng(seed)
    return [lg.Parameter((rng.standard_normal((width, width)) * 0.5).astype(np.float32))
            for _ in range(n)]


def _dropout(h, ratio=0.5):
    """DeZero's dropout formula, written with core ops (draws from NumPy's global state)."""
    if not lg.Config.train:
        return h
    mask = (np.random.rand(*h.shape) > ratio).astype(h.dtype)
    return h * mask / (1.0 - ratio)


def _block(h, Ws, drop=True):
    for W in Ws:
        h = F.tanh(F.matmul(h, W))
        if drop:
            h = _dropout(h)
    return h


def _run(Ws, x0, segments, drop=True, seed=1):
    """Forward + backward of the stacked blocks; ``segments`` None means no checkpoint."""
    np.random.seed(seed)
    for W in Ws:
        W.cleargrad()
    x = lg.Variable(x0.copy())
    h = x * 2.0
    if segments is None:
        h = _block(h, Ws, drop)
    else:
        for lo, hi in segments:
            h = checkpoint(lambda a, ws=Ws[lo:hi]: _block(a, ws, drop), h)
    y = F.sum(h * h)
    y.backward()
    return y.data, x.grad.data, [W.grad.data for W in Ws], np.random.rand()


def test_gradients_equal_plain_run_exactly_with_dropout():
    Ws = _params(6, 8)
    x0 = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    plain = _run(Ws, x0, None)
    ck = _run(Ws, x0, [(0, 2), (2, 4), (4, 6)])
    assert plain[0] == ck[0]
    assert np.array_equal(plain[1], ck[1])
    for gp, gc_ in zip(plain[2], ck[2]):
        assert np.array_equal(gp, gc_)
    # the random state after the step is the same: the recomputation drew nothing visible
    assert plain[3] == ck[3]


def test_float32_in_float32_out_and_grads():
    Ws = _params(2, 5)
    x0 = np.ones((3, 5), np.float32)
    _, gx, gWs, _ = _run(Ws, x0, [(0, 2)])
    assert gx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in gWs)
    y = checkpoint(lambda a: _block(a, Ws), lg.Variable(x0))
    assert y.dtype == np.float32


@pytest.mark.skipif(not hasattr(F, "dropout"), reason="F.dropout not written yet")
def test_library_dropout_inside_gives_same_mask():
    Ws = _params(2, 6, seed=3)
    x0 = np.random.default_rng(4).standard_normal((5, 6)).astype(np.float32)

    def fn(h):
        return F.dropout(F.tanh(F.matmul(h, Ws[0])), 0.3)

    results = []
    for use_ck in (False, True):
        np.random.seed(7)
        for W in Ws:
            W.cleargrad()
        x = lg.Variable(x0.copy())
        h = checkpoint(fn, x) if use_ck else fn(x)
        F.sum(F.matmul(h, Ws[1])).backward()
        results.append((h.data.copy(), x.grad.data, Ws[0].grad.data))
    for a, b in zip(*results):
        assert np.array_equal(a, b)


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(1, 5), cut=st.data(), batch=st.integers(1, 4), drop=st.booleans())
def test_property_any_segmentation_equals_plain(depth, cut, batch, drop):
    Ws = _params(depth, 4, seed=depth)
    x0 = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
    bounds = sorted(set(cut.draw(st.lists(st.integers(1, depth), max_size=3)) + [depth]))
    segments, lo = [], 0
    for hi in bounds:
        segments.append((lo, hi))
        lo = hi
    plain = _run(Ws, x0, None, drop)
    ck = _run(Ws, x0, segments, drop)
    assert np.array_equal(plain[1], ck[1])
    for gp, gc_ in zip(plain[2], ck[2]):
        assert np.array_equal(gp, gc_)


def test_gradient_check_through_checkpoint():
    rng = np.random.default_rng(5)
    W = lg.Parameter(rng.standard_normal((3, 3)))
    x = rng.standard_normal((2, 3))
    assert gradient_check(lambda v: checkpoint(lambda a: F.sin(F.matmul(a, W)) * a, v), x)


def test_intermediates_are_freed_after_forward():
    Ws = _params(3, 8)
    refs = []

    def fn(h):
        for W in Ws:
            h = F.tanh(F.matmul(h, W))
            refs.append(weakref.ref(h.data))
        return h

    gc.disable()
    try:
        x = lg.Variable(np.ones((2, 8), np.float32))
        y = checkpoint(fn, x)
        # all but the output's array are dead: nothing but the refcounts freed them
        assert [r() is None for r in refs] == [True, True, False]
        node = y.creator
        assert isinstance(node, Checkpoint)
        assert len(node.saved) == 1 and node.saved[0] is x.data  # only the boundary is kept
        F.sum(y).backward()
        assert node.saved is None and node.fn is None  # released after backward
    finally:
        gc.enable()


def test_graph_is_freed_when_output_dropped():
    Ws = _params(2, 4)
    gc.disable()
    try:
        x = lg.Variable(np.ones((2, 4), np.float32))
        y = checkpoint(lambda a: _block(a, Ws, False), x)
        node = weakref.ref(y.creator)
        del y
        assert node() is None
    finally:
        gc.enable()


def test_grad_returns_param_gradients_without_storing():
    Ws = _params(2, 4)
    x = lg.Variable(np.ones((2, 4), np.float32))
    y = F.sum(checkpoint(lambda a: _block(a, Ws, False), x))
    gx, gW0 = lg.grad(y, [x, Ws[0]])
    y2 = F.sum(_block(lg.Variable(np.ones((2, 4), np.float32)), Ws, False))
    ref = lg.grad(y2, [Ws[0]])[0]
    assert np.array_equal(gW0.data, ref.data)
    assert gx.shape == (2, 4)
    assert x.grad is None and all(W.grad is None for W in Ws)


def test_rng_state_is_put_back_after_recomputation():
    Ws = _params(1, 4)
    np.random.seed(0)
    x = lg.Variable(np.ones((3, 4), np.float32))
    y = F.sum(checkpoint(lambda a: _block(a, Ws), x))
    np.random.rand(5)  # the caller draws more between forward and backward
    before = np.random.get_state()
    y.backward()
    after = np.random.get_state()
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
               for a, b in zip(before, after))


def test_train_flag_of_first_run_is_used_for_recomputation():
    Ws = _params(1, 4)
    x0 = np.ones((3, 4), np.float32)
    x = lg.Variable(x0.copy())
    with lg.test_mode():
        y = checkpoint(lambda a: _block(a, Ws), x)  # dropout off
    F.sum(y).backward()  # outside test_mode: the recomputation must still skip dropout
    x2 = lg.Variable(x0.copy())
    F.sum(_block(x2, Ws, drop=False)).backward()
    assert np.array_equal(x.grad.data, x2.grad.data)


def test_mixed_args_and_tuple_of_one():
    W = _params(1, 3)[0]
    x = lg.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    c = np.full((2, 3), 2.0, np.float32)

    def fn(a, const, scale):
        return F.sin(F.matmul(a, W)) * const * scale

    F.sum(checkpoint(fn, x, c, 3.0)).backward()
    gx_ck, gW_ck = x.grad.data, W.grad.data
    x.cleargrad()
    W.cleargrad()
    F.sum(fn(x, c, 3.0)).backward()
    assert np.array_equal(gx_ck, x.grad.data)
    assert np.array_equal(gW_ck, W.grad.data)

    (only,) = checkpoint(lambda a: (a * 2.0,), x)
    assert isinstance(only, lg.Variable)


def test_multiple_outputs():
    W = _params(1, 3)[0]
    x = lg.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    c = np.full((2, 3), 2.0, np.float32)

    def fn(a, const, scale):
        h = F.matmul(a, W)
        return h * const, F.sin(h) * scale

    y1, y2 = checkpoint(fn, x, c, 3.0)
    F.sum(y1 + y2).backward()
    gx_ck, gW_ck = x.grad.data, W.grad.data
    x.cleargrad()
    W.cleargrad()
    z1, z2 = fn(x, c, 3.0)
    F.sum(z1 + z2).backward()
    assert np.array_equal(gx_ck, x.grad.data)
    assert np.array_equal(gW_ck, W.grad.data)

    # only one of two outputs used: the other gets zeros
    x.cleargrad()
    W.cleargrad()
    y1, _ = checkpoint(fn, x, c, 3.0)
    F.sum(y1).backward()
    assert np.array_equal(x.grad.data, np.full((2, 3), 2.0, np.float32).dot(W.data.T))


def test_params_only_with_constant_input():
    W = _params(1, 3)[0]
    x = np.ones((2, 3), np.float32)
    y = checkpoint(lambda a: F.matmul(a, W), x)
    F.sum(y).backward()
    assert np.array_equal(W.grad.data, x.T.dot(np.ones((2, 3), np.float32)))


def test_no_grad_just_runs():
    W = _params(1, 3)[0]
    with lg.no_grad():
        y = checkpoint(lambda a: F.matmul(a, W), lg.Variable(np.ones((1, 3), np.float32)))
    assert y.creator is None


def test_second_backward_needs_retain_graph():
    W = _params(1, 3)[0]
    x = lg.Variable(np.ones((2, 3), np.float32))
    y = F.sum(checkpoint(lambda a: F.matmul(a, W) * a, x))
    y.backward(retain_graph=True)
    g1 = W.grad.data.copy()
    y.backward(retain_graph=True)
    assert np.array_equal(W.grad.data, 2 * g1)
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_create_graph_is_a_clear_error():
    x = lg.Variable(np.ones((2,), np.float32))
    y = F.sum(checkpoint(lambda a: a * a, x))
    with pytest.raises(RuntimeError, match="checkpoint: double backward"):
        y.backward(create_graph=True)


def test_bad_arguments():
    with pytest.raises(TypeError, match="checkpoint: fn must be callable"):
        checkpoint(3, lg.Variable(np.ones(2)))
    with pytest.raises(TypeError, match="checkpoint: fn must return a Variable"):
        checkpoint(lambda a: "nope", lg.Variable(np.ones(2)))


def test_segment_reaching_a_released_graph_is_a_clear_error_not_a_crash():
    # `h` comes from a graph that a backward already released (its leaf edges are gone).
    # Finding the segment's leaves must walk past that graph; differentiating through it
    # must then say how to keep it.
    x = lg.Variable(np.ones((2, 3), np.float32))
    W = _params(1, 3)[0]
    h = F.matmul(x, W)
    F.sum(h).backward()
    y = checkpoint(lambda a: a * h, lg.Variable(np.ones((2, 3), np.float32)))
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        F.sum(y).backward()
