"""Recognize handwritten digits (scikit-learn's bundled 8x8 images) with a small CNN.

Run: ``python examples/digits_cnn.py`` (``--epochs N``, ``--out DIR``); needs
scikit-learn (``pip install scikit-learn``), no network.

Shows how to write a ``Dataset`` and a ``Model`` with ``Conv2d`` and
``pooling``.  Writes ``digits_curves.png`` (loss and accuracy per epoch) and
``digits_predictions.png`` (test images with the predicted label; red when wrong).
"""
import numpy as np

import leafgrad
import leafgrad.functions as F
import leafgrad.layers as L
from leafgrad import optimizers
from leafgrad.dataloaders import DataLoader
from leafgrad.datasets import Dataset
from leafgrad.models import Model

from _example_common import (evaluate, make_parser, parse_args, plot_curves, plot_predictions, pyplot,
                             save_figure)


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
    args = parse_args(make_parser(__doc__, epochs=15))
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
        test_loss, test_acc = evaluate(model, test_loader)
        history.append((sum_loss / len(train_set), sum_acc / len(train_set), test_loss, test_acc))
        print(f"epoch {epoch + 1}: loss {history[-1][0]:.4f}, train acc {history[-1][1]:.3f}, "
              f"test acc {test_acc:.3f}")

    if pyplot() is None:
        return
    save_figure(plot_curves(history, "8x8 digits, small CNN, Adam"), args.out, "digits_curves.png")

    x, t = test_set.data[:24], test_set.label[:24]
    with leafgrad.no_grad():
        pred = np.argmax(model(x).data, axis=1)
    save_figure(plot_predictions(x[:, 0], pred, t, "test digits and the CNN's predictions (red: wrong)"),
                args.out, "digits_predictions.png")


if __name__ == "__main__":
    main()
