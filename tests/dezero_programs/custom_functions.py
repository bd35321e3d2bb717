"""A DeZero program with its own Functions, imported the way published DeZero code imports them:
``from dezero.functions import Function, Variable, as_variable, as_array`` (re-exported names)."""
import numpy as np

from dezero.functions import Function, Variable, as_variable, as_array
import dezero.functions as F
from dezero.core import Add, Mul
import dezero


class Swish(Function):
    """x * sigmoid(x), backward from the kept input (reads self.inputs, the book's way)."""

    def forward(self, x):
        return x / (1 + np.exp(-x))

    def backward(self, gy):
        x, = self.inputs
        s = F.sigmoid(x)
        return gy * (s + x * s * (1 - s))


class Exp(Function):
    """DeZero's own style: backward reads the output through its weak reference, self.outputs[0]()."""

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y


class Softplus(F.Sigmoid):
    """A subclass of DeZero's Sigmoid class whose backward also reads self.outputs[0]()."""

    def forward(self, x):
        return np.log1p(np.exp(x))

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * (1 - F.exp(-y))


class SplitHalves(Function):
    """Two outputs: the first and second half of the last axis."""

    def forward(self, x):
        n = x.shape[-1] // 2
        return x[..., :n], x[..., n:]

    def backward(self, g0, g1):
        return Variable(np.concatenate([g0.data, g1.data], axis=-1))


def swish(x):
    return Swish()(as_variable(x))


np.random.seed(0)
x = np.random.rand(16, 4)
t = (x[:, :2] * x[:, 2:]).sum(axis=1, keepdims=True)
W = Variable(0.1 * np.random.randn(4, 6))
b = Variable(np.zeros(6))
V = Variable(0.1 * np.random.randn(3, 1))
lr = 0.5
for i in range(60):
    a = swish(F.matmul(x, W) + b)
    p, q = SplitHalves()(a)
    y = F.matmul(p * q, V) + 0.01 * Exp()(-Softplus()(p))
    loss = F.mean_squared_error(y, as_array(t))
    for param in (W, b, V):
        param.cleargrad()
    loss.backward()
    for param in (W, b, V):
        param.data -= lr * param.grad.data
    if i % 20 == 0 or i == 59:
        print("step", i, float(loss.data))
f = loss.creator
print("classes", isinstance((1 + W).creator, Add), isinstance((W * 3).creator, Mul), type(f).__name__)
print("version", dezero.__version__)
