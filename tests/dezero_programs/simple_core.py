"""A DeZero program in the book's style (steps 28-29): the simple core, whose gradients are arrays."""
import numpy as np

import dezero
from dezero import Variable

if not dezero.is_simple_core:
    from dezero.core_simple import Variable
    from dezero.core_simple import setup_variable
    setup_variable()


def bowl(x0, x1):
    return (x0 - 3) ** 2 + 10 * (x1 + 1) ** 2 + x0 * x1


x0 = Variable(np.array(0.0))
x1 = Variable(np.array(0.0))
for i in range(200):
    y = bowl(x0, x1)
    x0.cleargrad()
    x1.cleargrad()
    y.backward()
    x0.data -= 0.02 * x0.grad
    x1.data -= 0.02 * x1.grad
    if i % 50 == 0:
        print("descent", i, x0, x1, isinstance(x0.grad, dezero.Variable))


def g(x):
    return x ** 4 - 3 * x ** 2 + x


x = Variable(np.array(2.0))
for i in range(6):
    y = g(x)
    x.cleargrad()
    y.backward()
    x.data -= x.grad / (12 * x.data ** 2 - 6)
    print("newton", i, x)
