"""Rebuilding a saved array as a graph-connected Variable, for double backward of fused functions.

A fused function such as ``softmax_cross_entropy`` saves the softmax
probabilities ``p`` of its input ``x`` and lets ``x`` itself die.  Its
first-order backward needs only ``p``; a second-order backward needs ``p`` as a
*differentiable* function of ``x``.  ``graph_output`` gives exactly that: a
Variable holding the saved array whose creator is a fresh ``Softmax`` node
wired to the same input as the fused function, so gradients flow on to ``x``
although ``x``'s array was never kept.
"""
from __future__ import annotations

from typing import Any, Sequence

from leafgrad.core import Function, Variable

__all__ = ["graph_output"]


def _stand_in(edge: Any) -> Variable:
    """A data-less Variable that sits where ``edge`` (an entry of ``Function._edges``) points."""
    if isinstance(edge, Variable):  # a leaf: itself
        return edge
    v = Variable(None)
    if edge is None:  # a constant
        v.requires_grad = False
        return v
    creator, index = edge if type(edge) is tuple else (edge, 0)
    v.set_creator(creator)
    v._output_index = index
    return v


def graph_output(func: Function, data: Any, edges: Sequence[Any]) -> Variable:
    """``func`` applied, in the graph, to the inputs named by ``edges``, with ``data`` as its (known) output.

    ``edges`` is the fused function's ``_edges`` (or a part of it).  ``func``'s
    forward is not run: ``data`` is taken as its result.  ``func`` must keep no
    input Variables (``retain_inputs = ()``): its backward may read only its
    attributes and its retained output, which is ``data``.
    """
    if func.retain_inputs != ():
        raise TypeError(f"graph_output: {type(func).__name__} must declare retain_inputs = ()")
    func.forward = lambda *xs: data  # the result is already known
    return func(*[_stand_in(e) for e in edges])
