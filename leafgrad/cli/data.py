"""The data of a run as arrays (:class:`Data`), and the built-in data sets: ``spiral``, ``digits``, ``mnist``.

Your own files (``--data``) are read by :mod:`leafgrad.cli.table`.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from leafgrad.cli.errors import DataError

__all__ = ["Data", "BUILTIN", "load_builtin", "shape_for"]

#: The built-in data sets, in the order ``--help`` lists them.
BUILTIN = ("spiral", "digits", "mnist")


class Data:
    """A data set as arrays shaped for the model: ``x_train t_train x_test t_test`` (no test data: None).

    ``x`` arrays are float32, ``(N, D)`` for an MLP or ``(N, C, H, W)`` for a
    CNN; in classification ``t`` holds int64 class indices and ``num_outputs``
    is the number of classes; in regression ``t`` is float32 ``(N, k)`` and
    ``num_outputs`` is ``k``.  ``info`` describes your own file
    (:class:`leafgrad.cli.table.DataInfo`: column names, label names, scaling);
    None for the built-in data sets.
    """

    def __init__(self, name: str, x_train: np.ndarray, t_train: np.ndarray,
                 x_test: Optional[np.ndarray], t_test: Optional[np.ndarray], num_outputs: int,
                 image_shape: Optional[tuple] = None, task: str = "classification", info: Any = None) -> None:
        self.name = name
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test
        self.num_outputs = num_outputs
        self.image_shape = image_shape
        self.task = task
        self.info = info

    @property
    def input_dim(self) -> int:
        """Number of input features per example."""
        return int(np.prod(self.x_train.shape[1:]))

    def describe(self) -> str:
        """``'spiral: 300 train / 300 test, 2 features, 3 classes'``."""
        test = f" / {len(self.x_test)} test" if self.x_test is not None else ""
        if self.task == "regression":
            target = f"regression of {self.info.target!r}" if self.info is not None else "regression"
        else:
            target = f"{self.num_outputs} classes"
        return f"{self.name}: {len(self.x_train)} train{test}, {self.input_dim} features, {target}"


def shape_for(model: str, x: np.ndarray, image_shape: Optional[tuple]) -> np.ndarray:
    """``x`` as float32 rows for an ``mlp``, or ``(N,) + image_shape`` images for a ``cnn``."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if model == "cnn":
        return x.reshape((len(x),) + tuple(image_shape))
    return x.reshape(len(x), -1)


def _unit_float32(pixels: np.ndarray) -> np.ndarray:
    """Bytes 0..255 as float32 in [0, 1], without a float64 copy of the whole data set."""
    x = pixels.astype(np.float32)
    x *= 1.0 / 255.0
    return x


def load_builtin(name: str, model: str = "mlp") -> Data:
    """The built-in data set ``name`` (one of :data:`BUILTIN`) shaped for ``model``."""
    if name == "spiral":
        from leafgrad.datasets import get_spiral
        # get_spiral seeds NumPy's global generator (as DeZero does): load data before seeding the run.
        x, t = get_spiral(train=True)
        x_test, t_test = get_spiral(train=False)
        return Data("spiral", shape_for(model, x, None), t.astype(np.int64),
                    shape_for(model, x_test, None), t_test.astype(np.int64), 3)
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError("--dataset digits needs scikit-learn, which is not installed "
                            "(pip install scikit-learn)") from None
        bunch = load_digits()
        x = (bunch.data / 16.0).astype(np.float32)
        t = bunch.target.astype(np.int64)
        order = np.random.RandomState(0).permutation(len(x))  # a fixed 80/20 split
        n_train = int(round(0.8 * len(x)))
        tr, te = order[:n_train], order[n_train:]
        shape = (1, 8, 8)
        return Data("digits", shape_for(model, x[tr], shape), t[tr],
                    shape_for(model, x[te], shape), t[te], 10, shape)
    if name == "mnist":
        from leafgrad.datasets import MNIST
        try:
            train, test = MNIST(train=True), MNIST(train=False)
        except Exception as err:  # no network and nothing cached, a corrupt file...
            raise DataError(f"could not load MNIST: {err}") from None
        shape = (1, 28, 28)
        return Data("mnist", shape_for(model, _unit_float32(train.data), shape), train.label.astype(np.int64),
                    shape_for(model, _unit_float32(test.data), shape), test.label.astype(np.int64), 10, shape)
    raise ValueError(f"load_builtin: unknown data set {name!r}")  # the options were checked before
