"""Character-level text data: a vocabulary, a train/validation split, and seeded random windows.

::

    from leafgrad.datasets import TinyShakespeare

    text = TinyShakespeare()                 # shipped with leafgrad (bz2), works offline
    text.vocab_size                          # 65
    x, y = text.get_batch("train", batch_size=12, block_size=64, rng=np.random.RandomState(0))
    text.decode(x[0])                        # 64 characters; y[0] is the same window shifted by one

:class:`CharText` does the same for any UTF-8 text (``CharText.from_file(path)``),
as ``leafgrad train --data FILE.txt`` uses it.  The split is nanoGPT's: the first
90% of the characters train, the rest validate.  The vocabulary is the sorted set
of the text's characters; it is kept as a plain string, so a run stores it in
JSON and reads it back without unpickling anything.
"""
from __future__ import annotations

import bz2
import hashlib
import os
from typing import Any, Optional, Sequence, Tuple

import numpy as np

__all__ = ["CharText", "TinyShakespeare", "TextError", "SHAKESPEARE_SHA256"]

#: The SHA-256 of tiny Shakespeare (karpathy/char-rnn's ``input.txt``, 1,115,394 bytes), as shipped.
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
_SHAKESPEARE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tinyshakespeare.txt.bz2")


class TextError(ValueError):
    """A text that cannot train a character model (empty, too short, not UTF-8), or a character outside a vocabulary."""


class CharText:
    """A text as character ids, with its vocabulary and nanoGPT's 90/10 train/validation split.

    ``CharText(text, vocab=None, val_fraction=0.1, name="text")``: ``vocab`` is
    the string of the characters the ids number, in order (by default the text's
    own characters, sorted); every character of ``text`` must be in it.
    ``ids`` holds the whole text, ``train_ids`` its first ``1 - val_fraction``,
    ``val_ids`` the rest.
    """

    def __init__(self, text: str, vocab: Optional[str] = None, val_fraction: float = 0.1,
                 name: str = "text") -> None:
        if not isinstance(text, str):
            raise TypeError(f"CharText: text must be a str, got {type(text).__name__}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"CharText: val_fraction must be in [0, 1), got {val_fraction!r}")
        self.name = name
        self.vocab = "".join(sorted(set(text))) if vocab is None else vocab
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("CharText: the vocabulary repeats a character")
        self._lookup = {ch: i for i, ch in enumerate(self.vocab)}
        self.ids = self.encode(text)
        n = int(len(self.ids) * (1 - val_fraction))
        self.train_ids, self.val_ids = self.ids[:n], self.ids[n:]

    @classmethod
    def from_file(cls, path: str, vocab: Optional[str] = None, val_fraction: float = 0.1) -> "CharText":
        """The UTF-8 text in ``path``; :class:`TextError` (one sentence) for an empty or non-UTF-8 file."""
        with open(path, "rb") as f:
            raw = f.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw[:err.start].count(b"\n") + 1
            raise TextError(f"{path} is not UTF-8 text (byte {err.start} on line {line} cannot be decoded); "
                            "save it as UTF-8") from None
        if text.startswith("\ufeff"):
            text = text[1:]  # a byte-order mark is no character of the text
        if not text:
            raise TextError(f"{path} is empty: a character model needs text to learn from")
        return cls(text, vocab, val_fraction, name=os.path.basename(path))

    # ---- vocabulary ----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of distinct characters."""
        return len(self.vocab)

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``'s characters (int64); :class:`TextError` names a character outside the vocabulary."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        if not len(codes):
            return np.zeros(0, dtype=np.int64)
        table = np.full(max(int(codes.max()), max(map(ord, self.vocab), default=0)) + 1, -1, dtype=np.int64)
        table[[ord(ch) for ch in self.vocab]] = np.arange(len(self.vocab))
        ids = table[codes]
        bad = np.flatnonzero(ids < 0)
        if len(bad):
            ch = text[int(bad[0])]
            raise TextError(f"the character {ch!r} (U+{ord(ch):04X}, position {int(bad[0])}) is not in the "
                            f"vocabulary of {self.vocab_size} characters")
        return ids

    def decode(self, ids: Any) -> str:
        """The text of a sequence of ids."""
        vocab = self.vocab
        return "".join(vocab[int(i)] for i in np.asarray(ids).ravel())

    # ---- windows ------------------------------------------------------------------------
    def split(self, name: str) -> np.ndarray:
        """The ids of ``"train"`` or ``"val"``."""
        if name == "train":
            return self.train_ids
        if name == "val":
            return self.val_ids
        raise ValueError(f"CharText.split: unknown split {name!r}; choose 'train' or 'val'")

    def check_block_size(self, block_size: int) -> None:
        """:class:`TextError` unless both splits are longer than ``block_size`` characters."""
        for name in ("train", "val"):
            n = len(self.split(name))
            if n <= block_size:
                total = len(self.ids)
                raise TextError(f"{self.name} has {total} characters, so its {name} split ({n}) is not "
                                f"longer than the context of {block_size} characters; use a longer text "
                                "or a smaller --block-size")

    def get_batch(self, split: str, batch_size: int, block_size: int,
                  rng: Optional[np.random.RandomState] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``batch_size`` random windows of ``split``: ``x`` ``(B, T)`` int64 and ``y``, ``x`` shifted by one.

        The starts are drawn with ``rng.randint`` (NumPy's global generator when
        ``rng`` is None), uniformly from ``[0, len - block_size)``, as nanoGPT's ``get_batch``.
        """
        data = self.split(split)
        if len(data) <= block_size:
            raise TextError(f"the {split} split has {len(data)} characters, not more than the context "
                            f"of {block_size}")
        draw = np.random.randint if rng is None else rng.randint
        starts = draw(len(data) - block_size, size=batch_size)
        index = starts[:, None] + np.arange(block_size + 1)
        window = data[index]
        return np.ascontiguousarray(window[:, :-1]), np.ascontiguousarray(window[:, 1:])

    def fixed_batches(self, split: str, count: int, batch_size: int, block_size: int,
                      seed: int = 0) -> Sequence[Tuple[np.ndarray, np.ndarray]]:
        """``count`` batches drawn once from ``RandomState(seed)``: the same every time (for evaluation)."""
        rng = np.random.RandomState(seed)
        return [self.get_batch(split, batch_size, block_size, rng) for _ in range(count)]

    def describe(self) -> str:
        """``'tiny shakespeare: 1,003,854 train / 111,540 val characters, 65 distinct'``."""
        return (f"{self.name}: {len(self.train_ids):,} train / {len(self.val_ids):,} val characters, "
                f"{self.vocab_size} distinct")


class TinyShakespeare(CharText):
    """Tiny Shakespeare (1,115,394 characters, 65 distinct), shipped inside leafgrad, as nanoGPT's ``shakespeare_char``.

    ``TinyShakespeare(val_fraction=0.1)``: the sorted vocabulary of 65 characters,
    the first 1,003,854 characters to train, the last 111,540 to validate.
    (DeZero's :class:`~leafgrad.datasets.Shakespear` downloads the same text and
    numbers the characters in order of appearance; it is unchanged.)
    """

    def __init__(self, val_fraction: float = 0.1) -> None:
        with bz2.open(_SHAKESPEARE_FILE, "rb") as f:
            raw = f.read()
        if hashlib.sha256(raw).hexdigest() != SHAKESPEARE_SHA256:
            raise TextError(f"{_SHAKESPEARE_FILE} is damaged (its SHA-256 differs); reinstall leafgrad")
        super().__init__(raw.decode("utf-8"), val_fraction=val_fraction, name="tiny shakespeare")
