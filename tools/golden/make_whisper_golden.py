#!/usr/bin/env python3
"""Builds the Whisper fixtures: frontend clips with openai-whisper's log-mel, and a golden model
directory whose encoder is a random-weight Whisper encoder written as a real CTranslate2 model.

  tests/golden/whisper_frontend/NAME.wav   16 kHz s16 clips (LibriVox from samples/audio, and a
                                           synthetic 300-sample one: shorter than one window)
  tests/golden/whisper_frontend/NAME.npy   whisper.audio.log_mel_spectrogram(x, 80), unpadded,
                                           transposed to (frames, 80) float32
  tests/golden/whisper_frontend/manifest.json  sizes and the measured differences
  tests/golden/models/whisper_mtla_s2/     a model directory (docs/model-format.md) with
      frontend "whisper", encoder "whisper" (from the CTranslate2 model via
      tools/convert_ctranslate2_whisper.py) and a random MTLA decoder (tools/golden/make_golden.py's
      init_weights and EOS tuning), plus the fixtures make_golden.py writes for every golden
      model (tools/reference oracle: encoder_out, prompt, forced log-probs, beams), and
      fixtures/encoder_out_ctranslate2.npy: ctranslate2.models.Whisper(...).encode in float32
      on the same features, the independent reference of the encoder.

The CTranslate2 model is made with ctranslate2.specs.WhisperSpec (its decoder, which mtla-st
does not use, gets minimal random weights and an 8-token vocabulary), validated and saved by
the library, then read back by our own reader in the converter.

Run from the repository root (needs torch, numpy, soundfile, openai-whisper, ctranslate2,
safetensors, sentencepiece and the authors' mtla package, as make_golden.py):
  python3 tools/golden/make_whisper_golden.py
"""
import json
import pathlib
import shutil
import sys
import tempfile

import numpy as np
import soundfile as sf
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1].parent
for p in (ROOT, ROOT / "tools", ROOT / "tools" / "golden"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import make_golden as mg  # noqa: E402
from reference.beam import max_len_for  # noqa: E402
from reference.model_dir import load_model_dir, write_model_dir  # noqa: E402
from tools import convert_ctranslate2_whisper as conv  # noqa: E402
from training import whisper as tw  # noqa: E402

FRONT = ROOT / "tests" / "golden" / "whisper_frontend"
NAME = "whisper_mtla_s2"
OUT = ROOT / "tests" / "golden" / "models" / NAME
AUDIO = ROOT / "samples" / "audio"
# name, source file, start and length in seconds
CLIPS = [("clip_0870_1s5", "sense_and_sensibility_01_austen_64kb-0870.wav", 1.0, 1.5),
         ("clip_0920_2s5", "sense_and_sensibility_01_austen_64kb-0920.wav", 0.4, 2.5)]
SHORT = "synthetic_300"
ENCODER_INPUT = "clip_0920_2s5"
# the random Whisper encoder: E, heads, F, layers, P (P = 320: inputs up to 6.4 s, so that the
# 7.1 s samples/audio files exercise the CLI cutting an input at the model's maximum)
ENC = dict(n_mels=80, d=32, heads=4, ffn=64, layers=2, positions=320)
SEED = 21


def make_frontend():
    FRONT.mkdir(parents=True, exist_ok=True)
    clips = {}
    for name, src, start, length in CLIPS:
        x, rate = sf.read(AUDIO / src, dtype="int16")
        assert rate == 16000, (src, rate)
        clips[name] = x[int(start * rate):int((start + length) * rate)]
    rng = np.random.default_rng(7)
    t = np.arange(300) / 16000
    synth = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(300)
    clips[SHORT] = np.round(synth * 32767).astype(np.int16)

    import whisper.audio

    manifest = {"note": "whisper.audio.log_mel_spectrogram(samples, n_mels=80, padding=0).T; "
                        "samples = s16 / 32768 as libsndfile reads the WAV",
                "whisper": whisper.__version__ if hasattr(whisper, "__version__") else "?",
                "clips": {}}
    for name, pcm in clips.items():
        sf.write(FRONT / f"{name}.wav", pcm, 16000, subtype="PCM_16")
        x = pcm.astype(np.float32) / 32768.0
        ref = whisper.audio.log_mel_spectrogram(torch.from_numpy(x), n_mels=80).numpy().T
        ref = np.ascontiguousarray(ref, dtype="<f4")
        ours = tw.log_mel(x)
        np.save(FRONT / f"{name}.npy", ref)
        manifest["clips"][name] = {"samples": int(len(x)), "frames": int(ref.shape[0]),
                                   "training_whisper_log_mel_vs_whisper":
                                       float(np.abs(ours - ref).max())}
    (FRONT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def sinusoids(length, channels):
    """Whisper's positional table (model.py sinusoids)."""
    inc = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-inc * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


def random_ct2_whisper(path, seed):
    """A WhisperSpec with random weights at realistic scales, saved by CTranslate2."""
    from ctranslate2.specs import whisper_spec

    g = np.random.default_rng(seed)
    e = ENC
    E, F = e["d"], e["ffn"]

    def w(*shape):
        return (g.standard_normal(shape) * np.prod(shape[1:]) ** -0.5).astype(np.float32)

    def b(n):
        return (0.02 * g.standard_normal(n)).astype(np.float32)

    def ln(spec, n):
        spec.gamma = (1.0 + 0.1 * g.standard_normal(n)).astype(np.float32)
        spec.beta = (0.05 * g.standard_normal(n)).astype(np.float32)

    spec = whisper_spec.WhisperSpec(e["layers"], e["heads"], 1, 2)
    enc = spec.encoder
    enc.conv1.weight, enc.conv1.bias = w(E, e["n_mels"], 3), b(E)
    enc.conv2.weight, enc.conv2.bias = w(E, E, 3), b(E)
    enc.position_encodings.encodings = sinusoids(e["positions"], E)
    ln(enc.layer_norm, E)
    for layer in enc.layer:
        a = layer.self_attention
        ln(a.layer_norm, E)
        a.linear[0].weight = w(3 * E, E)
        qkv_bias = b(3 * E)
        qkv_bias[E:2 * E] = 0.0   # whisper's key projection has no bias
        a.linear[0].bias = qkv_bias
        a.linear[1].weight, a.linear[1].bias = w(E, E), b(E)
        ln(layer.ffn.layer_norm, E)
        layer.ffn.linear_0.weight, layer.ffn.linear_0.bias = w(F, E), b(F)
        layer.ffn.linear_1.weight, layer.ffn.linear_1.bias = w(E, F), b(E)

    D, V = 16, 8   # the decoder mtla-st never runs: minimal
    dec = spec.decoder
    dec.embeddings.weight = w(V, D)
    dec.position_encodings.encodings = sinusoids(32, D)
    ln(dec.layer_norm, D)
    dec.projection.weight = w(V, D)
    for layer in dec.layer:
        ln(layer.self_attention.layer_norm, D)
        layer.self_attention.linear[0].weight, layer.self_attention.linear[0].bias = \
            w(3 * D, D), b(3 * D)
        layer.self_attention.linear[1].weight, layer.self_attention.linear[1].bias = w(D, D), b(D)
        ln(layer.attention.layer_norm, D)
        layer.attention.linear[0].weight, layer.attention.linear[0].bias = w(D, D), b(D)
        layer.attention.linear[1].weight, layer.attention.linear[1].bias = w(2 * D, E), b(2 * D)
        layer.attention.linear[2].weight, layer.attention.linear[2].bias = w(D, D), b(D)
        ln(layer.ffn.layer_norm, D)
        layer.ffn.linear_0.weight, layer.ffn.linear_0.bias = w(4 * D, D), b(4 * D)
        layer.ffn.linear_1.weight, layer.ffn.linear_1.bias = w(D, 4 * D), b(D)
    spec.register_vocabulary(["<|endoftext|>", "<|startoftranscript|>", "a", "b", "c", "d",
                              "e", "f"])
    spec.validate()
    path.mkdir(parents=True)
    spec.save(str(path))


def ct2_encode(path, mel):
    import ctranslate2

    model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type="float32",
                                       intra_threads=1)
    x = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.T[None], dtype=np.float32))
    return np.array(model.encode(x, to_cpu=True))[0]


def make_config(frontend, encoder):
    spec = dict(name=NAME, enc=dict(type="transformer", d=ENC["d"], heads=ENC["heads"],
                                    ffn=ENC["ffn"]),
                att=dict(type="mtla", heads=4, r=32, dn=8, dr=8, dv=8, s=2, hyper=8), stack=4,
                why="Whisper frontend and encoder (random CTranslate2 WhisperSpec, converted), "
                    "projector_stack 4 as the shipped model, MTLA s = 2")
    cfg = mg.make_config(spec)
    cfg["frontend"] = frontend
    cfg["encoder"] = encoder
    return spec, cfg


def main():
    torch.set_num_threads(1)
    manifest = make_frontend()
    for name, m in manifest["clips"].items():
        print(f"{name}: {m['samples']} samples, {m['frames']} frames, training/whisper.py "
              f"log_mel vs whisper {m['training_whisper_log_mel_vs_whisper']:.1e}")

    tok_model, vocab, sp = mg.train_tokenizer()
    mel = np.load(FRONT / f"{ENCODER_INPUT}.npy")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        random_ct2_whisper(tmp / "ct2", SEED)
        conv.main(["--ct2", str(tmp / "ct2"), "--out", str(tmp / "encoder.safetensors"),
                   "--dtype", "F32"])
        _, frontend, encoder = conv.convert(tmp / "ct2")
        from safetensors.numpy import load_file
        enc_tensors = load_file(str(tmp / "encoder.safetensors"))
        ct2_out = ct2_encode(tmp / "ct2", mel)
        ct2_odd = ct2_encode(tmp / "ct2", mel[:-1])   # an odd frame count: S = (T - 1) // 2 + 1

    spec, cfg = make_config(frontend, encoder)
    max_len = max_len_for(cfg, len(mel))
    for k in range(mg.SEED_TRIES):
        seed = SEED + 1000 * k
        W = mg.init_weights(cfg, seed, None)
        W.update({n: torch.from_numpy(v.copy()) for n, v in enc_tensors.items()})
        offset = mg.tune_eos(cfg, W, vocab, mel, "F32", max_len)
        if offset is not None:
            break
    else:
        raise RuntimeError("no seed/EOS offset gives usable beam outputs")
    spec = dict(spec, seed=seed, eos_offset=offset, input=ENCODER_INPUT)
    if OUT.exists():
        shutil.rmtree(OUT)
    write_model_dir(OUT, cfg, W, vocab, tok_model, dtype="F32")
    load_model_dir(OUT)
    checks, beams, noise = mg.make_fixtures(spec, OUT, sp, mel, len(mel))

    fx = OUT / "fixtures"
    enc_ref = np.load(fx / "encoder_out.npy")
    from reference.model import SpeechTranslator
    odd_ref, _ = SpeechTranslator(OUT).encode(mel[:-1])
    ours = tw.WhisperEncoder(ENC["n_mels"], ENC["d"], ENC["heads"], ENC["ffn"], ENC["layers"],
                             ENC["positions"])
    ours.load_state_dict({k[len("encoder."):]: torch.from_numpy(v.copy())
                          for k, v in enc_tensors.items()})
    with torch.no_grad():
        pt = ours(torch.from_numpy(mel)[None])[0].numpy()
    np.save(fx / "encoder_out_ctranslate2.npy", ct2_out.astype("<f4"))
    meta = json.loads((fx / "meta.json").read_text())
    meta["input"] = f"tests/golden/whisper_frontend/{ENCODER_INPUT}.npy"
    meta["encoder_references"] = {
        "encoder_out_ctranslate2.npy": "ctranslate2.models.Whisper(ct2 dir, compute_type "
                                       "float32).encode on the input, unpadded",
        "oracle_vs_ctranslate2": float(np.abs(enc_ref - ct2_out).max()),
        "oracle_vs_ctranslate2_odd_frames": float(np.abs(odd_ref.numpy() - ct2_odd).max()),
        "training_whisper_vs_ctranslate2": float(np.abs(pt - ct2_out).max()),
        "ctranslate2": __import__("ctranslate2").__version__,
    }
    (fx / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    fsize = sum(f.stat().st_size for f in FRONT.rglob("*") if f.is_file())
    print(f"{NAME}: {size / 1024:.0f} KiB, seed {seed}, eos offset {offset:+.2f}; "
          + ", ".join(f"{k} {v:.1e}" for k, v in checks.items()))
    for k, v in meta["encoder_references"].items():
        print(f"  {k}: {v}")
    for b in mg.BEAMS:
        r = beams[str(b)]
        print(f"  beam {b:2d}: {len(r['tokens'])} tokens, margin {r['decision_margin']:.1e}: "
              f"{r['text']!r}")
    print(f"whisper_frontend: {fsize / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
