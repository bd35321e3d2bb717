"""Shape functions: ``reshape transpose broadcast_to sum_to get_item expand_dims flatten concat stack split``."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from leafgrad import ops, utils
from leafgrad.checks import ARRAY, ARRAYS, AXIS, INT, SECTIONS, SHAPE, checked, normalize_axis, shape_of
from leafgrad.core import Function, Variable, as_variable
from leafgrad.cuda import array_types, get_array_module

__all__ = ["reshape", "transpose", "broadcast_to", "sum_to", "get_item",
           "expand_dims", "flatten", "concat", "stack", "split",
           # DeZero's Function classes, with its constructor arguments
           "Reshape", "Transpose", "GetItem", "GetItemGrad", "BroadcastTo", "SumTo"]


class Reshape(Function):
    """A new shape for the same elements."""

    retain_inputs = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return ops.reshape(gy, self.x_shape)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Reshape, the batch axis kept dynamic."""
        target = g.reshape_target(g.shape(inputs[0]), g.shape(outputs[0]))
        g.op("Reshape", inputs[0], g.ints(target), out=outputs[0])


def _check_reshape(x_shape: tuple, shape: tuple) -> None:
    size = int(np.prod(x_shape, dtype=np.int64))
    unknown = sum(1 for s in shape if s == -1)
    known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
    ok = unknown <= 1 and all(s >= -1 for s in shape)
    if ok:
        ok = known == size if unknown == 0 else (known > 0 and size % known == 0)
    if not ok:
        raise ValueError(f"reshape: cannot reshape an input of shape {x_shape} ({size} elements) "
                         f"into shape {shape}")


@checked(x=ARRAY, shape=SHAPE)
def reshape(x: Any, shape: Union[int, Sequence[int]]) -> Variable:
    """``x`` with a new ``shape`` (one entry may be -1)."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    x_shape = shape_of(x)
    if x_shape == shape:
        return as_variable(x)
    _check_reshape(x_shape, shape)
    return Reshape(shape)(x)


class Transpose(Function):
    """Permute the axes."""

    retain_inputs = ()

    def __init__(self, axes: Optional[tuple] = None) -> None:
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def _inverse_axes(self):
        if self.axes is None:
            return None
        n = len(self.axes)
        return tuple(np.argsort([a % n for a in self.axes]).tolist())

    def backward(self, gy):
        return ops.transpose(gy, self._inverse_axes())

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Transpose."""
        n = len(g.shape(inputs[0]))
        perm = list(range(n))[::-1] if self.axes is None else [a % n for a in self.axes]
        g.op("Transpose", inputs[0], out=outputs[0], perm=perm)


@checked(x=ARRAY, axes=AXIS)
def transpose(x: Any, axes: Optional[Sequence[int]] = None) -> Variable:
    """``x`` with its axes permuted by ``axes`` (reversed when None; negative axes allowed)."""
    if axes is not None:
        axes = tuple(axes)
        x_shape = shape_of(x)
        norm = [normalize_axis("transpose", a, x_shape) for a in axes]
        if len(norm) != len(x_shape) or sorted(norm) != list(range(len(x_shape))):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the {len(x_shape)} axes "
                             f"of an input of shape {x_shape}")
    return Transpose(axes)(x)


class BroadcastTo(Function):
    """Repeat ``x`` along axes of size 1 (and new leading axes) to reach ``shape``."""

    retain_inputs = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return ops.sum_to(gy, self.x_shape)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Expand."""
        target = g.expand_target(g.shape(inputs[0]), g.shape(outputs[0]))
        g.op("Expand", inputs[0], g.ints(target), out=outputs[0])


def _broadcasts_to(src: tuple, dst: tuple) -> bool:
    """True when an array of shape ``src`` broadcasts to exactly ``dst``."""
    if len(src) > len(dst):
        return False
    return all(s == d or s == 1 for s, d in zip(src[::-1], dst[::-1]))


@checked(x=ARRAY, shape=SHAPE)
def broadcast_to(x: Any, shape: Union[int, Sequence[int]]) -> Variable:
    """``x`` broadcast to ``shape`` (NumPy's rules)."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    x_shape = shape_of(x)
    if x_shape == shape:
        return as_variable(x)
    if not _broadcasts_to(x_shape, shape):
        raise ValueError(f"broadcast_to: an input of shape {x_shape} cannot be broadcast to shape {shape}")
    return BroadcastTo(shape)(x)


class SumTo(Function):
    """Sum ``x`` down to ``shape`` (the reverse of broadcasting)."""

    retain_inputs = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return utils.sum_to(x, self.shape)

    def backward(self, gy):
        return ops.broadcast_to(gy, self.x_shape)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): ReduceSum over the axes that ``sum_to`` sums."""
        g.sum_to(inputs[0], g.shape(outputs[0]), outputs[0])


@checked(x=ARRAY, shape=SHAPE)
def sum_to(x: Any, shape: Union[int, Sequence[int]]) -> Variable:
    """Sum ``x`` down to ``shape`` (the reverse of broadcasting ``shape`` to ``x.shape``)."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    x_shape = shape_of(x)
    if x_shape == shape:
        return as_variable(x)
    if not _broadcasts_to(shape, x_shape):
        raise ValueError(f"sum_to: an input of shape {x_shape} cannot be summed to shape {shape} "
                         f"(shape {shape} does not broadcast to {x_shape})")
    return SumTo(shape)(x)


class GetItem(Function):
    """``x[slices]``: basic and advanced indexing.

    ``slices`` may hold index arrays (``embed_id``'s ids): ``forward`` keeps them
    for backward with ``save_for_backward``, so they are freed with the rest.
    """

    retain_inputs = ()

    def __init__(self, slices: Any) -> None:
        self.slices = slices

    def forward(self, x):
        slices, self.slices = self.slices, None
        self.save_for_backward(slices)
        self.x_shape = x.shape
        return x[slices]

    def backward(self, gy):
        slices, = self.saved
        return ops.call(GetItemGrad(slices, self.x_shape), gy)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Slice, Squeeze, Unsqueeze and Gather (basic indexes, one index array)."""
        g.get_item(inputs[0], self.saved[0], outputs[0])


_BASIC_INDEX = (slice, int, np.integer, type(None), type(Ellipsis))


def _is_basic(slices: Any) -> bool:
    """True for basic indexing (ints, slices, None, Ellipsis): every element is picked at most once."""
    items = slices if isinstance(slices, tuple) else (slices,)
    return all(isinstance(s, _BASIC_INDEX) and not isinstance(s, (bool, np.bool_)) for s in items)


def _scatter_add(gy, slices, shape):
    """Zeros of ``shape`` with ``gy`` added at ``slices``; repeated indices add up."""
    xp = get_array_module(gy)
    gx = xp.zeros(shape, dtype=gy.dtype)
    if _is_basic(slices):  # no repeats: a plain assignment, much faster than add.at
        gx[slices] = gy
    elif xp is np:
        np.add.at(gx, slices, gy)
    else:  # pragma: no cover - CuPy
        import cupyx  # type: ignore[import-not-found]
        cupyx.scatter_add(gx, slices, gy)
    return gx


class GetItemGrad(Function):
    """The gradient of ``get_item``: scatter-add ``gy`` into zeros of ``in_shape`` (repeated indices add up)."""

    retain_inputs = ()

    def __init__(self, slices: Any, in_shape: tuple) -> None:
        self.slices = slices
        self.in_shape = in_shape

    def forward(self, gy):
        slices, self.slices = self.slices, None
        self.save_for_backward(slices)
        return _scatter_add(gy, slices, self.in_shape)

    def backward(self, ggx):
        slices, = self.saved
        return ops.get_item(ggx, slices)


@checked(x=ARRAY)
def get_item(x: Any, slices: Any) -> Variable:
    """``x[slices]``; the gradient adds up over repeated indices."""
    if isinstance(slices, Variable):
        slices = slices.data
    elif isinstance(slices, list):
        slices = np.asarray(slices)
    return GetItem(slices)(x)


# =============================================================================
# expand_dims / flatten
# =============================================================================
@checked(x=ARRAY, axis=INT)
def expand_dims(x: Any, axis: int) -> Variable:
    """``x`` with a new axis of length 1 inserted at ``axis``.

    A negative ``axis`` counts from the end of the *result*, as in NumPy and
    PyTorch (``expand_dims(x, -1)`` appends an axis); DeZero 0.0.13 used
    ``list.insert`` semantics, which differ only for negative axes.
    """
    x_shape = shape_of(x)
    a = normalize_axis("expand_dims", axis, x_shape, extra=1)
    return reshape(x, x_shape[:a] + (1,) + x_shape[a:])


@checked(x=ARRAY)
def flatten(x: Any) -> Variable:
    """``x`` reshaped to ``(batch, -1)``: everything but the first axis is flattened."""
    x_shape = shape_of(x)
    if len(x_shape) == 0:
        raise ValueError("flatten: needs an input with at least one axis (the batch), got shape ()")
    return reshape(x, (x_shape[0], -1))


# =============================================================================
# concat / stack / split
# =============================================================================
class Concat(Function):
    """Join arrays along an existing axis."""

    retain_inputs = ()

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        self.sections = np.cumsum([x.shape[self.axis] for x in xs])[:-1].tolist()
        return get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        if not self.sections:
            return gy
        bounds = [0] + self.sections + [gy.shape[self.axis]]
        lead = (slice(None),) * self.axis
        return tuple(ops.get_item(gy, lead + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:]))

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Concat."""
        g.op("Concat", *inputs, out=outputs[0], axis=int(self.axis))


def _sequence(name: str, xs: Any) -> list:
    """``xs`` (a list or tuple, checked by ``checked``) with arrays for plain numbers."""
    if len(xs) == 0:
        raise ValueError(f"{name}: needs at least one input, got an empty sequence")
    return [x if isinstance(x, (Variable,) + array_types) else np.asarray(x) for x in xs]


@checked(xs=ARRAYS, axis=INT)
def concat(xs: Sequence[Any], axis: int = 0) -> Variable:
    """Join ``xs`` along an existing ``axis`` (``np.concatenate`` / ``torch.cat``)."""
    xs = _sequence("concat", xs)
    shapes = [shape_of(x) for x in xs]
    if len(shapes[0]) == 0:
        raise ValueError("concat: zero-dimensional inputs cannot be concatenated")
    a = normalize_axis("concat", axis, shapes[0])
    ref = shapes[0][:a] + shapes[0][a + 1:]
    for i, s in enumerate(shapes[1:], 1):
        if len(s) != len(shapes[0]) or s[:a] + s[a + 1:] != ref:
            raise ValueError(f"concat: input {i} has shape {s}, which does not match input 0's shape "
                             f"{shapes[0]} outside axis {a}")
    return Concat(a)(*xs)


class Stack(Function):
    """Join arrays of one shape along a new axis."""

    retain_inputs = ()

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        self.n = len(xs)
        return get_array_module(xs[0]).stack(xs, axis=self.axis)

    def _index(self, i: int) -> tuple:
        return (slice(None),) * self.axis + (i,)

    def backward(self, gy):
        return tuple(ops.get_item(gy, self._index(i)) for i in range(self.n))

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Unsqueeze each, then Concat."""
        axis = g.ints([self.axis])
        g.op("Concat", *[g.op("Unsqueeze", x, axis) for x in inputs], out=outputs[0], axis=int(self.axis))


@checked(xs=ARRAYS, axis=INT)
def stack(xs: Sequence[Any], axis: int = 0) -> Variable:
    """Join ``xs`` (all of one shape) along a new ``axis`` (``np.stack`` / ``torch.stack``)."""
    xs = _sequence("stack", xs)
    shapes = [shape_of(x) for x in xs]
    for i, s in enumerate(shapes[1:], 1):
        if s != shapes[0]:
            raise ValueError(f"stack: input {i} has shape {s}, which differs from input 0's shape {shapes[0]}")
    a = normalize_axis("stack", axis, shapes[0], extra=1)
    return Stack(a)(*xs)


class Split(Function):
    """Cut an array into pieces along ``axis`` at the given indices; one output per piece."""

    retain_inputs = ()

    def __init__(self, indices: list, axis: int) -> None:
        self.indices = indices
        self.axis = axis

    def forward(self, x):
        ys = tuple(get_array_module(x).split(x, self.indices, axis=self.axis))
        self.pieces = [(y.shape, y.dtype) for y in ys]
        return ys

    def backward(self, *gys):
        if len(gys) == 1:
            return gys[0]
        some = next(g for g in gys if g is not None)
        xp = get_array_module(ops.data(some))
        # a piece that no gradient reached contributes zeros
        gys = [xp.zeros(shape, dtype) if g is None else g for g, (shape, dtype) in zip(gys, self.pieces)]
        return ops.concat(gys, self.axis)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Split into the recorded sizes."""
        sizes = g.ints([shape[self.axis] for shape, _ in self.pieces])
        g.op("Split", inputs[0], sizes, out=list(outputs), axis=int(self.axis))


@checked(x=ARRAY, indices_or_sections=SECTIONS, axis=INT)
def split(x: Any, indices_or_sections: Union[int, Sequence[int]], axis: int = 0) -> list:
    """Cut ``x`` along ``axis`` into a list of Variables, with NumPy's semantics (``np.split``).

    An int ``n`` cuts into ``n`` equal pieces (the axis length must divide by
    ``n``); a sequence of indices cuts before each index.
    """
    x_shape = shape_of(x)
    if len(x_shape) == 0:
        raise ValueError("split: a zero-dimensional input cannot be split")
    a = normalize_axis("split", axis, x_shape)
    length = x_shape[a]
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        if n <= 0 or length % n != 0:
            raise ValueError(f"split: axis {a} of length {length} (input shape {x_shape}) cannot be split "
                             f"into {n} equal sections")
        step = length // n
        indices = [step * i for i in range(1, n)]
    else:
        indices = [int(i) for i in indices_or_sections]
    ys = Split(indices, a)(x)
    return ys if isinstance(ys, list) else [ys]
