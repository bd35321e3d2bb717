"""A DeZero program in the book's style (steps 9-28): a Function subclass, Taylor series, Rosenbrock."""
import math
import sys

import numpy as np

import dezero
from dezero import Function, Variable


class Sin(Function):
    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        x = self.inputs[0].data
        return gy * np.cos(x)


def sin(x):
    return Sin()(x)


def my_sin(x, threshold=0.0001):
    y = 0
    for i in range(100000):
        c = (-1) ** i / math.factorial(2 * i + 1)
        t = c * x ** (2 * i + 1)
        y = y + t
        if abs(t.data) < threshold:
            break
    return y


def rosenbrock(x0, x1):
    return 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2


if __name__ == "__main__":
    x = Variable(np.array(np.pi / 4))
    y = sin(x)
    y.backward()
    print("sin", y.data, x.grad)

    x = Variable(np.array(np.pi / 4))
    y = my_sin(x)
    y.backward()
    print("taylor", y.data, x.grad)

    x0 = Variable(np.array(0.0))
    x1 = Variable(np.array(2.0))
    lr = 0.001
    iters = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for i in range(iters):
        y = rosenbrock(x0, x1)
        x0.cleargrad()
        x1.cleargrad()
        y.backward()
        x0.data -= lr * x0.grad.data
        x1.data -= lr * x1.grad.data
    print("rosenbrock", x0.data, x1.data)
    print("isinstance", isinstance(x0, dezero.Variable))
