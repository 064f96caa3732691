"""The float64 reference against a second, independently written NumPy implementation
of docs/design.md's layout (per-head and per-gate loops, einsum), and hand-derived cases."""

import dataclasses
import math

import numpy as np
import pytest

from bench import canonical, reference, spec


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _act(name, x):
    return {"relu": lambda: np.where(x > 0, x, 0.0), "tanh": lambda: np.tanh(x),
            "sigmoid": lambda: _sig(x), "identity": lambda: x, "swish": lambda: x * _sig(x),
            "gelu": lambda: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
            "gelu_tanh": lambda: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                        * (x + 0.044715 * x ** 3)))}[name]()


def independent(s, p, x):
    if s.kind == "mlp":
        n = len(s.hidden) + 1
        for i in range(n):
            x = np.einsum("bi,io->bo", x, p[f"layers.{i}.kernel"]) + p[f"layers.{i}.bias"]
            x = _act(s.activation, x) if i < n - 1 else x
        return x
    if s.kind == "lstm":
        H = s.hidden_size
        seq = x
        for layer in range(s.num_layers):
            W = p[f"lstm.{layer}.kernel"]
            U, b = p[f"lstm.{layer}.recurrent_kernel"], p[f"lstm.{layer}.bias"]

            def gate(k, xt, h, W=W, U=U, b=b):
                cols = slice(k * H, (k + 1) * H)
                return xt @ W[:, cols] + h @ U[:, cols] + b[cols]

            h = np.zeros((x.shape[0], H))
            c = np.zeros_like(h)
            hs = []
            for t in range(seq.shape[1]):
                xt = seq[:, t]
                i_, f_ = _sig(gate(0, xt, h)), _sig(gate(1, xt, h))
                g_, o_ = np.tanh(gate(2, xt, h)), _sig(gate(3, xt, h))
                c = f_ * c + i_ * g_
                h = o_ * np.tanh(c)
                hs.append(h)
            seq = np.stack(hs, 1)
        return seq[:, -1] @ p["head.kernel"] + p["head.bias"]
    # attention: one head at a time, explicit position table
    B, T, _ = x.shape
    d, hd = s.d_model, s.d_model // s.num_heads
    pe = np.array([[math.sin(t / 10000 ** (j / d)) if j % 2 == 0
                    else math.cos(t / 10000 ** ((j - 1) / d)) for j in range(d)]
                   for t in range(T)])
    h = x @ p["embed.kernel"] + p["embed.bias"] + pe

    def ln(y, name):
        mu, var = y.mean(-1, keepdims=True), y.var(-1, keepdims=True)
        return (y - mu) / np.sqrt(var + s.layer_norm_eps) * p[name + ".scale"] + p[name + ".bias"]

    def attn(y, blk):
        proj = {w: y @ p[f"{blk}.attn.{w}.kernel"] + p[f"{blk}.attn.{w}.bias"] for w in "qkv"}
        heads = []
        for n in range(s.num_heads):
            sl = slice(n * hd, (n + 1) * hd)
            sc = np.einsum("bqd,bkd->bqk", proj["q"][..., sl], proj["k"][..., sl]) / math.sqrt(hd)
            if s.causal:
                sc = sc + np.triu(np.full((T, T), -1e300), 1)
            w = np.exp(sc - sc.max(-1, keepdims=True))
            w /= w.sum(-1, keepdims=True)
            heads.append(np.einsum("bqk,bkd->bqd", w, proj["v"][..., sl]))
        return np.concatenate(heads, -1) @ p[f"{blk}.attn.o.kernel"] + p[f"{blk}.attn.o.bias"]

    def ffn(y, blk):
        z = _act(s.activation, y @ p[f"{blk}.ffn.0.kernel"] + p[f"{blk}.ffn.0.bias"])
        return z @ p[f"{blk}.ffn.1.kernel"] + p[f"{blk}.ffn.1.bias"]

    for b in range(s.num_blocks):
        blk = f"blocks.{b}"
        if s.norm == "post":
            h = ln(h + attn(h, blk), blk + ".ln1")
            h = ln(h + ffn(h, blk), blk + ".ln2")
        else:
            h = h + attn(ln(h, blk + ".ln1"), blk)
            h = h + ffn(ln(h, blk + ".ln2"), blk)
    return h.mean(1) @ p["head.kernel"] + p["head.bias"]


def _variants():
    tiny = {m: spec.preset("tiny", m)[0] for m in spec.MODELS}
    out = [tiny["lstm"], tiny["attention"]]
    out += [dataclasses.replace(tiny["mlp"], activation=a) for a in spec.ACTIVATIONS]
    out += [dataclasses.replace(tiny["attention"], norm="pre", causal=True, activation="relu")]
    out += [dataclasses.replace(tiny["attention"], causal=True, num_heads=4)]
    return out


@pytest.mark.parametrize("s", _variants(), ids=lambda s: f"{s.kind}-{getattr(s, 'activation', '')}")
def test_reference_matches_independent_implementation(s):
    rng = np.random.default_rng(5)
    p = {k: v + 0.2 * rng.standard_normal(v.shape) for k, v in canonical.init_params(s, 1).items()}
    x = rng.standard_normal((3, *s.input_shape))
    ref, ind = reference.forward(s, p, x), independent(s, p, x)
    assert np.abs(ref - ind).max() <= 1e-12 * max(1.0, np.abs(ind).max())


def test_lstm_closed_form_with_zero_weights():
    # Zero kernels: every gate sees only its bias, so c_t = f c_{t-1} + i g and
    # h_T = o tanh(c_T) in closed form.
    s = spec.LSTMSpec(in_features=2, hidden_size=1, num_layers=1, seq_len=3, out_features=1)
    p = {k: np.zeros_like(v) for k, v in canonical.init_params(s).items()}
    p["lstm.0.bias"] = np.array([0.3, -0.2, 0.5, 0.1])
    p["head.kernel"] = np.ones((1, 1))
    i, f, g, o = _sig(0.3), _sig(-0.2), np.tanh(0.5), _sig(0.1)
    c = 0.0
    for _ in range(3):
        c = f * c + i * g
    out = reference.forward(s, p, np.ones((1, 3, 2)))
    assert out[0, 0] == pytest.approx(o * np.tanh(c), rel=1e-15)


def test_losses():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    ce = reference.loss_value("cross_entropy", logits, np.array([0, 2]))
    expected = -(np.log(np.exp(2) / (np.exp(2) + 1 + np.exp(-1))) + np.log(1 / 3)) / 2
    assert ce == pytest.approx(expected, rel=1e-15)
    assert reference.loss_value("mse", logits, np.zeros_like(logits)) == pytest.approx(5 / 6, rel=1e-15)
    with pytest.raises(ValueError, match="loss='hinge'"):
        reference.loss_value("hinge", logits, logits)


def test_finite_differences_agree_with_analytic_gradient_of_linear_model():
    # MLP with no hidden layer and mse: dL/dW = 2/(B*O) x^T (xW + b - y), exactly.
    s = spec.MLPSpec(in_features=3, hidden=(), out_features=2)
    rng = np.random.default_rng(0)
    p = canonical.init_params(s)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    fd, _ = reference.finite_difference_grads(s, p, x, y, "mse", 1e-5)
    resid = x @ p["layers.0.kernel"] + p["layers.0.bias"] - y
    assert np.allclose(fd["layers.0.kernel"], 2 / 8 * x.T @ resid, rtol=1e-8, atol=1e-10)
