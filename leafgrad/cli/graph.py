"""``leafgrad graph``: draw a built-in computational graph (the n-th derivative of tanh, or a small MLP's loss)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Tuple

import numpy as np

from leafgrad.cli.errors import DataError, UsageError

__all__ = ["cmd_graph", "tanh_derivative", "mlp_loss"]


def tanh_derivative(order: int) -> Any:
    """The ``order``-th derivative of tanh at x = 1 as a Variable named ``gx{order}`` (the book's step 35)."""
    import leafgrad.functions as F
    from leafgrad import Variable
    x = Variable(np.array(1.0), name="x")
    y = F.tanh(x)
    y.name = "y"
    y.backward(create_graph=True)
    for _ in range(order - 1):
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
    gx = x.grad
    gx.name = f"gx{order}"
    return gx


def mlp_loss() -> Tuple[Any, Any]:
    """The loss of a small MLP (2-10-3, sigmoid) on 10 spiral points, named ``loss``."""
    import leafgrad.functions as F
    from leafgrad.datasets import get_spiral
    from leafgrad.models import MLP
    x, t = get_spiral(train=True)
    np.random.seed(0)
    model = MLP((10, 3))
    loss = F.softmax_cross_entropy(model(x[:10]), t[:10])
    loss.name = "loss"
    return loss, model  # the model (its parameters) must stay alive while the graph is drawn


def cmd_graph(args: argparse.Namespace) -> int:
    """``leafgrad graph``: draw a built-in computational graph to PNG, SVG, PDF or DOT."""
    from leafgrad.graphviz import GRAPHVIZ_HINT, get_dot_graph, render_dot
    fmt = args.format
    out = args.out
    if out is None:
        stem = f"tanh_gx{args.order}" if args.example == "tanh" else "mlp"
        out = f"{stem}.{fmt or 'png'}"
    ext = os.path.splitext(out)[1][1:].lower()
    if fmt is None:
        fmt = ext or "png"
    if fmt not in ("png", "svg", "pdf", "dot"):
        raise UsageError(f"unknown graph format {fmt!r}; choose from png, svg, pdf, dot")
    if ext != fmt:
        out = f"{out}.{fmt}" if not ext else os.path.splitext(out)[0] + "." + fmt
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {out}: folder {folder} does not exist")

    keep = None
    if args.example == "tanh":
        output = tanh_derivative(args.order)
        what = f"the graph of d^{args.order}/dx^{args.order} tanh(x) at x = 1"
    else:
        output, keep = mlp_loss()
        what = "the graph of a 2-10-3 MLP's loss on 10 spiral points"
    text = get_dot_graph(output, verbose=not args.no_verbose)
    del keep
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            written = render_dot(text, out)
    except (OSError, RuntimeError) as err:
        raise DataError(str(err)) from None
    if written != out:
        print(f"Graphviz's dot program was not found, so {out} was not drawn; wrote {written} instead: "
              f"{GRAPHVIZ_HINT}.", file=sys.stderr)
        return 1
    nodes = sum(1 for line in text.splitlines() if "[label=" in line)
    if not args.quiet:
        print(f"wrote {out}: {what} ({nodes} nodes)")
    return 0

