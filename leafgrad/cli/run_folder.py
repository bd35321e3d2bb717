"""The folder of a run: ``metrics.csv``, ``run.json``, ``checkpoint.npz``, ``model.npz`` (pictures: :mod:`.plots`).

Every file is written atomically (a temporary file, flushed and renamed), so a
crash or Ctrl-C never leaves half a file.  :class:`RunFolder` is the callback
that rewrites the metrics, the checkpoint and the run record after every
epoch; ``leafgrad train --resume DIR`` reads them back.
"""
from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

from leafgrad._atomic import write_atomic
from leafgrad.cli.errors import UsageError
from leafgrad.cli.run_schema import check_record, seal
from leafgrad.serialization import SerializationError
from leafgrad.training import Callback, EpochMetrics, Trainer

__all__ = ["METRIC_COLUMNS", "TEXT_OPTIONS", "CHECKPOINT", "WEIGHTS", "RUN_FILE", "METRICS", "RunFolder", "default_out",
           "prepare_out", "write_metrics", "read_metrics", "write_json", "read_run", "run_options"]

#: The columns of ``metrics.csv``: one row per epoch.
METRIC_COLUMNS = EpochMetrics._fields
CHECKPOINT = "checkpoint.npz"
WEIGHTS = "model.npz"
RUN_FILE = "run.json"
METRICS = "metrics.csv"
#: The largest run.json read (a record of a run is a few kilobytes, plus its label names).
RUN_FILE_LIMIT = 64 << 20

#: The options that define a run (kept in run.json; fixed once a run has started), on a built-in data set ...
BUILTIN_OPTIONS = ("dataset", "model", "hidden", "batch_size", "optimizer", "lr", "seed")
#: ... and on your own file.
FILE_OPTIONS = ("data", "target", "task", "test_fraction", "model", "hidden", "batch_size", "optimizer", "lr",
                "seed")
#: ... and on a text (a character-level GPT: ``config["kind"] == "text"``, with ``dataset`` or ``data``).
TEXT_OPTIONS = ("dataset", "data", "model", "layers", "heads", "embd", "block_size", "dropout", "batch_size",
                "eval_interval", "eval_iters", "optimizer", "lr", "seed")


def run_options(config: Dict[str, Any]) -> Sequence[str]:
    """The options that define the run of ``config``."""
    if config.get("kind") == "text":
        return TEXT_OPTIONS
    return FILE_OPTIONS if config.get("data") is not None else BUILTIN_OPTIONS


def default_out(name: str, model: str) -> str:
    """A new folder name under ``runs/``: ``runs/spiral-mlp-20250101-120000``."""
    base = os.path.join("runs", f"{name}-{model}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, k = base, 1
    while os.path.exists(path):
        k += 1
        path = f"{base}-{k}"
    return path


def prepare_out(path: str) -> str:
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


def write_metrics(path: str, history: Sequence[Any], columns: Sequence[str] = METRIC_COLUMNS) -> None:
    """Write ``metrics.csv``: a header (``columns``), then one row per epoch or evaluation (NaN as an empty field)."""
    def write(f: Any) -> None:
        w = csv.writer(f)
        w.writerow(columns)
        for m in history:
            w.writerow([int(m[0])] + ["" if math.isnan(v) else repr(float(v)) for v in m[1:]])
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


def read_run(folder: str, option: str, need: Sequence[str], purpose: str) -> Dict[str, Any]:
    """The record ``run.json`` of the run in ``folder``, which must also hold the files ``need``.

    A missing file is a UsageError naming ``option``: ``"--resume DIR: no run
    to resume there (...)"`` for the ``purpose`` ``"to resume"``.
    """
    missing = [name for name in (RUN_FILE, *need) if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise UsageError(f"{option} {folder}: no run {purpose} there (expected {' and '.join((RUN_FILE, *need))} "
                         "written by leafgrad train)")
    path = os.path.join(folder, RUN_FILE)
    try:
        if os.path.getsize(path) > RUN_FILE_LIMIT:
            raise ValueError(f"it is larger than {RUN_FILE_LIMIT} bytes")
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError, RecursionError) as err:
        raise UsageError(f"{option} {folder}: cannot read {RUN_FILE} ({getattr(err, 'strerror', None) or err})") \
            from None
    problems = check_record(record)
    if problems:
        raise UsageError(f"{option} {folder}: {RUN_FILE} is damaged; "
                         + (problems[0] if len(problems) == 1 else "\n".join([f"{len(problems)} problems:"] + problems)))
    record["config"] = dict(record["config"])
    return record


def load_checkpoint(trainer: Trainer, path: str) -> None:
    """``trainer.load(path)`` for ``--resume``: a damaged or unreadable checkpoint is one sentence (exit 2)."""
    try:
        trainer.load(path)
    except SerializationError as err:
        raise UsageError(f"cannot resume from {path}: {err}") from None
    except OSError as err:
        raise UsageError(f"cannot resume from {path}: {err.strerror or err}") from None


def _record(config: Dict[str, Any], history: Sequence[EpochMetrics], data_info: Any) -> Dict[str, Any]:
    """What run.json holds: the options, the progress, and how your own file was read."""
    from leafgrad import __version__
    record = {"leafgrad_version": __version__,
              "config": {k: config[k] for k in (*run_options(config), "epochs")},
              "epochs_done": len(history), "seconds": history[-1].seconds if history else 0.0}
    if history:
        record["last_epoch"] = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                                for k, v in history[-1]._asdict().items()}
    if data_info is not None:
        record["data_info"] = data_info.to_json()
    return seal(record)


class RunFolder(Callback):
    """Rewrites ``metrics.csv``, ``checkpoint.npz`` and ``run.json`` in ``out`` after every epoch (rank 0 only)."""

    def __init__(self, out: str, config: Dict[str, Any], data_info: Optional[Any] = None) -> None:
        self.out = out
        self.config = config
        self.data_info = data_info

    def path(self, name: str) -> str:
        """The path of the run's file ``name``."""
        return os.path.join(self.out, name)

    def save(self, trainer: Trainer) -> None:
        """Write the metrics, the checkpoint and the run record as they are now."""
        if not trainer.is_main:
            return
        write_metrics(self.path(METRICS), trainer.history)
        trainer.save(self.path(CHECKPOINT))
        write_json(self.path(RUN_FILE), _record(self.config, trainer.history, self.data_info))

    def on_epoch_end(self, trainer: Trainer, metrics: EpochMetrics) -> None:
        """Save after every epoch, so that the run can be resumed from there."""
        self.save(trainer)
