"""Convolution family: ``conv2d conv2d_simple deconv2d pooling pooling_simple average_pooling im2col col2im``.

Images are ``(N, C, H, W)``; filters are ``(OC, C, KH, KW)`` for ``conv2d`` and
``(C, OC, KH, KW)`` for ``deconv2d``; ``kernel_size``, ``stride`` and ``pad``
are an int or a pair ``(h, w)``.  Names, signatures and defaults are DeZero
0.0.13's.

How it is fast on NumPy:

* ``conv2d`` is one matrix product per sample,
  ``W(OC, C*KH*KW) @ col(C*KH*KW, OH*OW)``, whose result is already laid out
  as ``(N, OC, OH, OW)``: no transposition of the output.
* The columns are built a chunk of samples at a time (about 1 MiB): they are
  still in cache when the product reads them, and the temporary memory stays
  bounded whatever the batch size.  On a GPU (CuPy arrays) the same code runs
  on the whole batch at once, one batched product for all samples: there the
  cost is the number of kernel launches, not the cache (``_chunks`` decides).
* For stride 1, each padded (n, c) plane is flattened row-major; the window at
  kernel offset ``(i, j)`` is then the contiguous run starting at ``i*Wp + j``
  (``Wp`` the padded width), so ``im2col`` is ``KH * KW`` long contiguous
  copies and ``col2im`` ``KH * KW`` long contiguous additions.  Each output row
  carries ``KW - 1`` junk columns, dropped at the end.  Other strides copy
  strided slices, one per kernel offset.  No ``np.add.at`` anywhere.
* Max pooling takes the running maximum over the ``KH * KW`` strided views of
  the input and records, per output element, the (first) offset holding it, as
  a ``uint8``; its backward writes the gradient back with one masked product per
  offset.  Small kernels never materialise the windows.

Memory: ``conv2d`` and ``deconv2d`` keep their input and filter (the filter
gradient recomputes the columns of the input: ``KH * KW`` times smaller than
keeping the columns); pooling keeps only the ``uint8`` argmax indexes (a quarter
of its output's bytes), average pooling and ``im2col``/``col2im`` keep nothing.

Each gradient is written once.  The functions are linear in each input, so
their gradients are made of the same functions: ``conv2d``'s input gradient is
a ``Deconv2d``, its filter gradient a ``Conv2DGradW``, max pooling's gradient a
``Pooling2DGrad``...  A backward calls them with :func:`leafgrad.ops.call`: on
the first-order walk that runs their forward on arrays, on the recorded walk it
records them, so every order of derivative comes from the same code.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Tuple, Union

import numpy as np

from leafgrad import ops
from leafgrad.config import _enable_backprop
from leafgrad.core import Function, Variable
from leafgrad.checks import ARRAY, BOOL, OPTIONAL_ARRAY, OPTIONAL_PAIR, PAIR, SHAPE, checked
from leafgrad.cuda import get_array_module
from leafgrad.functions.nn import linear
from leafgrad.functions.reduce import sum as _sum
from leafgrad.utils import get_conv_outsize, get_deconv_outsize, pair

__all__ = [
    "conv2d", "conv2d_simple", "deconv2d", "pooling", "pooling_simple", "average_pooling",
    "im2col", "col2im", "im2col_array", "col2im_array",
           # DeZero's Function classes, with its constructor arguments
           "Conv2d", "Deconv2d", "Conv2DGradW", "Pooling", "Pooling2DGrad", "Pooling2DWithIndexes", "AveragePooling", "AveragePooling2DGrad", "Im2col", "Col2im"]

IntOrPair = Union[int, Tuple[int, int]]

#: Kernels with more offsets than this use materialised windows (im2col) for pooling.
_LOOP_MAX_OFFSETS = 25

#: The convolutions' strategy, chosen by device (in :func:`_chunks`): the bytes of im2col columns
#: built at a time.  On the CPU about 1 MiB: the columns are still in cache when the matrix
#: product reads them, and the temporary memory stays bounded whatever the batch size.
_CHUNK_BYTES = 1 << 20
#: On a GPU the whole batch: one batched product over all samples, since each chunk costs a dozen
#: kernel launches whatever its size.  The bound only keeps a huge batch's columns in memory.
_GPU_CHUNK_BYTES = 1 << 26


# =============================================================================
# Geometry and validation
# =============================================================================
def _int_pair(name: str, what: str, value: Any, minimum: int) -> Tuple[int, int]:
    """``value`` as a pair of ints, each at least ``minimum``; a clear error otherwise."""
    try:
        p = pair(value)
    except ValueError:
        raise ValueError(f"{name}: {what} must be an int or a pair of ints, got {value!r}") from None
    out = []
    for v in p:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name}: {what} must be an int or a pair of ints, got {value!r}")
        if v < minimum:
            raise ValueError(f"{name}: {what} must be >= {minimum}, got {value!r}")
        out.append(int(v))
    return out[0], out[1]


def _shape_of(x: Any) -> Optional[tuple]:
    shape = getattr(x, "shape", None)
    return None if shape is None else tuple(shape)


def _check_4d(name: str, what: str, x: Any, layout: str = "(N, C, H, W)") -> tuple:
    shape = _shape_of(x)
    if shape is None or len(shape) != 4:
        got = "no shape" if shape is None else f"shape {shape} ({len(shape)}-D)"
        raise ValueError(f"{name}: {what} must be a 4-D array {layout}, got {got}")
    return shape


def _geometry(name: str, hw: tuple, kernel_size: Any, stride: Any, pad: Any) -> tuple:
    """Validate a sliding-window geometry; return ``(kh, kw, sh, sw, ph, pw, oh, ow)``."""
    kh, kw = _int_pair(name, "kernel_size", kernel_size, 1)
    sh, sw = _int_pair(name, "stride", stride, 1)
    ph, pw = _int_pair(name, "pad", pad, 0)
    h, w = hw
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(f"{name}: kernel {kh}x{kw} is larger than the padded input "
                         f"{h + 2 * ph}x{w + 2 * pw} (input {h}x{w}, pad {(ph, pw)})")
    return (kh, kw, sh, sw, ph, pw,
            get_conv_outsize(h, kh, sh, ph), get_conv_outsize(w, kw, sw, pw))


# =============================================================================
# Array kernels
# =============================================================================
def _pad(x: Any, ph: int, pw: int) -> Any:
    """``x`` zero-padded by ``ph`` rows and ``pw`` columns on each side (``x`` itself when no pad)."""
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _crop(img: Any, ph: int, pw: int, h: int, w: int) -> Any:
    """The ``(h, w)`` interior of a padded image, as a contiguous array."""
    if ph == 0 and pw == 0 and img.shape[2] == h and img.shape[3] == w:
        return img
    return get_array_module(img).ascontiguousarray(img[:, :, ph:ph + h, pw:pw + w])


def _windows(img: Any, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int) -> Iterator[Any]:
    """For each kernel offset ``(i, j)`` in row-major order, the strided view
    ``v[n, c, p, q] = img[n, c, i + sh * p, j + sw * q]`` of shape ``(N, C, oh, ow)``."""
    for i in range(kh):
        rows = slice(i, i + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            yield img[:, :, rows, j:j + sw * (ow - 1) + 1:sw]


@checked(img=ARRAY, kernel_size=PAIR, stride=PAIR, pad=PAIR, to_matrix=BOOL)
def im2col_array(img: Any, kernel_size: IntOrPair, stride: IntOrPair = 1, pad: IntOrPair = 0,
                 to_matrix: bool = True) -> Any:
    """The patches of ``img`` (N, C, H, W) under a sliding kernel, as an array.

    Shape ``(N, C, KH, KW, OH, OW)``, or ``(N*OH*OW, C*KH*KW)`` when ``to_matrix``.
    Padding is with zeros.
    """
    n, c, h, w = _check_4d("im2col", "the input", img)
    kh, kw, sh, sw, ph, pw, oh, ow = _geometry("im2col", (h, w), kernel_size, stride, pad)
    xp = get_array_module(img)
    padded = _pad(img, ph, pw)
    if to_matrix:
        col = xp.empty((n, oh, ow, c, kh, kw), dtype=img.dtype)
        for k, v in enumerate(_windows(padded, kh, kw, sh, sw, oh, ow)):
            col[:, :, :, :, k // kw, k % kw] = v.transpose(0, 2, 3, 1)
        return col.reshape(n * oh * ow, c * kh * kw)
    col = xp.empty((n, c, kh, kw, oh, ow), dtype=img.dtype)
    for k, v in enumerate(_windows(padded, kh, kw, sh, sw, oh, ow)):
        col[:, :, k // kw, k % kw] = v
    return col


@checked(col=ARRAY, img_shape=SHAPE, kernel_size=PAIR, stride=PAIR, pad=PAIR, to_matrix=BOOL)
def col2im_array(col: Any, img_shape: tuple, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 pad: IntOrPair = 0, to_matrix: bool = True) -> Any:
    """The adjoint of ``im2col_array``: add each patch of ``col`` back to its place in an image of ``img_shape``."""
    n, c, h, w = (int(s) for s in img_shape)
    kh, kw, sh, sw, ph, pw, oh, ow = _geometry("col2im", (h, w), kernel_size, stride, pad)
    expected = (n * oh * ow, c * kh * kw) if to_matrix else (n, c, kh, kw, oh, ow)
    if tuple(col.shape) != expected:
        raise ValueError(f"col2im: the columns have shape {tuple(col.shape)} but image shape "
                         f"{(n, c, h, w)} with kernel {(kh, kw)}, stride {(sh, sw)}, pad {(ph, pw)} "
                         f"and to_matrix={to_matrix} needs {expected}")
    xp = get_array_module(col)
    if to_matrix:
        col = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    img = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for k, v in enumerate(_windows(img, kh, kw, sh, sw, oh, ow)):
        v += col[:, :, k // kw, k % kw]
    return _crop(img, ph, pw, h, w)


def _use_flat(kw: int, ow: int, stride: tuple) -> bool:
    """Whether a convolution runs on row-flattened planes: stride 1, at most 50% junk columns."""
    return stride == (1, 1) and 2 * (kw - 1) <= ow


def _flat_planes(x: Any, ph: int, pw: int, kw: int) -> Any:
    """``x`` zero-padded, each (n, c) plane flattened row-major and followed by ``kw - 1`` zeros.

    Shape ``(N, C, Hp*Wp + kw - 1)``.  In this layout the window at kernel offset
    ``(i, j)`` of every output row is the contiguous run starting at ``i*Wp + j``:
    output row ``r`` reads ``Wp`` values of which the last ``kw - 1`` are junk
    (they wrap into the next row) and are dropped from the result.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    hp, wp = h + 2 * ph, w + 2 * pw
    planes = xp.zeros((n, c, hp * wp + kw - 1), dtype=x.dtype)
    planes[:, :, :hp * wp].reshape(n, c, hp, wp)[:, :, ph:ph + h, pw:pw + w] = x
    return planes


def _flat_col(x: Any, kh: int, kw: int, ph: int, pw: int) -> Any:
    """Stride-1 im2col on flattened planes: ``(N, C*KH*KW, OH*Wp)``, one contiguous copy per offset."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    wp = w + 2 * pw
    length = (h + 2 * ph - kh + 1) * wp
    planes = _flat_planes(x, ph, pw, kw)
    col = xp.empty((n, c, kh, kw, length), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            off = i * wp + j
            col[:, :, i, j] = planes[:, :, off:off + length]
    return col.reshape(n, c * kh * kw, length)


def _flat_grad(gy: Any, wp: int) -> Any:
    """``gy`` (N, OC, OH, OW) with ``wp - OW`` zero columns appended to each row: ``(N, OC, OH*wp)``."""
    n, oc, oh, ow = gy.shape
    if wp == ow:
        return gy.reshape(n, oc, oh * ow)
    # (zeros: one memset, faster than zeroing the junk columns, a few values per row)
    g = get_array_module(gy).zeros((n, oc, oh, wp), dtype=gy.dtype)
    g[:, :, :, :ow] = gy
    return g.reshape(n, oc, oh * wp)


def _chunks(x: Any, per_sample_bytes: int) -> Iterator[slice]:
    """Slices of the batch of ``x`` whose im2col columns take about ``_CHUNK_BYTES`` on NumPy,
    ``_GPU_CHUNK_BYTES`` on CuPy (the whole batch but for huge ones): the strategy by device."""
    n = x.shape[0]
    budget = _CHUNK_BYTES if get_array_module(x) is np else _GPU_CHUNK_BYTES
    step = max(1, min(n, budget // max(1, per_sample_bytes)))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _conv_forward(x: Any, W: Any, b: Any, stride: tuple, pad: tuple) -> Any:
    """``conv2d`` on arrays: ``W(OC, C*KH*KW) @ col(C*KH*KW, OH*OW)`` per sample, batch chunk by chunk."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    oc, _, kh, kw = W.shape
    ph, pw = pad
    k = c * kh * kw
    w2 = W.reshape(oc, k)
    if kh == kw == 1 and stride == (1, 1) and pad == (0, 0):
        y = xp.matmul(w2, x.reshape(n, c, h * w)).reshape(n, oc, h, w)
    else:
        geom = _geometry("conv2d", (h, w), (kh, kw), stride, pad)
        oh, ow = geom[6], geom[7]
        y = xp.empty((n, oc, oh, ow), dtype=xp.result_type(x.dtype, W.dtype))
        if _use_flat(kw, ow, stride):
            wp = w + 2 * pw
            for part in _chunks(x, k * oh * wp * x.itemsize):
                yc = xp.matmul(w2, _flat_col(x[part], kh, kw, ph, pw))
                y[part] = yc.reshape(yc.shape[0], oc, oh, wp)[:, :, :, :ow]
        else:
            for part in _chunks(x, k * oh * ow * x.itemsize):
                col = im2col_array(x[part], (kh, kw), stride, pad, to_matrix=False)
                m = col.shape[0]
                xp.matmul(w2, col.reshape(m, k, oh * ow), out=y[part].reshape(m, oc, oh * ow))
    if b is not None:
        y += b.reshape(1, oc, 1, 1)
    return y


def _conv_grad_x(gy: Any, W: Any, out_hw: tuple, stride: tuple, pad: tuple) -> Any:
    """The transposed convolution (``conv2d``'s input gradient, ``deconv2d``'s forward).

    ``gy`` (N, OC, OH, OW) and ``W`` (OC, C, KH, KW) give an image (N, C, *out_hw).
    """
    xp = get_array_module(gy)
    n, oc, oh, ow = gy.shape
    _, c, kh, kw = W.shape
    h, w = (int(s) for s in out_hw)
    ph, pw = pad
    k = c * kh * kw
    w2t = W.reshape(oc, k).T
    gx = xp.empty((n, c, h, w), dtype=xp.result_type(gy.dtype, W.dtype))
    if not _use_flat(kw, ow, stride):
        for part in _chunks(gy, k * oh * ow * gy.itemsize):
            gcol = xp.matmul(w2t, gy[part].reshape(-1, oc, oh * ow))
            m = gcol.shape[0]
            gx[part] = col2im_array(gcol.reshape(m, c, kh, kw, oh, ow), (m, c, h, w),
                                    (kh, kw), stride, pad, to_matrix=False)
        return gx
    hp, wp = h + 2 * ph, w + 2 * pw
    length = oh * wp
    for part in _chunks(gy, k * length * gy.itemsize):
        gcol = xp.matmul(w2t, _flat_grad(gy[part], wp))
        m = gcol.shape[0]
        gcol = gcol.reshape(m, c, kh, kw, length)
        planes = xp.zeros((m, c, hp * wp + kw - 1), dtype=gcol.dtype)
        for i in range(kh):
            for j in range(kw):
                off = i * wp + j
                planes[:, :, off:off + length] += gcol[:, :, i, j]
        gx[part] = planes[:, :, :hp * wp].reshape(m, c, hp, wp)[:, :, ph:ph + h, pw:pw + w]
    return gx


def _conv_grad_W(x: Any, gy: Any, kernel: tuple, stride: tuple, pad: tuple) -> Any:
    """``conv2d``'s filter gradient: ``x`` (N, C, H, W), ``gy`` (N, OC, OH, OW) give (OC, C, KH, KW)."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    _, oc, oh, ow = gy.shape
    kh, kw = kernel
    k = c * kh * kw
    flat = _use_flat(kw, ow, stride)
    length = oh * (w + 2 * pad[1]) if flat else oh * ow
    gWt = None
    for part in _chunks(x, k * length * x.itemsize):
        if flat:
            col = _flat_col(x[part], kh, kw, pad[0], pad[1])
            g = _flat_grad(gy[part], w + 2 * pad[1])
        else:
            col = im2col_array(x[part], kernel, stride, pad, to_matrix=False).reshape(-1, k, length)
            g = gy[part].reshape(-1, oc, length)
        # (C*KH*KW, L) @ (L, OC) per sample: BLAS runs this orientation faster than (OC, L) @ (L, C*KH*KW)
        t = xp.matmul(col, g.transpose(0, 2, 1)).sum(axis=0)
        if gWt is None:
            gWt = t
        else:
            gWt += t
    if gWt is None:  # an empty batch
        return xp.zeros((oc, c, kh, kw), dtype=xp.result_type(x.dtype, gy.dtype))
    return xp.ascontiguousarray(gWt.T).reshape(oc, c, kh, kw)


def _channel_sum(gy: Any) -> Any:
    """``gy`` (N, C, H, W) summed over all axes but the channels: the bias gradient.

    On arrays an ``einsum`` (three times faster than ``sum(axis=(0, 2, 3))``); recorded, a ``sum``.
    """
    if ops.is_variable(gy):
        return _sum(gy, axis=(0, 2, 3))
    n, c = gy.shape[:2]
    return get_array_module(gy).einsum("ncp->c", gy.reshape(n, c, -1))


def _index_dtype(offsets: int):
    if offsets <= 256:
        return np.uint8
    return np.uint16 if offsets <= 65536 else np.int32


def _max_pool(x: Any, geom: tuple, want_index: bool) -> tuple:
    """Max pooling (zero padding, as DeZero); returns ``(y, indexes)``, ``indexes`` the first argmax offset."""
    kh, kw, sh, sw, ph, pw, oh, ow = geom
    xp = get_array_module(x)
    offsets = kh * kw
    if offsets > _LOOP_MAX_OFFSETS:  # large kernels: materialise the windows
        n, c = x.shape[:2]
        col = im2col_array(x, (kh, kw), (sh, sw), (ph, pw), to_matrix=False).reshape(n, c, offsets, oh, ow)
        idx = col.argmax(axis=2)
        y = xp.take_along_axis(col, idx[:, :, None], axis=2)[:, :, 0]
        return y, (idx.astype(_index_dtype(offsets)) if want_index else None)
    views = list(_windows(_pad(x, ph, pw), kh, kw, sh, sw, oh, ow))
    if offsets == 1:
        y = views[0].copy()
        return y, (xp.zeros(y.shape, dtype=np.uint8) if want_index else None)
    y = xp.maximum(views[0], views[1])
    for v in views[2:]:
        xp.maximum(y, v, out=y)
    if not want_index:
        return y, None
    # index = the number of leading offsets whose value is not the maximum
    run = xp.not_equal(views[0], y)
    idx = run.astype(_index_dtype(offsets))
    for v in views[1:-1]:
        xp.logical_and(run, xp.not_equal(v, y), out=run)
        idx += run
    return y, idx


def _max_pool_grad(gy: Any, idx: Any, x_shape: tuple, geom: tuple) -> Any:
    """Scatter ``gy`` to the argmax positions ``idx`` of an input of ``x_shape``.

    One masked product per kernel offset (``gy * (idx == k)``, three times faster than
    ``where``); so a non-finite ``gy`` value also turns the other elements of its window NaN.
    """
    kh, kw, sh, sw, ph, pw, oh, ow = geom
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    overlap = sh < kh or sw < kw
    tiled = (not overlap and sh == kh and sw == kw and ph == 0 and pw == 0
             and h == oh * kh and w == ow * kw)
    alloc = xp.empty if tiled else xp.zeros  # exact tiling: every element is written below
    gx = alloc((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
    for k, v in enumerate(_windows(gx, kh, kw, sh, sw, oh, ow)):
        if overlap:
            v += gy * (idx == k)
        else:
            xp.multiply(gy, idx == k, out=v)
    return _crop(gx, ph, pw, h, w)


def _max_pool_gather(x: Any, idx: Any, geom: tuple) -> Any:
    """``x`` (N, C, H, W) read at the argmax positions ``idx`` of a max pooling: (N, C, OH, OW)."""
    kh, kw, sh, sw, ph, pw, oh, ow = geom
    xp = get_array_module(x)
    y = xp.zeros(idx.shape, dtype=x.dtype)
    for k, v in enumerate(_windows(_pad(x, ph, pw), kh, kw, sh, sw, oh, ow)):
        xp.copyto(y, v, where=(idx == k))
    return y


def _avg_pool(x: Any, geom: tuple) -> Any:
    """Average pooling over zero-padded windows (the divisor is always ``KH * KW``, as DeZero)."""
    kh, kw, sh, sw, ph, pw, oh, ow = geom
    offsets = kh * kw
    scale = 1.0 / offsets
    if offsets > _LOOP_MAX_OFFSETS:
        n, c = x.shape[:2]
        col = im2col_array(x, (kh, kw), (sh, sw), (ph, pw), to_matrix=False)
        y = col.reshape(n, c, offsets, oh, ow).sum(axis=2)
    else:
        views = _windows(_pad(x, ph, pw), kh, kw, sh, sw, oh, ow)
        y = next(views).copy()
        for v in views:
            y += v
    if y.dtype.kind not in "fc":  # integer images: the average is a float
        return y * scale
    y *= scale
    return y


def _avg_pool_grad(gy: Any, x_shape: tuple, geom: tuple) -> Any:
    """The adjoint of ``_avg_pool``: spread ``gy / (KH * KW)`` over each window."""
    kh, kw, sh, sw, ph, pw, oh, ow = geom
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    g = gy * (1.0 / (kh * kw))
    if sh == kh and sw == kw and ph == 0 and pw == 0:  # non-overlapping windows: broadcast
        blocks = xp.broadcast_to(g[:, :, :, None, :, None], (n, c, oh, kh, ow, kw))
        if h == oh * kh and w == ow * kw:
            return blocks.reshape(n, c, h, w)
        gx = xp.zeros((n, c, h, w), dtype=g.dtype)
        gx[:, :, :oh * kh, :ow * kw] = blocks.reshape(n, c, oh * kh, ow * kw)
        return gx
    gx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
    for v in _windows(gx, kh, kw, sh, sw, oh, ow):
        v += g
    return _crop(gx, ph, pw, h, w)


# =============================================================================
# im2col / col2im
# =============================================================================
class Im2col(Function):
    """Extract the patches of an image; the backward is ``col2im``."""

    retain_inputs = ()

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair, pad: IntOrPair, to_matrix: bool) -> None:
        self.kernel_size, self.stride, self.pad, self.to_matrix = kernel_size, stride, pad, to_matrix

    def forward(self, x):
        self.input_shape = x.shape
        return im2col_array(x, self.kernel_size, self.stride, self.pad, self.to_matrix)

    def backward(self, gy):
        return ops.call(Col2im(self.input_shape, self.kernel_size, self.stride, self.pad, self.to_matrix), gy)


@checked(x=ARRAY, kernel_size=PAIR, stride=PAIR, pad=PAIR, to_matrix=BOOL)
def im2col(x: Any, kernel_size: IntOrPair, stride: IntOrPair = 1, pad: IntOrPair = 0,
           to_matrix: bool = True) -> Variable:
    """The patches of ``x`` (N, C, H, W) under a sliding ``kernel_size`` window (zero padding).

    Returns shape ``(N*OH*OW, C*KH*KW)`` when ``to_matrix``, else ``(N, C, KH, KW, OH, OW)``.
    """
    shape = _check_4d("im2col", "x", x)
    _geometry("im2col", shape[2:], kernel_size, stride, pad)
    return Im2col(kernel_size, stride, pad, to_matrix)(x)


class Col2im(Function):
    """Add patches back into an image; the backward is ``im2col``."""

    retain_inputs = ()

    def __init__(self, input_shape: tuple, kernel_size: IntOrPair, stride: IntOrPair, pad: IntOrPair,
                 to_matrix: bool) -> None:
        self.input_shape = tuple(input_shape)
        self.kernel_size, self.stride, self.pad, self.to_matrix = kernel_size, stride, pad, to_matrix

    def forward(self, x):
        return col2im_array(x, self.input_shape, self.kernel_size, self.stride, self.pad, self.to_matrix)

    def backward(self, gy):
        return ops.call(Im2col(self.kernel_size, self.stride, self.pad, self.to_matrix), gy)


@checked(x=ARRAY, input_shape=SHAPE, kernel_size=PAIR, stride=PAIR, pad=PAIR, to_matrix=BOOL)
def col2im(x: Any, input_shape: tuple, kernel_size: IntOrPair, stride: IntOrPair = 1,
           pad: IntOrPair = 0, to_matrix: bool = True) -> Variable:
    """The adjoint of ``im2col``: patches ``x`` summed back into an image of ``input_shape`` (N, C, H, W)."""
    if len(tuple(input_shape)) != 4:
        raise ValueError(f"col2im: input_shape must be (N, C, H, W), got {tuple(input_shape)}")
    _geometry("col2im", tuple(input_shape)[2:], kernel_size, stride, pad)
    return Col2im(input_shape, kernel_size, stride, pad, to_matrix)(x)


# =============================================================================
# conv2d / deconv2d
# =============================================================================
def _bias_grad(need: tuple, gy: Any) -> tuple:
    """``()`` for a function called without a bias, else the bias gradient: ``gy`` summed but over channels."""
    if len(need) == 2:
        return ()
    return (_channel_sum(gy) if need[2] else None,)


class Conv2d(Function):
    """2-D convolution (cross-correlation) of ``x`` (N, C, H, W) with ``W`` (OC, C, KH, KW), plus ``b`` (OC,).

    Keeps ``x`` and ``W`` for backward.
    """

    retain_inputs = (0, 1)
    fresh_gradients = True

    def __init__(self, stride: IntOrPair = 1, pad: IntOrPair = 0) -> None:
        self.stride = pair(stride)
        self.pad = pair(pad)

    def forward(self, x, W, b=None):
        self.kernel_size = W.shape[2:]
        return _conv_forward(x, W, b, self.stride, self.pad)

    def backward(self, gy):
        x, W = self.get_retained_inputs()
        need = self.needs_input_grad
        gx = ops.call(Deconv2d(self.stride, self.pad, x.shape[2:]), gy, W) if need[0] else None
        gW = ops.call(Conv2DGradW(self), x, gy) if need[1] else None
        return (gx, gW) + _bias_grad(need, gy)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Conv."""
        (ph, pw), kernel = self.pad, list(g.shape(inputs[1])[2:])
        g.op("Conv", *[n for n in inputs if n], out=outputs[0], kernel_shape=kernel, strides=list(self.stride),
             pads=[ph, pw, ph, pw])


def _check_conv_args(name: str, x: Any, W: Any, b: Any, transposed: bool = False) -> Tuple[tuple, tuple]:
    """Check ``x`` (N, C, H, W), the filter ``W`` and the bias ``b`` (OC,); return the shapes of ``x`` and ``W``.

    ``W`` is (OC, C, KH, KW), or (C, OC, KH, KW) for a ``transposed`` convolution.
    """
    xs = _check_4d(name, "the input x", x)
    ws = _check_4d(name, "the filter W", W, "(C, OC, KH, KW)" if transposed else "(OC, C, KH, KW)")
    c_axis, oc_axis = (0, 1) if transposed else (1, 0)
    if xs[1] != ws[c_axis]:
        raise ValueError(f"{name}: input has {xs[1]} channels but the filter W expects {ws[c_axis]} "
                         f"(x shape {xs}, W shape {ws})")
    if b is not None and _shape_of(b) != (ws[oc_axis],):
        raise ValueError(f"{name}: the bias b must have shape ({ws[oc_axis]},) (one value per output "
                         f"channel), got {_shape_of(b)}")
    return xs, ws


@checked(x=ARRAY, W=ARRAY, b=OPTIONAL_ARRAY, stride=PAIR, pad=PAIR)
def conv2d(x: Any, W: Any, b: Any = None, stride: IntOrPair = 1, pad: IntOrPair = 0) -> Variable:
    """2-D convolution: ``x`` (N, C, H, W), ``W`` (OC, C, KH, KW), optional ``b`` (OC,) -> (N, OC, OH, OW).

    ``OH = (H + 2 * pad - KH) // stride + 1`` (likewise ``OW``); padding is with zeros.
    """
    xs, ws = _check_conv_args("conv2d", x, W, b)
    _geometry("conv2d", xs[2:], ws[2:], stride, pad)
    f = Conv2d(stride, pad)
    return f(x, W) if b is None else f(x, W, b)


class Deconv2d(Function):
    """Transposed convolution of ``x`` (N, C, H, W) with ``W`` (C, OC, KH, KW), plus ``b`` (OC,).

    Keeps ``x`` and ``W`` for backward.
    """

    retain_inputs = (0, 1)
    fresh_gradients = True

    def __init__(self, stride: IntOrPair = 1, pad: IntOrPair = 0, outsize: Any = None) -> None:
        self.stride = pair(stride)
        self.pad = pair(pad)
        self.outsize = outsize

    def _out_hw(self, x_shape: tuple, kernel: tuple) -> tuple:
        if self.outsize is not None:
            return tuple(int(s) for s in pair(self.outsize))
        return (get_deconv_outsize(x_shape[2], kernel[0], self.stride[0], self.pad[0]),
                get_deconv_outsize(x_shape[3], kernel[1], self.stride[1], self.pad[1]))

    def forward(self, x, W, b=None):
        self.kernel_size = W.shape[2:]
        y = _conv_grad_x(x, W, self._out_hw(x.shape, W.shape[2:]), self.stride, self.pad)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        x, W = self.get_retained_inputs()
        need = self.needs_input_grad
        gx = ops.call(Conv2d(self.stride, self.pad), gy, W) if need[0] else None
        gW = ops.call(Conv2DGradW(self), gy, x) if need[1] else None
        return (gx, gW) + _bias_grad(need, gy)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): ConvTranspose, ``output_padding`` giving the recorded size."""
        (ph, pw), (sh, sw), kernel = self.pad, self.stride, list(g.shape(inputs[1])[2:])
        h, w = g.shape(inputs[0])[2:]
        oh, ow = g.shape(outputs[0])[2:]
        extra = [oh - ((h - 1) * sh - 2 * ph + kernel[0]), ow - ((w - 1) * sw - 2 * pw + kernel[1])]
        g.op("ConvTranspose", *[n for n in inputs if n], out=outputs[0], kernel_shape=kernel, strides=[sh, sw],
             pads=[ph, pw, ph, pw], output_padding=extra)


@checked(x=ARRAY, W=ARRAY, b=OPTIONAL_ARRAY, stride=PAIR, pad=PAIR, outsize=OPTIONAL_PAIR)
def deconv2d(x: Any, W: Any, b: Any = None, stride: IntOrPair = 1, pad: IntOrPair = 0,
             outsize: Optional[IntOrPair] = None) -> Variable:
    """Transposed convolution: ``x`` (N, C, H, W), ``W`` (C, OC, KH, KW), optional ``b`` (OC,) -> (N, OC, OH, OW).

    ``OH = stride * (H - 1) + KH - 2 * pad`` unless ``outsize`` gives ``(OH, OW)``;
    ``deconv2d`` is the gradient of ``conv2d`` with respect to its input.
    """
    xs, ws = _check_conv_args("deconv2d", x, W, b, transposed=True)
    kh, kw = ws[2:]
    sh, sw = _int_pair("deconv2d", "stride", stride, 1)
    ph, pw = _int_pair("deconv2d", "pad", pad, 0)
    if outsize is None:
        out_hw = (get_deconv_outsize(xs[2], kh, sh, ph), get_deconv_outsize(xs[3], kw, sw, pw))
    else:
        out_hw = _int_pair("deconv2d", "outsize", outsize, 1)
    if out_hw[0] < 1 or out_hw[1] < 1:
        raise ValueError(f"deconv2d: the output size {out_hw} is not positive "
                         f"(input {xs[2:]}, kernel {(kh, kw)}, stride {(sh, sw)}, pad {(ph, pw)})")
    geom = _geometry("deconv2d", out_hw, (kh, kw), (sh, sw), (ph, pw))
    if (geom[6], geom[7]) != tuple(xs[2:]):
        raise ValueError(f"deconv2d: outsize {out_hw} does not fit the input: a convolution of that size "
                         f"with kernel {(kh, kw)}, stride {(sh, sw)}, pad {(ph, pw)} gives "
                         f"{(geom[6], geom[7])}, not the input's {tuple(xs[2:])}")
    f = Deconv2d((sh, sw), (ph, pw), outsize)
    return f(x, W) if b is None else f(x, W, b)


class Conv2DGradW(Function):
    """The filter gradient of ``conv2d``: ``x`` (N, C, H, W) and ``gy`` (N, OC, OH, OW) -> (OC, C, KH, KW).

    Made, as in DeZero, from the ``Conv2d`` (or ``Deconv2d``) whose filter it
    differentiates: its kernel size, stride and padding.  Linear in each input;
    its own backward is a ``Deconv2d`` and a ``Conv2d``.
    """

    retain_inputs = (0, 1)

    def __init__(self, conv2d: Any) -> None:
        self.kernel_size = tuple(conv2d.kernel_size)
        self.stride = pair(conv2d.stride)
        self.pad = pair(conv2d.pad)

    def forward(self, x, gy):
        return _conv_grad_W(x, gy, self.kernel_size, self.stride, self.pad)

    def backward(self, ggW):
        x, gy = self.get_retained_inputs()
        need = self.needs_input_grad
        gx = ops.call(Deconv2d(self.stride, self.pad, x.shape[2:]), gy, ggW) if need[0] else None
        ggy = ops.call(Conv2d(self.stride, self.pad), x, ggW) if need[1] else None
        return gx, ggy


# =============================================================================
# pooling / average_pooling
# =============================================================================
class _Pool2d(Function):
    """What the pooling functions share: the window arguments, and ``_setup`` for forward."""

    retain_inputs = ()
    _name = "pooling"  # for the error messages

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair = 1, pad: IntOrPair = 0) -> None:
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad

    def _setup(self, x: Any) -> None:
        """Record the input's shape (``input_shape``, as DeZero) and the window geometry (``geom``)."""
        self.input_shape = x.shape
        self.geom = _geometry(self._name, x.shape[2:], self.kernel_size, self.stride, self.pad)


class Pooling(_Pool2d):
    """Max pooling; keeps only the argmax offsets (``uint8`` for kernels up to 16x16)."""

    fresh_gradients = True

    def forward(self, x):
        self._setup(x)
        y, idx = _max_pool(x, self.geom, want_index=_enable_backprop.get())
        if idx is not None:
            self.save_for_backward(idx)
        return y

    @property
    def indexes(self) -> Any:
        """The argmax offset of each output element within its window (row-major), or None once released."""
        return None if self.saved is None else self.saved[0]

    def backward(self, gy):
        return ops.call(Pooling2DGrad(self), gy)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Pad with zeros (as DeZero), then MaxPool."""
        g.pool("MaxPool", inputs[0], self.geom, outputs[0])


class _FromMaxPooling(Function):
    """Base of the gradient functions of max pooling, made (as in DeZero) from the pooling they
    differentiate: its input shape, window geometry and argmax ``indexes``.

    The indexes are handed to ``save_for_backward`` by ``forward``, so they are freed with the
    rest of what the graph keeps.
    """

    retain_inputs = ()

    def __init__(self, mpool2d: Any) -> None:
        self.input_shape, self.geom = mpool2d.input_shape, mpool2d.geom
        self._indexes = mpool2d.indexes

    @property
    def indexes(self) -> Any:
        """The argmax offset of each pooled element, or None once released."""
        return self.saved[0] if self.saved is not None else self._indexes

    def _take_indexes(self) -> Any:
        indexes, self._indexes = self._indexes, None
        self.save_for_backward(indexes)
        return indexes


class Pooling2DGrad(_FromMaxPooling):
    """The gradient of max pooling: scatter ``gy`` to the argmax positions (linear in ``gy``)."""

    def forward(self, gy):
        return _max_pool_grad(gy, self._take_indexes(), self.input_shape, self.geom)

    def backward(self, ggx):
        return ops.call(Pooling2DWithIndexes(self), ggx)


class Pooling2DWithIndexes(_FromMaxPooling):
    """Read an image at the argmax positions of a max pooling (the adjoint of ``Pooling2DGrad``)."""

    def forward(self, x):
        return _max_pool_gather(x, self._take_indexes(), self.geom)

    def backward(self, gy):
        return ops.call(Pooling2DGrad(self), gy)


@checked(x=ARRAY, kernel_size=PAIR, stride=PAIR, pad=PAIR)
def pooling(x: Any, kernel_size: IntOrPair, stride: IntOrPair = 1, pad: IntOrPair = 0) -> Variable:
    """Max pooling of ``x`` (N, C, H, W) over ``kernel_size`` windows -> (N, C, OH, OW).

    As in DeZero, padding is with zeros (PyTorch pads with -inf: the two differ only
    where a padded window holds only negative values).  The gradient goes to the
    first maximum of each window.
    """
    shape = _check_4d("pooling", "x", x)
    _geometry("pooling", shape[2:], kernel_size, stride, pad)
    return Pooling(kernel_size, stride, pad)(x)


class AveragePooling(_Pool2d):
    """Average pooling; keeps nothing for backward."""

    float_inputs = (0,)
    _name = "average_pooling"

    def forward(self, x):
        self._setup(x)
        return _avg_pool(x, self.geom)

    def backward(self, gy):
        return ops.call(AveragePooling2DGrad(self), gy)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Pad with zeros, then AveragePool (the divisor is always KH * KW)."""
        g.pool("AveragePool", inputs[0], self.geom, outputs[0])


class AveragePooling2DGrad(Function):
    """The gradient of average pooling, made from the ``AveragePooling`` it differentiates
    (linear in ``gy``; its adjoint is average pooling)."""

    retain_inputs = ()

    def __init__(self, apool2d: Any) -> None:
        self.input_shape, self.geom = apool2d.input_shape, apool2d.geom

    def forward(self, gy):
        return _avg_pool_grad(gy, self.input_shape, self.geom)

    def backward(self, ggx):
        kh, kw, sh, sw, ph, pw = self.geom[:6]
        return ops.call(AveragePooling((kh, kw), (sh, sw), (ph, pw)), ggx)


@checked(x=ARRAY, kernel_size=PAIR, stride=PAIR, pad=PAIR)
def average_pooling(x: Any, kernel_size: IntOrPair, stride: IntOrPair = 1, pad: IntOrPair = 0) -> Variable:
    """Average pooling of ``x`` (N, C, H, W) over ``kernel_size`` windows -> (N, C, OH, OW).

    Padded zeros count in the average (the divisor is always ``KH * KW``), as in DeZero.
    """
    shape = _check_4d("average_pooling", "x", x)
    _geometry("average_pooling", shape[2:], kernel_size, stride, pad)
    return AveragePooling(kernel_size, stride, pad)(x)


# =============================================================================
# [simple versions] built from im2col and other differentiable functions
# =============================================================================
@checked(x=ARRAY, W=ARRAY, b=OPTIONAL_ARRAY, stride=PAIR, pad=PAIR)
def conv2d_simple(x: Any, W: Any, b: Any = None, stride: IntOrPair = 1, pad: IntOrPair = 0) -> Variable:
    """``conv2d`` written as ``im2col`` + ``linear`` (DeZero's teaching version); same result."""
    xs, ws = _check_conv_args("conv2d_simple", x, W, b)
    n = xs[0]
    oc, _, kh, kw = ws
    geom = _geometry("conv2d_simple", xs[2:], (kh, kw), stride, pad)
    oh, ow = geom[6], geom[7]
    col = im2col(x, (kh, kw), stride, pad, to_matrix=True)      # (N*OH*OW, C*KH*KW)
    t = linear(col, W.reshape(oc, -1).T, b)                       # (N*OH*OW, OC)
    return t.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2)


@checked(x=ARRAY, kernel_size=PAIR, stride=PAIR, pad=PAIR)
def pooling_simple(x: Any, kernel_size: IntOrPair, stride: IntOrPair = 1, pad: IntOrPair = 0) -> Variable:
    """``pooling`` written as ``im2col`` + ``max`` (DeZero's teaching version); same result."""
    n, c = _check_4d("pooling_simple", "x", x)[:2]
    kh, kw, _, _, _, _, oh, ow = _geometry("pooling_simple", tuple(x.shape[2:]), kernel_size, stride, pad)
    col = im2col(x, kernel_size, stride, pad, to_matrix=True)   # (N*OH*OW, C*KH*KW)
    y = col.reshape(-1, kh * kw).max(axis=1)
    return y.reshape(n, oh, ow, c).transpose(0, 3, 1, 2)
