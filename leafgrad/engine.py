"""The backward walk: ``run_backward`` (behind ``Variable.backward``) and ``grad``.

The walk, in :func:`_walk`, is a loop: take the waiting function of the
largest generation with its output gradients, run its gradient formula, send
the input gradients along its edges, free what it kept.  Where gradients wait
and how edges are followed is :mod:`leafgrad.graph`'s business
(:class:`~leafgrad.graph.PendingGradients`); the loop never recurses, so a
chain of a million functions goes backward without ``RecursionError``.

Two walks run the same formulas:

* first order (``create_graph=False``): graph recording is off and a declared
  function's ``backward`` gets plain arrays (a book-style one gets Variables
  and its results are unwrapped);
* recorded (``create_graph=True``): recording is on and ``backward`` gets
  Variables, so the gradients are themselves graphs that can be
  differentiated again.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Optional, Sequence

import numpy as np

from leafgrad import graph
from leafgrad.config import _enable_backprop
from leafgrad.core import _LEGACY_PROMOTION, Function, Variable
from leafgrad.cuda import array_types, get_array_module

__all__ = ["run_backward", "grad", "register_post_accumulate_grad_hook", "HookHandle"]


def run_backward(outputs: Sequence[Variable], grad_outputs: Sequence[Any], *,
                 retain_grad: bool = False, create_graph: bool = False,
                 retain_graph: Optional[bool] = None,
                 inputs: Optional[Sequence[Variable]] = None) -> Optional[list]:
    """Propagate gradients from ``outputs`` back through the graph.

    With ``inputs`` None, leaf gradients are accumulated into ``.grad`` (and
    intermediate ones too when ``retain_grad``).  With ``inputs`` given, nothing
    is stored: the gradients of those Variables are returned as a list.
    """
    if retain_graph is None:
        retain_graph = create_graph
    token = _enable_backprop.set(bool(create_graph))
    try:
        return _walk(outputs, grad_outputs, retain_grad, create_graph, retain_graph, inputs)
    finally:
        _enable_backprop.reset(token)


def _walk(outputs, grad_outputs, retain_grad, create_graph, retain_graph, inputs):
    capture = _Captured(inputs) if inputs is not None else None
    stored: set = set()  # leaf gradient arrays already handed to a .grad (see _own)

    def store(leaf: Variable, g: Any) -> None:
        _store_leaf(leaf, g, create_graph, stored)

    # Leaves with post-accumulate hooks get their gradient as soon as it is final.
    hooked = graph.leaf_edge_counts(outputs, _has_hook) if _HOOKS and capture is None else None
    pending = graph.PendingGradients(track_scratch=not (create_graph or retain_grad or capture),
                                     on_leaf_done=store, leaf_edges=hooked)
    pending.send([graph.edge_to(y) for y in outputs],
                 _seeds(outputs, grad_outputs, create_graph, clear=capture is None))
    for f, gys in pending:  # the waiting function of the largest generation, with its gradients
        if retain_grad:
            _keep_output_grads(f, gys, create_graph)
        if capture is not None:
            capture.take(f, gys)
        gxs = _run_formula(f, gys, create_graph, pending.scratch)
        pending.send(f._edges, gxs, f.fresh_gradients, forget_leaves=not retain_graph)
        if not retain_graph:  # free what it kept, now that it has been used
            f._release()

    if capture is not None:
        return capture.results(pending.leaves, create_graph)
    for leaf, g in pending.leaves.items():
        store(leaf, g)
    return None


def _seeds(outputs: Sequence[Variable], grad_outputs: Sequence[Any], create_graph: bool,
           clear: bool) -> list:
    """The gradients the walk starts from: ``grad_outputs``, ones where None."""
    seeds = []
    for y, gy in zip(outputs, grad_outputs):
        if gy is None:
            gy = get_array_module(y.data).ones_like(y.data)
        seeds.append(_as_grad(gy, create_graph))
        if clear and y.creator is not None:
            y.grad = None  # it was the seed; it comes back when retain_grad
    return seeds


def _run_formula(f: Function, gys: list, create_graph: bool, scratch: set) -> tuple:
    """Run ``f``'s gradient formula on its output gradients; return one input gradient per edge.

    ``scratch``: ids of gradient arrays that only the walk holds, waiting for a
    function that ``overwrites_gy``: that function may write its result into its ``gy``.
    """
    if f.retain_inputs is None:  # written the book's way: backward on Variables
        gxs = _book_style_backward(f, gys, create_graph)
    elif scratch and id(gys[0]) in scratch:
        scratch.discard(id(gys[0]))  # handed over: no longer the walk's alone
        f.may_overwrite_gy = True
        try:
            gxs = f.backward(*gys)
        finally:
            f.may_overwrite_gy = False
    else:
        gxs = f.backward(*gys)
    if type(gxs) is not tuple:
        gxs = (gxs,)
    if len(gxs) != len(f._edges):
        raise ValueError(f"{type(f).__name__}.backward returned {len(gxs)} gradients "
                         f"for {len(f._edges)} inputs")
    if create_graph or f._unwrap_gradients:
        gxs = tuple([_as_grad(g, create_graph) for g in gxs])
    if _LEGACY_PROMOTION and not create_graph:
        gxs = _keep_input_dtypes(f, gxs, gys)
    return gxs


def _book_style_backward(f: Function, gys: list, create_graph: bool) -> tuple:
    """``backward`` on Variables, as the book writes it: missing gradients are zeros."""
    if len(gys) > 1 and any(g is None for g in gys):
        gys = _fill_missing(f, gys)
    if create_graph:
        return f.backward(*gys)
    return f.backward(*[_wrap(g) for g in gys])  # recording is off: _run_formula unwraps the results


def _wrap(g: Any) -> Variable:
    """A gradient array as a Variable (NumPy turns 0-d results into scalars: make them arrays again)."""
    return Variable(g if isinstance(g, array_types) else np.asarray(g))


def _as_grad(g: Any, create_graph: bool) -> Any:
    """A gradient as the walk carries it: a Variable when recording, else an array (or None)."""
    if create_graph:
        return g if g is None or isinstance(g, Variable) else _wrap(g)
    if type(g) is np.ndarray or g is None:
        return g
    if isinstance(g, Variable):
        return g.data
    return g if isinstance(g, array_types) else np.asarray(g)


def _fill_missing(f: Function, gys: list) -> list:
    """Zeros for the outputs of a multi-output function that received no gradient."""
    present = next(g for g in gys if g is not None)
    xp = get_array_module(present)
    like_variable = isinstance(present, Variable)
    filled = []
    for g, (shape, dtype) in zip(gys, f._output_meta):
        if g is None:
            g = xp.zeros(shape, dtype)
            if like_variable:
                g = Variable(g)
        filled.append(g)
    return filled


def _keep_output_grads(f: Function, gys: list, create_graph: bool) -> None:
    """``retain_grad``: store the gradients of ``f``'s outputs that are still alive in their ``.grad``."""
    for ref, g in zip(f.outputs, gys):
        y = ref()
        if y is not None and g is not None:
            g = g if create_graph else _wrap(g)
            y.grad = g if y.grad is None else y.grad + g


class _Captured:
    """What ``grad()`` returns: the gradients of its ``inputs``, taken as the walk passes them."""

    def __init__(self, inputs: Sequence[Variable]) -> None:
        self.inputs = inputs
        self.found: list = [None] * len(inputs)
        self.slots: dict = {}  # id(creator) -> {output index: [positions in inputs]}
        for pos, x in enumerate(inputs):
            if x.creator is not None:
                self.slots.setdefault(id(x.creator), {}).setdefault(x._output_index, []).append(pos)

    def take(self, f: Function, gys: list) -> None:
        """``f`` is about to run: keep the gradients of its outputs that are among the inputs."""
        wanted = self.slots.get(id(f))
        if wanted:
            for slot, positions in wanted.items():
                for pos in positions:
                    self.found[pos] = gys[slot]

    def results(self, leaves: dict, create_graph: bool) -> list:
        """The gradients, leaves' included, as Variables (None where none reached an input)."""
        out = self.found
        for pos, x in enumerate(self.inputs):
            if x.creator is None:
                out[pos] = leaves.get(x)
        return [None if g is None else (g if create_graph else _wrap(g)) for g in out]


def _store_leaf(x: Variable, g: Any, create_graph: bool, stored: set) -> None:
    """Add this backward's gradient ``g`` to ``x.grad``, then run ``x``'s post-accumulate hooks."""
    if g is None:
        return
    if not create_graph:
        g = _own(g, stored)
    x.grad = g if x.grad is None else x.grad + g
    if _HOOKS:
        entry = _HOOKS.get(id(x))
        if entry is not None and entry[0]() is x:
            for hook in list(entry[1]):
                hook(x)


def _own(g: Any, stored: set) -> Variable:
    """A leaf gradient the user may modify in place: writable, and shared with no other leaf.

    Backward formulas may return read-only broadcast views (``sum``) or one array for
    two inputs (``a + b``); a leaf's ``.grad`` gets its own copy in those cases only.
    """
    if not isinstance(g, array_types):
        return Variable(np.asarray(g))  # a NumPy scalar: the array made here is nobody else's
    if id(g) in stored or not getattr(g.flags, "writeable", True):
        g = g.copy()
    stored.add(id(g))
    return Variable(g)


def _keep_input_dtypes(f: Function, gxs: tuple, gys: list) -> tuple:
    """NumPy 1.x only: a gradient wider than every float that went into it is narrowed back.

    NumPy 1 widens 0-d float32 arithmetic with Python numbers to float64; NumPy 2
    does not.  What counts as "went into it": the function's inputs and the
    gradients it received.  A float64 gradient of a float32 weight that met float64
    data stays float64, as on NumPy 2 and in DeZero.
    """
    widest = None
    for dtype in list(f._input_dtypes or ()) + [getattr(g, "dtype", None) for g in gys]:
        if dtype is not None and dtype.kind == "f" and (widest is None or dtype.itemsize > widest.itemsize):
            widest = dtype
    if widest is None:
        return gxs
    fixed = []
    for gx in gxs:
        gdtype = getattr(gx, "dtype", None)
        if gdtype is not None and gdtype.kind == "f" and gdtype.itemsize > widest.itemsize:
            gx = gx.astype(widest)
        fixed.append(gx)
    return tuple(fixed)


# =============================================================================
# Post-accumulate gradient hooks
# =============================================================================
#: id(leaf) -> (weak reference to the leaf, [hook, ...])
_HOOKS: dict = {}


class HookHandle:
    """What ``register_post_accumulate_grad_hook`` returns: ``remove()`` unregisters the hook."""

    __slots__ = ("_key", "_hook")

    def __init__(self, key: int, hook: Callable) -> None:
        self._key, self._hook = key, hook

    def remove(self) -> None:
        """Unregister the hook (calling it twice is harmless)."""
        entry = _HOOKS.get(self._key)
        if entry is not None and self._hook in entry[1]:
            entry[1].remove(self._hook)
            if not entry[1]:
                del _HOOKS[self._key]


def _has_hook(leaf: Variable) -> bool:
    entry = _HOOKS.get(id(leaf))
    return entry is not None and entry[0]() is leaf


def register_post_accumulate_grad_hook(leaf: Variable, hook: Callable) -> HookHandle:
    """Call ``hook(leaf)`` in each backward as soon as ``leaf.grad`` holds this backward's gradient.

    The walk goes on afterwards (functions nearer the inputs have not run yet), so
    data-parallel training can start sending the gradient while backward continues
    (PyTorch's ``register_post_accumulate_grad_hook``).  Only leaves get a stored
    gradient; ``leafgrad.grad()`` stores none and calls no hook.  The hook goes
    away with the leaf.
    """
    if not isinstance(leaf, Variable) or leaf.creator is not None:
        raise ValueError("register_post_accumulate_grad_hook: only a leaf Variable (one with no "
                         "creator) receives a stored gradient")
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, got {hook!r}")
    key = id(leaf)
    entry = _HOOKS.get(key)
    if entry is None or entry[0]() is not leaf:
        ref = weakref.ref(leaf, lambda _ref, key=key, hooks=_HOOKS: hooks.pop(key, None))
        entry = _HOOKS[key] = (ref, [])
    entry[1].append(hook)
    return HookHandle(key, hook)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None,
         retain_graph: Optional[bool] = None, create_graph: bool = False) -> list:
    """Return the gradients of ``outputs`` with respect to ``inputs`` as a list, storing nothing in ``.grad``.

    ``outputs`` and ``inputs`` are Variables or sequences of them; ``grad_outputs``
    (default: ones) weights each output.  The gradient of an input that
    ``outputs`` do not depend on is ``None``.  With ``create_graph=True`` the
    returned gradients can be differentiated again; no reference cycle is made.
    """
    outputs = [outputs] if isinstance(outputs, Variable) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Variable) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Variable,) + array_types):
        grad_outputs = [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for x in inputs:
        if not isinstance(x, Variable):
            raise TypeError(f"grad: inputs must be Variables, got {type(x).__name__}")
    return run_backward(outputs, grad_outputs, create_graph=create_graph,
                        retain_graph=retain_graph, inputs=inputs)


