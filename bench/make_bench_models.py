#!/usr/bin/env python3
"""Writes the decoder benchmark's inputs: recipe-size random-weight model directories and a
10-second speech recording.

  python3 bench/make_bench_models.py [OUT_DIR]      (default /tmp/mtla-bench-models)

OUT_DIR/<name>/ for name in mha, mla, mtla_s2, mtla_s3, mtla_s4: one model directory each
(docs/model-format.md), F32 storage, about 300 MB each. All five share the recipe's encoder
(transformer 12x512, 8 heads, FFN 2048, conv1d+GLU subsampler 1024 channels, kernels 5,5)
and decoder body (9x512, FFN 2048, vocabulary 8000); only the self-attention differs:

  mha      8 heads x d_h 64 (K and V: 1024 floats per token per layer)
  mla      8 heads, r 256, d_n 64, d_r 32, d_v 64 (288 floats per token per layer)
  mtla_sN  mla + down_rate N, hyper_rank 64 (288 floats per N tokens per layer)

Weights come from tools/golden/make_golden.py's init_weights with one seed, so the encoder
and every tensor the models have in common are identical across the five.

vocab.txt holds 8000 synthetic pieces (fairseq's four specials first), and tokenizer.model
is a SentencePiece unigram model over exactly those pieces, written field by field as the
protobuf (a unigram model of 8000 pieces cannot be trained on the little text in this
repository, and the `protobuf` package is not needed this way). It loads with SentencePiece
and encodes lowercase text, so the directories also work with `mtla-st translate`; the
benchmark itself never tokenizes.

OUT_DIR/input_10s.wav: exactly 10.000 s of 16 kHz mono speech, samples/audio's first clip
(7.1 s) followed by the first 2.9 s of the second (LibriVox, public domain).

A model directory that already exists with the same config.json is left as it is.
"""
import itertools
import json
import pathlib
import struct
import sys

import numpy as np
import soundfile as sf

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tools" / "golden"))

from make_golden import init_weights, make_config  # noqa: E402
from reference.model_dir import load_model_dir, write_model_dir  # noqa: E402

VOCAB = 8000
SEED = 2025
RATE = 16000
INPUT_SECONDS = 10.0
INPUT_CLIPS = ["sense_and_sensibility_01_austen_64kb-0870.wav",
               "sense_and_sensibility_01_austen_64kb-0880.wav"]

LATENT = dict(heads=8, r=256, dn=64, dr=32, dv=64)
MODELS = {
    "mha": dict(type="mha", heads=8, kv_heads=8, head_dim=64),
    "mla": dict(type="mla", **LATENT),
    "mtla_s2": dict(type="mtla", s=2, hyper=64, **LATENT),
    "mtla_s3": dict(type="mtla", s=3, hyper=64, **LATENT),
    "mtla_s4": dict(type="mtla", s=4, hyper=64, **LATENT),
}


def recipe_config(name, att):
    """make_golden's config with the recipe's sizes in place of the golden models' tiny ones."""
    cfg = make_config(dict(name=name, enc=dict(type="transformer", d=512, heads=8, ffn=2048),
                           att=att, dec_d=512, why="decoder benchmark at the recipe size"))
    cfg["encoder"]["layers"] = 12
    cfg["encoder"]["subsampler"]["channels"] = 1024
    cfg["decoder"]["layers"] = 9
    cfg["decoder"]["ffn_dim"] = 2048
    cfg["vocab"]["size"] = VOCAB
    cfg["generation"].update(max_len_a=0.0, max_len_b=200)
    cfg["notes"] = (f"bench/make_bench_models.py: random weights (init_weights, seed {SEED}), "
                    f"recipe size, {name} self-attention; for timing and cache sizes only")
    return cfg


# ----------------------------------------------------------------------------- vocabulary


def synthetic_pieces():
    """8000 distinct pieces: <s> <pad> </s> <unk>, then the word boundary, letters, letter
    pairs and word-initial letter triples (enough for any lowercase ASCII text)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581"]
    pieces += list(letters) + ["\u2581" + a for a in letters]
    pairs = ["".join(p) for p in itertools.product(letters, repeat=2)]
    pieces += pairs + ["\u2581" + p for p in pairs]
    for t in itertools.product(letters, repeat=3):
        if len(pieces) == VOCAB:
            break
        pieces.append("\u2581" + "".join(t))
    assert len(pieces) == VOCAB and len(set(pieces)) == VOCAB
    return pieces


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, wire, payload):
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(payload)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    if wire == 5:
        return key + struct.pack("<f", payload)
    raise ValueError(wire)


def sentencepiece_model(pieces):
    """sentencepiece_model.proto ModelProto: pieces (1: piece, 2: score, 3: type NORMAL 1,
    UNKNOWN 2, CONTROL 3), trainer_spec (3: model_type UNIGRAM 1, 4: vocab_size, 40-43: unk,
    bos, eos, pad ids), normalizer_spec (1: name, 3: add_dummy_prefix,
    4: remove_extra_whitespaces, 5: escape_whitespaces). Scores favour longer pieces."""
    types = {"<s>": 3, "<pad>": 3, "</s>": 3, "<unk>": 2}
    out = bytearray()
    for p in pieces:
        kind = types.get(p, 1)
        score = 0.0 if kind != 1 else -10.0 + 2.0 * len(p.replace("\u2581", ""))
        out += _field(1, 2, _field(1, 2, p.encode()) + _field(2, 5, score) + _field(3, 0, kind))
    trainer = (_field(3, 0, 1) + _field(4, 0, len(pieces)) + _field(40, 0, 3) +
               _field(41, 0, 0) + _field(42, 0, 2) + _field(43, 0, 1))
    normalizer = (_field(1, 2, b"identity") + _field(3, 0, 1) + _field(4, 0, 1) +
                  _field(5, 0, 1))
    out += _field(2, 2, trainer) + _field(3, 2, normalizer)
    return bytes(out)


def check_tokenizer(model, pieces):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_proto=model)
    assert sp.get_piece_size() == len(pieces)
    assert [sp.id_to_piece(i) for i in range(len(pieces))] == pieces
    assert (sp.bos_id(), sp.pad_id(), sp.eos_id(), sp.unk_id()) == (0, 1, 2, 3)
    encoded = sp.encode("la casa grande", out_type=str)
    assert "".join(encoded).replace("\u2581", " ").strip() == "la casa grande", encoded


# ----------------------------------------------------------------------------- outputs


def write_input(out):
    path = out / "input_10s.wav"
    need = int(INPUT_SECONDS * RATE)
    parts = []
    for name in INPUT_CLIPS:
        x, rate = sf.read(ROOT / "samples" / "audio" / name, dtype="float32")
        assert rate == RATE and x.ndim == 1, (name, rate, x.shape)
        parts.append(x)
    x = np.concatenate(parts)[:need]
    assert len(x) == need
    sf.write(path, x, RATE, subtype="PCM_16")
    return path


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/mtla-bench-models")
    out.mkdir(parents=True, exist_ok=True)
    pieces = synthetic_pieces()
    tok = sentencepiece_model(pieces)
    check_tokenizer(tok, pieces)
    print(f"{write_input(out)}: {INPUT_SECONDS:.1f} s of speech")
    for name, att in MODELS.items():
        cfg = recipe_config(name, att)
        path = out / name
        cfg_file = path / "config.json"
        if cfg_file.exists() and json.loads(cfg_file.read_text()) == cfg and \
                (path / "model.safetensors").exists():
            print(f"{path}: exists")
            continue
        W = init_weights(cfg, SEED, None)
        write_model_dir(path, cfg, W, pieces, tok, dtype="F32")
        md = load_model_dir(path)  # the written directory passes the reader's validation
        params = sum(t.numel() for t in md.tensors.values())
        print(f"{path}: {params / 1e6:.1f}M parameters")


if __name__ == "__main__":
    main()
