"""Higher-order derivatives of tanh, as in the book's steps 34-35.

Run: ``python examples/tanh_derivatives.py`` (``--order N``, ``--out DIR``).

Writes ``tanh_derivatives.png`` (tanh and its first derivatives on [-7, 7]) and
``tanh_gx{N}.png``, the computational graph of the N-th derivative at x = 1
(a ``.dot`` file instead when Graphviz is not installed).
"""
import os

import numpy as np

import leafgrad.functions as F
from leafgrad import Variable
from leafgrad.cli.graph import tanh_derivative  # the graph that ``leafgrad graph --order N`` draws
from leafgrad.utils import plot_dot_graph

from _example_common import make_parser, parse_args, pyplot, save_figure


def derivatives(x_values: np.ndarray, order: int) -> list:
    """tanh(x) and its first ``order`` derivatives at ``x_values``, by differentiating the graph again and again."""
    x = Variable(x_values)
    y = F.tanh(x)
    curves = [y.data]
    y.backward(create_graph=True)
    for _ in range(order):
        gx = x.grad
        curves.append(gx.data)
        x.cleargrad()
        gx.backward(create_graph=True)
    return curves


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--order", type=int, default=3, help="highest derivative (default 3)")
    args = parse_args(parser)

    xs = np.linspace(-7, 7, 200)
    curves = derivatives(xs, args.order)
    plt = pyplot(skipped="skipped tanh_derivatives.png")
    if plt is not None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, c in enumerate(curves):
            ax.plot(xs, c, label="y = tanh(x)" if i == 0 else f"y{chr(39) * i}" if i < 4 else f"y^({i})")
        ax.set_xlabel("x")
        ax.set_ylabel("y and its derivatives")
        ax.set_title(f"tanh and its first {args.order} derivatives")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        save_figure(fig, args.out, "tanh_derivatives.png", bbox_inches="tight")

    # The N-th derivative at x = 1 (the book's step 35), a Variable named gx{N}, and its graph.
    gx = tanh_derivative(args.order)
    print(f"d^{args.order}/dx^{args.order} tanh(x) at x=1: {gx.item():.6f}")
    path = plot_dot_graph(gx, verbose=False, to_file=os.path.join(args.out, f"tanh_gx{args.order}.png"))
    print("wrote", path)


if __name__ == "__main__":
    main()
