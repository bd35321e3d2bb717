"""leafgrad.models.GPT and the transformer layers: shapes, causality, the key/value cache,
initialization, float32, memory, and that a tiny GPT learns a short string."""
import gc
import weakref

import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
import leafgrad.layers as L
from leafgrad import Variable
from leafgrad.models import GPT
from leafgrad.optimizers import Adam


def small(**kw):
    args = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, seed=0)
    args.update(kw)
    return GPT(**args)


def ids(b, t, v=11, seed=0):
    return np.random.RandomState(seed).randint(0, v, (b, t))


def test_logits_shape_dtype_and_loss():
    model = small()
    x = ids(3, 8)
    logits = model(x)
    assert logits.shape == (3, 8, 11) and logits.dtype == np.float32
    loss = F.softmax_cross_entropy(logits.reshape(3 * 8, 11), x.reshape(-1))
    assert loss.dtype == np.float32
    loss.backward()
    for name, p in model.named_params():
        assert p.grad is not None and p.grad.dtype == np.float32, name


def test_default_size_matches_nanogpt_parameter_count():
    model = GPT(65, seed=0)
    n = sum(p.data.size for p in model.params())
    assert n == 804_096  # nanoGPT: 0.80M with n_layer 4, n_head 4, n_embd 128, block 64, no biases


def test_weight_decay_rule_matrices_and_embeddings_have_two_axes():
    model = small(bias=True)
    two = {name for name, p in model.named_params() if p.ndim >= 2}
    one = {name for name, p in model.named_params() if p.ndim < 2}
    assert "wte/W" in two and "wpe/W" in two and "h0/attn/c_attn/W" in two and "h1/c_fc/W" in two
    assert all(name.endswith(("/b", "/gamma", "/beta")) for name in one)


def test_output_layer_is_tied_to_the_token_embedding():
    model = small()
    params = list(model.params())
    assert sum(p is model.wte.W for p in params) == 1
    model(ids(2, 4)).data  # noqa: B018
    logits = model(ids(2, 4))
    F.sum(logits).backward()
    assert model.wte.W.grad is not None


def test_initialization_as_nanogpt_and_seeded():
    a, b = small(n_layer=4, n_embd=64, n_head=4, vocab_size=300, block_size=64), \
        small(n_layer=4, n_embd=64, n_head=4, vocab_size=300, block_size=64)
    for (na, pa), (nb, pb) in zip(a.named_params(), b.named_params()):
        assert na == nb
        np.testing.assert_array_equal(pa.data, pb.data)
    assert abs(a.wte.W.data.std() - 0.02) < 0.002
    assert abs(a.h0.c_fc.W.data.std() - 0.02) < 0.002
    proj = 0.02 / np.sqrt(2 * 4)
    assert abs(a.h0.c_proj.W.data.std() - proj) < 0.1 * proj
    assert abs(a.h0.attn.c_proj.W.data.std() - proj) < 0.1 * proj
    assert (a.h0.ln_1.gamma.data == 1).all()


def test_unseeded_uses_numpys_global_generator():
    np.random.seed(3)
    a = small(seed=None)
    np.random.seed(3)
    b = small(seed=None)
    np.testing.assert_array_equal(a.h1.c_fc.W.data, b.h1.c_fc.W.data)


def test_changing_a_future_token_leaves_earlier_logits_unchanged():
    model = small()
    x = ids(2, 8)
    y0 = model(x).data
    x2 = x.copy()
    x2[:, 5] = (x2[:, 5] + 1) % 11
    y1 = model(x2).data
    np.testing.assert_array_equal(y0[:, :5], y1[:, :5])
    assert not np.allclose(y0[:, 5:], y1[:, 5:])


def test_longer_than_block_size_is_a_sentence():
    with pytest.raises(ValueError, match="GPT: cannot run a sequence of 9 positions: the block size"):
        small()(ids(1, 9))
    with pytest.raises(ValueError, match="GPT: expected integer ids of shape"):
        small()(np.ones((2, 3)))


def test_bad_sizes_are_sentences():
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPT(10, n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        GPT(10, block_size=0)


def test_cache_forward_equals_full_forward():
    model = small()
    x = ids(2, 7)
    full = model(x).data
    caches = [L.KVCache() for _ in model.blocks]
    with lg.no_grad():
        first = model(x[:, :4], caches).data
        rest = [model(x[:, t:t + 1], caches).data for t in range(4, 7)]
    np.testing.assert_allclose(first, full[:, :4], rtol=1e-5, atol=1e-6)
    for t, r in zip(range(4, 7), rest):
        np.testing.assert_allclose(r[:, 0], full[:, t], rtol=1e-5, atol=1e-6)
    assert len(caches[0]) == 7


@pytest.mark.parametrize("top_k", [None, 3])
def test_generate_with_and_without_cache_is_the_same_past_the_block_size(top_k):
    model = small()
    prompt = ids(2, 3)
    a = model.generate(prompt, 30, temperature=0.8, top_k=top_k, rng=np.random.RandomState(1))
    b = model.generate(prompt, 30, temperature=0.8, top_k=top_k, rng=np.random.RandomState(1), use_cache=False)
    assert a.shape == (2, 33) and a.dtype.kind == "i"
    np.testing.assert_array_equal(a[:, :3], prompt)
    np.testing.assert_array_equal(a, b)
    assert ((0 <= a) & (a < 11)).all()


def test_generate_keeps_no_graph_and_does_not_train():
    model = small(dropout=0.3)
    a = model.generate(ids(1, 2), 5, rng=np.random.default_rng(0))
    b = model.generate(ids(1, 2), 5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)  # dropout off under test_mode
    assert lg.Config.enable_backprop and lg.Config.train


def test_generate_argument_checks():
    model = small()
    with pytest.raises(ValueError, match="ids must be in"):
        model.generate(np.array([[11]]), 2)
    with pytest.raises(ValueError, match="temperature must be positive"):
        model.generate(np.array([[1]]), 2, temperature=0)


def test_graph_freed_by_refcounting_alone():
    model = small()
    x = ids(2, 8)
    gc.collect()
    gc.disable()
    try:
        logits = model(x)
        loss = F.softmax_cross_entropy(logits.reshape(-1, 11), x.reshape(-1))
        probe = weakref.ref(logits)
        node = weakref.ref(logits.creator)
        del logits
        loss.backward()
        del loss
        assert probe() is None and node() is None
    finally:
        gc.enable()


def test_layers_on_their_own():
    x = Variable(np.random.RandomState(0).randn(2, 5, 8).astype(np.float32))
    ln = L.LayerNorm(8)
    y = ln(x)
    np.testing.assert_allclose(y.data.mean(-1), 0, atol=1e-6)
    assert L.LayerNorm(8, bias=False).beta is None
    emb = L.Embedding(10, 4)
    assert emb(np.array([[1, 2]])).shape == (1, 2, 4) and emb.W.dtype == np.float32
    attn = L.CausalSelfAttention(8, 2)
    assert attn(x).shape == (2, 5, 8)
    block = L.TransformerBlock(8, 2, bias=True)
    assert block(x).shape == (2, 5, 8)
    with pytest.raises(ValueError, match="multiple of"):
        L.CausalSelfAttention(8, 3)


def test_tiny_gpt_overfits_a_short_string():
    text = "hello leafgrad! "
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text * 4])
    model = GPT(len(chars), block_size=16, n_layer=1, n_head=2, n_embd=32, seed=0)
    opt = Adam(alpha=1e-2).setup(model)
    x = np.stack([data[i:i + 16] for i in range(16)])
    t = np.stack([data[i + 1:i + 17] for i in range(16)])
    for _ in range(60):
        loss = F.softmax_cross_entropy(model(x).reshape(-1, len(chars)), t.reshape(-1))
        model.cleargrads()
        loss.backward()
        opt.update()
    assert float(loss.data) < 0.1
    out = model.generate(np.array([[chars.index("h")]]), 15, top_k=1)
    assert "".join(chars[i] for i in out[0]) == text[:16]
