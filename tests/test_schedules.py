"""Learning-rate schedules: nanoGPT's warm-up and cosine values, and a Trainer that follows them."""
import math

import numpy as np
import pytest

from leafgrad.optimizers import SGD, AdaDelta, Adam, AdamW
from leafgrad.schedules import Constant, WarmupCosine, set_lr


def nanogpt_get_lr(it, learning_rate=1e-3, warmup_iters=100, lr_decay_iters=2000, min_lr=1e-4):
    """nanoGPT's train.py get_lr, restated."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


def test_warmup_cosine_key_iterations():
    s = WarmupCosine(1e-3, warmup_iters=100, decay_iters=2000, min_lr=1e-4)
    assert s(0) == pytest.approx(1e-3 / 101)
    assert s(99) == pytest.approx(1e-3 * 100 / 101)
    assert s(100) == pytest.approx(1e-3)              # the peak, after warm-up
    assert s(1050) == pytest.approx((1e-3 + 1e-4) / 2)  # half-way down the cosine
    assert s(2000) == pytest.approx(1e-4)
    assert s(5000) == 1e-4
    for it in range(0, 2500, 7):
        assert s(it) == pytest.approx(nanogpt_get_lr(it), rel=1e-12)


def test_plain_cosine_and_constant():
    s = WarmupCosine(0.1, warmup_iters=0, decay_iters=10, min_lr=0.0)
    assert s(0) == pytest.approx(0.1) and s(5) == pytest.approx(0.05) and s(10) == 0.0
    assert Constant(0.3)(123) == 0.3
    with pytest.raises(ValueError, match="warmup_iters"):
        WarmupCosine(0.1, warmup_iters=10, decay_iters=5)


def test_apply_sets_the_base_learning_rate():
    adam, adamw, sgd = Adam(), AdamW(), SGD()
    s = WarmupCosine(1e-3, warmup_iters=100, decay_iters=2000, min_lr=1e-4)
    assert s.apply(adamw, 100) == pytest.approx(1e-3) and adamw.alpha == pytest.approx(1e-3)
    s.apply(adam, 0)
    assert adam.alpha == pytest.approx(1e-3 / 101)
    set_lr(sgd, 0.5)
    assert sgd.lr == 0.5
    with pytest.raises(ValueError, match="AdaDelta"):
        set_lr(AdaDelta(), 0.1)


def test_trainer_sets_the_rate_before_each_step():
    from leafgrad.models import MLP
    from leafgrad.training import Callback, Trainer
    seen = []

    class Watch(Callback):
        def on_batch_end(self, trainer, batch, loss, acc):
            seen.append(trainer.optimizer.lr)

    rng = np.random.RandomState(0)
    x, t = rng.randn(40, 2).astype(np.float32), rng.randint(0, 3, 40)
    s = WarmupCosine(0.1, warmup_iters=3, decay_iters=8, min_lr=0.01)
    trainer = Trainer(MLP((5, 3)), SGD(), batch_size=10, schedule=s)
    trainer.fit(x, t, epochs=3, callbacks=[Watch()])
    assert trainer.iteration == 12
    assert seen == pytest.approx([s(i) for i in range(12)])
