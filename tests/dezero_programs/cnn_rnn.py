"""A DeZero program in the book's style (steps 54-60): dropout and test mode, im2col, convolution and
pooling, a small CNN, and an LSTM trained with truncated backpropagation through time."""
import numpy as np

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import Model, test_mode
from dezero.models import Sequential

np.random.seed(3)
x = np.ones(6, dtype=np.float32)
print("dropout train", F.dropout(x, 0.5))
with test_mode():
    print("dropout test", F.dropout(x, 0.5))

img = np.random.rand(2, 3, 7, 7).astype(np.float32)
print("im2col", F.im2col(img, 3, stride=2, pad=1, to_matrix=True).shape,
      F.im2col(img, (5, 3), to_matrix=False).shape)

W = np.random.randn(4, 3, 3, 3).astype(np.float32)
b = np.random.randn(4).astype(np.float32)
xv = dezero.Variable(img)
y = F.conv2d_simple(xv, W, b, stride=1, pad=1)
z = F.pooling(F.relu(y), 2, 2)
F.sum(z * z).backward()
print("conv", y.shape, z.shape, round(float(z.data.sum()), 3), round(float(xv.grad.data.sum()), 3))


class CNN(Model):
    def __init__(self):
        super().__init__()
        self.conv = L.Conv2d(4, kernel_size=3, pad=1)
        self.fc = L.Linear(3)

    def __call__(self, x):
        h = F.average_pooling(F.relu(self.conv(x)), 2, 2)
        return self.fc(F.reshape(h, (len(x), -1)))


cnn = CNN()
opt = dezero.optimizers.MomentumSGD(0.05).setup(cnn)
t = np.array([0, 2])
for i in range(20):
    loss = F.softmax_cross_entropy(cnn(img), t)
    cnn.cleargrads()
    loss.backward()
    opt.update()
print("cnn", round(float(loss.data), 4), F.accuracy(cnn(img), t))

seq = np.sin(np.linspace(0, 6, 60)).astype(np.float32).reshape(-1, 1)
rnn = Sequential(L.LSTM(8), L.Linear(1))
opt = dezero.optimizers.Adam(0.01).setup(rnn)
for epoch in range(3):
    for layer in rnn.layers:
        if hasattr(layer, "reset_state"):
            layer.reset_state()
    loss, count = 0, 0
    for x_t, t_t in zip(seq[:-1], seq[1:]):
        loss += F.mean_squared_error(rnn(x_t.reshape(1, 1)), t_t.reshape(1, 1))
        count += 1
        if count % 10 == 0:
            rnn.cleargrads()
            loss.backward()
            loss.unchain_backward()
            opt.update()
    print("lstm epoch %d, loss %.6f" % (epoch + 1, float(loss.data) / count))
