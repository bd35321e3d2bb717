"""The backward walk: accumulation, generations, retain_grad, retain_graph, create_graph, grad()."""
import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Function, Variable
from leafgrad.utils import gradient_check


def test_accumulation_without_aliasing():
    x = Variable(np.array(3.0))
    y = x + x
    y.backward()
    assert x.grad.data == 2.0
    x.cleargrad()
    y = (x + x) + x
    y.backward()
    assert x.grad.data == 3.0


def test_diamond_step16():
    x = Variable(np.array(2.0))
    a = x ** 2
    y = a ** 2 + a ** 2
    y.backward()
    assert y.data == 32.0 and x.grad.data == 64.0


def test_retain_grad_false_keeps_only_leaves_seed_example():
    x0 = Variable(np.array(1.0))
    x1 = Variable(np.array(1.0))
    t = x0 + x1
    y = x0 + t
    y.backward()
    assert y.grad is None and t.grad is None
    assert x0.grad.data == 2.0 and x1.grad.data == 1.0


def test_retain_grad_true_keeps_them_all():
    x0 = Variable(np.array(1.0))
    x1 = Variable(np.array(1.0))
    t = x0 + x1
    y = x0 + t
    y.backward(retain_grad=True)
    assert y.grad.data == 1.0 and t.grad.data == 1.0
    assert x0.grad.data == 2.0 and x1.grad.data == 1.0


def test_gradients_accumulate_across_backward_calls_on_new_graphs():
    x = Variable(np.array(2.0))
    (x * 3).backward()
    (x * 4).backward()
    assert x.grad.data == 7.0


def test_leaf_backward_sets_ones():
    x = Variable(np.ones((2, 2)))
    x.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 2)))


def test_second_backward_through_freed_graph_raises():
    x = Variable(np.array(2.0))
    y = F.sin(x) * x
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward_which_accumulates():
    x = Variable(np.array(2.0))
    y = F.sin(x) * x
    y.backward(retain_graph=True)
    g1 = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * g1)


def test_newton_method_second_derivative():
    def f(x):
        return x ** 4 - 2 * x ** 2

    x = Variable(np.array(2.0))
    y = f(x)
    y.backward(create_graph=True)
    gx = x.grad
    assert gx.data == 24.0
    x.cleargrad()
    gx.backward()
    assert x.grad.data == 44.0

    x = Variable(np.array(2.0))
    for _ in range(10):
        y = f(x)
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x.data -= gx.data / gx2.data
    np.testing.assert_allclose(x.data, 1.0)


def test_tanh_higher_order_derivatives():
    x = Variable(np.array(0.5))
    y = F.tanh(x)
    y.backward(create_graph=True)
    t = np.tanh(0.5)
    expected = [1 - t ** 2, -2 * t * (1 - t ** 2), (1 - t ** 2) * (6 * t ** 2 - 2)]
    for order in range(3):
        gx = x.grad
        np.testing.assert_allclose(gx.data, expected[order])
        x.cleargrad()
        gx.backward(create_graph=True)


def test_grad_returns_without_touching_dot_grad():
    x = Variable(np.array(3.0))
    w = Variable(np.array(2.0))
    y = x * x * w
    gx, gw = lg.grad(y, [x, w])
    assert gx.data == 12.0 and gw.data == 9.0
    assert x.grad is None and w.grad is None


def test_grad_of_intermediate_and_unrelated_and_grad_outputs():
    x = Variable(np.array([1.0, 2.0]))
    h = x * 3
    y = F.sum(h * h)
    z = Variable(np.array(1.0))
    gh, gz = lg.grad(y, [h, z])
    np.testing.assert_allclose(gh.data, 2 * h.data)
    assert gz is None
    y = x * 2
    gx, = lg.grad(y, [x], grad_outputs=[np.array([1.0, 10.0])])
    np.testing.assert_allclose(gx.data, [2.0, 20.0])


def test_grad_create_graph_double_backward():
    x = Variable(np.array(2.0))
    y = x ** 3
    gx, = lg.grad(y, [x], create_graph=True)
    ggx, = lg.grad(gx, [x])
    assert gx.data == 12.0 and ggx.data == 12.0


def test_grad_errors():
    x = Variable(np.array(1.0))
    with pytest.raises(TypeError, match="inputs must be Variables"):
        lg.grad(x * 2, [np.array(1.0)])
    with pytest.raises(ValueError, match="grad_outputs"):
        lg.grad(x * 2, [x], grad_outputs=[None, None])


def test_constants_get_no_gradient_computed():
    calls = []

    class Spy(Function):
        retain_inputs = ()

        def forward(self, a, b):
            return a * 2 + b * 3

        def backward(self, gy):
            calls.append(self.needs_input_grad)
            return (gy * 2 if self.needs_input_grad[0] else None,
                    gy * 3 if self.needs_input_grad[1] else None)

    x = Variable(np.array(1.0))
    y = Spy()(x, np.array(5.0))
    y.backward()
    assert calls == [(True, False)] and x.grad.data == 2.0


def test_function_of_constants_only_is_not_recorded():
    y = F.exp(np.array(1.0))
    assert y.creator is None and y.requires_grad


def test_book_style_function_keeps_inputs_and_works():
    class Square(Function):  # the book's way: reads self.inputs, returns arrays or Variables
        def forward(self, x):
            return x ** 2

        def backward(self, gy):
            x = self.inputs[0].data
            return 2 * x * gy

    class Cube(Function):
        def forward(self, x):
            return x ** 3

        def backward(self, gy):
            x, = self.inputs
            return 3 * x ** 2 * gy

    x = Variable(np.array(3.0))
    y = Cube()(Square()(x))
    y.backward()
    assert x.grad.data == 6 * 3.0 ** 5
    # double backward through a book-style function written on Variables
    x = Variable(np.array(2.0))
    y = Cube()(x)
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    gx.backward()
    assert x.grad.data == 12.0


def test_multi_output_book_style_function_gets_zeros_for_an_unused_output():
    class Split2(Function):  # the book's way: declares nothing, backward on Variables
        def forward(self, x):
            return x[:1].copy(), x[1:].copy()

        def backward(self, g0, g1):
            return Variable(np.concatenate([g0.data, g1.data]))

    x = Variable(np.array([1.0, 2.0, 3.0]))
    a, b = Split2()(x)
    (a * 5).backward()
    np.testing.assert_allclose(x.grad.data, [5.0, 0.0, 0.0])


def test_multi_output_declared_function_gets_none_for_an_unused_output():
    seen = []

    class Split2(Function):
        retain_inputs = ()

        def forward(self, x):
            return x[:1].copy(), x[1:].copy()

        def backward(self, g0, g1):
            seen.append((type(g0), g1))
            return np.concatenate([g0, np.zeros(2)])

    x = Variable(np.array([1.0, 2.0, 3.0]))
    a, b = Split2()(x)
    (a * 5).backward()
    assert seen == [(np.ndarray, None)]  # the first-order walk hands arrays, and None for b
    np.testing.assert_allclose(x.grad.data, [5.0, 0.0, 0.0])


def test_unchain_backward_cuts_upstream():
    x = Variable(np.array(1.0))
    h = x * 2
    y = h * 3
    z = y + 1
    z.unchain_backward()
    assert z.creator is not None and y.creator is None and h.creator is None


def test_wide_graph_is_correct():
    n = 500
    xs = [Variable(np.array(float(i))) for i in range(n)]
    w = Variable(np.array(2.0))
    y = xs[0] * w
    for x in xs[1:]:
        y = y + x * w
    y.backward()
    assert w.grad.data == sum(range(n))
    assert all(x.grad.data == 2.0 for x in xs)


def test_million_deep_chain_backward_and_teardown():
    x = Variable(np.array(0.0))
    y = x
    for _ in range(1_000_000):
        y = y + 1.0
    y.backward()
    assert x.grad.data == 1.0 and y.data == 1_000_000.0
    del y  # the chain is torn down without RecursionError or a crash


@pytest.mark.parametrize("f", [F.sin, F.cos, F.tanh, F.exp, F.sigmoid, F.square,
                               lambda x: F.log(x * x + 1), lambda x: x ** 3, lambda x: 1.0 / (x * x + 1),
                               lambda x: 2.0 - x * x, lambda x: F.sum(x * x, axis=0),
                               lambda x: F.matmul(x, x.T), lambda x: F.broadcast_to(F.sum(x, axis=1, keepdims=True), (3, 4)),
                               lambda x: F.sum_to(x, (1, 4)), lambda x: F.reshape(x, (4, 3)) * 2,
                               lambda x: F.transpose(x) / 3.0, lambda x: x[[0, 0, 2], 1:3]])
def test_gradients_and_double_backward(f):
    x = np.random.randn(3, 4)
    assert gradient_check(f, x)

    def first_derivative(v):
        # d/dx sum(f(x)^2) = 2 f(x) f'(x): depends on x even when f is linear
        v = lg.as_variable(v)
        y = f(v)
        gx, = lg.grad(F.sum(y * y), [v], create_graph=True)
        return gx

    assert gradient_check(first_derivative, x)


def test_scalar_results_of_numpy_are_arrays_again():
    x = Variable(np.array(2.0))
    y = x * x
    assert isinstance(y.data, np.ndarray)
    y.backward()
    assert isinstance(x.grad.data, np.ndarray)


def test_second_backward_raises_even_when_only_leaves_are_upstream():
    x = Variable(np.array(2.0))
    y = x * 2.0
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_truncated_bptt_unchain_after_backward_as_the_book_does():
    w = Variable(np.ones(3) * 0.5)
    h, loss, grads = None, 0, []
    for i in range(1, 9):
        h = F.tanh(np.full(3, float(i)) + (0 if h is None else h * w))
        loss = loss + F.sum(h)
        if i % 2 == 0:
            w.cleargrad()
            loss.backward()
            loss.unchain_backward()
            assert h.creator is None
            grads.append(w.grad.data.copy())
    # each segment's gradient only covers that segment (as in DeZero)
    assert len(grads) == 4 and all(np.all(np.isfinite(g)) for g in grads)


def test_unchain_backward_after_backward_frees_upstream(no_gc):
    import weakref
    x = Variable(np.ones(3))
    h = F.sin(x)
    f_ref = weakref.ref(h.creator)
    loss = F.sum(h * 2.0)
    del h
    loss.backward()
    assert f_ref() is not None  # the structure (no data) lives while loss does
    loss.unchain_backward()
    assert f_ref() is None


def test_leaf_gradients_are_writable_and_not_shared():
    a = Variable(np.ones(3))
    b = Variable(np.ones(3))
    F.sum(a + b).backward()  # Add returns one array for both; sum's gradient is a broadcast view
    assert a.grad.data is not b.grad.data
    a.grad.data *= 3  # in place, as optimizers and clipping do
    np.testing.assert_array_equal(b.grad.data, np.ones(3))
    np.testing.assert_array_equal(a.grad.data, 3 * np.ones(3))


def test_post_accumulate_grad_hook_fires_as_soon_as_a_leaf_is_final():
    W1 = Variable(np.random.randn(4, 5), name="W1")
    W2 = Variable(np.random.randn(5, 3), name="W2")
    seen = []

    def hook(p):
        seen.append((p.name, W1.grad is None, p.grad.data.copy()))

    handles = [W1.register_post_accumulate_grad_hook(hook), W2.register_post_accumulate_grad_hook(hook)]
    x = np.random.randn(2, 4)
    loss = F.sum(F.tanh(F.matmul(F.tanh(F.matmul(x, W1)), W2)))
    loss.backward()
    assert [name for name, _, _ in seen] == ["W2", "W1"]
    assert seen[0][1] is True  # W2 was final while W1's gradient was not computed yet
    np.testing.assert_array_equal(seen[0][2], W2.grad.data)
    np.testing.assert_array_equal(seen[1][2], W1.grad.data)
    # a leaf used twice fires once, with the sum of both contributions
    seen.clear()
    W1.cleargrad(), W2.cleargrad()
    loss = F.sum(F.matmul(F.matmul(x, W1), W2)) + F.sum(W2 * W2)
    loss.backward()
    assert [name for name, _, _ in seen].count("W2") == 1
    np.testing.assert_allclose(seen[[n for n, _, _ in seen].index("W2")][2], W2.grad.data)
    for h in handles:
        h.remove()
    seen.clear()
    F.sum(F.matmul(x, W1)).backward()
    assert seen == []  # removed: not called again


def test_post_accumulate_grad_hook_rules():
    x = Variable(np.array(2.0))
    with pytest.raises(ValueError, match="leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda v: None)
    calls = []
    x.register_post_accumulate_grad_hook(calls.append)
    lg.grad(x * x, [x])  # grad() stores nothing and calls no hook
    assert calls == []
    (x * x).backward()
    assert calls == [x] and x.grad.data == 4.0
