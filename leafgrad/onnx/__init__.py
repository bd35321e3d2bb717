"""Export a model to ONNX: one forward pass, recorded, walked, written as an ONNX graph.

``leafgrad.onnx.export(model, example_input, "model.onnx")`` runs ``model`` once
on ``example_input`` under ``test_mode()`` (dropout off, batch normalization on
its running statistics) with graph recording on, walks the recorded graph
(:func:`leafgrad.graph.functions_of`), and asks each function for its ONNX form
(its ``to_onnx`` method, written next to its gradient; see
:mod:`leafgrad.onnx.builder`).  Parameters become initializers, the batch axis
is dynamic, the model passes ``onnx.checker`` and is written atomically.
Needs the ``onnx`` package (``pip install "leafgrad[onnx]"``, which also brings
``onnxruntime`` to run the result).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from leafgrad import graph
from leafgrad.config import test_mode, using_config
from leafgrad.core import Variable
from leafgrad.onnx.builder import OPSET, Builder

__all__ = ["export", "ExportError", "OPSET"]


class ExportError(ValueError):
    """The model cannot be written as ONNX (a function without an ONNX form, an output not computed, ...)."""


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("leafgrad.onnx.export needs the onnx package: pip install \"leafgrad[onnx]\" "
                          "(or pip install onnx onnxruntime)") from None
    return onnx


def export(model: Any, example_input: Any, path: Optional[str] = None, input_names: Optional[Sequence[str]] = None,
           output_names: Optional[Sequence[str]] = None, dynamic_batch: bool = True,
           metadata: Optional[Dict[str, str]] = None) -> Any:
    """Write ``model`` as an ONNX model (opset ``OPSET``) to ``path``; returns the ``onnx.ModelProto``.

    ``example_input``: an array (or Variable), or a tuple of them for a model of
    several inputs; its shapes are the exported ones, except the leading (batch)
    axis when ``dynamic_batch``.  ``input_names`` / ``output_names`` default to
    ``input``, ``output`` (numbered when several).  ``metadata`` goes into the
    model's ``metadata_props``.  ``path=None`` only builds and checks the model.
    """
    onnx = _onnx()
    examples = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    inputs = []
    for x in examples:
        data = x.data if isinstance(x, Variable) else np.asarray(x)
        inputs.append(Variable(data))  # wants a gradient: every function fed by it is recorded
    input_names = _names(input_names, "input", len(inputs))
    batch = None
    if dynamic_batch and inputs[0].ndim >= 1:
        batch = inputs[0].shape[0]

    with using_config("enable_backprop", True), test_mode(), graph.tracing():
        ys = model(*inputs)
    ys = list(ys) if isinstance(ys, (tuple, list)) else [ys]
    output_names = _names(output_names, "output", len(ys))
    for name, y in zip(output_names, ys):
        if not isinstance(y, Variable) or y.creator is None:
            raise ExportError(f"leafgrad.onnx.export: output {name!r} was not computed from the inputs or the "
                              "parameters by recorded functions; nothing to export")

    g = Builder(batch)
    params = {id(p): name for name, p in getattr(model, "named_params", lambda: [])()}
    by_input = {id(v): n for v, n in zip(inputs, input_names)}
    by_array = {id(v.data): n for v, n in zip(inputs, input_names)}
    for v, n in zip(inputs, input_names):
        g.meta[n] = (v.shape, v.dtype)
    _walk(g, ys, output_names, params, by_input, by_array)

    used = {name for _, ins, _, _ in g.nodes for name in ins}
    for n in input_names:
        if n not in used:
            raise ExportError(f"leafgrad.onnx.export: the outputs do not depend on input {n!r} through recorded "
                              "functions (was it converted before the first function, or used only under no_grad?)")
    model_proto = _to_model(onnx, g, input_names, output_names, [(y.shape, y.dtype) for y in ys], metadata)
    data = model_proto.SerializeToString()  # (once: checked, then written)
    try:
        onnx.checker.check_model(data, full_check=True)
    except Exception as err:  # (onnx's own error types vary between versions)
        raise ExportError(f"leafgrad.onnx.export: the ONNX model fails onnx.checker: {err}") from err
    if path is not None:
        from leafgrad._atomic import write_atomic
        write_atomic(str(path), lambda f: f.write(data))
    return model_proto


def _names(names: Optional[Sequence[str]], stem: str, n: int) -> List[str]:
    if names is None:
        return [stem] if n == 1 else [f"{stem}{i}" for i in range(n)]
    names = [str(s) for s in ([names] if isinstance(names, str) else names)]
    if len(names) != n or len(set(names)) != n:
        raise ValueError(f"leafgrad.onnx.export: expected {n} distinct {stem} names, got {names}")
    return names


def _walk(g: Builder, ys: list, output_names: List[str], params: dict, by_input: dict, by_array: dict) -> None:
    """Add the ONNX form of every function the outputs ``ys`` were computed by, inputs before users."""
    value: dict = {}   # (id(function), output index) -> name
    for y, name in zip(ys, output_names):
        key = (id(y.creator), y._output_index)
        if key in value:  # the same value twice: a copy
            g.nodes.append(("Identity", [value[key]], [name], {}))  # (appended after the walk below)
        else:
            value[key] = name
    tail = list(g.nodes)
    g.nodes.clear()
    leaves: dict = {}  # id(leaf or constant array) -> name
    for f in sorted(graph.functions_of(ys), key=lambda f: f.generation):
        form = getattr(f, "to_onnx", None)
        if form is None:
            raise ExportError(f"leafgrad.onnx.export: {type(f).__name__} has no ONNX form (a to_onnx method); "
                              "docs/internals.md shows how to add one")
        constants, in_meta, out_meta = graph.traced(f)
        names = []
        for k, (kind, target, index) in enumerate(graph.inputs_of(f)):
            if kind == graph.COMPUTED:
                name = value[(id(target), index)]
            elif kind == graph.LEAF:
                name = by_input.get(id(target))
                if name is None:
                    name = leaves.get(id(target))
                if name is None:
                    name = g.const(target.data, name=params.get(id(target)) or g.fresh("leaf"))
                    leaves[id(target)] = name
            elif kind == graph.CONSTANT:
                data = constants[k]
                if data is None:
                    name = ""
                else:
                    name = by_array.get(id(data)) or leaves.get(id(data))
                    if name is None:
                        name = leaves[id(data)] = g.const(data)
            else:
                raise ExportError(f"leafgrad.onnx.export: the graph of {type(f).__name__} was released by a backward")
            if name:
                g.meta.setdefault(name, in_meta[k])
            names.append(name)
        outs = []
        for i, meta in enumerate(out_meta):
            name = value.get((id(f), i)) or g.fresh(type(f).__name__)
            value[(id(f), i)] = name
            g.meta[name] = meta
            outs.append(name)
        form(g, names, outs)
    g.nodes.extend(tail)


def _to_model(onnx: Any, g: Builder, input_names: List[str], output_names: List[str], output_meta: list,
              metadata: Optional[Dict[str, str]]) -> Any:
    """The ``onnx.ModelProto`` of the builder's nodes."""
    from onnx import helper, numpy_helper

    def info(name: str, shape: tuple, dtype: Any) -> Any:
        dims: List[Any] = list(shape)
        if g.batch is not None and dims and dims[0] == g.batch:
            dims[0] = "batch"
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), dims)

    nodes = [helper.make_node(op, ins, outs, name=f"{op}_{i}", **attrs)
             for i, (op, ins, outs, attrs) in enumerate(g.nodes)]
    graph_proto = helper.make_graph(
        nodes, "leafgrad",
        [info(n, *g.meta[n]) for n in input_names],
        [info(n, shape, dtype) for n, (shape, dtype) in zip(output_names, output_meta)],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(a), name) for name, a in g.initializers.items()])
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="leafgrad")
    model.ir_version = 8  # what opset 18 needs: the oldest runtimes that run the opset load the file
    if metadata:
        helper.set_model_props(model, {str(k): str(v) for k, v in metadata.items()})
    return model
