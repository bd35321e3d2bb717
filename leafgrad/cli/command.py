"""The ``leafgrad`` command line: the parser of its sub-commands and :func:`main`, which turns errors into exit statuses."""
from __future__ import annotations

import argparse
import errno
import sys
from typing import Optional, Sequence

from leafgrad.cli.errors import DataError, UsageError, sentence
from leafgrad.cli.options import (add_generate_arguments, add_graph_arguments, add_predict_arguments,
                                  add_train_arguments)

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ("train", "predict", "graph", "generate", "export")
#: OSErrors that mean a path given on the command line cannot be used (exit status 2, not 1).
_BAD_INPUT = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become a UsageError (one sentence, exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, prog=self.prog)


def _train(args: argparse.Namespace) -> int:
    from leafgrad.cli.train import cmd_train
    return cmd_train(args)


def _predict(args: argparse.Namespace) -> int:
    from leafgrad.cli.predict import cmd_predict
    return cmd_predict(args)


def _generate(args: argparse.Namespace) -> int:
    from leafgrad.cli.generate import cmd_generate
    return cmd_generate(args)


def _export(args: argparse.Namespace) -> int:
    from leafgrad.cli.export import cmd_export
    return cmd_export(args)


def _graph(args: argparse.Namespace) -> int:
    from leafgrad.cli.graph import cmd_graph
    return cmd_graph(args)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``leafgrad`` command and its sub-commands."""
    parser = _Parser(prog="leafgrad",
                     description="leafgrad: a define-by-run deep learning framework on NumPy.",
                     epilog="Try: leafgrad train   (then: leafgrad graph)")
    from leafgrad import __version__
    parser.add_argument("--version", action="version", version=f"leafgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser("train", help="train a model and write metrics, pictures and a checkpoint",
                           description="Train a classifier (or a regression with --task regression): with no "
                                       "options an MLP on the spiral data set; --data PATH for your own CSV or .npz.")
    add_train_arguments(train)
    train.set_defaults(func=_train)

    predict = sub.add_parser("predict", help="predict the rows of a CSV or .npz with a run trained with --data",
                             description="Predict every row of a CSV or .npz file with a run of leafgrad train "
                                         "--data, and write the predictions (and probabilities) to a CSV.")
    add_predict_arguments(predict)
    predict.set_defaults(func=_predict)

    generate = sub.add_parser("generate", help="continue a text with a character-level GPT run",
                              description="Print the prompt and --length characters sampled from a run of "
                                          "leafgrad train --dataset shakespeare or --data FILE.txt.")
    add_generate_arguments(generate)
    generate.set_defaults(func=_generate)

    export = sub.add_parser("export", help="write a run trained with --data as an ONNX model",
                            description="Write a run of leafgrad train --data as an ONNX model that takes the raw "
                                        "feature values, standardizes them as the run did, and returns the scores "
                                        "(and, for classification, the probabilities); needs "
                                        'pip install "leafgrad[onnx]".')
    from leafgrad.cli.options import add_export_arguments
    add_export_arguments(export)
    export.set_defaults(func=_export)

    graph = sub.add_parser("graph", help="draw a built-in computational graph (PNG, SVG, PDF or DOT)",
                           description="Draw a built-in computational graph with Graphviz.")
    add_graph_arguments(graph)
    graph.set_defaults(func=_graph)
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
        if err.prog == "leafgrad" and words and words[0] in COMMANDS:
            err.prog = f"leafgrad {words[0]}"  # unrecognized arguments are reported by the top parser
        print(f"{err.prog or prog}: error: {sentence(str(err))}", file=sys.stderr)
        return 2
    except DataError as err:
        print(f"{prog}: error: {sentence(str(err))}", file=sys.stderr)
        return 1
    except OSError as err:  # a file that cannot be read is bad input; anything else (a full disk) a failed run
        where = f" {err.filename}" if getattr(err, "filename", None) else ""
        print(f"{prog}: error: {sentence(f'cannot use{where}: {err.strerror or err}')}", file=sys.stderr)
        return 2 if err.errno in _BAD_INPUT else 1
    except MemoryError:
        print(f"{prog}: error: not enough memory.", file=sys.stderr)
        return 1
    except SystemExit as err:  # --help and --version
        return int(err.code or 0) if not isinstance(err.code, str) else 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
