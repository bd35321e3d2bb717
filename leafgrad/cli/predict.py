"""``leafgrad predict RUN_DIR --data PATH``: use a run trained with ``--data`` on new rows.

Loads the run (its weights ``model.npz`` and, from ``run.json``, the column
names, the label names and the training rows' scaling), reads every row of a
CSV or ``.npz`` with the same columns, and writes a CSV, rows in input order:
``prediction`` (the class name, or the number in regression) and, in
classification, one ``probability_NAME`` column per class.  When the file also
has the target column, it prints the accuracy (or the mean squared error).
"""
from __future__ import annotations

import argparse
import csv
import errno
import os
import sys
from typing import Any, List

import numpy as np

from leafgrad._atomic import write_output
from leafgrad.cli.data import shape_for
from leafgrad.cli.errors import DataError, UsageError
from leafgrad.cli.options import resolve_device
from leafgrad.cli.progress import fmt_pct
from leafgrad.cli.run_folder import WEIGHTS, read_run
from leafgrad.cli.table import DataInfo, read_for_prediction
from leafgrad.cli.train import build_model
from leafgrad.serialization import SerializationError
from leafgrad.training import predict

__all__ = ["cmd_predict", "load_run_model"]


def _default_out(data: str) -> str:
    return os.path.splitext(os.path.basename(data))[0] + "-predictions.csv"


def _load_info(run: str, record: dict) -> DataInfo:
    if record.get("kind") == "text":
        raise UsageError(f"{run} is a text run (a character-level GPT): continue a text with leafgrad generate {run}")
    if "data_info" not in record:
        trained_on = record["config"].get("dataset", "a built-in data set")
        raise UsageError(f"{run} was trained on the built-in data set {trained_on}; leafgrad predict reads runs "
                         "trained on your own file (leafgrad train --data PATH)")
    try:
        return DataInfo.from_json(record["data_info"])
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"{run}: cannot read the data description in run.json ({err})") from None


def _build(model: Any, x: np.ndarray) -> None:
    """Create the model's weights from one row (NumPy's global random state is left as it was).

    A built model knows every weight's shape, so loading checks them all.
    """
    state = np.random.get_state()
    try:
        predict(model, x)
    finally:
        np.random.set_state(state)


def load_run_model(run: str, config: dict, info: DataInfo) -> Any:
    """The network of the ``--data`` run in ``run``: built, then its ``model.npz`` loaded and checked.

    Built first, so that every weight's shape, dtype and values are checked
    against the architecture; a damaged file is a UsageError (exit status 2)
    listing its problems.  Used by ``predict`` and ``export``.
    """
    model = build_model(config["model"], config["hidden"], info.outputs)
    _build(model, shape_for(config["model"], np.zeros((1, len(info.features)), dtype=np.float32), info.image_shape))
    try:
        model.load_weights(os.path.join(run, WEIGHTS))
    except SerializationError as err:
        raise UsageError(f"cannot load the weights of {run}: {err}") from None
    except OSError as err:
        raise UsageError(f"cannot read the weights of {run}: {err.strerror or err}") from None
    return model


def cmd_predict(args: argparse.Namespace) -> int:
    """``leafgrad predict``: predict every row of ``--data`` with the run in ``RUN_DIR``; write a CSV."""
    device = resolve_device(args)
    record = read_run(args.run, "RUN_DIR", need=(WEIGHTS,), purpose="to predict with")
    info = _load_info(args.run, record)
    config = record["config"]
    out = args.out if args.out is not None else _default_out(args.data)
    if out != "-":
        if os.path.realpath(out) == os.path.realpath(args.data):
            raise UsageError(f"--out {out} is the input file; choose another name")
        folder = os.path.dirname(os.path.realpath(out))
        if not os.path.isdir(folder):
            raise UsageError(f"cannot write --out {out}: folder {folder} does not exist")

    x, truth = read_for_prediction(args.data, info)
    model = load_run_model(args.run, config, info)
    if device == "gpu":
        model.to_gpu()  # predict() sends each batch where the weights are and brings the outputs back
    y = predict(model, shape_for(config["model"], x, info.image_shape))

    if info.task == "regression":
        header = ["prediction"] if info.outputs == 1 else [f"prediction_{j}" for j in range(info.outputs)]
        rows = [[str(v) for v in row] for row in y]
    else:
        import leafgrad.functions as F
        from leafgrad import no_grad
        with no_grad():
            probabilities = F.softmax(y).data
        names = info.labels
        header = ["prediction"] + [f"probability_{name}" for name in names]
        rows = [[names[k]] + [str(p) for p in row] for k, row in zip(np.argmax(y, axis=1), probabilities)]

    def write(f: Any) -> None:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    try:
        write_output(out, write, binary=False)
    except OSError as err:  # a full disk is a failed run (exit 1); a folder one may not write to, bad input (2)
        kind = DataError if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG) else UsageError
        raise kind(f"cannot write --out {out}: {err.strerror or err}") from None
    if not args.quiet:
        report = sys.stderr if out == "-" else sys.stdout  # standard output holds the predictions
        where = "standard output" if out == "-" else out
        print(f"wrote {where}: {len(rows)} rows ({', '.join(header[:4])}{', ...' if len(header) > 4 else ''})",
              file=report)
        if truth is not None:
            print(_score(info, y, truth), file=report)
    return 0


def _score(info: DataInfo, y: np.ndarray, truth: Any) -> str:
    """The accuracy against the file's own labels, or the mean squared error in regression."""
    if info.task == "regression":
        mse = float(np.mean(np.sum((y.astype(np.float64) - truth) ** 2, axis=1)))
        return f"mean squared error {mse:.4g} against its column {info.target!r}"
    predicted: List[str] = [info.labels[k] for k in np.argmax(y, axis=1)]
    correct = sum(p == t for p, t in zip(predicted, truth))
    unseen = sorted(set(truth) - set(info.labels))
    note = "" if not unseen else f"; labels the run never saw count as wrong: {', '.join(unseen[:5])}"
    return (f"accuracy {fmt_pct(correct / len(truth))} ({correct} of {len(truth)} rows right, against its "
            f"column {info.target!r}){note}")
