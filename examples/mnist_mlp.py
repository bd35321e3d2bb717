"""Classify MNIST digits with an MLP, as in the book's step 51.

Run: ``python examples/mnist_mlp.py`` (``--epochs N``, ``--hidden H``,
``--limit N`` to train on the first N images, ``--out DIR``).  Downloads MNIST
(about 11 MB) once into leafgrad's cache folder (``~/.leafgrad``, or
``$LEAFGRAD_CACHE_DIR``).

Writes ``mnist_curves.png`` (loss and accuracy per epoch) and
``mnist_predictions.png`` (test images with the predicted label; red when wrong).
"""
import time

import numpy as np

import leafgrad
import leafgrad.functions as F
from leafgrad import optimizers
from leafgrad.dataloaders import DataLoader
from leafgrad.datasets import MNIST
from leafgrad.models import MLP

from _example_common import (evaluate, make_parser, parse_args, plot_curves, plot_predictions, pyplot,
                             save_figure)


def main() -> None:
    parser = make_parser(__doc__, epochs=5)
    parser.add_argument("--hidden", type=int, default=1000, help="units in each of two hidden layers")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    args = parse_args(parser)
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
        test_loss, test_acc = evaluate(model, test_loader)
        history.append((sum_loss / len(train_set), sum_acc / len(train_set), test_loss, test_acc))
        print(f"epoch {epoch + 1}: loss {history[-1][0]:.4f}, train acc {history[-1][1]:.4f}, "
              f"test acc {test_acc:.4f} ({seconds:.1f} s)")

    if pyplot() is None:
        return
    save_figure(plot_curves(history, f"MNIST, MLP 784-{args.hidden}-{args.hidden}-10 (ReLU), Adam"),
                args.out, "mnist_curves.png")

    images = test_set.data[:24]
    x = np.stack([test_set[i][0] for i in range(len(images))])
    with leafgrad.no_grad():
        pred = np.argmax(model(x).data, axis=1)
    save_figure(plot_predictions(images.reshape(-1, 28, 28), pred, test_set.label[:24],
                                 "MNIST test images and the MLP's predictions (red: wrong)"),
                args.out, "mnist_predictions.png")


if __name__ == "__main__":
    main()
