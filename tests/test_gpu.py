"""leafgrad on a GPU (CuPy) gives the NumPy results and never waits for the device in a training step.

* every row of the gradient table (``test_gradients.CASES``): forward values and first-order
  gradients equal NumPy's, stay on the GPU, and keep float32 float32;
* the fused optimizer kernels give the NumPy updates bit for bit; ClipGrad reads nothing back;
* the convolutions run on the whole batch at once (the GPU's strategy) and equal NumPy's chunks;
* a training step of an MLP and of ``SmallCNN`` makes no device-to-host copy: ``.get()``,
  ``.item()``, ``.tolist()``, ``float()``, ``int()``, ``bool()``, ``cupy.asnumpy`` are counted.

Skipped without CuPy or without a CUDA device (CI has neither); ``benchmarks/gpu_check.sh``
runs it on a GPU machine.
"""
import contextlib
from types import SimpleNamespace

import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
import leafgrad.optimizers as O
from leafgrad import Parameter, Variable, _kernels
from leafgrad.functions import conv
from leafgrad.models import MLP, SmallCNN

import test_gradients
from test_gradients import CASES
from test_kernels import OPTIMIZERS, train

try:
    import cupy
    _DEVICES = cupy.cuda.runtime.getDeviceCount()
except Exception:  # no CuPy, or a CuPy that finds no driver
    cupy, _DEVICES = None, 0
pytestmark = pytest.mark.skipif(_DEVICES == 0 or not lg.cuda.gpu_enable, reason="no CuPy with a CUDA device")

TOLERANCE = {np.float64: dict(rtol=1e-7, atol=1e-10), np.float32: dict(rtol=2e-4, atol=2e-5)}
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def _as_list(ys):
    return list(ys) if isinstance(ys, (list, tuple)) else [ys]


def assert_same(gpu, cpu, what, dtype=None, exact=False):
    """``gpu`` is a CuPy array with ``cpu``'s dtype and values (to ``TOLERANCE[dtype]``, or exactly)."""
    assert isinstance(gpu, cupy.ndarray), f"{what}: a {type(gpu).__name__}, not a CuPy array"
    assert gpu.dtype == cpu.dtype, f"{what}: {gpu.dtype} on the GPU, {cpu.dtype} on NumPy"
    if exact:
        np.testing.assert_array_equal(cupy.asnumpy(gpu), cpu, err_msg=what)
    else:
        np.testing.assert_allclose(cupy.asnumpy(gpu), cpu, err_msg=what, **TOLERANCE[dtype or cpu.dtype.type])


@contextlib.contextmanager
def host_reads():
    """Record every read of GPU memory by the host (by name) while the block runs."""
    reads = []

    def counted(name, original):
        def read(*args, **kwargs):
            reads.append(name)
            return original(*args, **kwargs)
        return read

    with pytest.MonkeyPatch.context() as mp:
        for name in ("get", "item", "tolist", "__float__", "__int__", "__bool__", "__index__", "__complex__"):
            if hasattr(cupy.ndarray, name):
                mp.setattr(cupy.ndarray, name, counted(f"ndarray.{name}", getattr(cupy.ndarray, name)))
        mp.setattr(cupy, "asnumpy", counted("cupy.asnumpy", cupy.asnumpy))
        yield reads


# =============================================================================
# Every function of the gradient table
# =============================================================================
def _on_device(value):
    """NumPy arrays, also those inside a SimpleNamespace, as CuPy arrays; anything else as it is."""
    if isinstance(value, np.ndarray):
        return cupy.asarray(value)
    if isinstance(value, SimpleNamespace):
        return SimpleNamespace(**{k: _on_device(v) for k, v in vars(value).items()})
    return value


def _evaluate(case, arrays, xp):
    """The outputs of ``case.f`` and the gradients of ``sum_i <w_i, y_i>`` (seeded weights), as arrays."""
    xs = [Variable(arrays[k]) for k in case.wrt]
    args = list(arrays)
    for k, v in zip(case.wrt, xs):
        args[k] = v
    ys = _as_list(case.f(*args))
    rs = np.random.RandomState(case.seed)
    loss = None
    for y in ys:
        term = F.sum(y * xp.asarray(np.asarray(rs.randn(*y.shape)).astype(y.dtype)))
        loss = term if loss is None else loss + term
    gs = lg.grad(loss, xs)
    return [y.data for y in ys], [None if g is None else g.data for g in gs]


def _check_dropout(case, arrays):
    """Dropout draws its mask from CuPy's generator: check the GPU result against its own mask."""
    ys, (gx,) = _evaluate(case, arrays, cupy)
    x, y = cupy.asnumpy(arrays[0]), cupy.asnumpy(ys[0])
    kept = y != 0
    assert 0 < kept.sum() < kept.size
    scale = 1 / (1 - 0.4)
    np.testing.assert_allclose(y, np.where(kept, x * scale, 0), rtol=1e-6)
    w = np.random.RandomState(case.seed).randn(*y.shape)
    np.testing.assert_allclose(cupy.asnumpy(gx), np.where(kept, w * scale, 0), rtol=1e-6)


@DTYPES
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_function_gives_the_numpy_results_on_the_gpu(monkeypatch, case, dtype):
    ys, gs = _evaluate(case, case.arrays(dtype), np)
    for name, value in list(vars(test_gradients).items()):  # labels, ids, masks, pooling indexes
        if _on_device(value) is not value:
            monkeypatch.setattr(test_gradients, name, _on_device(value))
    arrays = [cupy.asarray(a) for a in case.arrays(dtype)]
    if case.name == "dropout":
        return _check_dropout(case, arrays)
    ys_gpu, gs_gpu = _evaluate(case, arrays, cupy)
    for i, (gpu, cpu) in enumerate(zip(ys_gpu, ys)):
        assert_same(gpu, cpu, f"{case.name}: output {i}", dtype)
    for k, gpu, cpu in zip(case.wrt, gs_gpu, gs):
        assert (gpu is None) == (cpu is None), f"{case.name}: gradient of input {k}"
        if cpu is not None:
            assert_same(gpu, cpu, f"{case.name}: gradient of input {k}", dtype)


# =============================================================================
# Optimizers
# =============================================================================
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_optimizer_kernels_give_the_numpy_updates_bit_for_bit(monkeypatch, name, dtype):
    launches = []
    launch = _kernels.launch
    monkeypatch.setattr(_kernels, "launch", lambda kernel, *args: (launches.append(kernel), launch(kernel, *args)))
    params, state = train(OPTIMIZERS[name](), dtype, cupy)
    assert launches == [name] * 8  # 4 steps, 2 parameters: one kernel each
    expected, expected_state = train(OPTIMIZERS[name](), dtype)
    for i, (gpu, cpu) in enumerate(zip(params, expected)):
        assert_same(gpu, cpu, f"{name}: parameter {i}", exact=True)
    for key, slots in expected_state.items():
        for slot, cpu in slots.items():
            assert_same(state[key][slot], cpu, f"{name}: state {key}/{slot}", exact=True)


def test_mixed_dtypes_take_the_array_path_and_give_the_numpy_update():
    data = np.linspace(-1, 1, 50, dtype=np.float32)
    grad = np.linspace(0.3, -0.2, 50)  # float64: not fusable
    results = []
    for xp in (cupy, np):
        p = Parameter(xp.asarray(data))
        p.grad = Variable(xp.asarray(grad))
        assert not _kernels.fusable(p.data, p.grad.data)
        layer = lg.Layer()
        layer.p = p
        O.Adam().setup(layer).update()
        results.append(p.data)
    assert_same(results[0], results[1], "Adam, float64 gradient of a float32 parameter", exact=True)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_clip_grad_reads_nothing_back_and_gives_the_numpy_gradients(factor):
    rng = np.random.RandomState(0)
    grads = [rng.randn(40, 30).astype(np.float32), rng.randn(30).astype(np.float32)]
    norm = float(np.sqrt(sum(float(g.ravel().dot(g.ravel())) for g in grads)))
    on_gpu = [Parameter(cupy.zeros(g.shape, np.float32)) for g in grads]
    on_cpu = [Parameter(np.zeros(g.shape, np.float32)) for g in grads]
    for p, q, g in zip(on_gpu, on_cpu, grads):
        p.grad, q.grad = Variable(cupy.asarray(g)), Variable(g.copy())
    with host_reads() as reads:
        O.ClipGrad(norm * factor)(on_gpu)
    assert reads == []
    O.ClipGrad(norm * factor)(on_cpu)
    for p, q in zip(on_gpu, on_cpu):
        assert_same(p.grad.data, q.grad.data, "clipped gradient")


# =============================================================================
# Convolutions: the whole batch at once
# =============================================================================
@DTYPES
@pytest.mark.parametrize("stride,pad", [(1, 1), (2, 1)])
def test_convolutions_take_the_whole_batch_at_once_and_give_the_numpy_results(monkeypatch, dtype, stride, pad):
    rng = np.random.RandomState(0)
    x = rng.randn(64, 16, 16, 16).astype(dtype)  # 64 samples: several chunks on the CPU
    W = (rng.randn(32, 16, 3, 3) * 0.1).astype(dtype)
    b = rng.randn(32).astype(dtype)
    chunks = []
    real = conv._chunks

    def counted(a, per_sample_bytes):
        parts = list(real(a, per_sample_bytes))
        chunks.append((isinstance(a, cupy.ndarray), len(parts)))
        return iter(parts)

    monkeypatch.setattr(conv, "_chunks", counted)

    def run(xp):
        xs = [Variable(xp.asarray(a)) for a in (x, W, b)]
        y = F.conv2d(*xs, stride, pad)
        gy = xp.asarray(np.random.RandomState(1).randn(*y.shape).astype(dtype))
        grads = lg.grad(y, xs, grad_outputs=[gy])
        z = F.deconv2d(y, xs[1], None, stride, pad)  # W (32, 16, 3, 3) read as (C, OC, KH, KW)
        return [y.data, z.data] + [g.data for g in grads]

    cpu, gpu = run(np), run(cupy)
    for what, g, c in zip(("conv2d", "deconv2d", "gx", "gW", "gb"), gpu, cpu):
        assert_same(g, c, what, dtype)
    assert {n for on_gpu, n in chunks if on_gpu} == {1}
    assert min(n for on_gpu, n in chunks if not on_gpu) > 1


# =============================================================================
# Training steps: nothing comes back to the host
# =============================================================================
def _models(make, x):
    """The same initial model on NumPy and on the GPU (initialized on NumPy from one seed)."""
    out = []
    for on_gpu in (False, True):
        np.random.seed(0)
        model = make()
        with lg.no_grad():
            model(x)
        if on_gpu:
            model.to_gpu()
        out.append(model)
    return out


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam+clip"])
def test_a_training_step_reads_nothing_back_and_gives_the_numpy_numbers(model_name, optimizer):
    rng = np.random.RandomState(0)
    if model_name == "mlp":
        x = rng.randn(32, 784).astype(np.float32)
        make = lambda: MLP((100, 100, 10), activation=F.relu)  # noqa: E731
    else:
        x = rng.randn(8, 3, 16, 16).astype(np.float32)
        make = lambda: SmallCNN(hidden_size=32)  # noqa: E731
    t = rng.randint(0, 10, len(x))
    results = []
    for model, xp in zip(_models(make, x), (np, cupy)):
        opt = (O.SGD(0.1) if optimizer == "sgd" else O.Adam(0.01)).setup(model)
        if optimizer != "sgd":
            opt.add_hook(O.ClipGrad(0.5))
        xd, td = xp.asarray(x), xp.asarray(t)

        def step():
            loss = F.softmax_cross_entropy(model(xd), td)
            model.cleargrads()
            loss.backward()
            opt.update()
            return loss

        losses = [step()]  # the first step compiles the kernels
        with (host_reads() if xp is cupy else contextlib.nullcontext([])) as reads:
            losses.append(step())
            if xp is cupy:
                cupy.cuda.Device().synchronize()
        assert reads == [], f"{model_name} step with {optimizer}: host reads {reads}"
        results.append(([loss.data for loss in losses], [p.data for p in model.params()]))
    (cpu_losses, cpu_params), (gpu_losses, gpu_params) = results
    for i, (g, c) in enumerate(zip(gpu_losses, cpu_losses)):
        assert_same(g, c, f"loss of step {i}")
    for g, c in zip(gpu_params, cpu_params):
        assert_same(g, c, "a parameter after two steps")
