"""Metrics (not differentiable): ``accuracy``."""
from __future__ import annotations

from typing import Any

import numpy as np

from leafgrad.checks import ARRAY, LABELS, check_labels, checked, labels_in_range
from leafgrad.core import Variable, as_array
from leafgrad.cuda import array_types, get_array_module

__all__ = ["accuracy"]


@checked(y=ARRAY, t=LABELS)
def accuracy(y: Any, t: Any) -> Variable:
    """The fraction of rows of ``y`` whose arg-max equals the label in ``t``, as a Variable with no graph.

    As in DeZero, the result holds a float64 0-d array.
    """
    y_data = y.data if isinstance(y, Variable) else y
    t_data = t.data if isinstance(t, Variable) else t
    if not isinstance(y_data, array_types):
        y_data = np.asarray(y_data)
    if not isinstance(t_data, array_types):
        t_data = np.asarray(t_data)
    if y_data.ndim < 2:
        raise ValueError(f"accuracy: expected scores y of shape (N, C), got shape {y_data.shape}")
    pred = y_data.argmax(axis=1)
    if pred.size != t_data.size:
        raise ValueError(f"accuracy: y of shape {y_data.shape} gives {pred.size} predictions "
                         f"but labels t have shape {t_data.shape}")
    checked = check_labels("accuracy", t_data, y_data.shape[1])
    acc = (pred.reshape(t_data.shape) == t_data).mean()
    xp = get_array_module(y_data)
    if not checked:  # labels on the GPU: checked there, without waiting for it
        acc = xp.where(labels_in_range(t_data, y_data.shape[1]), acc, xp.nan)
    return Variable(as_array(acc, xp) if xp is np else xp.asarray(acc))
