"""ONNX export: ONNX Runtime's outputs equal leafgrad's, at the exported batch size and another one."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import leafgrad.functions as F  # noqa: E402
import leafgrad.layers as L  # noqa: E402
from leafgrad import Function, Parameter, Variable, models  # noqa: E402
from leafgrad.config import no_grad, test_mode  # noqa: E402
from leafgrad.onnx import ExportError, export  # noqa: E402

# float32 throughout.  ONNX Runtime sums and multiplies in another order than NumPy: the outputs agree
# to 1e-5 relative, measured against the largest output (an output near zero carries the rounding of
# the terms that cancelled in it, not of itself).
RTOL = 1e-5


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def leafgrad_outputs(model, *xs):
    with test_mode(), no_grad():
        ys = model(*xs)
    return [y.data for y in (ys if isinstance(ys, (list, tuple)) else [ys])]


def assert_same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * float(np.abs(want).max()))


def check_export(model, tmp_path, *batches, **kwargs):
    """Export at ``batches[0]``; ONNX Runtime equals leafgrad on every batch (of various sizes)."""
    path = tmp_path / "model.onnx"
    proto = export(model, batches[0], str(path), **kwargs)
    if path.stat().st_size < 1 << 20:  # (export checked it before writing; VGG16's 150 MB take seconds more)
        onnx.checker.check_model(str(path), full_check=True)
    s = session(path)
    names = [i.name for i in s.get_inputs()]
    assert s.get_inputs()[0].shape[0] == "batch"
    for x in batches:
        xs = x if isinstance(x, tuple) else (x,)
        for got, want in zip(s.run(None, dict(zip(names, xs))), leafgrad_outputs(model, *xs)):
            assert_same(got, want)
    return proto


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_mlp(tmp_path):
    model = models.MLP([16, 8, 3])
    proto = check_export(model, tmp_path, randn(4, 5), randn(9, 5, seed=1), randn(1, 5, seed=2))
    assert {i.name for i in proto.graph.initializer} == {name for name, _ in model.named_params()}
    assert proto.opset_import[0].version == 18


def test_small_cnn(tmp_path):
    check_export(models.SmallCNN(hidden_size=20, out_size=4), tmp_path, randn(2, 3, 12, 12), randn(5, 3, 12, 12, seed=1))


def test_gpt(tmp_path):
    model = models.GPT(13, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.1, bias=True, seed=0)
    rng = np.random.default_rng(0)
    check_export(model, tmp_path, rng.integers(0, 13, (2, 8)), rng.integers(0, 13, (3, 8)))


def test_resnet_block_with_running_statistics(tmp_path):
    block = models.BuildingBlock(2, 8, 4, 16, 2)  # BottleneckA (projection shortcut) then BottleneckB
    x = randn(2, 8, 8, 8)
    block(x)  # creates the weights
    rng = np.random.default_rng(3)
    for layer in (block.a, block.b1):
        for name in ("bn1", "bn2", "bn3") + (("bn4",) if hasattr(layer, "bn4") else ()):
            bn = getattr(layer, name)
            bn.avg_mean.data[...] = rng.standard_normal(bn.avg_mean.shape)
            bn.avg_var.data[...] = rng.uniform(0.5, 2.0, bn.avg_var.shape)
            bn.gamma.data[...] = rng.uniform(0.5, 1.5, bn.gamma.shape)
    check_export(block, tmp_path, x, randn(3, 8, 8, 8, seed=1))


def test_vgg16_small_input(tmp_path):
    check_export(models.VGG16(), tmp_path, randn(1, 3, 32, 32), randn(2, 3, 32, 32, seed=1))


class Zoo(models.Model):
    """Most functions with an ONNX form, in one model of two inputs and two outputs."""

    def __init__(self):
        super().__init__()
        self.conv = L.Conv2d(4, kernel_size=3, stride=2, pad=1)
        self.deconv = L.Deconv2d(3, kernel_size=3, stride=2, pad=1)
        self.bn = L.BatchNorm()
        self.ln = L.LayerNorm(6)
        self.fc = L.Linear(6)
        self.fc_nobias = L.Linear(5, nobias=True)
        self.emb = L.EmbedID(7, 6)

    def forward(self, img, ids):
        h = F.leaky_relu(self.bn(self.conv(img)), 0.1)                      # (N, 4, 4, 4)
        h = F.average_pooling(h, 2, 1, 1)[:, :, 1:, :4] + F.pooling(F.tanh(h), 3, 1, 1)
        d = F.elu(self.deconv(h))                                          # (N, 3, 9, 9)
        d = F.concat(F.split(d, [1], axis=1)[::-1], axis=1)
        d = F.softmax(d, axis=(2, 3)) + F.log_softmax(d, axis=1) * 0.5 + F.sigmoid(d) ** 2
        v = F.reshape(F.transpose(d, (0, 2, 3, 1)), (d.shape[0], -1))      # (N, 243)
        v = F.gelu(self.fc(v)) + F.gelu(self.fc(v), approximate="tanh") + self.emb(ids).sum(axis=1)
        v = self.ln(F.clip(v, -2.0, 2.0) - F.mean(v, axis=1, keepdims=True))
        v = F.stack([v, F.exp(-F.abs(v)), F.silu(v) / 3.0], axis=1)        # (N, 3, 6)
        mask = np.arange(6) % 2 == 0
        w = F.where(mask, v, 1.0 - v) + F.broadcast_to(F.max(v, axis=2, keepdims=True), v.shape)
        w = F.dropout(w) + F.sum_to(w, (1, 3, 6)) + F.log(F.softplus(w) + 1.0) + F.cos(w) * F.sin(w)
        q = F.expand_dims(w, 1)                                            # (N, 1, 3, 6)
        a = F.scaled_dot_product_attention(q, q, q, mask=np.tril(np.ones((3, 3), bool)))
        out = self.fc_nobias(F.flatten(a)) + 2.0 / (F.sum(w, axis=(1, 2))[:, None] ** 2 + 1.0)
        return F.maximum(out, -out * 0.5), F.logsumexp(w, axis=2) - F.min(w, axis=2) + w[:, ::-1, 1]


def test_many_functions(tmp_path):
    rng = np.random.default_rng(0)
    model = Zoo()
    img, ids = randn(3, 2, 7, 7), rng.integers(0, 7, (3, 4))
    model(img, ids)
    model.bn.avg_mean.data[...] = rng.standard_normal(4)
    model.bn.avg_var.data[...] = rng.uniform(0.5, 2.0, 4)
    proto = check_export(model, tmp_path, (img, ids), (randn(5, 2, 7, 7, seed=1), rng.integers(0, 7, (5, 4))),
                         input_names=["image", "ids"], output_names=["y", "z"], metadata={"note": "zoo"})
    assert [o.name for o in proto.graph.output] == ["y", "z"]
    assert {p.key: p.value for p in proto.metadata_props} == {"note": "zoo"}


def test_function_without_form_is_named(tmp_path):
    class Twice(Function):
        retain_inputs = ()

        def forward(self, x):
            return 2 * x

        def backward(self, gy):
            return 2 * gy

    W = Parameter(randn(3, 3))
    path = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="Twice has no ONNX form.*docs/internals.md"):
        export(lambda x: Twice()(F.matmul(x, W)), randn(2, 3), str(path))
    assert not path.exists()


def test_input_not_reaching_the_output(tmp_path):
    W = Parameter(randn(3, 3))
    with pytest.raises(ExportError, match="do not depend on input 'x'"):
        export(lambda x: F.matmul(Variable(x.data.copy()), W), randn(2, 3), None, input_names=["x"])


def test_missing_onnx_names_the_extra(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx":
            raise ImportError("no onnx")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ImportError, match=r"leafgrad\[onnx\]"):
        export(models.MLP([2]), randn(1, 2), None)


# =============================================================================
# leafgrad export RUN_DIR
# =============================================================================
import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

from cli_helpers import assert_one_sentence_error, no_pictures, run, trees, write_csv  # noqa: E402,F401


def raw_features(path, names):
    """The CSV's columns ``names`` as float64 rows: what one reads from the file, unscaled."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r[n]) for n in names] for r in rows])


def test_cli_export_predicts_as_predict_does(tmp_path, capsys, no_pictures):
    data = trees(tmp_path / "trees.csv")
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--data", data, "--target", "kind", "--epochs", "3", "--out", out, "--quiet")[0] == 0
    code, stdout, err = run(capsys, "export", out, "--out", tmp_path / "trees.onnx")
    assert code == 0, err
    assert stdout.startswith(f"wrote {tmp_path / 'trees.onnx'}: raw features height, density")
    assert run(capsys, "predict", out, "--data", data, "--out", tmp_path / "p.csv", "--quiet")[0] == 0
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))

    s = session(tmp_path / "trees.onnx")
    meta = s.get_modelmeta().custom_metadata_map
    features, classes = json.loads(meta["features"]), json.loads(meta["classes"])
    assert features == ["height", "density"] and classes == ["birch", "oak", "pine"]
    assert [i.name for i in s.get_inputs()] == ["features"]
    scores, probabilities = s.run(None, {"features": raw_features(data, features)})
    assert [classes[k] for k in probabilities.argmax(axis=1)] == [r[0] for r in rows]
    assert header[1:] == [f"probability_{c}" for c in classes]
    np.testing.assert_allclose(probabilities, np.array([[float(v) for v in r[1:]] for r in rows]), rtol=RTOL, atol=1e-7)


def test_cli_export_regression_default_path(tmp_path, capsys, no_pictures):
    from cli_helpers import linear
    data = linear(tmp_path / "lin.csv")
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--data", data, "--target", "y", "--task", "regression", "--epochs", "2",
               "--out", out, "--quiet")[0] == 0
    assert run(capsys, "export", out, "--quiet") == (0, "", "")
    assert run(capsys, "predict", out, "--data", data, "--out", tmp_path / "p.csv", "--quiet")[0] == 0
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as f:
        predicted = np.array([float(r[0]) for r in list(csv.reader(f))[1:]])
    s = session(tmp_path / "run" / "model.onnx")
    features = json.loads(s.get_modelmeta().custom_metadata_map["features"])
    scores, = s.run(None, {"features": raw_features(data, features)})
    np.testing.assert_allclose(scores[:, 0], predicted, rtol=RTOL, atol=RTOL * np.abs(predicted).max())


def test_cli_export_bad_runs(tmp_path, capsys, no_pictures):
    code, _, err = run(capsys, "export", tmp_path / "nothing")
    assert_one_sentence_error(code, err, "no run to export there")
    builtin = str(tmp_path / "spiral")
    assert run(capsys, "train", "--epochs", "1", "--out", builtin, "--quiet")[0] == 0
    code, _, err = run(capsys, "export", builtin)
    assert_one_sentence_error(code, err, "built-in data set", "leafgrad export writes runs")
    data = trees(tmp_path / "trees.csv", n=30)
    good = str(tmp_path / "run")
    assert run(capsys, "train", "--data", data, "--target", "kind", "--epochs", "1", "--out", good, "--quiet")[0] == 0
    code, _, err = run(capsys, "export", good, "--out", tmp_path / "no" / "m.onnx")
    assert_one_sentence_error(code, err, "does not exist")
    with np.load(os.path.join(good, "model.npz")) as f:
        weights = {k: f[k] for k in f.files}
    first = sorted(weights)[0]
    np.savez(os.path.join(good, "model.npz"), **{**weights, first: weights[first].T})  # as predict checks it
    code, _, err = run(capsys, "export", good)
    assert_one_sentence_error(code, err, "cannot load the weights of", first, "shape")
    assert not os.path.exists(os.path.join(good, "model.onnx"))
    with open(os.path.join(good, "model.npz"), "wb") as f:
        f.write(b"not a weights file")
    code, _, err = run(capsys, "export", good)
    assert_one_sentence_error(code, err, "cannot load the weights of")
    record = json.loads(open(os.path.join(good, "run.json"), encoding="utf-8").read())
    record["data_info"]["std"][0] = 0.0  # the digest no longer matches: the shared schema refuses it
    with open(os.path.join(good, "run.json"), "w", encoding="utf-8") as f:
        json.dump(record, f)
    code, _, err = run(capsys, "export", good)
    assert_one_sentence_error(code, err, "run.json", "record_sha256")


def test_cli_export_without_onnx(tmp_path, capsys, no_pictures, monkeypatch):
    data = trees(tmp_path / "trees.csv", n=30)
    good = str(tmp_path / "run")
    assert run(capsys, "train", "--data", data, "--target", "kind", "--epochs", "1", "--out", good, "--quiet")[0] == 0
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    code, _, err = run(capsys, "export", good)
    assert_one_sentence_error(code, err, 'pip install "leafgrad[onnx]"', status=1)
    assert not (tmp_path / "run" / "model.onnx").exists()


def test_cli_export_cnn_on_npz_images(tmp_path, capsys, no_pictures):
    rng = np.random.RandomState(0)
    t = np.arange(20) % 2
    x = rng.rand(20, 8, 8).astype(np.float32)
    x[t == 1, :4] += 1.0
    np.savez(tmp_path / "img.npz", x=x, t=np.array(["dark", "bright"])[t])
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--data", tmp_path / "img.npz", "--model", "cnn", "--hidden", "8", "--epochs", "1",
               "--out", out, "--quiet")[0] == 0
    assert run(capsys, "export", out, "--quiet")[0] == 0
    assert run(capsys, "predict", out, "--data", tmp_path / "img.npz", "--out", tmp_path / "p.csv", "--quiet")[0] == 0
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as f:
        want = np.array([[float(v) for v in r[1:]] for r in list(csv.reader(f))[1:]])
    _, probabilities = session(tmp_path / "run" / "model.onnx").run(None, {"features": x.reshape(20, 64).astype(np.float64)})
    np.testing.assert_allclose(probabilities, want, rtol=RTOL, atol=1e-7)


def test_readme_export_snippet(tmp_path, monkeypatch, capsys):
    import os
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md"),
              encoding="utf-8") as f:
        text = f.read()
    start = text.index("```python export_cnn.py\n") + len("```python export_cnn.py\n")
    monkeypatch.chdir(tmp_path)
    exec(compile(text[start:text.index("```", start)], "export_cnn.py", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out == "(5, 10)\n"


def test_cli_standardization_zeroes_constant_features(tmp_path):
    """A run that lists features constant in its training rows (they read as 0): the ONNX form does the same."""
    from leafgrad.cli.export import _pipeline
    from leafgrad.cli.table import DataInfo

    class WithConstant(DataInfo):
        def scale(self, x):
            z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
            z[:, self.constant] = 0.0
            return z.astype(np.float32)

    info = WithConstant(["a", "b", "c"], "t", "classification", ["x", "y"], 2, [1.0, 5.0, -2.0], [2.0, 1.0, 0.5],
                        None, "")
    info.constant = [1]
    model = models.MLP([4, 2])
    x = np.random.default_rng(0).normal(3.0, 2.0, (6, 3))
    export(_pipeline(model, info, "mlp"), x, str(tmp_path / "m.onnx"), input_names=["features"])
    got = session(tmp_path / "m.onnx").run(None, {"features": x})
    for g, w in zip(got, leafgrad_outputs(_pipeline(model, info, "mlp"), x)):
        assert_same(g, w)
