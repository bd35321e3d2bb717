"""Optimizers and hooks: each update rule against the formula written out by hand, in place, dtype-stable."""
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leafgrad.optimizers as O
from leafgrad.core import Parameter, Variable
from leafgrad.layers import Layer


class Two(Layer):
    """A layer with two parameters of different shapes."""

    def __init__(self, dtype=np.float64, seed=0):
        super().__init__()
        rng = np.random.RandomState(seed)
        self.W = Parameter(rng.randn(3, 4).astype(dtype), name="W")
        self.b = Parameter(rng.randn(4).astype(dtype), name="b")


def grads_for(layer, step, dtype=np.float64):
    """Deterministic gradients for step ``step``."""
    rng = np.random.RandomState(100 + step)
    return {name: rng.randn(*p.shape).astype(dtype) for name, p in layer.named_params()}


def set_grads(layer, grads):
    for name, p in layer.named_params():
        p.grad = Variable(grads[name].copy())


def run(opt, layer, steps, dtype=np.float64):
    opt.setup(layer)
    for s in range(steps):
        set_grads(layer, grads_for(layer, s, dtype))
        opt.update()


# ---- reference rules, written out by hand ----------------------------------------
def ref_sgd(p, gs, lr):
    for g in gs:
        p = p - lr * g
    return p


def ref_momentum(p, gs, lr, mom):
    v = np.zeros_like(p)
    for g in gs:
        v = mom * v - lr * g
        p = p + v
    return p


def ref_adagrad(p, gs, lr, eps):
    h = np.zeros_like(p)
    for g in gs:
        h = h + g * g
        p = p - lr * g / (np.sqrt(h) + eps)
    return p


def ref_adadelta(p, gs, rho, eps):
    msg = np.zeros_like(p)
    msdx = np.zeros_like(p)
    for g in gs:
        msg = rho * msg + (1 - rho) * g * g
        dx = np.sqrt((msdx + eps) / (msg + eps)) * g
        msdx = rho * msdx + (1 - rho) * dx * dx
        p = p - dx
    return p


def ref_adam(p, gs, alpha, b1, b2, eps):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr = alpha * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p = p - lr * m / (np.sqrt(v) + eps)
    return p


CASES = [
    (lambda: O.SGD(lr=0.1), lambda p, gs: ref_sgd(p, gs, 0.1)),
    (lambda: O.SGD(), lambda p, gs: ref_sgd(p, gs, 0.01)),
    (lambda: O.MomentumSGD(lr=0.05, momentum=0.8), lambda p, gs: ref_momentum(p, gs, 0.05, 0.8)),
    (lambda: O.MomentumSGD(), lambda p, gs: ref_momentum(p, gs, 0.01, 0.9)),
    (lambda: O.AdaGrad(lr=0.1), lambda p, gs: ref_adagrad(p, gs, 0.1, 1e-8)),
    (lambda: O.AdaGrad(), lambda p, gs: ref_adagrad(p, gs, 0.001, 1e-8)),
    (lambda: O.AdaDelta(), lambda p, gs: ref_adadelta(p, gs, 0.95, 1e-6)),
    (lambda: O.AdaDelta(rho=0.9, eps=1e-4), lambda p, gs: ref_adadelta(p, gs, 0.9, 1e-4)),
    (lambda: O.Adam(), lambda p, gs: ref_adam(p, gs, 0.001, 0.9, 0.999, 1e-8)),
    (lambda: O.Adam(alpha=0.01, beta1=0.8, beta2=0.99, eps=1e-6),
     lambda p, gs: ref_adam(p, gs, 0.01, 0.8, 0.99, 1e-6)),
]


@pytest.mark.parametrize("make,ref", CASES)
def test_update_rule_matches_hand_written(make, ref):
    layer = Two()
    start = {n: p.data.copy() for n, p in layer.named_params()}
    steps = 4
    run(make(), layer, steps)
    for name, p in layer.named_params():
        gs = [grads_for(layer, s)[name] for s in range(steps)]
        np.testing.assert_allclose(p.data, ref(start[name], gs), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make,ref", CASES)
def test_float32_stays_float32_and_in_place(make, ref):
    layer = Two(np.float32)
    start = {n: p.data.copy() for n, p in layer.named_params()}
    arrays = {n: p.data for n, p in layer.named_params()}
    steps = 3
    run(make(), layer, steps, np.float32)
    for name, p in layer.named_params():
        assert p.data.dtype == np.float32
        assert p.data is arrays[name]  # updated in place
        gs = [grads_for(layer, s, np.float32)[name].astype(np.float64) for s in range(steps)]
        np.testing.assert_allclose(p.data, ref(start[name].astype(np.float64), gs), rtol=2e-5, atol=1e-6)


def test_numpy_float64_hyperparameters_keep_float32():
    layer = Two(np.float32)
    opt = O.MomentumSGD(lr=np.float64(0.1), momentum=np.float64(0.9))
    run(opt, layer, 2, np.float32)
    opt2 = O.Adam(alpha=np.float64(0.01))
    run(opt2, layer, 2, np.float32)
    for p in layer.params():
        assert p.data.dtype == np.float32
    assert all(s.dtype == np.float32 for slots in opt._state.values() for s in slots.values())


def test_params_without_grad_are_skipped():
    layer = Two()
    w0, b0 = layer.W.data.copy(), layer.b.data.copy()
    opt = O.Adam().setup(layer)
    layer.W.grad = Variable(np.ones_like(w0))
    opt.update()
    assert not np.array_equal(layer.W.data, w0)
    np.testing.assert_array_equal(layer.b.data, b0)
    assert layer.b not in opt._state


def test_setup_returns_self_and_update_needs_setup():
    opt = O.SGD()
    layer = Two()
    assert opt.setup(layer) is opt
    with pytest.raises(RuntimeError, match="setup"):
        O.SGD().update()
    with pytest.raises(TypeError, match="params"):
        O.SGD().setup(object())


def test_adam_lr_property_and_counter():
    opt = O.Adam(alpha=0.01, beta1=0.9, beta2=0.999)
    layer = Two()
    run(opt, layer, 3)
    assert opt.t == 3
    assert opt.lr == pytest.approx(0.01 * math.sqrt(1 - 0.999 ** 3) / (1 - 0.9 ** 3), rel=1e-15)


# ---- the same rounding as DeZero: each term of the rule in the dtype NumPy gives it ----
def inplace_rule(name, p, state, g, t):
    """One update of ``p`` in place, each rule written as one NumPy expression per line (DeZero's order)."""
    if name == "SGD":
        p -= 0.01 * g
    elif name == "MomentumSGD":
        v = state.setdefault("v", np.zeros_like(p))
        v *= 0.9
        v -= 0.01 * g
        p += v
    elif name == "AdaGrad":
        h = state.setdefault("h", np.zeros_like(p))
        h += g * g
        p -= 0.001 * g / (np.sqrt(h) + 1e-8)
    elif name == "AdaDelta":
        msg, msdx = state.setdefault("msg", np.zeros_like(p)), state.setdefault("msdx", np.zeros_like(p))
        msg *= 0.95
        msg += (1 - 0.95) * g * g
        dx = np.sqrt((msdx + 1e-6) / (msg + 1e-6)) * g
        msdx *= 0.95
        msdx += (1 - 0.95) * dx * dx
        p -= dx
    else:
        m, v = state.setdefault("m", np.zeros_like(p)), state.setdefault("v", np.zeros_like(p))
        m += (1 - 0.9) * (g - m)
        v += (1 - 0.999) * (g * g - v)
        p -= 0.001 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-8)


@pytest.mark.parametrize("grad_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [O.SGD, O.MomentumSGD, O.AdaGrad, O.AdaDelta, O.Adam])
def test_mixed_precision_rounds_as_the_plain_numpy_rule(make, grad_dtype):
    """A float64 gradient of a float32 parameter (a float64 input, as in the book's step 46) is
    applied in float64 and rounded once: the same bits as DeZero's ``param.data -= lr * grad``."""
    layer = Layer()
    layer.W = Parameter(np.random.RandomState(0).randn(64, 32).astype(np.float32))
    expected = {n: p.data.copy() for n, p in layer.named_params()}
    states = {n: {} for n in expected}
    opt = make().setup(layer)
    for step in range(5):
        grads = grads_for(layer, step, grad_dtype)
        set_grads(layer, grads)
        opt.update()
        for name in expected:
            inplace_rule(make.__name__, expected[name], states[name], grads[name], step + 1)
    for name, p in layer.named_params():
        assert p.data.dtype == np.float32
        np.testing.assert_array_equal(p.data, expected[name])


def test_no_allocation_per_step():
    class Big(Layer):
        def __init__(self):
            super().__init__()
            self.W = Parameter(np.zeros((256, 256), np.float32))
            self.b = Parameter(np.zeros(256, np.float32))

    for make in (O.SGD, O.MomentumSGD, O.AdaGrad, O.AdaDelta, O.Adam, O.AdamW):
        layer = Big()
        opt = make().setup(layer)
        opt.add_hook(O.WeightDecay(1e-4))
        opt.add_hook(O.ClipGrad(1.0))
        for p in layer.params():
            p.grad = Variable(np.ones_like(p.data))
        opt.update()  # first step: state and scratch buffers are created
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            opt.update()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak - before < 16 * 1024, (make.__name__, peak - before)  # a parameter is 256 KiB


def test_weight_decay_hook():
    layer = Two()
    g = grads_for(layer, 0)
    set_grads(layer, g)
    w = layer.W.data.copy()
    opt = O.SGD(lr=0.1).setup(layer)
    opt.add_hook(O.WeightDecay(0.01))
    opt.update()
    np.testing.assert_allclose(layer.W.data, w - 0.1 * (g["W"] + 0.01 * w), rtol=1e-12)


def test_clip_grad_hook():
    layer = Two()
    g = grads_for(layer, 0)
    set_grads(layer, g)
    norm = math.sqrt(sum(float((a ** 2).sum()) for a in g.values()))
    hook = O.ClipGrad(norm / 2)
    hook(list(layer.params()))
    rate = (norm / 2) / (norm + 1e-6)
    np.testing.assert_allclose(layer.W.grad.data, g["W"] * rate, rtol=1e-12)
    # below the threshold: unchanged
    set_grads(layer, g)
    O.ClipGrad(norm * 2)(list(layer.params()))
    np.testing.assert_array_equal(layer.W.grad.data, g["W"])


@pytest.mark.parametrize("factor", [0.5, 2.0, float("nan")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_on_the_device_gives_the_host_numbers(factor, dtype):
    """The GPU's ClipGrad (norm and scaling computed where the gradients are), run on NumPy."""
    layer = Two(dtype)
    g = grads_for(layer, 0, dtype)
    norm = math.sqrt(sum(float((a.ravel().dot(a.ravel()))) for a in g.values()))
    set_grads(layer, g)
    O.ClipGrad(norm * factor)(list(layer.params()))
    expected = [p.grad.data.copy() for p in layer.params()]
    set_grads(layer, g)
    O._clip_on_device([p.grad.data for p in layer.params()], norm * factor)
    for p, e in zip(layer.params(), expected):
        assert p.grad.data.dtype == dtype
        np.testing.assert_array_equal(p.grad.data, e)


def test_clip_grad_takes_the_device_path_for_gpu_arrays(monkeypatch):
    layer = Two()
    set_grads(layer, grads_for(layer, 0))
    calls = []
    monkeypatch.setattr(O, "_clip_on_device", lambda grads, max_norm: calls.append((len(grads), max_norm)))
    monkeypatch.setattr(O.cuda, "get_array_module", lambda x: object())  # any module but NumPy
    O.ClipGrad(1)(list(layer.params()))
    assert calls == [(2, 1.0)]


def test_freeze_param_hook_keeps_values_and_does_not_crash():
    class Net(Layer):
        def __init__(self):
            super().__init__()
            self.a = Two(seed=1)
            self.c = Two(seed=2)

    net = Net()
    frozen = {n: p.data.copy() for n, p in net.a.named_params()}
    opt = O.MomentumSGD().setup(net)
    opt.add_hook(O.FreezeParam(net.a))
    set_grads(net, {n: np.ones(p.shape) for n, p in net.named_params()})
    opt.update()
    for n, p in net.a.named_params():
        np.testing.assert_array_equal(p.data, frozen[n])
    assert not np.array_equal(net.c.W.data, Two(seed=2).W.data)
    # a single Parameter can be frozen too
    hook = O.FreezeParam(net.c.b)
    assert hook.freeze_params == [net.c.b]


def test_hooks_receive_params_with_grads_in_order():
    layer = Two()
    seen = []
    opt = O.SGD().setup(layer)
    opt.add_hook(lambda params: seen.append(("first", list(params))))
    opt.add_hook(lambda params: seen.append(("second", list(params))))
    layer.W.grad = Variable(np.ones((3, 4)))
    opt.update()
    assert [s[0] for s in seen] == ["first", "second"]
    assert seen[0][1] == [layer.W]


def test_hooks_do_not_corrupt_aliased_gradients():
    """The backward walk may give two parameters the same gradient array (e.g. both operands of an Add)."""
    layer = Two()
    layer.b2 = Parameter(np.arange(4.0))
    shared = np.full(4, 3.0)
    layer.b.grad = Variable(shared)
    layer.b2.grad = Variable(shared)
    b, b2 = layer.b.data.copy(), layer.b2.data.copy()
    opt = O.SGD(lr=1.0).setup(layer)
    opt.add_hook(O.WeightDecay(0.5))
    opt.update()
    np.testing.assert_allclose(layer.b.data, b - (3.0 + 0.5 * b))
    np.testing.assert_allclose(layer.b2.data, b2 - (3.0 + 0.5 * b2))

    # ClipGrad must scale a shared array once, not once per parameter
    layer.b.grad = Variable(np.full(4, 3.0))
    layer.W.grad = None
    view_owner = np.full(8, 4.0)
    layer.b.grad = Variable(view_owner[:4])
    layer.b2.grad = Variable(view_owner[4:])
    O_clip = O.SGD(lr=0.0).setup(layer)
    O_clip.add_hook(O.ClipGrad(1.0))
    O_clip.update()
    total = math.sqrt(8 * 16.0)
    np.testing.assert_allclose(layer.b.grad.data, 4.0 / (total + 1e-6))
    np.testing.assert_allclose(layer.b2.grad.data, 4.0 / (total + 1e-6))


def test_shared_parameter_is_updated_once():
    class Shared(Layer):
        def __init__(self):
            super().__init__()
            self.p = Parameter(np.zeros(3))
            self.q = self.p

    net = Shared()
    assert len(list(net.params())) == 1
    net.p.grad = Variable(np.ones(3))
    O.SGD(lr=1.0).setup(net).update()
    np.testing.assert_array_equal(net.p.data, -np.ones(3))


def test_user_defined_optimizer_in_book_style():
    class MySGD(O.Optimizer):
        def __init__(self, lr=0.1):
            super().__init__()
            self.lr = lr

        def update_one(self, param):
            param.data -= self.lr * param.grad.data

    layer = Two()
    w = layer.W.data.copy()
    layer.W.grad = Variable(np.ones((3, 4)))
    MySGD().setup(layer).update()
    np.testing.assert_allclose(layer.W.data, w - 0.1)


@pytest.mark.parametrize("make", [O.SGD, O.MomentumSGD, O.AdaGrad, O.AdaDelta, O.Adam, O.AdamW])
def test_state_dict_round_trip_continues_exactly(make):
    a, b = Two(), Two()
    opt_a = make().setup(a)
    for s in range(3):
        set_grads(a, grads_for(a, s))
        opt_a.update()
    state = opt_a.state_dict()
    assert state["type"] == make.__name__
    # copy the weights and the state into a fresh model and optimizer
    for (_, pa), (_, pb) in zip(a.named_params(), b.named_params()):
        pb.data = pa.data.copy()
    opt_b = make().setup(b)
    opt_b.load_state_dict({**state, "state": {k: {s: v.copy() for s, v in d.items()}
                                              for k, d in state["state"].items()}})
    for s in range(3, 6):
        set_grads(a, grads_for(a, s))
        opt_a.update()
        set_grads(b, grads_for(b, s))
        opt_b.update()
    for (_, pa), (_, pb) in zip(a.named_params(), b.named_params()):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_load_state_dict_restores_hyperparameters_and_counter():
    layer = Two()
    opt = O.Adam(alpha=0.05)
    run(opt, layer, 2)
    other = O.Adam().setup(layer)
    other.load_state_dict(opt.state_dict())
    assert other.alpha == 0.05 and other.t == 2


def test_load_state_dict_errors_leave_optimizer_unchanged():
    layer = Two()
    opt = O.MomentumSGD()
    run(opt, layer, 1)
    state = opt.state_dict()
    target = O.MomentumSGD(lr=0.5).setup(layer)
    with pytest.raises(ValueError, match="'Adam'"):
        target.load_state_dict(O.Adam().setup(layer).state_dict())
    bad = {**state, "state": {"W": {"v": np.zeros((2, 2))}}}
    with pytest.raises(ValueError, match=r"'W'.*shape \(2, 2\).*\(3, 4\)"):
        target.load_state_dict(bad)
    bad = {**state, "state": {"nope": {"v": np.zeros(3)}}}
    with pytest.raises(ValueError, match="'nope'"):
        target.load_state_dict(bad)
    bad = {**state, "state": {"W": {"v": np.zeros((3, 4), np.float32)}}}
    with pytest.raises(ValueError, match="dtype float32"):
        target.load_state_dict(bad)
    assert target.lr == 0.5 and len(target._state) == 0


def test_state_of_dead_parameters_is_dropped():
    layer = Two()
    opt = O.MomentumSGD()
    run(opt, layer, 1)
    assert len(opt._state) == 2
    layer.W = Parameter(np.zeros((3, 4)))  # the old W dies; its momentum must not be inherited
    assert len(opt._state) == 1
    layer.W.grad = Variable(np.ones((3, 4)))
    opt.update()
    np.testing.assert_allclose(layer.W.data, -0.01 * np.ones((3, 4)))


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
       lr=st.floats(1e-4, 1.0), momentum=st.floats(0.0, 0.99))
def test_momentum_any_shape(shape, lr, momentum):
    class One(Layer):
        def __init__(self):
            super().__init__()
            self.p = Parameter(np.asarray(np.random.RandomState(0).randn(*shape), np.float32).reshape(shape))

    layer = One()
    p0 = layer.p.data.astype(np.float64)
    g = np.asarray(np.random.RandomState(1).randn(*shape), np.float32).reshape(shape)
    opt = O.MomentumSGD(lr=lr, momentum=momentum).setup(layer)
    for _ in range(2):
        layer.p.grad = Variable(g.copy())
        opt.update()
    assert layer.p.data.dtype == np.float32 and layer.p.data.shape == tuple(shape)
    np.testing.assert_allclose(layer.p.data, ref_momentum(p0, [g.astype(np.float64)] * 2, lr, momentum),
                               rtol=1e-5, atol=1e-6)


def test_hooks_work_on_gradients_from_the_engine():
    """Gradients of ``sum(a + b)``: one read-only broadcast array shared by both parameters."""
    import leafgrad.functions as F

    class AB(Layer):
        def __init__(self):
            super().__init__()
            self.a = Parameter(np.full(3, 2.0))
            self.b = Parameter(np.full(3, 4.0))

    net = AB()
    F.sum(net.a + net.b).backward()
    opt = O.SGD(lr=1.0).setup(net)
    opt.add_hook(O.WeightDecay(0.5))
    opt.add_hook(O.ClipGrad(100.0))
    opt.update()
    np.testing.assert_allclose(net.a.data, 2.0 - (1.0 + 0.5 * 2.0))
    np.testing.assert_allclose(net.b.data, 4.0 - (1.0 + 0.5 * 4.0))


# ---- AdamW ------------------------------------------------------------------------
def ref_adamw(p, gs, lr, b1, b2, eps, wd, decays=True):
    """PyTorch's AdamW, written out: decay first, eps after the bias correction."""
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(gs, start=1):
        if decays:
            p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_adamw_matches_hand_written(dtype, rtol):
    layer = Two(dtype)
    start = {n: p.data.copy().astype(np.float64) for n, p in layer.named_params()}
    opt = O.AdamW(lr=0.01, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.5)
    run(opt, layer, 5, dtype)
    for name, p in layer.named_params():
        assert p.data.dtype == dtype
        gs = [grads_for(layer, s, dtype)[name].astype(np.float64) for s in range(5)]
        expected = ref_adamw(start[name], gs, 0.01, 0.8, 0.99, 1e-3, 0.5, decays=(name == "W"))
        np.testing.assert_allclose(p.data, expected, rtol=rtol, atol=rtol * 1e-2)


def test_adamw_matches_torch():
    torch = pytest.importorskip("torch")
    layer = Two()
    start = {n: p.data.copy() for n, p in layer.named_params()}
    opt = O.AdamW(lr=0.01, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1)
    run(opt, layer, 6)
    W = torch.tensor(start["W"], requires_grad=True)
    b = torch.tensor(start["b"], requires_grad=True)
    topt = torch.optim.AdamW([{"params": [W], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                             lr=0.01, betas=(0.9, 0.99), eps=1e-6)
    for s in range(6):
        g = grads_for(layer, s)
        W.grad, b.grad = torch.tensor(g["W"]), torch.tensor(g["b"])
        topt.step()
    np.testing.assert_allclose(layer.W.data, W.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.b.data, b.detach().numpy(), rtol=1e-12, atol=1e-14)


class Net(Layer):
    """Matrices, an embedding-like table, biases and a gain: nanoGPT's decay choice."""

    def __init__(self):
        super().__init__()
        self.emb = Parameter(np.ones((5, 3)))
        self.fc = Layer()
        self.fc.W = Parameter(np.ones((3, 3)))
        self.fc.b = Parameter(np.ones(3))
        self.ln_g = Parameter(np.ones(3))


def test_adamw_decays_matrices_and_embeddings_only_by_default():
    net = Net()
    opt = O.AdamW(weight_decay=0.1).setup(net)
    assert opt.decayed() == ["emb", "fc/W"]
    for p in net.params():
        p.grad = Variable(np.zeros_like(p.data))  # no Adam step: only the decay moves the weights
    opt.update()
    np.testing.assert_allclose(net.emb.data, 1 - 0.001 * 0.1)
    np.testing.assert_allclose(net.fc.W.data, 1 - 0.001 * 0.1)
    np.testing.assert_array_equal(net.fc.b.data, 1.0)
    np.testing.assert_array_equal(net.ln_g.data, 1.0)


def test_adamw_explicit_choices():
    net = Net()
    assert O.AdamW(no_decay=["emb"]).setup(net).decayed() == ["fc/W"]
    assert O.AdamW(no_decay=[net.fc.W]).setup(net).decayed() == ["emb"]
    assert O.AdamW(no_decay="fc/*").setup(net).decayed() == ["emb"]
    assert sorted(O.AdamW(decay=["*/b", net.ln_g]).setup(net).decayed()) == ["fc/b", "ln_g"]
    assert sorted(O.AdamW(decay=lambda name, p: name.startswith("fc")).setup(net).decayed()) == ["fc/W", "fc/b"]
    with pytest.raises(TypeError, match="no_decay"):
        O.AdamW(no_decay=[3])


def test_adamw_by_name_state_and_learning_rate():
    opt = O.from_name("adamw", 0.02)
    assert isinstance(opt, O.AdamW) and opt.alpha == 0.02 and O.learning_rate(opt) == 0.02
    assert O.lr_attribute(opt) == "alpha" and O.lr_attribute(O.SGD()) == "lr"
    a, b = Two(), Two()
    opt_a = O.AdamW(weight_decay=0.3)
    run(opt_a, a, 3)
    state = opt_a.state_dict()
    assert state["type"] == "AdamW" and state["hyperparams"]["weight_decay"] == 0.3
    opt_b = O.AdamW().setup(b)
    opt_b.load_state_dict(state)
    assert opt_b.weight_decay == 0.3 and opt_b.t == 3
