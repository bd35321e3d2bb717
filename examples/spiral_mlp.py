"""Classify the spiral data set with a two-layer MLP, as in the book's steps 48-50.

Run: ``python examples/spiral_mlp.py`` (``--epochs N``, ``--out DIR``).

Writes ``spiral_loss.png`` (loss and accuracy against epoch, train and test)
and ``spiral_boundary.png`` (the decision regions with the training points).
"""
import numpy as np

import leafgrad
import leafgrad.functions as F
from leafgrad import optimizers
from leafgrad.dataloaders import DataLoader
from leafgrad.datasets import Spiral
from leafgrad.models import MLP

from _example_common import evaluate, make_parser, parse_args, plot_curves, pyplot, save_figure


def main() -> None:
    args = parse_args(make_parser(__doc__, epochs=300, epochs_help="default 300 (about 10 s)"))

    batch_size, hidden_size, lr = 30, 10, 1.0
    train_set, test_set = Spiral(train=True), Spiral(train=False)
    train_loader = DataLoader(train_set, batch_size)
    test_loader = DataLoader(test_set, batch_size, shuffle=False)

    model = MLP((hidden_size, 3))           # sigmoid between the layers, as in the book
    optimizer = optimizers.SGD(lr).setup(model)

    history = []                            # (train loss, train acc, test loss, test acc) per epoch
    for epoch in range(args.epochs):
        sum_loss = sum_acc = 0.0
        for x, t in train_loader:
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            acc = F.accuracy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(t)
            sum_acc += float(acc.data) * len(t)
        test_loss, test_acc = evaluate(model, test_loader)
        history.append((sum_loss / len(train_set), sum_acc / len(train_set), test_loss, test_acc))
        if (epoch + 1) % max(1, args.epochs // 10) == 0 or epoch + 1 == args.epochs:
            print(f"epoch {epoch + 1}: loss {history[-1][0]:.4f}, "
                  f"train acc {history[-1][1]:.3f}, test acc {test_acc:.3f}")

    plt = pyplot()
    if plt is None:
        return
    save_figure(plot_curves(history, f"spiral, MLP 2-{hidden_size}-3, SGD lr={lr}"),
                args.out, "spiral_loss.png")

    # Decision regions: predict the class of every point of a grid.
    x, t = train_set.data, train_set.label
    h = 0.01
    x0, x1 = np.meshgrid(np.arange(x[:, 0].min() - 0.1, x[:, 0].max() + 0.1, h),
                         np.arange(x[:, 1].min() - 0.1, x[:, 1].max() + 0.1, h))
    grid = np.c_[x0.ravel(), x1.ravel()].astype(np.float32)
    with leafgrad.no_grad():
        pred = np.argmax(model(grid).data, axis=1).reshape(x0.shape)
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ax.contourf(x0, x1, pred, levels=[-0.5, 0.5, 1.5, 2.5], colors=["C0", "C1", "C2"], alpha=0.25)
    for c, marker in zip(range(3), "o^s"):
        ax.scatter(x[t == c, 0], x[t == c, 1], s=18, marker=marker, color=f"C{c}",
                   edgecolors="black", linewidths=0.4, label=f"class {c}")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(f"decision regions after {args.epochs} epochs")
    ax.legend(loc="upper right")
    save_figure(fig, args.out, "spiral_boundary.png", bbox_inches="tight")


if __name__ == "__main__":
    main()
