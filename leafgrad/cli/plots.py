"""The pictures of a run (matplotlib is optional: without it each function returns False and draws nothing).

``curves.png``: loss and accuracy against epoch; ``decision_boundary.png``: the
predicted class over the plane of two input features; for your own data,
``confusion_matrix.png`` (classification) or ``predictions.png`` (regression)
on the test rows.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np

from leafgrad._atomic import write_atomic
from leafgrad.training import EpochMetrics

__all__ = ["figure_class", "plot_curves", "plot_iteration_curves", "plot_decision_boundary",
           "plot_confusion_matrix", "plot_predictions"]


def figure_class() -> Optional[type]:
    """matplotlib's ``Figure`` (no pyplot: no window, no global state), or None when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def _save_figure(fig: Any, path: str) -> None:
    def write(f: Any) -> None:
        fig.savefig(f, format="png", dpi=100)
    write_atomic(path, write)


def plot_curves(path: str, history: Sequence[EpochMetrics], title: str, loss_name: str) -> bool:
    """Draw loss (and accuracy, unless it is NaN) against epoch into ``path``; False without matplotlib."""
    Figure = figure_class()
    if Figure is None:
        return False
    m = np.array(history, dtype=np.float64).reshape(-1, len(EpochMetrics._fields))
    epoch = m[:, 0]
    with_acc = not np.all(np.isnan(m[:, 2]))
    fig = Figure(figsize=(10, 4) if with_acc else (5.5, 4), layout="constrained")
    axes = fig.subplots(1, 2) if with_acc else [fig.subplots()]
    marker = "o" if len(epoch) <= 30 else None
    ax_loss = axes[0]
    ax_loss.plot(epoch, m[:, 1], marker=marker, label="train (mean over the epoch)")
    if not np.all(np.isnan(m[:, 3])):
        ax_loss.plot(epoch, m[:, 3], marker=marker, label="test")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel(f"loss ({loss_name})")
    ax_loss.set_title("loss")
    if with_acc:
        ax_acc = axes[1]
        ax_acc.plot(epoch, 100 * m[:, 2], marker=marker, label="train (mean over the epoch)")
        if not np.all(np.isnan(m[:, 4])):
            ax_acc.plot(epoch, 100 * m[:, 4], marker=marker, label="test")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("accuracy (%)")
        ax_acc.set_title("accuracy")
        ax_acc.set_ylim(0, 100)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
        if len(epoch) and epoch.max() <= 10:
            ax.set_xticks(epoch)
    fig.suptitle(title)
    _save_figure(fig, path)
    return True


def plot_iteration_curves(path: str, history: Sequence[Any], title: str) -> bool:
    """Draw a run counted in iterations: train and validation loss, and the learning rate, against iteration."""
    Figure = figure_class()
    if Figure is None:
        return False
    m = np.array(history, dtype=np.float64).reshape(-1, 5)  # IterationMetrics
    it = m[:, 0]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_lr = fig.subplots(1, 2, width_ratios=(2, 1))
    marker = "o" if len(it) <= 30 else None
    ax_loss.plot(it, m[:, 1], marker=marker, label="train")
    ax_loss.plot(it, m[:, 2], marker=marker, label="validation")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("loss (cross-entropy per character)")
    ax_loss.set_title("loss on fixed batches")
    ax_loss.legend()
    ax_lr.plot(it[1:], m[1:, 3], marker=marker, color="C2")
    ax_lr.set_xlabel("iteration")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("learning rate (last step)")
    for ax in (ax_loss, ax_lr):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _save_figure(fig, path)
    return True


def plot_decision_boundary(path: str, classify: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                           t: np.ndarray, class_names: Sequence[str], axis_names: Sequence[str],
                           title: str) -> bool:
    """Draw ``classify`` (points ``(M, 2)`` -> class indices) over the plane, with the points ``x, t``."""
    Figure = figure_class()
    if Figure is None:
        return False
    x = np.asarray(x, dtype=np.float64)
    low, high = x.min(axis=0), x.max(axis=0)
    # A margin of 5% of the range (0.1 on spiral's [-1, 1]), so that any units work (1e300 or 1e-300).
    pad = np.where(high > low, 0.05 * (high - low), np.maximum(0.05 * np.abs(high), 1e-300))
    lo, hi = low - pad, high + pad
    n = 200
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    grid = np.c_[g0.ravel(), g1.ravel()]  # float64: the file's units may not fit in float32
    pred = classify(grid).reshape(g0.shape)
    k = len(class_names)
    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.subplots()
    colors = [f"C{c % 10}" for c in range(k)]  # matplotlib's default cycle: regions match points
    ax.contourf(g0, g1, pred, levels=np.arange(k + 1) - 0.5, colors=colors, alpha=0.25)
    markers = "o^sDv<>ph*"
    for c in range(k):
        sel = t == c
        ax.scatter(x[sel, 0], x[sel, 1], s=18, marker=markers[c % len(markers)], color=colors[c],
                   label=class_names[c], edgecolors="black", linewidths=0.4)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    _save_figure(fig, path)
    return True


#: The most classes a picture shows one by one; past it the confusion matrix shows the most frequent
#: classes and gathers the rest as "other", and no decision boundary is drawn.
MAX_CLASSES_SHOWN = 30


def confusion_counts(t: np.ndarray, predicted: np.ndarray, k: int,
                     most: int = MAX_CLASSES_SHOWN) -> Tuple[np.ndarray, np.ndarray]:
    """Counts of (true class, predicted class) for at most ``most`` classes, and which classes those are.

    With more than ``most`` classes, the ``most - 1`` classes seen most often
    (as true or predicted class) are kept and the others are summed into a
    last row and column (``-1`` in the returned classes).  Memory grows with
    the rows and the classes, never with the square of the classes.
    """
    t, predicted = np.asarray(t, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if k <= most:
        shown = np.arange(k)
    else:
        seen = np.bincount(t, minlength=k) + np.bincount(predicted, minlength=k)
        top = np.sort(np.argsort(-seen, kind="stable")[:most - 1])
        shown = np.append(top, -1)
    position = np.full(k, len(shown) - 1, dtype=np.int64)  # "other", when there is one
    position[shown[shown >= 0]] = np.arange(int(np.sum(shown >= 0)))
    m = len(shown)
    counts = np.bincount(position[t] * m + position[predicted], minlength=m * m).reshape(m, m)
    return counts, shown


def plot_confusion_matrix(path: str, t: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
                          title: str) -> bool:
    """Draw how many rows of each true class (rows) got each predicted class (columns).

    Past :data:`MAX_CLASSES_SHOWN` classes, the most frequent ones and "other" (see :func:`confusion_counts`).
    """
    Figure = figure_class()
    if Figure is None:
        return False
    counts, shown = confusion_counts(t, predicted, len(class_names))
    names = [class_names[c] if c >= 0 else f"other ({len(class_names) - len(shown) + 1} classes)" for c in shown]
    if len(shown) < len(class_names):
        title += f"\n(the {len(shown) - 1} most frequent of {len(class_names)} classes)"
    k = len(names)
    size = min(4 + 0.45 * k, 14)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, label="rows")
    ax.set_xticks(range(k), labels=names, rotation=45 if k > 5 else 0, ha="right" if k > 5 else "center")
    ax.set_yticks(range(k), labels=names)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize="small" if k > 12 else None,
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    _save_figure(fig, path)
    return True


def plot_predictions(path: str, t: np.ndarray, predicted: np.ndarray, target_name: str, title: str) -> bool:
    """Draw predicted against true values (one point per row and output), with the line of perfect predictions."""
    Figure = figure_class()
    if Figure is None:
        return False
    fig = Figure(figsize=(5.5, 5.5), layout="constrained")
    ax = fig.subplots()
    true, pred = t.ravel(), predicted.ravel()
    ax.scatter(true, pred, s=14, alpha=0.7, edgecolors="black", linewidths=0.3)
    lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="C1", label="perfect prediction")
    ax.set_xlabel(f"true {target_name}")
    ax.set_ylabel(f"predicted {target_name}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    _save_figure(fig, path)
    return True
