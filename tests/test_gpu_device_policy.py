"""The device policy and the on-device checks with CuPy itself (skipped without a GPU).

These tests need CuPy and a CUDA device; CI has neither.  The policy's logic is
tested without a GPU in ``test_devices.py``.
"""
import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Variable
from leafgrad.checkpoint import checkpoint

pytestmark = pytest.mark.skipif(not lg.cuda.gpu_enable, reason=str(lg.cuda.gpu_unavailable_reason()))
cupy = lg.cuda.cupy


def _gpu(a):
    return Variable(cupy.asarray(a))


def test_numpy_targets_follow_the_logits_to_the_gpu():
    x = np.random.randn(4, 1)
    t = np.array([[1.0], [0.0], [1.0], [0.0]])
    for fn, arg in ((F.sigmoid_cross_entropy, x), (F.binary_cross_entropy, 1 / (1 + np.exp(-x)))):
        on_gpu, on_cpu = fn(_gpu(arg), t), fn(Variable(arg), t)
        np.testing.assert_allclose(cupy.asnumpy(on_gpu.data), on_cpu.data, rtol=1e-10)


def test_numpy_labels_condition_and_ignore_index_on_the_gpu():
    x = np.random.randn(4, 3)
    t = np.array([0, -1, 2, 1])
    on_gpu = F.softmax_cross_entropy(_gpu(x), t, ignore_index=-1)
    np.testing.assert_allclose(cupy.asnumpy(on_gpu.data), F.softmax_cross_entropy(x, t, ignore_index=-1).data)
    condition = x > 0
    y = F.where(condition, _gpu(x), _gpu(-x))
    np.testing.assert_allclose(cupy.asnumpy(y.data), np.abs(x))


def test_a_cpu_variable_with_a_gradient_next_to_a_gpu_one_is_a_clear_error():
    with pytest.raises(TypeError, match=r"Mul: argument x1 is on the CPU .* argument x0 is on the GPU"):
        _gpu(np.ones(3)) * Variable(np.ones(3))


def test_labels_on_the_gpu_are_checked_there_without_waiting():
    loss = F.softmax_cross_entropy(_gpu(np.random.randn(3, 4)), cupy.asarray([0, 7, 1]))
    assert np.isnan(float(loss.data))  # an out-of-range label: NaN, not a wrong number
    acc = F.accuracy(_gpu(np.eye(3)), cupy.asarray([0, 1, 5]))
    assert np.isnan(float(acc.data))


def test_checkpoint_recomputes_dropout_with_the_same_gpu_numbers():
    x = _gpu(np.random.rand(64, 32) + 1.0)
    y = checkpoint(lambda a: F.dropout(a, 0.5), x)
    F.sum(y).backward()
    kept = cupy.asnumpy(y.data) != 0
    np.testing.assert_allclose(cupy.asnumpy(x.grad.data), kept / 0.5)
