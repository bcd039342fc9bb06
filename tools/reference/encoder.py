"""Feature normalisation, the speech encoders and the projector, float32, batch size 1.

Facts from docs/architecture.md sections 2 and 3.1 (the authors' fairseq fork):
- Conv1d subsampler: Conv1d(k, stride 2, padding k//2) + GLU over channels per layer.
- Transformer (s2t_transformer): x*sqrt(E) + fairseq sinusoid from position 2, pre-LN layers
  (fairseq MHA, ReLU FFN), final encoder.layer_norm.
- Conformer (s2t_conformer): x*sqrt(E), then + sinusoid ("abs") or relative positions
  ("rel_pos", ESPnet attention), then encoder.linear; layers: half-step macaron FFN (Swish),
  MHSA, convolution module (BatchNorm with running statistics), half-step FFN, per-layer final
  LN. No encoder-level LN.
- Projector: stack k frames (drop S mod k trailing ones) -> Linear -> ReLU -> Linear.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from .nn import fairseq_sinusoid, layer_norm, linear


def normalize_features(fbank, cfg, W):
    """fbank (T, n_mel) log-mel features -> float32 torch tensor after the configured CMVN.

    utterance: per dim, (x - mean) / sqrt(max(E[x^2] - mean^2, 1e-10)), statistics in float64
    (the C frontend does the same); global: (x - mean) / std in float32 with the model's
    frontend.cmvn tensors (fairseq GlobalCMVN); none: unchanged.
    """
    x = np.asarray(fbank, dtype=np.float32)
    mode = cfg["frontend"]["cmvn"]
    if mode == "utterance":
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=0)
        var = (x64 * x64).mean(axis=0) - mean * mean
        x = ((x64 - mean) * (1.0 / np.sqrt(np.maximum(var, 1e-10)))).astype(np.float32)
    elif mode == "global":
        mean = W["frontend.cmvn.mean"].numpy()
        std = W["frontend.cmvn.std"].numpy()
        x = ((x - mean) / std).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x))


def subsample(x, W, kernel_sizes):
    """(T, n_mel) -> (S, E); each layer Conv1d(k, stride 2, padding k//2) then GLU."""
    y = x.t().unsqueeze(0)
    for i, k in enumerate(kernel_sizes):
        p = f"encoder.subsample.conv_layers.{i}"
        y = F.conv1d(y, W[p + ".weight"], W[p + ".bias"], stride=2, padding=k // 2)
        y = F.glu(y, dim=1)
    return y[0].t()


def fairseq_self_attention(x, W, p, heads):
    """fairseq MultiheadAttention over one unpadded sequence: q scaled by d_k^-1/2 after its bias."""
    T, E = x.shape
    dk = E // heads
    q = (linear(x, W, p + "q_proj") * dk ** -0.5).view(T, heads, dk).transpose(0, 1)
    k = linear(x, W, p + "k_proj").view(T, heads, dk).transpose(0, 1)
    v = linear(x, W, p + "v_proj").view(T, heads, dk).transpose(0, 1)
    a = torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v
    return linear(a.transpose(0, 1).reshape(T, E), W, p + "out_proj")


def rel_positional_encoding(T, d):
    """ESPnet RelPositionalEncoding rows for relative positions T-1 down to -(T-1):
    PE(rel)[2m] = sin(rel w_m), PE(rel)[2m+1] = cos(rel w_m), w_m = exp(-2m ln(10000)/d)."""
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(math.log(10000.0) / d))
    rel = torch.arange(T - 1, -T, -1, dtype=torch.float32).unsqueeze(1)
    pe = torch.zeros(2 * T - 1, d)
    pe[:, 0::2] = torch.sin(rel * div)
    pe[:, 1::2] = torch.cos(rel * div)
    return pe


def relpos_self_attention(x, W, p, heads):
    """ESPnet RelPositionMultiHeadedAttention ("new" rel_pos), one unpadded sequence:
    score(h,i,j) = [(q_i + u_h).k_j + (q_i + v_h).p_h(i-j)] / sqrt(d_k)."""
    T, E = x.shape
    dk = E // heads
    q = linear(x, W, p + "linear_q").view(T, heads, dk)
    k = linear(x, W, p + "linear_k").view(T, heads, dk).transpose(0, 1)
    v = linear(x, W, p + "linear_v").view(T, heads, dk).transpose(0, 1)
    pos = F.linear(rel_positional_encoding(T, E), W[p + "linear_pos.weight"])
    pos = pos.view(2 * T - 1, heads, dk).transpose(0, 1)          # (H, 2T-1, dk)
    q_u = (q + W[p + "pos_bias_u"]).transpose(0, 1)                # (H, T, dk)
    q_v = (q + W[p + "pos_bias_v"]).transpose(0, 1)
    ac = q_u @ k.transpose(1, 2)                                   # (H, T, T)
    bd_all = q_v @ pos.transpose(1, 2)                             # (H, T, 2T-1)
    i = torch.arange(T).unsqueeze(1)
    j = torch.arange(T).unsqueeze(0)
    col = (T - 1 - i + j).expand(heads, T, T)   # table row of relative position i - j
    bd = torch.gather(bd_all, 2, col)
    a = torch.softmax((ac + bd) / math.sqrt(dk), dim=-1) @ v
    return linear(a.transpose(0, 1).reshape(T, E), W, p + "linear_out")


def feed_forward(x, W, p, act):
    return linear(act(linear(x, W, p + "fc1")), W, p + "fc2")


def conformer_ffn(x, W, p):
    return linear(F.silu(linear(layer_norm(x, W, p + "layer_norm"), W, p + "w_1")), W, p + "w_2")


def conformer_conv(x, W, p, kernel):
    """LN -> pointwise conv (2E) -> GLU -> depthwise conv -> BatchNorm (running stats) -> Swish
    -> pointwise conv; all three convolutions without bias."""
    E = x.shape[1]
    y = layer_norm(x, W, p + "layer_norm").t().unsqueeze(0)
    y = F.glu(F.conv1d(y, W[p + "pointwise_conv1.weight"]), dim=1)
    y = F.conv1d(y, W[p + "depthwise_conv.weight"], padding=(kernel - 1) // 2, groups=E)
    y = F.batch_norm(y, W[p + "batch_norm.running_mean"], W[p + "batch_norm.running_var"],
                     W[p + "batch_norm.weight"], W[p + "batch_norm.bias"], training=False,
                     eps=1e-5)
    y = F.conv1d(F.silu(y), W[p + "pointwise_conv2.weight"])
    return y[0].t()


def whisper_self_attention(x, W, p, heads):
    """Whisper's MultiHeadAttention, one unpadded sequence: q and k each scaled by d_k^-1/4,
    k_proj without bias."""
    T, E = x.shape
    dk = E // heads
    scale = dk ** -0.25
    q = (linear(x, W, p + "q_proj") * scale).view(T, heads, dk).transpose(0, 1)
    k = (x @ W[p + "k_proj.weight"].t() * scale).view(T, heads, dk).transpose(0, 1)
    v = linear(x, W, p + "v_proj").view(T, heads, dk).transpose(0, 1)
    a = torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v
    return linear(a.transpose(0, 1).reshape(T, E), W, p + "out_proj")


def whisper_encode(x, cfg, W):
    """Whisper's AudioEncoder on log-mel (T, n_mel), unpadded (openai-whisper model.py):
    GELU(conv1), GELU(conv2, stride 2), + embed_positions[:S], pre-LN blocks with a GELU MLP,
    ln_post (encoder.layer_norm)."""
    enc = cfg["encoder"]
    y = F.gelu(F.conv1d(x.t().unsqueeze(0), W["encoder.conv1.weight"], W["encoder.conv1.bias"],
                        padding=1))
    y = F.gelu(F.conv1d(y, W["encoder.conv2.weight"], W["encoder.conv2.bias"], stride=2,
                        padding=1))
    h = y[0].t()
    S = h.shape[0]
    if S > enc["max_positions"]:
        raise ValueError(f"{S} encoder frames, the encoder has {enc['max_positions']} positions")
    h = h + W["encoder.embed_positions.weight"][:S]
    for l in range(enc["layers"]):
        p = f"encoder.layers.{l}."
        h = h + whisper_self_attention(layer_norm(h, W, p + "self_attn_layer_norm"), W,
                                       p + "self_attn.", enc["heads"])
        h = h + feed_forward(layer_norm(h, W, p + "final_layer_norm"), W, p, F.gelu)
    return layer_norm(h, W, "encoder.layer_norm")


def encode(x, cfg, W):
    """Normalised features (T, n_mel) -> encoder output (S, E), including any final norm."""
    enc = cfg["encoder"]
    if enc["type"] == "whisper":
        return whisper_encode(x, cfg, W)
    E, H = enc["d_model"], enc["heads"]
    h = subsample(x, W, enc["subsampler"]["kernel_sizes"]) * math.sqrt(E)
    S = h.shape[0]
    if enc["type"] == "transformer":
        h = h + fairseq_sinusoid(S, E, start=2)
        for l in range(enc["layers"]):
            p = f"encoder.transformer_layers.{l}."
            h = h + fairseq_self_attention(layer_norm(h, W, p + "self_attn_layer_norm"), W,
                                           p + "self_attn.", H)
            h = h + feed_forward(layer_norm(h, W, p + "final_layer_norm"), W, p, F.relu)
        return layer_norm(h, W, "encoder.layer_norm")

    if enc["positions"] == "abs":
        h = h + fairseq_sinusoid(S, E, start=2)
    h = linear(h, W, "encoder.linear")
    for l in range(enc["layers"]):
        p = f"encoder.conformer_layers.{l}."
        h = h + 0.5 * conformer_ffn(h, W, p + "ffn1.")
        a = layer_norm(h, W, p + "self_attn_layer_norm")
        if enc["positions"] == "abs":
            h = h + fairseq_self_attention(a, W, p + "self_attn.", H)
        else:
            h = h + relpos_self_attention(a, W, p + "self_attn.", H)
        h = h + conformer_conv(h, W, p + "conv_module.", enc["conv_kernel"])
        h = h + 0.5 * conformer_ffn(h, W, p + "ffn2.")
        h = layer_norm(h, W, p + "final_layer_norm")
    return h


def project(enc_out, cfg, W):
    """Encoder output (S_enc, E) -> speech prompt P (S_enc // k, D)."""
    k = cfg["decoder"]["projector_stack"]
    S = enc_out.shape[0] // k
    if S == 0:
        raise ValueError(f"encoder output of {enc_out.shape[0]} frames is shorter than the "
                         f"projector stack {k}")
    x = enc_out[: S * k].reshape(S, k * enc_out.shape[1])
    return linear(F.relu(linear(x, W, "decoder.projector.linear1")), W,
                  "decoder.projector.linear2")
