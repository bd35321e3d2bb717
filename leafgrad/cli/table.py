"""Your own data (``--data PATH``): a CSV file with a header row, or an ``.npz`` holding arrays ``x`` and ``t``.

* **CSV**: comma-separated, UTF-8, a header row naming the columns.  ``--target
  NAME`` is the label column: class names (``barolo``) or whole numbers, or any
  numbers with ``--task regression``.  Every other column is a numeric feature.
* **.npz**: ``x`` with one row per example (``(N, D)``, or images ``(N, H, W)``
  / ``(N, C, H, W)``) and ``t``: class indices or names, or numbers for
  regression (``(N,)`` or ``(N, k)``).  Read without pickle.

A share of the rows (``--test-fraction``) is held out for testing, drawn with
``--seed``; in classification each class is split on its own, so that both
parts hold every class (at least one row each).  The features are standardized
with the training rows' mean and standard deviation.  :class:`DataInfo` keeps
those statistics with the column and label names; the run stores it in
``run.json``, so that ``leafgrad predict`` reads new rows the same way.

A problem with a file is a :class:`UsageError` of one sentence that names the
line and the column.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import sys
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from leafgrad.cli.data import Data, shape_for
from leafgrad.cli.errors import UsageError

__all__ = ["DataInfo", "load_file", "read_for_prediction", "file_sha256", "label_strings"]

TASKS = ("classification", "regression")


class DataInfo:
    """What a run remembers about its data file, to read new rows exactly as it read the training rows.

    ``features``: the feature columns' names, in the model's order (``x0, x1,
    ...`` for an ``.npz``); ``target``: the label column (``t`` for an
    ``.npz``); ``labels``: the class names (class ``i`` is ``labels[i]``), None
    in regression; ``outputs``: the model's outputs; ``mean`` and ``std``: the
    training rows' statistics per feature; ``image_shape``: ``(C, H, W)`` for
    images, else None; ``sha256``: the file's digest (a resumed run checks it).
    """

    def __init__(self, features: List[str], target: str, task: str, labels: Optional[List[str]],
                 outputs: int, mean: np.ndarray, std: np.ndarray, image_shape: Optional[tuple],
                 sha256: str, constant: Sequence[int] = ()) -> None:
        self.features, self.target, self.task, self.labels = features, target, task, labels
        self.outputs = outputs
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.image_shape = None if image_shape is None else tuple(image_shape)
        self.sha256 = sha256
        self.constant = [int(i) for i in constant]  #: features that held one value in every training row

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Rows ``(N, D)`` standardized with the training rows' statistics, as float32.

        A feature constant in the training rows taught the model nothing: it reads as 0 (its training value).
        """
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        if self.constant:
            z[:, self.constant] = 0.0
        return z.astype(np.float32)

    def differing_constants(self, x: np.ndarray) -> List[Tuple[str, float, int]]:
        """``(feature, training value, rows that differ)`` for each constant feature that new rows ``x`` change."""
        out = []
        for j in self.constant:
            n = int(np.sum(np.asarray(x)[:, j] != self.mean[j]))
            if n:
                out.append((self.features[j], float(self.mean[j]), n))
        return out

    def to_json(self) -> Dict[str, Any]:
        """A JSON-serializable dict (floats written exactly)."""
        return {"features": self.features, "target": self.target, "task": self.task, "labels": self.labels,
                "outputs": self.outputs, "mean": self.mean.tolist(), "std": self.std.tolist(),
                "image_shape": None if self.image_shape is None else list(self.image_shape),
                "sha256": self.sha256, "constant": self.constant}

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "DataInfo":
        """The inverse of :meth:`to_json`; ``KeyError``/``TypeError``/``ValueError`` on a malformed dict."""
        info = cls(list(d["features"]), str(d["target"]), str(d["task"]),
                   None if d["labels"] is None else [str(v) for v in d["labels"]], int(d["outputs"]),
                   d["mean"], d["std"], d["image_shape"], str(d["sha256"]), d.get("constant") or ())
        if info.mean.shape != (len(info.features),) or info.std.shape != info.mean.shape:
            raise ValueError("the scaling statistics do not match the features")
        return info


# =============================================================================
# Reading files
# =============================================================================
def file_sha256(path: str) -> str:
    """The SHA-256 digest of the file at ``path``, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: str, option: str) -> str:
    """``path``'s kind (``"csv"`` or ``"npz"``), after checking that it is a file."""
    if not os.path.isfile(path):
        raise UsageError(f"{option} {path}: no such file" if not os.path.exists(path)
                         else f"{option} {path} is not a file")
    kind = os.path.splitext(path)[1].lower().lstrip(".")
    if kind not in ("csv", "npz"):
        raise UsageError(f"{option} {path}: expected a .csv file (with a header row) or an .npz file "
                         "(arrays x and t)")
    return kind


def _list(names: Sequence[str], most: int = 20) -> str:
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


class _Csv:
    """A CSV file's header and rows (lists of strings), with each row's line number."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: List[List[str]] = []
        self.lines: List[int] = []
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.reader(f)
                header = next((row for row in reader if row), None)
                if header is None:
                    raise UsageError(f"{path} is empty")
                self.columns = [name.strip() for name in header]
                for row in reader:
                    if row:  # blank lines are skipped
                        self.rows.append(row)
                        self.lines.append(reader.line_num)
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not a CSV text file (it is not UTF-8)") from None
        except csv.Error as err:
            raise UsageError(f"{path}, line {reader.line_num}: {err}") from None
        for i, name in enumerate(self.columns):
            if not name:
                raise UsageError(f"{path}: column {i + 1} of the header row has no name")
            if name in self.columns[:i]:
                raise UsageError(f"{path}: the header row names column {name!r} twice")
        if not self.rows:
            raise UsageError(f"{path} has a header row but no data rows")
        width = len(self.columns)
        for row, line in zip(self.rows, self.lines):
            if len(row) != width:
                raise UsageError(f"{path}, line {line}: {len(row)} fields, but the header row has {width} columns")

    def numbers(self, columns: Sequence[str]) -> np.ndarray:
        """The given columns as a float64 matrix; a cell that is not a finite number is an error naming it."""
        where = [self.columns.index(c) for c in columns]
        out = np.empty((len(self.rows), len(where)), dtype=np.float64)
        for i, row in enumerate(self.rows):
            for j, k in enumerate(where):
                text = row[k].strip()
                try:
                    out[i, j] = value = float(text)
                except ValueError:
                    value = None
                if value is None or not np.isfinite(value):
                    what = "is empty (fill in or remove the missing values)" if not text else \
                        f"holds {text!r}, which is not {'a number' if value is None else 'a finite number'}"
                    raise UsageError(f"{self.path}, line {self.lines[i]} (row {i + 1}), column {self.columns[k]!r} "
                                     f"{what}")
        return out

    def where(self, i: int) -> str:
        """Where row ``i`` (from 0) is: ``'line 7'``."""
        return f"line {self.lines[i]}"

    def strings(self, column: str) -> List[str]:
        """The cells of one column."""
        k = self.columns.index(column)
        return [row[k] for row in self.rows]


def _read_npz(path: str) -> Dict[str, np.ndarray]:
    from leafgrad.serialization import SerializationError, load_npz
    try:
        return load_npz(path, what="--data")
    except SerializationError as err:
        raise UsageError(str(err)) from None


def _npz_row(i: int) -> str:
    """Where row ``i`` (from 0) of an .npz is: ``'row 7'`` (counted from 1)."""
    return f"row {i + 1}"


def _npz_x(path: str, arrays: Dict[str, np.ndarray]) -> np.ndarray:
    x = arrays["x"]
    if x.dtype.kind not in "biuf":
        raise UsageError(f"{path}: x must hold numbers, not {x.dtype}")
    if not 2 <= x.ndim <= 4 or len(x) == 0:
        raise UsageError(f"{path}: x must hold one row per example, (N, D) or images (N, H, W) or "
                         f"(N, C, H, W), got shape {x.shape}")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise UsageError(f"{path}: x holds NaN or infinity (row {int(np.argmax(bad)) + 1})")
    return x


# =============================================================================
# Labels
# =============================================================================
def _canonical(text: str) -> str:
    """A label as text: whole numbers written without a decimal point (``1.0`` -> ``1``), else stripped."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if np.isfinite(value) and value == int(value) else text


def label_strings(values: Any) -> List[str]:
    """The labels of a CSV column or an ``.npz``'s ``t`` as text, written the way the run's label names are."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "biu":
            return [str(int(v)) for v in values]
        values = [str(v) for v in values]
    return [_canonical(v) for v in values]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_whole(text: str) -> bool:
    """A whole number as ``int`` reads it (decimal digits: ``'²'`` is a digit but not a number)."""
    return re.fullmatch(r"-?\d+", text) is not None


def _encode_labels(path: str, column: str, labels: List[str], where: Callable[[int], str],
                   test_fraction: float) -> Tuple[List[str], np.ndarray]:
    """Class names (sorted: numerically when all are whole numbers) and each row's class index."""
    if "" in labels:
        raise UsageError(f"{path}, {where(labels.index(''))}: the label in column {column!r} is empty")
    if all(_is_number(v) for v in labels):
        odd = next((i for i, v in enumerate(labels) if not _is_whole(v)), None)
        if odd is not None:
            raise UsageError(f"{path}: {column!r} holds numbers that are not whole ({where(odd)}: "
                             f"{labels[odd]}); pass --task regression to predict numbers, or use class names")
    names = sorted(set(labels))
    if all(_is_whole(v) for v in names):
        names.sort(key=int)
    if len(names) < 2:
        raise UsageError(f"{path}: {column!r} holds a single class ({names[0]!r}); a classifier needs two or more")
    index = {name: i for i, name in enumerate(names)}
    t = np.array([index[v] for v in labels], dtype=np.int64)
    if test_fraction > 0:
        counts = np.bincount(t, minlength=len(names))
        if (counts == 1).any():
            c = int(np.argmax(counts == 1))
            row = int(np.flatnonzero(t == c)[0])
            raise UsageError(f"{path}: class {names[c]!r} of {column!r} has a single row ({where(row)}); each "
                             "class needs two rows or more, so that both the training and the test rows have it "
                             "(or pass --test-fraction 0 to test on nothing)")
    return names, t


# =============================================================================
# Training data
# =============================================================================
def _split(n: int, classes: Optional[np.ndarray], fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows), each in file order; each class (or all rows, in regression) split on its own."""
    if fraction == 0:
        return np.arange(n), np.arange(0)
    rng = np.random.RandomState(seed)
    groups = [np.arange(n)] if classes is None else [np.flatnonzero(classes == c) for c in range(classes.max() + 1)]
    test = []
    for rows in groups:
        n_test = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1)
        test.append(rng.permutation(rows)[:n_test])
    test_rows = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(n), test_rows), test_rows


class _Rows(NamedTuple):
    """A file's rows before splitting: features ``(N, D)`` float64, their names, the target column and its values."""

    x: np.ndarray
    features: List[str]
    target: str
    t: Any                          # label texts (classification) or an (N, k) float64 array (regression)
    where: Callable[[int], str]     # where row i is, for messages: "line 7" (CSV) or "row 6" (.npz)
    image_shape: Optional[tuple]


def _csv_rows(path: str, target: Optional[str], task: str) -> _Rows:
    table = _Csv(path)
    if target is None:
        raise UsageError(f"--data {path} needs --target NAME, the column to learn; its columns are: "
                         f"{_list(table.columns)}")
    if target not in table.columns:
        raise UsageError(f"--target {target} is not a column of {path}; its columns are: {_list(table.columns)}")
    features = [c for c in table.columns if c != target]
    if not features:
        raise UsageError(f"{path} has no feature columns besides the target {target!r}")
    x = table.numbers(features)
    t = table.numbers([target]) if task == "regression" else label_strings(table.strings(target))
    return _Rows(x, features, target, t, table.where, None)


def _npz_rows(path: str, target: Optional[str], task: str) -> _Rows:
    if target is not None:
        raise UsageError(f"--target names a column of a CSV file; an .npz holds arrays x and t ({path})")
    arrays = _read_npz(path)
    if "x" not in arrays or "t" not in arrays:
        raise UsageError(f"{path} must hold arrays named x and t; it holds: {_list(sorted(arrays)) or 'nothing'}")
    x, t = _npz_x(path, arrays), arrays["t"]
    if len(t) != len(x):
        raise UsageError(f"{path}: x has {len(x)} rows but t has {len(t)}")
    image_shape = None if x.ndim == 2 else (x.shape[1:] if x.ndim == 4 else (1,) + x.shape[1:])
    x = x.reshape(len(x), -1)
    if task == "regression":
        if t.dtype.kind not in "biuf" or not 1 <= t.ndim <= 2:
            raise UsageError(f"{path}: --task regression needs numbers in t, (N,) or (N, k), "
                             f"got {t.dtype} of shape {t.shape}")
        t = t.reshape(len(t), -1).astype(np.float64)
        if not np.isfinite(t).all():
            raise UsageError(f"{path}: t holds NaN or infinity")
    elif t.ndim != 1 or t.dtype.kind not in "biufU":
        raise UsageError(f"{path}: t must hold one class label per row, got {t.dtype} of shape {t.shape}")
    else:
        t = label_strings(t)
    return _Rows(x, [f"x{i}" for i in range(x.shape[1])], "t", t, _npz_row, image_shape)


def feature_statistics(x: np.ndarray, features: Sequence[str], path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and standard deviation, whatever its units (1e300 or 1e-300 as well as 1).

    Each column is divided by its largest magnitude first, so no sum overflows
    or underflows; a column whose statistics are still not finite is a
    UsageError naming it.
    """
    x = np.asarray(x, dtype=np.float64)
    size = np.max(np.abs(x), axis=0) if len(x) else np.ones(x.shape[1:])
    size[~(size > 0) | ~np.isfinite(size)] = 1.0
    unit = x / size
    mean = unit.mean(axis=0) * size
    std = unit.std(axis=0) * size
    bad = ~(np.isfinite(mean) & np.isfinite(std))
    if bad.any():
        column = features[int(np.argmax(bad.reshape(-1)))] if len(features) == bad.size else "?"
        raise UsageError(f"{path}: the values of column {column!r} are too large to standardize")
    return mean, std


def load_file(path: str, target: Optional[str], task: str, test_fraction: float, seed: int,
              model: str) -> Data:
    """Read ``--data PATH`` into a :class:`Data` (split, standardized, shaped for ``model``), with its :class:`DataInfo`."""
    rows = (_csv_rows if _check_file(path, "--data") == "csv" else _npz_rows)(path, target, task)
    x, image_shape = rows.x, rows.image_shape
    if model == "cnn" and image_shape is None:
        raise UsageError(f"--model cnn needs images (an .npz whose x is (N, H, W) or (N, C, H, W)), but {path} "
                         f"has {x.shape[1]} features per row; use --model mlp")
    if task == "regression":
        labels, t, classes = None, rows.t.astype(np.float32), None
        if len(t) < 2 and test_fraction > 0:
            raise UsageError(f"{path} has a single row: nothing to split into training and test rows")
    else:
        labels, t = _encode_labels(path, rows.target, rows.t, rows.where, test_fraction)
        classes = t
    train, test = _split(len(x), classes, test_fraction, seed)
    mean, std = feature_statistics(x[train], rows.features, path)
    constant = [int(j) for j in np.flatnonzero(std == 0)]
    std[std == 0] = 1.0  # a constant feature stays 0 instead of dividing by 0
    info = DataInfo(rows.features, rows.target, task, labels, len(labels) if labels else t.shape[1], mean, std,
                    image_shape, file_sha256(path), constant)
    xs = info.scale(x)
    x_test = shape_for(model, xs[test], image_shape) if len(test) else None
    return Data(os.path.basename(path), shape_for(model, xs[train], image_shape), t[train], x_test,
                t[test] if len(test) else None, info.outputs, image_shape, task, info)


# =============================================================================
# New rows to predict
# =============================================================================
def read_for_prediction(path: str, info: DataInfo) -> Tuple[np.ndarray, Optional[Any]]:
    """The rows of ``path`` as the run's standardized features ``(N, D)``, and its targets if it has them.

    A CSV must have the run's feature columns (in any order) and may have its
    target column; any other column is an error naming it.  Targets come back
    as label texts (classification) or an ``(N, k)`` float array (regression).
    """
    kind = _check_file(path, "--data")
    if kind == "csv":
        table = _Csv(path)
        missing = [c for c in info.features if c not in table.columns]
        extra = [c for c in table.columns if c not in info.features and c != info.target]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks the run's feature columns {_list(missing)}")
            if extra:
                parts.append(f"has columns the run did not train on: {_list(extra)}")
            raise UsageError(f"{path} {' and '.join(parts)} (the run's columns are {_list(info.features)}, "
                             f"with the target {info.target!r})")
        x = table.numbers(info.features)
        truth: Any = None
        if info.target in table.columns:
            truth = table.numbers([info.target]) if info.task == "regression" else \
                label_strings(table.strings(info.target))
        return _scaled(path, info, x), truth
    arrays = _read_npz(path)
    if "x" not in arrays:
        raise UsageError(f"{path} must hold an array named x; it holds: {_list(sorted(arrays)) or 'nothing'}")
    x = _npz_x(path, arrays)
    want = (len(info.features),) if info.image_shape is None else info.image_shape
    if int(np.prod(x.shape[1:])) != int(np.prod(want)):
        raise UsageError(f"{path}: x has rows of shape {x.shape[1:]}, but the run was trained on {tuple(want)}")
    truth = None
    if "t" in arrays and len(arrays["t"]) == len(x):
        t = arrays["t"]
        truth = t.reshape(len(t), -1).astype(np.float64) if info.task == "regression" else label_strings(t)
    return _scaled(path, info, x.reshape(len(x), -1)), truth


def _scaled(path: str, info: DataInfo, x: np.ndarray) -> np.ndarray:
    """New rows standardized as the training rows were; warns about constant features that differ."""
    for name, value, n in info.differing_constants(x):
        print(f"leafgrad predict: warning: column {name!r} held {value:g} in every training row, so the run "
              f"learnt nothing from it; {n} of the {len(x)} rows hold another value, which is ignored",
              file=sys.stderr)
    z = info.scale(x)
    bad = ~np.isfinite(z)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise UsageError(f"{path}, row {row + 1}, column {info.features[col]!r}: the value is too far from the "
                         "training rows to standardize")
    return z
