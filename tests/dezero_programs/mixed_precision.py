"""A DeZero program in the book's style (steps 44-46): float64 data through float32 layers, optimizers."""
import numpy as np

import dezero.functions as F
import dezero.layers as L
from dezero import optimizers
from dezero.models import MLP

np.random.seed(1)
x = np.random.rand(50, 2)
y = np.cos(3 * x[:, :1]) * x[:, 1:] + 0.1 * np.random.rand(50, 1)

l1, l2 = L.Linear(8), L.Linear(1)
for i in range(300):
    loss = F.mean_squared_error(y, l2(F.sigmoid(l1(x))))
    l1.cleargrads()
    l2.cleargrads()
    loss.backward()
    for layer in (l1, l2):
        for p in layer.params():
            p.data -= 0.3 * p.grad.data
    if i % 100 == 0:
        print("by hand", i, loss, l1.W.dtype, l1.W.grad.dtype)

for name, opt in (("SGD", optimizers.SGD(0.3)), ("MomentumSGD", optimizers.MomentumSGD(0.1)),
                  ("AdaGrad", optimizers.AdaGrad(0.05)), ("AdaDelta", optimizers.AdaDelta()),
                  ("Adam", optimizers.Adam(0.01))):
    model = MLP((8, 1))
    opt.setup(model)
    for i in range(200):
        loss = F.mean_squared_error(model(x), y)
        model.cleargrads()
        loss.backward()
        opt.update()
    print(name, loss)
