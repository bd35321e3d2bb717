"""leafgrad.memory.track: peak and current bytes of what a block allocates."""
import gc
import tracemalloc

import numpy as np
import pytest

import leafgrad.functions as F
from leafgrad import Variable, no_grad
from leafgrad.memory import MemoryReport, format_bytes, track

MB8 = 1_000_000 * 8  # a float64 array of 1,000,000 elements
SLACK = 256 * 1024  # bytes of bookkeeping (NumPy 1.26 allocates a little more)


def test_known_array_kept():
    with track() as mem:
        a = np.ones(1_000_000, dtype=np.float64)
    assert MB8 <= mem.current < MB8 + SLACK
    assert MB8 <= mem.peak < MB8 + SLACK
    del a


def test_known_array_freed_inside_block():
    with track() as mem:
        a = np.ones(1_000_000, dtype=np.float64)
        del a
    assert mem.current < SLACK
    assert MB8 <= mem.peak < MB8 + SLACK


def test_peak_of_two_arrays_alive_together():
    with track() as mem:
        a = np.zeros(1_000_000)
        b = np.zeros(1_000_000)
        del a, b
        c = np.zeros(500_000)
    assert 2 * MB8 <= mem.peak < 2 * MB8 + SLACK
    assert MB8 // 2 <= mem.current < MB8 // 2 + SLACK
    del c


def test_arrays_from_before_the_block_do_not_count():
    big = np.ones(1_000_000)
    with track() as mem:
        small = big[:10].copy()
    assert mem.peak < SLACK
    del big, small


def test_nested_blocks_keep_the_outer_peak():
    with track() as outer:
        a = np.ones(1_000_000)
        del a  # the outer peak (8 MB) happened before the inner block
        with track() as inner:
            b = np.ones(250_000)
            del b
    assert MB8 <= outer.peak < MB8 + SLACK
    assert MB8 // 4 <= inner.peak < MB8 // 4 + SLACK
    with track() as outer:
        with track() as inner:
            b = np.ones(1_000_000)
            del b
    assert MB8 <= outer.peak and MB8 <= inner.peak


def test_float32_halves_the_bytes():
    with track() as mem:
        a = np.ones(1_000_000, dtype=np.float32)
    assert MB8 // 2 <= mem.current < MB8 // 2 + SLACK
    del a


def test_readable_report_and_label():
    with track(label="forward") as mem:
        a = np.ones(1_000_000)
    text = repr(mem)
    assert text.startswith("forward: peak 7.6 MiB")
    assert "current 7.6 MiB" in text
    assert isinstance(mem, MemoryReport)
    del a


def test_values_readable_inside_the_block():
    with track() as mem:
        a = np.ones(1_000_000)
        assert mem.current >= MB8
        assert mem.peak >= MB8
        del a


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(2048) == "2.0 KiB"
    assert format_bytes(8 * 1024 * 1024) == "8.0 MiB"
    assert format_bytes(3 * 1024 ** 3) == "3.0 GiB"
    assert format_bytes(-2048) == "-2.0 KiB"


def test_bad_device():
    with pytest.raises(ValueError, match="device"):
        track(device="tpu")


def test_no_grad_keeps_nothing_for_backward(no_gc):
    """What a learner can see with it: with no_grad() the graph keeps nothing; with a graph, exp keeps its output."""
    x = Variable(np.random.rand(1000, 1000))  # 8 MB, made before the blocks
    with track() as graph:
        y = F.sum(F.exp(F.sin(x)) * 2.0)
    with no_grad(), track() as plain:
        z = F.sum(F.exp(F.sin(x)) * 2.0)
    # exp's output (8 MB) is kept for backward; sin's and the product's are freed on the way.
    assert MB8 <= graph.current < MB8 + SLACK
    assert plain.current < SLACK
    # Each block holds at most two 8 MB temporaries at once.
    assert graph.peak < 2 * MB8 + SLACK and plain.peak < 2 * MB8 + SLACK
    del y, z
    gc.collect()


def test_an_outer_block_lets_inner_blocks_see_frees(no_gc):
    """backward() frees what the graph kept: visible when tracing was on when it was allocated."""
    x = Variable(np.random.rand(1000, 1000))
    with track():
        with track() as fwd:
            y = F.sum(F.tanh(F.exp(F.sin(x) * 2.0) + 1.0))   # exp's and tanh's outputs are kept
        with track() as bwd:
            y.backward()                                     # they are freed; x.grad (8 MB) stays
    assert 2 * MB8 <= fwd.current < 2 * MB8 + SLACK
    assert -MB8 - SLACK < bwd.current <= -MB8 + SLACK
    del y


def test_arrays_freed_from_before_tracing_are_invisible():
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc was already tracing")
    a = np.ones(1_000_000)
    with track() as mem:
        del a
    assert abs(mem.current) < SLACK  # documented: a block cannot see arrays made before tracing began
