"""Layers: registration, DeZero-identical initializers, float32 weights, forward vs NumPy, memory."""
import gc
import math
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leafgrad.functions as F
import leafgrad.layers as L
from leafgrad import cuda, graph, test_mode
from leafgrad.core import Parameter, Variable
from leafgrad.utils import gradient_check, numerical_grad


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# =============================================================================
# Layer
# =============================================================================
class Inner(L.Layer):
    def __init__(self):
        super().__init__()
        self.p = Parameter(np.ones(2, np.float32))


class Outer(L.Layer):
    def __init__(self):
        super().__init__()
        self.w = Parameter(np.zeros(3, np.float32))
        self.inner = Inner()
        self.note = "not a parameter"
        self.arr = np.zeros(2)


def test_registration_and_params():
    m = Outer()
    assert m._params == {"w", "inner"}
    assert isinstance(m._params, set)
    assert list(m.params()) == [m.w, m.inner.p]
    assert [k for k, _ in m.named_params()] == ["w", "inner/p"]
    d = {}
    m._flatten_params(d)
    assert d == {"w": m.w, "inner/p": m.inner.p}


def test_reassigning_or_deleting_unregisters():
    m = Outer()
    m.w = None
    assert "w" not in m._params and list(m.params()) == [m.inner.p]
    del m.inner
    assert m._params == set() and list(m.params()) == []


def test_attribute_set_before_super_init():
    class Early(L.Layer):
        def __init__(self):
            self.p = Parameter(np.zeros(1))
            super().__init__()
            self.q = Parameter(np.zeros(1))

    e = Early()  # DeZero raises AttributeError at the first assignment
    assert e._params == {"p", "q"}


def test_cleargrads():
    m = Outer()
    for p in m.params():
        p.grad = Variable(np.ones_like(p.data))
    m.cleargrads()
    assert all(p.grad is None for p in m.params())


def test_call_keeps_only_weak_references():
    class Double(L.Layer):
        def forward(self, x):
            return x * 2.0

    layer = Double()
    x = Variable(np.ones(3, np.float32))
    y = layer(x)
    assert isinstance(layer.inputs[0], weakref.ref) and layer.inputs[0]() is x
    assert layer.outputs[0]() is y
    ref = weakref.ref(y)
    del y
    assert ref() is None and layer.outputs[0]() is None


def test_multiple_outputs_and_forward_not_implemented():
    class Split(L.Layer):
        def forward(self, x):
            return x * 1.0, x * 2.0

    a, b = Split()(Variable(np.ones(2)))
    np.testing.assert_array_equal(b.data, 2.0)
    with pytest.raises(NotImplementedError, match="Layer.forward"):
        L.Layer()(np.ones(1))


def test_to_cpu_and_to_gpu():
    m = Outer()
    assert m.to_cpu() is m
    assert isinstance(m.w.data, np.ndarray)
    if not cuda.gpu_enable:
        with pytest.raises(RuntimeError, match="CuPy"):
            m.to_gpu()


# =============================================================================
# Linear
# =============================================================================
def test_linear_init_draws_like_dezero_and_stays_float32():
    np.random.seed(0)
    layer = L.Linear(4, in_size=3)
    np.random.seed(0)
    expected = np.random.randn(3, 4).astype(np.float32) * np.float32(math.sqrt(1 / 3))
    assert layer.W.dtype == np.float32 and layer.b.dtype == np.float32
    np.testing.assert_array_equal(layer.W.data, expected)
    np.testing.assert_array_equal(layer.b.data, np.zeros(4, np.float32))


def test_linear_lazy_init_at_first_call():
    layer = L.Linear(5)
    assert layer.W.data is None and layer.in_size is None
    x = np.random.randn(2, 3).astype(np.float32)
    np.random.seed(1)
    y = layer(x)
    np.random.seed(1)
    expected = np.random.randn(3, 5).astype(np.float32) * np.float32(math.sqrt(1 / 3))
    np.testing.assert_array_equal(layer.W.data, expected)
    assert layer.in_size == 3 and y.shape == (2, 5) and y.dtype == np.float32


def test_linear_forward_backward_float32():
    layer = L.Linear(4, in_size=3)
    layer.b.data[...] = np.arange(4, dtype=np.float32)
    x = np.random.randn(5, 3).astype(np.float32)
    y = layer(x)
    np.testing.assert_allclose(y.data, x @ layer.W.data + layer.b.data, rtol=1e-6)
    F.sum(y * y).backward()
    assert layer.W.grad.dtype == np.float32 and layer.b.grad.dtype == np.float32
    gy = 2 * y.data
    np.testing.assert_allclose(layer.W.grad.data, x.T @ gy, rtol=1e-5)
    np.testing.assert_allclose(layer.b.grad.data, gy.sum(0), rtol=1e-5)


def test_linear_nobias_and_float64():
    layer = L.Linear(2, nobias=True, dtype=np.float64, in_size=3)
    assert layer.b is None and list(layer.params()) == [layer.W]
    assert layer.W.dtype == np.float64
    x = np.random.randn(4, 3)
    assert gradient_check(lambda v: layer(v), x)
    W0 = layer.W.data.copy()

    def f(w):
        layer.W.data = w
        return layer(x)

    num = numerical_grad(f, W0.copy())
    layer.W.data = W0
    layer.cleargrads()
    layer(x).backward()
    np.testing.assert_allclose(layer.W.grad.data, num, rtol=1e-6, atol=1e-8)


def test_linear_bad_input():
    with pytest.raises(ValueError, match="Linear"):
        L.Linear(3)(np.ones(4, np.float32))
    layer = L.Linear(3, in_size=4)
    with pytest.raises(ValueError, match=r"linear.*\(2, 5\)"):
        layer(np.ones((2, 5), np.float32))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), i=st.integers(1, 6), o=st.integers(1, 6))
def test_linear_shapes(n, i, o):
    layer = L.Linear(o)
    y = layer(np.ones((n, i), np.float32))
    assert y.shape == (n, o) and layer.W.shape == (i, o) and y.dtype == np.float32


# =============================================================================
# Conv2d / Deconv2d
# =============================================================================
def test_conv2d_init_and_forward():
    np.random.seed(3)
    conv = L.Conv2d(4, kernel_size=3, stride=1, pad=1, in_channels=2)
    np.random.seed(3)
    expected = np.random.randn(4, 2, 3, 3).astype(np.float32) * np.float32(math.sqrt(1 / 18))
    np.testing.assert_array_equal(conv.W.data, expected)
    assert conv.W.dtype == np.float32 and conv.b.shape == (4,)
    x = np.random.randn(2, 2, 5, 5).astype(np.float32)
    y = conv(x)
    ref = F.conv2d(x, conv.W, conv.b, 1, 1)
    np.testing.assert_array_equal(y.data, ref.data)
    assert y.shape == (2, 4, 5, 5) and y.dtype == np.float32


def test_conv2d_lazy_stride_pad_nobias():
    conv = L.Conv2d(3, (2, 3), stride=2, pad=0, nobias=True)
    assert conv.W.data is None and conv.b is None
    y = conv(np.random.randn(1, 5, 6, 7).astype(np.float32))
    assert conv.in_channels == 5 and conv.W.shape == (3, 5, 2, 3)
    assert y.shape == (1, 3, 3, 3)
    with pytest.raises(ValueError, match="Conv2d.*not"):
        L.Conv2d(3, 3)(np.ones((2, 3), np.float32))


def test_deconv2d():
    np.random.seed(4)
    deconv = L.Deconv2d(3, kernel_size=4, stride=2, pad=1)
    x = np.random.randn(2, 5, 4, 4).astype(np.float32)
    np.random.seed(4)
    y = deconv(x)
    np.random.seed(4)
    expected = np.random.randn(5, 3, 4, 4).astype(np.float32) * np.float32(math.sqrt(1 / 80))
    np.testing.assert_array_equal(deconv.W.data, expected)
    assert y.shape == (2, 3, 8, 8) and y.dtype == np.float32
    np.testing.assert_array_equal(y.data, F.deconv2d(x, deconv.W, deconv.b, 2, 1).data)


# =============================================================================
# RNN / LSTM
# =============================================================================
def test_rnn_matches_numpy_and_resets():
    rnn = L.RNN(4, in_size=3)
    x1, x2 = np.random.randn(2, 3).astype(np.float32), np.random.randn(2, 3).astype(np.float32)
    h1 = rnn(x1)
    h2 = rnn(x2)
    Wx, b, Wh = rnn.x2h.W.data, rnn.x2h.b.data, rnn.h2h.W.data
    r1 = np.tanh(x1 @ Wx + b)
    np.testing.assert_allclose(h1.data, r1, rtol=1e-5)
    np.testing.assert_allclose(h2.data, np.tanh(x2 @ Wx + b + r1 @ Wh), rtol=1e-5, atol=1e-6)
    assert Wh.shape == (4, 4)  # DeZero gives h2h in_size=3 here, which fails at the second step
    rnn.reset_state()
    assert rnn.h is None
    np.testing.assert_allclose(rnn(x1).data, r1, rtol=1e-5)


def test_rnn_lazy_draws_in_dezero_order():
    np.random.seed(0)
    rnn = L.RNN(2)
    x = np.ones((1, 3), np.float32)
    rnn(x)
    rnn(x)
    np.random.seed(0)
    wx = np.random.randn(3, 2).astype(np.float32) * np.float32(math.sqrt(1 / 3))
    wh = np.random.randn(2, 2).astype(np.float32) * np.float32(math.sqrt(1 / 2))
    np.testing.assert_array_equal(rnn.x2h.W.data, wx)
    np.testing.assert_array_equal(rnn.h2h.W.data, wh)


def lstm_reference(layer, xs):
    def lin(name, x):
        sub = getattr(layer, name)
        y = x @ sub.W.data
        return y if sub.b is None else y + sub.b.data

    h = c = None
    out = []
    for x in xs:
        if h is None:
            f, i, o, u = (sigmoid(lin("x2f", x)), sigmoid(lin("x2i", x)), sigmoid(lin("x2o", x)),
                          np.tanh(lin("x2u", x)))
        else:
            f = sigmoid(lin("x2f", x) + lin("h2f", h))
            i = sigmoid(lin("x2i", x) + lin("h2i", h))
            o = sigmoid(lin("x2o", x) + lin("h2o", h))
            u = np.tanh(lin("x2u", x) + lin("h2u", h))
        c = i * u if c is None else f * c + i * u
        h = o * np.tanh(c)
        out.append(h)
    return out


def test_lstm_matches_numpy_and_resets():
    layer = L.LSTM(3, in_size=2)
    xs = [np.random.randn(4, 2).astype(np.float32) for _ in range(3)]
    hs = [layer(x) for x in xs]
    for h, r in zip(hs, lstm_reference(layer, xs)):
        np.testing.assert_allclose(h.data, r, rtol=1e-5, atol=1e-6)
        assert h.dtype == np.float32
    F.sum(hs[-1]).backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in layer.params())
    layer.reset_state()
    assert layer.h is None and layer.c is None
    np.testing.assert_allclose(layer(xs[0]).data, hs[0].data)


def test_lstm_draws_in_dezero_order():
    np.random.seed(0)
    layer = L.LSTM(2)  # h2* are created now (in_size=H), x2* at the first call
    layer(np.ones((1, 3), np.float32))
    np.random.seed(0)
    scale_h = np.float32(math.sqrt(1 / 2))
    hs = [np.random.randn(2, 2).astype(np.float32) * scale_h for _ in range(4)]
    for name, w in zip(["h2f", "h2i", "h2o", "h2u"], hs):
        np.testing.assert_array_equal(getattr(layer, name).W.data, w)
    scale_x = np.float32(math.sqrt(1 / 3))
    xs = [np.random.randn(3, 2).astype(np.float32) * scale_x for _ in range(4)]
    for name, w in zip(["x2f", "x2i", "x2o", "x2u"], xs):
        np.testing.assert_array_equal(getattr(layer, name).W.data, w)


# =============================================================================
# EmbedID / BatchNorm
# =============================================================================
def test_embed_id():
    np.random.seed(0)
    emb = L.EmbedID(5, 3)
    np.random.seed(0)
    np.testing.assert_array_equal(emb.W.data, np.random.randn(5, 3).astype(np.float32))
    assert emb.W.dtype == np.float32
    ids = np.array([[0, 2], [2, 4]])
    y = emb(ids)
    np.testing.assert_array_equal(y.data, emb.W.data[ids])
    F.sum(y).backward()
    np.testing.assert_array_equal(emb.W.grad.data[:, 0], [1, 0, 2, 0, 1])


def test_batch_norm_train_and_test_mode():
    bn = L.BatchNorm()
    x = (np.random.randn(8, 3) * 3 + 5).astype(np.float32)
    y = bn(x)
    assert bn.gamma.dtype == np.float32 and bn.avg_mean.shape == (3,)
    np.testing.assert_allclose(y.data.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.data.std(0), 1, rtol=1e-3)
    np.testing.assert_allclose(bn.avg_mean.data, 0.1 * x.mean(0), rtol=1e-5)
    F.sum(y * y).backward()
    assert bn.gamma.grad is not None and bn.avg_mean.grad is None and bn.avg_var.grad is None
    mean, var = bn.avg_mean.data.copy(), bn.avg_var.data.copy()
    with test_mode():
        yt = bn(x)
    np.testing.assert_allclose(yt.data, (x - mean) / np.sqrt(var + 2e-5), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(bn.avg_mean.data, mean)  # not updated in test mode


def test_batch_norm_4d():
    bn = L.BatchNorm()
    x = np.random.randn(2, 4, 3, 3).astype(np.float32)
    y = bn(x)
    assert y.shape == x.shape and bn.gamma.shape == (4,)
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    with pytest.raises(ValueError, match="BatchNorm"):
        L.BatchNorm()(np.ones(3, np.float32))


# =============================================================================
# Memory
# =============================================================================
def graph_refs(y):
    """Weak references to every Function reachable from ``y``."""
    return [weakref.ref(f) for f in graph.functions_of([y])]


def test_training_step_graph_is_freed_by_refcounting():
    from leafgrad.models import MLP
    from leafgrad.optimizers import SGD

    model = MLP((8, 3))
    opt = SGD(0.1).setup(model)
    x = np.random.randn(6, 2).astype(np.float32)
    t = np.array([0, 1, 2, 0, 1, 2])
    gc.collect()
    gc.disable()
    try:
        for _ in range(2):
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            refs = graph_refs(loss)
            creator = weakref.ref(loss.creator)
            yref = weakref.ref(y)
            model.cleargrads()
            loss.backward()
            opt.update()
            del loss, y
            assert creator() is None
            assert yref() is None
            assert len(refs) >= 4 and all(r() is None for r in refs)
    finally:
        gc.enable()
