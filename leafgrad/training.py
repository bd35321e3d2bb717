"""Training as a library: :class:`Trainer` fits a model by mini-batches, evaluates, predicts, and resumes exactly.

::

    import leafgrad.functions as F
    from leafgrad.models import MLP
    from leafgrad.optimizers import Adam
    from leafgrad.training import Trainer

    trainer = Trainer(MLP((100, 3), activation=F.relu), Adam(alpha=0.01), batch_size=30, seed=0)
    history = trainer.fit(x_train, t_train, epochs=100, validation_data=(x_test, t_test))
    print(history[-1].test_acc)
    trainer.save("checkpoint.npz")      # later: trainer.load("checkpoint.npz"); trainer.fit(..., epochs=200)

What a run does, in this order, so that the same seed gives the same numbers:

* The order of the examples in each epoch is a permutation drawn from
  ``trainer.rng``, a ``RandomState(seed)`` of its own.  NumPy's global
  generator is left to the initial weights (as in DeZero).  ``save`` keeps the
  state of both, so a resumed run sees the same batches and draws as one that
  never stopped.
* Each step: forward and loss; if the loss is NaN or infinite, or more than
  :data:`DIVERGENCE_FACTOR` times the first epoch's (it exploded without
  becoming NaN), the step stops before any update and :class:`DivergenceError`
  names the epoch and batch; otherwise backward and ``optimizer.update()``.
* Over MPI (``comm=leafgrad.distributed.init()`` under ``mpiexec``) the code is
  the same: :class:`~leafgrad.distributed.ShardSampler` gives each rank its
  share of every batch of ``batch_size`` examples and
  :class:`~leafgrad.distributed.DistributedOptimizer` averages the gradients,
  weighted by examples, so N ranks train like one process.  The loss is summed
  over the ranks at each step, so that every rank stops at the same step.

Counted in iterations instead of epochs, :meth:`Trainer.fit_iterations` draws
each batch with ``sample(trainer.rng)`` (random windows of a text, as nanoGPT
trains) and evaluates on fixed batches every ``eval_interval`` iterations;
``history`` then lists :class:`IterationMetrics`.  ``schedule=`` (a
:mod:`leafgrad.schedules` schedule) sets the learning rate before every step,
by the iteration count ``trainer.iteration``, in either way of training.

``task="classification"`` trains with softmax cross-entropy on class indices
(logits ``(B, T, V)`` of a sequence model with labels ``(B, T)`` too)
and reports accuracy; ``task="regression"`` trains with mean squared error on
``(N, k)`` targets and reports no accuracy (NaN).

``device="gpu"`` trains on the GPU with CuPy (see :class:`Trainer`): the same
batches and initial weights as on the CPU, and no step waits for the device:
the epoch's losses are read back once, at its end.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

import leafgrad.functions as F
from leafgrad import cuda
from leafgrad.checks import check_labels
from leafgrad.config import no_grad, test_mode
from leafgrad.distributed import Communicator, DistributedOptimizer, ShardSampler
from leafgrad.optimizers import learning_rate
from leafgrad.serialization import SerializationError, load_checkpoint, save_checkpoint

__all__ = ["Trainer", "Callback", "EpochMetrics", "IterationMetrics", "DivergenceError", "predict", "TASKS",
           "DIVERGENCE_FACTOR"]

#: What a :class:`Trainer` can learn: class indices (softmax cross-entropy) or numbers (mean squared error).
TASKS = ("classification", "regression")
#: A batch whose loss is more than this many times the first epoch's stops the run (it diverged without NaN).
DIVERGENCE_FACTOR = 1e4
#: The most iterations a checkpoint may count (a thousand steps a second for thirty years).
MAX_ITERATIONS = 10 ** 12
_TINY_LOSS = 1e-3  # a first loss near 0 is no scale: below this, only losses above FACTOR * _TINY_LOSS count


class EpochMetrics(NamedTuple):
    """One epoch's results; NaN where there is nothing to measure (no test data, accuracy in regression)."""

    epoch: int          #: epochs done, counting this one
    train_loss: float   #: mean loss over the epoch's training examples, while they were trained on
    train_acc: float    #: mean accuracy over the same examples
    test_loss: float    #: loss on the validation data after the epoch
    test_acc: float     #: accuracy on the validation data after the epoch
    seconds: float      #: time since the run started, over all sessions


class IterationMetrics(NamedTuple):
    """One evaluation of a run counted in iterations (:meth:`Trainer.fit_iterations`)."""

    iteration: int      #: iterations (steps) done
    train_loss: float   #: mean loss on the fixed training batches
    val_loss: float     #: mean loss on the fixed validation batches
    lr: float           #: the learning rate of the last step (NaN before the first)
    seconds: float      #: time since the run started, over all sessions


#: The kinds of ``Trainer.history`` rows, by the name a checkpoint records.
_METRICS_KINDS = {"epoch": EpochMetrics, "iteration": IterationMetrics}


class DivergenceError(ArithmeticError):
    """Training stopped: the loss (or a weight) became NaN or infinite, or the loss exploded; the learning rate is too high.

    ``epoch`` and ``batch`` (both from 1) say where; ``loss`` is the batch's
    loss (None when the weights were found non-finite at the end of an epoch);
    ``lr`` is the optimizer's learning rate (None for one without).  Nothing
    was updated with the bad step.
    """

    def __init__(self, epoch: int, batch: int, loss: Optional[float], lr: Optional[float],
                 reference: Optional[float] = None, iteration: Optional[int] = None) -> None:
        self.epoch, self.batch, self.loss, self.lr = epoch, batch, loss, lr
        self.reference = reference  #: the first epoch's loss, when the loss exploded without becoming NaN
        self.iteration = iteration  #: in :meth:`Trainer.fit_iterations`: the iteration (from 1), else None
        what = "some weights became NaN or infinite" if loss is None else f"the loss became {loss:g}"
        if reference is not None:
            first = "the first epoch's" if iteration is None else "the first evaluation's"
            what += f", over {DIVERGENCE_FACTOR:g} times {first} ({reference:g})"
        rate = "" if lr is None else f" (it is {lr:g})"
        where = f"epoch {epoch}, batch {batch}" if iteration is None else f"iteration {iteration}"
        super().__init__(f"training diverged: {what} at {where}; try a lower learning rate{rate}")


class Callback:
    """What :meth:`Trainer.fit` calls as it goes; subclass it and override the methods you need.

    Each method does nothing here.  Every rank calls them in distributed
    training (check ``trainer.is_main`` to print or write on rank 0 only).
    """

    def on_epoch_begin(self, trainer: "Trainer", epoch: int) -> None:
        """Epoch ``epoch`` (counted from 1) starts."""

    def on_batch_end(self, trainer: "Trainer", batch: int, loss: float, acc: float) -> None:
        """Batch ``batch`` (from 1) was trained on; its mean loss and accuracy over all ranks."""

    def on_epoch_end(self, trainer: "Trainer", metrics: EpochMetrics) -> None:
        """An epoch ended; ``metrics`` is also ``trainer.history[-1]``."""


def predict(model: Any, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """``model``'s outputs for every row of ``x``, in batches, recording no graph, in test mode.

    The batches go to the device the model's weights are on; the outputs come back as one NumPy array.
    """
    on_gpu = _on_gpu(model)
    out = []
    with no_grad(), test_mode():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            out.append(cuda.as_numpy(model(cuda.as_cupy(xb) if on_gpu else xb).data))
    return np.concatenate(out) if out else np.zeros((0,), dtype=np.float32)


def _on_gpu(model: Any) -> bool:
    """Whether ``model``'s weights are CuPy arrays."""
    return any(p.data is not None and cuda.get_array_module(p.data) is not np for p in model.params())


def _moved_at_once(batches: List[np.ndarray], xp: Any) -> List[Any]:
    """The index arrays ``batches`` as ``xp`` arrays: one transfer for all, then views of it."""
    if not batches:
        return []
    flat = xp.asarray(np.concatenate(batches))
    ends = np.cumsum([len(b) for b in batches])
    return [flat[end - len(b):end] for b, end in zip(batches, ends)]


def _all_finite(params: Iterable[Any]) -> bool:
    for p in params:
        if p.data is not None and not bool(cuda.get_array_module(p.data).isfinite(p.data).all()):
            return False
    return True


class Trainer:
    """Trains ``model`` with ``optimizer`` by mini-batches of ``batch_size`` examples.

    ``Trainer(model, optimizer, task="classification", batch_size=32, seed=0,
    comm=None)``: ``optimizer`` is a plain leafgrad optimizer (the trainer sets
    it up on ``model``); ``seed`` fixes the batch order; ``comm`` (a
    :class:`leafgrad.distributed.Communicator`) trains data-parallel over its
    ranks, ``batch_size`` then being the examples of one step over all ranks.

    ``history`` lists the :class:`EpochMetrics` of every epoch so far and
    ``epoch`` counts them; :meth:`save` and :meth:`load` keep both, with the
    weights, the optimizer's state and the random generators.

    ``schedule`` (a function of the iteration, such as
    :class:`leafgrad.schedules.WarmupCosine`) sets the optimizer's learning rate
    before each step; ``iteration`` counts the steps taken.

    ``device="gpu"`` trains on the GPU (CuPy; a ``RuntimeError`` says why when
    there is none).  Give the model, data and labels as on the CPU: the weights
    are drawn on the host (so a seed gives the same initial weights on both
    devices), then the model and the optimizer's state move to the GPU.
    :meth:`fit` moves the data to the GPU once, not batch by batch: copying
    from ordinary host memory makes the host wait for the device, at every
    step; so the data must fit in GPU memory.  A step reads nothing back: the
    batches' losses and right answers stay on the device and are read in one
    transfer at the end of the epoch, which is when callbacks'
    ``on_batch_end`` are called, batch by batch, and when a NaN or infinite
    loss is found: :class:`DivergenceError` names its batch as on the CPU, but
    the batches after it were trained on too (the checkpoints written at the
    ends of earlier epochs are finite).  :meth:`evaluate`, :meth:`predict` and
    checkpoints take and give NumPy arrays.
    """

    def __init__(self, model: Any, optimizer: Any, *, task: str = "classification", batch_size: int = 32,
                 seed: int = 0, comm: Optional[Communicator] = None, device: str = "cpu",
                 schedule: Optional[Callable[[int], float]] = None) -> None:
        if task not in TASKS:
            raise ValueError(f"Trainer: unknown task {task!r}; choose from {', '.join(TASKS)}")
        if device not in cuda.DEVICES:
            raise ValueError(f"Trainer: unknown device {device!r}; choose from {', '.join(cuda.DEVICES)}")
        if device == "gpu":
            cuda.require_gpu("Trainer(device='gpu')")
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("Trainer: pass the plain optimizer and comm=...; the trainer distributes it")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"Trainer: batch_size must be a positive int, got {batch_size!r}")
        self.model = model
        self.optimizer = optimizer
        optimizer.setup(model)
        self.task = task
        self.device = device
        self._read_once_per_epoch = device == "gpu"  # see _train_reading_once
        self.batch_size = int(batch_size)
        self.rng = np.random.RandomState(seed)
        self.comm = comm if comm is not None else Communicator(mpi_comm=False)
        self.history: List[Any] = []  # EpochMetrics, or IterationMetrics after fit_iterations
        self.schedule = schedule
        self.iteration = 0  # steps taken, over all sessions: the schedule's clock
        self._by_iterations = False
        self._updater: Optional[DistributedOptimizer] = None  # made by initialize(): weights must exist
        self._first_loss: Optional[float] = None  # the first batch's loss: the scale until an epoch is done

    @property
    def epoch(self) -> int:
        """Epochs done so far."""
        return len(self.history)

    @property
    def is_main(self) -> bool:
        """True on the rank that should print and write files (the only one outside MPI)."""
        return self.comm.is_root

    def initialize(self, x: np.ndarray) -> None:
        """Create the model's lazily sized weights from ``x[:1]`` (as the first step would), then share rank 0's.

        :meth:`fit` calls it; call it first to save or look at the initial weights.
        On the GPU the weights are drawn on the host, then moved.
        """
        if any(p.data is None for p in self.model.params()):
            if self.device == "gpu":
                self.model.to_cpu()  # NumPy's generator draws the weights, the same on both devices
            with no_grad():
                self.model(cuda.as_numpy(x[:1]))
        if self._updater is None:
            if self.device == "gpu":
                self._move_to_gpu()
            # On one rank this averages nothing and registers no hook: update() is optimizer.update().
            self._updater = DistributedOptimizer(self.optimizer, self.comm)

    def _check_labels(self, x: Any, t: Any) -> None:
        """Labels are integers in ``[0, C)`` for the model's ``C`` outputs: a ``ValueError`` names the first bad one.

        (On the GPU a bad label would only turn the loss NaN, and look like divergence.)
        """
        self.initialize(x)
        with no_grad(), test_mode():  # (draws no random numbers, changes no running statistics)
            classes = self.model(self._to_device(x[:1])).shape[1]
        t = np.asarray(t) if not isinstance(t, cuda.array_types) else t
        if t.dtype.kind not in "iu":
            raise TypeError(f"Trainer.fit: classification labels must be integers, got dtype {t.dtype}")
        check_labels("Trainer.fit", t, classes)

    def _move_to_gpu(self) -> None:
        """Put the weights on the GPU, and the optimizer's state with them."""
        self.model.to_gpu()
        self.optimizer.load_state_dict(self.optimizer.state_dict())  # the state goes where its weights are

    def _to_device(self, a: Any) -> Any:
        """``a`` (an array or None) on the trainer's device."""
        return cuda.as_cupy(a) if self.device == "gpu" and a is not None else a

    # ---- one step -----------------------------------------------------------------
    def loss_and_accuracy(self, x: np.ndarray, t: np.ndarray) -> Tuple[Any, float]:
        """Forward: the loss Variable of a batch and its accuracy (NaN in regression)."""
        y = self.model(x)
        return self._loss(y, t), float(self._correct(y, t)) / max(t.size, 1)

    def _loss(self, y: Any, t: np.ndarray) -> Any:
        if self.task == "regression":
            return F.mean_squared_error(y, t.reshape(len(t), -1))
        if y.ndim == 3:  # a sequence model: (B, T, V) logits, (B, T) labels
            return F.softmax_cross_entropy(y.reshape(-1, y.shape[-1]), t.reshape(-1))
        return F.softmax_cross_entropy(y, t)

    def _correct(self, y: Any, t: Any) -> Any:
        """How many rows of ``y`` pick the class ``t``, a 0-d array on ``y``'s device (NaN in regression)."""
        if self.task == "regression":
            return float("nan")
        xp = cuda.get_array_module(y.data)
        return xp.sum(xp.argmax(y.data, axis=-1) == t)

    def _step(self, x: np.ndarray, t: np.ndarray, batch: int) -> np.ndarray:
        """Train on one batch (this rank's share); returns [loss sum, accuracy sum, examples] over all ranks."""
        n = len(t)
        self.model.cleargrads()
        loss = None
        stats = np.zeros(3)
        if n:
            loss, acc = self.loss_and_accuracy(x, t)
            stats = np.array([float(loss.data) * n, acc * n, n], dtype=np.float64)
        if self.comm.size > 1:
            stats = self.comm.allreduce_sum(stats)  # so that every rank sees a bad loss on any rank
        self._check_loss(stats, batch)
        self._schedule_step()
        if loss is None:
            self._updater.update(weight=0)  # take part in the averaging, contributing nothing
        else:
            self._updater.backward(loss, weight=n)  # each bucket's averaging starts during backward
            self._updater.update()
        self.iteration += 1
        return stats

    def _schedule_step(self) -> None:
        """Set the learning rate of step ``iteration`` (counted from 0) from the schedule, if there is one."""
        if self.schedule is not None:
            from leafgrad.schedules import set_lr
            set_lr(self.optimizer, self.schedule(self.iteration))

    def _check_loss(self, stats: np.ndarray, batch: int) -> None:
        """Raise :class:`DivergenceError` if the batch's loss (``stats[0]``, summed over its examples) is not
        finite, or is more than :data:`DIVERGENCE_FACTOR` times the first epoch's (its first batch's while
        the first epoch runs)."""
        loss = float(stats[0] / max(stats[2], 1))
        iteration = self.iteration + 1 if self._by_iterations else None
        if not math.isfinite(stats[0]):
            raise DivergenceError(self.epoch + 1, batch, loss, learning_rate(self.optimizer), iteration=iteration)
        if not stats[2]:
            return
        reference = self.history[0].train_loss if self.history else math.nan
        if not math.isfinite(reference):  # no epoch yet (or no evaluation batches): the first batch's loss
            if self._first_loss is None or (not self.history and batch == 1):
                self._first_loss = loss
            reference = self._first_loss
        if loss > DIVERGENCE_FACTOR * reference and loss > DIVERGENCE_FACTOR * _TINY_LOSS:
            raise DivergenceError(self.epoch + 1, batch, loss, learning_rate(self.optimizer), reference,
                                  iteration=iteration)

    def _train_reading_once(self, x: Any, t: Any, batches: List[np.ndarray]) -> np.ndarray:
        """Train on each batch reading nothing back; then each batch's [loss sum, right, examples] over all ranks.

        The losses and right answers stay where the arrays are until the one
        transfer at the end.  The GPU's way; on NumPy (in the tests) it gives
        the numbers of :meth:`_step`.
        """
        x, t = self._to_device(x), self._to_device(t)  # no copy when fit() moved them already
        xp = cuda.get_array_module(x)
        found = xp.zeros((len(batches), 2))  # per batch: mean loss, right answers
        for k, idx in enumerate(_moved_at_once(batches, xp)):
            self.model.cleargrads()
            self._schedule_step()
            if len(idx) == 0:
                self._updater.update(weight=0)  # take part in the averaging, contributing nothing
                self.iteration += 1
                continue
            y, tb = self.model(x[idx]), t[idx]
            loss = self._loss(y, tb)
            found[k, 0] = loss.data
            found[k, 1] = self._correct(y, tb)
            self._updater.backward(loss, weight=len(idx))
            self._updater.update()
            self.iteration += 1
        mean_loss, right = cuda.as_numpy(found).T
        n = np.array([len(b) for b in batches], dtype=np.float64)
        stats = np.stack([mean_loss * n, right, n], axis=1)
        return self.comm.allreduce_sum(stats) if self.comm.size > 1 else stats

    # ---- epochs -----------------------------------------------------------------------
    def train_epoch(self, x: np.ndarray, t: np.ndarray, callbacks: Sequence[Callback] = ()) -> Tuple[float, float]:
        """Train on every example of ``x, t`` once, in a new random order; returns the mean (loss, accuracy)."""
        self.initialize(x)
        order = self.rng.permutation(len(x))
        batches = ShardSampler(len(x), self.batch_size, self.comm, per_rank=False).split(order)
        if self._read_once_per_epoch:
            steps: Iterable[np.ndarray] = self._train_reading_once(x, t, batches)
        else:
            steps = (self._step(x[idx], t[idx], batch) for batch, idx in enumerate(batches, 1))
        totals = np.zeros(3)
        batch = 0
        for batch, stats in enumerate(steps, 1):
            self._check_loss(stats, batch)  # on the GPU, the first bad batch is found here, after the epoch
            totals += stats
            for c in callbacks:
                c.on_batch_end(self, batch, stats[0] / max(stats[2], 1), stats[1] / max(stats[2], 1))
        if not _all_finite(self.model.params()):
            raise DivergenceError(self.epoch + 1, batch, None, learning_rate(self.optimizer))
        seen = max(totals[2], 1)
        return float(totals[0] / seen), float(totals[1] / seen)

    def fit(self, x: np.ndarray, t: np.ndarray, epochs: int,
            validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None,
            callbacks: Sequence[Callback] = ()) -> List[EpochMetrics]:
        """Train until ``epochs`` epochs are done in all (a loaded trainer goes on from where it stopped).

        After each epoch, evaluates on ``validation_data`` (``(x, t)``), appends
        an :class:`EpochMetrics` to ``history`` and calls the callbacks.  Returns
        ``history``.  Raises :class:`DivergenceError` when the loss stops being
        finite; after that or an interruption inside an epoch, the model holds
        that epoch's partial updates (:meth:`load` the last checkpoint to go on).
        """
        if self.history and not isinstance(self.history[-1], EpochMetrics):
            raise ValueError("Trainer.fit: this trainer was trained by iterations (fit_iterations)")
        x_val, t_val = validation_data if validation_data is not None else (None, None)
        if self.task == "classification":
            self._check_labels(x, t)  # once, on the host: a step on the GPU reads nothing back
        x, t, x_val, t_val = map(self._to_device, (x, t, x_val, t_val))  # once, not batch by batch
        elapsed_before = self.history[-1].seconds if self.history else 0.0
        t0 = time.perf_counter()
        while self.epoch < epochs:
            for c in callbacks:
                c.on_epoch_begin(self, self.epoch + 1)
            train_loss, train_acc = self.train_epoch(x, t, callbacks)
            test_loss, test_acc = self.evaluate(x_val, t_val)
            metrics = EpochMetrics(self.epoch + 1, train_loss, train_acc, test_loss, test_acc,
                                   elapsed_before + time.perf_counter() - t0)
            self.history.append(metrics)
            for c in callbacks:
                c.on_epoch_end(self, metrics)
        return self.history

    def fit_iterations(self, sample: Callable[[np.random.RandomState], Tuple[Any, Any]], iters: int,
                       eval_interval: int, eval_batches: Tuple[Sequence[Tuple[Any, Any]], Sequence[Tuple[Any, Any]]],
                       callbacks: Sequence[Callback] = ()) -> List[IterationMetrics]:
        """Train until ``iters`` iterations are done in all, drawing each batch with ``sample(self.rng)``.

        ``eval_batches`` is ``(train_batches, val_batches)``, two lists of fixed
        ``(x, t)`` batches: the mean loss on each is measured before the first
        step, every ``eval_interval`` iterations and after the last, appended
        to ``history`` as :class:`IterationMetrics` and given to the callbacks'
        ``on_epoch_end`` (``on_batch_end`` gets every step's loss, with the
        iteration as its ``batch``).  A loaded trainer goes on from
        ``iteration`` with the same batches as a run that never stopped.
        Raises :class:`DivergenceError` (its ``iteration`` set) when the loss
        stops being finite, before that step updates anything.
        """
        if eval_interval < 1:
            raise ValueError(f"Trainer.fit_iterations: eval_interval must be >= 1, got {eval_interval!r}")
        if self.history and not isinstance(self.history[-1], IterationMetrics):
            raise ValueError("Trainer.fit_iterations: this trainer was trained by epochs (fit)")
        self._by_iterations = True
        train_batches, val_batches = eval_batches
        elapsed_before = self.history[-1].seconds if self.history else 0.0
        t0 = time.perf_counter()

        def evaluate_now() -> None:
            if not _all_finite(self.model.params()):
                raise DivergenceError(0, self.iteration, None, learning_rate(self.optimizer),
                                      iteration=self.iteration)
            lr = learning_rate(self.optimizer) if self.iteration else float("nan")
            metrics = IterationMetrics(self.iteration, self.mean_loss(train_batches), self.mean_loss(val_batches),
                                       float("nan") if lr is None else lr,
                                       elapsed_before + time.perf_counter() - t0)
            self.history.append(metrics)
            for c in callbacks:
                c.on_epoch_end(self, metrics)

        self.initialize(sample(np.random.RandomState(0))[0])  # (a generator of its own: the batch order stays)
        try:
            if not self.history:
                evaluate_now()
            while self.iteration < iters:
                x, t = sample(self.rng)
                stats = self._step(self._to_device(x), self._to_device(t), self.iteration + 1)
                for c in callbacks:
                    c.on_batch_end(self, self.iteration, stats[0] / max(stats[2], 1), stats[1] / max(stats[2], 1))
                if self.iteration % eval_interval == 0 or self.iteration == iters:
                    evaluate_now()
        finally:
            self._by_iterations = False
        return self.history

    def mean_loss(self, batches: Sequence[Tuple[Any, Any]]) -> float:
        """The mean loss over ``batches`` (a list of ``(x, t)``), recording no graph, in test mode; NaN for none."""
        if not batches:
            return float("nan")
        total = 0.0
        with no_grad(), test_mode():
            for x, t in batches:
                total += float(self._loss(self.model(self._to_device(x)), self._to_device(t)).data)
        return total / len(batches)

    def evaluate(self, x: Optional[np.ndarray], t: Optional[np.ndarray],
                 batch_size: int = 1000) -> Tuple[float, float]:
        """Mean (loss, accuracy) on ``x, t``, recording no graph, in test mode; (NaN, NaN) without data."""
        if x is None or len(x) == 0:
            return float("nan"), float("nan")
        total_loss = total_correct = 0.0
        with no_grad(), test_mode():
            for i in range(0, len(x), batch_size):
                xb, tb = self._to_device(x[i:i + batch_size]), self._to_device(t[i:i + batch_size])
                y = self.model(xb)
                total_loss += float(self._loss(y, tb).data) * len(xb)
                total_correct += float(self._correct(y, tb))
        return total_loss / len(x), total_correct / len(x)

    def predict(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """The model's outputs for every row of ``x`` (class scores, or the predicted numbers)."""
        return predict(self.model, x, batch_size)

    def step_memory(self, x: np.ndarray, t: np.ndarray) -> Tuple[Any, Any, Any]:
        """Memory reports (step, forward, backward) of one training step on ``x, t``, from :mod:`leafgrad.memory`.

        ``forward.current`` is what the graph keeps for backward; ``backward.peak``
        is measured from the start of backward; ``step.peak`` from the start of the
        step.  Updates nothing, sends nothing to other ranks, and clears the
        gradients it made.
        """
        from leafgrad.memory import track
        self.initialize(x)
        x, t = self._to_device(x), self._to_device(t)
        self.model.cleargrads()
        with self._updater.no_sync():  # a backward that only this rank makes must send nothing
            with track(label="step") as step:  # one outer block: the inner ones also see arrays being freed
                with track(label="forward") as fwd:
                    loss, _ = self.loss_and_accuracy(x, t)
                with track(label="backward") as bwd:
                    loss.backward()
                del loss
        self.model.cleargrads()
        return step, fwd, bwd

    # ---- checkpoints ------------------------------------------------------------------
    def save(self, path: str, extra: Optional[dict] = None) -> str:
        """Write a checkpoint to ``path`` atomically: weights, optimizer state, random generators, history.

        ``extra`` adds values of your own (arrays or JSON-serializable); returns the path written.
        """
        _, keys, pos, has_gauss, cached = self.rng.get_state()
        kind = "iteration" if self.history and isinstance(self.history[0], IterationMetrics) else "epoch"
        width = len(_METRICS_KINDS[kind]._fields)
        state = {"metrics": np.array(self.history, dtype=np.float64).reshape(-1, width),
                 "metrics_kind": kind, "iteration": int(self.iteration),
                 "batch_rng_keys": np.asarray(keys, dtype=np.uint32),
                 "batch_rng": {"pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
        return save_checkpoint(path, self.model, self.optimizer, epoch=self.epoch, extra={**(extra or {}), **state})

    def load(self, path: str) -> dict:
        """Restore a checkpoint written by :meth:`save`; returns its ``extra`` values.

        Raises :class:`~leafgrad.serialization.SerializationError` for a file
        that does not fit this model and optimizer, is damaged, or that
        :meth:`save` did not write (its batch order or history missing or
        malformed); everything is checked first, so then nothing changed:
        weights, optimizer, random generators and history.
        """
        info = load_checkpoint(path, self.model, self.optimizer, _extra=_trainer_arrays, _check=lambda extra: _check_trainer_extra(extra, self.task),
                               _writer="Trainer.save")
        if self.device == "gpu":
            self._move_to_gpu()  # weights that were not made yet were loaded onto the host
        extra = info["extra"]
        rng = extra.pop("batch_rng")
        self.rng.set_state(("MT19937", extra.pop("batch_rng_keys").astype(np.uint32), int(rng["pos"]),
                            int(rng["has_gauss"]), float(rng["cached_gaussian"])))
        kind = _METRICS_KINDS[extra.pop("metrics_kind", "epoch")]
        rows = extra.pop("metrics")
        self.history = [kind(int(r[0]), *map(float, r[1:])) for r in rows]
        self.iteration = int(extra.pop("iteration", 0))
        return extra


def _trainer_arrays(meta: dict) -> dict:
    """The arrays :meth:`Trainer.save` adds to a checkpoint: shape and dtype kinds (checked before reading)."""
    epoch = meta.get("epoch")
    extra = meta.get("extra")
    kind = extra.get("metrics_kind", "epoch") if isinstance(extra, dict) else "epoch"
    arrays = {"batch_rng_keys": ((624,), np.dtype(np.uint32))}
    if isinstance(kind, str) and kind in _METRICS_KINDS:  # (an unknown kind is named by _check_trainer_extra)
        width = len(_METRICS_KINDS[kind]._fields)
        arrays["metrics"] = ((epoch if isinstance(epoch, int) else -1, width), np.dtype(np.float64))
    return arrays


def _check_trainer_extra(extra: dict, task: str) -> List[str]:
    """The problems of what :meth:`Trainer.save` adds: the batch order's generator state and the history rows."""
    from leafgrad.serialization import check_random_state
    rng = extra.get("batch_rng")
    if not isinstance(rng, dict):
        return ["the batch order's random state is missing: the file was not written by Trainer.save"]
    why = check_random_state(("MT19937", extra.get("batch_rng_keys"), rng.get("pos"), rng.get("has_gauss"),
                              rng.get("cached_gaussian")))
    if why is not None:
        return [f"the batch order's random state is invalid: {why}"]
    kind = extra.get("metrics_kind", "epoch")
    if not isinstance(kind, str) or kind not in _METRICS_KINDS:
        return [f"the history's kind {kind!r} is not one of {', '.join(map(repr, _METRICS_KINDS))}"]
    iteration = extra.get("iteration", 0)
    if isinstance(iteration, bool) or not isinstance(iteration, int) or not 0 <= iteration <= MAX_ITERATIONS:
        return [f"the iteration count {iteration!r} is not a whole number from 0 to {MAX_ITERATIONS:g}"]
    rows = extra["metrics"]
    if not rows.size:
        return []
    if kind == "iteration":
        return _check_iteration_rows(rows, iteration)
    epoch, train_loss, train_acc, test_loss, test_acc, seconds = rows.T
    finite = np.isfinite
    classification = task == "classification"
    tested = finite(test_loss)
    problems = []
    if not np.array_equal(epoch, np.arange(1, len(rows) + 1)):
        problems.append("the history's epoch numbers are not 1, 2, 3, ...")
    if not (finite(train_loss).all() and finite(seconds).all() and (seconds >= 0).all()
            and (np.diff(seconds) >= 0).all()):
        problems.append("the history holds a non-finite training loss or a wrong time")
    if not ((finite(train_acc) == classification).all() and (tested == tested[0]).all()
            and (finite(test_acc) == (tested & classification)).all() and not np.isinf(rows).any()):
        problems.append("the history holds NaN or infinite values where it should not")
    accuracies = np.concatenate([train_acc[finite(train_acc)], test_acc[finite(test_acc)]])
    if ((accuracies < 0) | (accuracies > 1)).any():
        problems.append("the history holds an accuracy outside 0 to 1")
    return problems


def _check_iteration_rows(rows: np.ndarray, iteration: int) -> List[str]:
    """The problems of a :meth:`Trainer.fit_iterations` history (rows of :class:`IterationMetrics`)."""
    its, train_loss, val_loss, lr, seconds = rows.T
    finite = np.isfinite
    problems = []
    if not (its[0] == 0 and (its == np.floor(its)).all() and (np.diff(its) > 0).all() and its[-1] <= iteration):
        problems.append(f"the history's iteration numbers are not 0 then increasing, up to {iteration}")
    if np.isinf(rows).any() or not (finite(train_loss).all() or np.isnan(train_loss).all()) \
            or not (finite(val_loss).all() or np.isnan(val_loss).all()):
        problems.append("the history holds NaN or infinite values where it should not")
    if not (finite(seconds).all() and (seconds >= 0).all() and (np.diff(seconds) >= 0).all()):
        problems.append("the history holds a wrong time")
    stepped = lr[its > 0]
    if not (finite(stepped).all() and (stepped >= 0).all()):
        problems.append("the history holds a learning rate that is not a finite number >= 0")
    return problems
