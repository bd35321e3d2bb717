"""scaled_dot_product_attention: values against a plain NumPy reference, masks, the key/value-cache
alignment of causal attention, what backward keeps, argument checks (gradients: test_gradients.py)."""
import gc
import weakref

import numpy as np
import pytest

import leafgrad as lg
import leafgrad.functions as F
from leafgrad import Variable
from leafgrad.functions.attention import ScaledDotProductAttention


def reference(q, k, v, mask=None, causal=False):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    tq, tk = s.shape[-2:]
    if causal:
        s = np.where(np.arange(tk)[None, :] <= np.arange(tq)[:, None] + (tk - tq), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    return p @ v


def qkv(*shape, tk=None, seed=0):
    rs = np.random.RandomState(seed)
    b = shape[:-2]
    tq, d = shape[-2:]
    tk = tq if tk is None else tk
    return rs.randn(*shape), rs.randn(*b, tk, d), rs.randn(*b, tk, d + 1)


@pytest.mark.parametrize("causal", [False, True])
def test_matches_reference(causal):
    q, k, v = qkv(2, 3, 5, 4)
    y = F.scaled_dot_product_attention(q, k, v, causal=causal)
    assert y.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(y.data, reference(q, k, v, causal=causal), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_rows_of_very_different_scale_are_stable(causal):
    """One row's scores far above the others': each row is still normalized against its own maximum."""
    q, k, v = qkv(4, 3, tk=4)
    q[1] *= 200.0  # scores of query 1 in the hundreds
    q[2] *= 1e-3
    y = F.scaled_dot_product_attention(q, k, v, causal=causal).data
    np.testing.assert_allclose(y, reference(q, k, v, causal=causal), rtol=1e-10, atol=1e-12)
    assert np.isfinite(y).all()
    q32, k32, v32 = (a.astype(np.float32) for a in (q * 10, k, v))
    y32 = F.scaled_dot_product_attention(q32, k32, v32, causal=causal).data
    np.testing.assert_allclose(y32, reference(q * 10, k, v, causal=causal), rtol=1e-4, atol=1e-5)


def test_batchless_inputs():
    q, k, v = qkv(5, 4)
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, causal=True).data,
                               reference(q, k, v, causal=True), rtol=1e-12)


def test_boolean_and_additive_masks():
    q, k, v = qkv(2, 4, 3, tk=6)
    attend = np.random.RandomState(1).rand(4, 6) > 0.3
    attend[:, 0] = True
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, mask=attend).data,
                               reference(q, k, v, mask=attend), rtol=1e-12)
    bias = np.random.RandomState(2).randn(2, 1, 6)
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, mask=bias).data,
                               reference(q, k, v, mask=bias), rtol=1e-12)


def test_causal_with_fewer_queries_is_the_last_rows_of_the_full_attention():
    """Key/value cache: query i of the last Tq positions attends keys up to Tk - Tq + i."""
    q, k, v = qkv(2, 7, 4)
    full = F.scaled_dot_product_attention(q, k, v, causal=True).data
    for tq in (1, 3):
        part = F.scaled_dot_product_attention(q[:, -tq:], k, v, causal=True).data
        np.testing.assert_allclose(part, full[:, -tq:], rtol=1e-12)


def test_causal_changing_a_future_key_changes_nothing_before_it():
    q, k, v = qkv(6, 4)
    y0 = F.scaled_dot_product_attention(q, k, v, causal=True).data
    k2, v2 = k.copy(), v.copy()
    k2[4] += 3.0
    v2[4] -= 2.0
    y1 = F.scaled_dot_product_attention(q, k2, v2, causal=True).data
    np.testing.assert_array_equal(y0[:4], y1[:4])
    assert not np.allclose(y0[4:], y1[4:])


def test_matches_torch_forward_and_backward():
    torch = pytest.importorskip("torch")
    q, k, v = (a.astype(np.float32) for a in qkv(2, 3, 6, 4, tk=6))
    gy = np.random.RandomState(5).randn(2, 3, 6, 5).astype(np.float32)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    ty = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    ty.backward(torch.tensor(gy))
    xs = [Variable(a) for a in (q, k, v)]
    y = F.scaled_dot_product_attention(*xs, causal=True)
    y.grad = Variable(gy)
    y.backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    for x, t in zip(xs, (tq, tk, tv)):
        assert x.grad.dtype == np.float32
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_float32_stays_float32_with_a_float64_mask():
    q, k, v = (a.astype(np.float32) for a in qkv(4, 3))
    y = F.scaled_dot_product_attention(q, k, v, mask=np.zeros((4, 4)))
    assert y.dtype == np.float32


def test_keeps_only_q_k_v_and_frees_them_on_backward():
    q, k, v = (Variable(a) for a in qkv(2, 5, 4))
    y = F.scaled_dot_product_attention(q, k, v, causal=True)
    node = y.creator
    assert isinstance(node, ScaledDotProductAttention)
    kept = node._kept_inputs
    assert len(kept) == 3 and node.saved is None  # no probabilities, no scores
    probe = weakref.ref(kept[0])
    del kept
    q.data = q.data.copy()  # the caller lets go of its array: only the function holds the old one
    gc.disable()
    try:
        F.sum(y).backward()
        assert probe() is None          # freed by reference counting alone
        assert node._kept_inputs is None
    finally:
        gc.enable()


def test_mask_is_kept_by_reference_only():
    q, k, v = (Variable(a) for a in qkv(4, 3))
    mask = np.ones((4, 4), bool)
    y = F.scaled_dot_product_attention(q, k, v, mask=mask)
    assert y.creator.saved[0] is mask


def test_no_grad_keeps_nothing():
    q, k, v = (Variable(a) for a in qkv(5, 4))
    with lg.no_grad():
        y = F.scaled_dot_product_attention(q, k, v)
    assert y.creator is None


@pytest.mark.parametrize("args, kwargs, match", [
    ((np.ones((3, 4)), np.ones((3, 5)), np.ones((3, 2))), {}, "last axis"),
    ((np.ones((3, 4)), np.ones((3, 4)), np.ones((2, 2))), {}, "key axis"),
    ((np.ones(4), np.ones((3, 4)), np.ones((3, 2))), {}, "at least two axes"),
    ((np.ones((2, 3, 4)), np.ones((3, 3, 4)), np.ones((3, 3, 2))), {}, "do not broadcast"),
    ((np.ones((4, 4)), np.ones((3, 4)), np.ones((3, 2))), {"causal": True}, "no more queries"),
    ((np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 2))), {"mask": np.ones((2, 3), bool)}, "mask of shape"),
])
def test_bad_shapes_are_sentences(args, kwargs, match):
    with pytest.raises(ValueError, match="scaled_dot_product_attention: .*" + match):
        F.scaled_dot_product_attention(*args, **kwargs)


def test_integer_mask_is_refused():
    with pytest.raises(TypeError, match="scaled_dot_product_attention: mask must be boolean"):
        F.scaled_dot_product_attention(np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 2)), mask=np.ones((3, 3), int))


def test_dropout_matches_reference_and_keeps_only_its_boolean_mask():
    q, k, v = qkv(2, 5, 4)
    np.random.seed(3)
    y = F.scaled_dot_product_attention(Variable(q), Variable(k), Variable(v), causal=True, dropout_p=0.25)
    # the reference draws the mask as F.dropout draws it, after the probabilities
    np.random.seed(3)
    s = q @ np.swapaxes(k, -1, -2) / 2.0 + np.triu(np.full((5, 5), -np.inf), 1)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    keep = np.random.rand(*p.shape) > 0.25
    np.testing.assert_allclose(y.data, (p * keep / 0.75) @ v, rtol=1e-12)
    mask, kept = y.creator.saved
    assert mask is None and kept.dtype == bool and np.array_equal(kept, keep)


def test_dropout_only_in_training_mode():
    q, k, v = qkv(2, 5, 4)
    with lg.test_mode():
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_allclose(y.data, reference(q, k, v), rtol=1e-12)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_p_out_of_range_is_a_sentence(p):
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: dropout_p must be in \[0, 1\)"):
        F.scaled_dot_product_attention(np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 2)), dropout_p=p)
