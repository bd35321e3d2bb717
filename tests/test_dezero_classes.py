"""DeZero's Function classes, exported from leafgrad.functions under its names, with its constructor arguments."""
import numpy as np
import pytest

import leafgrad
import leafgrad.functions as F
from leafgrad import Variable, test_mode

CONV = leafgrad.functions  # DeZero keeps the conv classes in dezero.functions_conv (compat maps it here too)

x = np.random.RandomState(0).randn(2, 3)
CASES = [  # (class name, constructor args, call args, the function it must agree with)
    ("Sin", (), (x,), lambda: F.sin(x)), ("Cos", (), (x,), lambda: F.cos(x)),
    ("Tanh", (), (x,), lambda: F.tanh(x)), ("Exp", (), (x,), lambda: F.exp(x)),
    ("Log", (), (np.abs(x),), lambda: F.log(np.abs(x))), ("Sigmoid", (), (x,), lambda: F.sigmoid(x)),
    ("ReLU", (), (x,), lambda: F.relu(x)), ("Softmax", (), (x,), lambda: F.softmax(x)),
    ("Softmax", (0,), (x,), lambda: F.softmax(x, 0)), ("LogSoftmax", (1,), (x,), lambda: F.log_softmax(x)),
    ("LeakyReLU", (0.1,), (x,), lambda: F.leaky_relu(x, 0.1)),
    ("Linear", (), (x, x.T, None), lambda: F.linear(x, x.T)),
    ("Linear", (), (x, x.T, np.ones(2)), lambda: F.linear(x, x.T, np.ones(2))),
    ("MatMul", (), (x, x.T), lambda: F.matmul(x, x.T)), ("Reshape", ((3, 2),), (x,), lambda: F.reshape(x, (3, 2))),
    ("Transpose", (), (x,), lambda: F.transpose(x)), ("Transpose", ((1, 0),), (x,), lambda: F.transpose(x, (1, 0))),
    ("GetItem", (1,), (x,), lambda: F.get_item(x, 1)),
    ("GetItemGrad", (1, (2, 3)), (np.ones(3),), lambda: np.array([[0, 0, 0], [1, 1, 1.]])),
    ("BroadcastTo", ((4, 2, 3),), (x,), lambda: F.broadcast_to(x, (4, 2, 3))),
    ("SumTo", ((1, 3),), (x,), lambda: F.sum_to(x, (1, 3))), ("Sum", (None, False), (x,), lambda: F.sum(x)),
    ("Sum", (0, True), (x,), lambda: F.sum(x, 0, True)), ("Max", (), (x,), lambda: F.max(x)),
    ("Min", (1, True), (x,), lambda: F.min(x, 1, True)), ("Clip", (-0.5, 0.5), (x,), lambda: F.clip(x, -0.5, 0.5)),
    ("MeanSquaredError", (), (x, 0 * x), lambda: F.mean_squared_error(x, 0 * x)),
    ("SoftmaxCrossEntropy", (), (x, np.array([0, 2])), lambda: F.softmax_cross_entropy(x, np.array([0, 2]))),
]


@pytest.mark.parametrize("name,init,args,ref", CASES, ids=[c[0] + str(c[1]) for c in CASES])
def test_function_classes_under_dezero_names(name, init, args, ref):
    y = getattr(F, name)(*init)(*args)
    assert isinstance(y, Variable)
    expected = ref()
    np.testing.assert_allclose(y.data, getattr(expected, "data", expected), rtol=1e-12)


def test_function_class_subclass_and_backward():
    class HalfSoftmax(F.Softmax):
        def forward(self, x):
            return super().forward(x) * 0.5
    v = Variable(x)
    HalfSoftmax(axis=1)(v).backward()
    assert v.grad.shape == x.shape


def test_batchnorm_class_updates_running_averages():
    mean, var = np.zeros(3), np.ones(3)
    f = F.BatchNorm(mean, var, 0.9, 2e-5)
    y = f(Variable(x), np.ones(3), np.zeros(3))
    assert isinstance(y, Variable) and not np.all(mean == 0)   # in place, as DeZero's avg_mean/avg_var
    assert f.avg_mean is mean and f.avg_var is var


@pytest.mark.parametrize("name", ["batch_norm", "batch_nrom"])
def test_batch_norm_in_test_mode_returns_a_variable(name):
    args = (x.astype(np.float32), *(np.ones(3, np.float32),) * 2, np.zeros(3, np.float32), np.ones(3, np.float32))
    with test_mode():
        y = getattr(F, name)(*args)
    assert isinstance(y, Variable) and y.data.dtype == np.float32


def test_conv_classes_with_dezero_constructors():
    rng = np.random.RandomState(0)
    img, W = rng.randn(1, 2, 4, 4), rng.randn(3, 2, 3, 3)
    conv = CONV.Conv2d(1, 1)
    y = conv(img, W, None)                                   # b=None as an input, as DeZero's conv2d passes it
    np.testing.assert_allclose(y.data, F.conv2d(img, W, None, 1, 1).data)
    gW = CONV.Conv2DGradW(conv)(img, np.ones(y.shape))       # built from the Conv2d that ran
    assert gW.shape == W.shape
    assert CONV.Deconv2d(1, 0, None)(rng.randn(1, 3, 4, 4), W, None).shape == (1, 2, 6, 6)
    pool = CONV.Pooling(2, 2, 0)
    p = pool(img)
    assert pool.indexes.shape == (1, 2, 2, 2)               # argmax within each window
    assert CONV.Pooling2DGrad(pool)(np.ones(p.shape)).shape == img.shape
    np.testing.assert_allclose(CONV.Pooling2DWithIndexes(pool)(img).data, p.data)
    assert CONV.AveragePooling(2, 2, 0)(img).shape == (1, 2, 2, 2)
    assert CONV.Im2col(3, 1, 1, True)(img).shape == (16, 18)
    assert CONV.Col2im((1, 2, 4, 4), 3, 1, 1, True)(np.ones((16, 18))).shape == (1, 2, 4, 4)
