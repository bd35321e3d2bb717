"""The options of ``leafgrad train`` and ``leafgrad predict``: their defaults, and every check, each in one place.

Checks of a single value (a number, a list of sizes) are argparse types; checks
that need the other options (a name against its table, ``--model cnn`` on 2-D
points, what may change when resuming) are in :func:`resolve_train_options`.
Checks of a data file's contents are in :mod:`leafgrad.cli.table`.
"""
from __future__ import annotations

import argparse
import math
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from leafgrad import cuda
from leafgrad.cli.data import BUILTIN
from leafgrad.cli.errors import UsageError
from leafgrad.cli.run_folder import CHECKPOINT, TEXT_OPTIONS, read_run, run_options
from leafgrad.cli.run_schema import MAX_SEED, MAX_UNITS
from leafgrad.optimizers import OPTIMIZERS
from leafgrad.training import TASKS

__all__ = ["MODELS", "DEFAULTS", "add_train_arguments", "add_predict_arguments", "add_graph_arguments",
           "add_generate_arguments",
           "resolve_train_options", "resolve_device", "TEXT_DATASETS", "TEXT_DEFAULTS", "is_text_file",
           "int_at_least", "lower"]

MODELS = ("mlp", "cnn")
#: The most weights between hidden layers (``--hidden 1000000,1000000`` would need 4 TB): 4 GiB of float32.
MAX_HIDDEN_WEIGHTS = 2 ** 30
#: Default learning rate of each optimizer on small 2-D or tabular data (spiral, your own file), and on
#: images (digits, mnist).  AdaDelta takes none: its 1.0 is only recorded.
SMALL_DATA_LR = {"sgd": 0.1, "momentum": 0.05, "adagrad": 0.1, "adadelta": 1.0, "adam": 0.01, "adamw": 0.01}
IMAGE_LR = {"sgd": 0.1, "momentum": 0.01, "adagrad": 0.01, "adadelta": 1.0, "adam": 0.001, "adamw": 0.001}
#: What ``leafgrad train`` uses when an option is not given: per built-in data set, and for ``--data`` ("file").
DEFAULTS: Dict[str, Dict[str, Any]] = {
    "spiral": dict(model="mlp", hidden=[100, 100], epochs=100, batch_size=30, optimizer="adam", lr=SMALL_DATA_LR),
    "digits": dict(model="mlp", hidden=[100], epochs=20, batch_size=32, optimizer="adam", lr=IMAGE_LR),
    "mnist": dict(model="mlp", hidden=[1000], epochs=5, batch_size=100, optimizer="adam", lr=IMAGE_LR),
    "file": dict(model="mlp", hidden=[100], epochs=30, batch_size=32, optimizer="adam", lr=SMALL_DATA_LR),
}

#: Built-in texts that train a character-level GPT (``leafgrad train --dataset shakespeare``).
TEXT_DATASETS = ("shakespeare",)
#: What a text run uses when an option is not given: nanoGPT's recipe for a computer without a GPU
#: (its README: 4 layers, 4 heads, 128 wide, context 64, batch 12, 2000 iterations, AdamW 1e-3 with
#: betas 0.9/0.99 and weight decay 0.1 on matrices and embeddings, 100 warm-up iterations then cosine
#: to 1e-4, gradient clipping at 1.0, no dropout, no biases, evaluation every 250 iterations on 20 batches).
TEXT_DEFAULTS: Dict[str, Any] = dict(
    model="gpt", layers=4, heads=4, embd=128, block_size=64, dropout=0.0, batch_size=12, iters=2000,
    eval_interval=250, eval_iters=20, optimizer="adamw", lr=1e-3, min_lr=1e-4, warmup_iters=100,
    weight_decay=0.1, beta1=0.9, beta2=0.99, clip=1.0)
#: The options that only text runs take (their argparse names).
TEXT_ONLY = ("iters", "eval_interval", "eval_iters", "layers", "heads", "embd", "block_size", "dropout")


def is_text_file(path: str) -> bool:
    """Whether ``--data path`` names a text to train a character model on (``.txt``)."""
    return os.path.splitext(path)[1].lower() == ".txt"


# =============================================================================
# Single values (argparse types: a bad one is an error naming the option)
# =============================================================================
def int_at_least(lowest: int, what: str, highest: Optional[int] = None) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``lowest`` (and <= ``highest``), described as ``what`` in the error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < lowest or (highest is not None and value > highest):
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


def _below_one(what: str) -> Callable[[str], float]:
    """An option type for a number in [0, 1): the error calls it ``what``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 <= value < 1:
            raise argparse.ArgumentTypeError(f"expected {what} from 0 up to (not including) 1, got {text!r}")
        return value
    return parse


_fraction = _below_one("a fraction")
_dropout = _below_one("a dropout rate")


def _hidden_sizes(text: str) -> List[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip() != ""]
    except ValueError:
        sizes = []
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected layer sizes such as 100 or 100,100, got {text!r}")
    if any(s > MAX_UNITS for s in sizes):
        raise argparse.ArgumentTypeError(f"expected layer sizes up to {MAX_UNITS:,}, got {text!r}")
    weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    if weights > MAX_HIDDEN_WEIGHTS:
        raise argparse.ArgumentTypeError(f"{text!r} needs {weights:,} weights between the hidden layers "
                                         f"({weights * 4 / 2 ** 30:,.0f} GiB), more than the {MAX_HIDDEN_WEIGHTS:,} "
                                         "allowed")
    return sizes


def lower(text: str) -> str:
    """An argparse type: a name, trimmed and in lower case."""
    return text.strip().lower()


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``leafgrad train``."""
    d = DEFAULTS
    p.add_argument("--dataset", type=lower, metavar="NAME",
                   help=f"{', '.join(BUILTIN + TEXT_DATASETS)} (default spiral; digits needs scikit-learn, "
                        "mnist downloads once; shakespeare trains a character-level GPT)")
    p.add_argument("--data", metavar="PATH",
                   help="your own data instead: a CSV file with a header row (with --target), an .npz "
                        "holding arrays x and t, or a UTF-8 .txt file to train a character-level GPT on")
    p.add_argument("--target", metavar="NAME",
                   help="with a CSV --data: the column to learn (class names or whole numbers; numbers with "
                        "--task regression); every other column is a numeric feature")
    p.add_argument("--task", type=lower, metavar="KIND",
                   help="with --data: classification (softmax cross-entropy, accuracy) or regression "
                        "(mean squared error) (default classification)")
    p.add_argument("--test-fraction", type=_fraction, metavar="F",
                   help="with --data: the share of rows held out for testing, drawn with --seed, "
                        "class by class (default 0.2)")
    p.add_argument("--model", type=lower, metavar="KIND", help="mlp, or cnn for image data (default mlp)")
    p.add_argument("--hidden", type=_hidden_sizes, metavar="SIZES",
                   help="hidden layer sizes, e.g. 100 or 100,100 (default "
                        f"{','.join(map(str, d['spiral']['hidden']))} for spiral, "
                        f"{d['digits']['hidden'][0]} for digits, {d['mnist']['hidden'][0]} for mnist, "
                        f"{d['file']['hidden'][0]} for --data)")
    p.add_argument("--epochs", type=int_at_least(0, "a whole number of epochs >= 0"), metavar="N",
                   help=f"total epochs (default {d['spiral']['epochs']} for spiral, "
                        f"{d['digits']['epochs']} for digits, {d['mnist']['epochs']} for mnist, "
                        f"{d['file']['epochs']} for --data); with --resume, the new total")
    p.add_argument("--batch-size", type=int_at_least(1, "a batch size >= 1"), metavar="N",
                   help=f"examples per step (default {d['spiral']['batch_size']} for spiral, "
                        f"{d['digits']['batch_size']} for digits, {d['mnist']['batch_size']} for mnist, "
                        f"{d['file']['batch_size']} for --data)")
    p.add_argument("--lr", type=_positive_float, metavar="RATE",
                   help="learning rate (default for spiral and --data / digits and mnist: "
                        + ", ".join(f"{k} {SMALL_DATA_LR[k]:g}/{IMAGE_LR[k]:g}" for k in OPTIMIZERS
                                    if k != "adadelta")
                        + "; adadelta takes none)")
    p.add_argument("--optimizer", type=lower, metavar="NAME", help=f"{', '.join(OPTIMIZERS)} (default adam)")
    p.add_argument("--seed", type=int_at_least(0, "a seed between 0 and 2**32-1", MAX_SEED), metavar="N",
                   help="random seed for the initial weights, the batch order and the test rows (default 0)")
    p.add_argument("--out", metavar="DIR",
                   help="folder for metrics.csv, pictures, weights and checkpoint "
                        "(default: a new folder under runs/)")
    p.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR, exactly where it stopped")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out name a folder that holds a run, and replace that run (otherwise refused)")
    t = TEXT_DEFAULTS
    text = p.add_argument_group(
        "text (--dataset shakespeare, or --data FILE.txt): a character-level GPT, nanoGPT's CPU recipe by default")
    text.add_argument("--iters", type=int_at_least(0, "a whole number of iterations >= 0"), metavar="N",
                      help=f"total training iterations (default {t['iters']}); with --resume, the new total")
    text.add_argument("--eval-interval", type=int_at_least(1, "an evaluation interval >= 1"), metavar="N",
                      help=f"measure the train and validation loss every N iterations (default {t['eval_interval']})")
    text.add_argument("--eval-iters", type=int_at_least(1, "a number of evaluation batches >= 1"), metavar="N",
                      help=f"batches each loss is measured on, drawn once (default {t['eval_iters']})")
    text.add_argument("--layers", type=int_at_least(1, "a number of layers >= 1"), metavar="N",
                      help=f"transformer blocks (default {t['layers']})")
    text.add_argument("--heads", type=int_at_least(1, "a number of attention heads >= 1"), metavar="N",
                      help=f"attention heads per block (default {t['heads']}); must divide --embd")
    text.add_argument("--embd", type=int_at_least(1, "an embedding width >= 1"), metavar="N",
                      help=f"embedding width (default {t['embd']})")
    text.add_argument("--block-size", type=int_at_least(1, "a context length >= 1"), metavar="N",
                      help=f"context length in characters (default {t['block_size']})")
    text.add_argument("--dropout", type=_dropout, metavar="P", help=f"dropout rate (default {t['dropout']:g})")
    _add_device_argument(p)
    p.add_argument("--quiet", action="store_true", help="print only a one-line result")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training over MPI: mpiexec -n N leafgrad train --distributed; "
                        "each batch of --batch-size is split across the N ranks, which train like one "
                        "process (needs pip install 'leafgrad[mpi]')")


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``leafgrad predict``."""
    p.add_argument("run", metavar="RUN_DIR", help="a run folder written by leafgrad train --data")
    p.add_argument("--data", metavar="PATH", required=True,
                   help="a CSV file with the run's feature columns (the target column too, to measure the "
                        "accuracy), or an .npz holding x (and t)")
    p.add_argument("--out", metavar="FILE",
                   help="the CSV to write, - for standard output (default: NAME-predictions.csv in the current "
                        "folder, for --data NAME.csv); a device, FIFO or symbolic link is written through")
    _add_device_argument(p)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``leafgrad export``."""
    p.add_argument("run", metavar="RUN_DIR", help="a run folder written by leafgrad train --data")
    p.add_argument("--out", metavar="FILE", help="the ONNX file to write (default: RUN_DIR/model.onnx)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _add_device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=lower, default="cpu", metavar="DEVICE",
                   help='cpu, or gpu to compute with CuPy on an NVIDIA GPU (default cpu; needs '
                        'pip install "leafgrad[gpu]" for CUDA 12 or "leafgrad[gpu-cuda13]" for CUDA 13)')


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``leafgrad generate``."""
    p.add_argument("run", metavar="RUN_DIR", help="a run folder written by leafgrad train --dataset shakespeare "
                                                  "or --data FILE.txt")
    p.add_argument("--prompt", metavar="TEXT", help="the text to continue (default: a new line)")
    p.add_argument("--length", type=int_at_least(0, "a number of characters >= 0"), default=500, metavar="N",
                   help="characters to generate (default 500)")
    p.add_argument("--temperature", type=_positive_float, default=1.0, metavar="T",
                   help="divide the logits by T before sampling: below 1 is surer, above 1 wilder (default 1)")
    p.add_argument("--top-k", type=int_at_least(1, "a top-k >= 1"), metavar="K",
                   help="sample only among the K likeliest characters (default: all)")
    p.add_argument("--seed", type=int_at_least(0, "a seed between 0 and 2**32-1", MAX_SEED), default=0, metavar="N",
                   help="random seed of the sampling (default 0)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute the whole context at every character instead of keeping a key/value cache "
                        "(slower; to compare)")
    p.add_argument("--quiet", action="store_true", help="print only the text (not the speed)")


def add_graph_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``leafgrad graph``."""
    p.add_argument("example", nargs="?", default="tanh", choices=("tanh", "mlp"),
                   help="tanh: the n-th derivative of tanh (the book's step 35); "
                        "mlp: a small MLP's loss (default tanh)")
    p.add_argument("--order", type=int_at_least(1, "a derivative order >= 1"), default=2,
                   metavar="N", help="derivative order for the tanh example (default 2)")
    p.add_argument("--out", "-o", metavar="FILE",
                   help="output file; its extension picks the format (default tanh_gxN.png or mlp.png)")
    p.add_argument("--format", type=lower, metavar="FMT", help="png, svg, pdf or dot")
    p.add_argument("--no-verbose", action="store_true", help="leave shapes and dtypes out of the labels")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")


# =============================================================================
# The run's settings (checks that need several options)
# =============================================================================
def _unknown(what: str, name: str, choices: Any) -> UsageError:
    return UsageError(f"unknown {what} {name!r}; choose from {', '.join(choices)}")


def _resume_config(args: argparse.Namespace) -> Tuple[Dict[str, Any], dict]:
    """The settings of the run in ``--resume DIR``, with a new ``--epochs``; any other change is an error."""
    if getattr(args, "overwrite", False):
        raise UsageError("--overwrite replaces a run, --resume continues one: give one of them")
    previous = read_run(args.resume, "--resume", need=(CHECKPOINT,), purpose="to resume")
    config = previous["config"]
    if config.get("kind") == "text":
        return _resume_text_config(args, config), previous
    _no_text_options(args, f"the run in {args.resume}")
    for name in ("dataset", "data", "target", "task", "test_fraction"):
        if getattr(args, name) is not None and name not in run_options(config):
            trained_on = config.get("data") or config.get("dataset")
            raise UsageError(f"--{name.replace('_', '-')} does not apply to the run in {args.resume}, "
                             f"trained on {trained_on}")
    for name in run_options(config):
        given = getattr(args, name)
        if name == "data" and given is not None:
            given = os.path.abspath(given)
        if given is not None and given != config.get(name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} cannot change when resuming (the run used {flag} {config.get(name)}); "
                             "leave it out or start a new run")
    if args.epochs is not None:
        config["epochs"] = args.epochs
    return config, previous


def _resume_text_config(args: argparse.Namespace, config: Dict[str, Any]) -> Dict[str, Any]:
    """The settings of the text run to resume, with a new ``--iters``; any other change is an error."""
    for name in ("target", "task", "test_fraction", "hidden", "epochs", "model"):
        if getattr(args, name) is not None:
            raise UsageError(f"--{name.replace('_', '-')} does not apply to the text run in {args.resume}"
                             + (" (it counts --iters)" if name == "epochs" else ""))
    for name in TEXT_OPTIONS:
        given = getattr(args, name, None)
        if name == "data" and given is not None:
            given = os.path.abspath(given)
        if given is not None and given != config.get(name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} cannot change when resuming (the run used {flag} {config.get(name)}); "
                             "leave it out or start a new run")
    if args.iters is not None:
        config["iters"] = args.iters
    return config


def _no_text_options(args: argparse.Namespace, what: str) -> None:
    """A UsageError for an option only text runs take, given to ``what`` (not a text run)."""
    for name in TEXT_ONLY:
        if getattr(args, name, None) is not None:
            raise UsageError(f"--{name.replace('_', '-')} applies to text runs (--dataset shakespeare or "
                             f"--data FILE.txt), not to {what}")


def _text_config(args: argparse.Namespace, dataset: Optional[str]) -> Dict[str, Any]:
    """The settings of a new text run (a character-level GPT), from the command line and TEXT_DEFAULTS."""
    for name in ("target", "task", "test_fraction", "hidden", "epochs"):
        if getattr(args, name) is not None:
            raise UsageError(f"--{name.replace('_', '-')} does not apply to a text run"
                             + (": it counts --iters" if name == "epochs" else ""))
    if args.model is not None and args.model != "gpt":
        raise UsageError(f"a text run trains --model gpt, not {args.model}")
    config: Dict[str, Any] = dict(TEXT_DEFAULTS)
    for name in ("layers", "heads", "embd", "block_size", "dropout", "batch_size", "iters", "eval_interval",
                 "eval_iters", "optimizer", "lr"):
        if getattr(args, name) is not None:
            config[name] = getattr(args, name)
    if config["embd"] % config["heads"]:
        raise UsageError(f"--embd {config['embd']} is not divisible by --heads {config['heads']}: each head "
                         "takes an equal share of the embedding")
    if config["optimizer"] not in OPTIMIZERS:
        raise _unknown("optimizer", config["optimizer"], OPTIMIZERS)
    if config["optimizer"] == "adadelta":
        raise UsageError("a text run follows a learning-rate schedule, and adadelta takes no learning rate; "
                         "choose another --optimizer (default adamw)")
    config["min_lr"] = config["lr"] / 10  # nanoGPT's rule of thumb (1e-4 for the default 1e-3)
    config["seed"] = args.seed if args.seed is not None else 0
    config["kind"] = "text"
    if dataset is not None:
        config["dataset"] = dataset
    else:
        config["data"] = os.path.abspath(args.data)
    return config


def resolve_device(args: argparse.Namespace) -> str:
    """``--device``, checked: ``gpu`` without a usable GPU is a UsageError saying why and what to install."""
    if args.device not in cuda.DEVICES:
        raise _unknown("device", args.device, cuda.DEVICES)
    if args.device == "gpu":
        if getattr(args, "distributed", False):
            raise UsageError("--device gpu does not work with --distributed yet: every rank would use "
                             "the same GPU; leave one of them out")
        reason = cuda.gpu_unavailable_reason()
        if reason is not None:
            raise UsageError(f"--device gpu: {reason}")
    return args.device


def resolve_train_options(args: argparse.Namespace) -> Tuple[Dict[str, Any], Optional[dict]]:
    """The run's settings, from the command line and the defaults, or from the run to resume (then its record).

    ``config["device"]`` is where to train; it is not one of the options that
    define a run, so a run may be resumed on another device.
    """
    device = resolve_device(args)
    config, previous = _resume_config(args) if args.resume is not None else (_new_config(args), None)
    config["device"] = device
    return config, previous


def _new_config(args: argparse.Namespace) -> Dict[str, Any]:
    """The settings of a new run, from the command line and the defaults."""
    if args.data is not None and args.dataset is not None:
        raise UsageError("give either --dataset or --data, not both")
    if args.dataset in TEXT_DATASETS or (args.data is not None and is_text_file(args.data)):
        if getattr(args, "distributed", False):
            raise UsageError("--distributed does not train text runs yet; leave it out")
        return _text_config(args, args.dataset)
    _no_text_options(args, "this run" if args.data is None else f"--data {args.data}")
    if args.data is None:
        for flag in ("target", "task", "test_fraction"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} applies to your own data: add --data PATH")
    dataset = args.dataset if args.dataset is not None else ("file" if args.data is not None else "spiral")
    if dataset not in BUILTIN and args.data is None:
        raise _unknown("dataset", dataset, BUILTIN)
    defaults = DEFAULTS[dataset]
    config = {name: getattr(args, name) if getattr(args, name) is not None else defaults[name]
              for name in ("model", "hidden", "epochs", "batch_size", "optimizer")}
    config["seed"] = args.seed if args.seed is not None else 0
    if config["model"] not in MODELS:
        raise _unknown("model", config["model"], MODELS)
    if config["optimizer"] not in OPTIMIZERS:
        raise _unknown("optimizer", config["optimizer"], OPTIMIZERS)
    config["lr"] = args.lr if args.lr is not None else defaults["lr"][config["optimizer"]]
    if args.data is not None:
        config.update(data=os.path.abspath(args.data), target=args.target,
                      task=args.task if args.task is not None else "classification",
                      test_fraction=args.test_fraction if args.test_fraction is not None else 0.2)
        if config["task"] not in TASKS:
            raise _unknown("task", config["task"], TASKS)
    else:
        config["dataset"] = dataset
    if config["model"] == "cnn" and dataset == "spiral":
        raise UsageError("--model cnn needs image data, but spiral has 2-D points; "
                         "use --model mlp or --dataset digits")
    if config["model"] == "cnn" and args.hidden is None:
        config["hidden"] = [100]
    if config["model"] == "cnn" and len(config["hidden"]) != 1:
        raise UsageError("--model cnn takes one --hidden size (the fully connected layer), "
                         f"got {','.join(map(str, config['hidden']))}")
    return config
