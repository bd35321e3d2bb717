"""``Builder``: what a function's ``to_onnx(g, inputs, outputs)`` writes its ONNX form with.

A function's ONNX form is a method next to its gradient::

    class ReLU(Function):
        ...
        def to_onnx(self, g, inputs, outputs):
            g.op("Relu", inputs[0], out=outputs[0])

``inputs`` are the names of the values the function read (``""`` for a missing
optional input such as ``b=None``), ``outputs`` the names its results must take.
``g.op`` adds one node; ``g.const`` an initializer; ``g.shape`` / ``g.dtype`` tell
the example's shape and dtype of any value, so a form can decide statically.
This module needs no ``onnx``; ``leafgrad.onnx.export`` turns the nodes into a model.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from leafgrad.cuda import array_types, as_numpy

__all__ = ["Builder", "OPSET"]

#: The ONNX opset the exporter writes (ONNX Runtime 1.14 and later run it).
OPSET = 18


class Builder:
    """Collects nodes and initializers; knows each value's example shape and dtype, and the batch size."""

    def __init__(self, batch: Optional[int] = None) -> None:
        self.nodes: List[Tuple[str, list, list, dict]] = []   # (op_type, inputs, outputs, attributes)
        self.initializers: Dict[str, np.ndarray] = {}
        self.meta: Dict[str, Tuple[tuple, Any]] = {}          # value name -> (shape, dtype)
        self.batch = batch                                    # the example's batch size (dynamic), or None
        self._count: Dict[str, int] = {}
        self._consts: Dict[Any, str] = {}

    # ---- names ------------------------------------------------------------------------
    def fresh(self, stem: str) -> str:
        """A new value name starting with ``stem``."""
        n = self._count.get(stem, 0)
        self._count[stem] = n + 1
        return f"{stem}_{n}"

    def shape(self, name: str) -> tuple:
        """The shape of value ``name`` in the example forward pass."""
        return self.meta[name][0]

    def dtype(self, name: str) -> np.dtype:
        """The dtype of value ``name`` in the example forward pass."""
        return np.dtype(self.meta[name][1])

    # ---- nodes ------------------------------------------------------------------------
    def op(self, op_type: str, *inputs: str, out: Union[None, str, Sequence[str]] = None, n: int = 1,
           **attributes: Any) -> Any:
        """Add node ``op_type(*inputs)``; returns its output name (a list when ``n > 1`` or ``out`` is a list)."""
        if out is None:
            outs = [self.fresh(op_type.lower()) for _ in range(n)]
        else:
            outs = [out] if isinstance(out, str) else list(out)
        self.nodes.append((op_type, list(inputs), outs, attributes))
        return outs if (n > 1 or not isinstance(out, (str, type(None)))) else outs[0]

    def const(self, value: Any, dtype: Any = None, name: Optional[str] = None) -> str:
        """An initializer holding ``value`` (an array or a number; ``dtype`` if given); equal small ones are shared."""
        a = np.asarray(as_numpy(value) if isinstance(value, array_types) else value, dtype=dtype)  # (CuPy too)
        key = None
        if name is None and a.size <= 16:
            key = (a.dtype.str, a.shape, a.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = name or self.fresh("const")
        self.initializers[name] = a
        self.meta[name] = (a.shape, a.dtype)
        if key is not None:
            self._consts[key] = name
        return name

    def scalar(self, c: Any, like: str) -> str:
        """The number ``c`` as a 0-d constant of ``like``'s dtype (so ``x * c`` stays float32)."""
        return self.const(c, dtype=self.dtype(like))

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant (axes, shapes, starts and ends)."""
        return self.const(np.array(list(values), dtype=np.int64).reshape(-1))

    # ---- shapes with a dynamic batch ------------------------------------------------------
    def reshape_target(self, in_shape: tuple, out_shape: tuple) -> List[int]:
        """The ``Reshape`` shape input for ``in_shape -> out_shape`` that keeps the batch axis dynamic.

        The leading axis is copied (``0``) when it is the batch and stays, inferred
        (``-1``) when the batch is folded into it; the other axes are written out.
        """
        out = [int(s) for s in out_shape]
        b = self.batch
        if b is None or not in_shape or not out or in_shape[0] != b:
            return out
        if out[0] == b:
            return [0] + out[1:]
        if out[0] % b == 0 and b > 1:
            return [-1] + out[1:]
        return out

    def expand_target(self, in_shape: tuple, out_shape: tuple) -> List[int]:
        """The ``Expand`` shape for broadcasting ``in_shape`` to ``out_shape``: 1 where the input has the batch."""
        out = [int(s) for s in out_shape]
        k = len(out) - len(in_shape)
        if self.batch is not None and in_shape and k == 0 and in_shape[0] == out[0] == self.batch:
            out[0] = 1
        return out

    def reduce(self, op_type: str, x: str, axes: Any, keepdims: bool, out: str) -> str:
        """``Reduce*`` over ``axes`` (an int, a tuple, or None for all) of value ``x``.

        ``x`` made inside a form (no recorded shape) needs non-negative ``axes``.
        """
        if axes is None or x in self.meta:
            ndim = len(self.shape(x))
            axes = tuple(range(ndim)) if axes is None else axes
        else:
            ndim = 0  # (a value made inside a form: its axes are given non-negative)
        if isinstance(axes, (int, np.integer)):
            axes = (int(axes),)
        axes = [int(a) % ndim if ndim else int(a) for a in axes]
        if not axes:
            return self.op("Identity", x, out=out)
        return self.op(op_type, x, self.ints(axes), out=out, keepdims=int(bool(keepdims)))

    # ---- forms several functions share ------------------------------------------------------
    def softmax(self, x: str, axis: Any, out: str, log: bool) -> str:
        """``Softmax`` / ``LogSoftmax`` over ``axis``; over several axes, spelled out (shifted by the maximum)."""
        ndim = len(self.shape(x))
        axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
        if len(axes) == 1:
            return self.op("LogSoftmax" if log else "Softmax", x, out=out, axis=int(axes[0]))
        axes = self.ints([a % ndim for a in axes])
        z = self.op("Sub", x, self.op("ReduceMax", x, axes, keepdims=1))
        e = self.op("Exp", z)
        total = self.op("ReduceSum", e, axes, keepdims=1)
        if log:
            return self.op("Sub", z, self.op("Log", total), out=out)
        return self.op("Div", e, total, out=out)

    def sum_to(self, x: str, shape: tuple, out: str) -> str:
        """What ``sum_to(x, shape)`` computes: sum the leading extra axes, then (kept) the axes of size 1."""
        x_shape = self.shape(x)
        lead = len(x_shape) - len(shape)
        if lead:
            x = self.op("ReduceSum", x, self.ints(range(lead)), keepdims=0)
        axes = [i for i, s in enumerate(shape) if s == 1 and x_shape[lead + i] != 1]
        if axes:
            return self.op("ReduceSum", x, self.ints(axes), out=out, keepdims=1)
        return self.op("Identity", x, out=out)

    def pool(self, op_type: str, x: str, geom: tuple, out: str) -> str:
        """``MaxPool`` / ``AveragePool`` of ``(kh, kw, sh, sw, ph, pw, ...)``, after padding with zeros (as DeZero)."""
        kh, kw, sh, sw, ph, pw = geom[:6]
        if ph or pw:
            x = self.op("Pad", x, self.ints([0, 0, ph, pw, 0, 0, ph, pw]), self.scalar(0, x))
        return self.op(op_type, x, out=out, kernel_shape=[kh, kw], strides=[sh, sw])

    def get_item(self, x: str, slices: Any, out: str) -> str:
        """``x[slices]`` for ints, slices, None, Ellipsis and at most one integer index array."""
        from leafgrad.onnx import ExportError
        shape = self.shape(x)
        items = list(slices) if isinstance(slices, tuple) else [slices]
        if any(i is Ellipsis for i in items):
            k = items.index(Ellipsis)
            n_axes = sum(1 for i in items if i is not None and i is not Ellipsis)
            items[k:k + 1] = [slice(None)] * (len(shape) - n_axes)
        items += [slice(None)] * (len(shape) - sum(1 for i in items if i is not None))
        starts, ends, axes, steps, squeeze, unsqueeze, gather = [], [], [], [], [], [], None
        axis = out_axis = 0
        for item in items:
            if item is None:
                unsqueeze.append(out_axis)
                out_axis += 1
                continue
            n = shape[axis]
            if isinstance(item, slice):
                start, stop, step = item.indices(n)
                if not (start == 0 and stop == n and step == 1):
                    if step < 0 and stop < 0:
                        stop = -(2 ** 63)  # before the first element, going backwards
                    starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
                out_axis += 1
            elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
                i = int(item) % n
                starts.append(i), ends.append(i + 1), axes.append(axis), steps.append(1)
                squeeze.append(axis)
            elif (isinstance(item, (list, np.ndarray)) and gather is None and np.asarray(item).dtype.kind in "iu"
                  and not unsqueeze):
                gather = (axis, np.asarray(item, dtype=np.int64) % n)
                out_axis += np.asarray(item).ndim
            else:
                raise ExportError(f"leafgrad.onnx.export: GetItem with index {slices!r} has no ONNX form "
                                  "(basic indexes and one integer index array only)")
            axis += 1
        if gather is not None and squeeze:
            raise ExportError(f"leafgrad.onnx.export: GetItem with index {slices!r} has no ONNX form "
                              "(an integer index array mixed with integers)")
        if starts:
            x = self.op("Slice", x, self.ints(starts), self.ints(ends), self.ints(axes), self.ints(steps))
        if gather is not None:
            g_axis, idx = gather
            x = self.op("Gather", x, self.const(idx), axis=g_axis)
        elif squeeze:
            x = self.op("Squeeze", x, self.ints(squeeze))
        if unsqueeze:
            x = self.op("Unsqueeze", x, self.ints(unsqueeze))
        return self.op("Identity", x, out=out)
