"""The trainable model: exactly the architecture the engine runs (SPEC.md sections 3 to 5,
docs/architecture.md), as torch.nn modules whose parameter and buffer names are the model
directory's tensor names (docs/model-format.md), so export is a state-dict dump (less
BatchNorm's num_batches_tracked).

    normalised fbank (B, T, n_mel) -> Conv1d-GLU subsampler -> x*sqrt(E) -> positions ->
    [encoder.linear] -> Conformer (rel_pos | abs) or Transformer layers -> projector ->
    speech prompt P (B, S, D) -> decoder-only prompt decoder (MTLA self-attention over
    [P ; text], the authors' module in its training path) -> log-probs (B, L, V)

Batch-1 semantics (docs/architecture.md section 8 item 2). The authors' fairseq code chunks
the padded prompt of a batch at the padded length, so an utterance's text tokens are chunked
(and its RoPE positions overlap pads) differently from batch-1 inference. Here every
utterance of a padded batch computes what it would compute alone, at inference, up to
float rounding (tests/test_model_equals_oracle.py checks it to 1e-5):

- Subsampler: after each Conv1d+GLU, frames at or beyond the utterance's own length
  floor((L-1)/2)+1 are zeroed, so the next convolution reads zeros past the end exactly
  like its own zero padding does at batch 1 (input features are zero-padded too).
- Encoder self-attention: padded frames are masked as keys. rel_pos tables depend only on
  i-j, so building them for the padded length changes nothing for real frames; abs
  positions start at 2 for every utterance.
- Conformer convolution module: padded frames are zeroed after the GLU, before the
  depthwise convolution (which therefore reads zeros past the end, as at batch 1). In
  training, BatchNorm statistics are computed over real frames only (MaskedBatchNorm1d); in
  eval it uses running statistics like the engine.
- Projector: stacking k frames starts at frame 0 of every utterance; S_b = S_enc_b // k.
- Decoder MTLA: for each layer the key/value sequence of utterance b is PACKED to the left:
  rows [P_b (S_b rows) ; LN1(text_b) (L_b rows) ; zero rows up to T = max_b (S_b + L_b)].
  Row t then has global index t for every utterance, so the authors' training path (their
  MultiheadTemporalLatentAttention called with incremental_state=None) computes the chunk
  index floor(t/s) of the hyper-network, the within-chunk prefix sums and the stride-aware
  mask exactly as for utterance b alone; RoPE positions are t (prompt frame i -> i, text
  token j -> S_b + j). The module's mask only looks back (key j <= query t), so the zero
  rows at the end are never visible to a real row and need no padding mask. Their
  training path takes the text queries as the LAST rows of the key sequence, which packed
  rows of different S_b cannot satisfy; so the whole packed sequence is passed as the query
  (query = key = value) and the outputs of rows S_b .. S_b+L_b-1 (the text queries) are
  gathered back. Prompt-row and pad-row outputs are computed and discarded (they carry no
  gradient). For text rows this is the very computation of the oracle's full path
  (tools/reference AuthorsMTLA.full: text queries, key [P ; text], no other mask effect).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # the authors' module, loaded by file (no copy of their code lives here)
    from tools.reference.authors import mtla_class
except ImportError:  # run from training/ without the repository root on sys.path
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from tools.reference.authors import mtla_class

LN_EPS = 1e-5


# ----------------------------------------------------------------------------- helpers

def lengths_to_mask(lengths, T):
    """(B,) lengths -> (B, T) bool, True on real frames."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def fairseq_sinusoid(n, d, start, device=None):
    """fairseq SinusoidalPositionalEmbedding rows start..start+n-1 (halves sin | cos)."""
    half = d // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float32, device=device) *
                     -(math.log(10000) / (half - 1)))
    ang = torch.arange(start, start + n, dtype=torch.float32, device=device)[:, None] * freq
    emb = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
    if d % 2:
        emb = torch.cat([emb, torch.zeros(n, 1, device=device)], dim=1)
    return emb


def rel_positional_encoding(T, d, device=None):
    """ESPnet RelPositionalEncoding for relative positions T-1 .. -(T-1), interleaved
    sin (even dims) / cos (odd dims)."""
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32, device=device) *
                    -(math.log(10000.0) / d))
    rel = torch.arange(T - 1, -T, -1, dtype=torch.float32, device=device)[:, None]
    pe = torch.zeros(2 * T - 1, d, device=device)
    pe[:, 0::2] = torch.sin(rel * div)
    pe[:, 1::2] = torch.cos(rel * div)
    return pe


# ----------------------------------------------------------------------------- encoder

class Conv1dSubsampler(nn.Module):
    """fairseq Conv1dSubsampler: Conv1d(k, stride 2, padding k//2) + GLU per layer."""

    def __init__(self, in_dim, channels, out_dim, kernel_sizes):
        super().__init__()
        n = len(kernel_sizes)
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(in_dim if i == 0 else channels // 2,
                      channels if i < n - 1 else 2 * out_dim, k, stride=2, padding=k // 2)
            for i, k in enumerate(kernel_sizes))

    def forward(self, x, lengths):
        y = x.transpose(1, 2)
        for conv in self.conv_layers:
            y = F.glu(conv(y), dim=1)
            lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
            y = y * lengths_to_mask(lengths, y.shape[2])[:, None, :].to(y.dtype)
        return y.transpose(1, 2), lengths


class FairseqMHA(nn.Module):
    """fairseq MultiheadAttention (q_proj/k_proj/v_proj/out_proj, biases), q scaled by
    d_k^-1/2 after its bias; padded keys masked."""

    def __init__(self, d, heads, dropout):
        super().__init__()
        self.h, self.dropout = heads, dropout
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x, key_mask, pos_emb=None):
        B, T, d = x.shape
        dk = d // self.h
        q = self.q_proj(x).view(B, T, self.h, dk).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.h, dk).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.h, dk).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :],
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(o.transpose(1, 2).reshape(B, T, d))


class RelPosMHA(nn.Module):
    """ESPnet RelPositionMultiHeadedAttention ("new" rel_pos):
    score(h,i,j) = [(q_i + u_h).k_j + (q_i + v_h).p_h(i-j)] / sqrt(d_k)."""

    def __init__(self, d, heads, dropout):
        super().__init__()
        self.h, self.dropout = heads, dropout
        dk = d // heads
        self.linear_q, self.linear_k = nn.Linear(d, d), nn.Linear(d, d)
        self.linear_v, self.linear_out = nn.Linear(d, d), nn.Linear(d, d)
        self.linear_pos = nn.Linear(d, d, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(heads, dk))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, dk))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(self, x, key_mask, pos_emb):
        B, T, d = x.shape
        dk = d // self.h
        q = self.linear_q(x).view(B, T, self.h, dk)
        k = self.linear_k(x).view(B, T, self.h, dk).transpose(1, 2)
        v = self.linear_v(x).view(B, T, self.h, dk).transpose(1, 2)
        p = self.linear_pos(pos_emb.to(x.dtype)).view(2 * T - 1, self.h, dk).transpose(0, 1)
        q_u = (q + self.pos_bias_u).transpose(1, 2)                     # B,H,T,dk
        q_v = (q + self.pos_bias_v).transpose(1, 2)
        bd_all = torch.matmul(q_v, p.transpose(1, 2)[None])              # B,H,T,2T-1
        i = torch.arange(T, device=x.device)[:, None]
        j = torch.arange(T, device=x.device)[None, :]
        col = (T - 1 - i + j).expand(B, self.h, T, T)   # table row of relative position i-j
        bd = torch.gather(bd_all, 3, col) / math.sqrt(dk)
        bias = bd.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        o = F.scaled_dot_product_attention(q_u, k, v, attn_mask=bias.to(q_u.dtype),
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.linear_out(o.transpose(1, 2).reshape(B, T, d))


class FeedForward(nn.Module):
    """Conformer FFN: LN -> w_1 -> Swish -> dropout -> w_2 -> dropout."""

    def __init__(self, d, ffn, dropout):
        super().__init__()
        self.layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.w_1, self.w_2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.w_2(self.dropout(F.silu(self.w_1(self.layer_norm(x))))))


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics cover real frames only (padding would otherwise
    shift them); eval uses running statistics, as the engine does after folding."""

    def forward(self, x, mask=None):
        if not self.training or mask is None:
            return super().forward(x)
        m = mask[:, None, :].to(torch.float32)
        xf = x.float()
        n = m.sum().clamp(min=2.0)
        mean = (xf * m).sum((0, 2)) / n
        var = (((xf - mean[None, :, None]) ** 2) * m).sum((0, 2)) / n
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * n / (n - 1))
        y = (xf - mean[None, :, None]) * torch.rsqrt(var[None, :, None] + self.eps)
        return (y * self.weight[None, :, None] + self.bias[None, :, None]).to(x.dtype)


class ConvModule(nn.Module):
    """LN -> pointwise conv (2E, no bias) -> GLU -> [pads zeroed] -> depthwise conv (no bias)
    -> BatchNorm -> Swish -> pointwise conv (no bias) -> dropout."""

    def __init__(self, d, kernel, dropout):
        super().__init__()
        self.layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.pointwise_conv1 = nn.Conv1d(d, 2 * d, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(d, d, kernel, padding=(kernel - 1) // 2, groups=d,
                                        bias=False)
        self.batch_norm = MaskedBatchNorm1d(d)
        self.pointwise_conv2 = nn.Conv1d(d, d, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask):
        y = F.glu(self.pointwise_conv1(self.layer_norm(x).transpose(1, 2)), dim=1)
        y = y * mask[:, None, :].to(y.dtype)
        y = self.batch_norm(self.depthwise_conv(y), mask)
        y = self.pointwise_conv2(F.silu(y))
        return self.dropout(y.transpose(1, 2))


class ConformerLayer(nn.Module):
    def __init__(self, d, ffn, heads, kernel, positions, dropout, attn_dropout):
        super().__init__()
        self.ffn1 = FeedForward(d, ffn, dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.self_attn = (RelPosMHA if positions == "rel_pos" else FairseqMHA)(d, heads,
                                                                              attn_dropout)
        self.conv_module = ConvModule(d, kernel, dropout)
        self.ffn2 = FeedForward(d, ffn, dropout)
        self.final_layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask, pos_emb):
        x = x + 0.5 * self.ffn1(x)
        x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), mask, pos_emb))
        x = x + self.conv_module(x, mask)
        x = x + 0.5 * self.ffn2(x)
        return self.final_layer_norm(x)


class TransformerEncoderLayer(nn.Module):
    """fairseq pre-LN encoder layer: x + Attn(LN(x)); x + fc2(ReLU(fc1(LN(x))))."""

    def __init__(self, d, ffn, heads, dropout, attn_dropout):
        super().__init__()
        self.self_attn = FairseqMHA(d, heads, attn_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask, pos_emb=None):
        x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), mask))
        h = self.fc2(self.dropout(F.relu(self.fc1(self.final_layer_norm(x)))))
        return x + self.dropout(h)


class SpeechEncoder(nn.Module):
    def __init__(self, enc, n_mel, dropout, attn_dropout):
        super().__init__()
        self.type, self.d = enc["type"], enc["d_model"]
        self.positions = enc["positions"]
        sub = enc["subsampler"]
        self.subsample = Conv1dSubsampler(n_mel, sub["channels"], self.d, sub["kernel_sizes"])
        self.dropout = nn.Dropout(dropout)
        if self.type == "conformer":
            self.linear = nn.Linear(self.d, self.d)
            self.conformer_layers = nn.ModuleList(
                ConformerLayer(self.d, enc["ffn_dim"], enc["heads"], enc["conv_kernel"],
                               self.positions, dropout, attn_dropout)
                for _ in range(enc["layers"]))
        else:
            self.transformer_layers = nn.ModuleList(
                TransformerEncoderLayer(self.d, enc["ffn_dim"], enc["heads"], dropout,
                                        attn_dropout)
                for _ in range(enc["layers"]))
            self.layer_norm = nn.LayerNorm(self.d, eps=LN_EPS)

    def forward(self, x, lengths):
        """x (B, T, n_mel) normalised features, zero-padded; -> (B, S, E), lengths (B,)."""
        h, lengths = self.subsample(x, lengths)
        h = h * math.sqrt(self.d)
        S = h.shape[1]
        mask = lengths_to_mask(lengths, S)
        pos_emb = None
        if self.positions in ("abs", "sinusoidal"):
            h = h + fairseq_sinusoid(S, self.d, 2, h.device).to(h.dtype)
        else:
            pos_emb = rel_positional_encoding(S, self.d, h.device)
        if self.type == "conformer":
            h = self.dropout(self.linear(h))
            for layer in self.conformer_layers:
                h = layer(h, mask, pos_emb)
        else:
            h = self.dropout(h)
            for layer in self.transformer_layers:
                h = layer(h, mask)
            h = self.layer_norm(h)
        return h, lengths


# ----------------------------------------------------------------------------- decoder

class Projector(nn.Module):
    """EncoderProjectorConcat: stack k frames, Linear(kE -> D/2) -> ReLU -> Linear(-> D)."""

    def __init__(self, k, e, d):
        super().__init__()
        self.k = k
        self.linear1, self.linear2 = nn.Linear(k * e, d // 2), nn.Linear(d // 2, d)

    def forward(self, h, lengths):
        B, S, E = h.shape
        S2 = S // self.k
        x = h[:, : S2 * self.k].reshape(B, S2, self.k * E)
        return self.linear2(F.relu(self.linear1(x))), torch.div(lengths, self.k,
                                                                 rounding_mode="floor")


class _GrowingTable:
    """Memoises one of the authors' index-only mask/encoding constructors on the device.

    Their training path rebuilds, in every layer and step, generate_chunk_mask(T, s),
    generate_stride_aware_causal_mask(T) and the hyper-network's positional_encoding(t) on
    the CPU and copies them with .to(device): a blocking host-to-device copy each time.
    Entry [i, j] (or row i) of each depends on i and j only, so the T x T (or first-t-rows)
    result is the top-left block of the same table built for any larger size; this builds
    it once on the module's device, grows it by doubling, and returns slices. The values are
    the authors' own (their function makes the table); .to(device) is then a no-op.
    """

    def __init__(self, fn, device_of, square):
        self.fn, self.device_of, self.square = fn, device_of, square
        self.table, self.size = None, 0

    def __call__(self, n, *rest, **kw):
        dev = self.device_of()
        if self.table is None or n > self.size or self.table.device != dev or \
                self.rest != (rest, tuple(sorted(kw.items()))):
            self.size = max(n, 2 * self.size, 256)
            self.rest = (rest, tuple(sorted(kw.items())))
            self.table = self.fn(self.size, *rest, **kw).to(dev)
        return self.table[:n, :n] if self.square else self.table[:, :n]


def _memoize_authors_tables(att):
    def device_of():
        return att.wkv_a.weight.device
    att.generate_chunk_mask = _GrowingTable(att.generate_chunk_mask, device_of, True)
    att.generate_stride_aware_causal_mask = _GrowingTable(
        att.generate_stride_aware_causal_mask, device_of, True)
    hn = att.hypernet_down
    hn.positional_encoding = _GrowingTable(hn.positional_encoding, device_of, False)


class DecoderLayer(nn.Module):
    """a = LN1(x); x = LN1(x + Attn(a, [P ; a])); x = LN2(x + fc2(ReLU(fc1(x)))), with the
    authors' MultiheadTemporalLatentAttention as self_attn (names wq, wkv_a, kv_norm, wkv_b,
    wo, hypernet_down.fc_c/fc_p)."""

    def __init__(self, d, ffn, att, dropout, attn_dropout):
        super().__init__()
        self.self_attn = mtla_class()(
            embed_dim=d, num_heads=att["heads"], dropout=attn_dropout, bias=False,
            q_lora_rank=0, kv_lora_rank=att["kv_lora_rank"],
            qk_nope_head_dim=att["qk_nope_head_dim"], qk_rope_head_dim=att["qk_rope_head_dim"],
            v_head_dim=att["v_head_dim"], down_rate=att["down_rate"])
        _memoize_authors_tables(self.self_attn)
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.dropout = nn.Dropout(dropout)


class PromptDecoder(nn.Module):
    def __init__(self, dec, enc_dim, vocab_size, dropout, attn_dropout):
        super().__init__()
        att = dec["attention"]
        if att["type"] != "mtla":
            raise ValueError("the trainer trains MTLA decoders only (decoder.attention.type)")
        if att["hyper_rank"] != int(att["kv_lora_rank"] / 4):
            raise ValueError("the authors' HyperNetwork hard-codes hyper_rank = kv_lora_rank/4")
        if float(att["rope_theta"]) != 10000.0:
            raise ValueError("the authors' MTLA module hard-codes rope_theta 10000")
        self.d = dec["d_model"]
        self.projector = Projector(dec["projector_stack"], enc_dim, self.d)
        self.embed_tokens = nn.Embedding(vocab_size, self.d)
        nn.init.normal_(self.embed_tokens.weight, std=self.d ** -0.5)
        self.layers = nn.ModuleList(DecoderLayer(self.d, dec["ffn_dim"], att, dropout,
                                                 attn_dropout) for _ in range(dec["layers"]))
        self.layer_norm = nn.LayerNorm(self.d, eps=LN_EPS)
        self.output_projection = nn.Linear(self.d, vocab_size, bias=False)
        nn.init.normal_(self.output_projection.weight, std=self.d ** -0.5)
        self.dropout = nn.Dropout(dropout)

    @staticmethod
    def packing(S_len, L_len, S_max, L_max):
        """Gather indices for the left-packed key sequence (see the module docstring).
        kv_idx (B, T) into cat([P (S_max rows), a (L_max rows), one zero row]);
        out_idx (B, L_max): text row j of utterance b sits at packed row S_b + j."""
        dev = S_len.device
        T = int((S_len + L_len).max())
        t = torch.arange(T, device=dev)[None, :]
        S_b, L_b = S_len[:, None], L_len[:, None]
        zero_row = S_max + L_max
        kv_idx = torch.where(t < S_b, t, torch.where(t < S_b + L_b, S_max + t - S_b,
                                                       torch.full_like(t, zero_row)))
        j = torch.arange(L_max, device=dev)[None, :]
        out_idx = torch.where(j < L_b, S_b + j, torch.zeros_like(j))
        return kv_idx, out_idx, T

    def forward(self, P, S_len, tokens, L_len):
        """P (B, S_max, D) prompts; tokens (B, L_max) decoder inputs, tokens[:, 0] = EOS,
        padded after L_len; -> log-probs (B, L_max, V) float32 (rows >= L_len are junk)."""
        B, S_max, D = P.shape
        L_max = tokens.shape[1]
        kv_idx, out_idx, T = self.packing(S_len, L_len, S_max, L_max)
        kv_gather = kv_idx[:, :, None].expand(B, T, D)
        out_gather = out_idx[:, :, None].expand(B, L_max, D)
        position = torch.arange(T, device=P.device, dtype=torch.float32)[None].expand(B, T)
        x = self.dropout(math.sqrt(self.d) * self.embed_tokens(tokens))
        zero = P.new_zeros(B, 1, D)
        for layer in self.layers:
            a = layer.self_attn_layer_norm(x)
            y = torch.gather(torch.cat([P.to(a.dtype), a, zero.to(a.dtype)], dim=1), 1,
                             kv_gather)
            z = layer.self_attn(query=y, key=y, value=y, position=position,
                                incremental_state=None)
            x = layer.self_attn_layer_norm(x + layer.dropout(torch.gather(z, 1, out_gather)))
            h = layer.fc2(layer.dropout(F.relu(layer.fc1(x))))
            x = layer.final_layer_norm(x + layer.dropout(h))
        logits = self.output_projection(self.layer_norm(x))
        return torch.log_softmax(logits.float(), dim=-1)


class SpeechTranslationModel(nn.Module):
    """Encoder + projector + prompt decoder; state_dict() names = model directory names."""

    def __init__(self, arch, vocab_size, n_mel=80, dropout=0.1, attn_dropout=0.0):
        super().__init__()
        self.arch = arch
        # A "whisper" encoder is pretrained and frozen: its outputs are computed once per
        # utterance into the feature cache (dataset.py), so it has no module here and its
        # tensors are copied from the CTranslate2 directory at export (export.py).
        self.frozen_encoder = arch["encoder"]["type"] == "whisper"
        self.encoder = None if self.frozen_encoder else \
            SpeechEncoder(arch["encoder"], n_mel, dropout, attn_dropout)
        self.decoder = PromptDecoder(arch["decoder"], arch["encoder"]["d_model"], vocab_size,
                                     dropout, attn_dropout)

    def encode(self, feats, feat_len):
        """(B, T, n_mel), (B,) -> prompt P (B, S, D), prompt lengths (B,). With a frozen
        encoder, feats are its cached outputs (B, S_enc, E) and feat_len their lengths."""
        if self.frozen_encoder:
            return self.decoder.projector(feats, feat_len)
        h, lengths = self.encoder(feats, feat_len)
        return self.decoder.projector(h, lengths)

    def forward(self, feats, feat_len, tokens, tok_len):
        P, S_len = self.encode(feats, feat_len)
        if int(S_len.min()) < 1:
            raise ValueError("an utterance is too short for the subsampler and projector")
        return self.decoder(P, S_len, tokens, tok_len)

    def export_state_dict(self):
        """Float32 tensors named as the model directory needs (no num_batches_tracked)."""
        return {k: v.detach().float().cpu().contiguous() for k, v in self.state_dict().items()
                if not k.endswith("num_batches_tracked")}


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def label_smoothed_nll(lprobs, target, mask, eps):
    """fairseq label_smoothed_cross_entropy: (1-eps-eps_i) nll + eps_i * sum(-lprobs), with
    eps_i = eps / (V-1); summed over real target tokens. Returns (loss, nll)."""
    nll = -lprobs.gather(-1, target[..., None]).squeeze(-1)
    smooth = -lprobs.sum(-1)
    eps_i = eps / (lprobs.shape[-1] - 1)
    loss = (1.0 - eps - eps_i) * nll + eps_i * smooth
    m = mask.to(loss.dtype)
    return (loss * m).sum(), (nll * m).sum()
