"""A DeZero program reading MNIST through dezero.datasets, transforms and a DataLoader (cache only)."""
import numpy as np

import dezero
from dezero.transforms import Compose, Flatten, ToFloat, Normalize

train_set = dezero.datasets.MNIST(train=True)
x, t = train_set[0]
print("example", x.shape, x.dtype, int(t), float(x.max()))
raw = dezero.datasets.MNIST(train=False, transform=None)
print("raw", raw.data.shape, raw.data.dtype, len(raw))
loader = dezero.dataloaders.DataLoader(train_set, batch_size=2, shuffle=False)
for x, t in loader:
    print("batch", x.shape, x.dtype, t.tolist())
f = Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)])
print("same", bool(np.array_equal(f(raw.data[0]), dezero.datasets.MNIST(train=False)[0][0])))
print("cache", dezero.utils.get_file.__module__)
