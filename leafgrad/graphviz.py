"""Draw a computational graph: ``get_dot_graph`` (DOT text) and ``plot_dot_graph`` (an image through Graphviz).

The walk follows the graph edges that leafgrad really keeps (:mod:`leafgrad.graph`),
so the picture also shows the memory model:

* a Variable that is still alive is an orange oval, labelled with its name
  (and, when ``verbose``, its shape and dtype), as in DeZero;
* an intermediate Variable that the user has dropped is a dashed oval labelled
  ``(freed)``: the graph remembers that it existed, not its array;
* a dropped Variable whose array a backward formula kept (``retain_outputs``)
  is a dashed light-orange oval labelled ``(array kept)``;
* a constant (an array or number a function wrapped itself, never given a
  gradient) is a grey oval;
* a function whose saved data a ``backward()`` released (``retain_graph=False``)
  is a grey box labelled ``(released)``: the walk cannot go above it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from typing import Any, Optional

from leafgrad._atomic import write_atomic

__all__ = ["get_dot_graph", "plot_dot_graph", "GRAPHVIZ_HINT",
           "get_dezero_dot_graph", "plot_dezero_dot_graph", "dezero_dot_var", "dezero_dot_func"]

#: What to tell a user whose machine has no ``dot`` program.
GRAPHVIZ_HINT = ("install Graphviz to render it (Debian/Ubuntu: apt-get install graphviz; "
                 "macOS: brew install graphviz; conda: conda install graphviz)")

_ALIVE = 'color=orange, style=filled'
_KEPT = 'color=orange, fillcolor="#ffe0b3", style="filled,dashed"'
_FREED = 'color=gray50, fontcolor=gray40, style=dashed'
_CONST = 'color=gray80, style=filled'
_FUNC = 'color=lightblue, style=filled, shape=box'
_RELEASED = 'color=gray80, style=filled, shape=box, fontcolor=gray30'


def _quote(text: str) -> str:
    """``text`` as a DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _describe(data: Any) -> str:
    """``'(2, 3) float32'`` for an array (DeZero prints ``str(shape) + ' ' + str(dtype)``)."""
    return f"{data.shape} {data.dtype}"


def _var_label(var: Any, verbose: bool) -> str:
    name = "" if var.name is None else str(var.name)
    if verbose and var.data is not None:
        if name:
            name += ": "
        name += _describe(var.data)
    return name


def _kept_input(func: Any, k: int) -> Any:
    """The array of input ``k`` if ``func`` keeps it (book-style ``inputs``, or ``retain_inputs``), else None."""
    if func._inputs is not None:  # kept the book's way
        return func._inputs[k].data
    if func._kept_inputs is not None and k in (func.retain_inputs or ()):
        return func._kept_inputs[func.retain_inputs.index(k)]
    return None


def get_dot_graph(output: Any, verbose: bool = True) -> str:
    """Return the DOT text of the graph of functions and Variables that led to ``output``.

    ``verbose`` adds shapes and dtypes to the Variable labels.  Render the text
    with Graphviz's ``dot`` (see :func:`plot_dot_graph`).  Intermediate
    Variables that are no longer alive still appear, labelled ``(freed)``.
    """
    from leafgrad import graph
    from leafgrad.core import Variable
    if not isinstance(output, Variable):
        raise TypeError(f"get_dot_graph: expected a Variable, got {type(output).__name__}")

    lines: list = []
    node_ids: dict = {}       # a key (a Variable, or (function, slot)) -> DOT node id
    drawn_vars: set = set()

    def node_id(key: Any) -> str:
        k = id(key) if not isinstance(key, tuple) else (id(key[0]), key[1])
        if k not in node_ids:
            node_ids[k] = f"n{len(node_ids)}"
        return node_ids[k]

    def draw_leaf(var: Variable) -> str:
        nid = node_id(var)
        if nid not in drawn_vars:
            drawn_vars.add(nid)
            style = _ALIVE if var.requires_grad else _CONST
            lines.append(f"{nid} [label={_quote(_var_label(var, verbose))}, {style}]")
        return nid

    def draw_output(func: Any, slot: int) -> str:
        """The node for output ``slot`` of ``func``: the live Variable, or what the graph still knows."""
        nid = node_id((func, slot))
        if nid in drawn_vars:
            return nid
        drawn_vars.add(nid)
        refs = func.outputs or []
        var = refs[slot]() if slot < len(refs) else None
        if var is not None:
            lines.append(f"{nid} [label={_quote(_var_label(var, verbose))}, {_ALIVE}]")
            return nid
        kept = func.output_data[slot] if func.output_data is not None else None
        if kept is not None:
            label = "(array kept)" + (f"\n{_describe(kept)}" if verbose else "")
            lines.append(f"{nid} [label={_quote(label)}, {_KEPT}]")
        else:
            lines.append(f"{nid} [label={_quote('(freed)')}, {_FREED}]")
        return nid

    def draw_constant(func: Any, k: int) -> str:
        nid = f"c{len(node_ids)}"
        node_ids[("const", id(func), k)] = nid
        label = "const"
        data = _kept_input(func, k)
        if verbose and data is not None:
            label += "\n" + _describe(data)
        lines.append(f"{nid} [label={_quote(label)}, {_CONST}]")
        return nid

    if output.creator is None:
        draw_leaf(output)
        return "digraph g {\n" + "\n".join(lines) + "\n}"

    out_func = output.creator
    out_id = node_id((out_func, output._output_index))
    drawn_vars.add(out_id)
    lines.append(f"{out_id} [label={_quote(_var_label(output, verbose))}, {_ALIVE}]")

    for func in graph.functions_of([output]):
        fid = node_id(func)
        name = type(func).__name__
        if func._released:
            lines.append(f"{fid} [label={_quote(name + chr(10) + '(released)')}, {_RELEASED}]")
        else:
            lines.append(f"{fid} [label={_quote(name)}, {_FUNC}]")
        for slot in range(len(func.outputs or [])):
            lines.append(f"{fid} -> {draw_output(func, slot)}")
        for k, (kind, target, slot) in enumerate(graph.inputs_of(func)):
            if kind == graph.LEAF:
                src = draw_leaf(target)
            elif kind == graph.COMPUTED:
                src = draw_output(target, slot)
            else:  # a constant, or a leaf that a released function no longer points at
                src = draw_constant(func, k)
            lines.append(f"{src} -> {fid}")
    return "digraph g {\n" + "\n".join(lines) + "\n}"


# =============================================================================
# DeZero's picture (what ``dezero.utils`` draws under the alias)
# =============================================================================
def dezero_dot_var(v: Any, verbose: bool = False) -> str:
    """DeZero's ``utils._dot_var``: the DOT line of Variable ``v`` (its name; shape and dtype when ``verbose``).

    A stand-in for a dropped Variable shows the shape and dtype the graph knows.
    """
    name = "" if v.name is None else str(v.name)
    shape = v.shape if v.data is not None else getattr(v, "_shape", None)
    if verbose and shape is not None:
        if v.name is not None:
            name += ": "
        name += f"{shape} {v.dtype}"
    return f"{id(v)} [label={_quote(name)}, {_ALIVE}]\n"


def dezero_dot_func(f: Any) -> str:
    """DeZero's ``utils._dot_func``: the DOT line of function ``f`` and its edges from inputs and to outputs."""
    lines = [f"{id(f)} [label={_quote(type(f).__name__)}, {_FUNC}]\n"]
    for x in f.inputs or ():
        lines.append(f"{id(x)} -> {id(f)}\n")
    for y in f.outputs:
        lines.append(f"{id(f)} -> {id(y())}\n")
    return "".join(lines)


def get_dezero_dot_graph(output: Any, verbose: bool = True) -> str:
    """DeZero's ``get_dot_graph``: the nodes and edges found by walking ``creator.inputs`` from ``output``.

    Under the ``dezero`` alias this is ``dezero.utils.get_dot_graph``: the same
    nodes and edges as DeZero draws for the same program (constants as Variables,
    ``x * 2`` as ``Mul``), each function once, node ids from ``id()`` as in DeZero.
    """
    from leafgrad.core import Variable
    if not isinstance(output, Variable):
        raise TypeError(f"get_dot_graph: expected a Variable, got {type(output).__name__}")
    text = [dezero_dot_var(output, verbose)]
    funcs = [] if output.creator is None else [output.creator]
    seen = set(funcs)
    kept = []  # the stand-ins read, alive until the text is done (their ids are node ids)
    while funcs:
        f = funcs.pop()
        inputs = f.inputs or []
        kept.append(inputs)
        text.append(dezero_dot_func(f))
        for x in inputs:
            text.append(dezero_dot_var(x, verbose))
            if x.creator is not None and x.creator not in seen:
                seen.add(x.creator)
                funcs.append(x.creator)
    return "digraph g {\n" + "".join(text) + "}"


def plot_dezero_dot_graph(output: Any, verbose: bool = True, to_file: str = "graph.png") -> Optional[Any]:
    """DeZero's ``plot_dot_graph``: draw :func:`get_dezero_dot_graph` into ``to_file`` (see :func:`plot_dot_graph`)."""
    return _show(render_dot(get_dezero_dot_graph(output, verbose), to_file), to_file)


def render_dot(dot_text: str, to_file: str) -> str:
    """Render DOT text to ``to_file`` (format from its extension; ``.dot`` writes the text itself).

    Returns the path written.  When Graphviz's ``dot`` is not installed, the
    DOT text is written next to ``to_file`` with a ``.dot`` extension instead,
    a warning says how to install Graphviz, and that path is returned.
    """
    root, ext = os.path.splitext(to_file)
    fmt = ext[1:].lower()
    if not fmt:
        raise ValueError(f"plot_dot_graph: to_file {to_file!r} has no extension "
                         "(use .png, .svg, .pdf or .dot)")
    folder = os.path.dirname(os.path.abspath(to_file))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"plot_dot_graph: folder {folder!r} does not exist")
    text = dot_text.encode("utf-8")
    if fmt in ("dot", "gv"):
        write_atomic(to_file, lambda f: f.write(text))
        return to_file
    exe = shutil.which("dot")
    if exe is None:
        dot_path = root + ".dot"
        write_atomic(dot_path, lambda f: f.write(text))
        warnings.warn(f"Graphviz's 'dot' program was not found, so {to_file} was not drawn; "
                      f"the graph was written to {dot_path}: {GRAPHVIZ_HINT}.",
                      RuntimeWarning, stacklevel=3)
        return dot_path
    result = subprocess.run([exe, "-T" + fmt], input=text, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"plot_dot_graph: dot failed to write {to_file}: {message}")
    write_atomic(to_file, lambda f: f.write(result.stdout))
    return to_file


def plot_dot_graph(output: Any, verbose: bool = True, to_file: str = "graph.png") -> Optional[Any]:
    """Draw the graph that led to ``output`` into ``to_file`` (``.png``, ``.svg``, ``.pdf``, ``.dot``...).

    Graphviz's ``dot`` program does the drawing (called without a shell).  When it
    is missing, the DOT text is still written (``graph.dot`` for ``graph.png``) and
    a warning says how to install Graphviz.  Inside IPython/Jupyter an image is
    returned for inline display, as in DeZero; otherwise the path written.
    """
    return _show(render_dot(get_dot_graph(output, verbose), to_file), to_file)


def _show(path: str, to_file: str) -> Any:
    """An IPython image of ``to_file`` inside IPython/Jupyter (as DeZero returns), else ``path``."""
    if path == to_file and os.path.splitext(path)[1].lower() in (".png", ".jpg", ".jpeg"):
        try:
            from IPython import get_ipython  # type: ignore[import-not-found]
            if get_ipython() is not None:
                from IPython import display  # type: ignore[import-not-found]
                return display.Image(filename=to_file)
        except ImportError:
            pass
    return path
