"""The ``leafgrad`` command: ``train`` (watch a model learn), ``predict`` (use what it learnt), ``generate``
(continue a text with a character-level GPT run), ``export`` (a run as an ONNX model), ``graph``.

``leafgrad train`` with no options trains an MLP on the built-in spiral data set
(no network, no files); ``--data PATH`` trains on your own CSV or ``.npz``.
Either way it writes ``metrics.csv``, pictures, the weights and a checkpoint
into a new folder under ``runs/``, from which ``leafgrad train --resume DIR``
continues exactly and ``leafgrad predict DIR --data PATH`` predicts new rows.
``--dataset shakespeare`` or ``--data FILE.txt`` trains a character-level GPT
(:mod:`.text`), counted in iterations, which ``leafgrad generate DIR`` samples.
The training loop itself is the library :mod:`leafgrad.training`.

The modules, one concern each: :mod:`.command` (the parser and ``main``),
:mod:`.options` (every option, its default and its checks), :mod:`.data` (the
built-in data sets), :mod:`.table` (your own files), :mod:`.run_folder` (the
files of a run), :mod:`.run_schema` (what run.json may hold), :mod:`.run_lock`
(one training per folder), :mod:`.progress`, :mod:`.plots`, and one module per command:
:mod:`.train` (and :mod:`.text` for text runs), :mod:`.predict`, :mod:`.generate`, :mod:`.export`,
:mod:`.graph`.

Exit status: 0 on success; 2 for a bad option, a bad data file or a damaged
run file (one sentence on stderr, one line per problem, no traceback); 1 when
data or a package a command needs is missing, or when the run failed (training
diverged, the disk is full); 130 when interrupted.
"""
from leafgrad.cli.command import build_parser, main
from leafgrad.cli.errors import DataError, UsageError

__all__ = ["main", "build_parser", "UsageError", "DataError"]
