"""A DeZero program in the book's style (steps 33-36): Newton's method and higher-order derivatives."""
import numpy as np

from dezero import Variable
import dezero.functions as F


def f(x):
    return x ** 4 - 2 * x ** 2


x = Variable(np.array(2.0))
for i in range(10):
    y = f(x)
    x.cleargrad()
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    gx.backward()
    gx2 = x.grad
    x.data -= gx.data / gx2.data
print("newton", x.data)

x = Variable(np.array(1.0))
y = F.tanh(x)
x.name = "x"
y.name = "y"
y.backward(create_graph=True)
for i in range(3):
    gx = x.grad
    x.cleargrad()
    gx.backward(create_graph=True)
print("tanh4", x.grad.data)

x = Variable(np.linspace(-np.pi, np.pi, 5))
y = F.sin(x)
y.backward(create_graph=True)
logs = [y.data]
for i in range(3):
    logs.append(x.grad.data)
    gx = x.grad
    x.cleargrad()
    gx.backward(create_graph=True)
print("sin_derivs", np.array(logs).sum(axis=1))
