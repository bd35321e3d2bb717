"""Classify MNIST digits with an MLP, as in the book's step 51.

Run: ``python examples/mnist_mlp.py`` (``--epochs N``, ``--hidden H``,
``--limit N`` to train on the first N images, ``--out DIR``).  Downloads MNIST
(about 11 MB) once into leafgrad's cache folder (``~/.leafgrad``, or
``$LEAFGRAD_CACHE_DIR``).

Writes ``mnist_curves.png`` (loss and accuracy per epoch) and
``mnist_predictions.png`` (test images with the predicted label; red when wrong).
"""
import argparse
import os
import time

import numpy as np

import leafgrad
import leafgrad.functions as F
from leafgrad import optimizers
from leafgrad.dataloaders import DataLoader
from leafgrad.datasets import MNIST
from leafgrad.models import MLP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="default 5")
    parser.add_argument("--hidden", type=int, default=1000, help="units in each of two hidden layers")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--out", default="out", help="folder for the pictures (default ./out)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    np.random.seed(0)

    train_set, test_set = MNIST(train=True), MNIST(train=False)  # 784 float32 values in [0, 1] each
    if args.limit is not None:
        train_set.data, train_set.label = train_set.data[:args.limit], train_set.label[:args.limit]
        test_set.data, test_set.label = test_set.data[:args.limit], test_set.label[:args.limit]
    train_loader = DataLoader(train_set, batch_size=100)
    test_loader = DataLoader(test_set, batch_size=100, shuffle=False)

    model = MLP((args.hidden, args.hidden, 10), activation=F.relu)
    optimizer = optimizers.Adam().setup(model)

    history = []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        sum_loss = sum_acc = 0.0
        for x, t in train_loader:
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(t)
            sum_acc += float(F.accuracy(y, t).data) * len(t)
        seconds = time.perf_counter() - start
        test_loss = test_acc = 0.0
        with leafgrad.no_grad():
            for x, t in test_loader:
                y = model(x)
                test_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
                test_acc += float(F.accuracy(y, t).data) * len(t)
        history.append((sum_loss / len(train_set), sum_acc / len(train_set),
                        test_loss / len(test_set), test_acc / len(test_set)))
        print(f"epoch {epoch + 1}: loss {history[-1][0]:.4f}, train acc {history[-1][1]:.4f}, "
              f"test acc {history[-1][3]:.4f} ({seconds:.1f} s)")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): pictures skipped")
        return
    h = np.array(history).reshape(-1, 4)
    epochs = np.arange(1, len(h) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, h[:, 0], marker="o", label="train")
    ax1.plot(epochs, h[:, 2], marker="o", label="test")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss (softmax cross-entropy)")
    ax2.plot(epochs, 100 * h[:, 1], marker="o", label="train")
    ax2.plot(epochs, 100 * h[:, 3], marker="o", label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    for ax in (ax1, ax2):
        ax.set_xticks(epochs)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"MNIST, MLP 784-{args.hidden}-{args.hidden}-10 (ReLU), Adam")
    fig.tight_layout()
    path = os.path.join(args.out, "mnist_curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)

    images = test_set.data[:24]
    x = np.stack([test_set[i][0] for i in range(len(images))])
    with leafgrad.no_grad():
        pred = np.argmax(model(x).data, axis=1)
    fig, axes = plt.subplots(3, 8, figsize=(10, 4.4))
    for ax, img, p, label in zip(axes.ravel(), images, pred, test_set.label[:24]):
        ax.imshow(img.reshape(28, 28), cmap="gray_r")
        ax.set_title(f"predicted {p}", color="black" if p == label else "red", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("MNIST test images and the MLP's predictions (red: wrong)")
    fig.tight_layout()
    path = os.path.join(args.out, "mnist_predictions.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)


if __name__ == "__main__":
    main()
