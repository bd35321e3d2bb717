"""``leafgrad train`` on text: a character-level GPT, nanoGPT's CPU recipe by default, counted in iterations.

``--dataset shakespeare`` (shipped with leafgrad) or ``--data FILE.txt`` (any
UTF-8 text).  The loop is :meth:`leafgrad.training.Trainer.fit_iterations`: random
windows of the training split, AdamW with clipping at norm 1.0, a warm-up then
cosine learning rate (:class:`leafgrad.schedules.WarmupCosine`), the train and
validation loss measured on fixed batches every ``--eval-interval`` iterations.
The run's folder holds what the other runs hold (``metrics.csv`` with the columns
``iteration,train_loss,val_loss,lr,seconds``, ``curves.png``, ``checkpoint.npz``,
``model.npz``, ``run.json``), and ``run.json`` keeps the vocabulary as a string,
so that ``leafgrad generate`` reads it back without unpickling anything.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from leafgrad.cli.errors import UsageError
from leafgrad.cli.plots import plot_iteration_curves
from leafgrad.cli.progress import IterationProgress
from leafgrad.cli.run_folder import (CHECKPOINT, METRICS, RUN_FILE, WEIGHTS, RunFolder, load_checkpoint, write_json,
                                     write_metrics)
from leafgrad.cli.run_lock import remove_run_files
from leafgrad.cli.run_schema import seal
from leafgrad.text import CharText, TextError, TinyShakespeare
from leafgrad.training import DivergenceError, IterationMetrics, Trainer

__all__ = ["train_text", "load_text", "build_gpt", "make_text_trainer", "describe_gpt", "TextRunFolder"]


def load_text(config: Dict[str, Any], vocab: Optional[str] = None) -> Tuple[CharText, Optional[str]]:
    """The run's text and, for your own file, its SHA-256; a bad file is a UsageError in one sentence.

    ``vocab`` (a resumed run's) numbers the characters instead of the text's own sorted set.
    """
    if config.get("dataset") is not None:
        return TinyShakespeare(), None
    path = config["data"]
    shown = os.path.relpath(path)
    shown = path if shown.startswith(os.pardir) else shown
    if not os.path.isfile(path):
        raise UsageError(f"--data {shown}: no such file" if not os.path.exists(path) else
                         f"--data {shown} is not a file")
    from leafgrad.cli.table import file_sha256
    try:
        text = CharText.from_file(path, vocab=vocab)
        digest = file_sha256(path)
    except TextError as err:
        raise UsageError(str(err).replace(path, shown, 1)) from None
    except OSError as err:
        raise UsageError(f"--data {shown}: cannot read it ({err.strerror or err})") from None
    text.name = os.path.basename(path)
    try:
        text.check_block_size(config["block_size"])
    except TextError as err:
        raise UsageError(str(err)) from None
    return text, digest


def build_gpt(config: Dict[str, Any], vocab_size: int) -> Any:
    """The run's :class:`leafgrad.models.GPT` (no biases, as nanoGPT's CPU recipe)."""
    from leafgrad.models import GPT
    return GPT(vocab_size, block_size=config["block_size"], n_layer=config["layers"], n_head=config["heads"],
               n_embd=config["embd"], dropout=config["dropout"], bias=False)


def describe_gpt(config: Dict[str, Any]) -> str:
    """``'gpt 4 layers, 4 heads, 128 wide, context 64'``."""
    drop = f", dropout {config['dropout']:g}" if config["dropout"] else ""
    def n(k: int, what: str) -> str:
        return f"{k} {what}" + ("" if k == 1 else "s")
    return (f"gpt {n(config['layers'], 'layer')}, {n(config['heads'], 'head')}, {config['embd']} wide, "
            f"context {config['block_size']}{drop}")


def make_text_trainer(config: Dict[str, Any], text: CharText) -> Trainer:
    """Model, optimizer (clipped at ``clip``), schedule and trainer of a text run (NumPy's generator seeded)."""
    from leafgrad.optimizers import AdamW, ClipGrad, from_name
    from leafgrad.schedules import WarmupCosine
    np.random.seed(config["seed"])  # initial weights (and dropout) come from NumPy's global generator
    model = build_gpt(config, text.vocab_size)
    if config["optimizer"] == "adamw":
        optimizer = AdamW(lr=config["lr"], betas=(config["beta1"], config["beta2"]),
                          weight_decay=config["weight_decay"])
    else:
        optimizer = from_name(config["optimizer"], config["lr"])
    optimizer.add_hook(ClipGrad(config["clip"]))
    schedule = WarmupCosine(config["lr"], min(config["warmup_iters"], config["decay_iters"]),
                            config["decay_iters"], config["min_lr"])
    return Trainer(model, optimizer, batch_size=config["batch_size"], seed=config["seed"],
                   device=config.get("device", "cpu"), schedule=schedule)


class TextRunFolder(RunFolder):
    """The files of a text run, rewritten at every evaluation: metrics, checkpoint and ``run.json`` (with the vocabulary)."""

    def __init__(self, out: str, config: Dict[str, Any], vocab: str, sha256: Optional[str]) -> None:
        super().__init__(out, config)
        self.vocab = vocab
        self.sha256 = sha256

    def save(self, trainer: Trainer) -> None:
        """Write the metrics, the checkpoint and the run record as they are now."""
        from leafgrad import __version__
        write_metrics(self.path(METRICS), trainer.history, IterationMetrics._fields)
        trainer.save(self.path(CHECKPOINT))
        last = trainer.history[-1] if trainer.history else None
        record: Dict[str, Any] = {
            "leafgrad_version": __version__, "kind": "text",
            "config": {k: v for k, v in self.config.items() if k != "device"},
            "vocab": self.vocab, "iterations_done": trainer.iteration,
            "seconds": last.seconds if last is not None else 0.0}
        if last is not None:
            record["last_eval"] = {k: (None if isinstance(v, float) and v != v else v)
                                   for k, v in last._asdict().items()}
        if self.sha256 is not None:
            record["data_sha256"] = self.sha256
        write_json(self.path(RUN_FILE), seal(record))


def train_text(args: argparse.Namespace, config: Dict[str, Any], previous: Optional[dict], out: str) -> int:
    """``leafgrad train`` for a text run (``config["kind"] == "text"``): train into ``out``, print a summary.

    ``out`` exists and is locked (:func:`leafgrad.cli.train.cmd_train` made it,
    refused an existing run there, and removes it again if it stays empty).
    """
    if previous is None:
        # The schedule is fixed at the start: it decays over the run's iterations, after a warm-up of
        # 100 iterations (nanoGPT's) or a tenth of a shorter run.
        config["decay_iters"] = config["iters"]
        config["warmup_iters"] = min(config["warmup_iters"], config["iters"] // 10)
        text, digest = load_text(config)
    else:
        text, digest = _resumed_text(config, previous, args.resume)
    trainer = make_text_trainer(config, text)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    folder = TextRunFolder(out, config, text.vocab, digest)
    if previous is not None:
        path = os.path.join(args.resume, CHECKPOINT)
        load_checkpoint(trainer, path)
        say(f"resuming {args.resume} after iteration {trainer.iteration}")
        if trainer.iteration >= config["iters"]:
            say(f"the run has already trained {trainer.iteration} iterations; pass --iters N with N > "
                f"{trainer.iteration} to train more")
    else:
        if getattr(args, "overwrite", False):
            remove_run_files(out)  # only now that the new run is ready: a bad option keeps the old run
        folder.save(trainer)  # iteration 0: a run stopped before its first evaluation resumes from the start
    B, T = config["batch_size"], config["block_size"]
    opt = config["optimizer"] + (f" (betas {config['beta1']:g}/{config['beta2']:g}, weight decay "
                                 f"{config['weight_decay']:g} on matrices and embeddings)"
                                 if config["optimizer"] == "adamw" else "")
    say(f"{text.describe()}; {describe_gpt(config)}, {_count(trainer.model):,} parameters; {opt}, lr "
        f"{config['lr']:g}, {config['warmup_iters']} warm-up iterations then cosine to {config['min_lr']:g}, "
        f"clip {config['clip']:g}; batch {B}; {config['iters']} iterations; writing to {out}")
    evals = (text.fixed_batches("train", config["eval_iters"], B, T, seed=config["seed"]),
             text.fixed_batches("val", config["eval_iters"], B, T, seed=config["seed"]))
    progress = IterationProgress(trainer.iteration, config["iters"], args.quiet)
    t0 = time.perf_counter()
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence: one sentence below
            trainer.fit_iterations(lambda rng: text.get_batch("train", B, T, rng), config["iters"],
                                   config["eval_interval"], evals, callbacks=[folder, progress])
    except KeyboardInterrupt:
        progress.close()
        kept = trainer.history[-1].iteration if trainer.history else 0
        print(f"\ninterrupted; {out} keeps iteration {kept}; continue with: leafgrad train --resume {out}",
              file=sys.stderr)
        return 130
    except DivergenceError as err:
        progress.close()
        kept = trainer.history[-1].iteration if trainer.history else 0
        from leafgrad.cli.train import divergence_sentence
        print(f"leafgrad train: error: {divergence_sentence(err, config, out, kept)}", file=sys.stderr)
        return 1
    progress.close()
    session = time.perf_counter() - t0
    trainer.model.save_weights(folder.path(WEIGHTS))
    drawn = plot_iteration_curves(folder.path("curves.png"), trainer.history,
                                  f"{text.name}, {describe_gpt(config)}")
    if not drawn:
        print("matplotlib is not installed, so curves.png was skipped (pip install matplotlib)", file=sys.stderr)
    last = trainer.history[-1]
    total = last.seconds
    if args.quiet:
        print(f"train loss {last.train_loss:.4f}, val loss {last.val_loss:.4f}, {trainer.iteration} iterations, "
              f"{total:.1f} s, {out}")
        return 0
    print()
    print(f"done: {trainer.iteration} iterations in {total:.1f} s"
          + ("" if previous is None else f" ({session:.1f} s this session)"))
    print(f"  train loss {last.train_loss:.4f}, val loss {last.val_loss:.4f} "
          f"(mean over {config['eval_iters']} fixed batches of {B}x{T} characters each)")
    print(f"  model: {describe_gpt(config)}, {_count(trainer.model):,} parameters")
    _print_step_memory(trainer, *text.get_batch("train", B, T, np.random.RandomState(0)))
    written = [WEIGHTS, METRICS, CHECKPOINT, RUN_FILE] + (["curves.png"] if drawn else [])
    print(f"  wrote {out}{os.sep}: {' '.join(written)}")
    print(f"  sample with: leafgrad generate {shlex.quote(out)} --prompt {shlex.quote(_example_prompt(config, text))} "
          "--length 300")
    print(f"  continue training with: leafgrad train --resume {shlex.quote(out)} --iters {config['iters'] * 2}")
    return 0


def _print_step_memory(trainer: Trainer, x: np.ndarray, t: np.ndarray) -> None:
    """Measure one training step (updating nothing) with leafgrad.memory and print it, as for the other runs."""
    from leafgrad.memory import format_bytes
    step, fwd, bwd = trainer.step_memory(x, t)
    pool = ", in CuPy's memory pool on the GPU" if step.device == "gpu" else ""
    print(f"  memory of one training step (batch of {x.shape[0]}x{x.shape[1]}{pool}), measured with leafgrad.memory:")
    print(f"    forward:  peak {format_bytes(fwd.peak)}; the graph keeps {format_bytes(fwd.current)} for backward")
    print(f"    backward: peak {format_bytes(bwd.peak)} more; then only the gradients stay "
          f"({format_bytes(step.current)})")
    print(f"    whole step: peak {format_bytes(step.peak)}")


def _resumed_text(config: Dict[str, Any], previous: dict, folder: str) -> Tuple[CharText, Optional[str]]:
    """The text of the run being resumed, numbered by its vocabulary; your own file must not have changed."""
    vocab = previous.get("vocab")
    if not isinstance(vocab, str) or not vocab:
        raise UsageError(f"--resume {folder}: run.json has no vocabulary (a text run's run.json keeps it)")
    if config.get("data") is None:
        text, digest = load_text(config)
        if text.vocab != vocab:
            raise UsageError(f"--resume {folder}: the vocabulary in run.json is not tiny Shakespeare's")
        return text, digest
    from leafgrad.cli.table import file_sha256
    path = config["data"]
    if os.path.isfile(path) and file_sha256(path) != previous.get("data_sha256"):
        raise UsageError(f"--resume {folder}: {path} has changed since the run started (its contents differ), "
                         "so the run cannot go on exactly; start a new run")
    return load_text(config, vocab)


def _example_prompt(config: Dict[str, Any], text: CharText) -> str:
    """A prompt to suggest: ``ROMEO:`` for Shakespeare, else the text's first word."""
    if config.get("dataset") == "shakespeare":
        return "ROMEO:"
    words = text.decode(text.train_ids[:200]).split()
    return words[0][:20] if words else text.vocab[0]


def _count(model: Any) -> int:
    return int(sum(p.data.size for p in model.params() if p.data is not None))

