"""Train a character-level GPT on tiny Shakespeare with a hand-written loop, nanoGPT's CPU recipe.

Run: ``python examples/gpt_shakespeare.py`` (``--iters N``, ``--eval-iters N``, ``--sample N``, ``--out DIR``).

4 layers, 4 heads, 128 wide, context 64, batch 12, 2,000 iterations; AdamW
(lr 1e-3, betas 0.9/0.99, weight decay 0.1 on matrices and embeddings), 100
warm-up iterations then cosine decay to 1e-4, gradients clipped at norm 1.0.
``leafgrad train --dataset shakespeare`` runs the same recipe with checkpoints
and curves.  Prints the losses, then a sample; writes ``gpt_loss.png``.
"""
import numpy as np

import leafgrad
import leafgrad.functions as F
from leafgrad import optimizers
from leafgrad.datasets import TinyShakespeare
from leafgrad.models import GPT
from leafgrad.schedules import WarmupCosine

from _example_common import make_parser, parse_args, pyplot, save_figure


def estimate_loss(model, batches):
    """Mean loss over fixed batches, recording no graph."""
    total = 0.0
    with leafgrad.no_grad(), leafgrad.test_mode():
        for x, t in batches:
            y = model(x)
            total += float(F.softmax_cross_entropy(y.reshape(-1, y.shape[-1]), t.reshape(-1)).data)
    return total / len(batches)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--iters", type=int, default=2000, help="training iterations (default 2000)")
    parser.add_argument("--eval-iters", type=int, default=20, help="batches per loss estimate (default 20)")
    parser.add_argument("--sample", type=int, default=300, help="characters to generate at the end (default 300)")
    args = parse_args(parser)

    batch_size, block_size, eval_interval = 12, 64, 250
    text = TinyShakespeare()
    np.random.seed(0)
    model = GPT(text.vocab_size, block_size=block_size, n_layer=4, n_head=4, n_embd=128)
    optimizer = optimizers.AdamW(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1).setup(model)
    optimizer.add_hook(optimizers.ClipGrad(1.0))
    schedule = WarmupCosine(1e-3, warmup_iters=min(100, args.iters // 10), decay_iters=args.iters, min_lr=1e-4)

    rng = np.random.RandomState(0)
    evals = {split: text.fixed_batches(split, args.eval_iters, batch_size, block_size) for split in ("train", "val")}
    history = []
    for it in range(args.iters + 1):
        if it % eval_interval == 0 or it == args.iters:
            losses = {split: estimate_loss(model, batches) for split, batches in evals.items()}
            history.append((it, losses["train"], losses["val"]))
            print(f"iter {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        if it == args.iters:
            break
        schedule.apply(optimizer, it)
        x, t = text.get_batch("train", batch_size, block_size, rng)
        y = model(x)
        loss = F.softmax_cross_entropy(y.reshape(-1, text.vocab_size), t.reshape(-1))
        model.cleargrads()
        loss.backward()
        optimizer.update()

    start = text.encode("\n")[None, :]
    sample = model.generate(start, args.sample, temperature=0.8, rng=np.random.RandomState(1))
    print(text.decode(sample[0]))

    plt = pyplot()
    if plt is None:
        return
    h = np.array(history)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(h[:, 0], h[:, 1], marker="o", label="train")
    ax.plot(h[:, 0], h[:, 2], marker="o", label="validation")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy per character")
    ax.set_title("GPT on tiny Shakespeare (4 layers, 4 heads, 128 wide)")
    ax.legend()
    ax.grid(alpha=0.3)
    save_figure(fig, args.out, "gpt_loss.png", bbox_inches="tight")


if __name__ == "__main__":
    main()
