"""The schema of ``run.json``: every field's type and range, checked before a run is resumed or used to predict.

:func:`check_record` returns one line per problem, each naming its field
(``config.lr: expected a finite number > 0, got -1``); :func:`read_run`
(:mod:`.run_folder`) turns them into a UsageError.  A text run's record
(``kind: "text"``) is checked by its own rules: the GPT's sizes (``embd``
divisible by ``heads``), the schedule, the vocabulary (a string of distinct
characters), the iteration count and the last evaluation.  The limits mirror the
options' own checks (:mod:`.options`), so a record the command wrote always
passes, and an edited or damaged one is refused before anything is built.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Callable, Dict, List

__all__ = ["check_record", "seal", "MAX_SEED", "MAX_UNITS", "DIGEST"]

#: The field of run.json that holds the SHA-256 digest of the rest of the record.
DIGEST = "record_sha256"

#: Seeds are NumPy's: 0 to 2**32 - 1.
MAX_SEED = 2 ** 32 - 1
#: The most units in one hidden layer.
MAX_UNITS = 1_000_000


def _int(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _one_of(choices: Any) -> Callable[[Any], bool]:
    """A name among ``choices`` (a list, JSON object or number is none, even where ``choices`` is a dict)."""
    return lambda v: isinstance(v, str) and v in choices


def _text(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _config_rules() -> Dict[str, tuple]:
    from leafgrad.cli.data import BUILTIN
    from leafgrad.cli.options import MODELS
    from leafgrad.optimizers import OPTIMIZERS
    from leafgrad.training import TASKS
    return {
        "model": (_one_of(MODELS), f"one of {', '.join(MODELS)}"),
        "hidden": (lambda v: isinstance(v, list) and len(v) >= 1 and all(_int(1, MAX_UNITS)(n) for n in v),
                   f"a list of layer sizes from 1 to {MAX_UNITS}"),
        "epochs": (_int(0, 10 ** 9), "a whole number of epochs >= 0"),
        "batch_size": (_int(1, 10 ** 9), "a whole number >= 1"),
        "optimizer": (_one_of(OPTIMIZERS), f"one of {', '.join(OPTIMIZERS)}"),
        "lr": (lambda v: _number(v) and v > 0, "a finite number > 0"),
        "seed": (_int(0, MAX_SEED), f"a whole number from 0 to {MAX_SEED}"),
        "dataset": (_one_of(BUILTIN), f"one of {', '.join(BUILTIN)}"),
        "data": (_text, "the path of the data file"),
        "target": (lambda v: v is None or _text(v), "a column name"),
        "task": (_one_of(TASKS), f"one of {', '.join(TASKS)}"),
        "test_fraction": (lambda v: _number(v) and 0 <= v < 1, "a fraction from 0 up to (not including) 1"),
    }


def _fraction(v: Any) -> bool:
    return _number(v) and 0 <= v < 1


def _text_config_rules() -> Dict[str, tuple]:
    """The fields of a text run's config (a character-level GPT): :func:`leafgrad.cli.options._text_config`."""
    from leafgrad.cli.options import TEXT_DATASETS
    from leafgrad.optimizers import OPTIMIZERS
    count = _int(0, 10 ** 12)
    scheduled = tuple(o for o in OPTIMIZERS if o != "adadelta")
    return {
        "model": (lambda v: v == "gpt", "gpt"),
        "layers": (_int(1, 10 ** 6), "a whole number of layers >= 1"),
        "heads": (_int(1, 10 ** 6), "a whole number of heads >= 1"),
        "embd": (_int(1, 10 ** 7), "a whole embedding width >= 1"),
        "block_size": (_int(1, 10 ** 7), "a whole context length >= 1"),
        "dropout": (_fraction, "a dropout rate from 0 up to (not including) 1"),
        "batch_size": (_int(1, 10 ** 9), "a whole number >= 1"),
        "iters": (count, "a whole number of iterations >= 0"),
        "eval_interval": (_int(1, 10 ** 12), "a whole number >= 1"),
        "eval_iters": (_int(1, 10 ** 9), "a whole number >= 1"),
        "optimizer": (_one_of(scheduled), f"one of {', '.join(scheduled)}"),
        "lr": (lambda v: _number(v) and v > 0, "a finite number > 0"),
        "min_lr": (lambda v: _number(v) and v >= 0, "a finite number >= 0"),
        "warmup_iters": (count, "a whole number of iterations >= 0"),
        "decay_iters": (count, "a whole number of iterations >= 0"),
        "weight_decay": (lambda v: _number(v) and v >= 0, "a finite number >= 0"),
        "beta1": (_fraction, "a number from 0 up to (not including) 1"),
        "beta2": (_fraction, "a number from 0 up to (not including) 1"),
        "clip": (lambda v: _number(v) and v > 0, "a finite number > 0"),
        "seed": (_int(0, MAX_SEED), f"a whole number from 0 to {MAX_SEED}"),
        "dataset": (_one_of(TEXT_DATASETS), f"one of {', '.join(TEXT_DATASETS)}"),
        "data": (_text, "the path of the text file"),
    }


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _digest(record: Dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != DIGEST}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def seal(record: Dict[str, Any]) -> Dict[str, Any]:
    """``record`` with its digest added (:data:`DIGEST`), so that any later change to a value is found."""
    return {**record, DIGEST: _digest(record)}


def check_record(record: Any) -> List[str]:
    """The problems of a ``run.json`` record, one line each naming the field; empty when it is valid.

    The digest is checked first: a record changed by hand or by damage (one
    flipped digit of a mean would otherwise predict wrongly in silence) is refused.
    """
    from leafgrad.cli.run_folder import run_options
    if not isinstance(record, dict):
        return ["the file does not hold a JSON object"]
    if record.get(DIGEST) != _digest(record):
        return [f"{DIGEST}: the record does not match its digest (it was changed after leafgrad train wrote it)"]
    config = record.get("config")
    if not isinstance(config, dict):
        return ["config: missing, or not a JSON object"]
    if config.get("kind") == "text" or record.get("kind") == "text":
        return _check_text_record(record, config)
    problems = []
    rules = _config_rules()
    for name in (*run_options(config), "epochs"):
        ok, expected = rules[name]
        if name not in config:
            problems.append(f"config.{name}: missing")
        elif not ok(config[name]):
            problems.append(f"config.{name}: expected {expected}, got {_show(config[name])}")
    if not problems and config["model"] == "cnn" and len(config["hidden"]) != 1:
        problems.append(f"config.hidden: a cnn takes one size, got {_show(config['hidden'])}")
    if "epochs_done" in record and not _int(0, 10 ** 9)(record["epochs_done"]):
        problems.append(f"epochs_done: expected a whole number >= 0, got {_show(record['epochs_done'])}")
    if "data_info" in record:
        problems += ["data_info." + p for p in _check_data_info(record["data_info"], config)]
    return problems


def _check_text_record(record: Dict[str, Any], config: Dict[str, Any]) -> List[str]:
    """The problems of a text run's record: its config, vocabulary, iteration count and last evaluation."""
    problems = []
    if record.get("kind") != "text" or config.get("kind") != "text":
        problems.append(f"kind: expected 'text' in the record and its config, got {_show(record.get('kind'))} "
                        f"and {_show(config.get('kind'))}")
    rules = _text_config_rules()
    source = [name for name in ("dataset", "data") if name in config]
    if len(source) != 1:
        problems.append("config: expected one of dataset and data")
    for name in rules:
        if name in ("dataset", "data") and name not in source:
            continue
        ok, expected = rules[name]
        if name not in config:
            problems.append(f"config.{name}: missing")
        elif not ok(config[name]):
            problems.append(f"config.{name}: expected {expected}, got {_show(config[name])}")
    if not problems and config["embd"] % config["heads"]:
        problems.append(f"config.embd: {config['embd']} is not divisible by config.heads {config['heads']}")
    vocab = record.get("vocab")
    if not (isinstance(vocab, str) and vocab):
        problems.append(f"vocab: expected the run's characters as a non-empty string, got {_show(vocab)}")
    elif len(set(vocab)) != len(vocab):
        problems.append("vocab: a character appears twice")
    for name in ("iterations_done",):
        if not _int(0, 10 ** 12)(record.get(name)):
            problems.append(f"{name}: expected a whole number >= 0, got {_show(record.get(name))}")
    if not (_number(record.get("seconds")) and record["seconds"] >= 0):
        problems.append(f"seconds: expected a finite number >= 0, got {_show(record.get('seconds'))}")
    if "last_eval" in record:
        last = record["last_eval"]
        if not isinstance(last, dict):
            problems.append("last_eval: not a JSON object")
        else:
            if not _int(0, 10 ** 12)(last.get("iteration")):
                problems.append(f"last_eval.iteration: expected a whole number >= 0, got "
                                f"{_show(last.get('iteration'))}")
            for name in ("train_loss", "val_loss", "lr", "seconds"):
                if name not in last or not (last[name] is None or _number(last[name])):
                    problems.append(f"last_eval.{name}: expected a finite number or null, got "
                                    f"{_show(last.get(name))}")
    if "data" in source and not (isinstance(record.get("data_sha256"), str)
                                 and re.fullmatch(r"[0-9a-f]{64}", record["data_sha256"])):
        problems.append(f"data_sha256: expected 64 hexadecimal digits, got {_show(record.get('data_sha256'))}")
    return problems


def _check_data_info(d: Any, config: Dict[str, Any]) -> List[str]:
    """The problems of ``data_info``: how the run read its own file (columns, labels, scaling)."""
    if not isinstance(d, dict):
        return ["not a JSON object"]
    problems = []
    for name in ("features", "target", "task", "labels", "outputs", "mean", "std", "image_shape", "sha256"):
        if name not in d:
            problems.append(f"{name}: missing")
    if problems:
        return problems
    features = d["features"]
    if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
        return [f"features: expected a list of column names, got {_show(features)}"]
    if len(set(features)) != len(features):
        problems.append("features: a column is named twice")
    n = len(features)
    if not isinstance(d["target"], str):
        problems.append(f"target: expected a column name, got {_show(d['target'])}")
    if d["task"] != config.get("task", d["task"]) or d["task"] not in ("classification", "regression"):
        problems.append(f"task: expected {config.get('task', 'classification or regression')}, "
                        f"got {_show(d['task'])}")
    outputs = d["outputs"]
    if not _int(1, 10 ** 7)(outputs):
        problems.append(f"outputs: expected a whole number >= 1, got {_show(outputs)}")
    labels = d["labels"]
    if d["task"] == "classification":
        if not (isinstance(labels, list) and all(isinstance(v, str) for v in labels)):
            problems.append(f"labels: expected a list of class names, got {_show(labels)}")
        elif len(labels) != outputs or len(labels) < 2:
            problems.append(f"labels: {len(labels)} class names for {_show(outputs)} outputs "
                            "(expected one name per output, at least two)")
        elif len(set(labels)) != len(labels):
            problems.append("labels: a class name appears twice")
    elif labels is not None:
        problems.append(f"labels: a regression has no class names, got {_show(labels)}")
    for name, ok, expected in (("mean", _number, "finite numbers"),
                               ("std", lambda v: _number(v) and v > 0, "finite numbers > 0")):
        values = d[name]
        if not isinstance(values, list) or len(values) != n:
            problems.append(f"{name}: expected {n} {expected} (one per feature), got {_show(values)}")
        else:
            bad = next((i for i, v in enumerate(values) if not ok(v)), None)
            if bad is not None:
                problems.append(f"{name}: expected {expected}; the value for column {features[bad]!r} is "
                                f"{_show(values[bad])}")
    shape = d["image_shape"]
    if shape is not None and not (isinstance(shape, list) and len(shape) == 3
                                  and all(_int(1, 10 ** 6)(s) for s in shape) and math.prod(shape) == n):
        problems.append(f"image_shape: expected null or [C, H, W] with C*H*W = {n} features, got {_show(shape)}")
    if not (isinstance(d["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", d["sha256"])):
        problems.append(f"sha256: expected 64 hexadecimal digits, got {_show(d['sha256'])}")
    constant = d.get("constant")
    if constant is not None and not (isinstance(constant, list) and all(_int(0, n - 1)(i) for i in constant)
                                     and len(set(constant)) == len(constant)):
        problems.append(f"constant: expected a list of distinct feature positions, got {_show(constant)}")
    elif constant and isinstance(d["std"], list) and len(d["std"]) == n:
        odd = [features[i] for i in constant if d["std"][i] != 1.0]  # (a constant column is scaled by 1)
        if odd:
            problems.append(f"constant: column {odd[0]!r} is listed as constant, but its std is not 1")
    return problems
