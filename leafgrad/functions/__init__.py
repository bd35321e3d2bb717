"""The differentiable functions: ``import leafgrad.functions as F``.

Everything DeZero 0.0.13's ``dezero.functions`` offers, with the same names,
signatures and defaults, plus ``mean var abs maximum minimum where concat
stack split logsumexp gelu elu softplus silu layer_norm scaled_dot_product_attention``
and more.

Each module lists its public names in its own ``__all__``; this package
re-exports them all, so a new function is added in its module alone (and in
the gradient-check table of ``tests/test_gradients.py``).
"""
from leafgrad.core import add, div, mul, neg, pow, rdiv, rsub, sub  # the operators of Variable
from leafgrad.functions import activation, attention, conv, linalg, loss, math, metrics, nn, normalization, reduce, shape
from leafgrad.functions.math import *  # noqa: F401,F403
from leafgrad.functions.activation import *  # noqa: F401,F403
from leafgrad.functions.shape import *  # noqa: F401,F403
from leafgrad.functions.reduce import *  # noqa: F401,F403
from leafgrad.functions.linalg import *  # noqa: F401,F403
from leafgrad.functions.nn import *  # noqa: F401,F403
from leafgrad.functions.normalization import *  # noqa: F401,F403
from leafgrad.functions.loss import *  # noqa: F401,F403
from leafgrad.functions.metrics import *  # noqa: F401,F403
from leafgrad.functions.conv import *  # noqa: F401,F403
from leafgrad.functions.attention import *  # noqa: F401,F403

__all__ = ["add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow"]
for _module in (math, activation, shape, reduce, linalg, nn, normalization, loss, metrics, conv, attention):
    __all__ += [_name for _name in _module.__all__ if _name not in __all__]
del _module
