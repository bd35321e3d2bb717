"""The differentiable functions: ``import leafgrad.functions as F``."""
from leafgrad.core import add, div, mul, neg, pow, rdiv, rsub, sub
from leafgrad.functions.linalg import matmul
from leafgrad.functions.math import cos, exp, log, sigmoid, sin, square, tanh
from leafgrad.functions.reduce import max, min, sum
from leafgrad.functions.shape import broadcast_to, get_item, reshape, sum_to, transpose

__all__ = [
    "add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow",
    "square", "exp", "log", "sin", "cos", "tanh", "sigmoid",
    "reshape", "transpose", "broadcast_to", "sum_to", "get_item",
    "sum", "max", "min", "matmul",
]
