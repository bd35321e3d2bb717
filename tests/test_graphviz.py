"""get_dot_graph / plot_dot_graph: the DOT text of a graph, drawn with Graphviz when it is installed."""
import os
import re
import shutil
import warnings

import numpy as np
import pytest

import leafgrad.functions as F
from leafgrad import Function, Variable, utils
from leafgrad.graphviz import get_dot_graph, plot_dot_graph

HAS_DOT = shutil.which("dot") is not None
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _nodes(dot):
    """{node id: label} of a DOT text."""
    return dict(re.findall(r'^(\w+) \[label="((?:[^"\\]|\\.)*)"', dot, flags=re.M))


def _edges(dot):
    return re.findall(r"^(\w+) -> (\w+)$", dot, flags=re.M)


def _small_graph():
    x = Variable(np.ones((2, 3), dtype=np.float32), name="x")
    w = Variable(np.ones((3, 4), dtype=np.float32), name="w")
    y = F.sum(F.exp(F.matmul(x, w)) * 2.0)
    y.name = "y"
    return x, w, y


def test_exported_from_utils():
    assert utils.get_dot_graph is get_dot_graph
    assert utils.plot_dot_graph is plot_dot_graph


def test_small_graph_nodes_and_edges():
    x, w, y = _small_graph()
    dot = get_dot_graph(y)
    assert dot.startswith("digraph g {") and dot.rstrip().endswith("}")
    nodes = _nodes(dot)
    labels = sorted(nodes.values())
    # four functions drawn in DeZero's style, the named Variables with shape and dtype
    for name in ("MatMul", "Exp", "Mul", "Sum"):  # `* 2.0` is labelled as DeZero labels it
        assert name in labels
    assert "x: (2, 3) float32" in labels
    assert "w: (3, 4) float32" in labels
    assert "y: () float32" in labels
    # the matmul output was dropped and nobody keeps it: "(freed)"; exp keeps its output: "(array kept)"
    assert "(freed)" in labels
    assert any(lab.startswith("(array kept)") and "(2, 4) float32" in lab for lab in labels)
    by_label = {v: k for k, v in nodes.items()}
    edges = set(_edges(dot))
    assert (by_label["x: (2, 3) float32"], by_label["MatMul"]) in edges
    assert (by_label["w: (3, 4) float32"], by_label["MatMul"]) in edges
    assert (by_label["Sum"], by_label["y: () float32"]) in edges
    # 4 functions and 6 Variables (x, w, matmul's output, exp's output, the product, y)
    assert len(nodes) == 10
    assert len(edges) == 9


def test_alive_intermediate_shows_shape_and_not_verbose_hides_it():
    x = Variable(np.ones(3), name="x")
    h = F.sin(x)
    h.name = "h"
    y = F.cos(h)
    labels = set(_nodes(get_dot_graph(y)).values())
    assert "h: (3,) float64" in labels and "(freed)" not in labels
    labels = set(_nodes(get_dot_graph(y, verbose=False)).values())
    assert "h" in labels and "x" in labels and "" in labels  # y has no name: empty label, as in DeZero


def test_constant_input_is_drawn_grey():
    x = Variable(np.ones(3), name="x")
    y = x + np.arange(3.0)  # the array is a constant: no gradient
    dot = get_dot_graph(y)
    assert any(lab.startswith("const") for lab in _nodes(dot).values())
    assert "gray80" in dot


def test_multi_use_and_shared_nodes_drawn_once():
    x = Variable(np.array(2.0), name="x")
    a = F.square(x)
    y = a * a + a
    dot = get_dot_graph(y, verbose=False)
    nodes = _nodes(dot)
    assert list(nodes.values()).count("x") == 1
    assert list(nodes.values()).count("Square") == 1


def test_released_graph_after_backward():
    x, w, y = _small_graph()
    y.backward()  # retain_graph=False: saved data released, the structure stays
    dot = get_dot_graph(y)
    assert "(released)" in dot
    assert "x: (2, 3) float64" not in dot  # leaves are no longer pinned by the graph
    y.unchain_backward()  # what truncated BPTT does: now only y and its creator remain
    assert len(_nodes(get_dot_graph(y))) <= 4


def test_leaf_only_and_bad_input():
    x = Variable(np.ones(2), name="x")
    assert "x: (2,) float64" in get_dot_graph(x)
    with pytest.raises(TypeError, match="get_dot_graph"):
        get_dot_graph(np.ones(2))


def test_book_style_function_keeps_inputs_alive():
    class Twice(Function):  # declares nothing: keeps its inputs, as the book's functions do
        def forward(self, x):
            return 2 * x

        def backward(self, gy):
            return 2 * gy

    x = Variable(np.ones(2), name="x")
    y = F.exp(Twice()(F.sin(x)))
    labels = list(_nodes(get_dot_graph(y)).values())
    assert "(2,) float64" in labels  # sin's output: Twice keeps it alive


def test_quotes_in_names_are_escaped():
    x = Variable(np.ones(2), name='a "quoted" name')
    y = F.sin(x)
    assert r'a \"quoted\" name' in get_dot_graph(y)


def test_higher_order_graph():
    x = Variable(np.array(1.0), name="x")
    y = F.tanh(x)
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    gx.backward(create_graph=True)
    gx2 = x.grad
    gx2.name = "gx2"
    labels = list(_nodes(get_dot_graph(gx2, verbose=False)).values())
    assert "Tanh" in labels and "x" in labels and "gx2" in labels


def test_plot_dot_file(tmp_path):
    _, _, y = _small_graph()
    path = str(tmp_path / "g.dot")
    assert plot_dot_graph(y, to_file=path) == path
    with open(path) as f:
        assert f.read() == get_dot_graph(y)


def test_plot_without_extension(tmp_path):
    _, _, y = _small_graph()
    with pytest.raises(ValueError, match="extension"):
        plot_dot_graph(y, to_file=str(tmp_path / "graph"))


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz is not installed")
@pytest.mark.parametrize("ext", ["png", "svg"])
def test_plot_image(tmp_path, ext):
    _, _, y = _small_graph()
    path = str(tmp_path / f"g.{ext}")
    assert plot_dot_graph(y, to_file=path) == path
    with open(path, "rb") as f:
        head = f.read(512)
    if ext == "png":
        assert head.startswith(PNG_SIGNATURE) and os.path.getsize(path) > 1000
    else:
        assert b"<svg" in head or b"<?xml" in head
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp")] == []


def test_plot_without_graphviz_writes_dot(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    _, _, y = _small_graph()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = plot_dot_graph(y, to_file=str(tmp_path / "g.png"))
    assert path == str(tmp_path / "g.dot")
    assert os.path.exists(path) and not os.path.exists(tmp_path / "g.png")
    message = str(caught[0].message)
    assert "apt-get install graphviz" in message and "g.dot" in message
