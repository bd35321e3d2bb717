"""A DeZero program that calls backward() twice on the same graph: the gradients accumulate."""
import numpy as np

from dezero import Variable
import dezero.functions as F

x = Variable(np.array(3.0))
y = x ** 3 - 2 * x          # dy/dx = 3x^2 - 2 = 25
y.backward()
print("first", float(x.grad.data))
y.backward()                # DeZero keeps the graph: the gradient adds up
print("second", float(x.grad.data))

a = Variable(np.array([1.0, 2.0]))
b = Variable(np.array([0.5, -1.0]))
z = F.sum(F.exp(a) * b + F.sin(a * b))
z.backward()
z.backward()
print("a", a.grad.data.tolist())
print("b", b.grad.data.tolist())
a.cleargrad()
z.backward()
print("a again", a.grad.data.tolist())
