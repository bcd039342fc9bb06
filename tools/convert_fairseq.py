#!/usr/bin/env python3
"""Convert a checkpoint of the authors' fairseq recipe into an mtla-st model directory.

  python3 tools/convert_fairseq.py CHECKPOINT.pt --dict dict.txt --spm spm.model -o OUT_DIR
      [--global-cmvn gcmvn.npz | --cmvn utterance|none] [--dtype f32|f16|bf16] [--shards N]
      [--source-lang en] [--target-lang de] [--beam N] [--lenpen X] [--max-len-a X]
      [--max-len-b N] [--min-len N]

Inputs (what the recipe's training leaves behind):
  CHECKPOINT.pt  fairseq checkpoint: {"args": Namespace} (legacy) or {"cfg": {"model":
                 Namespace or dict, "generation": {...}}}, and "model", the state dict.
  dict.txt       the target dictionary (spm_unigram8000_st.txt in the recipe): "piece count"
                 lines; id = 4 + line index, after <s> <pad> </s> <unk>.
  spm.model      the SentencePiece model, copied as tokenizer.model.
  gcmvn.npz      optional fairseq GlobalCMVN statistics ("mean", "std"); the recipe uses
                 utterance CMVN, which the checkpoint does not record (it is in the data
                 config), hence --cmvn.

Architectures (arch, or the older MLTA spelling of MTLA): s2t_decoder_only_MTLA_cross_xm,
conformer_decoder_only_MTLA_cross_xm, s2t_decoder_only_MLA_cross_xm,
conformer_decoder_only_MLA_cross_xm, s2t_decoder_only_roformer_cross_xm (MHA),
conformer_decoder_only_roformer_cross_xm, s2t_decoder_only_GQAroformer_cross_xm (kv_heads 2),
s2t_decoder_only_MQAroformer_cross_xm (kv_heads 1).

Sizes are read from the tensors and checked against the checkpoint's args (decoder_* and
encoder_* names of the fork's s2t_transformer.py / s2t_conformer.py); what tensors cannot
tell comes from the args: the head counts, decoder_down_rate, decoder_type,
decoder_att_type, attn_type and pos_enc_type, and the generation defaults. Dropped:
decoder.version, encoder.embed_positions.*, BatchNorm num_batches_tracked, encoder.ctc_proj.*
(CTC is a training loss only). Exit status 0 on success, 1 on a conversion error (with a
message naming the problem), 2 on bad usage.
"""
import argparse
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
# arch -> (encoder type, decoder type, decoder_att_type implied by the arch)
ARCHS = {
    "s2t_decoder_only_MTLA_cross_xm": ("transformer", "MTLA", None),
    "s2t_decoder_only_MLTA_cross_xm": ("transformer", "MTLA", None),
    "conformer_decoder_only_MTLA_cross_xm": ("conformer", "MTLA", None),
    "conformer_decoder_only_MLTA_cross_xm": ("conformer", "MTLA", None),
    "s2t_decoder_only_MLA_cross_xm": ("transformer", "MLA", None),
    "conformer_decoder_only_MLA_cross_xm": ("conformer", "MLA", None),
    "s2t_decoder_only_roformer_cross_xm": ("transformer", "roformer", None),
    "conformer_decoder_only_roformer_cross_xm": ("conformer", "roformer", None),
    "s2t_decoder_only_GQAroformer_cross_xm": ("transformer", "roformer", "GQA"),
    "s2t_decoder_only_MQAroformer_cross_xm": ("transformer", "roformer", "MQA"),
}
# the fork's GQARotaryMultiheadAttention is built with these kv head counts
ATT_TYPE_KV_HEADS = {"GQA": 2, "MQA": 1}
# arch defaults for what only the args can tell (s2t_decoder_only_*_xm, conformer_*_xm)
DEFAULT_HEADS = 8
DEFAULT_DOWN_RATE = 2
# fairseq's generation defaults, used when the checkpoint has none
GENERATION_DEFAULTS = {"beam": 5, "lenpen": 1.0, "max_len_a": 0.0, "max_len_b": 200,
                       "min_len": 1}
FRONTEND = {
    "sample_rate": 16000, "num_mel_bins": 80, "frame_length_ms": 25.0, "frame_shift_ms": 10.0,
    "dither": 0.0, "preemphasis": 0.97, "remove_dc_offset": True, "window": "povey",
    "snip_edges": True, "low_freq": 20.0, "high_freq": 0.0, "input_scale": 32768.0,
    "cmvn": "utterance",
}
DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


class ConversionError(Exception):
    pass


# ----------------------------------------------------------------------------- inputs


def _as_dict(obj):
    """Namespace, dict or OmegaConf container -> plain dict (None -> {})."""
    if obj is None:
        return {}
    if isinstance(obj, argparse.Namespace):
        return dict(vars(obj))
    if isinstance(obj, dict):
        return dict(obj)
    try:  # an OmegaConf DictConfig, when the checkpoint was saved without to_container
        from omegaconf import OmegaConf
        if OmegaConf.is_config(obj):
            return _as_dict(OmegaConf.to_container(obj, resolve=True))
    except ImportError:
        pass
    if hasattr(obj, "items"):
        return dict(obj.items())
    raise ConversionError(f"cannot read checkpoint options of type {type(obj).__name__}")


def load_checkpoint(path):
    """-> (state dict, model options dict, generation options dict)."""
    import torch
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except ModuleNotFoundError as e:
        raise ConversionError(f"{path}: unpickling needs the Python module '{e.name}' "
                              "(install it, or re-save the checkpoint with plain containers)"
                              ) from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint ({e})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ConversionError(f"{path}: not a fairseq checkpoint (no 'model' state dict)")
    if ckpt.get("args") is not None:
        hp = _as_dict(ckpt["args"])
        gen = {k: hp[k] for k in GENERATION_DEFAULTS if k in hp}
    elif ckpt.get("cfg") is not None:
        cfg = _as_dict(ckpt["cfg"])
        hp = _as_dict(cfg.get("model"))
        gen = {k: v for k, v in _as_dict(cfg.get("generation")).items()
               if k in GENERATION_DEFAULTS}
        if "arch" not in hp and "_name" in hp:
            hp["arch"] = hp["_name"]
    else:
        raise ConversionError(f"{path}: the checkpoint has neither 'args' nor 'cfg', so its "
                              "architecture is unknown")
    sd = ckpt["model"]
    if not isinstance(sd, dict) or not sd:
        raise ConversionError(f"{path}: 'model' is not a non-empty state dict")
    return dict(sd), hp, gen


def read_dictionary(path):
    """fairseq Dictionary.load: '<piece> <count> [#fairseq:overwrite]' per line; ids 4.."""
    try:
        lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ConversionError(f"{path}: not UTF-8") from None
    pieces, seen = [], set(SPECIALS)
    for n, line in enumerate(lines, 1):
        parts = line.rstrip().rsplit(" ", 1)
        overwrite = False
        if len(parts) == 2 and parts[1] == "#fairseq:overwrite":
            overwrite = True
            parts = parts[0].rsplit(" ", 1)
        if len(parts) != 2 or not re.fullmatch(r"-?\d+", parts[1]):
            raise ConversionError(f"{path}:{n}: expected '<piece> <count>', got {line!r}")
        piece = parts[0]
        if piece in seen and not overwrite:
            raise ConversionError(f"{path}:{n}: duplicate piece {piece!r} (fairseq refuses it "
                                  "without #fairseq:overwrite)")
        if not piece:
            raise ConversionError(f"{path}:{n}: empty piece")
        seen.add(piece)
        pieces.append(piece)
    return SPECIALS + pieces


def read_tokenizer(path, vocab):
    try:
        data = pathlib.Path(path).read_bytes()
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    try:
        import sentencepiece as spm
    except ImportError:
        return data, []  # checked when the engine loads it
    try:
        sp = spm.SentencePieceProcessor(model_proto=data)
    except Exception as e:  # noqa: BLE001
        raise ConversionError(f"{path}: not a SentencePiece model ({e})") from None
    unknown = [p for p in vocab[4:] if sp.piece_to_id(p) == sp.unk_id() and p != "<unk>"]
    return data, unknown


def read_global_cmvn(path, n_mel):
    import numpy as np
    try:
        stats = np.load(path)
        names = stats.files
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - numpy raises several types for a bad file
        raise ConversionError(f"{path}: not a .npz file ({e})") from None
    for name in ("mean", "std"):
        if name not in names:
            raise ConversionError(f"{path}: no array '{name}' (fairseq GlobalCMVN statistics "
                                  "hold 'mean' and 'std')")
    mean, std = stats["mean"], stats["std"]
    for name, a in (("mean", mean), ("std", std)):
        if a.shape != (n_mel,):
            raise ConversionError(f"{path}: '{name}' has shape {a.shape}, the model takes "
                                  f"{n_mel} mel bins")
        if not np.all(np.isfinite(a)):
            raise ConversionError(f"{path}: '{name}' has non-finite values")
    if np.any(std <= 0):
        raise ConversionError(f"{path}: 'std' must be positive")
    return mean.astype(np.float32), std.astype(np.float32)


# ----------------------------------------------------------------------------- architecture


class Options:
    """The checkpoint's model options, checked against what the tensors say."""

    def __init__(self, hp):
        self.hp = hp

    def get(self, name, default=None):
        v = self.hp.get(name)
        return default if v is None else v

    def check(self, name, derived, what):
        """Tensor-derived value; an option that disagrees with it is an error."""
        v = self.hp.get(name)
        if v is not None and v != derived:
            raise ConversionError(f"option {name} = {v!r} but the tensors give {what} = "
                                  f"{derived!r}")
        return derived


def _shape(sd, name):
    if name not in sd:
        raise ConversionError(f"tensor {name} is missing from the checkpoint")
    return tuple(sd[name].shape)


def _count(sd, prefix):
    n = 0
    while any(k.startswith(f"{prefix}{n}.") for k in sd):
        n += 1
    return n


def _divide(a, b, what):
    if b <= 0 or a % b:
        raise ConversionError(f"{what}: {a} is not a multiple of {b}")
    return a // b


def build_config(sd, hp, gen, args):
    """Model directory config from the state dict's shapes and the checkpoint's options."""
    o = Options(hp)
    arch = hp.get("arch")
    if arch is None:
        raise ConversionError("the checkpoint's options name no 'arch'")
    if arch not in ARCHS:
        raise ConversionError(f"unsupported arch {arch!r}; supported: {', '.join(ARCHS)}")
    enc_type, dec_type, arch_att = ARCHS[arch]
    dec_type = o.get("decoder_type", dec_type)
    dec_type = "MTLA" if dec_type == "MLTA" else dec_type   # the published log's spelling
    if dec_type not in ("MTLA", "MLA", "roformer"):
        raise ConversionError(f"decoder_type {dec_type!r} is not a decoder-only model this "
                              "engine runs (MTLA, MLA or roformer)")
    if o.get("conv_version", "s2t_transformer") != "s2t_transformer":
        raise ConversionError(f"conv_version {o.get('conv_version')!r}: only the Conv1d "
                              "subsampler (s2t_transformer) is supported")
    if o.get("no_scale_embedding", False):
        raise ConversionError("no_scale_embedding is set; the engine scales embeddings by "
                              "sqrt(d) as the recipe does")
    if not o.get("decoder_normalize_before", True):
        raise ConversionError("decoder_normalize_before is false; only pre-LN decoders are "
                              "supported")
    if o.get("decoder_q_lora_rank", 0) or any(".self_attn.wq_a." in k for k in sd):
        raise ConversionError("decoder_q_lora_rank > 0 (low-rank queries) is not supported")

    # encoder: subsampler
    n_conv = _count(sd, "encoder.subsample.conv_layers.")
    if n_conv == 0:
        raise ConversionError("tensor encoder.subsample.conv_layers.0.weight is missing "
                              "(not a Conv1d-subsampler speech encoder)")
    convs = [_shape(sd, f"encoder.subsample.conv_layers.{i}.weight") for i in range(n_conv)]
    kernels = [c[2] for c in convs]
    listed = o.get("conv_kernel_sizes")
    if listed is not None and [int(x) for x in str(listed).split(",")] != kernels:
        raise ConversionError(f"option conv_kernel_sizes = {listed!r} but the subsampler's "
                              f"kernels are {kernels}")
    n_mel = convs[0][1]
    o.check("input_feat_per_channel", n_mel // max(1, o.get("input_channels", 1)),
            "input features")
    if o.get("input_channels", 1) != 1:
        raise ConversionError("input_channels must be 1 (one fbank stream)")
    E = _divide(convs[-1][0], 2, "last subsampler conv output channels")
    o.check("encoder_embed_dim", E, "encoder d_model")
    channels = convs[0][0] if n_conv > 1 else o.get("conv_channels", 1024)
    if n_conv > 1:
        o.check("conv_channels", channels, "subsampler channels")

    enc = {"type": enc_type}
    if enc_type == "transformer":
        prefix = "encoder.transformer_layers."
        if not o.get("encoder_normalize_before", True) or "encoder.layer_norm.weight" not in sd:
            raise ConversionError("the transformer encoder is not pre-LN (no encoder.layer_norm);"
                                  " only encoder_normalize_before models are supported")
        if o.get("activation_fn", "relu") != "relu":
            raise ConversionError(f"activation_fn {o.get('activation_fn')!r}: the transformer "
                                  "encoder supports relu only")
        L = _count(sd, prefix)
        F = _shape(sd, f"{prefix}0.fc1.weight")[0] if L else 0
        H = o.get("encoder_attention_heads", DEFAULT_HEADS)
        enc.update(positions="sinusoidal", conv_kernel=o.get("depthwise_conv_kernel_size", 31))
    else:
        prefix = "encoder.conformer_layers."
        L = _count(sd, prefix)
        F = _shape(sd, f"{prefix}0.ffn1.w_1.weight")[0] if L else 0
        attn_type, pos = o.get("attn_type"), o.get("pos_enc_type", "abs")
        has_relpos = f"{prefix}0.self_attn.linear_pos.weight" in sd
        if pos == "rel_pos" and attn_type == "espnet" and has_relpos:
            positions = "rel_pos"
            H = o.check("encoder_attention_heads", _shape(sd, f"{prefix}0.self_attn.pos_bias_u")[0],
                        "encoder heads")
        elif pos in ("abs", None) and attn_type in (None, "espnet") and not has_relpos:
            positions = "abs"
            H = o.get("encoder_attention_heads", DEFAULT_HEADS)
        else:
            raise ConversionError(f"conformer attention attn_type={attn_type!r} with "
                                  f"pos_enc_type={pos!r} is not supported (use fairseq or "
                                  "espnet attention with abs, or espnet with rel_pos)")
        K = _shape(sd, f"{prefix}0.conv_module.depthwise_conv.weight")[2] if L else 31
        o.check("depthwise_conv_kernel_size", K, "depthwise conv kernel")
        enc.update(positions=positions, conv_kernel=K)
    if L == 0:
        raise ConversionError(f"no encoder layers ({prefix}0.*) in the checkpoint")
    o.check("encoder_layers", L, "encoder layers")
    o.check("encoder_ffn_embed_dim", F, "encoder FFN size")
    if E % H:
        raise ConversionError(f"encoder d_model {E} is not a multiple of {H} heads")
    enc.update(layers=L, d_model=E, heads=H, ffn_dim=F,
               subsampler={"type": "conv1d_glu", "channels": channels, "kernel_sizes": kernels})
    enc = {k: enc[k] for k in ("type", "layers", "d_model", "heads", "ffn_dim", "subsampler",
                               "positions", "conv_kernel")}

    # decoder
    V, D = _shape(sd, "decoder.embed_tokens.weight")
    o.check("decoder_embed_dim", D, "decoder d_model")
    Ld = o.check("decoder_layers", _count(sd, "decoder.layers."), "decoder layers")
    if Ld == 0:
        raise ConversionError("no decoder layers (decoder.layers.0.*) in the checkpoint")
    G = o.check("decoder_ffn_embed_dim", _shape(sd, "decoder.layers.0.fc1.weight")[0],
                "decoder FFN size")
    k = _divide(_shape(sd, "decoder.projector.linear1.weight")[1], E,
                "decoder.projector.linear1 input size over encoder d_model")
    o.check("encoder_projector_ds_rate", k, "projector stack")
    Hd = o.get("decoder_attention_heads", DEFAULT_HEADS)
    a = "decoder.layers.0.self_attn."
    if dec_type in ("MTLA", "MLA"):
        r = o.check("decoder_kv_lora_rank", _shape(sd, a + "kv_norm.weight")[0], "kv_lora_rank")
        dr = o.check("decoder_qk_rope_head_dim", _shape(sd, a + "wkv_a.weight")[0] - r,
                     "qk_rope_head_dim")
        dn = o.check("decoder_qk_nope_head_dim",
                     _divide(_shape(sd, a + "wq.weight")[0], Hd, "wq rows over heads") - dr,
                     "qk_nope_head_dim")
        dv = o.check("decoder_v_head_dim",
                     _divide(_shape(sd, a + "wkv_b.weight")[0], Hd, "wkv_b rows over heads") - dn,
                     "v_head_dim")
        if min(r, dr, dn, dv) <= 0:
            raise ConversionError(f"inconsistent latent attention sizes r={r} d_r={dr} d_n={dn} "
                                  f"d_v={dv} with {Hd} heads")
        att = {"type": dec_type.lower(), "heads": Hd, "kv_lora_rank": r, "qk_nope_head_dim": dn,
               "qk_rope_head_dim": dr, "v_head_dim": dv}
        if dec_type == "MTLA":
            s = o.get("decoder_down_rate", DEFAULT_DOWN_RATE)
            if not isinstance(s, int) or s < 1:
                raise ConversionError(f"decoder_down_rate {s!r} must be a positive integer")
            att.update(down_rate=s, hyper_rank=_shape(sd, a + "hypernet_down.fc_c.weight")[0])
        att["rope_theta"] = 10000.0
    else:
        q_rows = _shape(sd, a + "q_proj.weight")[0]
        dh = _divide(q_rows, Hd, "q_proj rows over heads")
        kv = _divide(_shape(sd, a + "k_proj.weight")[0], dh, "k_proj rows over head_dim")
        att_type = o.get("decoder_att_type", arch_att)
        if att_type in ATT_TYPE_KV_HEADS and kv != ATT_TYPE_KV_HEADS[att_type]:
            raise ConversionError(f"decoder_att_type {att_type} means {ATT_TYPE_KV_HEADS[att_type]}"
                                  f" kv heads, but k_proj holds {kv}")
        if att_type not in ATT_TYPE_KV_HEADS and kv != Hd:
            raise ConversionError(f"k_proj holds {kv} kv heads but the model is MHA with {Hd}")
        att = {"type": "mha" if kv == Hd else "gqa", "heads": Hd, "kv_heads": kv,
               "head_dim": dh, "rope_theta": 10000.0}
    dec = {"layers": Ld, "d_model": D, "ffn_dim": G, "projector_stack": k, "attention": att}

    g = dict(GENERATION_DEFAULTS)
    g.update({key: gen[key] for key in g if gen.get(key) is not None})
    for key in g:
        override = getattr(args, key)
        if override is not None:
            g[key] = override
    g = {"beam": int(g["beam"]), "lenpen": float(g["lenpen"]),
         "max_len_a": float(g["max_len_a"]), "max_len_b": int(g["max_len_b"]),
         "min_len": int(g["min_len"])}

    frontend = dict(FRONTEND, num_mel_bins=n_mel,
                    cmvn="global" if args.global_cmvn else args.cmvn)
    return {
        "format": "mtla-st", "format_version": 1,
        "frontend": frontend, "encoder": enc, "decoder": dec,
        "vocab": {"size": V, "bos": 0, "pad": 1, "eos": 2, "unk": 3},
        "generation": g,
        "languages": {"source": args.source_lang, "target": args.target_lang},
        "notes": f"converted by tools/convert_fairseq.py from a fairseq checkpoint, arch {arch}",
    }


def map_tensors(sd, config, hp, notes, cmvn=None):
    """fairseq state dict -> model directory tensors (float32), after the drops and renames."""
    import torch
    out = {}
    for name, t in sd.items():
        if not torch.is_tensor(t):
            raise ConversionError(f"state dict entry {name} is not a tensor")
        if (name in ("decoder.version", "encoder.version") or
                name.startswith("encoder.embed_positions.") or
                name.endswith(".num_batches_tracked")):
            continue
        if name.startswith("encoder.ctc_proj."):
            if "ctc" not in notes:
                notes["ctc"] = "dropped encoder.ctc_proj (a training-only CTC head)"
            continue
        out[name] = t
    enc = config["encoder"]
    if enc["type"] == "conformer" and enc["positions"] == "abs":
        # ESPnet absolute-position attention computes what fairseq's does (q k^T / sqrt(d_k)
        # with biased projections); the model directory knows it by fairseq's names
        for old in list(out):
            m = re.fullmatch(r"(encoder\.conformer_layers\.\d+\.self_attn\.)linear_"
                             r"(q|k|v|out)\.(weight|bias)", old)
            if m:
                out[f"{m[1]}{m[2]}_proj.{m[3]}"] = out.pop(old)
    if "decoder.output_projection.weight" not in out and \
            hp.get("share_decoder_input_output_embed"):
        out["decoder.output_projection.weight"] = out["decoder.embed_tokens.weight"]
        notes["tied"] = "output projection tied to the embeddings (copied)"
    if cmvn is not None:
        mean, std = cmvn
        out["frontend.cmvn.mean"] = torch.from_numpy(mean)
        out["frontend.cmvn.std"] = torch.from_numpy(std)

    from reference.model_dir import expected_tensors
    expected = expected_tensors(config)
    missing = sorted(set(expected) - set(out))
    extra = sorted(set(out) - set(expected))
    if missing:
        raise ConversionError(f"{len(missing)} tensor(s) the architecture needs are missing "
                              f"from the checkpoint: {', '.join(missing[:8])}"
                              f"{' ...' if len(missing) > 8 else ''}")
    if extra:
        raise ConversionError(f"{len(extra)} tensor(s) in the checkpoint do not belong to the "
                              f"architecture: {', '.join(extra[:8])}"
                              f"{' ...' if len(extra) > 8 else ''}")
    for name, shape in expected.items():
        if tuple(out[name].shape) != tuple(shape):
            raise ConversionError(f"tensor {name} has shape {list(out[name].shape)}, the "
                                  f"architecture needs {list(shape)}")
        if not out[name].is_floating_point():
            raise ConversionError(f"tensor {name} has dtype {out[name].dtype}, not floating point")
        out[name] = out[name].detach().to(torch.float32).contiguous()
    return out


# ----------------------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="convert_fairseq.py",
        description="Convert a fairseq checkpoint of the MTLA speech translation recipe into "
                    "an mtla-st model directory.")
    ap.add_argument("checkpoint", help="fairseq checkpoint (.pt)")
    ap.add_argument("--dict", required=True, help="fairseq target dictionary (dict.txt)")
    ap.add_argument("--spm", required=True, help="SentencePiece model of the target language")
    ap.add_argument("-o", "--output", required=True, help="model directory to write")
    cm = ap.add_mutually_exclusive_group()
    cm.add_argument("--global-cmvn", metavar="NPZ",
                    help="fairseq GlobalCMVN statistics (.npz with mean, std): cmvn 'global'")
    cm.add_argument("--cmvn", choices=("utterance", "none"), default="utterance",
                    help="feature normalisation when there are no global statistics "
                         "(default utterance, as in the recipe)")
    ap.add_argument("--dtype", choices=tuple(DTYPES), default="f32",
                    help="storage type of the tensors (default f32)")
    ap.add_argument("--shards", type=int, default=1, help="number of safetensors files")
    ap.add_argument("--source-lang", default="en")
    ap.add_argument("--target-lang", default="de")
    ap.add_argument("--beam", type=int, help="generation.beam (default: the checkpoint's, "
                    "else 5; the recipe decodes with 50)")
    ap.add_argument("--lenpen", type=float)
    ap.add_argument("--max-len-a", type=float)
    ap.add_argument("--max-len-b", type=int)
    ap.add_argument("--min-len", type=int)
    args = ap.parse_args(argv)
    if args.shards < 1:
        ap.error("--shards must be >= 1")
    return args


def convert(args):
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ConversionError("PyTorch is needed to read fairseq checkpoints "
                              "(pip install -r tools/requirements.txt)") from None
    from reference.model_dir import load_model_dir, write_model_dir

    sd, hp, gen = load_checkpoint(args.checkpoint)
    config = build_config(sd, hp, gen, args)
    notes = {}
    cmvn = (read_global_cmvn(args.global_cmvn, config["frontend"]["num_mel_bins"])
            if args.global_cmvn else None)
    tensors = map_tensors(sd, config, hp, notes, cmvn)
    vocab = read_dictionary(args.dict)
    if len(vocab) != config["vocab"]["size"]:
        raise ConversionError(f"{args.dict}: {len(vocab) - 4} pieces + 4 specials = {len(vocab)} "
                              f"ids, but decoder.embed_tokens has {config['vocab']['size']} rows")
    tok, unknown = read_tokenizer(args.spm, vocab)
    if unknown:
        notes["spm"] = (f"{len(unknown)} dictionary piece(s) are not in the SentencePiece "
                        f"model, e.g. {unknown[:3]}")
    write_model_dir(args.output, config, tensors, vocab, tok, dtype=DTYPES[args.dtype],
                    shards=args.shards)
    md = load_model_dir(args.output)  # the result must pass the reader's validation
    n_params = sum(t.numel() for n, t in md.tensors.items() if not n.startswith("frontend."))
    return config, n_params, notes


def main(argv=None):
    args = parse_args(argv)
    try:
        sys.path.insert(0, str(HERE))
        from reference.model_dir import ModelFormatError
    except ImportError as e:
        print(f"convert_fairseq.py: error: {e}", file=sys.stderr)
        return 1
    try:
        config, n_params, notes = convert(args)
    except (ConversionError, ModelFormatError) as e:
        print(f"convert_fairseq.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"convert_fairseq.py: error: {e}", file=sys.stderr)
        return 1
    att = config["decoder"]["attention"]
    print(f"wrote {args.output}: {config['encoder']['type']} encoder, {att['type']} decoder "
          f"({config['decoder']['layers']} layers), {n_params / 1e6:.2f}M parameters, "
          f"vocab {config['vocab']['size']}, cmvn {config['frontend']['cmvn']}, "
          f"{DTYPES[args.dtype]}")
    for key, note in notes.items():
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
