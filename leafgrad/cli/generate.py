"""``leafgrad generate RUN_DIR --prompt TEXT --length N``: continue a text with a character-level GPT run.

Reads the run's ``run.json`` (its settings and vocabulary, plain JSON) and
weights (``model.npz``, or the last checkpoint of a run still training), then
samples ``--length`` characters one at a time with
:meth:`leafgrad.models.GPT.generate`, which keeps a key/value cache so that each
new character costs one position (``--no-cache`` recomputes the whole context
at every character, to compare).  Prints the prompt and the new characters;
the speed goes to stderr.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from leafgrad.cli.errors import UsageError
from leafgrad.cli.run_folder import CHECKPOINT, WEIGHTS, read_run
from leafgrad.serialization import SerializationError, load_checkpoint
from leafgrad.text import CharText, TextError

__all__ = ["cmd_generate"]


def cmd_generate(args: argparse.Namespace) -> int:
    """``leafgrad generate``: print the prompt and ``--length`` sampled characters."""
    record = read_run(args.run, "RUN_DIR", need=(), purpose="to generate from")
    vocab = record.get("vocab")
    if record.get("kind") != "text" or not isinstance(vocab, str) or not vocab:
        raise UsageError(f"{args.run} is not a text run: leafgrad generate samples from runs of leafgrad train "
                         "--dataset shakespeare or --data FILE.txt")
    chars = CharText("", vocab=vocab)
    prompt = args.prompt if args.prompt is not None else ("\n" if "\n" in vocab else vocab[0])
    if prompt == "":
        raise UsageError("--prompt is empty: give at least one character to start from")
    try:
        ids = chars.encode(prompt)
    except TextError as err:
        raise UsageError(f"--prompt: {err} the run learnt") from None
    from leafgrad.cli.text import build_gpt
    try:
        model = build_gpt(record["config"], len(vocab))
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"{args.run}: cannot read the model's settings in run.json ({err})") from None
    weights, checkpoint = os.path.join(args.run, WEIGHTS), os.path.join(args.run, CHECKPOINT)
    try:
        if os.path.isfile(weights):
            model.load_weights(weights)
        elif os.path.isfile(checkpoint):
            load_checkpoint(checkpoint, model, restore_random_state=False)
        else:
            raise UsageError(f"{args.run} has neither {WEIGHTS} nor {CHECKPOINT}: no weights to generate with")
    except SerializationError as err:
        raise UsageError(f"cannot load the weights of {args.run}: {err}") from None
    except OSError as err:
        raise UsageError(f"cannot read the weights of {args.run}: {err.strerror or err}") from None
    rng = np.random.RandomState(args.seed)
    t0 = time.perf_counter()
    out = model.generate(ids[None, :], args.length, temperature=args.temperature, top_k=args.top_k, rng=rng,
                         use_cache=not args.no_cache)
    seconds = time.perf_counter() - t0
    text = prompt + chars.decode(np.asarray(out)[0, len(ids):])
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    if not args.quiet and args.length:
        how = "without the key/value cache" if args.no_cache else "with the key/value cache"
        print(f"generated {args.length} characters in {seconds:.2f} s: {args.length / max(seconds, 1e-9):,.0f} "
              f"characters per second ({how})", file=sys.stderr)
    return 0
