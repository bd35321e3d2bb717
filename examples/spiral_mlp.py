"""Classify the spiral data set with a two-layer MLP, as in the book's steps 48-50.

Run: ``python examples/spiral_mlp.py`` (``--epochs N``, ``--out DIR``).

Writes ``spiral_loss.png`` (loss and accuracy against epoch, train and test)
and ``spiral_boundary.png`` (the decision regions with the training points).
"""
import argparse
import os

import numpy as np

import leafgrad
import leafgrad.functions as F
from leafgrad import optimizers
from leafgrad.dataloaders import DataLoader
from leafgrad.datasets import Spiral
from leafgrad.models import MLP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300, help="default 300 (about 10 s)")
    parser.add_argument("--out", default="out", help="folder for the pictures (default ./out)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    batch_size, hidden_size, lr = 30, 10, 1.0
    train_set, test_set = Spiral(train=True), Spiral(train=False)
    train_loader = DataLoader(train_set, batch_size)
    test_loader = DataLoader(test_set, batch_size, shuffle=False)

    model = MLP((hidden_size, 3))           # sigmoid between the layers, as in the book
    optimizer = optimizers.SGD(lr).setup(model)

    history = {"train_loss": [], "test_loss": [], "train_acc": [], "test_acc": []}
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
        history["train_loss"].append(sum_loss / len(train_set))
        history["train_acc"].append(sum_acc / len(train_set))

        sum_loss = sum_acc = 0.0
        with leafgrad.no_grad():
            for x, t in test_loader:
                y = model(x)
                sum_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
                sum_acc += float(F.accuracy(y, t).data) * len(t)
        history["test_loss"].append(sum_loss / len(test_set))
        history["test_acc"].append(sum_acc / len(test_set))
        if (epoch + 1) % max(1, args.epochs // 10) == 0 or epoch + 1 == args.epochs:
            print(f"epoch {epoch + 1}: loss {history['train_loss'][-1]:.4f}, "
                  f"train acc {history['train_acc'][-1]:.3f}, test acc {history['test_acc'][-1]:.3f}")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): pictures skipped")
        return

    epochs = np.arange(1, args.epochs + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, history["train_loss"], label="train")
    ax1.plot(epochs, history["test_loss"], label="test")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss (softmax cross-entropy)")
    ax2.plot(epochs, 100 * np.array(history["train_acc"]), label="train")
    ax2.plot(epochs, 100 * np.array(history["test_acc"]), label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    for ax in (ax1, ax2):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"spiral, MLP 2-{hidden_size}-3, SGD lr={lr}")
    fig.tight_layout()
    path = os.path.join(args.out, "spiral_loss.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)

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
    path = os.path.join(args.out, "spiral_boundary.png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print("wrote", path)


if __name__ == "__main__":
    main()
