"""Predict the next value of a noisy sine wave with an LSTM, as in the book's step 60.

Run: ``python examples/sincurve_lstm.py`` (``--epochs N``, ``--out DIR``).

Trains on ``SinCurve`` with truncated backpropagation through time (30 steps),
then lets the model predict a cosine it never saw.  Writes ``sincurve_loss.png``
and ``sincurve_prediction.png``.
"""
import numpy as np

import leafgrad
import leafgrad.functions as F
import leafgrad.layers as L
from leafgrad import optimizers
from leafgrad.dataloaders import SeqDataLoader
from leafgrad.datasets import SinCurve
from leafgrad.models import Model

from _example_common import make_parser, parse_args, pyplot, save_figure


class BetterRNN(Model):
    """An LSTM layer followed by a linear read-out."""

    def __init__(self, hidden_size: int, out_size: int) -> None:
        super().__init__()
        self.rnn = L.LSTM(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self) -> None:
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


def main() -> None:
    args = parse_args(make_parser(__doc__, epochs=100))

    batch_size, hidden_size, bptt_length = 30, 100, 30
    train_set = SinCurve(train=True)
    dataloader = SeqDataLoader(train_set, batch_size=batch_size)
    seqlen = len(train_set)

    model = BetterRNN(hidden_size, 1)
    optimizer = optimizers.Adam().setup(model)

    losses = []
    for epoch in range(args.epochs):
        model.reset_state()
        loss, count = 0, 0
        for x, t in dataloader:
            y = model(x)
            loss += F.mean_squared_error(y, t)
            count += 1
            if count % bptt_length == 0 or count == seqlen:
                model.cleargrads()
                # truncated backpropagation through time, as the book writes it: backward frees
                # what the graph kept, unchain_backward() cuts it, the LSTM state starts anew.
                loss.backward()
                loss.unchain_backward()
                optimizer.update()
        losses.append(float(loss.data) / count)
        if (epoch + 1) % max(1, args.epochs // 10) == 0 or epoch + 1 == args.epochs:
            print(f"epoch {epoch + 1}: loss {losses[-1]:.6f}")

    # Predict a cosine, one step at a time, without recording a graph.
    xs = np.cos(np.linspace(0, 4 * np.pi, 1000))
    model.reset_state()
    preds = []
    with leafgrad.no_grad():
        for x in xs:
            y = model(np.array(x).reshape(1, 1))
            preds.append(y.item())

    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(np.arange(1, len(losses) + 1), losses, marker="o" if len(losses) <= 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error")
    ax.set_yscale("log")
    ax.set_title(f"SinCurve LSTM({hidden_size}), truncated BPTT of {bptt_length} steps")
    ax.grid(alpha=0.3)
    save_figure(fig, args.out, "sincurve_loss.png", bbox_inches="tight")

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.arange(len(xs))
    ax.plot(steps[:-1], xs[1:], label="y = cos(x), next value")
    ax.plot(steps[:-1], preds[:-1], label="predicted next value", linestyle="--")
    ax.set_xlabel("time step")
    ax.set_ylabel("value")
    ax.set_title("the trained LSTM predicting a cosine it never saw")
    ax.legend(loc="lower center")
    ax.grid(alpha=0.3)
    save_figure(fig, args.out, "sincurve_prediction.png", bbox_inches="tight")


if __name__ == "__main__":
    main()
