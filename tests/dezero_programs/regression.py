"""A DeZero program in the book's style (steps 42-43): linear regression with matmul, no_grad."""
import numpy as np

import dezero
from dezero import Variable
import dezero.functions as F
from dezero.core import using_config

np.random.seed(0)
x = np.random.rand(100, 1)
y = 5 + 2 * x + np.random.rand(100, 1)
x, y = Variable(x), Variable(y)

W = Variable(np.zeros((1, 1)))
b = Variable(np.zeros(1))


def predict(x):
    return F.matmul(x, W) + b


def mean_squared_error(x0, x1):
    diff = x0 - x1
    return F.sum(diff ** 2) / len(diff)


lr = 0.1
for i in range(100):
    y_pred = predict(x)
    loss = mean_squared_error(y, y_pred)
    W.cleargrad()
    b.cleargrad()
    loss.backward()
    W.data -= lr * W.grad.data
    b.data -= lr * b.grad.data
print("fit", W.data.item(), b.data.item(), loss.data.item())

with dezero.no_grad():
    z = predict(x)
print("no_grad_creator", z.creator is None)
with using_config("enable_backprop", False):
    z = F.exp(predict(x))
print("config_creator", z.creator is None)
