"""leafgrad.training: fit, evaluate, predict, callbacks, exact resume, divergence; and the pieces it builds on
(the optimizer table, SmallCNN, ShardSampler.split)."""
import math
import numpy as np
import pytest

import leafgrad.functions as F
from leafgrad.datasets import get_spiral
from leafgrad.distributed import Communicator, DistributedOptimizer, ShardSampler
from leafgrad.models import MLP, SmallCNN
from leafgrad.optimizers import OPTIMIZERS, SGD, AdaDelta, Adam, MomentumSGD, from_name, learning_rate
from leafgrad.serialization import SerializationError, save_checkpoint
from leafgrad.training import Callback, DivergenceError, EpochMetrics, Trainer


@pytest.fixture(scope="module")
def spiral():
    x, t = get_spiral(train=True)
    x_test, t_test = get_spiral(train=False)
    return x.astype(np.float32), t.astype(np.int64), x_test.astype(np.float32), t_test.astype(np.int64)


def make_trainer(seed=0, optimizer=None, hidden=(30,), **kwargs):
    """A trainer of a small MLP; its weights are drawn at the first fit (or initialize) from NumPy's
    global generator, as in DeZero, which this seeds."""
    np.random.seed(seed)
    model = MLP((*hidden, 3), activation=F.relu)
    return Trainer(model, optimizer or Adam(alpha=0.01), batch_size=30, seed=seed, **kwargs)


def weights(model):
    return {name: p.data.copy() for name, p in model.named_params()}


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_epoch_begin(self, trainer, epoch):
        self.events.append(("begin", epoch))

    def on_batch_end(self, trainer, batch, loss, acc):
        self.events.append(("batch", batch))
        assert np.isfinite(loss) and 0 <= acc <= 1

    def on_epoch_end(self, trainer, metrics):
        self.events.append(("end", metrics.epoch))
        assert trainer.history[-1] is metrics


# ---------------------------------------------------------------------------------------------
# fit, evaluate, predict
# ---------------------------------------------------------------------------------------------
def test_fit_learns_and_records_history(spiral):
    x, t, x_test, t_test = spiral
    trainer = make_trainer()
    recorder = Recorder()
    history = trainer.fit(x, t, epochs=30, validation_data=(x_test, t_test), callbacks=[recorder])
    assert history is trainer.history and trainer.epoch == 30
    assert [m.epoch for m in history] == list(range(1, 31))
    assert all(isinstance(m, EpochMetrics) for m in history)
    assert history[-1].train_loss < history[0].train_loss / 2
    assert history[-1].test_acc > 0.8
    assert all(b.seconds >= a.seconds for a, b in zip(history, history[1:]))
    # 300 examples in batches of 30: 10 batches an epoch, between the epoch's begin and end
    assert recorder.events[:12] == [("begin", 1)] + [("batch", b) for b in range(1, 11)] + [("end", 1)]
    assert len(recorder.events) == 30 * 12
    loss, acc = trainer.evaluate(x_test, t_test)
    assert loss == pytest.approx(history[-1].test_loss) and acc == history[-1].test_acc
    scores = trainer.predict(x_test)
    assert scores.shape == (300, 3)
    assert np.mean(np.argmax(scores, axis=1) == t_test) == acc


def test_fit_goes_on_to_a_total_and_without_validation_data_reports_nan(spiral):
    x, t, _, _ = spiral
    trainer = make_trainer()
    trainer.fit(x, t, epochs=2)
    assert np.isnan(trainer.history[-1].test_loss) and np.isnan(trainer.history[-1].test_acc)
    trainer.fit(x, t, epochs=3)        # epochs is the total: one more
    assert trainer.epoch == 3
    trainer.fit(x, t, epochs=3)        # nothing left to do
    assert trainer.epoch == 3


def test_same_seed_same_numbers_and_one_rank_communicator_changes_nothing(spiral):
    x, t, _, _ = spiral
    a = make_trainer(seed=4)
    a.fit(x, t, epochs=2)
    b = make_trainer(seed=4, comm=Communicator(mpi_comm=False))
    b.fit(x, t, epochs=2)
    assert [m[:3] for m in a.history] == [m[:3] for m in b.history]  # (no test data: NaN there)
    c = make_trainer(seed=5)
    c.fit(x, t, epochs=2)
    assert c.history[0].train_loss != a.history[0].train_loss


def test_regression(spiral):
    rng = np.random.RandomState(0)
    x = rng.randn(200, 3).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 0.5], dtype=np.float32) + 0.3).reshape(-1, 1)
    np.random.seed(0)
    trainer = Trainer(MLP((16, 1), activation=F.relu), Adam(alpha=0.01), task="regression", batch_size=20)
    history = trainer.fit(x[:160], y[:160], epochs=40, validation_data=(x[160:], y[160:].ravel()))
    assert history[-1].train_loss < history[0].train_loss / 10
    assert np.isnan(history[-1].train_acc) and np.isnan(history[-1].test_acc)
    mse = float(np.mean((trainer.predict(x[160:]) - y[160:]) ** 2))
    assert history[-1].test_loss == pytest.approx(mse, rel=1e-4)  # a 1-d target is one column


# ---------------------------------------------------------------------------------------------
# Checkpoints: exact resume
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", [lambda: Adam(alpha=0.01), lambda: MomentumSGD(lr=0.05)])
def test_save_and_load_resume_exactly(spiral, tmp_path, optimizer):
    x, t, x_test, t_test = spiral
    straight = make_trainer(optimizer=optimizer())
    straight.fit(x, t, epochs=4, validation_data=(x_test, t_test))

    first = make_trainer(optimizer=optimizer())
    first.fit(x, t, epochs=2, validation_data=(x_test, t_test))
    path = first.save(str(tmp_path / "ckpt.npz"), extra={"note": "mine"})
    np.random.seed(123)  # whatever happens in between: load restores the generators too
    resumed = make_trainer(seed=99, optimizer=optimizer())  # another seed: load replaces everything
    assert resumed.load(path) == {"note": "mine"}
    assert resumed.epoch == 2 and resumed.history == first.history
    resumed.fit(x, t, epochs=4, validation_data=(x_test, t_test))
    assert [m[:5] for m in resumed.history] == [m[:5] for m in straight.history]
    wa, wb = weights(straight.model), weights(resumed.model)
    assert sorted(wa) == sorted(wb)
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k])


def test_load_refuses_a_checkpoint_that_trainer_did_not_write(spiral, tmp_path):
    x, t, _, _ = spiral
    trainer = make_trainer()
    trainer.initialize(x)
    path = save_checkpoint(str(tmp_path / "plain.npz"), trainer.model, trainer.optimizer, epoch=0)
    with pytest.raises(SerializationError, match="not written by Trainer.save"):
        make_trainer().load(path)


# ---------------------------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------------------------
def test_divergence_stops_at_the_first_bad_batch(spiral):
    x, t, _, _ = spiral
    trainer = make_trainer(optimizer=Adam(alpha=1e10), hidden=(100, 100))
    recorder = Recorder()
    with np.errstate(all="ignore"), pytest.raises(DivergenceError) as info:
        trainer.fit(x, t, epochs=3, callbacks=[recorder])
    err = info.value
    assert isinstance(err, ArithmeticError)
    assert err.epoch == 1 and err.batch >= 2 and err.lr == 1e10
    # The loss explodes (1e32) before it becomes NaN: far above the first epoch's, it stops the run.
    assert np.isfinite(err.loss) and err.reference is not None and err.loss > 1e4 * err.reference
    assert "over 10000 times the first epoch's" in str(err)
    assert f"at epoch 1, batch {err.batch}" in str(err) and "lower learning rate (it is 1e+10)" in str(err)
    assert trainer.epoch == 0 and ("end", 1) not in recorder.events
    assert recorder.events[-1] == ("batch", err.batch - 1)  # the bad batch was not trained on


def test_a_loss_far_above_the_first_epochs_stops_a_resumed_run_too(spiral, tmp_path):
    x, t, _, _ = spiral
    trainer = make_trainer(optimizer=SGD(lr=0.1))
    trainer.fit(x, t, epochs=1)
    trainer.save(str(tmp_path / "c.npz"))
    resumed = make_trainer(optimizer=SGD(lr=0.1))
    resumed.load(str(tmp_path / "c.npz"))
    first = resumed.history[0].train_loss
    resumed.optimizer.lr = 1e6  # the scale of the loss is the first epoch's, kept in the history
    with np.errstate(all="ignore"), pytest.raises(DivergenceError, match="over 10000 times") as info:
        resumed.fit(x, t, epochs=3)
    assert info.value.reference == first and info.value.epoch == 2


def test_divergence_in_the_weights_is_caught_at_the_end_of_the_epoch(spiral):
    x, t, _, _ = spiral

    class Poison(Callback):
        def on_batch_end(self, trainer, batch, loss, acc):
            if batch == 10:  # the last batch: the next loss would be computed only in the next epoch
                trainer.model.l0.W.data[0, 0] = np.inf

    trainer = make_trainer(optimizer=SGD(lr=0.1))
    with pytest.raises(DivergenceError, match="some weights became NaN or infinite at epoch 1, batch 10"):
        trainer.fit(x, t, epochs=2, callbacks=[Poison()])
    assert trainer.epoch == 0


# ---------------------------------------------------------------------------------------------
# Memory of a step, and arguments
# ---------------------------------------------------------------------------------------------
def test_step_memory_updates_nothing(spiral):
    x, t, _, _ = spiral
    trainer = make_trainer()
    trainer.initialize(x)
    before = weights(trainer.model)
    step, forward, backward = trainer.step_memory(x[:30], t[:30])
    assert forward.current > 0 and backward.peak > 0 and step.peak >= forward.peak
    after = weights(trainer.model)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in trainer.model.params())


def test_bad_arguments():
    model = MLP((3,))
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        Trainer(model, SGD(), task="ranking")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        Trainer(model, SGD(), batch_size=0)
    with pytest.raises(TypeError, match="pass the plain optimizer"):
        Trainer(model, DistributedOptimizer(SGD(), Communicator(mpi_comm=False)))


# ---------------------------------------------------------------------------------------------
# What the training library builds on
# ---------------------------------------------------------------------------------------------
def test_optimizer_table():
    assert list(OPTIMIZERS) == ["sgd", "momentum", "adagrad", "adadelta", "adam", "adamw"]
    adam = from_name("adam", 0.02)
    assert isinstance(adam, Adam) and adam.alpha == 0.02 and learning_rate(adam) == 0.02
    assert from_name("sgd", 0.5).lr == 0.5 and learning_rate(from_name("sgd", 0.5)) == 0.5
    assert isinstance(from_name("adadelta", 0.5), AdaDelta) and learning_rate(AdaDelta()) is None
    assert from_name("momentum").lr == MomentumSGD().lr  # the class's own default
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'; choose from sgd, momentum"):
        from_name("lbfgs")


def test_small_cnn():
    np.random.seed(0)
    model = SmallCNN(hidden_size=20, out_size=4)
    y = model(np.random.rand(5, 1, 8, 8).astype(np.float32))
    assert y.shape == (5, 4)
    assert sorted(name for name, _ in model.named_params()) == [
        "conv1/W", "conv1/b", "conv2/W", "conv2/b", "fc1/W", "fc1/b", "fc2/W", "fc2/b"]
    assert model.fc1.W.shape == (32 * 2 * 2, 20)


class _Rank:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size


def test_shard_sampler_split_and_global_batches():
    order = np.random.RandomState(0).permutation(23)
    one = ShardSampler(23, 5, _Rank(0, 1)).split(order)
    assert [list(b) for b in one] == [list(order[i:i + 5]) for i in range(0, 23, 5)]
    # per_rank=False: batch_size is the step's examples over all ranks, split as evenly as possible
    shards = [ShardSampler(23, 5, _Rank(r, 3), per_rank=False).split(order) for r in range(3)]
    assert all(len(s) == 5 for s in shards)
    for k in range(5):
        np.testing.assert_array_equal(np.concatenate([s[k] for s in shards]), one[k])
    assert [len(s[-1]) for s in shards] == [1, 1, 1]
    assert ShardSampler(23, 5, _Rank(0, 3), per_rank=False).global_batch_size == 5
    # batches(epoch) is split(epoch_order(epoch))
    s = ShardSampler(23, 4, _Rank(1, 2), seed=3)
    for a, b in zip(s.batches(2), s.split(s.epoch_order(2))):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="the order has 22 indices, expected 23"):
        s.split(order[:22])


def test_fit_checks_the_labels_once_on_the_host():
    # (On the GPU a bad label would only make the loss NaN, and be reported as divergence.)
    x = np.random.randn(10, 2)
    trainer = Trainer(MLP((5, 3)), SGD(0.1))
    with pytest.raises(ValueError, match=r"Trainer.fit: label 3 at position 3 is outside \[0, 3\)"):
        trainer.fit(x, np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 2]), epochs=1)
    with pytest.raises(TypeError, match="Trainer.fit: classification labels must be integers"):
        trainer.fit(x, np.zeros(10), epochs=1)


# ---- counted in iterations (sequence models) ------------------------------------------
def _bigram_run(tmp_path=None, iters=12, stop_at=None):
    """A bigram language model (an embedding of logits) on a tiny text, trained by iterations."""
    from leafgrad.layers import EmbedID
    from leafgrad.optimizers import AdamW, ClipGrad
    from leafgrad.schedules import WarmupCosine
    from leafgrad.text import CharText
    from leafgrad.training import IterationMetrics
    text = CharText("the quick brown fox jumps over the lazy dog\n" * 20)
    np.random.seed(0)
    model = EmbedID(text.vocab_size, text.vocab_size)
    opt = AdamW(lr=0.05, weight_decay=0.1)
    opt.add_hook(ClipGrad(1.0))
    trainer = Trainer(model, opt, batch_size=4, seed=1, schedule=WarmupCosine(0.05, 2, iters, 0.005))
    evals = (text.fixed_batches("train", 2, 4, 8), text.fixed_batches("val", 2, 4, 8))

    def sample(rng):
        return text.get_batch("train", 4, 8, rng)

    if stop_at is not None:
        trainer.fit_iterations(sample, stop_at, 4, evals)
        trainer.save(str(tmp_path / "ck.npz"))
        np.random.seed(123)  # anything that happens between sessions
        fresh = Trainer(EmbedID(text.vocab_size, text.vocab_size), AdamW(lr=0.05, weight_decay=0.1),
                        batch_size=4, seed=99, schedule=WarmupCosine(0.05, 2, iters, 0.005))
        fresh.optimizer.add_hook(ClipGrad(1.0))
        fresh.load(str(tmp_path / "ck.npz"))
        trainer = fresh
    history = trainer.fit_iterations(sample, iters, 4, evals)
    assert all(isinstance(m, IterationMetrics) for m in history)
    return trainer


def test_fit_iterations_evaluates_and_learns():
    trainer = _bigram_run()
    its = [m.iteration for m in trainer.history]
    assert its == [0, 4, 8, 12] and trainer.iteration == 12
    assert trainer.history[-1].val_loss < trainer.history[0].val_loss
    assert math.isnan(trainer.history[0].lr)
    assert trainer.history[-1].lr == pytest.approx(trainer.schedule(11))  # the rate of the last step


def test_fit_iterations_resumes_exactly(tmp_path):
    whole = _bigram_run()
    resumed = _bigram_run(tmp_path, stop_at=4)
    np.testing.assert_array_equal(whole.model.W.data, resumed.model.W.data)
    assert [m[:3] for m in whole.history] == [m[:3] for m in resumed.history]


def test_fit_iterations_names_the_iteration_that_diverged():
    from leafgrad.layers import EmbedID
    from leafgrad.text import CharText
    text = CharText("abcabcabd" * 10)
    trainer = Trainer(EmbedID(4, 4), SGD(lr=1e308), batch_size=2)
    with pytest.raises(DivergenceError, match="iteration") as info:
        with np.errstate(all="ignore"):
            trainer.fit_iterations(lambda rng: text.get_batch("train", 2, 4, rng), 50, 10,
                                   (text.fixed_batches("train", 1, 2, 4), text.fixed_batches("val", 1, 2, 4)))
    assert info.value.iteration is not None


def test_fit_iterations_stops_a_loss_that_explodes_without_nan():
    from leafgrad.layers import EmbedID
    from leafgrad.text import CharText
    text = CharText("abcabcabd" * 10)
    np.random.seed(0)
    trainer = Trainer(EmbedID(4, 4), SGD(lr=1e6), batch_size=2)
    with pytest.raises(DivergenceError, match="over 10000 times the first evaluation's") as info:
        with np.errstate(all="ignore"):
            trainer.fit_iterations(lambda rng: text.get_batch("train", 2, 4, rng), 50, 10,
                                   (text.fixed_batches("train", 1, 2, 4), text.fixed_batches("val", 1, 2, 4)))
    err = info.value
    assert np.isfinite(err.loss) and err.reference == trainer.history[0].train_loss
    assert err.iteration == trainer.iteration + 1 and "at iteration" in str(err)
    assert np.isfinite(trainer.model.W.data).all()  # the bad step updated nothing


@pytest.mark.parametrize("change,words", [
    (lambda m, e: m.__setitem__(slice(None), m[::-1]), "iteration numbers"),
    (lambda m, e: m.__setitem__((0, 4), -1.0), "wrong time"),
    (lambda m, e: m.__setitem__((1, 1), np.inf), "NaN or infinite"),
    (lambda m, e: e.update(iteration=-3), "iteration count"),
    (lambda m, e: e.update(metrics_kind="minutes"), "history's kind"),
])
def test_load_refuses_a_damaged_iteration_history(tmp_path, change, words):
    import json
    trainer = _bigram_run(iters=8)
    path = str(tmp_path / "ck.npz")
    trainer.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    rows = arrays["extra/metrics"].copy()
    change(rows, meta["extra"])
    arrays["extra/metrics"] = rows
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    fresh = _bigram_run(iters=4)
    before = [m for m in fresh.history], fresh.model.W.data.copy(), fresh.iteration
    with pytest.raises(SerializationError, match=words):
        fresh.load(path)
    assert fresh.history == before[0] and fresh.iteration == before[2]
    np.testing.assert_array_equal(fresh.model.W.data, before[1])
