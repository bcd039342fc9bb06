#!/usr/bin/env python3
"""The data path of the trainer (training/dataset.py, training/spm.py):
- the feature cache holds torchaudio's Kaldi fbank of the 16 kHz FLAC files (x * 32768),
  one row per snip_edges frame of n_samples;
- utterance CMVN equals tools/reference's (what the engine applies);
- SentencePiece ids follow the fairseq dictionary (bos 0, pad 1, eos 2, unk 3);
- length-bucketed batches cover every utterance once and respect max_frames/max_sentences;
- the resident corpus (in-memory, float16) gives the same batches as the DataLoader
  collation (features within float16 rounding, tokens identical);
- batched SpecAugment masks at most the configured widths, inside each utterance.

Run: python3 training/tests/test_dataset.py  (exit 77 without torch/torchaudio/soundfile)
"""
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SPANISH = ["Buenos días a todos.", "La casa es roja y grande.", "¿Dónde está la estación?",
           "Me gusta leer libros por la noche.", "Hoy hace frío en la ciudad.",
           "Los niños juegan en el jardín.", "Él escribe una carta larga.",
           "Comemos pan y queso con vino."]


def make_corpus(root, np, sf):
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    with (root / "train.tsv").open("w", encoding="utf-8") as f:
        f.write("id\taudio\tn_samples\ten\tes\tvoice\taugment\n")
        for i, es in enumerate(SPANISH * 2):
            n = int(rng.integers(4000, 30000))
            t = np.arange(n) / 16000
            x = 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t) + 0.05 * rng.standard_normal(n)
            sf.write(str(root / "audio" / f"u{i}.flac"), x.astype(np.float32), 16000,
                     subtype="PCM_16")
            f.write(f"u{i}\taudio/u{i}.flac\t{n}\ten {i}\t{es}\tv\tnone\n")


def run(tmp):
    import numpy as np
    import soundfile as sf
    import torch
    from torchaudio.compliance import kaldi

    from tools.reference.encoder import normalize_features
    from training.dataset import (Collater, FeatureCorpus, ResidentCorpus, build_feature_cache,
                                  num_frames, read_manifest, spec_augment_batch,
                                  utterance_cmvn)
    from training.spm import Tokenizer, train_spm

    root = pathlib.Path(tmp)
    make_corpus(root, np, sf)
    rows = read_manifest(root / "train.tsv")
    idx = build_feature_cache(root / "train.tsv", root / "cache", workers=2, dtype="float32",
                              log=lambda m: None)
    feats = np.load(root / "cache" / "train.feats.npy")
    off = 0
    for r in rows:
        x, _ = sf.read(r["audio"], dtype="float32")
        ref = kaldi.fbank(torch.from_numpy(x)[None] * 32768.0, num_mel_bins=80).numpy()
        n = num_frames(r["n_samples"])
        assert ref.shape[0] == n
        assert np.abs(feats[off:off + n] - ref).max() < 1e-4
        cm = utterance_cmvn(ref)
        assert np.abs(cm - normalize_features(ref, {"frontend": {"cmvn": "utterance"}},
                                              {}).numpy()).max() < 1e-6
        off += n
    assert off == len(feats)

    spm_path = train_spm((r["es"] for r in rows), root / "spm", 60)
    tok = Tokenizer(spm_path)
    assert tok.vocab[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tok.decode(tok.encode(SPANISH[1])) == SPANISH[1]
    assert (root / "spm" / "vocab.txt").read_text(encoding="utf-8").splitlines() == tok.vocab

    corpus = FeatureCorpus(idx, tok, min_frames=10, max_frames=3000, max_tokens=100)
    assert len(corpus) == len(rows)
    batches = corpus.batches(max_frames=4000, max_sentences=5, seed=1, epoch=0)
    assert sorted(k for b in batches for k in b) == list(range(len(corpus)))
    for b in batches:
        assert len(b) <= 5 and (len(b) == 1 or max(corpus.frames[b]) * len(b) <= 4000)
    assert batches != corpus.batches(4000, 5, seed=1, epoch=1)

    res = ResidentCorpus(corpus, "cpu")
    col = Collater(corpus)
    for b in batches:
        a, c = res.batch(b), col([b])
        for k in ("feat_len", "tokens", "target", "tok_len"):
            assert torch.equal(a[k], c[k]), k
        assert a["feats"].shape == c["feats"].shape
        assert (a["feats"] - c["feats"]).abs().max() < 4e-3     # float16 storage

    x = torch.randn(3, 200, 80) + 5.0
    lengths = torch.tensor([200, 150, 60])
    g = torch.Generator().manual_seed(0)
    y = spec_augment_batch(x * (torch.arange(200)[None, :, None] < lengths[:, None, None]),
                           lengths, g, freq_masks=2, freq_width=10, time_masks=2,
                           time_width=20, time_p=0.2)
    for b in range(3):
        zero_f = (y[b, :lengths[b]] == 0).all(0).sum()
        zero_t = (y[b, :lengths[b]] == 0).all(1).sum()
        assert zero_f <= 20 and zero_t <= min(40, 2 * int(0.2 * lengths[b]))
    return len(rows)


def main():
    try:
        import soundfile  # noqa: F401
        import torch  # noqa: F401
        import torchaudio  # noqa: F401
    except ImportError as e:
        print(f"skip: {e}")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        n = run(tmp)
    print(f"ok ({n} utterances)")
    return 0


def test_dataset():
    with tempfile.TemporaryDirectory() as tmp:
        run(tmp)


if __name__ == "__main__":
    sys.exit(main())
