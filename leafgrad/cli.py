"""The ``leafgrad`` command: ``leafgrad train`` (watch a model learn) and ``leafgrad graph`` (see a graph).

``leafgrad train`` with no options trains an MLP on the built-in spiral data set
(no network, no files) and writes ``metrics.csv``, ``curves.png``,
``decision_boundary.png``, the weights and a checkpoint into a new folder under
``runs/``; ``leafgrad train --resume DIR`` continues a run exactly where it
stopped.  ``leafgrad graph`` draws a built-in computational graph.

Exit status: 0 on success, 2 for a bad option (one sentence on stderr, no
traceback), 1 when the data or a package a command needs is missing, 130 when
interrupted.

The training loop is :class:`Trainer`; a training step ends with the
gradients ready in ``param.grad`` and runs ``Trainer.gradient_hooks`` right
before ``optimizer.update()``, the place for averaging gradients across
processes in distributed training.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from leafgrad._atomic import write_atomic

__all__ = ["main", "build_parser", "Trainer", "Data", "UsageError", "DataError",
           "load_data", "build_model", "build_optimizer"]

DATASETS = ("spiral", "digits", "mnist")
MODELS = ("mlp", "cnn")
OPTIMIZERS = ("sgd", "momentum", "adagrad", "adadelta", "adam")

#: Defaults per data set: what ``leafgrad train --dataset NAME`` uses when an option is not given.
DEFAULTS: Dict[str, Dict[str, Any]] = {
    "spiral": dict(model="mlp", hidden=[100, 100], epochs=100, batch_size=30, optimizer="adam", lr=0.01),
    "digits": dict(model="mlp", hidden=[100], epochs=20, batch_size=32, optimizer="adam", lr=0.001),
    "mnist": dict(model="mlp", hidden=[1000], epochs=5, batch_size=100, optimizer="adam", lr=0.001),
}
#: Default learning rate per optimizer: (spiral, other data sets); AdaDelta has none.
DEFAULT_LR: Dict[str, Tuple[float, float]] = {
    "sgd": (0.1, 0.1), "momentum": (0.05, 0.01), "adagrad": (0.1, 0.01), "adadelta": (1.0, 1.0),
    "adam": (0.01, 0.001),
}
#: The options that define a run (kept in run.json; fixed once a run has started).
RUN_OPTIONS = ("dataset", "model", "hidden", "batch_size", "optimizer", "lr", "seed")

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")
CHECKPOINT = "checkpoint.npz"
WEIGHTS = "model.npz"
RUN_FILE = "run.json"


class UsageError(Exception):
    """A bad option: ``main`` prints the message as one sentence and exits with status 2."""

    def __init__(self, message: str, prog: Optional[str] = None) -> None:
        super().__init__(message)
        self.prog = prog


class DataError(Exception):
    """Data or a package that a command needs is missing: exit status 1."""


# =============================================================================
# Small helpers
# =============================================================================
def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _fmt_pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _fmt_num(x: Optional[float]) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.4f}"


# =============================================================================
# Data
# =============================================================================
class Data:
    """A classification data set as arrays: ``x_train t_train x_test t_test`` (test may be None).

    ``x`` arrays are float32, already shaped for the model (``(N, D)`` for an
    MLP, ``(N, C, H, W)`` for a CNN); ``t`` arrays are int64 class indices.
    """

    def __init__(self, name: str, x_train: np.ndarray, t_train: np.ndarray,
                 x_test: Optional[np.ndarray], t_test: Optional[np.ndarray],
                 num_classes: int, image_shape: Optional[tuple] = None) -> None:
        self.name = name
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test
        self.num_classes = num_classes
        self.image_shape = image_shape

    @property
    def input_dim(self) -> int:
        """Number of input features per example."""
        return int(np.prod(self.x_train.shape[1:]))

    def describe(self) -> str:
        """``'spiral: 300 train / 300 test, 2 features, 3 classes'``."""
        test = f" / {len(self.x_test)} test" if self.x_test is not None else ""
        return (f"{self.name}: {len(self.x_train)} train{test}, {self.input_dim} features, "
                f"{self.num_classes} classes")


def _shape_for(model: str, x: np.ndarray, image_shape: Optional[tuple]) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if model == "cnn":
        return x.reshape((len(x),) + tuple(image_shape))
    return x.reshape(len(x), -1)


def _unit_float32(pixels: np.ndarray) -> np.ndarray:
    """Bytes 0..255 as float32 in [0, 1], without a float64 copy of the whole data set."""
    x = pixels.astype(np.float32)
    x *= 1.0 / 255.0
    return x


def load_data(name: str, model: str = "mlp") -> Data:
    """Load the data set ``name`` (``spiral``, ``digits`` or ``mnist``) shaped for ``model``."""
    if name == "spiral":
        if model == "cnn":
            raise UsageError("--model cnn needs image data, but spiral has 2-D points; "
                             "use --model mlp or --dataset digits")
        from leafgrad.datasets import get_spiral
        # get_spiral seeds NumPy's global generator (as DeZero does): load data before seeding the run.
        x, t = get_spiral(train=True)
        x_test, t_test = get_spiral(train=False)
        return Data("spiral", _shape_for(model, x, None), t.astype(np.int64),
                    _shape_for(model, x_test, None), t_test.astype(np.int64), 3)
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError("--dataset digits needs scikit-learn, which is not installed "
                            "(pip install scikit-learn)") from None
        bunch = load_digits()
        x = (bunch.data / 16.0).astype(np.float32)
        t = bunch.target.astype(np.int64)
        order = np.random.RandomState(0).permutation(len(x))  # a fixed 80/20 split
        n_train = int(round(0.8 * len(x)))
        tr, te = order[:n_train], order[n_train:]
        shape = (1, 8, 8)
        return Data("digits", _shape_for(model, x[tr], shape), t[tr],
                    _shape_for(model, x[te], shape), t[te], 10, shape)
    if name == "mnist":
        from leafgrad.datasets import MNIST
        try:
            train, test = MNIST(train=True), MNIST(train=False)
        except Exception as err:  # no network and nothing cached, a corrupt file...
            raise DataError(f"could not load MNIST: {err}") from None
        shape = (1, 28, 28)
        return Data("mnist", _shape_for(model, _unit_float32(train.data), shape), train.label.astype(np.int64),
                    _shape_for(model, _unit_float32(test.data), shape), test.label.astype(np.int64), 10, shape)
    raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


# =============================================================================
# Models and optimizers
# =============================================================================
def _cnn_class() -> type:
    """A small CNN (conv-relu-pool twice, then two linear layers), built on first use."""
    import leafgrad.functions as F
    import leafgrad.layers as L
    from leafgrad.models import Model

    class SmallCNN(Model):
        """conv3x3(16)-relu-pool2 -> conv3x3(32)-relu-pool2 -> linear(hidden)-relu -> linear(classes)."""

        def __init__(self, hidden: int, num_classes: int) -> None:
            super().__init__()
            self.conv1 = L.Conv2d(16, kernel_size=3, stride=1, pad=1)
            self.conv2 = L.Conv2d(32, kernel_size=3, stride=1, pad=1)
            self.fc1 = L.Linear(hidden)
            self.fc2 = L.Linear(num_classes)

        def forward(self, x: Any) -> Any:
            x = F.pooling(F.relu(self.conv1(x)), 2, 2)
            x = F.pooling(F.relu(self.conv2(x)), 2, 2)
            x = F.reshape(x, (x.shape[0], -1))
            return self.fc2(F.relu(self.fc1(x)))

    return SmallCNN


def build_model(kind: str, hidden: Sequence[int], num_classes: int) -> Any:
    """An ``mlp`` (ReLU between ``hidden`` layers) or a small ``cnn`` ending in ``num_classes`` outputs."""
    import leafgrad.functions as F
    if kind == "mlp":
        from leafgrad.models import MLP
        return MLP(tuple(hidden) + (num_classes,), activation=F.relu)
    if kind == "cnn":
        return _cnn_class()(hidden[0], num_classes)
    raise UsageError(f"unknown model {kind!r}; choose from {', '.join(MODELS)}")


def build_optimizer(name: str, lr: float) -> Any:
    """The optimizer ``name`` with learning rate ``lr`` (AdaDelta has none and ignores it)."""
    from leafgrad import optimizers as O
    if name == "sgd":
        return O.SGD(lr=lr)
    if name == "momentum":
        return O.MomentumSGD(lr=lr)
    if name == "adagrad":
        return O.AdaGrad(lr=lr)
    if name == "adadelta":
        return O.AdaDelta()
    if name == "adam":
        return O.Adam(alpha=lr)
    raise UsageError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


def count_params(model: Any) -> int:
    """Number of scalars in the model's initialized parameters."""
    return int(sum(p.data.size for p in model.params() if p.data is not None))


def describe_model(kind: str, hidden: Sequence[int], data: Data) -> str:
    """``'mlp 2-100-100-3'`` or ``'cnn (conv16-conv32-100-10)'``."""
    if kind == "mlp":
        return "mlp " + "-".join(str(n) for n in [data.input_dim, *hidden, data.num_classes])
    return f"cnn conv16-conv32-{hidden[0]}-{data.num_classes}"


# =============================================================================
# The training loop
# =============================================================================
class Trainer:
    """Trains ``model`` with ``optimizer`` on ``data`` by mini-batches; one :meth:`epoch` at a time.

    The order of examples comes from ``self.rng`` (a ``RandomState`` seeded by
    ``--seed``), not from NumPy's global generator, so a checkpoint can save it
    and a resumed run sees the same batches as an uninterrupted one.

    Extension points (for distributed training and experiments):

    * ``gradient_hooks``: callables ``hook(model)`` run after ``loss.backward()``,
      when every ``param.grad`` is ready, and before ``optimizer.update()``;
    * ``batch_indices(perm)``: the example indices of each batch of an epoch;
    * ``is_main``: whether this process writes files and prints.
    """

    def __init__(self, model: Any, optimizer: Any, data: Data, batch_size: int, seed: int) -> None:
        self.model = model
        self.optimizer = optimizer
        self.data = data
        self.batch_size = batch_size
        self.rng = np.random.RandomState(seed)
        self.gradient_hooks: List[Callable[[Any], None]] = []
        self.is_main = True

    def batch_indices(self, perm: np.ndarray) -> List[np.ndarray]:
        """Split one epoch's permutation of the training examples into batches."""
        bs = self.batch_size
        return [perm[i:i + bs] for i in range(0, len(perm), bs)]

    def loss_and_accuracy(self, x: np.ndarray, t: np.ndarray) -> Tuple[Any, float]:
        """Forward: the softmax cross-entropy loss Variable and the accuracy of a batch."""
        import leafgrad.functions as F
        y = self.model(x)
        loss = F.softmax_cross_entropy(y, t)
        acc = float(np.mean(np.argmax(y.data, axis=1) == t))
        return loss, acc

    def step(self, x: np.ndarray, t: np.ndarray) -> Tuple[float, float]:
        """One training step on a batch; returns (loss, accuracy) as Python floats."""
        loss, acc = self.loss_and_accuracy(x, t)
        self.model.cleargrads()
        loss.backward()
        # The gradients are ready in every param.grad: hooks may read or change them here.
        for hook in self.gradient_hooks:
            hook(self.model)
        self.optimizer.update()
        return float(loss.data), acc

    def epoch(self, on_batch: Optional[Callable[[float, float], None]] = None) -> Tuple[float, float]:
        """Train on every training example once, in a new random order; returns mean (loss, accuracy)."""
        data = self.data
        perm = self.rng.permutation(len(data.x_train))
        total_loss = total_acc = 0.0
        seen = 0
        for idx in self.batch_indices(perm):
            loss, acc = self.step(data.x_train[idx], data.t_train[idx])
            total_loss += loss * len(idx)
            total_acc += acc * len(idx)
            seen += len(idx)
            if on_batch is not None:
                on_batch(loss, acc)
        return total_loss / max(seen, 1), total_acc / max(seen, 1)

    def evaluate(self, x: Optional[np.ndarray], t: Optional[np.ndarray],
                 batch_size: int = 1000) -> Tuple[float, float]:
        """Mean (loss, accuracy) on ``x, t`` without recording a graph; (nan, nan) without data."""
        if x is None or len(x) == 0:
            return float("nan"), float("nan")
        import leafgrad.functions as F
        from leafgrad import no_grad, test_mode
        total_loss = total_acc = 0.0
        with no_grad(), test_mode():
            for i in range(0, len(x), batch_size):
                xb, tb = x[i:i + batch_size], t[i:i + batch_size]
                y = self.model(xb)
                total_loss += float(F.softmax_cross_entropy(y, tb).data) * len(xb)
                total_acc += float(np.sum(np.argmax(y.data, axis=1) == tb))
        return total_loss / len(x), total_acc / len(x)

    def predict(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Predicted class of each row of ``x``."""
        from leafgrad import no_grad, test_mode
        out = []
        with no_grad(), test_mode():
            for i in range(0, len(x), batch_size):
                out.append(np.argmax(self.model(x[i:i + batch_size]).data, axis=1))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def measure_step_memory(self) -> Tuple[Any, Any, Any]:
        """Memory reports (step, forward, backward) of one training step on the first training batch.

        ``forward.current`` is what the graph keeps for backward; ``backward.peak``
        is measured from the start of backward; ``step.peak`` from the start of the
        step.  Changes no parameter (no update); the gradients it leaves are cleared.
        """
        from leafgrad.memory import track
        n = min(self.batch_size, len(self.data.x_train))
        x, t = self.data.x_train[:n], self.data.t_train[:n]
        self.model.cleargrads()
        with track(label="step") as step:  # one outer block: the inner ones also see arrays being freed
            with track(label="forward") as fwd:
                loss, _ = self.loss_and_accuracy(x, t)
            with track(label="backward") as bwd:
                loss.backward()
            del loss
        self.model.cleargrads()
        return step, fwd, bwd


class DistributedTrainer(Trainer):
    """One rank of ``mpiexec -n N leafgrad train --distributed``: data-parallel training over MPI.

    Every rank draws the same batch order (same ``--seed``) and trains on its
    share of each batch of ``--batch-size`` examples; the gradients are averaged
    over the ranks, weighted by examples, before each update (see
    :mod:`leafgrad.distributed`), so N ranks train like one process with the
    same options.  Only rank 0 (``is_main``) prints and writes files.
    """

    def __init__(self, model: Any, optimizer: Any, data: Data, batch_size: int, seed: int,
                 comm: Any) -> None:
        from leafgrad.distributed import DistributedOptimizer
        super().__init__(model, optimizer, data, batch_size, seed)
        _init_params(self)  # lazily sized weights must exist before rank 0's are broadcast
        self.optimizer = DistributedOptimizer(optimizer, comm)
        self.comm = comm
        self.is_main = comm.is_root
        self._examples = 0

    def batch_indices(self, perm: np.ndarray) -> List[np.ndarray]:
        """This rank's share of each batch: batch k split into ``size`` near-equal parts, part ``rank``."""
        comm = self.comm
        parts = [np.array_split(idx, comm.size)[comm.rank] for idx in super().batch_indices(perm)]
        self._examples = sum(len(p) for p in parts)
        return parts

    def step(self, x: np.ndarray, t: np.ndarray) -> Tuple[float, float]:
        """One step on this rank's share of a batch (which is empty when the batch has fewer examples than ranks)."""
        opt = self.optimizer
        self.model.cleargrads()
        if len(t) == 0:
            opt.update(weight=0)  # take part in the averaging, contributing nothing
            return 0.0, 0.0
        loss, acc = self.loss_and_accuracy(x, t)
        opt.backward(loss, weight=len(t))  # each bucket's averaging starts during backward
        opt.synchronize()  # every param.grad is now the mean over all the batch's examples
        for hook in self.gradient_hooks:
            hook(self.model)
        opt.optimizer.update()  # the wrapped optimizer: the gradients are averaged already
        return float(loss.data), acc

    def epoch(self, on_batch: Optional[Callable[[float, float], None]] = None) -> Tuple[float, float]:
        """Train one epoch on every rank; returns mean (loss, accuracy) over all ranks' examples."""
        loss, acc = super().epoch(on_batch)
        n = float(self._examples)
        total = self.comm.allreduce_sum(np.array([loss * n, acc * n, n], dtype=np.float64))
        seen = max(float(total[2]), 1.0)
        return float(total[0]) / seen, float(total[1]) / seen


# =============================================================================
# Checkpoints and files of a run
# =============================================================================
def save_checkpoint(path: str, trainer: Trainer, epochs_done: int, rows: List[List[float]]) -> None:
    """Write everything a resumed run needs into one ``.npz`` file, atomically (no pickle).

    :func:`leafgrad.serialization.save_checkpoint` stores the weights, the
    optimizer's state and NumPy's global generator; the run adds the state of
    its batch-order generator and the metrics so far.
    """
    from leafgrad.serialization import save_checkpoint as save
    _, keys, pos, has_gauss, cached = trainer.rng.get_state()
    extra = {"metrics": np.array(rows, dtype=np.float64).reshape(-1, len(METRIC_COLUMNS)),
             "batch_rng_keys": np.asarray(keys, dtype=np.uint32),
             "batch_rng": {"pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    save(path, trainer.model, trainer.optimizer, epoch=epochs_done, extra=extra)


def load_checkpoint(path: str, trainer: Trainer) -> Tuple[int, List[List[float]]]:
    """Restore a checkpoint written by :func:`save_checkpoint` into ``trainer``; returns (epochs done, metric rows)."""
    from leafgrad.serialization import SerializationError
    from leafgrad.serialization import load_checkpoint as load
    try:
        info = load(path, trainer.model, trainer.optimizer)
        extra = info["extra"]
        rng = extra["batch_rng"]
        trainer.rng.set_state(("MT19937", np.asarray(extra["batch_rng_keys"], dtype=np.uint32),
                               int(rng["pos"]), int(rng["has_gauss"]), float(rng["cached_gaussian"])))
        rows = np.asarray(extra["metrics"], dtype=np.float64).tolist()
        return int(info["epoch"]), rows
    except (SerializationError, KeyError, TypeError, ValueError) as err:
        raise DataError(f"cannot resume from {path}: {str(err).splitlines()[0]}") from None


def write_metrics(path: str, rows: List[List[float]]) -> None:
    """Write ``metrics.csv``: a header, then one row per epoch."""
    def write(f: Any) -> None:
        w = csv.writer(f)
        w.writerow(METRIC_COLUMNS)
        for row in rows:
            w.writerow([int(row[0])] + ["" if math.isnan(v) else repr(float(v)) for v in row[1:]])
    write_atomic(path, write, binary=False)


def read_metrics(path: str) -> List[Dict[str, float]]:
    """Read ``metrics.csv`` back as a list of dicts (empty fields become NaN)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: (float(v) if v != "" else float("nan")) for k, v in row.items()}
                for row in csv.DictReader(f)]


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


# =============================================================================
# Pictures (matplotlib is optional)
# =============================================================================
def _figure_class() -> Optional[type]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def _save_figure(fig: Any, path: str) -> None:
    def write(f: Any) -> None:
        fig.savefig(f, format="png", dpi=100)
    write_atomic(path, write)


def plot_curves(path: str, rows: List[List[float]], title: str) -> bool:
    """Draw loss and accuracy against epoch into ``path``; False when matplotlib is missing."""
    Figure = _figure_class()
    if Figure is None:
        return False
    m = np.array(rows, dtype=np.float64).reshape(-1, len(METRIC_COLUMNS))
    epoch = m[:, 0]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    marker = "o" if len(epoch) <= 30 else None
    ax_loss.plot(epoch, m[:, 1], marker=marker, label="train (mean over the epoch)")
    ax_acc.plot(epoch, 100 * m[:, 2], marker=marker, label="train (mean over the epoch)")
    if not np.all(np.isnan(m[:, 3])):
        ax_loss.plot(epoch, m[:, 3], marker=marker, label="test")
        ax_acc.plot(epoch, 100 * m[:, 4], marker=marker, label="test")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (softmax cross-entropy)")
    ax_loss.set_title("loss")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy")
    ax_acc.set_ylim(0, 100)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        if len(epoch) and epoch.max() <= 10:
            ax.set_xticks(epoch)
    fig.suptitle(title)
    _save_figure(fig, path)
    return True


def plot_decision_boundary(path: str, trainer: Trainer, title: str) -> bool:
    """Draw the predicted class over the input plane with the training points; False without matplotlib."""
    Figure = _figure_class()
    if Figure is None:
        return False
    x, t = trainer.data.x_train, trainer.data.t_train
    lo, hi = x.min(axis=0) - 0.1, x.max(axis=0) + 0.1
    n = 200
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], n, dtype=np.float32),
                         np.linspace(lo[1], hi[1], n, dtype=np.float32))
    grid = np.c_[g0.ravel(), g1.ravel()].astype(np.float32)
    pred = trainer.predict(grid).reshape(g0.shape)
    k = trainer.data.num_classes
    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.subplots()
    colors = [f"C{c % 10}" for c in range(k)]  # matplotlib's default cycle: regions match points
    ax.contourf(g0, g1, pred, levels=np.arange(k + 1) - 0.5, colors=colors, alpha=0.25)
    markers = "o^sDv<>ph*"
    for c in range(k):
        sel = t == c
        ax.scatter(x[sel, 0], x[sel, 1], s=18, marker=markers[c % len(markers)], color=colors[c],
                   label=f"class {c}", edgecolors="black", linewidths=0.4)
    ax.set_xlabel("x1 (first input feature)")
    ax.set_ylabel("x2 (second input feature)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    _save_figure(fig, path)
    return True


# =============================================================================
# Progress
# =============================================================================
class Progress:
    """A tqdm bar (epoch, loss, accuracy) on a terminal; plain lines otherwise; nothing when quiet."""

    def __init__(self, start_epoch: int, epochs: int, batches_per_epoch: int, quiet: bool,
                 stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.epochs = epochs
        self.quiet = quiet
        self.bar = None
        self.every = max(1, math.ceil(max(epochs - start_epoch, 1) / 20))  # about 20 plain lines
        self._epoch = start_epoch
        self._sum = [0.0, 0.0, 0]
        if quiet or epochs <= start_epoch:
            return
        isatty = getattr(self.stream, "isatty", None)
        if isatty is not None and isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=(epochs - start_epoch) * batches_per_epoch, file=self.stream,
                            unit="batch", dynamic_ncols=True, leave=True)

    def start_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) begins."""
        self._epoch = epoch
        self._sum = [0.0, 0.0, 0]
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch + 1}/{self.epochs}", refresh=False)

    def batch(self, loss: float, acc: float) -> None:
        """A batch ended with this loss and accuracy."""
        if self.bar is not None:
            s = self._sum
            s[0] += loss
            s[1] += acc
            s[2] += 1
            self.bar.set_postfix_str(f"loss {s[0] / s[2]:.4f}, acc {100 * s[1] / s[2]:.1f}%", refresh=False)
            self.bar.update(1)

    def end_epoch(self, row: List[float]) -> None:
        """An epoch ended; ``row`` is its line of metrics."""
        epoch = int(row[0])
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {row[1]:.4f}, acc {_fmt_pct(row[2])}, "
                                     f"test acc {_fmt_pct(row[4])}", refresh=True)
            return
        if self.quiet or (epoch % self.every and epoch != self.epochs):
            return
        width = len(str(self.epochs))
        test = "" if math.isnan(row[4]) else f"  test loss {row[3]:.4f}  test acc {_fmt_pct(row[4]):>6}"
        print(f"epoch {epoch:>{width}}/{self.epochs}  loss {row[1]:.4f}  acc {_fmt_pct(row[2]):>6}{test}"
              f"  ({row[5]:.1f} s)", file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# =============================================================================
# leafgrad train
# =============================================================================
def _default_out(dataset: str, model: str) -> str:
    base = os.path.join("runs", f"{dataset}-{model}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, k = base, 1
    while os.path.exists(path):
        k += 1
        path = f"{base}-{k}"
    return path


def _prepare_out(path: str) -> str:
    """Create ``path`` and check that files can be written there; UsageError otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        raise UsageError(f"cannot write to --out {path}: {reason}") from None
    return path


def _resolve_train_options(args: argparse.Namespace) -> Tuple[Dict[str, Any], Optional[dict]]:
    """The run's options: from the command line and the data set's defaults, or from a run to resume."""
    previous = None
    if args.resume is not None:
        run_path = os.path.join(args.resume, RUN_FILE)
        ckpt_path = os.path.join(args.resume, CHECKPOINT)
        if not (os.path.isfile(run_path) and os.path.isfile(ckpt_path)):
            raise UsageError(f"--resume {args.resume}: no run to resume there "
                             f"(expected {RUN_FILE} and {CHECKPOINT} written by leafgrad train)")
        try:
            with open(run_path, encoding="utf-8") as f:
                previous = json.load(f)
            config = dict(previous["config"])
        except (OSError, ValueError, KeyError) as err:
            raise UsageError(f"--resume {args.resume}: cannot read {RUN_FILE} ({err})") from None
        for name in RUN_OPTIONS:
            given = getattr(args, name)
            if given is not None and given != config.get(name):
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} cannot change when resuming (the run used "
                                 f"{flag} {config.get(name)}); leave it out or start a new run")
        if args.epochs is not None:
            config["epochs"] = args.epochs
        return config, previous

    dataset = args.dataset if args.dataset is not None else "spiral"
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    defaults = DEFAULTS[dataset]
    config = {name: getattr(args, name) if getattr(args, name, None) is not None else defaults.get(name)
              for name in ("model", "hidden", "epochs", "batch_size", "optimizer", "lr")}
    config["dataset"] = dataset
    config["seed"] = args.seed if args.seed is not None else 0
    if config["model"] not in MODELS:
        raise UsageError(f"unknown model {config['model']!r}; choose from {', '.join(MODELS)}")
    if config["optimizer"] not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {config['optimizer']!r}; choose from {', '.join(OPTIMIZERS)}")
    if args.lr is None:
        config["lr"] = DEFAULT_LR[config["optimizer"]][0 if dataset == "spiral" else 1]
    if config["model"] == "cnn" and dataset == "spiral":
        raise UsageError("--model cnn needs image data, but spiral has 2-D points; "
                         "use --model mlp or --dataset digits")
    if config["model"] == "cnn" and args.hidden is None:
        config["hidden"] = [100]
    if config["model"] == "cnn" and len(config["hidden"]) != 1:
        raise UsageError("--model cnn takes one --hidden size (the fully connected layer), "
                         f"got {','.join(map(str, config['hidden']))}")
    return config, None


def make_trainer(config: Dict[str, Any]) -> Trainer:
    """Data, model, optimizer and trainer for a run's options (NumPy's global generator seeded by ``seed``)."""
    data = load_data(config["dataset"], config["model"])
    np.random.seed(config["seed"])  # initial weights come from NumPy's global generator, as in DeZero
    model = build_model(config["model"], config["hidden"], data.num_classes)
    optimizer = build_optimizer(config["optimizer"], config["lr"]).setup(model)
    return Trainer(model, optimizer, data, config["batch_size"], config["seed"])


def _init_params(trainer: Trainer) -> None:
    """Run one forward pass without a graph so lazily created parameters exist (as the first step would)."""
    if any(p.data is None for p in trainer.model.params()):
        from leafgrad import no_grad
        with no_grad():
            trainer.model(trainer.data.x_train[:1])


def cmd_train(args: argparse.Namespace) -> int:
    """``leafgrad train``: train, write the run's files, print a summary."""
    if not getattr(args, "distributed", False):
        return _train(args, None)
    import leafgrad.distributed as dist
    comm = dist.init()  # an uncaught error on any rank ends the whole job, naming the rank
    with dist.abort_on_error(comm, brief=(UsageError, DataError)):
        return _train(args, comm)


def _train(args: argparse.Namespace, comm: Any) -> int:
    """``leafgrad train`` on one process, or on one rank (``comm``) with ``--distributed``."""
    is_main = comm is None or comm.is_root
    config, previous = _resolve_train_options(args)
    out = args.out if args.out is not None else (args.resume if args.resume is not None
                                                  else _default_out(config["dataset"], config["model"]))
    if is_main:
        _prepare_out(out)
    say = (lambda *a: None) if args.quiet or not is_main else (lambda *a: print(*a, flush=True))

    trainer = make_trainer(config)
    if comm is not None:
        trainer = DistributedTrainer(trainer.model, trainer.optimizer, trainer.data,
                                     config["batch_size"], config["seed"], comm)
    data = trainer.data
    epochs_done, rows = 0, []
    if previous is not None:
        _init_params(trainer)  # parameters get their shapes (and DeZero's initial draws) before loading
        epochs_done, rows = load_checkpoint(os.path.join(args.resume, CHECKPOINT), trainer)
        say(f"resuming {args.resume} after epoch {epochs_done}")
        if epochs_done >= config["epochs"]:
            say(f"the run has already trained {epochs_done} epochs; pass --epochs N with N > "
                f"{epochs_done} to train more")
    model_text = describe_model(config["model"], config["hidden"], data)
    opt_text = config["optimizer"] + ("" if config["optimizer"] == "adadelta" else f" lr={config['lr']:g}")
    say(f"{data.describe()}; {model_text}; {opt_text}; batch {config['batch_size']}; "
        f"{config['epochs']} epochs; writing to {out}")

    epochs = config["epochs"]
    batches = math.ceil(len(data.x_train) / config["batch_size"])
    progress = Progress(epochs_done, epochs, batches, args.quiet or not is_main)
    elapsed_before = rows[-1][5] if rows else 0.0
    t0 = time.perf_counter()
    try:
        for epoch in range(epochs_done, epochs):
            progress.start_epoch(epoch)
            train_loss, train_acc = trainer.epoch(progress.batch)
            test_loss, test_acc = trainer.evaluate(data.x_test, data.t_test)
            row = [epoch + 1, train_loss, train_acc, test_loss, test_acc,
                   elapsed_before + time.perf_counter() - t0]
            rows.append(row)
            epochs_done = epoch + 1
            if trainer.is_main:
                write_metrics(os.path.join(out, "metrics.csv"), rows)
                save_checkpoint(os.path.join(out, CHECKPOINT), trainer, epochs_done, rows)
                write_json(os.path.join(out, RUN_FILE), _run_record(config, epochs_done, rows))
            progress.end_epoch(row)
    except KeyboardInterrupt:
        progress.close()
        print(f"\ninterrupted after {epochs_done} epochs; continue with: leafgrad train --resume {out}",
              file=sys.stderr)
        return 130
    progress.close()
    train_seconds = time.perf_counter() - t0
    if not is_main:
        return 0  # rank 0 evaluates, writes and reports

    _init_params(trainer)
    final_train = trainer.evaluate(data.x_train, data.t_train)
    final_test = trainer.evaluate(data.x_test, data.t_test)
    if comm is not None:  # a backward on rank 0 alone must not start allreduces the others never join
        with trainer.optimizer.no_sync():
            step, fwd, bwd = trainer.measure_step_memory()
    else:
        step, fwd, bwd = trainer.measure_step_memory()
    written = _write_outputs(out, trainer, config, rows, final_train, epochs_done)

    total = rows[-1][5] if rows else 0.0
    if args.quiet:
        print(f"train accuracy {_fmt_pct(final_train[1])}, test accuracy {_fmt_pct(final_test[1])}, "
              f"{epochs_done} epochs, {total:.1f} s, {out}")
        return 0
    from leafgrad.memory import format_bytes
    n = min(config["batch_size"], len(data.x_train))
    print()
    print(f"done: {epochs_done} epochs in {total:.1f} s"
          + (f" ({train_seconds:.1f} s this session)" if previous is not None else ""))
    print(f"  train accuracy {_fmt_pct(final_train[1])} (loss {_fmt_num(final_train[0])})"
          + ("" if data.x_test is None else
             f", test accuracy {_fmt_pct(final_test[1])} (loss {_fmt_num(final_test[0])})"))
    print(f"  model: {model_text}, {count_params(trainer.model):,} parameters")
    print(f"  memory of one training step (batch of {n}), measured with leafgrad.memory:")
    print(f"    forward:  peak {format_bytes(fwd.peak)}; the graph keeps {format_bytes(fwd.current)} "
          "for backward")
    print(f"    backward: peak {format_bytes(bwd.peak)} more; then only the gradients stay "
          f"({format_bytes(step.current)})")
    print(f"    whole step: peak {format_bytes(step.peak)}")
    print(f"  wrote {out}{os.sep}: {' '.join(written)}")
    if args.resume is None:
        print(f"  continue training with: leafgrad train --resume {out} --epochs {epochs * 2}")
    return 0


def _run_record(config: Dict[str, Any], epochs_done: int, rows: List[List[float]]) -> Dict[str, Any]:
    from leafgrad import __version__
    last = rows[-1] if rows else [0, float("nan")] * 3
    record = {"leafgrad_version": __version__, "config": {k: config[k] for k in RUN_OPTIONS + ("epochs",)},
              "epochs_done": epochs_done, "seconds": last[5] if rows else 0.0}
    if rows:
        record["last_epoch"] = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                                for k, v in zip(METRIC_COLUMNS, last)}
    return record


def _write_outputs(out: str, trainer: Trainer, config: Dict[str, Any], rows: List[List[float]],
                   final_train: Tuple[float, float], epochs_done: int) -> List[str]:
    """Weights, run record, metrics and pictures; returns the names written."""
    written = []
    trainer.model.save_weights(os.path.join(out, WEIGHTS))
    written.append(WEIGHTS)
    if not os.path.exists(os.path.join(out, CHECKPOINT)):  # zero epochs: still resumable
        save_checkpoint(os.path.join(out, CHECKPOINT), trainer, epochs_done, rows)
    write_metrics(os.path.join(out, "metrics.csv"), rows)
    write_json(os.path.join(out, RUN_FILE), _run_record(config, epochs_done, rows))
    written += ["metrics.csv", CHECKPOINT, RUN_FILE]
    data = trainer.data
    title = f"{data.name}, {describe_model(config['model'], config['hidden'], data)}, {config['optimizer']}"
    skipped = False
    if rows:
        if plot_curves(os.path.join(out, "curves.png"), rows, title):
            written.append("curves.png")
        else:
            skipped = True
    if data.x_train.ndim == 2 and data.x_train.shape[1] == 2:
        if plot_decision_boundary(os.path.join(out, "decision_boundary.png"), trainer,
                                  f"decision boundary after {epochs_done} epochs "
                                  f"(train accuracy {_fmt_pct(final_train[1])})"):
            written.append("decision_boundary.png")
        else:
            skipped = True
    if skipped:
        print("matplotlib is not installed, so the pictures were skipped (pip install matplotlib)",
              file=sys.stderr)
    return written


# =============================================================================
# leafgrad graph
# =============================================================================
def tanh_derivative(order: int) -> Any:
    """The ``order``-th derivative of tanh at x = 1 as a Variable named ``gx{order}`` (the book's step 35)."""
    import leafgrad.functions as F
    from leafgrad import Variable
    x = Variable(np.array(1.0), name="x")
    y = F.tanh(x)
    y.name = "y"
    y.backward(create_graph=True)
    for _ in range(order - 1):
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
    gx = x.grad
    gx.name = f"gx{order}"
    return gx


def mlp_loss() -> Tuple[Any, Any]:
    """The loss of a small MLP (2-10-3, sigmoid) on 10 spiral points, named ``loss``."""
    import leafgrad.functions as F
    from leafgrad.datasets import get_spiral
    from leafgrad.models import MLP
    x, t = get_spiral(train=True)
    np.random.seed(0)
    model = MLP((10, 3))
    loss = F.softmax_cross_entropy(model(x[:10]), t[:10])
    loss.name = "loss"
    return loss, model  # the model (its parameters) must stay alive while the graph is drawn


def cmd_graph(args: argparse.Namespace) -> int:
    """``leafgrad graph``: draw a built-in computational graph to PNG, SVG, PDF or DOT."""
    from leafgrad.graphviz import GRAPHVIZ_HINT, get_dot_graph, render_dot
    fmt = args.format
    out = args.out
    if out is None:
        stem = f"tanh_gx{args.order}" if args.example == "tanh" else "mlp"
        out = f"{stem}.{fmt or 'png'}"
    ext = os.path.splitext(out)[1][1:].lower()
    if fmt is None:
        fmt = ext or "png"
    if fmt not in ("png", "svg", "pdf", "dot"):
        raise UsageError(f"unknown graph format {fmt!r}; choose from png, svg, pdf, dot")
    if ext != fmt:
        out = f"{out}.{fmt}" if not ext else os.path.splitext(out)[0] + "." + fmt
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {out}: folder {folder} does not exist")

    keep = None
    if args.example == "tanh":
        if args.order < 1:
            raise UsageError(f"--order must be at least 1, got {args.order}")
        output = tanh_derivative(args.order)
        what = f"the graph of d^{args.order}/dx^{args.order} tanh(x) at x = 1"
    else:
        output, keep = mlp_loss()
        what = "the graph of a 2-10-3 MLP's loss on 10 spiral points"
    text = get_dot_graph(output, verbose=not args.no_verbose)
    del keep
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            written = render_dot(text, out)
    except (OSError, RuntimeError) as err:
        raise DataError(str(err)) from None
    if written != out:
        print(f"Graphviz's dot program was not found, so {out} was not drawn; wrote {written} instead: "
              f"{GRAPHVIZ_HINT}.", file=sys.stderr)
        return 1
    nodes = sum(1 for line in text.splitlines() if "[label=" in line)
    if not args.quiet:
        print(f"wrote {out}: {what} ({nodes} nodes)")
    return 0


# =============================================================================
# Parser and entry point
# =============================================================================
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become a UsageError (one sentence, exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, prog=self.prog)


def _int_at_least(lowest: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _hidden_sizes(text: str) -> List[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip() != ""]
    except ValueError:
        sizes = []
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected layer sizes such as 100 or 100,100, got {text!r}")
    return sizes


def _lower(text: str) -> str:
    return text.strip().lower()


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``leafgrad train`` (a separate function so other commands can extend them)."""
    d = DEFAULTS
    p.add_argument("--dataset", type=_lower, metavar="NAME",
                   help=f"{', '.join(DATASETS)} (default spiral; digits needs scikit-learn, "
                        "mnist downloads once)")
    p.add_argument("--model", type=_lower, metavar="KIND",
                   help="mlp, or cnn for image data (default mlp)")
    p.add_argument("--hidden", type=_hidden_sizes, metavar="SIZES",
                   help="hidden layer sizes, e.g. 100 or 100,100 (default "
                        f"{','.join(map(str, d['spiral']['hidden']))} for spiral, "
                        f"{d['digits']['hidden'][0]} for digits, {d['mnist']['hidden'][0]} for mnist)")
    p.add_argument("--epochs", type=_int_at_least(0, "a whole number of epochs >= 0"), metavar="N",
                   help=f"total epochs (default {d['spiral']['epochs']} for spiral, "
                        f"{d['digits']['epochs']} for digits, {d['mnist']['epochs']} for mnist); "
                        "with --resume, the new total")
    p.add_argument("--batch-size", type=_int_at_least(1, "a batch size >= 1"), metavar="N",
                   help=f"examples per step (default {d['spiral']['batch_size']} for spiral, "
                        f"{d['digits']['batch_size']} for digits, {d['mnist']['batch_size']} for mnist)")
    p.add_argument("--lr", type=_positive_float, metavar="RATE",
                   help="learning rate (default for spiral / other data sets: "
                        + ", ".join(f"{k} {a:g}/{b:g}" for k, (a, b) in DEFAULT_LR.items() if k != "adadelta")
                        + "; adadelta takes none)")
    p.add_argument("--optimizer", type=_lower, metavar="NAME",
                   help=f"{', '.join(OPTIMIZERS)} (default adam)")
    p.add_argument("--seed", type=_int_at_least(0, "a seed between 0 and 2**32-1"), metavar="N",
                   help="random seed for the initial weights and the batch order (default 0)")
    p.add_argument("--out", metavar="DIR",
                   help="folder for metrics.csv, pictures, weights and checkpoint "
                        "(default: a new folder under runs/)")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the run saved in DIR, exactly where it stopped")
    p.add_argument("--quiet", action="store_true", help="print only a one-line result")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training over MPI: mpiexec -n N leafgrad train --distributed; "
                        "each batch of --batch-size is split across the N ranks, which train like one "
                        "process (needs pip install 'leafgrad[mpi]')")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``leafgrad`` command and its sub-commands."""
    parser = _Parser(prog="leafgrad",
                     description="leafgrad: a define-by-run deep learning framework on NumPy.",
                     epilog="Try: leafgrad train   (then: leafgrad graph)")
    from leafgrad import __version__
    parser.add_argument("--version", action="version", version=f"leafgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser("train", help="train a model and write metrics, pictures and a checkpoint",
                           description="Train a classifier; with no options an MLP on the spiral data set.")
    add_train_arguments(train)
    train.set_defaults(func=cmd_train)

    graph = sub.add_parser("graph", help="draw a built-in computational graph (PNG, SVG, PDF or DOT)",
                           description="Draw a built-in computational graph with Graphviz.")
    graph.add_argument("example", nargs="?", default="tanh", choices=("tanh", "mlp"),
                       help="tanh: the n-th derivative of tanh (the book's step 35); "
                            "mlp: a small MLP's loss (default tanh)")
    graph.add_argument("--order", type=_int_at_least(1, "a derivative order >= 1"), default=2,
                       metavar="N", help="derivative order for the tanh example (default 2)")
    graph.add_argument("--out", "-o", metavar="FILE",
                       help="output file; its extension picks the format (default tanh_gxN.png or mlp.png)")
    graph.add_argument("--format", type=_lower, metavar="FMT", help="png, svg, pdf or dot")
    graph.add_argument("--no-verbose", action="store_true",
                       help="leave shapes and dtypes out of the labels")
    graph.add_argument("--quiet", action="store_true", help="print nothing on success")
    graph.set_defaults(func=cmd_graph)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``leafgrad`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    prog = "leafgrad"
    try:
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help(sys.stderr)
            return 2
        prog = f"leafgrad {args.command}"
        return int(args.func(args) or 0)
    except UsageError as err:
        words = list(sys.argv[1:] if argv is None else argv)
        if err.prog == "leafgrad" and words and words[0] in ("train", "graph"):
            err.prog = f"leafgrad {words[0]}"  # unrecognized arguments are reported by the top parser
        print(f"{err.prog or prog}: error: {_sentence(str(err))}", file=sys.stderr)
        return 2
    except DataError as err:
        print(f"{prog}: error: {_sentence(str(err))}", file=sys.stderr)
        return 1
    except SystemExit as err:  # --help and --version
        return int(err.code or 0) if not isinstance(err.code, str) else 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
