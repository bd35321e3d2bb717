"""The convolution family: conv2d conv2d_simple deconv2d pooling pooling_simple average_pooling im2col col2im."""
import inspect
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leafgrad as lg
from leafgrad import Variable, graph
from leafgrad.functions import conv as C
from leafgrad.utils import gradient_check


# =============================================================================
# Naive loop references
# =============================================================================
def _pairs(k, s, p):
    def two(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    return two(k), two(s), two(p)


def _zero_pad(x, ph, pw):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def ref_conv2d(x, W, b=None, stride=1, pad=0):
    (kh, kw), (sh, sw), (ph, pw) = _pairs(W.shape[2:], stride, pad)
    n, c, h, w = x.shape
    oc = W.shape[0]
    oh, ow = _out(h, kh, sh, ph), _out(w, kw, sw, pw)
    xp = _zero_pad(x, ph, pw)
    y = np.zeros((n, oc, oh, ow), dtype=np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            for o in range(oc):
                y[:, o, i, j] = (patch * W[o]).sum(axis=(1, 2, 3))
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def ref_deconv2d(x, W, b=None, stride=1, pad=0, outsize=None):
    (kh, kw), (sh, sw), (ph, pw) = _pairs(W.shape[2:], stride, pad)
    n, c, h, w = x.shape
    oc = W.shape[1]
    if outsize is None:
        outsize = (sh * (h - 1) + kh - 2 * ph, sw * (w - 1) + kw - 2 * pw)
    out_h, out_w = outsize
    full = np.zeros((n, oc, out_h + 2 * ph + sh + kh, out_w + 2 * pw + sw + kw))
    for i in range(h):
        for j in range(w):
            full[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.einsum("nc,cokl->nokl", x[:, :, i, j], W)
    y = full[:, :, ph:ph + out_h, pw:pw + out_w]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def _ref_pool(x, kernel_size, stride, pad, reduce):
    (kh, kw), (sh, sw), (ph, pw) = _pairs(kernel_size, stride, pad)
    n, c, h, w = x.shape
    oh, ow = _out(h, kh, sh, ph), _out(w, kw, sw, pw)
    xp = _zero_pad(x, ph, pw)  # DeZero pads with zeros, for max pooling too
    y = np.zeros((n, c, oh, ow), dtype=np.float64)
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = reduce(xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return y


def ref_pooling(x, kernel_size, stride=1, pad=0):
    return _ref_pool(x, kernel_size, stride, pad, np.max)


def ref_average_pooling(x, kernel_size, stride=1, pad=0):
    return _ref_pool(x, kernel_size, stride, pad, np.mean)


def ref_im2col(x, kernel_size, stride=1, pad=0, to_matrix=True):
    (kh, kw), (sh, sw), (ph, pw) = _pairs(kernel_size, stride, pad)
    n, c, h, w = x.shape
    oh, ow = _out(h, kh, sh, ph), _out(w, kw, sw, pw)
    xp = _zero_pad(x, ph, pw)
    col = np.zeros((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            for p in range(oh):
                for q in range(ow):
                    col[:, :, i, j, p, q] = xp[:, :, i + sh * p, j + sw * q]
    if to_matrix:
        col = col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)
    return col


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# Geometries: (H, W, kernel, stride, pad); they cover the stride-1 "flat" path, the generic
# strided path, pairs, non-square kernels, padding wider than the kernel reach, 1x1 kernels.
GEOMETRIES = [
    (6, 7, 3, 1, 1),
    (7, 6, 3, 2, 1),
    (8, 8, 2, 2, 0),
    (6, 9, (2, 3), (1, 2), (1, 0)),
    (5, 5, 5, 1, 0),
    (7, 7, 3, 3, 2),
    (5, 6, 1, 1, 0),
    (4, 5, (1, 3), 1, (0, 1)),
    (3, 10, (3, 4), 1, 0),
]


# =============================================================================
# Forward against the references
# =============================================================================
@pytest.mark.parametrize("H,W,k,s,p", GEOMETRIES)
def test_conv2d_forward_matches_loops(H, W, k, s, p):
    kh, kw = (k, k) if isinstance(k, int) else k
    x, w, b = rand(2, 3, H, W), rand(4, 3, kh, kw, seed=1), rand(4, seed=2)
    expected = ref_conv2d(x, w, b, s, p)
    np.testing.assert_allclose(C.conv2d(x, w, b, s, p).data, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(C.conv2d(x, w, None, s, p).data, expected - b.reshape(1, -1, 1, 1),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(C.conv2d_simple(x, w, b, s, p).data, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("H,W,k,s,p", GEOMETRIES)
def test_deconv2d_forward_matches_loops(H, W, k, s, p):
    kh, kw = (k, k) if isinstance(k, int) else k
    x, w, b = rand(2, 3, H, W), rand(3, 4, kh, kw, seed=1), rand(4, seed=2)
    (_, _), (sh, sw), (ph, pw) = _pairs(k, s, p)
    out = (sh * (H - 1) + kh - 2 * ph, sw * (W - 1) + kw - 2 * pw)
    if min(out) < 1:
        pytest.skip("no positive output size")
    np.testing.assert_allclose(C.deconv2d(x, w, b, s, p).data, ref_deconv2d(x, w, b, s, p), atol=1e-10)


def test_deconv2d_outsize_picks_among_sizes_that_a_strided_conv_maps_back():
    x, w = rand(2, 3, 4, 4), rand(3, 2, 3, 3, seed=1)
    y = C.deconv2d(x, w, stride=2, pad=1, outsize=(8, 8))  # the default would be 7x7
    assert y.shape == (2, 2, 8, 8)
    np.testing.assert_allclose(y.data, ref_deconv2d(x, w, None, 2, 1, (8, 8)), atol=1e-10)
    assert C.deconv2d(x, w, stride=2, pad=1).shape == (2, 2, 7, 7)


def test_deconv2d_is_the_input_gradient_of_conv2d():
    x, w = Variable(rand(2, 3, 7, 6)), rand(4, 3, 3, 3, seed=1)
    gy = rand(2, 4, 4, 3, seed=2)
    gx, = lg.grad(C.conv2d(x, w, stride=2, pad=1), [x], grad_outputs=[gy])
    np.testing.assert_allclose(gx.data, C.deconv2d(gy, w, stride=2, pad=1, outsize=(7, 6)).data, atol=1e-10)


@pytest.mark.parametrize("H,W,k,s,p", GEOMETRIES + [(8, 8, 8, 1, 0), (9, 9, 6, 2, 1), (7, 7, 7, 1, 3)])
def test_pooling_forward_matches_loops(H, W, k, s, p):
    x = rand(2, 3, H, W)
    np.testing.assert_allclose(C.pooling(x, k, s, p).data, ref_pooling(x, k, s, p))
    np.testing.assert_allclose(C.pooling_simple(x, k, s, p).data, ref_pooling(x, k, s, p))
    np.testing.assert_allclose(C.average_pooling(x, k, s, p).data, ref_average_pooling(x, k, s, p),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("H,W,k,s,p", GEOMETRIES)
@pytest.mark.parametrize("to_matrix", [True, False])
def test_im2col_matches_loops_and_col2im_is_its_adjoint(H, W, k, s, p, to_matrix):
    x = rand(2, 3, H, W)
    col = C.im2col(x, k, s, p, to_matrix)
    np.testing.assert_array_equal(col.data, ref_im2col(x, k, s, p, to_matrix))
    c = rand(*col.shape, seed=3)
    back = C.col2im(c, x.shape, k, s, p, to_matrix)
    assert back.shape == x.shape
    # <im2col(x), c> == <x, col2im(c)>
    np.testing.assert_allclose((col.data * c).sum(), (x * back.data).sum(), rtol=1e-10)


DEZERO_SIGNATURES = {  # DeZero 0.0.13: parameter names and defaults
    "conv2d": [("x", None), ("W", None), ("b", None), ("stride", 1), ("pad", 0)],
    "conv2d_simple": [("x", None), ("W", None), ("b", None), ("stride", 1), ("pad", 0)],
    "deconv2d": [("x", None), ("W", None), ("b", None), ("stride", 1), ("pad", 0), ("outsize", None)],
    "pooling": [("x", None), ("kernel_size", None), ("stride", 1), ("pad", 0)],
    "pooling_simple": [("x", None), ("kernel_size", None), ("stride", 1), ("pad", 0)],
    "average_pooling": [("x", None), ("kernel_size", None), ("stride", 1), ("pad", 0)],
    "im2col": [("x", None), ("kernel_size", None), ("stride", 1), ("pad", 0), ("to_matrix", True)],
    "col2im": [("x", None), ("input_shape", None), ("kernel_size", None), ("stride", 1), ("pad", 0),
               ("to_matrix", True)],
}


@pytest.mark.parametrize("name", sorted(DEZERO_SIGNATURES))
def test_dezero_signatures_and_defaults(name):
    params = inspect.signature(getattr(C, name)).parameters.values()
    got = [(p.name, None if p.default is inspect.Parameter.empty else p.default) for p in params]
    assert got == DEZERO_SIGNATURES[name]


def test_pooling_stride_defaults_to_one_as_in_dezero():
    assert C.pooling(rand(1, 1, 4, 4), 2).shape == (1, 1, 3, 3)


def test_global_pooling_as_dezero_models_use_it():
    x = rand(2, 3, 7, 6)
    np.testing.assert_allclose(C.average_pooling(x, (7, 6), stride=1).data[:, :, 0, 0], x.mean(axis=(2, 3)))
    np.testing.assert_allclose(C.pooling(x, (7, 6)).data[:, :, 0, 0], x.max(axis=(2, 3)))
    big = rand(1, 2, 17, 17)  # 289 offsets: the indexes no longer fit in uint8
    y = C.pooling(Variable(big), 17)
    assert y.creator.indexes.dtype == np.uint16
    np.testing.assert_allclose(y.data[:, :, 0, 0], big.max(axis=(2, 3)))


def test_pooling_indexes_are_first_maximum_and_small():
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 1, 1] = 1.0  # window (0, 0): maximum at offset 3
    x[0, 0, 0, 3] = 1.0  # window (0, 1): maximum at offset 1
    xv = Variable(x)
    y = C.pooling(xv, 2, 2)
    f = y.creator
    assert f.indexes.dtype == np.uint8 and f.indexes.shape == y.shape
    np.testing.assert_array_equal(f.indexes[0, 0], [[3, 1], [0, 0]])  # ties: the first
    y.backward()
    expected = np.zeros_like(x)
    expected[0, 0, 1, 1] = expected[0, 0, 0, 3] = 1
    expected[0, 0, 2, 0] = expected[0, 0, 2, 2] = 1  # all-zero windows: their first element
    np.testing.assert_array_equal(xv.grad.data, expected)
    assert f.indexes is None  # released with the graph


@pytest.mark.parametrize("chunk_bytes", [1, 4000, 16000, 1 << 40])
@pytest.mark.parametrize("s,p", [(1, 1), (2, 1)])
def test_batch_chunking_gives_the_same_results(monkeypatch, chunk_bytes, s, p):
    """The convolutions go through the batch in chunks; one sample, a few with a remainder, or
    the whole batch in one product (the GPU's strategy, here run on NumPy)."""
    x, w, b = Variable(rand(5, 2, 6, 7)), Variable(rand(3, 2, 3, 3, seed=1)), Variable(rand(3, seed=2))
    gy = rand(5, 3, *C.conv2d(x, w, b, s, p).shape[2:], seed=3)
    expected = [g.data for g in lg.grad(C.conv2d(x, w, b, s, p), [x, w, b], grad_outputs=[gy])]
    y_expected = C.conv2d(x, w, b, s, p).data
    dw = rand(2, 3, 3, 3, seed=4)
    d_expected = C.deconv2d(x, dw, None, s, p).data
    monkeypatch.setattr(C, "_CHUNK_BYTES", chunk_bytes)
    np.testing.assert_allclose(C.conv2d(x, w, b, s, p).data, y_expected, atol=1e-12)
    np.testing.assert_allclose(y_expected, ref_conv2d(x.data, w.data, b.data, s, p), atol=1e-10)
    for got, exp in zip(lg.grad(C.conv2d(x, w, b, s, p), [x, w, b], grad_outputs=[gy]), expected):
        np.testing.assert_allclose(got.data, exp, atol=1e-10)
    np.testing.assert_allclose(C.deconv2d(x, dw, None, s, p).data, d_expected, atol=1e-12)


def test_chunks_are_cache_sized_on_the_cpu_and_the_whole_batch_on_a_gpu(monkeypatch):
    x = np.zeros((256, 16, 16, 16), np.float32)
    per_sample = 16 * 9 * 16 * 18 * 4  # the columns of one sample, 16 -> 32 channels, 3x3, pad 1
    parts = list(C._chunks(x, per_sample))
    assert len(parts) > 1 and all((p.stop - p.start) * per_sample <= C._CHUNK_BYTES for p in parts)
    assert parts[0].start == 0 and parts[-1].stop == 256
    monkeypatch.setattr(C, "get_array_module", lambda a: object())  # any module but NumPy: a GPU's
    assert list(C._chunks(x, per_sample)) == [slice(0, 256)]
    assert len(list(C._chunks(x, C._GPU_CHUNK_BYTES // 10))) == 26  # a huge batch: bounded memory


def test_empty_batch():
    x, w = Variable(np.zeros((0, 2, 5, 5))), Variable(rand(3, 2, 3, 3))
    y = C.conv2d(x, w, None, 1, 1)
    assert y.shape == (0, 3, 5, 5)
    gx, gw = lg.grad(lg.functions.sum(y), [x, w])
    assert gx.shape == x.shape and gw.shape == w.shape and not gw.data.any()


# =============================================================================
# Backward: gradient_check, double backward
# =============================================================================
BACKWARD_GEOMETRIES = [(5, 6, 3, 1, 1), (6, 5, 3, 2, 1), (4, 6, (2, 3), (2, 1), (0, 1))]


@pytest.mark.parametrize("H,W,k,s,p", BACKWARD_GEOMETRIES)
def test_conv2d_gradient_check(H, W, k, s, p):
    kh, kw = (k, k) if isinstance(k, int) else k
    x, w, b = rand(2, 2, H, W), rand(3, 2, kh, kw, seed=1), rand(3, seed=2)
    assert gradient_check(lambda x_: C.conv2d(x_, w, b, s, p), x)
    assert gradient_check(lambda w_: C.conv2d(x, w_, b, s, p), w)
    assert gradient_check(lambda b_: C.conv2d(x, w, b_, s, p), b)
    assert gradient_check(lambda x_: C.conv2d_simple(x_, w, b, s, p), x)
    assert gradient_check(lambda w_: C.conv2d_simple(x, w_, b, s, p), w)


@pytest.mark.parametrize("H,W,k,s,p", BACKWARD_GEOMETRIES)
def test_deconv2d_gradient_check(H, W, k, s, p):
    kh, kw = (k, k) if isinstance(k, int) else k
    x, w, b = rand(2, 2, H, W), rand(2, 3, kh, kw, seed=1), rand(3, seed=2)
    assert gradient_check(lambda x_: C.deconv2d(x_, w, b, s, p), x)
    assert gradient_check(lambda w_: C.deconv2d(x, w_, b, s, p), w)
    assert gradient_check(lambda b_: C.deconv2d(x, w, b_, s, p), b)


@pytest.mark.parametrize("H,W,k,s,p", BACKWARD_GEOMETRIES + [
    (6, 6, 2, 2, 0), (5, 7, 2, 2, 0), (5, 5, 5, 2, 2), (6, 6, 6, 1, 0), (6, 5, (6, 5), 1, 0)])
def test_pooling_gradient_check(H, W, k, s, p):
    x = rand(2, 2, H, W)
    assert gradient_check(lambda x_: C.pooling(x_, k, s, p), x)
    assert gradient_check(lambda x_: C.pooling_simple(x_, k, s, p), x)
    assert gradient_check(lambda x_: C.average_pooling(x_, k, s, p), x)


@pytest.mark.parametrize("to_matrix", [True, False])
def test_im2col_col2im_gradient_check(to_matrix):
    x = rand(2, 2, 5, 6)
    assert gradient_check(lambda x_: C.im2col(x_, 3, 2, 1, to_matrix), x)
    col = C.im2col(x, 3, 2, 1, to_matrix).data
    assert gradient_check(lambda c_: C.col2im(c_, x.shape, 3, 2, 1, to_matrix), rand(*col.shape))


# Second and third orders of every convolution function: tests/test_gradients.py.


def test_second_order_gradient_of_pooling_gradient_is_the_scatter_of_ones():
    x = Variable(rand(1, 1, 4, 4))
    y = C.pooling(x, 2, 2)
    gx, = lg.grad(lg.functions.sum(y * y), [x], create_graph=True)
    ggx, = lg.grad(lg.functions.sum(gx), [x])
    mask = np.zeros((1, 1, 4, 4))
    for i in range(2):
        for j in range(2):
            win = x.data[0, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
            a, b_ = np.unravel_index(np.argmax(win), (2, 2))
            mask[0, 0, 2 * i + a, 2 * j + b_] = 2.0
    np.testing.assert_allclose(ggx.data, mask)


# =============================================================================
# dtypes
# =============================================================================
def test_float32_in_float32_out_and_grads():
    f32 = np.float32
    x = Variable(rand(2, 3, 6, 6).astype(f32))
    w = Variable(rand(4, 3, 3, 3).astype(f32))
    b = Variable(rand(4).astype(f32))
    wd = Variable(rand(4, 2, 3, 3).astype(f32))
    h = C.conv2d(x, w, b, 1, 1)
    outs = [h, C.pooling(h, 2, 2), C.average_pooling(h, 3, 1, 1), C.deconv2d(h, wd, None, 2, 1),
            C.conv2d(x, w, b, 2, 0), C.conv2d_simple(x, w, b, 1, 1), C.pooling_simple(h, 2, 2),
            C.im2col(x, 3, 1, 1), C.im2col(x, 3, 2, 0, to_matrix=False)]
    for y in outs:
        assert y.dtype == f32, y.creator
    total = lg.functions.sum(outs[0])
    for y in outs[1:]:
        total = total + lg.functions.sum(y)
    total.backward()
    for v in (x, w, b, wd):
        assert v.grad.dtype == f32
    col = C.im2col(x.data, 3, 1, 1)
    assert C.col2im(col, x.shape, 3, 1, 1).dtype == f32
    # second order stays float32 too
    x.cleargrad()
    gx, = lg.grad(lg.functions.sum(C.pooling(C.conv2d(x, w, b, 1, 1), 2, 2) ** 2), [x], create_graph=True)
    assert gx.dtype == f32
    ggx, = lg.grad(lg.functions.sum(gx * gx), [x])
    assert ggx.dtype == f32


def test_constant_input_gets_no_gradient_but_filter_does():
    x = rand(2, 3, 5, 5).astype(np.float32)   # an ndarray: a constant
    w = Variable(rand(4, 3, 3, 3).astype(np.float32))
    y = C.conv2d(x, w, None, 1, 1)
    y.backward()
    np.testing.assert_allclose(w.grad.data, C._conv_grad_W(x, np.ones(y.shape, np.float32), (3, 3), (1, 1),
                                                           (1, 1)), rtol=1e-5)


def test_no_grad_pooling_computes_no_indexes():
    x = Variable(rand(2, 2, 4, 4))
    with lg.no_grad():
        y = C.pooling(x, 2, 2)
    assert y.creator is None
    np.testing.assert_allclose(y.data, ref_pooling(x.data, 2, 2))


# =============================================================================
# Memory: only what backward needs is kept
# =============================================================================
def test_pooling_keeps_indexes_not_its_input(no_gc):
    x = Variable(rand(2, 3, 8, 8).astype(np.float32))
    w = Variable(rand(4, 3, 3, 3).astype(np.float32))
    h = C.conv2d(x, w, None, 1, 1)   # conv2d keeps x and w, not its output
    h_data = weakref.ref(h.data)
    y = C.pooling(h, 2, 2)
    del h
    assert h_data() is None           # neither conv2d nor pooling needed h's array
    conv_f = next(f for f in graph.functions_of([y]) if isinstance(f, C.Conv2d))
    assert conv_f._kept_inputs[0] is x.data and conv_f._kept_inputs[1] is w.data
    y.backward()
    assert x.grad is not None and w.grad is not None
    assert conv_f._kept_inputs is None  # released after backward


@pytest.mark.parametrize("make,shape", [
    (lambda v: C.average_pooling(v, 2, 2), (2, 2, 4, 4)),
    (lambda v: C.im2col(v, 3, 1, 1), (2, 2, 4, 4)),
    (lambda v: C.col2im(v, (2, 2, 4, 4), 2, 2, 0, to_matrix=False), (2, 2, 2, 2, 2, 2)),
], ids=["average_pooling", "im2col", "col2im"])
def test_functions_that_keep_nothing_free_their_input(make, shape, no_gc):
    x = Variable(rand(*shape).astype(np.float32))
    h = x * 2.0
    h_data = weakref.ref(h.data)
    y = make(h)
    del h
    assert h_data() is None
    lg.functions.sum(y).backward()
    assert x.grad is not None and x.grad.shape == shape


def test_conv2d_does_not_keep_bias_or_output(no_gc):
    x = Variable(rand(2, 3, 6, 6).astype(np.float32))
    w = Variable(rand(4, 3, 3, 3).astype(np.float32))
    b0 = Variable(rand(4).astype(np.float32))
    b = b0 * 1.0
    b_data = weakref.ref(b.data)
    y = C.conv2d(x, w, b, 1, 1)
    y_data = weakref.ref(y.data)
    z = lg.functions.sum(y)
    del b, y
    assert b_data() is None and y_data() is None
    z.backward()
    np.testing.assert_allclose(b0.grad.data, np.full(4, 36 * 2, np.float32))


def test_second_backward_through_freed_graph_raises():
    x = Variable(rand(1, 1, 4, 4))
    y = lg.functions.sum(C.pooling(x, 2, 2))
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


# =============================================================================
# Clear errors
# =============================================================================
def test_channel_mismatch_names_both_counts():
    with pytest.raises(ValueError, match="conv2d: input has 3 channels but the filter W expects 4"):
        C.conv2d(rand(1, 3, 5, 5), rand(2, 4, 3, 3))
    with pytest.raises(ValueError, match="conv2d_simple: input has 3 channels but the filter W expects 4"):
        C.conv2d_simple(rand(1, 3, 5, 5), rand(2, 4, 3, 3))
    with pytest.raises(ValueError, match="deconv2d: input has 3 channels but the filter W expects 2"):
        C.deconv2d(rand(1, 3, 5, 5), rand(2, 4, 3, 3))


@pytest.mark.parametrize("call", [
    lambda: C.conv2d(rand(1, 1, 3, 3), rand(1, 1, 5, 5)),
    lambda: C.conv2d(rand(1, 1, 3, 3), rand(1, 1, 6, 2), pad=1),
    lambda: C.pooling(rand(1, 1, 3, 3), 4),
    lambda: C.average_pooling(rand(1, 1, 3, 3), (1, 6), 1, (0, 1)),
    lambda: C.im2col(rand(1, 1, 2, 2), 3),
])
def test_kernel_larger_than_padded_input(call):
    with pytest.raises(ValueError, match="kernel .* is larger than the padded input"):
        call()


@pytest.mark.parametrize("call,match", [
    (lambda: C.conv2d(rand(3, 5, 5), rand(2, 3, 3, 3)), r"conv2d: the input x must be a 4-D array .* \(3, 5, 5\)"),
    (lambda: C.conv2d(rand(1, 3, 5, 5), rand(3, 3, 3)), r"conv2d: the filter W must be a 4-D array \(OC, C, KH, KW\)"),
    (lambda: C.conv2d(rand(1, 3, 5, 5), rand(2, 3, 3, 3), rand(3)), r"conv2d: the bias b must have shape \(2,\)"),
    (lambda: C.pooling(rand(5, 5), 2), r"pooling: x must be a 4-D array .*\(5, 5\)"),
    (lambda: C.average_pooling(rand(1, 5, 5), 2), r"average_pooling: x must be a 4-D array"),
    (lambda: C.im2col(rand(1, 5, 5), 2), r"im2col: x must be a 4-D array"),
    (lambda: C.conv2d(rand(1, 1, 5, 5), rand(1, 1, 3, 3), stride=0), r"conv2d: stride must be >= 1, got 0"),
    (lambda: C.conv2d(rand(1, 1, 5, 5), rand(1, 1, 3, 3), pad=-1), r"conv2d: pad must be >= 0, got -1"),
    (lambda: C.deconv2d(rand(1, 2, 4, 4), rand(2, 1, 3, 3), stride=2, outsize=(12, 12)),
     r"deconv2d: outsize \(12, 12\) does not fit the input"),
    (lambda: C.deconv2d(rand(1, 2, 1, 1), rand(2, 1, 1, 1), pad=1), r"deconv2d: the output size .* is not positive"),
    (lambda: C.col2im(rand(5, 4), (1, 1, 4, 4), 2, 2), r"col2im: the columns have shape \(5, 4\) .* needs \(4, 4\)"),
    (lambda: C.col2im(rand(4, 4), (1, 4, 4), 2, 2), r"col2im: input_shape must be \(N, C, H, W\)"),
])
def test_bad_input_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call,match", [
    (lambda: C.pooling(rand(1, 1, 5, 5), (2, 2, 2)), r"pooling: kernel_size must be an int or a pair of ints"),
    (lambda: C.pooling(rand(1, 1, 5, 5), 2.0), r"pooling: kernel_size must be an int or a pair of ints"),
    (lambda: C.col2im(rand(4, 4), None, 2, 2), r"col2im: input_shape must be an int or a tuple of ints, got None"),
])
def test_arguments_of_the_wrong_kind(call, match):
    with pytest.raises(TypeError, match=match):
        call()


# =============================================================================
# Properties (Hypothesis)
# =============================================================================
@st.composite
def geometries(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 8))
    w = draw(st.integers(max(1, kw - 2 * pw), 8))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return (n, c, h, w), (kh, kw), (sh, sw), (ph, pw)


@settings(max_examples=25, deadline=None)
@given(geometries(), st.integers(1, 3), st.integers(0, 2 ** 16))
def test_property_conv2d_and_its_gradients(geom, oc, seed):
    shape, k, s, p = geom
    rng = np.random.default_rng(seed)
    x = Variable(rng.standard_normal(shape))
    w = Variable(rng.standard_normal((oc, shape[1]) + k))
    y = C.conv2d(x, w, None, s, p)
    np.testing.assert_allclose(y.data, ref_conv2d(x.data, w.data, None, s, p), atol=1e-10)
    gy = rng.standard_normal(y.shape)
    gx, gw = lg.grad(y, [x, w], grad_outputs=[gy])
    # adjoint identities: <conv(x), gy> = <x, gx> = <w, gw> (conv is linear in each)
    inner = (y.data * gy).sum()
    np.testing.assert_allclose((x.data * gx.data).sum(), inner, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose((w.data * gw.data).sum(), inner, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gx.data, ref_deconv2d(gy, w.data, None, s, p, shape[2:]), atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(geometries(), st.integers(0, 2 ** 16))
def test_property_pooling(geom, seed):
    shape, k, s, p = geom
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_allclose(C.pooling(x, k, s, p).data, ref_pooling(x, k, s, p))
    np.testing.assert_allclose(C.average_pooling(x, k, s, p).data, ref_average_pooling(x, k, s, p), atol=1e-12)
    xv = Variable(x)
    y = C.pooling(xv, k, s, p)
    lg.functions.sum(y).backward()
    # each output sends its gradient to one input element; what reaches the zero padding is lost
    assert xv.grad.data.sum() <= y.size + 1e-9
    assert ((xv.grad.data == np.round(xv.grad.data)) & (xv.grad.data >= 0)).all()


@settings(max_examples=25, deadline=None)
@given(geometries(), st.booleans(), st.integers(0, 2 ** 16))
def test_property_col2im_is_adjoint_of_im2col(geom, to_matrix, seed):
    shape, k, s, p = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    col = C.im2col_array(x, k, s, p, to_matrix)
    np.testing.assert_array_equal(col, ref_im2col(x, k, s, p, to_matrix))
    c = rng.standard_normal(col.shape)
    np.testing.assert_allclose((col * c).sum(), (x * C.col2im_array(c, shape, k, s, p, to_matrix)).sum(),
                               rtol=1e-9, atol=1e-9)
