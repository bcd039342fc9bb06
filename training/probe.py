#!/usr/bin/env python3
"""Does the model listen? Greedy translations from a checkpoint on cached features, with
chrF, for judging a run while it trains (the full evaluation is eval/evaluate.py, with the C
engine and beam search).

  python3 training/probe.py --checkpoint RUN/checkpoint_last.pt --index CACHE/valid.index.json \
      [--limit 100] [--show 5] [--threads 1]

Greedy decoding recomputes the whole decoder at each step (no incremental state): slow but
plainly the training graph, so a probe cannot disagree with training about the model. A model
stuck in the language-model plateau prints the same sentence for every input and scores a
chrF near that of a constant guess; `distinct` counts the different outputs.
"""
import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def greedy(model, feats, max_len, eos):
    """feats (T, dim) float32 tensor (already normalised when the model needs it)."""
    import torch

    with torch.no_grad():
        P, S = model.encode(feats[None], torch.tensor([feats.shape[0]]))
        out = [eos]
        for _ in range(max_len):
            toks = torch.tensor([out])
            lp = model.decoder(P, S, toks, torch.tensor([len(out)]))
            nxt = int(lp[0, -1].argmax())
            if nxt == eos:
                break
            out.append(nxt)
    return out[1:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--index", required=True, help="a feature cache's *.index.json")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--show", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the scores here")
    args = ap.parse_args(argv)

    import numpy as np
    import sacrebleu
    import torch

    from training.dataset import FeatureCorpus, utterance_cmvn
    from training.model import SpeechTranslationModel
    from training.spm import Tokenizer

    torch.set_num_threads(args.threads)
    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    tok = Tokenizer(ck["spm_model"])
    model = SpeechTranslationModel(cfg["model"], len(tok), dropout=0.0, attn_dropout=0.0)
    state = ck["model"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if [k for k in missing if not k.endswith("num_batches_tracked")] or unexpected:
        raise SystemExit(f"checkpoint does not fit the model: {missing[:3]} {unexpected[:3]}")
    model.eval()
    corpus = FeatureCorpus(args.index, tok, 1, 100000, 100000)
    sel = np.linspace(0, len(corpus) - 1, min(args.limit, len(corpus))).astype(int)
    hyps, refs = [], []
    for n, k in enumerate(sel):
        x = corpus.features(int(k))
        if corpus.normalise:
            x = utterance_cmvn(x)
        ids = greedy(model, torch.from_numpy(x), 60, tok.eos)
        hyps.append(tok.decode(ids))
        refs.append(corpus.es[corpus.keep[int(k)]])
        if n < args.show:
            print(f"  ref: {refs[-1]}\n  hyp: {hyps[-1]}")
    chrf = sacrebleu.metrics.CHRF().corpus_score(hyps, [refs]).score
    bleu = sacrebleu.metrics.BLEU().corpus_score(hyps, [refs]).score
    res = {"checkpoint": args.checkpoint, "step": ck.get("state", {}).get("step", ck.get("step")),
           "index": args.index, "n": len(hyps), "chrf": round(chrf, 2), "bleu": round(bleu, 2),
           "distinct": len(set(hyps))}
    print(json.dumps(res))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
