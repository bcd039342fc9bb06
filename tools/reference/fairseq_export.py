"""Writes a model directory back out as a checkpoint of the authors' fairseq recipe.

Only for testing tools/convert_fairseq.py: no released checkpoint of the recipe exists
(docs/architecture.md section 9), so the converter is tested on checkpoints that imitate what
the authors' fairseq fork saves (facts from docs/architecture.md and the fork's
s2t_transformer.py / s2t_conformer.py / trainer.py / dictionary.py):

  checkpoint.pt  torch.save of {"args": argparse.Namespace | None, "cfg": dict | None,
                 "model": state dict, "optimizer_history": [...], "extra_state": {...}}.
                 Legacy fairseq fills "args"; current fairseq sets "args" None and stores
                 OmegaConf.to_container(cfg) under "cfg", where cfg["model"] is the parsed
                 argparse Namespace for models registered with add_args (as these are).
                 The state dict uses the fork's module paths, which are the model directory's
                 tensor names, plus the buffers the fork's checkpoints carry: decoder.version
                 ([3.0]) and BatchNorm num_batches_tracked. It also holds
                 encoder.embed_positions._float_tensor, which older fairseq versions store for
                 sinusoidal positions (the fork's table is not persistent), so that the
                 converter's handling of it is exercised.
  dict.txt       fairseq dictionary: "piece count" per line, ids 4.. (0-3 are implicit)
  spm.model      the SentencePiece model (tokenizer.model)
  gcmvn.npz      "mean" and "std" (fairseq GlobalCMVN), when the model uses global CMVN

The config must be one the fork can build: MHA/GQA with heads * head_dim = d_model and
kv_heads 1 (MQA) or 2 (GQA) as hard-coded there, hyper_rank = kv_lora_rank / 4, RoPE theta
10000, and a Conformer with either fairseq attention and absolute positions or ESPnet
rel_pos attention. Anything else raises FairseqExportError.
"""
import argparse
import json
import pathlib

import numpy as np
import torch

from .model_dir import load_model_dir

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


class FairseqExportError(ValueError):
    pass


def recipe_args(cfg, ctc_weight=0.0, mlta_spelling=False):
    """The argparse Namespace the fork would have saved for this config (arch + arg names of
    s2t_transformer.py / s2t_conformer.py, generation options as legacy fairseq keeps them)."""
    enc, dec = cfg["encoder"], cfg["decoder"]
    att = dec["attention"]
    if float(att["rope_theta"]) != 10000.0:
        raise FairseqExportError("the fork hard-codes RoPE theta 10000")
    conformer = enc["type"] == "conformer"
    prefix = "conformer_decoder_only_" if conformer else "s2t_decoder_only_"
    a = dict(
        task="speech_to_text", criterion="label_smoothed_cross_entropy",
        encoder_embed_dim=enc["d_model"], encoder_ffn_embed_dim=enc["ffn_dim"],
        encoder_layers=enc["layers"], encoder_attention_heads=enc["heads"],
        encoder_normalize_before=True, decoder_normalize_before=True,
        decoder_embed_dim=dec["d_model"], decoder_ffn_embed_dim=dec["ffn_dim"],
        decoder_layers=dec["layers"], decoder_attention_heads=att["heads"],
        conv_kernel_sizes=",".join(str(k) for k in enc["subsampler"]["kernel_sizes"]),
        conv_channels=enc["subsampler"]["channels"], conv_version="s2t_transformer",
        input_feat_per_channel=cfg["frontend"]["num_mel_bins"], input_channels=1,
        encoder_projector_ds_rate=dec["projector_stack"], no_cross_attention=True,
        share_decoder_input_output_embed=False, no_scale_embedding=False,
        activation_fn="relu", dropout=0.15, max_source_positions=6000,
        max_target_positions=1024, ctc_weight=ctc_weight, fp16=False,
        encoder_freezing_updates=0, load_pretrained_encoder_from=None,
    )
    if conformer:
        a["depthwise_conv_kernel_size"] = enc["conv_kernel"]
        if enc["positions"] == "rel_pos":
            a.update(attn_type="espnet", pos_enc_type="rel_pos")
        else:
            a.update(attn_type=None, pos_enc_type="abs")

    if att["type"] in ("mla", "mtla"):
        r = att["kv_lora_rank"]
        a.update(decoder_q_lora_rank=0, decoder_kv_lora_rank=r,
                 decoder_qk_nope_head_dim=att["qk_nope_head_dim"],
                 decoder_qk_rope_head_dim=att["qk_rope_head_dim"],
                 decoder_v_head_dim=att["v_head_dim"])
        if att["type"] == "mtla":
            if att["hyper_rank"] * 4 != r:
                raise FairseqExportError(f"hyper_rank {att['hyper_rank']} is not kv_lora_rank/4 "
                                         f"= {r / 4} (the fork hard-codes r/4)")
            spelling = "MLTA" if mlta_spelling else "MTLA"
            a.update(arch=prefix + spelling + "_cross_xm", decoder_type=spelling,
                     decoder_down_rate=att["down_rate"])
        else:
            # MLADecoderOnlyLayer sets args.decoder_down_rate = 1 while building the model
            a.update(arch=prefix + "MLA_cross_xm", decoder_type="MLA", decoder_down_rate=1)
    else:
        if att["heads"] * att["head_dim"] != dec["d_model"]:
            raise FairseqExportError("the fork's rotary attention has head_dim = d_model / heads")
        a["decoder_type"] = "roformer"
        if att["type"] == "mha":
            a["arch"] = prefix + "roformer_cross_xm"
        elif att["kv_heads"] in (1, 2) and not conformer:
            kind = "GQA" if att["kv_heads"] == 2 else "MQA"
            a.update(arch=f"s2t_decoder_only_{kind}roformer_cross_xm", decoder_att_type=kind)
        elif att["kv_heads"] in (1, 2):
            # no conformer GQA arch is registered; the roformer arch plus the option is the
            # only way to get one
            a.update(arch=prefix + "roformer_cross_xm",
                     decoder_att_type="GQA" if att["kv_heads"] == 2 else "MQA")
        else:
            raise FairseqExportError(f"kv_heads {att['kv_heads']}: the fork hard-codes 2 (GQA) "
                                     "or 1 (MQA)")
    g = cfg["generation"]
    a.update(beam=g["beam"], lenpen=g["lenpen"], max_len_a=g["max_len_a"],
             max_len_b=g["max_len_b"], min_len=g.get("min_len", 1))
    return argparse.Namespace(**a)


def fairseq_state_dict(md, dtype=torch.float32, ctc_weight=0.0, seed=0):
    """The model's tensors under the fork's names, with the extra buffers a real checkpoint
    holds; ctc_weight > 0 adds the encoder's CTC projection (unused at inference)."""
    cfg = md.config
    sd = {k: v.clone().to(dtype) for k, v in md.tensors.items() if not k.startswith("frontend.")}
    sd["decoder.version"] = torch.tensor([3.0])
    enc = cfg["encoder"]
    if enc["type"] == "transformer" or enc["positions"] == "abs":
        sd["encoder.embed_positions._float_tensor"] = torch.tensor([0.0])
    if enc["type"] == "conformer":
        for l in range(enc["layers"]):
            sd[f"encoder.conformer_layers.{l}.conv_module.batch_norm.num_batches_tracked"] = \
                torch.tensor(100000, dtype=torch.long)
    if ctc_weight > 0:
        g = torch.Generator().manual_seed(seed)
        E, V = enc["d_model"], cfg["vocab"]["size"]
        sd["encoder.ctc_proj.weight"] = torch.randn(V, E, generator=g).to(dtype)
        sd["encoder.ctc_proj.bias"] = torch.zeros(V, dtype=dtype)
    return sd


def export(model_dir, out_dir, style="args", dtype=torch.float32, ctc_weight=0.0,
           mlta_spelling=False):
    """Writes checkpoint.pt, dict.txt, spm.model (and gcmvn.npz) into out_dir.

    style: "args" (legacy: checkpoint["args"] is the Namespace), "cfg" (current fairseq:
    checkpoint["cfg"]["model"] is the Namespace) or "cfg-dict" (cfg["model"] a plain dict,
    as when the Namespace went through OmegaConf). Returns the paths written."""
    md = load_model_dir(model_dir)
    cfg = md.config
    v = cfg["vocab"]
    if md.vocab[:4] != SPECIALS or (v["bos"], v["pad"], v["eos"], v["unk"]) != (0, 1, 2, 3):
        raise FairseqExportError("a fairseq dictionary has <s> <pad> </s> <unk> as ids 0-3")
    args = recipe_args(cfg, ctc_weight, mlta_spelling)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "model": fairseq_state_dict(md, dtype, ctc_weight),
        "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropyCriterion",
                               "optimizer_name": "FairseqAdam", "num_updates": 100000}],
        "extra_state": {"epoch": 1},
    }
    if style == "args":
        ckpt.update(args=args, cfg=None)
    elif style in ("cfg", "cfg-dict"):
        model = vars(args).copy() if style == "cfg-dict" else args
        if style == "cfg-dict":
            model["_name"] = args.arch
        gen = {k: getattr(args, k) for k in ("beam", "lenpen", "max_len_a", "max_len_b",
                                              "min_len")}
        ckpt.update(args=None, cfg={
            "_name": None, "common": {"fp16": False, "seed": 1},
            "model": model, "task": {"_name": "speech_to_text", "data": ".",
                                     "config_yaml": "config_st.yaml"},
            "generation": gen, "checkpoint": {"save_dir": "exp"}})
    else:
        raise ValueError(f"unknown style {style!r}")
    paths = {"checkpoint": out / "checkpoint.pt", "dict": out / "dict.txt",
             "spm": out / "spm.model"}
    torch.save(ckpt, paths["checkpoint"])
    paths["dict"].write_text("".join(f"{p} 1\n" for p in md.vocab[4:]), encoding="utf-8")
    paths["spm"].write_bytes(md.tokenizer_path.read_bytes())
    if cfg["frontend"]["cmvn"] == "global":
        paths["gcmvn"] = out / "gcmvn.npz"
        np.savez(paths["gcmvn"], mean=md.tensors["frontend.cmvn.mean"].numpy(),
                 std=md.tensors["frontend.cmvn.std"].numpy())
    (out / "export.json").write_text(json.dumps({"from": str(model_dir), "style": style,
                                                 "arch": args.arch}) + "\n")
    return paths
