"""Saving and loading: atomic writes, all-or-nothing loads with clear errors, exact training resume."""
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import leafgrad.functions as F
import leafgrad.optimizers as O
import leafgrad.serialization as S
from leafgrad.core import Parameter
from leafgrad.layers import Layer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Block(Layer):
    def __init__(self, seed, n=3, dtype=np.float32):
        super().__init__()
        rng = np.random.RandomState(seed)
        self.W = Parameter(rng.randn(n, 2).astype(dtype))
        self.b = Parameter(rng.randn(2).astype(dtype))


class Net(Layer):
    """Two nested blocks: parameter paths ``W``, ``b``, ``l0/W``, ``l0/b``, ``l1/W``, ``l1/b``."""

    def __init__(self, seed=0, dtype=np.float32):
        super().__init__()
        self.W = Parameter(np.random.RandomState(seed + 10).randn(2, 3).astype(dtype))
        self.b = Parameter(np.zeros(3, dtype))
        self.l0 = Block(seed, 3, dtype)
        self.l1 = Block(seed + 1, 2, dtype)

    def forward(self, x):
        h = F.sigmoid(F.matmul(x, self.W) + self.b)
        h = F.sigmoid(F.matmul(h, self.l0.W) + self.l0.b)
        return F.matmul(h, self.l1.W) + self.l1.b


def snapshot(model):
    """Each parameter's array object and a copy of its values."""
    return {k: (p.data, None if p.data is None else p.data.copy()) for k, p in model.named_params()}


def assert_unchanged(model, snap):
    now = dict(model.named_params())
    assert set(now) == set(snap)
    for k, (obj, values) in snap.items():
        assert now[k].data is obj, k
        if values is not None:
            np.testing.assert_array_equal(now[k].data, values)


def same_weights(a, b):
    pa, pb = dict(a.named_params()), dict(b.named_params())
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k].data, pb[k].data)
        assert pa[k].data.dtype == pb[k].data.dtype


# =============================================================================
# save / load weights
# =============================================================================
def test_round_trip_keeps_values_dtypes_and_dezero_keys(tmp_path):
    a, b = Net(0), Net(1)
    path = tmp_path / "w.npz"
    a.save_weights(str(path))
    with np.load(path, allow_pickle=False) as npz:  # plain .npz, keys as DeZero names them
        assert sorted(npz.files) == ["W", "b", "l0/W", "l0/b", "l1/W", "l1/b"]
    b.load_weights(str(path))
    same_weights(a, b)
    assert b.W.data.flags.writeable and b.W.data.dtype == np.float32


def test_float64_and_pathlike_and_npz_suffix(tmp_path):
    a, b = Net(0, np.float64), Net(1, np.float64)
    a.save_weights(tmp_path / "weights")  # numpy.savez appends .npz, and so do we
    assert (tmp_path / "weights.npz").exists()
    b.load_weights(tmp_path / "weights")  # found with the suffix, as it was saved
    same_weights(a, b)


def test_compressed(tmp_path):
    a, b = Net(0), Net(1)
    a.save_weights(tmp_path / "w.npz", compress=True)
    with zipfile.ZipFile(tmp_path / "w.npz") as zf:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    b.load_weights(tmp_path / "w.npz")
    same_weights(a, b)


def test_lazy_parameters_load_from_file_and_missing_ones_are_refused(tmp_path):
    a = Net(0)
    a.extra = Parameter(None)  # never initialized: not written
    a.save_weights(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as npz:
        assert "extra" not in npz.files
    b = Net(1)
    b.W.data = None  # a lazily created weight, not yet initialized
    b.extra = Parameter(None)
    snap = snapshot(b)
    # strict: a parameter the file lacks would be drawn at random later: refused, nothing loaded
    with pytest.raises(S.SerializationError, match="'extra' is missing"):
        b.load_weights(tmp_path / "w.npz")
    assert_unchanged(b, snap)
    b.load_weights(tmp_path / "w.npz", strict=False)
    np.testing.assert_array_equal(b.W.data, a.W.data)
    assert b.extra.data is None


def test_save_does_not_move_or_change_the_model(tmp_path):
    a = Net(0)
    snap = snapshot(a)
    a.save_weights(tmp_path / "w.npz")
    assert_unchanged(a, snap)


def test_no_temporary_files_left_and_mode(tmp_path):
    a = Net(0)
    a.save_weights(tmp_path / "w.npz")
    a.save_weights(tmp_path / "w.npz")  # overwrite
    assert os.listdir(tmp_path) == ["w.npz"]
    mode = os.stat(tmp_path / "w.npz").st_mode & 0o777
    assert mode & 0o600 == 0o600


# ---- atomicity --------------------------------------------------------------------
@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_mid_save_leaves_old_file_intact(tmp_path, monkeypatch, exc):
    path = tmp_path / "w.npz"
    Net(0).save_weights(path)
    old = path.read_bytes()
    calls = []
    real = S._write_array

    def failing(fileobj, array):
        calls.append(1)
        if len(calls) == 3:  # half way through the archive
            raise exc
        real(fileobj, array)

    monkeypatch.setattr(S, "_write_array", failing)
    with pytest.raises(type(exc)):
        Net(5).save_weights(path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["w.npz"]  # the temporary file was removed


def test_failure_on_first_save_leaves_nothing(tmp_path, monkeypatch):
    def failing(fileobj, array):
        raise OSError("boom")

    monkeypatch.setattr(S, "_write_array", failing)
    with pytest.raises(OSError):
        Net(0).save_weights(tmp_path / "w.npz")
    assert os.listdir(tmp_path) == []


def test_sigkill_mid_save_leaves_old_file_intact(tmp_path):
    """A real ``kill -9`` of the saving process, half way through writing a large model."""
    path = tmp_path / "big.npz"

    class Big(Layer):
        def __init__(self, value):
            super().__init__()
            for i in range(4):
                setattr(self, f"p{i}", Parameter(np.full((512, 512), value, np.float32)))

    Big(1.0).save_weights(path)
    old = path.read_bytes()
    child = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        import leafgrad.serialization as S
        from leafgrad.core import Parameter
        from leafgrad.layers import Layer

        class Big(Layer):
            def __init__(self, value):
                super().__init__()
                for i in range(4):
                    setattr(self, f"p{{i}}", Parameter(np.full((512, 512), value, np.float32)))

        real = S._write_array
        count = [0]
        def write_then_die(f, a):
            real(f, a)
            count[0] += 1
            if count[0] == 2:  # two of four arrays are on disk: die now, no cleanup possible
                os.kill(os.getpid(), signal.SIGKILL)
        S._write_array = write_then_die
        Big(2.0).save_weights({str(path)!r})
        print("not killed")
    """)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert path.read_bytes() == old
    b = Big(0.0)
    b.load_weights(path)
    assert float(b.p3.data[0, 0]) == 1.0
    leftovers = [n for n in os.listdir(tmp_path) if n != "big.npz"]
    assert all(n.startswith(".big.npz.") and n.endswith(".tmp") for n in leftovers)


# ---- all-or-nothing loading ----------------------------------------------------------
def check_rejected(tmp_path, path, match, model=None):
    model = model or Net(1)
    snap = snapshot(model)
    with pytest.raises(S.SerializationError, match=match) as info:
        model.load_weights(path)
    assert_unchanged(model, snap)
    return str(info.value)


def test_truncated_file(tmp_path):
    path = tmp_path / "w.npz"
    Net(0).save_weights(path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 10):
        path.write_bytes(data[:cut])
        check_rejected(tmp_path, path, "truncated or corrupt")


def test_corrupt_bytes(tmp_path):
    path = tmp_path / "w.npz"
    Net(0).save_weights(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("l0/W.npy")
    pos = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 4
    data[pos] ^= 0xFF  # flip a byte inside the last values of l0/W
    path.write_bytes(bytes(data))
    msg = check_rejected(tmp_path, path, "corrupt")
    assert "l0/W" in msg


def test_empty_file_and_not_an_archive(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"")
    check_rejected(tmp_path, path, "empty")
    np.save(tmp_path / "a.npy", np.zeros(3))
    check_rejected(tmp_path, tmp_path / "a.npy", r"single \.npy array")


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "w.npz"
    arrays = {k: p.data for k, p in Net(0).named_params()}
    arrays["l0/W"] = np.array([{"evil": 1}, None], dtype=object)
    np.savez(path, **arrays)  # numpy pickles object arrays
    msg = check_rejected(tmp_path, path, "pickled")
    assert "l0/W" in msg
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"W": np.zeros(3)}))
    check_rejected(tmp_path, raw, "pickle")


def write(tmp_path, arrays):
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    return path


def test_missing_parameter(tmp_path):
    arrays = {k: p.data for k, p in Net(0).named_params()}
    del arrays["l1/b"]
    msg = check_rejected(tmp_path, write(tmp_path, arrays), "missing")
    assert "'l1/b'" in msg and "nothing was loaded" in msg


def test_extra_entry(tmp_path):
    arrays = {k: p.data for k, p in Net(0).named_params()}
    arrays["l2/W"] = np.zeros((2, 2), np.float32)
    check_rejected(tmp_path, write(tmp_path, arrays), "'l2/W'.*matches no parameter")


def test_wrong_shape(tmp_path):
    arrays = {k: p.data for k, p in Net(0).named_params()}
    arrays["l0/W"] = np.zeros((4, 2), np.float32)
    check_rejected(tmp_path, write(tmp_path, arrays), r"'l0/W': shape \(4, 2\) in the file.*\(3, 2\)")


def test_wrong_dtype(tmp_path):
    arrays = {k: p.data for k, p in Net(0).named_params()}
    exact = arrays["b"].astype(np.float64)  # float32 values held as float64: converted exactly
    arrays["b"] = exact + 1e-12  # values a float32 cannot hold
    check_rejected(tmp_path, write(tmp_path, arrays), "'b': dtype float64 in the file.*float32.*exactly")
    arrays["b"] = exact
    m = Net(1)
    m.load_weights(write(tmp_path, arrays))
    assert m.b.data.dtype == np.float32
    np.testing.assert_array_equal(m.b.data, exact)
    for bad in (np.zeros(3, np.int32), np.zeros(3, bool), np.zeros(3, np.complex64)):
        arrays["b"] = bad
        check_rejected(tmp_path, write(tmp_path, arrays), "'b': dtype .* floating point")
    arrays["b"] = np.zeros(3, dtype="U3")
    check_rejected(tmp_path, write(tmp_path, arrays), "'b': unsupported dtype")


def test_several_problems_are_all_listed(tmp_path):
    arrays = {k: p.data for k, p in Net(0).named_params()}
    del arrays["W"]
    arrays["l0/W"] = np.zeros((4, 2), np.float32)
    msg = check_rejected(tmp_path, write(tmp_path, arrays), "2 problems")
    assert "'W'" in msg and "'l0/W'" in msg


def test_good_entries_are_not_loaded_when_one_is_bad(tmp_path):
    arrays = {k: p.data + 100 for k, p in Net(0).named_params()}
    arrays["l1/W"] = np.zeros((5, 5), np.float32)
    check_rejected(tmp_path, write(tmp_path, arrays), "'l1/W'")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        Net(0).load_weights(tmp_path / "nope.npz")


def test_non_strict(tmp_path):
    arrays = {k: p.data for k, p in Net(0).named_params()}
    del arrays["l1/b"]
    arrays["other"] = np.zeros(2)
    path = write(tmp_path, arrays)
    b = Net(1)
    old_b = b.l1.b.data.copy()
    b.load_weights(path, strict=False)
    np.testing.assert_array_equal(b.W.data, arrays["W"])
    np.testing.assert_array_equal(b.l1.b.data, old_b)
    arrays["l0/W"] = np.zeros((9, 9), np.float32)  # shapes are still checked
    with pytest.raises(S.SerializationError, match="l0/W"):
        b.load_weights(write(tmp_path, arrays), strict=False)


def test_save_refuses_object_arrays(tmp_path):
    with pytest.raises(S.SerializationError, match="'x'"):
        S.save_npz(tmp_path / "o.npz", {"x": np.array([None], dtype=object)})
    assert os.listdir(tmp_path) == []


# =============================================================================
# checkpoints
# =============================================================================
def make_data(seed=0, n=40):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 2).astype(np.float32)
    t = (np.sin(x[:, :1] * 2) + x[:, 1:] ** 2).astype(np.float32)
    t = np.concatenate([t, -t], axis=1)
    return x, t


def train_epochs(model, opt, x, t, epochs, batch=8):
    """Mini-batch training whose shuffling draws from NumPy's global generator; returns the losses."""
    losses = []
    for _ in range(epochs):
        index = np.random.permutation(len(x))
        for i in range(0, len(x), batch):
            bi = index[i:i + batch]
            y = model(x[bi])
            diff = y - t[bi]
            loss = F.sum(diff * diff) / len(bi)
            model.cleargrads()
            loss.backward()
            opt.update()
            losses.append(float(loss.data))
    return losses


@pytest.mark.parametrize("make", [lambda: O.Adam(0.01), lambda: O.MomentumSGD(0.05), O.AdaDelta, O.AdaGrad])
def test_resume_from_checkpoint_gives_exactly_the_same_losses(tmp_path, make):
    x, t = make_data()
    np.random.seed(123)
    model = Net(0)
    opt = make().setup(model)
    opt.add_hook(O.WeightDecay(1e-3))
    straight = train_epochs(model, opt, x, t, 6)

    np.random.seed(123)
    model = Net(0)
    opt = make().setup(model)
    opt.add_hook(O.WeightDecay(1e-3))
    first = train_epochs(model, opt, x, t, 3)
    path = S.save_checkpoint(tmp_path / "ckpt.npz", model, opt, epoch=3, extra={"note": "half", "best": 0.5})
    np.random.seed(999)  # anything happening in between
    np.random.rand(17)
    del model, opt

    model = Net(7)  # a fresh process would build the model and optimizer again
    model.W.data = None  # even with a lazily created weight
    opt = make().setup(model)
    opt.add_hook(O.WeightDecay(1e-3))
    info = S.load_checkpoint(path, model, opt)
    assert info["epoch"] == 3 and info["extra"] == {"note": "half", "best": 0.5}
    second = train_epochs(model, opt, x, t, 3)
    assert first + second == straight  # bit for bit


def test_checkpoint_restores_random_state_and_extra_arrays(tmp_path):
    np.random.seed(5)
    np.random.randn()  # leaves a cached gaussian in the state
    model, opt = Net(0), O.SGD()
    opt.setup(model)
    S.save_checkpoint(tmp_path / "c.npz", model, opt, epoch=1, extra={"hist": np.arange(4)})
    expected = (np.random.randn(3), np.random.rand(2))
    np.random.seed(0)
    info = S.load_checkpoint(tmp_path / "c.npz", model, opt)
    np.testing.assert_array_equal(info["extra"]["hist"], np.arange(4))
    np.testing.assert_array_equal(np.random.randn(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(2), expected[1])
    # opting out leaves the generator alone
    np.random.seed(0)
    S.load_checkpoint(tmp_path / "c.npz", model, opt, restore_random_state=False)
    np.random.seed(0)
    a = np.random.rand()
    np.random.seed(0)
    assert np.random.rand() == a


def test_checkpoint_without_optimizer(tmp_path):
    a, b = Net(0), Net(1)
    S.save_checkpoint(tmp_path / "c.npz", a)
    info = S.load_checkpoint(tmp_path / "c.npz", b)
    same_weights(a, b)
    assert info["epoch"] is None
    with pytest.raises(S.SerializationError, match="no optimizer state"):
        S.load_checkpoint(tmp_path / "c.npz", b, O.SGD().setup(b))


def test_checkpoint_load_is_all_or_nothing(tmp_path):
    x, t = make_data()
    model = Net(0)
    opt = O.Adam().setup(model)
    train_epochs(model, opt, x, t, 1)
    path = tmp_path / "c.npz"
    S.save_checkpoint(path, model, opt, epoch=1)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["optimizer/m/l0/W"] = np.zeros((7, 7), np.float32)  # bad optimizer state
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)

    target = Net(3)
    topt = O.Adam(alpha=0.5).setup(target)
    snap = snapshot(target)
    np.random.seed(42)
    state = np.random.get_state()
    with pytest.raises(S.SerializationError, match=r"optimizer: parameter 'l0/W': state 'm' has shape \(7, 7\)"):
        S.load_checkpoint(bad, target, topt)
    assert_unchanged(target, snap)
    assert topt.alpha == 0.5 and topt.t == 0 and len(topt._state) == 0
    assert np.random.get_state()[2] == state[2]
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])

    with pytest.raises(S.SerializationError, match="'Adam' optimizer, this one is 'SGD'"):
        S.load_checkpoint(path, target, O.SGD().setup(target))
    assert_unchanged(target, snap)
    with pytest.raises(S.SerializationError, match="not a leafgrad checkpoint"):
        model.save_weights(tmp_path / "w.npz")
        S.load_checkpoint(tmp_path / "w.npz", target)
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(S.SerializationError, match="truncated"):
        S.load_checkpoint(tmp_path / "trunc.npz", target, topt)
    assert_unchanged(target, snap)


def test_checkpoint_extra_must_be_serializable(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        S.save_checkpoint(tmp_path / "c.npz", Net(0), extra={"f": object()})
    assert os.listdir(tmp_path) == []


# =============================================================================
# Files as boundaries (issue 17): weights of models not built yet, checkpoints, archive limits
# =============================================================================
def mlp_file(tmp_path, **changes):
    """The weights of a built MLP 4-3-2 (``l0/W`` is (4, 3)), with some entries replaced."""
    from leafgrad.models import MLP
    np.random.seed(0)
    m = MLP((3, 2))
    m(np.zeros((1, 4), np.float32))
    arrays = {k: p.data for k, p in m.named_params()}
    arrays.update(changes)
    return write(tmp_path, {k: v for k, v in arrays.items() if v is not None}), arrays


@pytest.mark.parametrize("change, match", [
    ({"l0/W": None}, "'l0/W' is missing"),
    ({"l1/W": np.zeros((2, 3), np.float32)}, r"'l1/W': shape \(2, 3\).*\(3, 2\)"),  # transposed
    ({"l0/W": np.zeros((4, 3), np.int32)}, "'l0/W': dtype int32.*floating point"),
    ({"l0/b": np.array([0, np.nan, 0], np.float32)}, "'l0/b'.*NaN or infinite"),
    ({"l0/W": np.zeros((3, 4), np.float32)}, r"'l0/W': shape \(3, 4\).*\(\?, 3\)"),
    ({"l2/W": np.zeros((2, 2), np.float32)}, "'l2/W'.*matches no parameter"),
])
def test_weights_are_checked_against_a_model_not_built_yet(tmp_path, change, match):
    from leafgrad.models import MLP
    path, _ = mlp_file(tmp_path, **change)
    model = MLP((3, 2))  # weights not created yet (as leafgrad predict used to load)
    check_rejected(tmp_path, path, match, model=model)
    assert model.l0.W.data is None and model.l1.W.data is None


def test_a_model_not_built_yet_takes_its_input_size_from_the_file(tmp_path):
    from leafgrad.models import MLP
    path, arrays = mlp_file(tmp_path)
    model = MLP((3, 2))
    model.load_weights(path)
    for k, p in model.named_params():
        np.testing.assert_array_equal(p.data, arrays[k])
    assert model(np.ones((2, 4), np.float32)).shape == (2, 2)


def test_non_npy_members_are_refused(tmp_path):
    path, _ = mlp_file(tmp_path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", "hello")
    check_rejected(tmp_path, path, "'notes.txt' is not a .npy array", model=Net(0))


def test_a_huge_declared_array_is_refused_before_it_is_read(tmp_path):
    """A 1 MB file declaring a 400 MB array: refused from its header, without allocating it."""
    import tracemalloc
    from leafgrad.models import MLP
    path, arrays = mlp_file(tmp_path)
    path = tmp_path / "huge.npz"
    rows = 400 * 2 ** 20 // 12
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, a in arrays.items():
            with zf.open(k + ".npy", "w") as f:
                if k != "l0/W":
                    np.lib.format.write_array(f, a)
                    continue
                np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                         "shape": (rows, 3)})
                zeros = bytes(12 << 16)
                for _ in range(rows // (1 << 16)):
                    f.write(zeros)
                f.write(bytes(12 * (rows % (1 << 16))))
    assert os.path.getsize(path) < 2 * 2 ** 20
    for built, match in ((False, "cannot bound its size"), (True, r"shape \(34952533, 3\) in the file, the model "
                                                                   r"expects \(4, 3\)")):
        model = MLP((3, 2))
        if built:
            model(np.zeros((1, 4), np.float32))
        tracemalloc.start()
        try:
            with pytest.raises(S.SerializationError, match=match):
                model.load_weights(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 5 * 2 ** 20


def test_a_header_declaring_more_than_the_member_holds_is_refused(tmp_path):
    path, arrays = mlp_file(tmp_path)
    raw = io_npy(arrays["l0/W"]).replace(b"(4, 3)", b"(9999, 3)")
    with zipfile.ZipFile(path, "w") as zf:
        for k, a in arrays.items():
            zf.writestr(k + ".npy", raw if k == "l0/W" else io_npy(a))
    check_rejected(tmp_path, path, r"'l0/W' is corrupt: it declares shape \(9999, 3\)", model=Net(0))


def io_npy(a):
    import io
    f = io.BytesIO()
    np.lib.format.write_array(f, a)
    return f.getvalue()


def damaged_checkpoint(tmp_path, edit_meta=None, **arrays_changes):
    x, t = make_data()
    model = Net(0)
    opt = O.Adam().setup(model)
    train_epochs(model, opt, x, t, 1)
    path = tmp_path / "c.npz"
    S.save_checkpoint(path, model, opt, epoch=1)
    with np.load(path) as npz:
        arrays = dict(npz)
    import json
    meta = json.loads(arrays["__meta__"].tobytes())
    if edit_meta:
        edit_meta(meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    arrays.update(arrays_changes)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    return bad


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["random"].update(pos=10 ** 6), "random state is invalid: its position 1000000"),
    (lambda m: m["random"].update(has_gauss=7), "has_gauss"),
    (lambda m: m["optimizer"]["counters"].update(t=-3), "counter 't' is -3"),
    (lambda m: m["optimizer"]["hyperparams"].update(alpha=float("nan")), "hyperparameter 'alpha'"),
    (lambda m: m["optimizer"]["hyperparams"].update(alpha="fast"), "hyperparameter 'alpha'"),
    (lambda m: m.update(epoch=-1), "epoch -1"),
    (lambda m: m.update(optimizer="Adam"), "optimizer: the record is malformed"),
])
def test_checkpoint_records_are_checked_before_anything_changes(tmp_path, edit, match):
    bad = damaged_checkpoint(tmp_path, edit)
    target = Net(3)
    topt = O.Adam(alpha=0.5).setup(target)
    snap = snapshot(target)
    np.random.seed(42)
    state = np.random.get_state()
    with pytest.raises(S.SerializationError, match=match):
        S.load_checkpoint(bad, target, topt)
    assert_unchanged(target, snap)
    assert topt.alpha == 0.5 and topt.t == 0 and len(topt._state) == 0
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])
    assert np.random.get_state()[2] == state[2]
    np.random.random()  # the global generator still works (pos 10**6 used to segfault here)


def test_checkpoint_state_arrays_must_be_finite(tmp_path):
    bad = damaged_checkpoint(tmp_path, **{"optimizer/m/l0/W": np.full((3, 2), np.nan, np.float32)})
    with pytest.raises(S.SerializationError, match="state 'm' of parameter 'l0/W' holds NaN"):
        S.load_checkpoint(bad, Net(3), O.Adam().setup(Net(3)))
    bad = damaged_checkpoint(tmp_path, **{"model/W": np.full((2, 3), np.inf, np.float32)})
    with pytest.raises(S.SerializationError, match="'W': the file holds NaN or infinite"):
        S.load_checkpoint(bad, Net(3))


def test_check_random_state():
    good = np.random.RandomState(3).get_state()
    assert S.check_random_state(good) is None
    for bad in ((good[0], good[1], 625) + good[3:], (good[0], good[1][:10]) + good[2:],
                ("PCG64",) + good[1:], (good[0], good[1].astype(np.int64)) + good[2:],
                good[:4] + (float("nan"),), "nope"):
        assert isinstance(S.check_random_state(bad), str)
