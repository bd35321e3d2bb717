"""``leafgrad train``: train on a built-in data set or your own file, write the run's folder, print a summary.

The loop is :class:`leafgrad.training.Trainer`; this module chooses the data,
the model and the optimizer from the options, and shows and keeps what
happens (:class:`~leafgrad.cli.progress.Progress`,
:class:`~leafgrad.cli.run_folder.RunFolder`, the pictures).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from leafgrad.cli.data import Data, load_builtin
from leafgrad.cli.errors import DataError, UsageError
from leafgrad.cli.options import resolve_train_options
from leafgrad.cli.plots import (MAX_CLASSES_SHOWN, plot_confusion_matrix, plot_curves, plot_decision_boundary,
                                plot_predictions)
from leafgrad.cli.progress import Progress, fmt_num, fmt_pct
from leafgrad.cli.run_folder import CHECKPOINT, WEIGHTS, RunFolder, default_out, load_checkpoint, prepare_out
from leafgrad.cli.run_lock import RunLock, clean_temporaries, os_error_sentence, refuse_existing_run, remove_run_files
from leafgrad.cli.table import load_file
from leafgrad.optimizers import from_name
from leafgrad.training import DIVERGENCE_FACTOR, DivergenceError, Trainer

__all__ = ["cmd_train", "divergence_sentence", "make_trainer", "load_data", "build_model", "describe_model", "count_params"]


def build_model(kind: str, hidden: Sequence[int], outputs: int) -> Any:
    """An ``mlp`` (ReLU between the ``hidden`` layers) or a ``cnn`` (:class:`~leafgrad.models.SmallCNN`)."""
    import leafgrad.functions as F
    from leafgrad.models import MLP, SmallCNN
    if kind == "mlp":
        return MLP(tuple(hidden) + (outputs,), activation=F.relu)
    return SmallCNN(hidden[0], outputs)


def describe_model(kind: str, hidden: Sequence[int], data: Data) -> str:
    """``'mlp 2-100-100-3'`` or ``'cnn conv16-conv32-100-10'``."""
    if kind == "mlp":
        return "mlp " + "-".join(str(n) for n in [data.input_dim, *hidden, data.num_outputs])
    return f"cnn conv16-conv32-{hidden[0]}-{data.num_outputs}"


def count_params(model: Any) -> int:
    """Number of scalars in the model's initialized parameters."""
    return int(sum(p.data.size for p in model.params() if p.data is not None))


def load_data(config: Dict[str, Any]) -> Data:
    """The run's data: a built-in data set, or your own file (``config["data"]``)."""
    if config.get("data") is not None:
        path = os.path.relpath(config["data"])  # as the user would write it in messages (run.json keeps it whole)
        return load_file(path if not path.startswith(os.pardir) else config["data"], config["target"],
                         config["task"], config["test_fraction"], config["seed"], config["model"])
    return load_builtin(config["dataset"], config["model"])


def make_trainer(config: Dict[str, Any], comm: Any = None) -> Tuple[Trainer, Data]:
    """Data, model, optimizer and trainer for a run's settings (NumPy's global generator seeded by ``seed``).

    The trainer uses ``config["device"]`` (the CPU when it is missing, as in ``run.json``).
    """
    data = load_data(config)
    np.random.seed(config["seed"])  # initial weights come from NumPy's global generator, as in DeZero
    model = build_model(config["model"], config["hidden"], data.num_outputs)
    optimizer = from_name(config["optimizer"], config["lr"])
    trainer = Trainer(model, optimizer, task=data.task, batch_size=config["batch_size"], seed=config["seed"],
                      comm=comm, device=config.get("device", "cpu"))
    return trainer, data


def cmd_train(args: argparse.Namespace) -> int:
    """``leafgrad train``: train, write the run's files, print a summary."""
    if not getattr(args, "distributed", False):
        return _train(args, None)
    import leafgrad.distributed as dist
    comm = dist.init()  # an uncaught error on any rank ends the whole job, naming the rank
    with dist.abort_on_error(comm, brief=(UsageError, DataError)):
        return _train(args, comm)


def _train(args: argparse.Namespace, comm: Any) -> int:
    """``leafgrad train`` on one process, or on one rank (``comm``) with ``--distributed``.

    Rank 0 holds the folder's lock while it trains (:mod:`.run_lock`); an
    error while writing the run (a full disk) is one sentence, exit status 1.
    """
    is_main = comm is None or comm.is_root
    config, previous = resolve_train_options(args)
    text = config.get("kind") == "text"  # a character-level GPT: leafgrad/cli/text.py
    name = config.get("dataset") or os.path.splitext(os.path.basename(config["data"]))[0]
    out = args.out if args.out is not None else (args.resume if args.resume is not None
                                                  else default_out(name, config["model"]))
    overwrite = getattr(args, "overwrite", False)
    resuming_here = args.resume is not None and os.path.abspath(out) == os.path.abspath(args.resume)
    if is_main:
        refuse_existing_run(out, resuming_here, overwrite)
    created = is_main and not os.path.exists(out)
    if is_main:
        prepare_out(out)
    lock = RunLock(out) if is_main else None
    try:
        if lock is not None:
            lock.acquire()
            refuse_existing_run(out, resuming_here, overwrite)  # again: another training may have just ended
            clean_temporaries(out)  # left by a training that was killed while writing
        if text:
            from leafgrad.cli.text import train_text
            return train_text(args, config, previous, out)
        return _train_in(args, comm, config, previous, out)
    except OSError as err:
        raise DataError(f"{os_error_sentence(err, out)}; the run's last checkpoint is intact: free some space, "
                        f"then continue with leafgrad train --resume {out}") from None
    except MemoryError:
        if text:
            from leafgrad.cli.text import describe_gpt
            raise DataError(f"not enough memory for this run ({describe_gpt(config)}); try smaller --embd, "
                            "--layers, --block-size or --batch-size") from None
        raise DataError(f"not enough memory for this run (model {describe_hidden(config)}); "
                        "try smaller --hidden sizes or --batch-size") from None
    finally:
        if lock is not None:
            lock.release()
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(out)  # only when empty: a run that never started leaves no folder behind


def describe_hidden(config: Dict[str, Any]) -> str:
    """``'mlp with hidden layers 100,100'``."""
    return f"{config['model']} with hidden layers {','.join(map(str, config['hidden']))}"


def _train_in(args: argparse.Namespace, comm: Any, config: Dict[str, Any], previous: Optional[dict],
              out: str) -> int:
    """Train into ``out`` (rank 0 holds its lock)."""
    is_main = comm is None or comm.is_root
    trainer, data = make_trainer(config, comm)
    say = (lambda *a: None) if args.quiet or not is_main else (lambda *a: print(*a, flush=True))
    folder = RunFolder(out, config, data.info)
    if previous is not None:
        _resume(trainer, data, previous, args.resume)
        say(f"resuming {args.resume} after epoch {trainer.epoch}")
        if trainer.epoch >= config["epochs"]:
            say(f"the run has already trained {trainer.epoch} epochs; pass --epochs N with N > "
                f"{trainer.epoch} to train more")
    else:
        trainer.initialize(data.x_train)
        if is_main and getattr(args, "overwrite", False):
            remove_run_files(out)  # only now that the new run is ready: a bad option keeps the old run
        folder.save(trainer)  # epoch 0: a run stopped in its first epoch resumes from the start
    model_text = describe_model(config["model"], config["hidden"], data)
    opt_text = config["optimizer"] + ("" if config["optimizer"] == "adadelta" else f" lr={config['lr']:g}")
    on_gpu = "; on the GPU" if trainer.device == "gpu" else ""
    say(f"{data.describe()}; {model_text}; {opt_text}; batch {config['batch_size']}; "
        f"{config['epochs']} epochs{on_gpu}; writing to {out}")

    epochs = config["epochs"]
    start = trainer.epoch
    progress = Progress(start, epochs, math.ceil(len(data.x_train) / config["batch_size"]),
                        args.quiet or not is_main)
    t0 = time.perf_counter()
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence: one sentence below
            trainer.fit(data.x_train, data.t_train, epochs, validation_data=(data.x_test, data.t_test),
                        callbacks=[folder, progress])
    except KeyboardInterrupt:
        progress.close()
        print(f"\ninterrupted after {trainer.epoch} epochs; continue with: leafgrad train --resume {out}",
              file=sys.stderr)
        return 130
    except DivergenceError as err:
        progress.close()
        if is_main:
            print(f"leafgrad train: error: {divergence_sentence(err, config, out, trainer.epoch)}",
                  file=sys.stderr)
        return 1
    progress.close()
    if not is_main:
        return 0  # rank 0 evaluates, writes and reports
    session = time.perf_counter() - t0 if previous is not None else None
    return _finish(args, trainer, data, config, folder, model_text, session)


def _resume(trainer: Trainer, data: Data, previous: dict, folder: str) -> None:
    """Load the run's checkpoint into ``trainer``, after checking that your own file has not changed."""
    if data.info is not None and previous.get("data_info", {}).get("sha256") != data.info.sha256:
        raise UsageError(f"--resume {folder}: {previous['config']['data']} has changed since the run "
                         "started (its contents differ), so the run cannot go on exactly; start a new run")
    path = os.path.join(folder, CHECKPOINT)
    trainer.initialize(data.x_train)  # every weight's shape is then known and checked by load
    load_checkpoint(trainer, path)


def divergence_sentence(err: DivergenceError, config: Dict[str, Any], out: str, epochs_kept: int) -> str:
    """What ``leafgrad train`` says when training diverged: where, why, what to try, what the folder keeps."""
    what = f"the loss became {err.loss:g}" if err.loss is not None else "some weights became NaN or infinite"
    if err.reference is not None:
        first = "its first epoch's" if err.iteration is None else "its first evaluation's"
        what += f", over {DIVERGENCE_FACTOR:g} times {first} ({err.reference:g})"
    if config["optimizer"] == "adadelta":
        advice = "adadelta takes no learning rate: try another --optimizer"
    else:
        advice = (f"the learning rate --lr {config['lr']:g} is too high for {config['optimizer']}: "
                  f"try a lower one, such as --lr {config['lr'] / 10:g}")
    where, kept = ((f"epoch {err.epoch}, batch {err.batch}", "epoch") if err.iteration is None
                   else (f"iteration {err.iteration}", "iteration"))
    return (f"training diverged: {what} at {where}, so training stopped; "
            f"{advice}; {out} keeps the checkpoint of {kept} {epochs_kept}, whose weights are finite.")


def _finish(args: argparse.Namespace, trainer: Trainer, data: Data, config: Dict[str, Any], folder: RunFolder,
            model_text: str, session: Optional[float]) -> int:
    """Rank 0 after training: evaluate, write the weights, pictures and records, print the summary.

    ``session``: the seconds this session trained, when it resumed a run (else None).
    """
    history = trainer.history
    final_train = trainer.evaluate(data.x_train, data.t_train)
    final_test = trainer.evaluate(data.x_test, data.t_test)
    n = min(config["batch_size"], len(data.x_train))
    step, fwd, bwd = trainer.step_memory(data.x_train[:n], data.t_train[:n])
    trainer.model.save_weights(folder.path(WEIGHTS))
    folder.save(trainer)
    written = [WEIGHTS, "metrics.csv", CHECKPOINT, "run.json"] + _pictures(folder, trainer, data, config, final_train)
    out = folder.out
    total = history[-1].seconds if history else 0.0
    regression = data.task == "regression"
    if args.quiet:
        scores = (f"train mse {fmt_num(final_train[0])}, test mse {fmt_num(final_test[0])}" if regression else
                  f"train accuracy {fmt_pct(final_train[1])}, test accuracy {fmt_pct(final_test[1])}")
        print(f"{scores}, {trainer.epoch} epochs, {total:.1f} s, {out}")
        return 0
    from leafgrad.memory import format_bytes
    print()
    print(f"done: {trainer.epoch} epochs in {total:.1f} s" + ("" if session is None else f" ({session:.1f} s this session)"))
    if regression:
        print(f"  train mean squared error {fmt_num(final_train[0])}"
              + ("" if data.x_test is None else f", test mean squared error {fmt_num(final_test[0])}"))
    else:
        print(f"  train accuracy {fmt_pct(final_train[1])} (loss {fmt_num(final_train[0])})"
              + ("" if data.x_test is None else
                 f", test accuracy {fmt_pct(final_test[1])} (loss {fmt_num(final_test[0])})"))
    print(f"  model: {model_text}, {count_params(trainer.model):,} parameters")
    pool = ", in CuPy's memory pool on the GPU" if step.device == "gpu" else ""
    print(f"  memory of one training step (batch of {n}{pool}), measured with leafgrad.memory:")
    print(f"    forward:  peak {format_bytes(fwd.peak)}; the graph keeps {format_bytes(fwd.current)} "
          "for backward")
    print(f"    backward: peak {format_bytes(bwd.peak)} more; then only the gradients stay "
          f"({format_bytes(step.current)})")
    print(f"    whole step: peak {format_bytes(step.peak)}")
    print(f"  wrote {out}{os.sep}: {' '.join(written)}")
    if data.info is not None:
        print(f"  predict new rows with: leafgrad predict {out} --data FILE")
    if session is None:
        print(f"  continue training with: leafgrad train --resume {out} --epochs {config['epochs'] * 2}")
    return 0


def _classes(trainer: Trainer, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """The class the model picks for each row of ``x``, a batch at a time (never all the rows' scores at once)."""
    out = [np.argmax(trainer.predict(x[i:i + batch]), axis=1) for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _pictures(folder: RunFolder, trainer: Trainer, data: Data, config: Dict[str, Any],
              final_train: Tuple[float, float]) -> List[str]:
    """Draw the run's pictures; returns the names written (and says once if matplotlib is missing)."""
    info = data.info
    regression = data.task == "regression"
    title = f"{data.name}, {describe_model(config['model'], config['hidden'], data)}, {config['optimizer']}"
    drawn: List[Tuple[str, bool]] = []
    if trainer.history:
        loss_name = "mean squared error" if regression else "softmax cross-entropy"
        drawn.append(("curves.png", plot_curves(folder.path("curves.png"), trainer.history, title, loss_name)))
    if not regression and data.x_train.ndim == 2 and data.x_train.shape[1] == 2 and \
            data.num_outputs <= MAX_CLASSES_SHOWN:
        x = data.x_train if info is None else data.x_train * info.std + info.mean  # in the file's units

        def classify(points: np.ndarray) -> np.ndarray:
            return _classes(trainer, points.astype(np.float32) if info is None else info.scale(points))

        names = [f"class {c}" for c in range(data.num_outputs)] if info is None else info.labels
        axes = ("x1 (first input feature)", "x2 (second input feature)") if info is None else info.features
        drawn.append(("decision_boundary.png", plot_decision_boundary(
            folder.path("decision_boundary.png"), classify, x, data.t_train, names, axes,
            f"decision boundary after {trainer.epoch} epochs (train accuracy {fmt_pct(final_train[1])})")))
    if info is not None:
        x, t, which = (data.x_test, data.t_test, "test") if data.x_test is not None else \
            (data.x_train, data.t_train, "training")
        if regression:
            y = trainer.predict(x)
            drawn.append(("predictions.png", plot_predictions(
                folder.path("predictions.png"), t, y, info.target, f"{data.name}: the {len(t)} {which} rows")))
        else:
            predicted = _classes(trainer, x)
            correct = int(np.sum(predicted == t))
            drawn.append(("confusion_matrix.png", plot_confusion_matrix(
                folder.path("confusion_matrix.png"), t, predicted, info.labels,
                f"{data.name}: {correct} of the {len(t)} {which} rows right")))
    if any(not ok for _, ok in drawn):
        print("matplotlib is not installed, so the pictures were skipped (pip install matplotlib)", file=sys.stderr)
    return [name for name, ok in drawn if ok]
