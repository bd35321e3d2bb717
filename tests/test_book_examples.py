"""The book's training examples, run as tests (``import leafgrad as dezero``)."""
import math

import numpy as np
import pytest

import leafgrad as dezero
import leafgrad.functions as F
import leafgrad.layers as L
from leafgrad import optimizers, test_mode
from leafgrad.models import MLP, Model

try:
    from leafgrad.datasets import get_spiral
except ImportError:  # datasets are written separately; same draws as DeZero's get_spiral
    def get_spiral(train=True):
        np.random.seed(seed=1984 if train else 2020)
        num_data, num_class = 100, 3
        x = np.zeros((num_data * num_class, 2), dtype=np.float32)
        t = np.zeros(num_data * num_class, dtype=np.int64)
        for j in range(num_class):
            for i in range(num_data):
                rate = i / num_data
                theta = j * 4.0 + 4.0 * rate + np.random.randn() * 0.2
                x[num_data * j + i] = [rate * np.sin(theta), rate * np.cos(theta)]
                t[num_data * j + i] = j
        indices = np.random.permutation(num_data * num_class)
        return x[indices], t[indices]


def sin_curve(train=True):
    """``SinCurve``'s arrays (from leafgrad.datasets when it is there): value -> next value."""
    try:
        from leafgrad.datasets import SinCurve
        ds = SinCurve(train=train)
        return ds.data, ds.label
    except ImportError:
        x = np.linspace(0, 2 * np.pi, 1000)
        noise = np.random.uniform(-0.05, 0.05, size=x.shape)
        y = np.sin(x) + noise if train else np.cos(x)
        return y[:-1, np.newaxis], y[1:, np.newaxis]


def test_spiral_mlp_reaches_the_books_loss():
    """Step 48: MLP((10, 3)), SGD(1.0), 300 epochs of batch 30; DeZero prints 1.1269 at epoch 1, 0.1296 at 300."""
    max_epoch, batch_size, hidden_size, lr = 300, 30, 10, 1.0
    x, t = get_spiral(train=True)
    model = MLP((hidden_size, 3))
    optimizer = optimizers.SGD(lr).setup(model)
    data_size = len(x)
    max_iter = math.ceil(data_size / batch_size)
    history = []
    for epoch in range(max_epoch):
        index = np.random.permutation(data_size)
        sum_loss = 0.0
        for i in range(max_iter):
            batch_index = index[i * batch_size:(i + 1) * batch_size]
            batch_x, batch_t = x[batch_index], t[batch_index]
            y = model(batch_x)
            loss = F.softmax_cross_entropy(y, batch_t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(batch_t)
        history.append(sum_loss / data_size)
    # Same data, same initial weights, same shuffles as DeZero: the first epoch agrees to float32 precision.
    assert history[0] == pytest.approx(1.1269415, rel=1e-4)
    assert 0.12 <= history[-1] <= 0.135
    assert model.l0.W.dtype == np.float32
    # and the trained model classifies the spiral
    with dezero.no_grad():
        acc = float(F.accuracy(model(x), t).data)
    assert acc > 0.9


class BetterRNN(Model):
    """Step 60's model: an LSTM and a Linear head."""

    def __init__(self, hidden_size, out_size):
        super().__init__()
        self.rnn = L.LSTM(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


def test_lstm_fits_a_sine_curve():
    """Step 60 (shortened to 25 epochs): truncated BPTT on SinCurve, then predict the cosine curve."""
    np.random.seed(0)
    data, label = sin_curve(train=True)
    batch_size, bptt_length, hidden_size = 30, 30, 100
    seqlen = len(data)
    jump = seqlen // batch_size
    max_iter = seqlen // batch_size
    model = BetterRNN(hidden_size, 1)
    optimizer = optimizers.Adam().setup(model)
    history = []
    for epoch in range(25):
        model.reset_state()
        loss, count = 0, 0
        for it in range(max_iter):  # SeqDataLoader's batches
            idx = [(k * jump + it) % seqlen for k in range(batch_size)]
            y = model(data[idx])
            loss += F.mean_squared_error(y, label[idx])
            count += 1
            if count % bptt_length == 0 or count == seqlen:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()
        history.append(float(loss.data) / count)
    assert history[-1] < history[0] / 10
    assert history[-1] < 0.05

    xs, ts = sin_curve(train=False)
    model.reset_state()
    preds = []
    with dezero.no_grad():
        for x in xs:
            preds.append(model(np.array(x).reshape(1, 1)).data.item())
    err = np.mean((np.array(preds[50:]) - ts[50:, 0]) ** 2)
    assert err < 0.02, err


def bar_images(n, seed):
    """8x8 images holding a horizontal (class 0) or a vertical (class 1) bar, plus noise."""
    rng = np.random.RandomState(seed)
    x = rng.rand(n, 1, 8, 8).astype(np.float32) * 0.3
    t = rng.randint(0, 2, n)
    pos = rng.randint(1, 7, n)
    for k in range(n):
        if t[k] == 0:
            x[k, 0, pos[k], 1:7] += 1.0
        else:
            x[k, 0, 1:7, pos[k]] += 1.0
    return x, t


class SmallCNN(Model):
    def __init__(self):
        super().__init__()
        self.conv1 = L.Conv2d(8, kernel_size=3, stride=1, pad=1)
        self.bn1 = L.BatchNorm()
        self.fc = L.Linear(2)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.pooling(x, 2, 2)
        x = F.dropout(F.reshape(x, (x.shape[0], -1)), 0.2)
        return self.fc(x)


def test_small_cnn_trains_on_generated_images():
    np.random.seed(0)
    x, t = bar_images(128, seed=1)
    x_test, t_test = bar_images(64, seed=2)
    model = SmallCNN()
    optimizer = optimizers.Adam(alpha=0.01).setup(model)
    losses = []
    for epoch in range(6):
        index = np.random.permutation(len(x))
        for i in range(0, len(x), 32):
            bi = index[i:i + 32]
            loss = F.softmax_cross_entropy(model(x[bi]), t[bi])
            model.cleargrads()
            loss.backward()
            optimizer.update()
            losses.append(float(loss.data))
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) / 2
    with test_mode(), dezero.no_grad():
        acc = float(F.accuracy(model(x_test), t_test).data)
    assert acc >= 0.95
    assert all(p.data.dtype == np.float32 for p in model.params())


def test_test_mode_switches_dropout_and_batch_norm():
    np.random.seed(0)
    model = SmallCNN()
    x, _ = bar_images(16, seed=3)
    a, b = model(x), model(x)  # training mode: fresh dropout masks, batch statistics
    assert not np.array_equal(a.data, b.data)
    mean = model.bn1.avg_mean.data.copy()
    with test_mode():
        c, d = model(x), model(x)
        single = model(x[:1])
    np.testing.assert_array_equal(c.data, d.data)  # no dropout
    np.testing.assert_array_equal(model.bn1.avg_mean.data, mean)  # running statistics untouched
    # in test mode each example is normalized with the running statistics, independently of its batch
    np.testing.assert_allclose(single.data, c.data[:1], rtol=1e-5, atol=1e-6)

    h = np.ones((4, 100), np.float32)
    y = F.dropout(h, 0.5)
    assert set(np.unique(y.data)) <= {0.0, 2.0} and (y.data == 0).any()
    with test_mode():
        np.testing.assert_array_equal(F.dropout(h, 0.5).data, h)
