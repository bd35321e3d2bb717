"""One device per function call: the policy, tested with NumPy alone.

``Function.__call__`` keeps each call on one device: when some inputs are
CuPy arrays, NumPy constants (labels, masks, targets) move to the GPU, and a
NumPy input that wants a gradient is a clear error.  CI has no GPU, so the
policy is exercised here with a NumPy subclass in the role of the GPU's array
type (the rule is the same function, given the device's type); the same
checks with CuPy itself are in ``test_gpu_device_policy.py``, which runs where there is a GPU.
"""
import numpy as np
import pytest

import leafgrad as lg
from leafgrad import Variable, core
from leafgrad.checkpoint import gpu_seed_from
from leafgrad.core import Mul


class OnDevice(np.ndarray):
    """Arrays of a second device, for these tests."""


def to_device(a):
    return np.asarray(a).view(OnDevice)


def _constant(data):
    v = Variable(data)
    v.requires_grad = False
    return v


def test_numpy_constants_follow_the_inputs_on_the_device():
    inputs = [Variable(to_device(np.ones(3))), _constant(np.arange(3.0))]
    xs = [v.data for v in inputs]
    core._on_one_device(Mul(), inputs, xs, OnDevice, to_device)
    assert isinstance(xs[0], OnDevice) and isinstance(xs[1], OnDevice)
    np.testing.assert_array_equal(xs[1], [0.0, 1.0, 2.0])
    assert type(inputs[1].data) is np.ndarray  # the user's Variable is not changed


@pytest.mark.parametrize("cpu_input", ["leaf", "computed"])
def test_a_numpy_input_that_wants_a_gradient_is_an_error_naming_function_and_devices(cpu_input):
    x = Variable(np.ones(3))
    cpu = x if cpu_input == "leaf" else x * 2.0
    inputs = [cpu, Variable(to_device(np.ones(3)))]
    xs = [v.data for v in inputs]
    with pytest.raises(TypeError, match=r"^Mul: argument x0 is on the CPU \(a NumPy array\) but argument x1 "
                                        r"is on the GPU \(a CuPy array\)"):
        core._on_one_device(Mul(), inputs, xs, OnDevice, to_device)


def test_all_inputs_on_one_device_are_left_alone():
    for data in (np.ones(3), to_device(np.ones(3))):
        inputs = [Variable(data), _constant(np.ones(3) if type(data) is np.ndarray else to_device(np.ones(3)))]
        xs = [v.data for v in inputs]
        before = list(xs)
        core._on_one_device(Mul(), inputs, xs, OnDevice, to_device)
        assert all(a is b for a, b in zip(xs, before))


def test_a_0d_array_operand_stays_an_array_unless_it_is_numpys():
    assert core._scalar(np.array(2.5)) == 2.5 and core._scalar(np.float32(1.5)) == 1.5
    assert core._scalar(to_device(np.array(2.5))) is None  # not read: it could be on the GPU


def test_the_gpu_seed_of_checkpoint_is_reproducible_and_draws_nothing():
    np.random.seed(3)
    state = np.random.get_state()
    seed = gpu_seed_from(state)
    assert seed == gpu_seed_from(np.random.get_state())   # reading it drew no number
    np.random.rand()
    assert gpu_seed_from(np.random.get_state()) != seed
    np.random.seed(3)
    assert gpu_seed_from(np.random.get_state()) == seed


def test_cpu_programs_do_not_touch_the_device_policy():
    assert (core._GPU_ARRAY is None) == (lg.cuda.cupy is None)
