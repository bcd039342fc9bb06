#!/usr/bin/env python3
"""Train the speech-translation model (training/model.py) on a corpus of manifests.

  python3 training/train.py --config training/configs/small.json --corpus CORPUS \
      --run RUN [--time-budget 540] [--device cuda] [--workers 8]

CORPUS holds train.tsv and valid.tsv (training/dataset.py); RUN collects everything:
  spm/spm.model, vocab.txt    SentencePiece unigram on the Spanish train side (first start)
  cache/                      fbank feature caches of the manifests (first start)
  checkpoint_last.pt          full state: model, optimiser, step, epoch and batch cursor,
                              RNG, history; written at every save and when the time budget
                              ends, so the next command resumes exactly where this one
                              stopped (10-minute device commands chain)
  checkpoint_<step>.pt        model weights (for averaging), with their valid loss
  history.json, train.log     losses, learning rate, throughput, valid (and --dev) loss
                              per save
  DONE                        written when max_steps is reached

Training: label-smoothed cross entropy (0.1), SpecAugment on the normalised features,
AdamW with linear warmup then inverse-sqrt decay, gradient clipping, autocast bf16/fp16 on
CUDA (fp16 with a gradient scaler), gradient accumulation (update_freq).
"""
import argparse
import json
import math
import os
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_TRAIN = {
    "max_steps": 1000, "max_frames": 20000, "max_sentences": 128, "update_freq": 1,
    "lr": 2e-3, "warmup": 1000, "betas": [0.9, 0.98], "weight_decay": 0.01,
    "clip_norm": 5.0, "label_smoothing": 0.1, "amp": "bf16", "seed": 1,
    "log_every": 50, "save_every": 500, "keep_checkpoints": 12,
    "min_frames": 20, "max_utt_frames": 3000, "max_tokens": 256, "valid_max_utts": 2000,
}


def load_config(path):
    cfg = json.loads(pathlib.Path(path).read_text())
    cfg["train"] = dict(DEFAULT_TRAIN, **cfg.get("train", {}))
    return cfg


def lr_at(step, peak, warmup):
    """Linear warmup to `peak` over `warmup` updates, then peak * sqrt(warmup / step)."""
    step = max(step, 1)
    return peak * min(step / warmup, math.sqrt(warmup / step))


class Logger:
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def __call__(self, msg):
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


def batch_stream(corpus, resident, batches, specaug, seed, workers, device):
    """Yields batches on `device`: from the ResidentCorpus when there is one, else collated
    by DataLoader workers (Collater) and copied over."""
    import torch
    if resident is not None:
        gen = torch.Generator(device=resident.device)
        gen.manual_seed(seed)
        for ks in batches:
            yield resident.batch(ks, specaug, gen)
        return
    from training.dataset import Collater
    loader = torch.utils.data.DataLoader(
        batches, batch_size=1, shuffle=False, num_workers=workers,
        collate_fn=Collater(corpus, specaug, seed), pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None)
    for batch in loader:
        yield {k: (v.to(device, non_blocking=True) if hasattr(v, "to") else v)
               for k, v in batch.items()}


def validate(model, corpus, resident, tc, device, amp_dtype, workers):
    import torch
    from training.model import label_smoothed_nll

    model.eval()
    batches = corpus.batches(tc["max_frames"], tc["max_sentences"], 0, 0, shuffle=False)
    loss_sum = nll_sum = ntok = 0.0
    n_utt = 0
    with torch.no_grad():
        for b in batch_stream(corpus, resident, batches, None, 0, workers, device):
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                lp = model(b["feats"], b["feat_len"], b["tokens"], b["tok_len"])
            mask = b["target"] != corpus.pad
            loss, nll = label_smoothed_nll(lp, b["target"], mask, tc["label_smoothing"])
            loss_sum += float(loss)
            nll_sum += float(nll)
            ntok += float(mask.sum())
            n_utt += b["n_utt"]
    model.train()
    return {"loss": loss_sum / ntok, "nll": nll_sum / ntok, "ppl": math.exp(nll_sum / ntok),
            "utterances": n_utt}


def save_checkpoint(path, obj):
    import torch
    tmp = pathlib.Path(str(path) + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def prune_checkpoints(run, history, keep):
    """Keeps the `keep` most recent and the `keep` best step checkpoints."""
    saved = [h for h in history["saves"] if (run / h["file"]).exists()]
    last = {h["file"] for h in saved[-keep:]}
    best = {h["file"] for h in sorted(saved, key=lambda h: h["valid"]["loss"])[:keep]}
    best |= {h["file"] for h in sorted((h for h in saved if h.get("dev")),
                                       key=lambda h: h["dev"]["loss"])[:keep]}
    for h in saved:
        if h["file"] not in last | best:
            (run / h["file"]).unlink()


def init_from_model_dir(model, model_dir, log):
    """Loads a model directory's tensors into `model` (every parameter it has must be there;
    a frozen encoder's tensors in the directory are ignored)."""
    import torch
    from safetensors.numpy import load_file

    tensors = {}
    for f in sorted(pathlib.Path(model_dir).glob("model*.safetensors")):
        tensors.update(load_file(str(f)))
    own = model.state_dict()
    missing = [k for k in own if k not in tensors and not k.endswith("num_batches_tracked")]
    if missing:
        raise SystemExit(f"{model_dir} lacks {missing[:5]}: not a model of this config")
    model.load_state_dict({k: torch.from_numpy(tensors[k].astype("float32")) if k in tensors
                           else v for k, v in own.items()})
    log(f"initialised {len(own)} tensors from {model_dir}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--corpus", required=True, help="folder with train.tsv and valid.tsv")
    ap.add_argument("--run", required=True, help="output folder (resumed when it holds state)")
    ap.add_argument("--cache", help="feature cache folder (default RUN/cache)")
    ap.add_argument("--dev", help="extra manifest scored at every save (teacher-forced loss), "
                               "e.g. the Asterisk a..l dev set, for checkpoint choice "
                               "(average.py --by dev); never trained on")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    ap.add_argument("--workers", type=int, default=None, help="data loader/feature workers")
    ap.add_argument("--loader", choices=("resident", "workers"), default=None,
                    help="resident: the normalised corpus lives in device memory, batches and "
                         "SpecAugment are made there (default on CUDA); workers: DataLoader "
                         "processes collate on the CPU (default on CPU)")
    ap.add_argument("--time-budget", type=float, default=None,
                    help="seconds: stop cleanly (validate, save full state) after this long")
    ap.add_argument("--max-steps", type=int, default=None, help="override train.max_steps")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--amp", choices=("bf16", "fp16", "none"), default=None,
                    help="override train.amp (mixed precision on CUDA)")
    ap.add_argument("--cpu-amp", action="store_true",
                    help="bf16 autocast on the CPU too (AVX-512 BF16); off by default")
    ap.add_argument("--init-from", metavar="MODEL_DIR",
                    help="when RUN holds no state yet: start from this model directory's "
                         "weights and SentencePiece model (e.g. the committed samples/model) "
                         "with a fresh optimiser and a warm-up of --init-warmup updates")
    ap.add_argument("--init-warmup", type=int, default=100)
    args = ap.parse_args(argv)
    t_start = time.time()

    import numpy as np
    import torch

    from training.dataset import FeatureCorpus, ResidentCorpus, build_feature_cache
    from training.model import SpeechTranslationModel, count_parameters, label_smoothed_nll
    from training.spm import Tokenizer, train_spm

    run = pathlib.Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    log = Logger(run / "train.log")
    cfg_path = run / "config.json"
    if cfg_path.exists():
        cfg = json.loads(cfg_path.read_text())
        new = load_config(args.config)
        if new["model"] != cfg["model"] or new.get("vocab_size") != cfg.get("vocab_size"):
            raise SystemExit(f"{run} was started with another model config; use a new --run")
        cfg["train"].update(new["train"])       # schedule/budget changes are allowed
        cfg["specaugment"] = new.get("specaugment", cfg.get("specaugment"))
    else:
        cfg = load_config(args.config)
    if args.max_steps is not None:
        cfg["train"]["max_steps"] = args.max_steps
    if args.amp:
        cfg["train"]["amp"] = args.amp
    cfg_path.write_text(json.dumps(cfg, indent=1) + "\n")
    tc = cfg["train"]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    workers = args.workers if args.workers is not None else min(8, os.cpu_count() or 1)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(tc["amp"]) \
        if device.type == "cuda" else (torch.bfloat16 if args.cpu_amp else None)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    corpus_dir = pathlib.Path(args.corpus)
    spm_model = run / "spm" / "spm.model"
    fresh = not (run / "checkpoint_last.pt").exists()
    if fresh and args.init_from and not spm_model.exists():
        spm_model.parent.mkdir(parents=True, exist_ok=True)
        spm_model.write_bytes((pathlib.Path(args.init_from) / "tokenizer.model").read_bytes())
        log(f"SentencePiece model from {args.init_from}")
    if not spm_model.exists():
        from training.dataset import read_manifest
        train_spm((r["es"] for r in read_manifest(corpus_dir / "train.tsv")), run / "spm",
                  cfg["vocab_size"])
        log(f"trained SentencePiece: {spm_model}")
    tok = Tokenizer(spm_model)
    kind = "whisper" if cfg["model"]["encoder"]["type"] == "whisper" else "fbank"
    cache = pathlib.Path(args.cache) if args.cache else run / "cache"
    if kind != "fbank":
        cache = cache / kind        # a frozen encoder's outputs, not fbank frames
    t0 = time.time()
    train_idx = build_feature_cache(corpus_dir / "train.tsv", cache, workers=os.cpu_count(),
                                    log=log, kind=kind)
    valid_idx = build_feature_cache(corpus_dir / "valid.tsv", cache, workers=os.cpu_count(),
                                    log=log, kind=kind)
    dev_idx = None
    if args.dev:
        dev_dir = cache / "dev"     # its own folder: its manifest may also be called *.tsv
        dev_idx = build_feature_cache(args.dev, dev_dir, workers=os.cpu_count(), log=log,
                                      kind=kind)
    log(f"feature caches ready in {time.time() - t0:.1f} s")
    train = FeatureCorpus(train_idx, tok, tc["min_frames"], tc["max_utt_frames"],
                          tc["max_tokens"])
    valid = FeatureCorpus(valid_idx, tok, tc["min_frames"], tc["max_utt_frames"],
                          tc["max_tokens"])
    if len(valid) > tc["valid_max_utts"]:   # a fixed, spread subset keeps validation short
        sel = np.linspace(0, len(valid) - 1, tc["valid_max_utts"]).astype(int)
        valid.frames = valid.frames[sel]
        valid.start = [valid.start[i] for i in sel]
        valid.targets = [valid.targets[i] for i in sel]
        valid.keep = [valid.keep[i] for i in sel]
    dev = FeatureCorpus(dev_idx, tok, 1, 100000, 100000) if dev_idx else None
    loader_kind = args.loader or ("resident" if device.type == "cuda" else "workers")
    res_train = res_valid = res_dev = None
    if loader_kind == "resident":
        t0 = time.time()
        res_train, res_valid = ResidentCorpus(train, device), ResidentCorpus(valid, device)
        res_dev = ResidentCorpus(dev, device) if dev else None
        log(f"corpus resident on {device}: {res_train.table.shape[0]} + "
            f"{res_valid.table.shape[0]} frames, normalised in {time.time() - t0:.1f} s")
    log(f"train {len(train)} utterances ({train.dropped} dropped by length), "
        f"valid {len(valid)}; vocabulary {len(tok)}")

    torch.manual_seed(tc["seed"])
    model = SpeechTranslationModel(cfg["model"], len(tok), dropout=cfg.get("dropout", 0.1),
                                   attn_dropout=cfg.get("attn_dropout", 0.0)).to(device)
    log(f"model: {count_parameters(model):,} parameters on {device}, amp {amp_dtype}")
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos_bias" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and
                                                                "pos_bias" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tc["lr"], betas=tuple(tc["betas"]), eps=1e-8,
                            fused=device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    state = {"step": 0, "epoch": 0, "cursor": 0}
    history = {"log": [], "saves": []}
    last = run / "checkpoint_last.pt"
    if not last.exists() and args.init_from:
        init_from_model_dir(model, args.init_from, log)
        tc["warmup"] = args.init_warmup
        cfg["train"]["warmup"] = args.init_warmup
        cfg_path.write_text(json.dumps(cfg, indent=1) + "\n")
        history["init_from"] = str(pathlib.Path(args.init_from).resolve())
    if last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        scaler.load_state_dict(ck["scaler"])
        state, history = ck["state"], ck["history"]
        torch.set_rng_state(ck["rng"]["torch"])
        random.setstate(ck["rng"]["python"])
        if device.type == "cuda" and ck["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ck["rng"]["cuda"])
        log(f"resumed at step {state['step']} (epoch {state['epoch']}, batch {state['cursor']})")

    def full_state():
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict(), "state": dict(state), "history": history,
                "config": cfg, "spm_model": str(spm_model.resolve()),
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                        "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None}}

    def save(reason):
        if history["saves"] and history["saves"][-1]["step"] == state["step"]:
            save_checkpoint(last, full_state())     # this step's weights are saved already
            log(f"[{reason}] step {state['step']}: state saved")
            return
        v = validate(model, valid, res_valid, tc, device, amp_dtype, workers)
        vd = validate(model, dev, res_dev, tc, device, amp_dtype, workers) if dev else None
        name = f"checkpoint_{state['step']}.pt"
        save_checkpoint(run / name, {"model": model.export_state_dict(), "config": cfg,
                                     "spm_model": str(spm_model.resolve()),
                                     "step": state["step"], "valid": v})
        history["saves"] = [h for h in history["saves"] if h["step"] != state["step"]]
        history["saves"].append({"step": state["step"], "file": name, "valid": v,
                                 "dev": vd, "time": time.time()})
        prune_checkpoints(run, history, tc["keep_checkpoints"])
        save_checkpoint(last, full_state())
        (run / "history.json").write_text(json.dumps(history, indent=1) + "\n")
        log(f"[{reason}] step {state['step']}: valid loss {v['loss']:.4f} nll {v['nll']:.4f} "
            f"ppl {v['ppl']:.2f}" + (f"; dev loss {vd['loss']:.4f} nll {vd['nll']:.4f}"
                                     if vd else "") + f" -> {name}")

    history.setdefault("sessions", []).append(time.time())   # training starts (curve.py)
    specaug = cfg.get("specaugment")
    model.train()
    stop = False
    acc = {"loss": 0.0, "nll": 0.0, "tok": 0.0, "frames": 0, "utt": 0, "t": time.time()}
    while not stop and state["step"] < tc["max_steps"]:
        batches = train.batches(tc["max_frames"], tc["max_sentences"], tc["seed"],
                                state["epoch"])
        loader = batch_stream(train, res_train, batches[state["cursor"]:], specaug,
                              tc["seed"] * 1000003 + state["epoch"] * 1009 + state["cursor"],
                              workers, device)
        micro = 0
        for b in loader:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                lp = model(b["feats"], b["feat_len"], b["tokens"], b["tok_len"])
            mask = b["target"] != train.pad
            loss, nll = label_smoothed_nll(lp, b["target"], mask, tc["label_smoothing"])
            ntok = mask.sum()
            scaler.scale(loss / ntok.clamp(min=1) / tc["update_freq"]).backward()
            acc["loss"] += loss.detach()        # tensors: no device sync until logged
            acc["nll"] += nll.detach()
            acc["tok"] += ntok
            acc["frames"] += b["feat_len"].sum()
            acc["utt"] += b["n_utt"]
            state["cursor"] += 1
            micro += 1
            if micro % tc["update_freq"]:
                continue
            lr = lr_at(state["step"] + 1, tc["lr"], tc["warmup"])
            for g in opt.param_groups:
                g["lr"] = lr
            scaler.unscale_(opt)
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc["clip_norm"])
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            state["step"] += 1
            if state["step"] % tc["log_every"] == 0:
                dt = time.time() - acc["t"]
                tok_n = float(acc["tok"])
                rec = {"step": state["step"], "epoch": state["epoch"], "lr": lr,
                       "loss": float(acc["loss"]) / tok_n, "nll": float(acc["nll"]) / tok_n,
                       "gnorm": float(gnorm), "utt_per_s": acc["utt"] / dt,
                       "frames_per_s": float(acc["frames"]) / dt, "tokens_per_s": tok_n / dt}
                history["log"].append(rec)
                log(f"step {rec['step']} ep {rec['epoch']} lr {lr:.2e} loss {rec['loss']:.4f} "
                    f"nll {rec['nll']:.4f} gnorm {rec['gnorm']:.2f} "
                    f"{rec['utt_per_s']:.1f} utt/s {rec['frames_per_s']:.0f} frames/s")
                acc = {"loss": 0.0, "nll": 0.0, "tok": 0.0, "frames": 0, "utt": 0,
                       "t": time.time()}
            if state["step"] % tc["save_every"] == 0 or state["step"] >= tc["max_steps"]:
                save("periodic" if state["step"] < tc["max_steps"] else "final")
                if state["step"] >= tc["max_steps"]:
                    stop = True
                    break
            if args.time_budget and time.time() - t_start > args.time_budget:
                save("time budget")
                stop = True
                break
        else:
            state["epoch"] += 1
            state["cursor"] = 0
            log(f"epoch {state['epoch']} begins at step {state['step']}")
        del loader
    if state["step"] >= tc["max_steps"]:
        (run / "DONE").write_text(f"{state['step']}\n")
    log(f"stopped at step {state['step']} after {time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
