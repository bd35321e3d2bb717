"""The differentiable functions: ``import leafgrad.functions as F``.

Everything DeZero 0.0.13's ``dezero.functions`` offers, with the same names,
signatures and defaults, plus ``mean var abs maximum minimum where concat
stack split logsumexp gelu elu softplus silu layer_norm`` and more.
"""
from leafgrad.core import add, div, mul, neg, pow, rdiv, rsub, sub
from leafgrad.functions.activation import (
    elu, gelu, leaky_relu, log_softmax, relu, sigmoid_simple, silu, softmax, softmax_simple, softplus,
)
from leafgrad.functions.linalg import matmul
from leafgrad.functions.loss import (
    binary_cross_entropy, mean_squared_error, mean_squared_error_simple, sigmoid_cross_entropy,
    softmax_cross_entropy, softmax_cross_entropy_simple,
)
from leafgrad.functions.math import (
    abs, clip, cos, exp, log, maximum, minimum, sigmoid, sin, square, tanh, where,
)
from leafgrad.functions.metrics import accuracy
from leafgrad.functions.nn import dropout, embed_id, linear, linear_simple
from leafgrad.functions.normalization import batch_norm, batch_nrom, layer_norm
from leafgrad.functions.reduce import average, logsumexp, max, mean, min, sum, var
from leafgrad.functions.shape import (
    broadcast_to, concat, expand_dims, flatten, get_item, reshape, split, stack, sum_to, transpose,
)

__all__ = [
    # arithmetic (also the operators of Variable)
    "add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow",
    # element-wise math
    "square", "exp", "log", "sin", "cos", "tanh", "abs", "clip", "maximum", "minimum", "where",
    # activations
    "sigmoid", "sigmoid_simple", "relu", "leaky_relu", "softmax", "softmax_simple", "log_softmax",
    "gelu", "elu", "softplus", "silu",
    # shape
    "reshape", "transpose", "broadcast_to", "sum_to", "get_item", "expand_dims", "flatten",
    "concat", "stack", "split",
    # reductions
    "sum", "max", "min", "mean", "average", "var", "logsumexp",
    # linear algebra and layers' functions
    "matmul", "linear", "linear_simple", "dropout", "embed_id",
    "batch_norm", "batch_nrom", "layer_norm",
    # losses and metrics
    "mean_squared_error", "mean_squared_error_simple", "softmax_cross_entropy",
    "softmax_cross_entropy_simple", "sigmoid_cross_entropy", "binary_cross_entropy", "accuracy",
    # convolution
    "conv2d", "conv2d_simple", "deconv2d", "pooling", "pooling_simple", "average_pooling", "im2col", "col2im",
]

# The convolution family (leafgrad/functions/conv.py) is exported below.
from leafgrad.functions.conv import (  # noqa: E402
    average_pooling, col2im, conv2d, conv2d_simple, deconv2d, im2col, pooling, pooling_simple,
)
