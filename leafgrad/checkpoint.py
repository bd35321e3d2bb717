"""Gradient checkpointing: ``checkpoint(fn, *args)`` trades compute for memory.

``y = checkpoint(fn, x)`` gives the same ``y`` and the same gradients as
``y = fn(x)``, but the intermediate arrays of ``fn`` do not live until
backward: only the inputs of ``fn`` (the segment boundary) are kept, and the
segment is computed again, with graph recording on, when backward reaches it.

How it works:

* The first run records ``fn``'s graph on detached copies of its inputs, only
  long enough to find the leaf Variables (parameters) that ``fn`` reads; that
  graph and its intermediates are dropped before ``checkpoint`` returns.  The
  result is one graph node, a :class:`Checkpoint` function, whose inputs are
  the Variable arguments and those parameters.  So the backward engine treats
  the parameters like any other input: ``backward()`` stores their ``.grad``,
  ``leafgrad.grad(...)`` returns it and stores nothing.
* Its backward recomputes ``fn`` with NumPy's global random state set back to
  what it was before the first run (so ``dropout`` inside draws the same mask)
  and with the same ``Config.train``, then differentiates the recomputed
  segment.  The random state is put back afterwards: the recomputation
  consumes no random numbers as far as the caller can tell.

* On the GPU, CuPy's generator cannot be read back and restored as NumPy's
  can.  So, when CuPy is installed, both runs of ``fn`` draw CuPy's random
  numbers from a private generator seeded from NumPy's state at the first run:
  the recomputation draws the same numbers as the first run, and the
  gradients are exact for the forward that ran.  (``fn``'s CuPy draws then
  differ from those it would make without ``checkpoint``, and they do not
  advance CuPy's global generator.)

Limits: a Variable that needs a gradient must reach ``fn`` as an argument or be
a leaf (a ``Parameter``); a non-leaf Variable that ``fn`` reads from a closure
is not supported.  ``create_graph=True`` (double backward) through a
checkpoint raises ``RuntimeError``.  A ``np.random.Generator`` of the user's is
not restored.
"""
from __future__ import annotations

import contextlib
import zlib
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from leafgrad import graph, ops
from leafgrad.config import _enable_backprop, _train, using_config
from leafgrad.core import Function, Variable
from leafgrad.cuda import array_types, cupy
from leafgrad.engine import run_backward

__all__ = ["checkpoint", "Checkpoint"]


class Checkpoint(Function):
    """The graph node of a checkpointed segment; made by :func:`checkpoint`, not by users.

    Inputs: the Variable arguments of ``fn`` (positions ``0 .. n_args-1``), then
    the leaf Variables ``fn`` reads.  Keeps only the arguments' arrays.
    """

    retain_inputs = ()

    def __init__(self, fn: Callable, args: tuple, var_positions: list, leaves: list,
                 outputs: tuple, rng_state: Any, train: bool, gpu_seed: Optional[int] = None) -> None:
        self.fn = fn
        self.var_positions = var_positions   # positions in args of the Variable arguments
        # Non-Variable arguments stay here as given; the Variables are not held (only their
        # arrays, in ``saved``), so this node pins nothing of the graph above it.
        self.args = tuple(None if i in var_positions else a for i, a in enumerate(args))
        self.leaves = leaves
        self._precomputed = outputs
        self.rng_state = rng_state
        self.gpu_seed = gpu_seed
        self.train = train

    def forward(self, *xs: Any) -> Any:
        # The outputs were computed by the first run; keep the arguments' arrays for the recomputation.
        self.save_for_backward(*xs[:len(self.var_positions)])
        ys = self._precomputed
        self._precomputed = None
        return ys[0] if len(ys) == 1 else ys

    def backward(self, *gys: Any) -> tuple:
        if ops.is_variable(*gys):
            raise RuntimeError("checkpoint: double backward (create_graph=True) through a "
                               "checkpointed segment is not supported; call fn without checkpoint")
        if self.saved is None:
            raise RuntimeError("checkpoint: the segment's saved inputs were released by a previous "
                               "backward; pass retain_graph=True to the first backward() to keep them")
        n = len(self.var_positions)
        needs = self.needs_input_grad
        args = list(self.args)
        detached = []
        for k, (pos, data) in enumerate(zip(self.var_positions, self.saved)):
            v = Variable(data)
            v.requires_grad = needs[k]
            args[pos] = v
            detached.append(v)

        after = np.random.get_state()
        np.random.set_state(self.rng_state)
        try:
            with using_config("enable_backprop", True), using_config("train", self.train), \
                    _gpu_random(self.gpu_seed):
                outs = self.fn(*args)
        finally:
            np.random.set_state(after)
        outs = _as_outputs(outs)
        if len(outs) != len(gys):
            raise RuntimeError(f"checkpoint: fn returned {len(outs)} outputs on recomputation, "
                               f"{len(gys)} the first time")

        wanted = [v for k, v in enumerate(detached) if needs[k]]
        wanted += [leaf for k, leaf in enumerate(self.leaves) if needs[n + k]]
        gxs: list = [None] * (n + len(self.leaves))
        if wanted:
            # Outputs that received no gradient, or that depend on nothing that needs one, are skipped.
            pairs = [(y, g) for y, g in zip(outs, gys)
                     if g is not None and (y.creator is not None or y.requires_grad)]
            grads = run_backward([y for y, _ in pairs], [g for _, g in pairs],
                                 inputs=wanted) if pairs else [None] * len(wanted)
            it = iter(grads)
            for k in range(len(gxs)):
                if needs[k]:
                    g = next(it)
                    gxs[k] = None if g is None else g.data
        return tuple(gxs)

    def _release(self) -> None:
        super()._release()
        self.fn = None
        self.args = None
        self.leaves = None
        self.rng_state = None


def gpu_seed_from(rng_state: tuple) -> int:
    """A seed for CuPy's generator derived from NumPy's state: reproducible, and it draws nothing."""
    return zlib.crc32(np.asarray(rng_state[1]).tobytes()) ^ int(rng_state[2])


@contextlib.contextmanager
def _gpu_random(seed: Optional[int]) -> Iterator[None]:
    """Inside the block CuPy draws from a private generator seeded with ``seed`` (nothing without CuPy)."""
    if seed is None:
        yield
        return
    before = cupy.random.get_random_state()
    cupy.random.set_random_state(cupy.random.RandomState(seed))
    try:
        yield
    finally:
        cupy.random.set_random_state(before)


def _as_outputs(outs: Any) -> tuple:
    """``fn``'s result as a tuple of Variables (arrays are wrapped)."""
    if isinstance(outs, (tuple, list)):
        items = tuple(outs)
    else:
        items = (outs,)
    result = []
    for y in items:
        if isinstance(y, Variable):
            result.append(y)
        elif isinstance(y, array_types):
            result.append(Variable(y))
        else:
            raise TypeError("checkpoint: fn must return a Variable or a tuple of Variables, "
                            f"got {type(y).__name__}")
    return tuple(result)


def checkpoint(fn: Callable[..., Any], *args: Any) -> Union[Variable, tuple]:
    """Run ``fn(*args)`` keeping none of its intermediates; recompute them during backward.

    ``args`` may mix Variables, arrays and other values; only Variable
    arguments (and the parameters ``fn`` reads) receive gradients.  ``fn``
    returns a Variable or a tuple of Variables; so does ``checkpoint``.
    Gradients equal those of ``fn(*args)`` exactly, dropout included: the
    recomputation starts from the same NumPy random state.
    """
    if not callable(fn):
        raise TypeError(f"checkpoint: fn must be callable, got {type(fn).__name__}")
    if not _enable_backprop.get():  # nothing will be differentiated: just run it
        return fn(*args)

    var_positions = [i for i, a in enumerate(args) if isinstance(a, Variable)]
    first_args = list(args)
    detached = []
    for pos in var_positions:
        a = args[pos]
        v = Variable(a.data, a.name)
        v.requires_grad = a.requires_grad or a.creator is not None
        first_args[pos] = v
        detached.append(v)

    rng_state = np.random.get_state()
    train = _train.get()
    gpu_seed = gpu_seed_from(rng_state) if cupy is not None else None
    with _gpu_random(gpu_seed):
        raw = fn(*first_args)
    single = not isinstance(raw, (tuple, list))
    outs = _as_outputs(raw)
    arguments = {id(v) for v in detached}
    leaves = [leaf for leaf in graph.leaves_of(outs) if id(leaf) not in arguments]
    out_data = tuple(y.data for y in outs)
    del raw, outs, first_args, detached  # the segment's graph and intermediates die here

    func = Checkpoint(fn, args, var_positions, leaves, out_data, rng_state, train, gpu_seed)
    ys = func(*[args[p] for p in var_positions], *leaves)
    if single:
        return ys
    return (ys,) if isinstance(ys, Variable) else tuple(ys)
