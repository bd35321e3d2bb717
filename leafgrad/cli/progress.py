"""How ``leafgrad train`` shows progress: a tqdm bar on a terminal, about 20 plain lines otherwise."""
from __future__ import annotations

import math
import sys
from typing import Any, Optional

from leafgrad.training import Callback, EpochMetrics, IterationMetrics, Trainer

__all__ = ["Progress", "IterationProgress", "fmt_pct", "fmt_num"]


def fmt_pct(x: Optional[float]) -> str:
    """``0.937`` as ``'93.7%'``; ``'n/a'`` for None or NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def fmt_num(x: Optional[float]) -> str:
    """``x`` with 4 decimals; ``'n/a'`` for None or NaN."""
    return "n/a" if x is None or math.isnan(x) else f"{x:.4f}"


def _terminal_bar(stream: Any, **options: Any) -> Any:
    """A tqdm bar on ``stream`` when it is a terminal and tqdm is installed; otherwise None (plain lines)."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(file=stream, dynamic_ncols=True, leave=True, **options)


class Progress(Callback):
    """A tqdm bar (epoch, loss, accuracy) on a terminal; plain lines otherwise; nothing when quiet.

    Accuracy is left out where it is NaN (regression).  Call :meth:`close` at the end.
    """

    def __init__(self, start_epoch: int, epochs: int, batches_per_epoch: int, quiet: bool,
                 stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.epochs = epochs
        self.quiet = quiet
        self.bar = None
        self.every = max(1, math.ceil(max(epochs - start_epoch, 1) / 20))  # about 20 plain lines
        self._sum = [0.0, 0.0, 0]
        if not quiet and epochs > start_epoch:
            self.bar = _terminal_bar(self.stream, total=(epochs - start_epoch) * batches_per_epoch, unit="batch")

    def on_epoch_begin(self, trainer: Optional[Trainer], epoch: int) -> None:
        """Epoch ``epoch`` (from 1) begins."""
        self._sum = [0.0, 0.0, 0]
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch}/{self.epochs}", refresh=False)

    def on_batch_end(self, trainer: Optional[Trainer], batch: int, loss: float, acc: float) -> None:
        """A batch ended with this loss and accuracy."""
        if self.bar is not None:
            s = self._sum
            s[0] += loss
            s[1] += acc
            s[2] += 1
            text = f"loss {s[0] / s[2]:.4f}" + ("" if math.isnan(acc) else f", acc {100 * s[1] / s[2]:.1f}%")
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, trainer: Optional[Trainer], m: EpochMetrics) -> None:
        """An epoch ended with the metrics ``m``: update the bar, or print a line every few epochs."""
        if self.bar is not None:
            text = f"loss {m.train_loss:.4f}"
            if not math.isnan(m.train_acc):
                text += f", acc {fmt_pct(m.train_acc)}, test acc {fmt_pct(m.test_acc)}"
            elif not math.isnan(m.test_loss):
                text += f", test loss {m.test_loss:.4f}"
            self.bar.set_postfix_str(text, refresh=True)
            return
        if self.quiet or (m.epoch % self.every and m.epoch != self.epochs):
            return
        width = len(str(self.epochs))
        acc = "" if math.isnan(m.train_acc) else f"  acc {fmt_pct(m.train_acc):>6}"
        test = "" if math.isnan(m.test_loss) else f"  test loss {m.test_loss:.4f}"
        if not math.isnan(m.test_acc):
            test += f"  test acc {fmt_pct(m.test_acc):>6}"
        print(f"epoch {m.epoch:>{width}}/{self.epochs}  loss {m.train_loss:.4f}{acc}{test}  ({m.seconds:.1f} s)",
              file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class IterationProgress(Callback):
    """For a run counted in iterations: a tqdm bar (iteration, loss, last validation loss) on a terminal;
    otherwise one line per evaluation; nothing when quiet.  Call :meth:`close` at the end."""

    def __init__(self, start: int, iters: int, quiet: bool, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.iters = iters
        self.quiet = quiet
        self.bar = None
        self._val = ""
        if not quiet and iters > start:
            self.bar = _terminal_bar(self.stream, total=iters, initial=start, unit="it")

    def on_batch_end(self, trainer: Optional[Trainer], batch: int, loss: float, acc: float) -> None:
        """Iteration ``batch`` (from 1) ended with this loss."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}{self._val}", refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, trainer: Optional[Trainer], m: IterationMetrics) -> None:
        """An evaluation: the bar shows it, or a line is printed."""
        if self.bar is not None:
            self._val = f", val loss {m.val_loss:.4f}"
            return
        if self.quiet:
            return
        width = len(str(self.iters))
        lr = "" if math.isnan(m.lr) else f"  lr {m.lr:.2e}"
        print(f"iteration {m.iteration:>{width}}/{self.iters}  train loss {m.train_loss:.4f}  "
              f"val loss {m.val_loss:.4f}{lr}  ({m.seconds:.1f} s)", file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
