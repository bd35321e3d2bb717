"""The shape of the graph: how a function points at its inputs, and every walk over those pointers.

This is the only module that knows how an edge is encoded.  A recorded
``Function`` keeps one edge per input in ``func._edges``:

* the creator ``Function`` itself when the input is that creator's output 0,
  or ``(creator, index)`` for another output: a computed input;
* the leaf ``Variable`` itself, when the input is a leaf that wants a gradient;
* ``None`` for a constant: no gradient is ever computed for it;
* ``RELEASED_LEAF`` where a leaf was, once backward released the function
  (so that a kept ``loss`` does not pin the input batch; see ``PendingGradients.send``).

The common case, an output 0, costs no allocation.  The functions here turn
edges into what the rest of leafgrad asks about: whether an input needs a
gradient, the Variable that stands at an input during a recorded backward, the
functions and leaves reachable from some outputs (for drawing, checkpointing,
hooks), cutting the graph, and :class:`PendingGradients`, the structure the
backward walk (:mod:`leafgrad.engine`) pours gradients into.
"""
from __future__ import annotations

import contextlib
import heapq
import weakref
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from leafgrad import core  # only its classes, read when a function runs (core imports this module)
from leafgrad.cuda import array_types

__all__ = ["connect", "input_variable", "output_variable", "input_variables", "revive_outputs",
           "edge_to", "inputs_of", "functions_of", "leaves_of", "leaf_edge_counts", "unchain",
           "apply_known", "cut_off", "PendingGradients", "RELEASED_LEAF", "tracing", "traced"]


class _ReleasedLeaf:
    """The edge that replaces a leaf Variable once backward released its function."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RELEASED_LEAF"


#: Marks where a leaf was: the function no longer pins the leaf's array, yet is not cut off.
RELEASED_LEAF = _ReleasedLeaf()

# Kinds of input, as ``inputs_of`` reports them.
COMPUTED, LEAF, CONSTANT, RELEASED = "computed", "leaf", "constant", "released"


# =============================================================================
# Building and releasing
# =============================================================================
def connect(func: Any, inputs: Sequence[Any], outputs: List[Any]) -> bool:
    """Record ``func`` in the graph as the creator of ``outputs``, fed by ``inputs``.

    Returns False (and records nothing) when no input wants a gradient: then
    there is nothing to differentiate and ``func`` is dropped with the call.
    """
    edges = []
    generation = 0
    wanted = False
    for x in inputs:
        creator = x.creator
        if creator is not None:
            edges.append(creator if x._output_index == 0 else (creator, x._output_index))
            if x.generation > generation:
                generation = x.generation
            wanted = True
        elif x.requires_grad:
            edges.append(x)
            wanted = True
        else:
            edges.append(None)
    if not wanted:
        return False
    func.generation = generation
    func._edges = edges
    if len(edges) > 1:  # (a recorded one-input function needs its input's gradient: the class default)
        func.needs_input_grad = tuple([e is not None for e in edges])
    if _tracing:
        _trace(func, inputs, outputs, edges)
    generation += 1
    if len(outputs) == 1:
        y = outputs[0]
        y.creator = func
        y.generation = generation
        func.outputs = [weakref.ref(y)]
    else:
        for i, y in enumerate(outputs):
            y.creator = func
            y.generation = generation
            y._output_index = i
        func.outputs = [weakref.ref(y) for y in outputs]
    return True


# =============================================================================
# Tracing: what an exporter needs besides the edges
# =============================================================================
_tracing = 0  # > 0 inside ``tracing()``: ``connect`` then calls ``_trace``


def _trace(func: Any, inputs: Sequence[Any], outputs: List[Any], edges: list) -> None:
    """Give ``func`` its ``_traced``: the arrays of its constant inputs, and every input's and output's (shape, dtype)."""
    func._traced = ({k: x.data for k, x in enumerate(inputs) if edges[k] is None},
                    [(None, None) if x.data is None else (x.data.shape, x.data.dtype) for x in inputs],
                    [(y.data.shape, y.data.dtype) for y in outputs])


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """While it runs, each function recorded also keeps what ``traced`` returns (for ``leafgrad.onnx``).

    The edges of a constant input lead nowhere, and a function keeps only what
    its backward declared; an exporter needs the constant arrays themselves
    (a mask, the ids fed to an embedding, running statistics) and the shapes.
    """
    global _tracing
    _tracing += 1
    try:
        yield
    finally:
        _tracing -= 1


def traced(func: Any) -> Tuple[dict, list, list]:
    """``(constants, input_meta, output_meta)`` of a function recorded inside ``tracing()``.

    ``constants`` maps an input position to the array of that constant input
    (``None`` for a missing optional input); the metas are ``(shape, dtype)`` per input and output.
    """
    t = getattr(func, "_traced", None)
    if t is None:
        raise RuntimeError(f"{type(func).__name__} was not recorded inside graph.tracing()")
    return t


def edge_to(y: Any) -> Any:
    """The edge that points at the Variable ``y``: where a gradient for ``y`` has to go."""
    creator = y.creator
    if creator is None:
        return y
    return creator if y._output_index == 0 else (creator, y._output_index)


def _is_leaf(edge: Any) -> bool:
    return isinstance(edge, core.Variable)


def cut_off(func: Any) -> bool:
    """True when ``unchain`` removed every edge of ``func``: no gradient can flow through it."""
    return all(e is None for e in func._edges)


# =============================================================================
# Variables that stand in the graph during a recorded backward
# =============================================================================
def _make_output(func: Any, index: int, data: Any) -> Any:
    """A new Variable holding ``data`` as output ``index`` of ``func``."""
    y = core.Variable(data)
    y.creator = func
    y.generation = func.generation + 1
    y._output_index = index
    return y


def output_variable(func: Any, index: int, data: Any) -> Any:
    """Output ``index`` of ``func`` as a graph-connected Variable: the user's, if it is alive.

    Otherwise a new Variable holding ``data`` (the array ``func`` kept) at the
    same place in the graph, so that gradients through it reach ``func``.
    """
    y = func.outputs[index]()
    if y is not None and (y.data is not None or type(y) is not core.VariableStandIn):
        return y
    return _make_output(func, index, data)


def input_variable(func: Any, k: int, data: Any) -> Any:
    """Input ``k`` of ``func`` as a graph-connected Variable holding ``data``, for a recorded backward.

    The leaf itself, or the user's Variable if it is still alive (then ``data`` is not used).
    """
    edge = func._edges[k]
    if edge is None:
        v = core.Variable(data)
        v.requires_grad = False
        return v
    if _is_leaf(edge):
        return edge
    creator, index = edge if type(edge) is tuple else (edge, 0)
    y = creator.outputs[index]()
    if y is not None and (y.data is not None or type(y) is not core.VariableStandIn):
        return y
    return _make_output(creator, index, data)


def apply_known(node: Any, data: Any, func: Any, inputs: Sequence[int]) -> Any:
    """``node`` applied in the graph to inputs ``inputs`` of ``func``, its result ``data`` known already.

    For the recorded backward of a fused function: ``softmax_cross_entropy``
    kept the probabilities ``p`` of its input ``x`` but not ``x``; its gradient
    needs ``p`` as a differentiable function of ``x``.  ``node.forward`` is not
    run; the inputs' arrays are not needed (``node`` must keep none of them).
    """
    if node.retain_inputs != ():
        raise TypeError(f"apply_known: {type(node).__name__} must declare retain_inputs = ()")
    node.forward = lambda *xs: data  # the result is already known
    return node(*[input_variable(func, k, None) for k in inputs])


# =============================================================================
# Function.inputs as the seeds describe it
# =============================================================================
def input_variables(func: Any) -> Optional[list]:
    """``func.inputs`` as in DeZero, made from the edges when read; None if ``func`` was not recorded.

    * a leaf: the leaf Variable itself;
    * a computed input: the Variable if it is alive, else a ``VariableStandIn`` at its
      place in the graph (its ``creator`` and output position), holding the array only
      where ``func`` or the creator kept it.  The creator's ``outputs`` slot then points
      (weakly) at that stand-in, so ``creator.outputs[i]()`` and ``func.inputs[k]`` are
      one object, as in DeZero;
    * a constant: a constant Variable (the number ``c`` of a one-input form such as
      ``x * 2`` stands at DeZero's place for it, see ``Function._dezero_constant``).

    Stand-ins are kept on ``func`` (``_standins``) so that reading twice gives the same
    objects; a backward that releases ``func`` drops them.  Nothing here keeps an array
    that the graph did not keep already, and no reference cycle is made (a stand-in
    points up the graph, at the creator; the creator points at it weakly).
    """
    edges = func._edges
    if edges is None:
        return None
    standins = func._standins
    if standins is None:
        standins = func._standins = {}
    meta = func._input_meta
    variables = []
    for k, edge in enumerate(edges):
        if _is_leaf(edge):
            variables.append(edge)
            continue
        v = standins.get(k)
        if v is None:
            shape, dtype, name = meta[k] if meta is not None and meta[k] is not None else (None, None, None)
            if edge is None or edge is RELEASED_LEAF:
                v = core.VariableStandIn(_kept_input(func, k), shape, dtype)
                v.requires_grad = edge is RELEASED_LEAF
                v.name = name
            else:
                creator, index = edge if type(edge) is tuple else (edge, 0)
                v = creator.outputs[index]()
                if v is None:
                    data = _kept_input(func, k)
                    if data is None and creator.output_data is not None:
                        data = creator.output_data[index]
                    if shape is None and len(creator.outputs) > 1:
                        shape, dtype = creator._output_meta[index]
                    v = core.VariableStandIn(data, shape, dtype)
                    v.name = name
                    v.creator = creator
                    v.generation = creator.generation + 1
                    v._output_index = index
                    creator.outputs[index] = weakref.ref(v)
                if type(v) is not core.VariableStandIn:
                    variables.append(v)  # the user's Variable, alive: never kept here
                    continue
                if v.data is None:  # made by another consumer that kept less than this one
                    v.data = _kept_input(func, k)
            standins[k] = v
        variables.append(v)
    position = func._dezero_constant
    if position is not None:
        c = standins.get("c")
        if c is None:
            c = standins["c"] = core.Variable(core.as_array(func.c))
            c.requires_grad = False
        variables.insert(position, c)
    return variables


def revive_outputs(func: Any) -> list:
    """Make each dropped output of ``func`` a graph-connected Variable again, for its backward to read.

    A book-style backward may read ``self.outputs[i]()`` (DeZero's Exp, Tanh, Sigmoid
    do): in DeZero the output is alive because the function that used it keeps it.
    Here such a function kept its outputs' arrays (``Function._reads_outputs``); the
    returned list holds the revived Variables while the backward runs.
    """
    held = []
    data = func.output_data
    for i, ref in enumerate(func.outputs):
        y = ref()
        if y is None and data is not None:
            y = _make_output(func, i, data[i])
            func.outputs[i] = weakref.ref(y)
        held.append(y)
    return held


def _kept_input(func: Any, k: int) -> Any:
    """The array of input ``k`` if ``func`` kept it (``retain_inputs``), else None."""
    kept = func._kept_inputs
    if kept is not None and k in func.retain_inputs:
        return kept[func.retain_inputs.index(k)]
    return None


# =============================================================================
# Walks
# =============================================================================
def inputs_of(func: Any) -> Iterator[Tuple[str, Any, int]]:
    """For each input of ``func``: ``(kind, target, index)``.

    ``kind`` is ``"computed"`` (``target`` the creator, ``index`` its output),
    ``"leaf"`` (``target`` the Variable), ``"constant"`` or ``"released"``
    (``target`` None).
    """
    for edge in func._edges or ():
        if edge is None:
            yield CONSTANT, None, 0
        elif edge is RELEASED_LEAF:
            yield RELEASED, None, 0
        elif _is_leaf(edge):
            yield LEAF, edge, 0
        elif type(edge) is tuple:
            yield COMPUTED, edge[0], edge[1]
        else:
            yield COMPUTED, edge, 0


def functions_of(outputs: Sequence[Any]) -> Iterator[Any]:
    """Every function that ``outputs`` (Variables) were computed by, each once, depth first."""
    stack = []
    seen = set()
    for y in outputs:
        f = y.creator
        if f is not None and id(f) not in seen:
            seen.add(id(f))
            stack.append(f)
    while stack:
        f = stack.pop()
        yield f
        for kind, creator, _ in inputs_of(f):
            if kind == COMPUTED and id(creator) not in seen:
                seen.add(id(creator))
                stack.append(creator)


def leaves_of(outputs: Sequence[Any]) -> List[Any]:
    """The leaf Variables wanting a gradient that ``outputs`` depend on, each once, in order of discovery.

    Counted with multiplicity by ``leaf_edge_counts``; here each appears once.
    """
    return list(leaf_edge_counts(outputs, lambda v: True))


def leaf_edge_counts(outputs: Sequence[Any], wanted: Callable[[Any], bool]) -> dict:
    """For each leaf that ``wanted(leaf)`` selects: how many edges of the graph of ``outputs`` lead to it.

    An output that is itself such a leaf counts once (it receives its seed).
    """
    counts: dict = {}
    for y in outputs:
        if y.creator is None and y.requires_grad and wanted(y):
            counts[y] = counts.get(y, 0) + 1
    for f in functions_of(outputs):
        for kind, leaf, _ in inputs_of(f):
            if kind == LEAF and wanted(leaf):
                counts[leaf] = counts.get(leaf, 0) + 1
    return counts


def unchain(var: Any) -> None:
    """Cut every edge above ``var``: the Variables upstream forget their creators (``unchain_backward``)."""
    if var.creator is None:
        return
    for f in list(functions_of([var])):
        edges = f._edges
        for k, (kind, creator, index) in enumerate(inputs_of(f)):
            if kind == COMPUTED:
                x = creator.outputs[index]()
                if x is not None:
                    x.unchain()
                edges[k] = None


# =============================================================================
# Gradients on their way back
# =============================================================================
_NOTHING = object()  # "no gradient has reached this function yet"


class PendingGradients:
    """Gradients accumulated while backward goes on, and the functions waiting for theirs.

    ``send(edges, gxs)`` delivers each gradient along its edge: summed into the
    output slot of the creator it points at (which then waits its turn), or
    into the leaf.  Iterating gives, one at a time, the waiting function with
    the largest generation and its output gradients (a list, ``None`` where no
    gradient came).  Functions wait in groups, one per generation, whose
    generations sit in a heap: O(N log G) for N functions in G generations
    (DeZero re-sorts a list on every insertion, O(N^2)).

    With ``track_scratch``, it also remembers which gradient arrays nothing
    else holds (fresh from a formula, or sums made here) when they wait for a
    function that ``overwrites_gy``: ``scratch`` holds their ids, and that
    function may write its result into them.
    """

    def __init__(self, track_scratch: bool, on_leaf_done: Optional[Callable[[Any, Any], None]] = None,
                 leaf_edges: Optional[dict] = None) -> None:
        self.waiting: dict = {}      # generation -> [Function, ...]
        self.generations: list = []  # heap of negated generations that have a group
        self.grads: dict = {}        # Function -> gradient (one output) or list (several)
        self.leaves: dict = {}       # leaf Variable -> accumulated gradient
        self.track_scratch = track_scratch
        self.scratch: set = set()    # ids of gradient arrays only this walk holds
        # Leaves whose gradient must be handed on as soon as it is final: edges still to come.
        self.leaf_edges = leaf_edges
        self.on_leaf_done = on_leaf_done

    def __iter__(self) -> Iterator[Tuple[Any, list]]:
        waiting, generations, grads = self.waiting, self.generations, self.grads
        while generations:
            generation = -generations[0]
            group = waiting[generation]
            f = group.pop()
            if not group:
                del waiting[generation]
                heapq.heappop(generations)
            gys = grads.pop(f)
            yield f, (gys if type(gys) is list else [gys])

    def send(self, edges: list, gxs: Sequence[Any], fresh: bool = False, forget_leaves: bool = False) -> None:
        """Deliver ``gxs[k]`` along ``edges[k]``.

        ``fresh``: the arrays are new and held by no one.  ``forget_leaves``: the
        function these edges belong to is being released, so its edges to leaves
        become ``RELEASED_LEAF`` (a kept output then pins no input batch).
        """
        fresh = fresh and self.track_scratch
        Variable = core.Variable
        grads, leaves = self.grads, self.leaves
        for k, edge in enumerate(edges):
            if edge is None:
                continue
            gx = gxs[k]
            if type(edge) is tuple:
                creator, i = edge
            elif isinstance(edge, Variable):  # a leaf
                if gx is not None:
                    g = leaves.get(edge)
                    leaves[edge] = gx if g is None else g + gx
                if self.leaf_edges and edge in self.leaf_edges:
                    self._leaf_edge_done(edge)
                if forget_leaves:
                    edges[k] = RELEASED_LEAF
                continue
            else:
                creator, i = edge, 0
            if gx is None:
                continue
            g = grads.get(creator, _NOTHING)
            if g is _NOTHING:  # the first gradient to reach this function: it waits its turn
                if creator._released:  # its saved data is gone
                    if cut_off(creator):
                        continue  # unchain_backward cut it after that backward: nothing to do
                    raise creator._freed_error()
                n = len(creator.outputs)
                if n == 1:
                    grads[creator] = gx
                else:
                    slots = grads[creator] = [None] * n
                    slots[i] = gx
                generation = creator.generation
                group = self.waiting.get(generation)
                if group is None:
                    self.waiting[generation] = [creator]
                    heapq.heappush(self.generations, -generation)
                else:
                    group.append(creator)
            elif type(g) is list and g[i] is None:
                g[i] = gx
            else:  # a second gradient for the same output: the sum is a new array
                if type(g) is list:
                    old = g[i]
                    g[i] = total = old + gx
                else:
                    old = g
                    grads[creator] = total = old + gx
                if self.track_scratch and creator.overwrites_gy:
                    self.scratch.discard(id(old))
                    if isinstance(total, array_types):  # (a NumPy scalar cannot be written into)
                        self.scratch.add(id(total))
                continue
            if fresh and creator.overwrites_gy:
                self.scratch.add(id(gx))

    def _leaf_edge_done(self, leaf: Any) -> None:
        """One more edge to ``leaf`` delivered; when it was the last, hand its gradient on now."""
        counts = self.leaf_edges
        counts[leaf] -= 1
        if counts[leaf] == 0:
            del counts[leaf]
            self.on_leaf_done(leaf, self.leaves.pop(leaf, None))
