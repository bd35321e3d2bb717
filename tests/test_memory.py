"""The memory model: graphs are freed by reference counting alone, and arrays nobody needs die early."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Function, Variable


def test_graph_freed_by_refcount_when_output_dropped(no_gc):
    x = Variable(np.random.randn(100))
    h = x * 2.0
    y = F.sum(F.exp(h))
    f_ref = weakref.ref(h.creator)
    h_ref = weakref.ref(h)
    arr_ref = weakref.ref(h.data)
    del h
    # neither x * 2.0 nor exp (which keeps its output) needs h's array:
    # it is gone while the graph lives on
    assert arr_ref() is None and h_ref() is None
    assert f_ref() is not None
    del y
    assert f_ref() is None


def test_no_reference_cycle_between_function_and_outputs(no_gc):
    x = Variable(np.ones(3))
    y = F.sin(x)
    f_ref = weakref.ref(y.creator)
    assert f_ref().outputs[0]() is y
    del y
    assert f_ref() is None


def test_intermediate_kept_while_backward_needs_it_then_released(no_gc):
    x = Variable(np.random.randn(50))
    h = x * 2.0
    arr_ref = weakref.ref(h.data)
    y = F.sum(F.sin(h))  # sin keeps its input
    del h
    assert arr_ref() is not None
    y.backward()  # retain_graph=False releases what sin kept
    assert arr_ref() is None
    assert x.grad is not None


def test_retain_graph_keeps_saved_arrays(no_gc):
    x = Variable(np.random.randn(50))
    h = x * 2.0
    arr_ref = weakref.ref(h.data)
    y = F.sum(F.sin(h))
    del h
    y.backward(retain_graph=True)
    assert arr_ref() is not None
    del y
    assert arr_ref() is None


def test_book_style_function_keeps_its_inputs(no_gc):
    class Double(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy * 2

    x = Variable(np.ones(10))
    h = x * 3.0
    arr_ref = weakref.ref(h.data)
    y = Double()(h)
    del h
    assert arr_ref() is not None  # declared nothing: DeZero's behaviour
    y.backward()
    assert arr_ref() is None and x.grad.data[0] == 6.0


def test_holding_loss_after_backward_holds_no_activations(no_gc):
    W = Variable(np.random.randn(20, 20))
    x = np.random.randn(8, 20)
    h = F.tanh(F.matmul(x, W))
    arr_ref = weakref.ref(h.data)
    loss = F.sum(F.sigmoid(F.matmul(h, W)))
    del h
    assert arr_ref() is not None
    loss.backward()
    assert arr_ref() is None
    assert loss.creator is not None  # the loss is still here, its saved data is not


def test_grad_with_create_graph_leaves_no_cycle(no_gc):
    x = Variable(np.array(2.0))
    y = x ** 3
    gx, = lg.grad(y, [x], create_graph=True)
    refs = [weakref.ref(gx.creator), weakref.ref(y.creator)]
    del gx, y
    assert all(r() is None for r in refs)


def test_backward_create_graph_cycle_is_documented_behaviour():
    # backward(create_graph=True) stores in x.grad a Variable that depends on x: a cycle,
    # as in PyTorch; cleargrad() breaks it.
    x = Variable(np.array(2.0))
    y = x ** 3
    y.backward(create_graph=True)
    assert x.grad.creator is not None
    x.cleargrad()


def test_training_loop_keeping_every_loss_does_not_grow(no_gc):
    W = Variable(np.random.randn(32, 32).astype(np.float32))
    losses = []

    def step():
        x = np.random.randn(16, 32).astype(np.float32)
        loss = F.sum(F.tanh(F.matmul(x, W)) ** 2)
        W.cleargrad()
        loss.backward()
        W.data -= 0.001 * W.grad.data
        losses.append(loss)

    for _ in range(20):
        step()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(500):
            step()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    per_step = grown / 500
    # what stays per kept loss: the loss and its graph's structure (small function objects), no arrays
    assert per_step < 4096, f"{per_step:.0f} bytes per step"


def test_no_grad_keeps_nothing(no_gc):
    x = Variable(np.ones(10))
    with lg.no_grad():
        h = x * 2.0
        y = F.sin(h)
    assert y.creator is None and h.creator is None


def test_constant_operand_is_not_a_graph_node(no_gc):
    big = np.ones(1000)
    ref = weakref.ref(big)
    x = Variable(np.ones(1000))
    y = x + big  # Add keeps neither input
    del big
    assert ref() is None
    y.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones(1000))


def test_relu_backward_reuses_the_gradient_array_only_when_owned():
    from leafgrad.functions.activation import ReLU
    calls = []
    original = ReLU.backward

    def spy(self, gy):
        gx = original(self, gy)
        calls.append((gy.shape, self.may_overwrite_gy, gx is gy))
        return gx

    ReLU.backward = spy
    try:
        W = Variable(np.random.randn(5, 4))
        x = np.random.randn(3, 5)
        h = F.relu(F.matmul(x, W))          # matmul's gradient is fresh: relu may overwrite it
        F.sum(F.matmul(h, W.T)).backward()
        assert calls == [((3, 4), True, True)]
        g_inplace = W.grad.data.copy()
        W.cleargrad()
        calls.clear()
        h = F.relu(F.matmul(x, W))
        y = F.matmul(h, W.T)
        F.sum(y).backward(retain_grad=True)  # retain_grad stores gradients: no reuse
        assert calls == [((3, 4), False, False)]
        np.testing.assert_allclose(W.grad.data, g_inplace)
        W.cleargrad()
        calls.clear()
        F.sum(F.relu(x @ W + 0)).backward()  # a gradient from `+` is shared: no reuse
        assert calls == [((3, 4), False, False)]
    finally:
        ReLU.backward = original


def test_relu_masks_in_place_between_convolutions_and_pooling():
    """conv2d's and max pooling's gradients are fresh arrays: a ReLU beside them masks in place."""
    from leafgrad.functions.activation import ReLU
    from leafgrad.functions.conv import conv2d, pooling
    calls = []
    original = ReLU.backward

    def spy(self, gy):
        gx = original(self, gy)
        calls.append((gy.shape, self.may_overwrite_gy, gx is gy))
        return gx

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8))
    W1, W2 = Variable(rng.standard_normal((4, 3, 3, 3))), Variable(rng.standard_normal((5, 4, 3, 3)))

    def loss():
        h = pooling(F.relu(conv2d(x, W1, None, 1, 1)), 2, 2)  # relu's gradient comes from pooling
        return F.sum(conv2d(F.relu(h - 0.1), W2, None, 1, 1) ** 2)  # ... and from conv2d

    ReLU.backward = spy
    try:
        loss().backward()
        assert calls == [((2, 4, 4, 4), True, True), ((2, 4, 8, 8), True, True)]
        g1, g2 = W1.grad.data.copy(), W2.grad.data.copy()
        W1.cleargrad(), W2.cleargrad()
        loss().backward(retain_grad=True)  # no reuse: the same gradients
        np.testing.assert_allclose(W1.grad.data, g1)
        np.testing.assert_allclose(W2.grad.data, g2)
    finally:
        ReLU.backward = original


# =============================================================================
# After backward, no function holds an array: for every public function
# =============================================================================
def _arrays_held(obj, seen=None):
    """Arrays (and Variables, which hold one) reachable from ``obj``'s containers, not crossing into functions."""
    from leafgrad.cuda import array_types
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, array_types + (Variable,)):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [a for item in obj for a in _arrays_held(item, seen)]
    if isinstance(obj, dict):
        return [a for item in obj.values() for a in _arrays_held(item, seen)]
    return []


def _cases():
    from test_gradients import CASES
    return CASES


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.name)
def test_no_function_holds_an_array_after_backward(case, no_gc):
    from leafgrad import graph
    arrays = case.arrays()
    xs = [Variable(arrays[k]) for k in case.wrt]
    loss = case.loss(xs, arrays)
    functions = list(graph.functions_of([loss]))
    assert functions, "the case built no graph"
    loss.backward()
    for f in graph.functions_of([loss]):  # the released graph stays while `loss` lives
        held = {name: _arrays_held(value) for name, value in vars(f).items() if name != "outputs"}
        held = {name: found for name, found in held.items() if found}
        assert not held, f"{case.name}: {type(f).__name__} still holds arrays in {sorted(held)} after backward"
