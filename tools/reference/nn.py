"""Small float32 building blocks shared by the encoder and the decoder.

Weights live in a plain dict (tensor name -> float32 tensor, names as in
docs/model-format.md); every helper takes the dict and a name prefix, so each line reads
against the tensor table.
"""
import math

import torch
import torch.nn.functional as F

LN_EPS = 1e-5  # every LayerNorm in the authors' models (torch default)


def linear(x, W, name):
    """x @ W[name.weight]^T (+ W[name.bias] when the model has that tensor)."""
    return F.linear(x, W[name + ".weight"], W.get(name + ".bias"))


def layer_norm(x, W, name):
    return F.layer_norm(x, (x.shape[-1],), W[name + ".weight"], W[name + ".bias"], LN_EPS)


def fairseq_sinusoid(n, d, start):
    """Rows start .. start+n-1 of fairseq's SinusoidalPositionalEmbedding table (SPEC section 3):
    [sin(p f_k) | cos(p f_k)] in halves, f_k = exp(-k ln(10000)/(d/2 - 1)), float32 throughout
    as fairseq computes it."""
    half = d // 2
    step = math.log(10000) / (half - 1)
    freq = torch.exp(torch.arange(half, dtype=torch.float32) * -step)
    ang = torch.arange(start, start + n, dtype=torch.float32).unsqueeze(1) * freq.unsqueeze(0)
    emb = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
    if d % 2:
        emb = torch.cat([emb, torch.zeros(n, 1)], dim=1)
    return emb


def rope_interleaved(x, pos, theta, per_head):
    """Rotates pairs (x[2i], x[2i+1]) of the last dim by pos * theta^(-2i/d) (SPEC section 5).

    x: (..., L, heads, d) when per_head, else (..., L, d); pos: (L,) positions of those rows.
    Frequencies, angles, cos/sin and the rotation are float32, as in the authors' code
    (torch.polar + complex64 multiply; the same products and sums written out).
    """
    d = x.shape[-1]
    freqs = 1.0 / (theta ** (torch.arange(0, d, 2).float() / d))
    ang = pos.float().unsqueeze(-1) * freqs  # (L, d/2)
    cos, sin = torch.cos(ang), torch.sin(ang)
    if per_head:
        cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)  # broadcast over heads
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)


def causal_prompt_mask(S, L):
    """Additive (L, S+L) mask for text queries over [prompt ; text]: every prompt row visible,
    text key j' visible to text query j iff j' <= j (what fairseq builds in training)."""
    m = torch.zeros(L, S + L)
    m[:, S:] = torch.triu(torch.full((L, L), float("-inf")), diagonal=1)
    return m
