"""The decoder-only prompt decoder (SPEC section 4, docs/architecture.md section 3), float32.

Layer l (LN1 = self_attn_layer_norm, LN2 = final_layer_norm), exactly as the authors' code:
    a = LN1(x);  x = LN1(x + Attn(query a, key/value [P ; a]));  x = LN2(x + fc2(ReLU(fc1(x))))
Input x = sqrt(D) * embed_tokens[token]; no absolute positions; RoPE positions: prompt frame i
-> i, text token j -> S + j (j = 0 is the start token, EOS). After the last layer:
decoder.layer_norm, output_projection (no bias), log-softmax in float32.

Two paths that must agree (the golden script asserts it):
- incremental: start() then step(), a batch of hypotheses with reorderable caches;
- full: one training-style pass over a whole token sequence (stride-aware mask for MTLA).
"""
import math

import torch
import torch.nn.functional as F

from .attention import build_attention
from .nn import layer_norm, linear


class PromptDecoder:
    def __init__(self, cfg, W, mtla_impl="auto"):
        self.cfg, self.W = cfg, W
        dec = cfg["decoder"]
        self.D, self.n_layers = dec["d_model"], dec["layers"]
        self.eos = cfg["vocab"]["eos"]
        self.attn = [build_attention(W, f"decoder.layers.{l}.self_attn.", dec["attention"],
                                     self.D, mtla_impl) for l in range(self.n_layers)]

    def _embed(self, tokens):
        return math.sqrt(self.D) * F.embedding(tokens, self.W["decoder.embed_tokens.weight"])

    def _finish_layer(self, l, x, attn_out):
        p = f"decoder.layers.{l}."
        x = layer_norm(x + attn_out, self.W, p + "self_attn_layer_norm")
        ffn = linear(F.relu(linear(x, self.W, p + "fc1")), self.W, p + "fc2")
        return layer_norm(x + ffn, self.W, p + "final_layer_norm")

    def _log_probs(self, x):
        x = layer_norm(x, self.W, "decoder.layer_norm")
        logits = F.linear(x, self.W["decoder.output_projection.weight"])
        # float32 at least, as fairseq's get_normalized_probs; float64 runs stay float64
        return torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)),
                                 dim=-1)

    # -- incremental path
    def start(self, P, batch):
        """First step for `batch` identical hypotheses (start token EOS at position S).
        Returns (log-probs (batch, V), state)."""
        S = P.shape[0]
        x = self._embed(torch.full((batch, 1), self.eos, dtype=torch.long))
        caches = []
        for l, att in enumerate(self.attn):
            a = layer_norm(x, self.W, f"decoder.layers.{l}.self_attn_layer_norm")
            out, cache = att.start(P, a, S)
            caches.append(cache)
            x = self._finish_layer(l, x, out)
        return self._log_probs(x[:, 0]), {"S": S, "length": 1, "caches": caches}

    def step(self, tokens, state):
        """Feeds tokens (batch,) as text token j = state["length"]; returns log-probs (batch, V)."""
        pos = state["S"] + state["length"]
        x = self._embed(tokens.view(-1, 1))
        for l, att in enumerate(self.attn):
            a = layer_norm(x, self.W, f"decoder.layers.{l}.self_attn_layer_norm")
            x = self._finish_layer(l, x, att.step(a, pos, state["caches"][l]))
        state["length"] += 1
        return self._log_probs(x[:, 0])

    def reorder(self, state, idx):
        for att, cache in zip(self.attn, state["caches"]):
            att.reorder(cache, idx)

    # -- full-sequence path
    def full(self, P, tokens):
        """tokens (L,) with tokens[0] = EOS; row j of the result is the distribution after
        tokens[0..j] (log-probs (L, V))."""
        x = self._embed(tokens)
        for l, att in enumerate(self.attn):
            a = layer_norm(x, self.W, f"decoder.layers.{l}.self_attn_layer_norm")
            x = self._finish_layer(l, x, att.full(P, a))
        return self._log_probs(x)

    def forced_incremental(self, P, tokens):
        """Incremental path over a fixed sequence (batch 1); same result layout as full()."""
        assert int(tokens[0]) == self.eos
        lp, state = self.start(P, 1)
        rows = [lp[0]]
        for t in tokens[1:]:
            rows.append(self.step(t.view(1), state)[0])
        return torch.stack(rows)
