#!/usr/bin/env python3
"""Average the weights of several step checkpoints (as the authors' recipe does with its 10
best) into one checkpoint that export.py reads.

  python3 training/average.py --run RUN --best 10 --out RUN/averaged.pt
  python3 training/average.py --run RUN --last 5  --out RUN/averaged.pt
  python3 training/average.py --checkpoints A.pt B.pt --out AVG.pt

--best ranks the run's saved checkpoints (history.json) by validation loss (--by valid) or by
the loss on train.py's --dev set (--by dev: the Asterisk a..l prompts); --last by step.
Every tensor is the float32 mean, BatchNorm running statistics included; the result keeps
the newest checkpoint's config and SentencePiece path and lists what it averaged.
"""
import argparse
import json
import pathlib
import sys


def select(run, best=None, last=None, by="valid"):
    run = pathlib.Path(run)
    saves = [h for h in json.loads((run / "history.json").read_text())["saves"]
             if (run / h["file"]).exists()]
    if not saves:
        raise SystemExit(f"{run}: no step checkpoints")
    if best:
        if by == "dev" and not all(h.get("dev") for h in saves):
            raise SystemExit(f"{run}: not every checkpoint has a dev loss (train.py --dev)")
        chosen = sorted(saves, key=lambda h: h[by]["loss"])[:best]
    else:
        chosen = sorted(saves, key=lambda h: h["step"])[-(last or 1):]
    return [run / h["file"] for h in sorted(chosen, key=lambda h: h["step"])]


def average(paths):
    import torch

    total, meta = None, None
    for p in paths:
        ck = torch.load(p, map_location="cpu", weights_only=False)
        sd = ck["model"]
        if total is None:
            total = {k: v.double().clone() for k, v in sd.items()}
        else:
            if set(sd) != set(total):
                raise SystemExit(f"{p}: its tensors differ from {paths[0]}")
            for k, v in sd.items():
                total[k] += v.double()
        if meta is None or ck.get("step", 0) >= meta.get("step", 0):
            meta = ck
    n = len(paths)
    return {"model": {k: (v / n).float() for k, v in total.items()},
            "config": meta["config"], "spm_model": meta["spm_model"], "step": meta["step"],
            "averaged": [str(p) for p in paths]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="training run folder (with history.json)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--best", type=int, help="average the N checkpoints of lowest valid loss")
    g.add_argument("--last", type=int, help="average the N most recent checkpoints")
    ap.add_argument("--by", choices=("valid", "dev"), default="valid",
                    help="--best ranks by the valid-set loss or by the --dev set's loss")
    ap.add_argument("--checkpoints", nargs="+", help="explicit checkpoint files")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import torch

    if args.checkpoints:
        paths = [pathlib.Path(p) for p in args.checkpoints]
    elif args.run:
        paths = select(args.run, args.best, args.last or (None if args.best else 5), args.by)
    else:
        ap.error("give --run or --checkpoints")
    avg = average(paths)
    torch.save(avg, args.out)
    print(json.dumps({"out": args.out, "averaged": [p.name for p in paths]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
