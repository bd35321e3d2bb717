"""A DeZero program in the book's style (steps 48-50): the spiral data set, MLP, SGD, DataLoader."""
import math
import sys

import numpy as np

import dezero
import dezero.functions as F
from dezero import DataLoader, optimizers
from dezero.models import MLP

max_epoch = int(sys.argv[1]) if len(sys.argv) > 1 else 300
batch_size = 30
hidden_size = 10
lr = 1.0

train_set = dezero.datasets.Spiral(train=True)
train_loader = DataLoader(train_set, batch_size)
model = MLP((hidden_size, 3))
optimizer = optimizers.SGD(lr).setup(model)

for epoch in range(max_epoch):
    sum_loss = 0
    for x, t in train_loader:
        y = model(x)
        loss = F.softmax_cross_entropy(y, t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        sum_loss += float(loss.data) * len(t)
    print("epoch %d, loss %.4f" % (epoch + 1, sum_loss / len(train_set)))
