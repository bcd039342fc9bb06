#!/usr/bin/env python3
"""The trainer's model computes what the engine runs.

For random weights (LayerNorm, BatchNorm statistics and rel_pos biases randomised too), the
trainer's teacher-forced forward on a PADDED batch of two utterances of different lengths
(audio and text; the longer text with the shorter audio, and prompt lengths of different
parity so the MTLA chunking differs) gives, row for row, the log-probs of:
  - the same model run on each utterance alone, and
  - tools/reference's oracle full path (SpeechTranslator.encode + PromptDecoder.full, the
    authors' MTLA module in its training path) reading the exported model directory,
within 1e-5 (max abs difference; log-probs are of magnitude ~5). Architectures: Conformer
rel_pos with s = 2, Conformer abs with s = 3 and projector_stack 2, Transformer with s = 2.
Also: parameter names are exactly the model directory's tensor names.

Run: python3 training/tests/test_model_equals_oracle.py   (exit 77: torch/mtla missing)
or   python3 -m pytest training/tests/test_model_equals_oracle.py
"""
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TOL = 1e-5


def arch(enc_type, positions, s, stack):
    enc = {"type": enc_type, "layers": 2, "d_model": 32, "heads": 4, "ffn_dim": 64,
           "subsampler": {"type": "conv1d_glu", "channels": 64, "kernel_sizes": [5, 5]},
           "positions": positions}
    if enc_type == "conformer":
        enc["conv_kernel"] = 7
    dec = {"layers": 2, "d_model": 48, "ffn_dim": 64, "projector_stack": stack,
           "attention": {"type": "mtla", "heads": 4, "kv_lora_rank": 16,
                         "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
                         "down_rate": s, "hyper_rank": 4, "rope_theta": 10000.0}}
    return {"encoder": enc, "decoder": dec}


CASES = [("conformer", "rel_pos", 2, 1), ("conformer", "abs", 3, 2),
         ("transformer", "sinusoidal", 2, 1)]


def randomize(model, torch, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith("running_mean") or "pos_bias" in name or \
                    name.endswith("norm.bias") or name.endswith("layer_norm.bias"):
                t.copy_(0.3 * torch.randn(t.shape, generator=g))
            elif name.endswith("norm.weight") or name.endswith("layer_norm.weight"):
                t.copy_(1.0 + 0.3 * torch.randn(t.shape, generator=g))


def run_case(case, tmp):
    import numpy as np
    import torch

    from tools.reference.model import SpeechTranslator
    from tools.reference.model_dir import expected_tensors, write_model_dir
    from training.dataset import utterance_cmvn
    from training.export import model_dir_config
    from training.model import SpeechTranslationModel

    torch.manual_seed(0)
    enc_type, positions, s, stack = case
    a = arch(enc_type, positions, s, stack)
    V = 37
    model = SpeechTranslationModel(a, V, dropout=0.1).eval()
    randomize(model, torch, 1)

    cfg = {"model": a}
    config = model_dir_config(cfg, V)
    vocab = ["<s>", "<pad>", "</s>", "<unk>"] + [f"\u2581p{i}" for i in range(V - 4)]
    out = pathlib.Path(tmp) / f"{enc_type}_{positions}_s{s}"
    state = model.export_state_dict()
    assert set(state) == set(expected_tensors(config)), "names differ from the model directory"
    write_model_dir(out, config, state, vocab, b"not used by this test", dtype="F32")
    oracle = SpeechTranslator(out)

    # real speech features, two lengths; prompt lengths of different parity
    base = np.load(ROOT / "tests/golden/frontend/clip_16000_s16.npy")
    raws = [base[:163], base[40:158]]
    rng = np.random.default_rng(3)
    texts = [[2] + list(rng.integers(3, V, 8)), [2] + list(rng.integers(3, V, 13))]

    feats = [utterance_cmvn(r) for r in raws]
    B, T, L = 2, max(map(len, feats)), max(map(len, texts))
    fx = torch.zeros(B, T, 80)
    tok = torch.full((B, L), 1, dtype=torch.long)
    for b in range(B):
        fx[b, :len(feats[b])] = torch.from_numpy(feats[b])
        tok[b, :len(texts[b])] = torch.tensor(texts[b])
    flen = torch.tensor([len(f) for f in feats])
    tlen = torch.tensor([len(t) for t in texts])

    worst = {"batch_vs_alone": 0.0, "batch_vs_oracle": 0.0, "prompt_vs_oracle": 0.0}
    with torch.no_grad():
        lp_batch = model(fx, flen, tok, tlen)
        P_batch, S_len = model.encode(fx, flen)
        for b in range(B):
            n, m = len(feats[b]), len(texts[b])
            lp_alone = model(fx[b:b + 1, :n], flen[b:b + 1], tok[b:b + 1, :m], tlen[b:b + 1])[0]
            _, P = oracle.encode(raws[b])
            lp_oracle = oracle.decoder.full(P, torch.tensor(texts[b]))
            assert int(S_len[b]) == P.shape[0], (S_len[b], P.shape)
            worst["prompt_vs_oracle"] = max(worst["prompt_vs_oracle"], float(
                (P_batch[b, :P.shape[0]] - P).abs().max()))
            worst["batch_vs_alone"] = max(worst["batch_vs_alone"], float(
                (lp_batch[b, :m] - lp_alone).abs().max()))
            worst["batch_vs_oracle"] = max(worst["batch_vs_oracle"], float(
                (lp_batch[b, :m] - lp_oracle).abs().max()))
    S = S_len.tolist()
    return S, worst


def _check(case):
    with tempfile.TemporaryDirectory() as tmp:
        S, worst = run_case(case, tmp)
    print(f"{case}: prompt lengths {S}, max abs diff {worst}")
    assert S[0] != S[1] and (S[0] - S[1]) % 2 == 1 or case[2] != 2, S
    for k, v in worst.items():
        assert v <= TOL, f"{case}: {k} = {v:.3g} > {TOL}"


def test_conformer_relpos_s2():
    _check(CASES[0])


def test_conformer_abs_s3_stack2():
    _check(CASES[1])


def test_transformer_s2():
    _check(CASES[2])


def main():
    try:
        import torch  # noqa: F401

        from tools.reference.authors import mtla_class
        mtla_class()
    except ImportError as e:
        print(f"skip: {e}")
        return 77
    for c in CASES:
        _check(c)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
