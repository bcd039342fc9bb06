"""Decoder self-attention over [speech prompt ; text], float32 (SPEC sections 4 and 5).

Every attention type offers the same four operations, on a batch of B hypotheses:

  start(P, a, S)       first step: keys/values [P ; a] (P shared by all rows), query a (the
                       start token, position S); returns (out (B,1,D), state)
  step(a, pos, state)  one more text token at position pos; updates state; returns (B,1,D)
  reorder(state, idx)  keeps/duplicates hypotheses: row b of the new state = row idx[b]
  full(P, A)           training-style pass: A (L,D) are the text rows at positions S..S+L-1,
                       queries are the text rows only; returns (L,D)

Types:
  RotaryAttention     mha / gqa baselines: per-head K/V cache, interleaved RoPE over head_dim.
  LatentAttention     mla (authors' MultiheadLatentAttention: slot = c, one per token) and our
                      own MTLA (slot = sum of w*c over a chunk of s tokens), written from
                      SPEC section 5 / docs/architecture.md section 4.
  AuthorsMTLA         the authors' standalone MultiheadTemporalLatentAttention (PyPI `mtla`)
                      with our tensors loaded by name. It serves the incremental path for
                      s >= 2 and the training path (stride-aware mask) for every s. Its
                      incremental path is wrong for s = 1 (T mod 1 is never 1, so every token
                      after the first step is added into the last slot; docs/architecture.md
                      4.6), so s = 1 decodes incrementally with LatentAttention, which follows
                      the training-path math (every token opens a slot holding w*c).
"""
import torch
import torch.nn as nn

from . import authors
from .nn import causal_prompt_mask, layer_norm, linear, rope_interleaved


def _positions(start, n):
    return torch.arange(start, start + n, dtype=torch.float32)


class RotaryAttention:
    """mha (kv_heads = heads) and gqa/mqa: authors' RotaryMultiheadAttention and
    GQARotaryMultiheadAttention. q = (W_q x + b) * d_h^-1/2, RoPE on q and k over the whole
    head, query head h reads kv head floor(h / (H / H_kv)); the cache holds rotated K and V."""

    def __init__(self, W, prefix, att):
        self.W, self.p = W, prefix
        self.H, self.Hkv, self.dh = att["heads"], att["kv_heads"], att["head_dim"]
        self.theta = float(att["rope_theta"])

    def _q(self, x, pos):
        B, L, _ = x.shape
        q = (linear(x, self.W, self.p + "q_proj") * self.dh ** -0.5).view(B, L, self.H, self.dh)
        return rope_interleaved(q, pos, self.theta, per_head=True).transpose(1, 2)  # B,H,L,dh

    def _kv(self, y, pos):
        B, T, _ = y.shape
        k = linear(y, self.W, self.p + "k_proj").view(B, T, self.Hkv, self.dh)
        v = linear(y, self.W, self.p + "v_proj").view(B, T, self.Hkv, self.dh)
        k = rope_interleaved(k, pos, self.theta, per_head=True)
        return k.transpose(1, 2), v.transpose(1, 2)                    # B,Hkv,T,dh

    def _attend(self, q, k, v, mask=None):
        rep = self.H // self.Hkv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        s = q @ k.transpose(-2, -1)
        if mask is not None:
            s = s + mask
        o = torch.softmax(s, dim=-1) @ v                              # B,H,L,dh
        B, _, L, _ = o.shape
        return linear(o.transpose(1, 2).reshape(B, L, self.H * self.dh), self.W,
                      self.p + "out_proj")

    def start(self, P, a, S):
        B = a.shape[0]
        y = torch.cat([P.unsqueeze(0).expand(B, -1, -1), a], dim=1)
        k, v = self._kv(y, _positions(0, S + 1))
        state = {"k": k, "v": v}
        return self._attend(self._q(a, _positions(S, 1)), k, v), state

    def step(self, a, pos, state):
        k, v = self._kv(a, _positions(pos, 1))
        state["k"] = torch.cat([state["k"], k], dim=2)
        state["v"] = torch.cat([state["v"], v], dim=2)
        return self._attend(self._q(a, _positions(pos, 1)), state["k"], state["v"])

    def reorder(self, state, idx):
        for key in state:
            state[key] = state[key].index_select(0, idx)

    def full(self, P, A):
        S, L = P.shape[0], A.shape[0]
        k, v = self._kv(torch.cat([P, A])[None], _positions(0, S + L))
        q = self._q(A[None], _positions(S, L))
        return self._attend(q, k, v, causal_prompt_mask(S, L))[0]


class LatentAttention:
    """mla, and our own MTLA (SPEC section 5), absorbed form.

    Per key row u at 1-based global index T (prompt rows first): [c_raw | k_r] = W_kva u,
    c = kv_norm(c_raw), rho = RoPE(k_r, T-1). MTLA weight w = sigmoid(fc_c(PE(m)) . fc_p(c)),
    m = floor((T-1)/s). Cache rule: a row with (T-1) mod s == 0 opens a new slot (w c, rho);
    any other row adds w c into the last slot and overwrites its rope key. For s >= 2 this is
    the authors' "T mod s == 1" rule; for s = 1 it is their training path (every row its own
    slot), which their incremental code gets wrong. MLA: no w, every row its own slot.
    Scores (q~_h . slot + q_r,h . rho) / sqrt(d_n + d_r), q~_h = W_UK,h^T q_n,h.
    """

    def __init__(self, W, prefix, att):
        self.W, self.p = W, prefix
        self.H = att["heads"]
        self.r, self.dn = att["kv_lora_rank"], att["qk_nope_head_dim"]
        self.dr, self.dv = att["qk_rope_head_dim"], att["v_head_dim"]
        self.theta = float(att["rope_theta"])
        self.temporal = att["type"] == "mtla"
        self.s = att["down_rate"] if self.temporal else 1
        self.scale = (self.dn + self.dr) ** -0.5
        wkv_b = W[prefix + "wkv_b.weight"].view(self.H, self.dn + self.dv, self.r)
        self.w_uk, self.w_uv = wkv_b[:, : self.dn], wkv_b[:, self.dn:]

    # -- pieces
    def _q(self, x, pos):
        B, L, _ = x.shape
        q = linear(x, self.W, self.p + "wq").view(B, L, self.H, self.dn + self.dr)
        q_n, q_r = q[..., : self.dn], q[..., self.dn:]
        q_r = rope_interleaved(q_r, pos, self.theta, per_head=True)
        return torch.einsum("blhd,hdc->blhc", q_n, self.w_uk), q_r

    def _kv(self, y, pos):
        kv = linear(y, self.W, self.p + "wkv_a")
        c = layer_norm(kv[..., : self.r], self.W, self.p + "kv_norm")
        rho = rope_interleaved(kv[..., self.r:], pos, self.theta, per_head=False)
        return c, rho

    def _chunk_pe(self, m):
        """HyperNetwork.positional_encoding: d = r, sin on even dims, cos on odd dims (float32,
        written with the same float32 operations as the authors')."""
        div = torch.exp(torch.arange(0, self.r, 2, dtype=torch.float) *
                        (-torch.log(torch.tensor(10000.0)) / self.r))
        pos = m.to(torch.float).unsqueeze(1)
        pe = torch.zeros(m.shape[0], self.r)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        return pe

    def _weight(self, c, T):
        """w for rows c (B, n, r) at 1-based global indices T (n,) -> (B, n, 1)."""
        if not self.temporal:
            return torch.ones(*c.shape[:-1], 1)
        m = torch.div(T - 1, self.s, rounding_mode="floor")
        cc = linear(self._chunk_pe(m).to(c.dtype), self.W, self.p + "hypernet_down.fc_c")
        cp = linear(c, self.W, self.p + "hypernet_down.fc_p")                   # (B, n, h)
        return torch.sigmoid((cc * cp).sum(-1, keepdim=True))

    def _attend(self, q_abs, q_r, slots, rope_keys, mask=None):
        s = (torch.einsum("blhc,btc->blht", q_abs, slots) +
             torch.einsum("blhr,btr->blht", q_r, rope_keys)) * self.scale
        if mask is not None:
            s = s + mask[None, :, None, :]
        o = torch.einsum("blht,btc->blhc", torch.softmax(s, dim=-1), slots)
        y = torch.einsum("blhc,hdc->blhd", o, self.w_uv)
        return linear(y.flatten(2), self.W, self.p + "wo")

    def _absorb(self, state, c, rho, T0):
        """Applies the cache rule to rows c, rho (B, n, .) with global indices T0, T0+1, ..."""
        n = c.shape[1]
        T = torch.arange(T0, T0 + n)
        wc = self._weight(c, T) * c
        for i in range(n):
            t = T0 + i
            if state["slots"] is None or (t - 1) % self.s == 0:
                new_s, new_r = wc[:, i:i + 1], rho[:, i:i + 1]
                if state["slots"] is None:
                    state["slots"], state["rope"] = new_s, new_r
                else:
                    state["slots"] = torch.cat([state["slots"], new_s], dim=1)
                    state["rope"] = torch.cat([state["rope"], new_r], dim=1)
            else:
                state["slots"] = torch.cat([state["slots"][:, :-1],
                                            state["slots"][:, -1:] + wc[:, i:i + 1]], dim=1)
                state["rope"] = torch.cat([state["rope"][:, :-1], rho[:, i:i + 1]], dim=1)
        state["count"] = T0 + n - 1

    # -- interface
    def start(self, P, a, S):
        B = a.shape[0]
        y = torch.cat([P.unsqueeze(0).expand(B, -1, -1), a], dim=1)
        c, rho = self._kv(y, _positions(0, S + 1))
        state = {"slots": None, "rope": None, "count": 0}
        self._absorb(state, c, rho, 1)
        q_abs, q_r = self._q(a, _positions(S, 1))
        return self._attend(q_abs, q_r, state["slots"], state["rope"]), state

    def step(self, a, pos, state):
        c, rho = self._kv(a, _positions(pos, 1))
        self._absorb(state, c, rho, state["count"] + 1)
        q_abs, q_r = self._q(a, _positions(pos, 1))
        return self._attend(q_abs, q_r, state["slots"], state["rope"])

    def reorder(self, state, idx):
        state["slots"] = state["slots"].index_select(0, idx)
        state["rope"] = state["rope"].index_select(0, idx)

    def full(self, P, A):
        """Training path: key j holds the within-chunk prefix sum of w c up to row j and rho_j;
        text query i sees key j iff (j <= i and (j+1) mod s == 0) or j == i (SPEC 5)."""
        S, L = P.shape[0], A.shape[0]
        T = S + L
        c, rho = self._kv(torch.cat([P, A])[None], _positions(0, T))
        wc = self._weight(c, torch.arange(1, T + 1)) * c
        j = torch.arange(T)
        same_chunk = (j[:, None] // self.s) == (j[None, :] // self.s)
        prefix = (same_chunk & (j[None, :] <= j[:, None])).to(wc.dtype)    # row i sums cols j
        keys = (prefix @ wc[0])[None]
        i = torch.arange(S, T)[:, None]
        visible = ((j[None, :] <= i) & ((j[None, :] + 1) % self.s == 0)) | (j[None, :] == i)
        mask = torch.zeros(L, T).masked_fill(~visible, float("-inf"))
        q_abs, q_r = self._q(A[None], _positions(S, L))
        return self._attend(q_abs, q_r, keys, rho, mask)[0]


class AuthorsMTLA:
    """The authors' standalone MultiheadTemporalLatentAttention with our tensors loaded by name.

    Their HyperNetwork hard-codes rank r/4; when the config's hyper_rank differs, fc_c/fc_p
    are replaced by Linear(r, hyper_rank) before loading (their forward only calls them).
    RoPE theta is hard-coded to 10000 there, so other thetas cannot use this class.
    """

    def __init__(self, W, prefix, att, d_model):
        if float(att["rope_theta"]) != 10000.0:
            raise ValueError("the authors' MTLA module hard-codes rope_theta 10000")
        cls = authors.mtla_class()
        self.s = att["down_rate"]
        m = cls(embed_dim=d_model, num_heads=att["heads"], dropout=0.0, bias=False,
                q_lora_rank=0, kv_lora_rank=att["kv_lora_rank"],
                qk_nope_head_dim=att["qk_nope_head_dim"],
                qk_rope_head_dim=att["qk_rope_head_dim"], v_head_dim=att["v_head_dim"],
                down_rate=att["down_rate"])
        r, hr = att["kv_lora_rank"], att["hyper_rank"]
        if m.hypernet_down.fc_c.out_features != hr:
            m.hypernet_down.fc_c = nn.Linear(r, hr)
            m.hypernet_down.fc_p = nn.Linear(r, hr)
        m.load_state_dict({k[len(prefix):]: v for k, v in W.items() if k.startswith(prefix)},
                          strict=True)
        self.m = m.eval()

    def start(self, P, a, S):
        if self.s == 1:
            raise ValueError("the authors' incremental MTLA path is wrong for down_rate 1")
        B = a.shape[0]
        y = torch.cat([P.unsqueeze(0).expand(B, -1, -1), a], dim=1)
        state = {}
        pos = _positions(0, S + 1).unsqueeze(0).expand(B, -1)
        return self.m(query=a, key=y, value=y, position=pos, incremental_state=state), state

    def step(self, a, pos, state):
        p = _positions(pos, 1).unsqueeze(0).expand(a.shape[0], -1)
        return self.m(query=a, key=a, value=a, position=p, incremental_state=state)

    def reorder(self, state, idx):
        self.m.reorder_incremental_state(state, idx)

    def full(self, P, A):
        S, L = P.shape[0], A.shape[0]
        y = torch.cat([P, A])[None]
        pos = _positions(0, S + L)[None]
        return self.m(query=A[None], key=y, value=y, self_attn_mask=causal_prompt_mask(S, L),
                      position=pos, incremental_state=None)[0]


class MTLAOracle:
    """What the oracle runs for "mtla": the authors' module wherever it is right (training
    path for every s; incremental path for s >= 2), our LatentAttention for s = 1 incremental
    (see the module docstring). impl="ours" runs LatentAttention for everything (used by the
    golden script to cross-check the two)."""

    def __init__(self, W, prefix, att, d_model, impl="auto"):
        self.ours = LatentAttention(W, prefix, att)
        use_authors = impl != "ours" and float(att["rope_theta"]) == 10000.0
        self.theirs = AuthorsMTLA(W, prefix, att, d_model) if use_authors else None
        self.incremental = self.theirs if (self.theirs and att["down_rate"] >= 2) else self.ours
        self.training = self.theirs or self.ours

    def start(self, P, a, S):
        return self.incremental.start(P, a, S)

    def step(self, a, pos, state):
        return self.incremental.step(a, pos, state)

    def reorder(self, state, idx):
        self.incremental.reorder(state, idx)

    def full(self, P, A):
        return self.training.full(P, A)


def build_attention(W, prefix, att, d_model, mtla_impl="auto"):
    if att["type"] in ("mha", "gqa"):
        return RotaryAttention(W, prefix, att)
    if att["type"] == "mla":
        return LatentAttention(W, prefix, att)
    return MTLAOracle(W, prefix, att, d_model, mtla_impl)
