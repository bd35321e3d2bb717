"""The backward walk: ``run_backward`` (behind ``Variable.backward``), ``grad`` and ``unchain_graph``.

Functions are visited in decreasing generation order, taken from a heap
(O(N log N); DeZero re-sorts a list on every insertion, O(N^2) on wide graphs).
Gradients are accumulated per function output slot while the walk goes on, so
intermediate Variables need not be alive.  The walk is a loop, never a
recursion: a chain of a million functions goes backward without
``RecursionError``.

When ``create_graph`` is False, gradients are plain arrays and a function's
``backward_array`` (if it has one) computes them without building Variables;
otherwise its ``backward`` runs on Variables with graph recording off.  When
``create_graph`` is True, ``backward`` runs on Variables with recording on, so
the gradients can themselves be differentiated.
"""
from __future__ import annotations

import heapq
import weakref
from typing import Any, Callable, Optional, Sequence

import numpy as np

from leafgrad.config import _enable_backprop
from leafgrad.core import _LEGACY_PROMOTION, RELEASED_LEAF, Function, Variable
from leafgrad.cuda import array_types, get_array_module

__all__ = ["run_backward", "grad", "unchain_graph", "register_post_accumulate_grad_hook", "HookHandle"]

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or to read data already freed): "
    "the saved data of {name} was released after the first backward. "
    "Pass retain_graph=True to the first backward() to keep it."
)


def _freed_error(func: Function) -> RuntimeError:
    return RuntimeError(_FREED_MESSAGE.format(name=type(func).__name__))


_NOTHING = object()  # "no gradient has reached this function yet"


def _cut_off(f: Function) -> bool:
    """For a function whose saved data backward released: True if nothing upstream is left.

    ``unchain_backward`` after ``backward`` (truncated backpropagation through
    time, as the book does it) cuts every edge of such a function: reaching it
    again is harmless and it is skipped.  Otherwise gradients would have to go
    through data that is gone: that is an error telling the user what to do.
    """
    if any(edge is not None for edge in f._edges):
        raise _freed_error(f)
    return True


def _ones_like(data: Any, create_graph: bool) -> Any:
    xp = get_array_module(data)
    seed = xp.ones_like(data)
    return Variable(seed) if create_graph else seed


def _wrap(g: Any) -> Variable:
    """A gradient array as a Variable (NumPy turns 0-d results into scalars: make them arrays again)."""
    return Variable(g if isinstance(g, array_types) else np.asarray(g))


def _as_grad(g: Any, create_graph: bool) -> Any:
    """Normalise a user-given or formula-returned gradient to an array, or to a Variable."""
    if g is None:
        return None
    if create_graph:
        return g if isinstance(g, Variable) else _wrap(g)
    return g.data if isinstance(g, Variable) else g


def _call_backward(f: Function, gys: list, create_graph: bool) -> tuple:
    """Run ``f``'s backward formula on the output gradients; return a tuple of input gradients."""
    if create_graph:
        gxs = f.backward(*gys)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        return tuple(_as_grad(g, True) for g in gxs)
    # A function with only a Variable backward: wrap, run (recording is off here), unwrap.
    gxs = f.backward(*[None if g is None else _wrap(g) for g in gys])
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    return tuple(_as_grad(g, False) for g in gxs)


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
    # Functions waiting for their backward, grouped by generation; the largest generation goes
    # first.  `generations` is a heap of the (negated) generations that have a group.
    waiting: dict = {}      # generation -> [Function, ...]
    generations: list = []
    # Accumulated output gradients of each waiting function: the gradient itself for a
    # one-output function, a list with one entry per output otherwise.
    pending: dict = {}
    leaves: dict = {}       # leaf Variable -> accumulated gradient (Variables hash by identity)
    capture = inputs is not None
    has_array_path = not create_graph
    # Leaves with post-accumulate hooks: how many graph edges still have to deliver to each.
    hooked = _hooked_edge_counts(outputs) if _HOOKS and not capture else None
    stored: set = set()     # leaf gradient arrays already handed to a .grad (see _own)
    # Intermediate Variables whose gradient grad() must return: id(creator) -> {slot: position}
    wanted_slots: dict = {}
    results: list = [None] * len(inputs) if capture else []
    if capture:
        for pos, x in enumerate(inputs):
            if x.creator is not None:
                wanted_slots.setdefault(id(x.creator), {}).setdefault(x._output_index, []).append(pos)

    # The roots deliver their seed gradients along "edges" exactly as a function delivers
    # its input gradients below: to their creator's output slot, or to the leaf itself.
    edges, gxs = [], []
    for y, gy in zip(outputs, grad_outputs):
        gxs.append(_ones_like(y.data, create_graph) if gy is None else _as_grad(gy, create_graph))
        creator = y.creator
        if creator is None:
            edges.append(y)
            continue
        if not capture and y.grad is not None:
            y.grad = None  # it was the seed; it comes back below when retain_grad
        edges.append(creator if y._output_index == 0 else (creator, y._output_index))
    f = None      # the function whose input gradients `gxs` are (None: the seeds)
    fresh = False

    # Gradient arrays that only this walk holds: fresh from a formula that keeps nothing of them
    # (Function.fresh_gradients) or sums made here.  A function may overwrite such a gradient
    # (backward_array_inplace) instead of allocating another array.  Tracked by id while alive.
    owned: set = set()
    reuse = not (create_graph or retain_grad or capture)
    heappop, heappush = heapq.heappop, heapq.heappush
    while True:
        for edge, gx in zip(edges, gxs):
            if edge is None:
                continue
            if isinstance(edge, Variable):  # a leaf
                if gx is not None:
                    g = leaves.get(edge)
                    leaves[edge] = gx if g is None else g + gx
                if hooked and edge in hooked:
                    hooked[edge] -= 1
                    if hooked[edge] == 0:  # its gradient is final: store it, tell the hooks now
                        del hooked[edge]
                        _store_leaf(edge, leaves.pop(edge, None), create_graph, stored)
                continue
            if gx is None:
                continue
            if type(edge) is tuple:
                creator, i = edge
            else:
                creator, i = edge, 0
            g = pending.get(creator, _NOTHING)
            if g is _NOTHING:  # the first gradient to reach this function: it waits its turn
                if creator._released and _cut_off(creator):
                    continue
                n = len(creator.outputs)
                if n == 1:
                    pending[creator] = gx
                else:
                    slots = pending[creator] = [None] * n
                    slots[i] = gx
                generation = creator.generation
                group = waiting.get(generation)
                if group is None:
                    waiting[generation] = [creator]
                    heappush(generations, -generation)
                else:
                    group.append(creator)
                if fresh and type(gx) is np.ndarray:
                    owned.add(id(gx))
                continue
            if type(g) is list:  # a function with several outputs
                old = g[i]
                if old is None:
                    g[i] = gx
                    if fresh and type(gx) is np.ndarray:
                        owned.add(id(gx))
                    continue
                g[i] = total = old + gx
            else:
                old = g
                pending[creator] = total = old + gx
            if reuse:
                owned.discard(id(old))
                if type(total) is np.ndarray:
                    owned.add(id(total))
        if f is not None and not retain_graph:  # free what it kept, now that it has been used
            f._release()
        if not generations:
            break

        group = waiting[-generations[0]]
        f = group.pop()
        if not group:
            del waiting[-heappop(generations)]
        gys = pending.pop(f)
        if type(gys) is not list:
            gys = [gys]
        edges = f._edges

        if retain_grad:
            for ref, g in zip(f.outputs, gys):
                y = ref()
                if y is not None and g is not None:
                    g = g if create_graph else _wrap(g)
                    y.grad = g if y.grad is None else y.grad + g
        if capture and id(f) in wanted_slots:
            for slot, positions in wanted_slots[id(f)].items():
                for pos in positions:
                    results[pos] = gys[slot]

        if len(gys) > 1 and any(g is None for g in gys):
            gys = _fill_missing(f, gys, create_graph)
        if has_array_path and f._has_backward_array:  # first order, on arrays: the fast path
            if owned and f._has_backward_array_inplace and id(gys[0]) in owned:
                gxs = f.backward_array_inplace(gys[0])
            else:
                gxs = f.backward_array(*gys)
            if type(gxs) is not tuple:
                gxs = (gxs,)
        else:
            gxs = _call_backward(f, gys, create_graph)
        if owned:
            for g in gys:
                owned.discard(id(g))
        fresh = reuse and f.fresh_gradients
        if len(gxs) != len(edges):
            raise ValueError(f"{type(f).__name__}.backward returned {len(gxs)} gradients "
                             f"for {len(edges)} inputs")
        if _LEGACY_PROMOTION and not create_graph:
            gxs = _keep_input_dtypes(f, gxs)

    if capture:
        for pos, x in enumerate(inputs):
            if x.creator is None:
                results[pos] = leaves.get(x)
        return [None if g is None else (g if create_graph else _wrap(g)) for g in results]

    for x, g in leaves.items():
        _store_leaf(x, g, create_graph, stored)
    return None


def _store_leaf(x: Variable, g: Any, create_graph: bool, stored: set) -> None:
    """Add this backward's gradient ``g`` to ``x.grad``, then run ``x``'s post-accumulate hooks."""
    if g is None:
        return
    if not create_graph:
        g = _own(g, stored)
    x.grad = g if x.grad is None else x.grad + g
    entry = _HOOKS.get(id(x))
    if entry is not None and entry[0]() is x:
        for hook in list(entry[1]):
            hook(x)


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


def _hooked_edge_counts(outputs: Sequence[Variable]) -> dict:
    """For each hooked leaf reachable from ``outputs``: the number of graph edges that lead to it."""
    counts: dict = {}
    for y in outputs:  # a root that is itself a hooked leaf delivers one gradient too
        if y.creator is None:
            entry = _HOOKS.get(id(y))
            if entry is not None and entry[0]() is y:
                counts[y] = counts.get(y, 0) + 1
    stack = [y.creator for y in outputs if y.creator is not None]
    seen = {id(f) for f in stack}
    while stack:
        f = stack.pop()
        for edge in f._edges:
            if edge is None or edge is RELEASED_LEAF:
                continue
            if isinstance(edge, Variable):
                entry = _HOOKS.get(id(edge))
                if entry is not None and entry[0]() is edge:
                    counts[edge] = counts.get(edge, 0) + 1
                continue
            creator = edge[0] if type(edge) is tuple else edge
            if id(creator) not in seen:
                seen.add(id(creator))
                stack.append(creator)
    return counts


def _own(g: Any, stored: set) -> Variable:
    """A leaf gradient the user may modify in place: writable, and shared with no other leaf.

    Backward formulas may return read-only broadcast views (``sum``) or one array for
    two inputs (``a + b``); a leaf's ``.grad`` gets its own copy in those cases only.
    """
    if not isinstance(g, array_types):
        g = np.asarray(g)
    elif id(g) in stored or not getattr(g.flags, "writeable", True):
        g = g.copy()
    stored.add(id(g))
    return Variable(g)


def _fill_missing(f: Function, gys: list, create_graph: bool) -> list:
    """Zeros for the outputs of a multi-output function that received no gradient."""
    meta = f._output_meta
    filled = []
    for g, (shape, dtype) in zip(gys, meta):
        if g is None:
            present = next(other for other in gys if other is not None)
            g = get_array_module(present).zeros(shape, dtype)
            if create_graph:
                g = Variable(g)
        filled.append(g)
    return filled


def _keep_input_dtypes(f: Function, gxs: tuple) -> tuple:
    """NumPy 1.x only: a gradient has the floating dtype of its input (NumPy 1 may widen 0-d math)."""
    dtypes = getattr(f, "_input_dtypes", None)
    if dtypes is None:
        return gxs
    fixed = []
    for gx, dtype in zip(gxs, dtypes):
        gdtype = getattr(gx, "dtype", None)
        if (gdtype is not None and dtype is not None and gdtype != dtype
                and gdtype.kind == "f" and dtype.kind == "f"):
            gx = gx.astype(dtype)
        fixed.append(gx)
    return tuple(fixed)


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


def unchain_graph(var: Variable) -> None:
    """Cut every edge above ``var``: upstream Variables forget their creators (``unchain_backward``)."""
    if var.creator is None:
        return
    stack = [var.creator]
    seen = {id(var.creator)}
    while stack:
        f = stack.pop()
        edges = f._edges
        for k, edge in enumerate(edges):
            if edge is None or edge is RELEASED_LEAF or isinstance(edge, Variable):
                continue
            creator, i = edge if type(edge) is tuple else (edge, 0)
            x = creator.outputs[i]()
            if x is not None:
                x.unchain()
            edges[k] = None
            if id(creator) not in seen:
                seen.add(id(creator))
                stack.append(creator)
