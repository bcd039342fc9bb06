#!/usr/bin/env python3
"""Translate fbank features with the PyTorch oracle, to cross-check the C engine by hand.

  python3 tools/reference/run.py --model DIR --features X.npy [--beam N] [--print-tokens]
  python3 -m tools.reference ...            (the same, from the repository root)

X.npy holds (T, num_mel_bins) log-mel features before CMVN (what `mtla-st features INPUT
-o X.npy` writes with its default --cmvn none, and what tests/golden/frontend/*.npy hold);
the model's configured CMVN is applied here, as `mtla-st --input-features` does. Prints the
detokenised best hypothesis; --print-tokens adds the model ids, the score and the per-token
log-probs; --json prints everything as one JSON object.
"""
import argparse
import json
import pathlib
import sys

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from reference.model import SpeechTranslator  # noqa: E402
    from reference.model_dir import ModelFormatError  # noqa: E402
else:
    from .model import SpeechTranslator
    from .model_dir import ModelFormatError


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="tools/reference/run.py",
        description="Run the float32 PyTorch oracle on one utterance's fbank features.")
    ap.add_argument("--model", required=True, help="model directory (docs/model-format.md)")
    ap.add_argument("--features", required=True,
                    help=".npy file, (T, num_mel_bins) float log-mel features before CMVN")
    ap.add_argument("--beam", type=int, help="beam size (default: the config's generation.beam)")
    ap.add_argument("--max-len", type=int,
                    help="override max_len (default: from max_len_a/max_len_b and T)")
    ap.add_argument("--nbest", type=int, default=1, help="print this many finalised hypotheses")
    ap.add_argument("--print-tokens", action="store_true",
                    help="also print model ids, score and per-token log-probs")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--mtla-impl", choices=("auto", "ours"), default="auto",
                    help="auto: the authors' MTLA module where it is right; ours: our own "
                         "MTLA code everywhere")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 keeps results reproducible to the bit)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import torch

    torch.set_num_threads(max(1, args.threads))
    try:
        model = SpeechTranslator(args.model, mtla_impl=args.mtla_impl)
    except ModelFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {args.model}: {e}", file=sys.stderr)
        return 1
    try:
        feats = np.load(args.features)
    except (OSError, ValueError) as e:
        print(f"error: {args.features}: {e}", file=sys.stderr)
        return 1
    n_mel = model.cfg["frontend"]["num_mel_bins"]
    if feats.ndim != 2 or feats.shape[1] != n_mel:
        print(f"error: {args.features}: expected shape (T, {n_mel}), got {feats.shape}",
              file=sys.stderr)
        return 1
    if args.beam is not None and args.beam < 1:
        print("error: --beam must be >= 1", file=sys.stderr)
        return 2
    beam = args.beam or model.cfg["generation"]["beam"]
    max_len = args.max_len if args.max_len is not None else model.max_len(len(feats))
    try:
        hyps = model.translate(feats, beam=beam, max_len=max_len)
    except ValueError as e:   # e.g. too few frames for the subsampler and projector
        print(f"error: {e}", file=sys.stderr)
        return 1

    shown = hyps[: max(1, args.nbest)]
    if args.json:
        print(json.dumps({
            "model": str(args.model), "features": str(args.features), "frames": len(feats),
            "beam": beam, "max_len": max_len,
            "hypotheses": [{"text": model.detokenize(h["tokens"]), "tokens": h["tokens"],
                            "score": h["score"], "positional_scores": h["positional_scores"]}
                           for h in shown]}, ensure_ascii=False, indent=1))
        return 0
    for i, h in enumerate(shown):
        prefix = f"{i}\t" if len(shown) > 1 else ""
        print(prefix + model.detokenize(h["tokens"]))
        if args.print_tokens:
            print(f"{prefix}tokens\t{' '.join(map(str, h['tokens']))}")
            print(f"{prefix}score\t{h['score']:.6f}")
            print(f"{prefix}positional\t{' '.join(f'{v:.4f}' for v in h['positional_scores'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
