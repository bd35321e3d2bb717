"""Recognize handwritten digits (scikit-learn's bundled 8x8 images) with a small CNN.

Run: ``python examples/digits_cnn.py`` (``--epochs N``, ``--out DIR``); needs
scikit-learn (``pip install scikit-learn``), no network.

Shows how to write a ``Dataset`` and a ``Model`` with ``Conv2d`` and
``pooling``.  Writes ``digits_curves.png`` (loss and accuracy per epoch) and
``digits_predictions.png`` (test images with the predicted label; red when wrong).
"""
import argparse
import os

import numpy as np

import leafgrad
import leafgrad.functions as F
import leafgrad.layers as L
from leafgrad import optimizers
from leafgrad.dataloaders import DataLoader
from leafgrad.datasets import Dataset
from leafgrad.models import Model


class Digits(Dataset):
    """The 1,797 8x8 digit images of scikit-learn as (1, 8, 8) float32 in [0, 1]; 80% train, 20% test."""

    def prepare(self):
        from sklearn.datasets import load_digits
        digits = load_digits()
        x = (digits.images / 16.0).astype(np.float32)[:, np.newaxis]
        t = digits.target.astype(np.int64)
        order = np.random.RandomState(0).permutation(len(x))  # the same split every time
        cut = int(0.8 * len(x))
        idx = order[:cut] if self.train else order[cut:]
        self.data, self.label = x[idx], t[idx]


class DigitsCNN(Model):
    """conv(16) -> relu -> pool -> conv(32) -> relu -> pool -> linear(64) -> relu -> linear(10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = L.Conv2d(16, kernel_size=3, stride=1, pad=1)
        self.conv2 = L.Conv2d(32, kernel_size=3, stride=1, pad=1)
        self.fc1 = L.Linear(64)
        self.fc2 = L.Linear(10)

    def forward(self, x):
        x = F.pooling(F.relu(self.conv1(x)), 2, 2)     # (N, 16, 4, 4)
        x = F.pooling(F.relu(self.conv2(x)), 2, 2)     # (N, 32, 2, 2)
        x = F.reshape(x, (x.shape[0], -1))
        return self.fc2(F.relu(self.fc1(x)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="default 15")
    parser.add_argument("--out", default="out", help="folder for the pictures (default ./out)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    np.random.seed(0)

    train_set, test_set = Digits(train=True), Digits(train=False)
    train_loader = DataLoader(train_set, batch_size=32)
    test_loader = DataLoader(test_set, batch_size=200, shuffle=False)
    model = DigitsCNN()
    optimizer = optimizers.Adam(alpha=0.002).setup(model)

    history = []
    for epoch in range(args.epochs):
        sum_loss = sum_acc = 0.0
        for x, t in train_loader:
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(t)
            sum_acc += float(F.accuracy(y, t).data) * len(t)
        test_loss = test_acc = 0.0
        with leafgrad.no_grad():
            for x, t in test_loader:
                y = model(x)
                test_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
                test_acc += float(F.accuracy(y, t).data) * len(t)
        history.append((sum_loss / len(train_set), sum_acc / len(train_set),
                        test_loss / len(test_set), test_acc / len(test_set)))
        print(f"epoch {epoch + 1}: loss {history[-1][0]:.4f}, train acc {history[-1][1]:.3f}, "
              f"test acc {history[-1][3]:.3f}")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): pictures skipped")
        return
    h = np.array(history)
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
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("8x8 digits, small CNN, Adam")
    fig.tight_layout()
    path = os.path.join(args.out, "digits_curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)

    x, t = test_set.data[:24], test_set.label[:24]
    with leafgrad.no_grad():
        pred = np.argmax(model(x).data, axis=1)
    fig, axes = plt.subplots(3, 8, figsize=(10, 4.4))
    for ax, img, p, label in zip(axes.ravel(), x[:, 0], pred, t):
        ax.imshow(img, cmap="gray_r")
        ax.set_title(f"predicted {p}", color="black" if p == label else "red", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("test digits and the CNN's predictions (red: wrong)")
    fig.tight_layout()
    path = os.path.join(args.out, "digits_predictions.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)


if __name__ == "__main__":
    main()
