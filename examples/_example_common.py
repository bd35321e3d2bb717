"""What the examples share: their command line, matplotlib, the test pass and the usual pictures.

Not part of leafgrad and not an example itself: ``python examples/NAME.py``
puts this folder on ``sys.path``, so each example imports it as
``_example_common``.  The training loops stay in the examples: they are what
the examples show.
"""
import argparse
import os
from typing import Any, Optional, Sequence, Tuple

import numpy as np

import leafgrad
import leafgrad.functions as F


def make_parser(doc: str, epochs: Optional[int] = None, epochs_help: Optional[str] = None
                ) -> argparse.ArgumentParser:
    """An argument parser described by the first line of ``doc``; ``--epochs`` when ``epochs`` gives a default."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if epochs is not None:
        parser.add_argument("--epochs", type=int, default=epochs, help=epochs_help or f"default {epochs}")
    return parser


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add ``--out DIR`` (default ``./out``) to ``parser``, parse the command line and create that folder."""
    parser.add_argument("--out", default="out", help="folder for the pictures (default ./out)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    return args


def pyplot(skipped: str = "pictures skipped") -> Any:
    """``matplotlib.pyplot`` drawing to files only (Agg), or None, after saying ``skipped``, without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed (pip install matplotlib): {skipped}")
        return None
    return plt


def save_figure(fig: Any, out: str, name: str, **savefig_options: Any) -> str:
    """Save ``fig`` as ``out/name`` (100 dpi), close it, say so and return the path."""
    import matplotlib.pyplot as plt
    path = os.path.join(out, name)
    fig.savefig(path, dpi=100, **savefig_options)
    plt.close(fig)
    print("wrote", path)
    return path


def evaluate(model: Any, loader: Any) -> Tuple[float, float]:
    """Mean softmax cross-entropy and accuracy of ``model`` over ``loader``'s data set, recording no graph."""
    sum_loss = sum_acc = 0.0
    with leafgrad.no_grad():
        for x, t in loader:
            y = model(x)
            sum_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
            sum_acc += float(F.accuracy(y, t).data) * len(t)
    n = len(loader.dataset)
    return sum_loss / n, sum_acc / n


def plot_curves(history: Sequence[Sequence[float]], title: str) -> Any:
    """Loss and accuracy against epoch, train and test; ``history`` holds
    ``(train_loss, train_acc, test_loss, test_acc)`` per epoch.  Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    h = np.array(history, dtype=np.float64).reshape(-1, 4)
    epochs = np.arange(1, len(h) + 1)
    marker = "o" if len(h) <= 30 else None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, h[:, 0], marker=marker, label="train")
    ax1.plot(epochs, h[:, 2], marker=marker, label="test")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss (softmax cross-entropy)")
    ax2.plot(epochs, 100 * h[:, 1], marker=marker, label="train")
    ax2.plot(epochs, 100 * h[:, 3], marker=marker, label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_predictions(images: np.ndarray, pred: Sequence[int], labels: Sequence[int], title: str) -> Any:
    """Up to 24 ``images`` (N, H, W) in a 3 x 8 grid, each titled with its predicted class (red when wrong)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(3, 8, figsize=(10, 4.4))
    for ax, img, p, label in zip(axes.ravel(), images, pred, labels):
        ax.imshow(img, cmap="gray_r")
        ax.set_title(f"predicted {p}", color="black" if p == label else "red", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig
