"""Property-based corruption of the files a run reads back: ``model.npz``, ``checkpoint.npz``, ``run.json``.

Each damaged file (a member dropped, added, reshaped, retyped, a NaN, the file
truncated, a bit flipped, a member inflated; for run.json the same on the
JSON) must give either a clean error, with the model, the optimizer, the
random state and the run folder unchanged, or exactly the results of the
undamaged file.  Examples are derandomized (the same in every run); set
LEAFGRAD_FUZZ_EXAMPLES to try more, and LEAFGRAD_FUZZ_RANDOM=1 for new ones.  The outcomes are counted and printed
(``pytest -s``) for the record.
"""
import collections
import contextlib
import copy
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cli_helpers import trees
from leafgrad import cli
from leafgrad.cli import plots
from leafgrad.cli.run_schema import seal
from leafgrad.cli.train import build_model, make_trainer
from leafgrad.serialization import SerializationError

EXAMPLES = int(os.environ.get("LEAFGRAD_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=not os.environ.get("LEAFGRAD_FUZZ_RANDOM"))  # CI: the same examples every run
OUTCOMES = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    for kind, counts in sorted(OUTCOMES.items()):
        print(f"\ncorruption {kind}: {sum(counts.values())} examples: "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A small finished run (no pictures), its data file, and the predictions of the undamaged run."""
    base = tmp_path_factory.mktemp("corruption")
    data = trees(base / "trees.csv", n=30)
    run_dir = str(base / "run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "figure_class", lambda: None)
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["train", "--data", data, "--target", "kind", "--hidden", "5", "--epochs", "2",
                             "--out", run_dir, "--quiet"]) == 0
    files = {name: open(os.path.join(run_dir, name), "rb").read() for name in os.listdir(run_dir)}
    code, err, predictions = predict_with(files, data)
    assert code == 0, err
    config = json.loads(files["run.json"])["config"]
    return Good(files=files, data=data, predictions=predictions, config=config)


class Good(dict):
    """The undamaged run (a dict with a short repr, for Hypothesis' reports)."""

    def __repr__(self):
        return "<the undamaged run>"


def folder_digest(folder):
    return {name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(folder))}


def predict_with(files, data):
    """``leafgrad predict`` on a run folder holding ``files``: (exit status, stderr, the CSV written or None)."""
    with tempfile.TemporaryDirectory() as d:
        run_dir, out = os.path.join(d, "run"), os.path.join(d, "p.csv")
        os.mkdir(run_dir)
        for name in ("run.json", "model.npz"):
            with open(os.path.join(run_dir, name), "wb") as f:
                f.write(files[name])
        before = folder_digest(run_dir)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["predict", run_dir, "--data", data, "--out", out, "--quiet"])
        assert folder_digest(run_dir) == before  # the run folder is never changed
        written = open(out).read() if os.path.exists(out) else None
        assert sorted(os.listdir(d)) == (["p.csv"] if written is not None else []) + ["run"]  # no temporary files
        return code, err.getvalue(), written


def assert_clean_error(code, err, status=2):
    assert code == status, err
    assert "Traceback" not in err
    assert err.startswith("leafgrad predict: error: "), err


# =============================================================================
# Damaging .npz archives
# =============================================================================
def members(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def to_npy(a):
    f = io.BytesIO()
    np.lib.format.write_array(f, a, allow_pickle=False)
    return f.getvalue()


def from_npy(raw):
    return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)


def archive(items):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for name, raw in items:
            zf.writestr(name, raw)
    return f.getvalue()


def npz_damage(names):
    """A strategy of damages to an archive whose members are ``names``."""
    member = st.sampled_from(names)
    return st.one_of(
        st.tuples(st.just("drop"), member),
        st.tuples(st.just("add"), st.sampled_from(["extra.npy", "l9/W.npy", "model/l9/W.npy", "notes.txt",
                                                   "optimizer/m/l0/W.npy", "extra/x.npy", "random/more.npy"]),
                  st.integers(0, 3)),
        st.tuples(st.just("reshape"), member, st.sampled_from(["T", "flat", "axis", "row", "col", "empty"])),
        st.tuples(st.just("retype"), member, st.sampled_from(["i4", "i8", "u1", "?", "c8", "f8", ">f4", ">f8",
                                                              "f4", "U3", ">u4"])),
        st.tuples(st.just("nan"), member, st.integers(0, 10 ** 6), st.sampled_from([math.nan, math.inf, -math.inf])),
        st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
        st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
        st.tuples(st.just("inflate"), member, st.sampled_from(["header", "rows"])),
    )


def damage_npz(blob, op):
    """``blob`` (an .npz file's bytes) with the damage ``op``; the kind of damage for the counts."""
    kind = op[0]
    if kind in ("truncate", "flip"):
        pos = int(op[1] * len(blob))
        if kind == "truncate":
            return blob[:pos]
        out = bytearray(blob)
        out[pos] ^= 1 << op[2]
        return bytes(out)
    items = members(blob)
    if kind == "add":
        rng = np.random.RandomState(op[2])
        raw = b"hello" if not op[1].endswith(".npy") else to_npy(np.asarray(rng.randn(*[2] * op[2]), np.float32))
        return archive(items + [(op[1], raw)])
    name = op[1]
    if kind == "drop":
        return archive([(n, r) for n, r in items if n != name])
    out = []
    for n, raw in items:
        if n == name:
            a = from_npy(raw)
            if kind == "reshape":
                a = {"T": lambda: a.T, "flat": lambda: a.reshape(-1), "axis": lambda: a[None],
                     "row": lambda: np.concatenate([a, a[:1]]) if a.ndim else a[None],
                     "col": lambda: np.concatenate([a, a[..., :1]], axis=-1) if a.ndim else a[None],
                     "empty": lambda: a.reshape(-1)[:0]}[op[2]]()
                raw = to_npy(np.ascontiguousarray(a))
            elif kind == "retype":
                raw = to_npy(a.astype(op[2]))
            elif kind == "nan":
                if a.dtype.kind == "f" and a.size:
                    a = a.copy()
                    a.reshape(-1)[op[2] % a.size] = op[3]
                raw = to_npy(a)
            elif kind == "inflate":
                if op[2] == "rows":  # really stored: the array repeated 50 times along its first axis
                    raw = to_npy(np.concatenate([a if a.ndim else a[None]] * 50))
                else:  # the header declares 1000 times as many rows as the data holds
                    big = np.lib.format.header_data_from_array_1_0(a if a.ndim else a[None])
                    big["shape"] = (max(big["shape"][0], 1) * 1000,) + tuple(big["shape"][1:])
                    f = io.BytesIO()
                    np.lib.format.write_array_header_1_0(f, big)
                    raw = f.getvalue() + a.tobytes()
        out.append((n, raw))
    return archive(out)


# =============================================================================
# model.npz
# =============================================================================
def weights_of(model):
    return {k: (None if p.data is None else p.data.copy()) for k, p in model.named_params()}


def same(a, b):
    return a.keys() == b.keys() and all(
        (x is None and y is None) or (x is not None and y is not None and x.dtype == y.dtype
                                      and x.shape == y.shape and np.array_equal(x, y)) for x, y in
        ((a[k], b[k]) for k in a))


MODEL_MEMBERS = ["l0/W.npy", "l0/b.npy", "l1/W.npy", "l1/b.npy"]


@pytest.mark.filterwarnings("ignore:Duplicate name")
@FUZZ
@given(op=npz_damage(MODEL_MEMBERS))
def test_damaged_model_npz(good, op):
    blob = damage_npz(good["files"]["model.npz"], op)
    # The command: a clean error (exit 2), or the predictions of the undamaged run.
    code, err, written = predict_with({**good["files"], "model.npz": blob}, good["data"])
    if code == 0:
        assert written == good["predictions"], op
    else:
        assert_clean_error(code, err)
        assert written is None
    # The library, into a built model and into one whose weights are not created yet.
    reference = build_model("mlp", [5], 3)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.npz")
        with open(path, "wb") as f:
            f.write(good["files"]["model.npz"])
        reference.load_weights(path)
        with open(path, "wb") as f:
            f.write(blob)
        outcomes = []
        for built in (True, False):
            np.random.seed(1)
            model = build_model("mlp", [5], 3)
            if built:
                model(np.zeros((1, 2), np.float32))
            before, state = weights_of(model), np.random.get_state()
            try:
                model.load_weights(path)
            except SerializationError:
                assert same(weights_of(model), before)
                outcomes.append("refused")
            else:
                if same(weights_of(model), weights_of(reference)):
                    outcomes.append("same")
                else:  # only the input size of a model not built yet is free: then the file's own weights
                    assert not built, op
                    with np.load(path) as z:
                        assert same(weights_of(model), {k: z[k].astype(np.float32) for k in z.files}), op
                    assert model.l0.W.shape[1] == 5 and model.l1.W.shape == (5, 3), op
                    outcomes.append("loaded the file's first-layer input size")
            assert np.array_equal(np.random.get_state()[1], state[1])
    assert outcomes[0] == ("same" if code == 0 else "refused"), (op, outcomes, err)
    OUTCOMES["model.npz"][f"{op[0]}: {'same results' if code == 0 else 'clean error'}"] += 1


# =============================================================================
# checkpoint.npz
# =============================================================================
def trainer_state(trainer):
    opt = trainer.optimizer.state_dict()
    return {"weights": weights_of(trainer.model),
            "opt": (opt["type"], opt["hyperparams"], opt["counters"],
                    {p: {s: a.copy() for s, a in slots.items()} for p, slots in opt["state"].items()}),
            "global": np.random.get_state(), "batch": trainer.rng.get_state(),
            "history": list(trainer.history)}


def same_state(a, b):
    def rng_equal(x, y):
        return x[0] == y[0] and np.array_equal(x[1], y[1]) and x[2:] == y[2:]
    opt_a, opt_b = a["opt"], b["opt"]
    return (same(a["weights"], b["weights"]) and opt_a[:3] == opt_b[:3] and opt_a[3].keys() == opt_b[3].keys()
            and all(same(opt_a[3][p], opt_b[3][p]) for p in opt_a[3])
            and rng_equal(a["global"], b["global"]) and rng_equal(a["batch"], b["batch"])
            and a["history"] == b["history"])


def fresh_trainer(good):
    with contextlib.redirect_stdout(io.StringIO()):
        trainer, data = make_trainer({**good["config"], "data": good["data"]})
    trainer.initialize(data.x_train)  # as --resume does
    np.random.seed(7)
    return trainer


CHECKPOINT_MEMBERS = ["model/l0/W.npy", "model/l0/b.npy", "model/l1/W.npy", "model/l1/b.npy",
                      "optimizer/m/l0/W.npy", "optimizer/v/l1/b.npy", "random/keys.npy",
                      "extra/metrics.npy", "extra/batch_rng_keys.npy", "__meta__.npy"]


def meta_damage():
    """Damages to the checkpoint's JSON record, made inside the archive (so its checksum is right).

    Each value is wrong for its field (a value right for its field would be another valid checkpoint).
    """
    paths = [("epoch",), ("optimizer", "type"), ("optimizer", "hyperparams", "alpha"), ("optimizer", "counters", "t"),
             ("optimizer", "state", "l0/W"), ("random", "pos"), ("random", "has_gauss"),
             ("random", "cached_gaussian"), ("extra", "batch_rng", "pos"), ("extra", "batch_rng"),
             ("extra_arrays",), ("format",), ("version",), ("random",), ("optimizer",)]
    anywhere = st.tuples(st.sampled_from(paths), st.sampled_from(["drop", math.nan, math.inf, -math.inf, "x", None,
                                                                  True, [], {}]))
    numbers = st.sampled_from([
        (("epoch",), -1), (("epoch",), 1.5), (("epoch",), 10 ** 6), (("epoch",), 2 ** 70),
        (("optimizer", "hyperparams", "alpha"), -1), (("optimizer", "counters", "t"), -1),
        (("optimizer", "counters", "t"), 1.5), (("random", "pos"), 625), (("random", "pos"), 10 ** 6),
        (("random", "pos"), -1), (("random", "has_gauss"), 2), (("extra", "batch_rng", "pos"), 10 ** 6),
        (("extra", "batch_rng", "has_gauss"), -1), (("version",), 2)])
    return st.tuples(st.just("meta"), st.one_of(anywhere, numbers))


def damage_meta(blob, op):
    items = members(blob)
    out = []
    for n, raw in items:
        if n == "__meta__.npy":
            meta = json.loads(from_npy(raw).tobytes().decode("utf-8"))
            (path, value), node = op[1], meta
            for k in path[:-1]:
                node = node.get(k) if isinstance(node, dict) else None
            if isinstance(node, dict):
                if value == "drop":
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = value
            raw = to_npy(np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
        out.append((n, raw))
    return archive(out)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@FUZZ
@given(op=st.one_of(npz_damage(CHECKPOINT_MEMBERS), meta_damage()))
def test_damaged_checkpoint_npz(good, op):
    blob = good["files"]["checkpoint.npz"]
    blob = damage_meta(blob, op) if op[0] == "meta" else damage_npz(blob, op)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "checkpoint.npz")
        with open(path, "wb") as f:
            f.write(good["files"]["checkpoint.npz"])
        reference = fresh_trainer(good)
        reference.load(path)
        expected = trainer_state(reference)
        with open(path, "wb") as f:
            f.write(blob)
        trainer = fresh_trainer(good)
        before = trainer_state(trainer)
        try:
            trainer.load(path)
        except SerializationError:
            assert same_state(trainer_state(trainer), before), op
            outcome = "clean error"
        else:
            assert same_state(trainer_state(trainer), expected), op
            outcome = "same results"
        assert os.listdir(d) == ["checkpoint.npz"]
    OUTCOMES["checkpoint.npz"][f"{op[0]}: {outcome}"] += 1


# =============================================================================
# run.json
# =============================================================================
def json_paths(node, prefix=()):
    """Every path in a JSON value: (path, value)."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from json_paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from json_paths(v, prefix + (i,))


JSON_DAMAGES = ("drop", "add", "retype", "nan", "reshape", "truncate", "flip", "inflate")


def json_damage(kinds=JSON_DAMAGES):
    return st.tuples(
        st.sampled_from(kinds),
        st.integers(0, 10 ** 6), st.integers(0, 7), st.booleans())


def damage_json(text, op):
    kind, pick, bit, reseal = op
    raw = text.encode("utf-8")
    if kind == "truncate":
        return raw[:pick % len(raw)]
    if kind == "flip":
        out = bytearray(raw)
        out[pick % len(raw)] ^= 1 << bit
        return bytes(out)
    record = json.loads(text)
    paths = [(p, v) for p, v in json_paths(record) if p]
    if kind in ("nan",):
        paths = [(p, v) for p, v in paths if isinstance(v, (int, float)) and not isinstance(v, bool)]
    elif kind in ("reshape",):
        paths = [(p, v) for p, v in paths if isinstance(v, list)]
    elif kind == "add":
        paths = [((), record)] + [(p, v) for p, v in paths if isinstance(v, (dict, list))]
    elif kind == "inflate" and reseal:  # (a longer text with its digest recomputed is just another name)
        paths = ([(p, v) for p, v in paths if isinstance(v, list)]  # (a text run's: its strings, the vocabulary)
                 or [(p, v) for p, v in paths if isinstance(v, str)])
    path, value = paths[pick % len(paths)]
    parent = record
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1] if path else None

    def put(new):
        if key is None:
            return
        parent[key] = new
    if kind == "drop":
        del parent[key]
    elif kind == "add":
        if isinstance(value, dict):
            value["zz_added"] = 1
        else:
            value.append(value[-1] if value else 1)
    elif kind == "retype":
        choices = [str(value), [value], None, True, {}]
        if isinstance(value, int) and not isinstance(value, bool):
            choices.append(float(value))
        if isinstance(value, float) and value == int(value):
            choices.append(int(value))
        put(choices[bit % len(choices)])
    elif kind == "nan":
        put([math.nan, math.inf, -math.inf][bit % 3])
    elif kind == "reshape":
        put([value + value[-1:], value[:-1], []][bit % 3])
    elif kind == "inflate":
        put(value * 1000 if isinstance(value, (list, str)) else [value] * 1000)
    if reseal:  # as if someone had also recomputed the digest: the schema itself must catch it
        record = seal(record)
    return json.dumps(record).encode("utf-8")


@FUZZ
@given(op=json_damage())
def test_damaged_run_json(good, op):
    text = good["files"]["run.json"].decode("utf-8")
    damaged = damage_json(text, op)
    code, err, written = predict_with({**good["files"], "run.json": damaged}, good["data"])
    if code == 0:
        assert written == good["predictions"], (op, damaged[:300])
        outcome = "same results"
    else:
        assert_clean_error(code, err)
        outcome = "clean error"
    resealed = op[3] and op[0] not in ("truncate", "flip")
    OUTCOMES["run.json"][f"{op[0]}{' (digest recomputed)' if resealed else ''}: {outcome}"] += 1


def test_resealed_records_are_checked_field_by_field(good):
    """Damage that keeps the digest right is still refused, naming the field."""
    record = json.loads(good["files"]["run.json"])
    for path, value, field in ((("data_info", "std", 0), 0.0, "data_info.std"),
                               (("data_info", "mean", 1), math.nan, "data_info.mean"),
                               (("data_info", "labels"), record["data_info"]["labels"] + ["extra"], "data_info.labels"),
                               (("config", "seed"), 2 ** 32, "config.seed"),
                               (("config", "hidden"), [0], "config.hidden"),
                               (("config", "optimizer"), ["adam"], "config.optimizer"),
                               (("data_info", "constant"), [0], "data_info.constant")):
        bad = copy.deepcopy(record)
        node = bad
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        code, err, _ = predict_with({**good["files"], "run.json": json.dumps(seal(bad)).encode()}, good["data"])
        assert_clean_error(code, err)
        assert field in err, err
    record["data_info"]["mean"][0] += 1.0  # one changed value, digest not recomputed
    code, err, _ = predict_with({**good["files"], "run.json": json.dumps(record).encode()}, good["data"])
    assert_clean_error(code, err)
    assert "record_sha256" in err


def test_every_line_of_a_multi_problem_error_is_printed(good):
    record = json.loads(good["files"]["run.json"])
    record["config"]["lr"] = -1
    record["config"]["batch_size"] = 0
    code, err, _ = predict_with({**good["files"], "run.json": json.dumps(seal(record)).encode()}, good["data"])
    assert_clean_error(code, err)
    assert "config.lr" in err and "config.batch_size" in err and len(err.strip().splitlines()) == 3


def test_copies_of_good_files_give_the_same_results(good):
    code, err, written = predict_with(good["files"], good["data"])
    assert code == 0 and written == good["predictions"]




# =============================================================================
# A text run (a character-level GPT): run.json and model.npz through leafgrad generate, checkpoint.npz
# (its history counted in iterations) through Trainer.load
# =============================================================================
POEM = "".join(f"line {i}: the cat sat on the mat.\n" for i in range(30))
TINY_GPT = ["--layers", "1", "--heads", "2", "--embd", "8", "--block-size", "8", "--batch-size", "4",
            "--eval-iters", "1"]


@pytest.fixture(scope="module")
def good_text(tmp_path_factory):
    """A small finished text run, and the text generate writes with it."""
    base = tmp_path_factory.mktemp("text-corruption")
    poem = base / "poem.txt"
    poem.write_text(POEM, encoding="utf-8")
    run_dir = str(base / "run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "figure_class", lambda: None)
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["train", "--data", str(poem), "--iters", "4", "--eval-interval", "2", *TINY_GPT,
                             "--out", run_dir, "--quiet"]) == 0
    files = {name: open(os.path.join(run_dir, name), "rb").read() for name in os.listdir(run_dir)}
    code, err, text = generate_with(files)
    assert code == 0, err
    return Good(files=files, text=text, config=json.loads(files["run.json"])["config"],
                vocab=json.loads(files["run.json"])["vocab"])


def generate_with(files, names=("run.json", "model.npz")):
    """``leafgrad generate`` on a run folder holding ``files``: (exit status, stderr, the text or None)."""
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            with open(os.path.join(d, name), "wb") as f:
                f.write(files[name])
        before = folder_digest(d)
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = cli.main(["generate", d, "--prompt", "the", "--length", "20", "--seed", "3", "--quiet"])
        assert folder_digest(d) == before  # the run folder is never changed
        return code, err.getvalue(), out.getvalue() if code == 0 else None


def assert_clean_generate_error(code, err):
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("leafgrad generate: error: "), err


@FUZZ
@given(op=json_damage([k for k in JSON_DAMAGES if k != "reshape"]))  # (a text run's record holds no list)
def test_damaged_text_run_json(good_text, op):
    damaged = damage_json(good_text["files"]["run.json"].decode("utf-8"), op)
    code, err, text = generate_with({**good_text["files"], "run.json": damaged})
    if code == 0:
        assert text == good_text["text"], (op, damaged[:300])
        outcome = "same results"
    else:
        assert_clean_generate_error(code, err)
        outcome = "clean error"
    resealed = op[3] and op[0] not in ("truncate", "flip")
    OUTCOMES["text run.json"][f"{op[0]}{' (digest recomputed)' if resealed else ''}: {outcome}"] += 1


def _text_members(good_text, name):
    return [n for n, _ in members(good_text["files"][name])]


def _a_damage(blob, op):
    """False for a transposed square matrix (a GPT's (C, C) projections): that is another valid file."""
    if op[0] != "reshape" or op[2] != "T":
        return True
    shape = next(from_npy(raw).shape for n, raw in members(blob) if n == op[1])
    return not (len(shape) == 2 and shape[0] == shape[1])


@pytest.mark.filterwarnings("ignore:Duplicate name")
@FUZZ
@given(data=st.data())
def test_damaged_text_model_npz(good_text, data):
    op = data.draw(npz_damage(_text_members(good_text, "model.npz")))
    assume(_a_damage(good_text["files"]["model.npz"], op))
    code, err, text = generate_with({**good_text["files"], "model.npz": damage_npz(good_text["files"]["model.npz"], op)})
    if code == 0:
        assert text == good_text["text"], op
    else:
        assert_clean_generate_error(code, err)
    OUTCOMES["text model.npz"][f"{op[0]}: {'same results' if code == 0 else 'clean error'}"] += 1


def fresh_text_trainer(good_text):
    from leafgrad.cli.text import make_text_trainer
    from leafgrad.text import CharText
    trainer = make_text_trainer(good_text["config"], CharText(POEM, vocab=good_text["vocab"]))
    np.random.seed(7)
    return trainer


def text_trainer_state(trainer):
    state = trainer_state(trainer)
    state["history"] = np.array(state["history"], dtype=np.float64).reshape(-1, 5)
    state["iteration"] = trainer.iteration
    return state


def same_text_state(a, b):
    return (same_state({**a, "history": []}, {**b, "history": []}) and a["iteration"] == b["iteration"]
            and np.array_equal(a["history"], b["history"], equal_nan=True))


def text_meta_damage():
    """Damages to the text checkpoint's record where it differs: the history's kind and the iteration count."""
    return st.tuples(st.just("meta"), st.tuples(
        st.sampled_from([("extra", "metrics_kind"), ("extra", "iteration")]),
        st.sampled_from(["drop", "epoch", "minutes", -1, 1.5, math.nan, None, True, [], 10 ** 30])))


@pytest.mark.filterwarnings("ignore:Duplicate name")
@FUZZ
@given(data=st.data())
def test_damaged_text_checkpoint_npz(good_text, data):
    good_blob = good_text["files"]["checkpoint.npz"]
    op = data.draw(st.one_of(npz_damage(_text_members(good_text, "checkpoint.npz")), meta_damage(),
                             text_meta_damage()))
    assume(_a_damage(good_blob, op))
    blob = damage_meta(good_blob, op) if op[0] == "meta" else damage_npz(good_blob, op)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "checkpoint.npz")
        with open(path, "wb") as f:
            f.write(good_blob)
        reference = fresh_text_trainer(good_text)
        reference.load(path)
        expected = text_trainer_state(reference)
        with open(path, "wb") as f:
            f.write(blob)
        trainer = fresh_text_trainer(good_text)
        before = text_trainer_state(trainer)
        try:
            trainer.load(path)
        except SerializationError:
            assert same_text_state(text_trainer_state(trainer), before), op
            outcome = "clean error"
        else:
            assert same_text_state(text_trainer_state(trainer), expected), op
            outcome = "same results"
        assert os.listdir(d) == ["checkpoint.npz"]
    OUTCOMES["text checkpoint.npz"][f"{op[0]}: {outcome}"] += 1
