"""Reading and writing mtla-st model directories (docs/model-format.md, format_version 1).

A model directory holds config.json, the tensors (model.safetensors, or shards
model-0000K-of-0000N.safetensors with model.safetensors.index.json), vocab.txt and
tokenizer.model. The reader validates the config field by field, checks that exactly the
tensors the config requires are present with the documented shapes, and dequantises F16 and
BF16 tensors to float32, which is what every computation in this package uses.

Two places where docs/model-format.md is ambiguous, and how this module resolves them:
- The example config gives an "mtla" attention the keys kv_heads and head_dim, while the field
  table lists them only for mha/gqa and says keys that do not apply must be absent. The reader
  accepts them for mla/mtla (kv_heads must then equal heads; head_dim is ignored); the writer
  leaves them out.
- encoder.conv_kernel is "ignored by the transformer" but appears in the transformer example.
  The reader accepts it present or absent for a transformer; the writer writes it.
"""
import json
import math
import pathlib
import re

import torch

FORMAT = "mtla-st"
FORMAT_VERSION = 1
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


class ModelFormatError(ValueError):
    """A model directory that breaks docs/model-format.md; the message names the field or tensor."""


# ----------------------------------------------------------------------------- config checks


def _fail(path, msg):
    raise ModelFormatError(f"{path}: {msg}")


def _obj(cfg, path, required, optional=()):
    if not isinstance(cfg, dict):
        _fail(path, "must be a JSON object")
    for k in cfg:
        if k not in required and k not in optional:
            _fail(f"{path}.{k}" if path else k, "unknown key")
    for k in required:
        if k not in cfg:
            _fail(f"{path}.{k}" if path else k, "missing")


def _int(v, path, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, int):
        _fail(path, f"must be an integer, got {v!r}")
    if lo is not None and v < lo:
        _fail(path, f"must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        _fail(path, f"must be <= {hi}, got {v}")
    return v


def _num(v, path, lo=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        _fail(path, f"must be a finite number, got {v!r}")
    if lo is not None and v < lo:
        _fail(path, f"must be >= {lo}, got {v}")
    return float(v)


def _enum(v, path, allowed):
    if v not in allowed:
        _fail(path, f"must be one of {', '.join(map(repr, allowed))}, got {v!r}")
    return v


WHISPER_FRONTEND_KEYS = ("type", "sample_rate", "num_mel_bins", "n_fft", "hop_length", "cmvn")
FRONTEND_KEYS = ("sample_rate", "num_mel_bins", "frame_length_ms", "frame_shift_ms", "dither",
                 "preemphasis", "remove_dc_offset", "window", "snip_edges", "low_freq",
                 "high_freq", "input_scale", "cmvn")
ATTENTION_KEYS = {
    "mha": ("type", "heads", "kv_heads", "head_dim", "rope_theta"),
    "gqa": ("type", "heads", "kv_heads", "head_dim", "rope_theta"),
    "mla": ("type", "heads", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
            "v_head_dim", "rope_theta"),
    "mtla": ("type", "heads", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
             "v_head_dim", "down_rate", "hyper_rank", "rope_theta"),
}


def validate_config(cfg):
    """Raises ModelFormatError naming the first field that breaks docs/model-format.md."""
    _obj(cfg, "", ("format", "format_version", "frontend", "encoder", "decoder", "vocab",
                   "generation", "languages"), ("notes",))
    if cfg["format"] != FORMAT:
        _fail("format", f"must be {FORMAT!r}, got {cfg['format']!r}")
    if cfg["format_version"] != FORMAT_VERSION or isinstance(cfg["format_version"], bool):
        _fail("format_version", f"unsupported version {cfg['format_version']!r}")

    fe = cfg["frontend"]
    ftype = fe.get("type", "kaldi_fbank") if isinstance(fe, dict) else None
    _enum(ftype, "frontend.type", ("kaldi_fbank", "whisper"))
    if ftype == "whisper":
        _obj(fe, "frontend", WHISPER_FRONTEND_KEYS)
        if _int(fe["sample_rate"], "frontend.sample_rate") != 16000:
            _fail("frontend.sample_rate", "must be 16000")
        if _int(fe["num_mel_bins"], "frontend.num_mel_bins") not in (80, 128):
            _fail("frontend.num_mel_bins", "must be 80 or 128 for type \"whisper\"")
        if _int(fe["n_fft"], "frontend.n_fft") != 400:
            _fail("frontend.n_fft", "must be 400 for type \"whisper\"")
        if _int(fe["hop_length"], "frontend.hop_length") != 160:
            _fail("frontend.hop_length", "must be 160 for type \"whisper\"")
        _enum(fe["cmvn"], "frontend.cmvn", ("none",))
        _validate_whisper_encoder(cfg["encoder"])
        _validate_rest(cfg)
        return
    _obj(fe, "frontend", FRONTEND_KEYS, ("type",))
    if _int(fe["sample_rate"], "frontend.sample_rate") != 16000:
        _fail("frontend.sample_rate", "must be 16000")
    _int(fe["num_mel_bins"], "frontend.num_mel_bins", 1, 256)
    _num(fe["frame_length_ms"], "frontend.frame_length_ms", 0)
    _num(fe["frame_shift_ms"], "frontend.frame_shift_ms", 0)
    if _num(fe["dither"], "frontend.dither") != 0.0:
        _fail("frontend.dither", "must be 0")
    _num(fe["preemphasis"], "frontend.preemphasis", 0)
    if not isinstance(fe["remove_dc_offset"], bool):
        _fail("frontend.remove_dc_offset", "must be true or false")
    _enum(fe["window"], "frontend.window", ("povey",))
    if fe["snip_edges"] is not True:
        _fail("frontend.snip_edges", "must be true")
    _num(fe["low_freq"], "frontend.low_freq", 0)
    _num(fe["high_freq"], "frontend.high_freq")
    _num(fe["input_scale"], "frontend.input_scale", 0)
    _enum(fe["cmvn"], "frontend.cmvn", ("utterance", "global", "none"))

    enc = cfg["encoder"]
    etype = enc.get("type") if isinstance(enc, dict) else None
    _enum(etype, "encoder.type", ("transformer", "conformer"))
    base = ("type", "layers", "d_model", "heads", "ffn_dim", "subsampler", "positions")
    if etype == "conformer":
        _obj(enc, "encoder", base + ("conv_kernel",))
        _enum(enc["positions"], "encoder.positions", ("abs", "rel_pos"))
        k = _int(enc["conv_kernel"], "encoder.conv_kernel", 1)
        if k % 2 == 0:
            _fail("encoder.conv_kernel", f"must be odd, got {k}")
    else:
        _obj(enc, "encoder", base, ("conv_kernel",))
        _enum(enc["positions"], "encoder.positions", ("sinusoidal",))
    for k in ("layers", "d_model", "heads", "ffn_dim"):
        _int(enc[k], f"encoder.{k}", 1)
    if enc["d_model"] % enc["heads"]:
        _fail("encoder.d_model", "must be divisible by encoder.heads")
    sub = enc["subsampler"]
    _obj(sub, "encoder.subsampler", ("type", "channels", "kernel_sizes"))
    _enum(sub["type"], "encoder.subsampler.type", ("conv1d_glu",))
    if _int(sub["channels"], "encoder.subsampler.channels", 2) % 2:
        _fail("encoder.subsampler.channels", "must be even")
    ks = sub["kernel_sizes"]
    if not isinstance(ks, list) or not 1 <= len(ks) <= 4:
        _fail("encoder.subsampler.kernel_sizes", "must be a list of 1 to 4 integers")
    for i, k in enumerate(ks):
        if _int(k, f"encoder.subsampler.kernel_sizes[{i}]", 1) % 2 == 0:
            _fail(f"encoder.subsampler.kernel_sizes[{i}]", "must be odd")
    _validate_rest(cfg)


def _validate_whisper_encoder(enc):
    """encoder.type "whisper" (it needs frontend.type "whisper")."""
    if not isinstance(enc, dict) or enc.get("type") != "whisper":
        _fail("encoder.type", "must be \"whisper\" with frontend.type \"whisper\"")
    _obj(enc, "encoder", ("type", "layers", "d_model", "heads", "ffn_dim", "max_positions"))
    for k in ("layers", "d_model", "heads", "ffn_dim", "max_positions"):
        _int(enc[k], f"encoder.{k}", 1)
    if enc["d_model"] % enc["heads"]:
        _fail("encoder.d_model", "must be divisible by encoder.heads")


def _validate_rest(cfg):
    """decoder, vocab, generation, languages."""

    dec = cfg["decoder"]
    _obj(dec, "decoder", ("layers", "d_model", "ffn_dim", "projector_stack", "attention"))
    for k in ("layers", "d_model", "ffn_dim", "projector_stack"):
        _int(dec[k], f"decoder.{k}", 1)
    if dec["d_model"] % 2:
        _fail("decoder.d_model", "must be even")
    att = dec["attention"]
    atype = att.get("type") if isinstance(att, dict) else None
    _enum(atype, "decoder.attention.type", tuple(ATTENTION_KEYS))
    tolerated = ("kv_heads", "head_dim") if atype in ("mla", "mtla") else ()
    _obj(att, "decoder.attention", ATTENTION_KEYS[atype], tolerated)
    p = "decoder.attention."
    heads = _int(att["heads"], p + "heads", 1)
    if _num(att["rope_theta"], p + "rope_theta") <= 0:
        _fail(p + "rope_theta", "must be positive")
    if atype in ("mha", "gqa"):
        kvh = _int(att["kv_heads"], p + "kv_heads", 1)
        if atype == "mha" and kvh != heads:
            _fail(p + "kv_heads", "must equal heads for mha")
        if atype == "gqa" and (heads % kvh or kvh >= heads):
            _fail(p + "kv_heads", "must divide heads and be smaller than heads for gqa")
        if _int(att["head_dim"], p + "head_dim", 2) % 2:
            _fail(p + "head_dim", "must be even (RoPE rotates pairs)")
    else:
        for k in ("kv_lora_rank", "qk_nope_head_dim", "v_head_dim"):
            _int(att[k], p + k, 1)
        if _int(att["qk_rope_head_dim"], p + "qk_rope_head_dim", 2) % 2:
            _fail(p + "qk_rope_head_dim", "must be even (RoPE rotates pairs)")
        if "kv_heads" in att and att["kv_heads"] != heads:
            _fail(p + "kv_heads", "must equal heads for mla/mtla")
        if atype == "mtla":
            _int(att["down_rate"], p + "down_rate", 1)
            _int(att["hyper_rank"], p + "hyper_rank", 1)

    voc = cfg["vocab"]
    _obj(voc, "vocab", ("size", "bos", "pad", "eos", "unk"))
    size = _int(voc["size"], "vocab.size", 5)
    ids = [_int(voc[k], f"vocab.{k}", 0, size - 1) for k in ("bos", "pad", "eos", "unk")]
    if len(set(ids)) != 4:
        _fail("vocab", "bos, pad, eos and unk must be distinct")

    gen = cfg["generation"]
    _obj(gen, "generation", ("beam", "lenpen", "max_len_a", "max_len_b"), ("min_len",))
    _int(gen["beam"], "generation.beam", 1)
    _num(gen["lenpen"], "generation.lenpen")
    _num(gen["max_len_a"], "generation.max_len_a", 0)
    _int(gen["max_len_b"], "generation.max_len_b", 1)
    if "min_len" in gen:
        _int(gen["min_len"], "generation.min_len", 1)

    lang = cfg["languages"]
    _obj(lang, "languages", ("source", "target"))
    for k in ("source", "target"):
        if not isinstance(lang[k], str) or not lang[k]:
            _fail(f"languages.{k}", "must be a non-empty string")
    return cfg


# ----------------------------------------------------------------------------- tensor table


def expected_tensors(cfg):
    """name -> shape of every tensor the config requires (docs/model-format.md, Tensors)."""
    t = {}
    fe, enc, dec = cfg["frontend"], cfg["encoder"], cfg["decoder"]
    att = dec["attention"]
    n_mel = fe["num_mel_bins"]
    E, F, H_e = enc["d_model"], enc["ffn_dim"], enc["heads"]
    D, G, V, k = dec["d_model"], dec["ffn_dim"], cfg["vocab"]["size"], dec["projector_stack"]
    if fe["cmvn"] == "global":
        t["frontend.cmvn.mean"] = (n_mel,)
        t["frontend.cmvn.std"] = (n_mel,)

    C = enc["subsampler"]["channels"] if enc["type"] != "whisper" else 0
    ks = enc["subsampler"]["kernel_sizes"] if enc["type"] != "whisper" else []
    for i, K in enumerate(ks):
        c_in = n_mel if i == 0 else C // 2
        c_out = 2 * E if i == len(ks) - 1 else C
        t[f"encoder.subsample.conv_layers.{i}.weight"] = (c_out, c_in, K)
        t[f"encoder.subsample.conv_layers.{i}.bias"] = (c_out,)

    def lin(name, n_out, n_in, bias=True):
        t[name + ".weight"] = (n_out, n_in)
        if bias:
            t[name + ".bias"] = (n_out,)

    def norm(name, n):
        t[name + ".weight"] = (n,)
        t[name + ".bias"] = (n,)

    if enc["type"] == "whisper":
        t["encoder.conv1.weight"] = (E, n_mel, 3)
        t["encoder.conv1.bias"] = (E,)
        t["encoder.conv2.weight"] = (E, E, 3)
        t["encoder.conv2.bias"] = (E,)
        t["encoder.embed_positions.weight"] = (enc["max_positions"], E)
        for l in range(enc["layers"]):
            p = f"encoder.layers.{l}."
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                lin(p + "self_attn." + proj, E, E, bias=proj != "k_proj")
            norm(p + "self_attn_layer_norm", E)
            lin(p + "fc1", F, E)
            lin(p + "fc2", E, F)
            norm(p + "final_layer_norm", E)
        norm("encoder.layer_norm", E)
    elif enc["type"] == "transformer":
        for l in range(enc["layers"]):
            p = f"encoder.transformer_layers.{l}."
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                lin(p + "self_attn." + proj, E, E)
            norm(p + "self_attn_layer_norm", E)
            lin(p + "fc1", F, E)
            lin(p + "fc2", E, F)
            norm(p + "final_layer_norm", E)
        norm("encoder.layer_norm", E)
    else:
        lin("encoder.linear", E, E)
        for l in range(enc["layers"]):
            p = f"encoder.conformer_layers.{l}."
            for ffn in ("ffn1", "ffn2"):
                norm(p + ffn + ".layer_norm", E)
                lin(p + ffn + ".w_1", F, E)
                lin(p + ffn + ".w_2", E, F)
            norm(p + "self_attn_layer_norm", E)
            if enc["positions"] == "abs":
                for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    lin(p + "self_attn." + proj, E, E)
            else:
                for proj in ("linear_q", "linear_k", "linear_v", "linear_out"):
                    lin(p + "self_attn." + proj, E, E)
                lin(p + "self_attn.linear_pos", E, E, bias=False)
                t[p + "self_attn.pos_bias_u"] = (H_e, E // H_e)
                t[p + "self_attn.pos_bias_v"] = (H_e, E // H_e)
            norm(p + "conv_module.layer_norm", E)
            t[p + "conv_module.pointwise_conv1.weight"] = (2 * E, E, 1)
            t[p + "conv_module.depthwise_conv.weight"] = (E, 1, enc["conv_kernel"])
            for b in ("weight", "bias", "running_mean", "running_var"):
                t[p + "conv_module.batch_norm." + b] = (E,)
            t[p + "conv_module.pointwise_conv2.weight"] = (E, E, 1)
            norm(p + "final_layer_norm", E)

    lin("decoder.projector.linear1", D // 2, k * E)
    lin("decoder.projector.linear2", D, D // 2)
    t["decoder.embed_tokens.weight"] = (V, D)
    H = att["heads"]
    for l in range(dec["layers"]):
        p = f"decoder.layers.{l}."
        a = p + "self_attn."
        if att["type"] in ("mla", "mtla"):
            r, dn, dr, dv = (att["kv_lora_rank"], att["qk_nope_head_dim"],
                             att["qk_rope_head_dim"], att["v_head_dim"])
            lin(a + "wq", H * (dn + dr), D, bias=False)
            lin(a + "wkv_a", r + dr, D, bias=False)
            norm(a + "kv_norm", r)
            lin(a + "wkv_b", H * (dn + dv), r, bias=False)
            lin(a + "wo", D, H * dv, bias=False)
            if att["type"] == "mtla":
                lin(a + "hypernet_down.fc_c", att["hyper_rank"], r)
                lin(a + "hypernet_down.fc_p", att["hyper_rank"], r)
        else:
            dh, hkv = att["head_dim"], att["kv_heads"]
            lin(a + "q_proj", H * dh, D)
            lin(a + "k_proj", hkv * dh, D)
            lin(a + "v_proj", hkv * dh, D)
            lin(a + "out_proj", D, H * dh)
        norm(p + "self_attn_layer_norm", D)
        lin(p + "fc1", G, D)
        lin(p + "fc2", D, G)
        norm(p + "final_layer_norm", D)
    norm("decoder.layer_norm", D)
    t["decoder.output_projection.weight"] = (V, D)
    return t


# ----------------------------------------------------------------------------- reading


class ModelDir:
    """A loaded model directory: validated config, float32 tensors, vocabulary, tokenizer path."""

    def __init__(self, path, config, tensors, vocab, stored_dtypes):
        self.path = pathlib.Path(path)
        self.config = config
        self.tensors = tensors            # name -> float32 torch.Tensor (dequantised)
        self.vocab = vocab                # model id -> piece
        self.stored_dtypes = stored_dtypes  # name -> "F32" | "F16" | "BF16" as stored
        self.tokenizer_path = self.path / "tokenizer.model"


def _read_safetensors(file):
    """Reads one safetensors file with plain Python so that every header check is ours."""
    data = file.read_bytes()
    if len(data) < 8:
        raise ModelFormatError(f"{file.name}: shorter than the 8-byte header length")
    n = int.from_bytes(data[:8], "little")
    if n > 100 * 1024 * 1024 or 8 + n > len(data):
        raise ModelFormatError(f"{file.name}: header length {n} is out of bounds")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{file.name}: header is not valid JSON ({e})") from None
    body = memoryview(data)[8 + n:]
    out, dtypes, spans = {}, {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info.get("dtype")
        if dt not in DTYPES:
            raise ModelFormatError(f"{file.name}: tensor {name}: dtype {dt!r} is not F32/F16/BF16")
        shape = info["shape"]
        begin, end = info["data_offsets"]
        count = math.prod(shape)
        size = count * torch.tensor([], dtype=DTYPES[dt]).element_size()
        if not 0 <= begin <= end <= len(body) or end - begin != size:
            raise ModelFormatError(f"{file.name}: tensor {name}: data_offsets {begin},{end} "
                                   f"do not match shape {shape} x {dt} within the data area")
        spans.append((begin, end, name))
        raw = bytes(body[begin:end])
        x = torch.frombuffer(bytearray(raw), dtype=DTYPES[dt]) if count else \
            torch.empty(0, dtype=DTYPES[dt])
        out[name] = x.reshape(shape).to(torch.float32)
        dtypes[name] = dt
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ModelFormatError(f"{file.name}: tensors {n0} and {n1} overlap")
    return out, dtypes


def load_model_dir(path):
    """Loads and validates a model directory; raises ModelFormatError on any contract breach."""
    path = pathlib.Path(path)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: config.json is missing") from None
    validate_config(config)

    index = path / "model.safetensors.index.json"
    if (path / "model.safetensors").exists():
        files = [path / "model.safetensors"]
        weight_map = None
    elif index.exists():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = [path / f for f in sorted(set(weight_map.values()))]
        for f in files:
            if not re.fullmatch(r"model-\d{5}-of-\d{5}\.safetensors", f.name):
                raise ModelFormatError(f"{index.name}: unexpected shard name {f.name}")
    else:
        raise ModelFormatError(f"{path}: neither model.safetensors nor "
                               "model.safetensors.index.json exists")
    tensors, dtypes = {}, {}
    for f in files:
        t, d = _read_safetensors(f)
        for name in t:
            if name in tensors:
                raise ModelFormatError(f"tensor {name} is present more than once")
            if weight_map is not None and weight_map.get(name) != f.name:
                raise ModelFormatError(f"tensor {name} is in {f.name}, the index says "
                                       f"{weight_map.get(name)}")
        tensors.update(t)
        dtypes.update(d)

    expected = expected_tensors(config)
    for name, shape in expected.items():
        if name not in tensors:
            raise ModelFormatError(f"tensor {name} is missing")
        if tuple(tensors[name].shape) != tuple(shape):
            raise ModelFormatError(f"tensor {name} has shape {list(tensors[name].shape)}, "
                                   f"expected {list(shape)}")
    for name in tensors:
        if name not in expected:
            raise ModelFormatError(f"tensor {name} is not part of this configuration")

    vocab = (path / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    if len(vocab) != config["vocab"]["size"]:
        raise ModelFormatError(f"vocab.txt has {len(vocab)} lines, vocab.size is "
                               f"{config['vocab']['size']}")
    return ModelDir(path, config, tensors, vocab, dtypes)


# ----------------------------------------------------------------------------- writing


def write_model_dir(path, config, tensors, vocab, tokenizer_model, dtype="F32", shards=1):
    """Writes a model directory. tensors: name -> float32 tensor, stored as `dtype`.

    shards > 1 splits the tensors, in name order, into that many files of about equal size,
    with model.safetensors.index.json mapping each name to its file.
    """
    from safetensors.torch import save_file

    validate_config(config)
    expected = expected_tensors(config)
    if set(expected) != set(tensors):
        raise ModelFormatError(f"tensor set mismatch: missing {sorted(set(expected) - set(tensors))}, "
                               f"extra {sorted(set(tensors) - set(expected))}")
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for old in list(path.glob("model*.safetensors")) + list(path.glob("model.safetensors.index.json")):
        old.unlink()
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (path / "vocab.txt").write_text("".join(p + "\n" for p in vocab), encoding="utf-8")
    (path / "tokenizer.model").write_bytes(tokenizer_model)

    stored = {n: tensors[n].detach().to(DTYPES[dtype]).contiguous() for n in sorted(tensors)}
    meta = {"format": "pt"}
    if shards == 1:
        save_file(stored, str(path / "model.safetensors"), metadata=meta)
        return
    names = sorted(stored)
    total = sum(stored[n].numel() for n in names)
    groups, acc = [[] for _ in range(shards)], 0
    for n in names:
        groups[min(shards - 1, acc * shards // total)].append(n)
        acc += stored[n].numel()
    weight_map = {}
    for i, g in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: stored[n] for n in g}, str(path / fname), metadata=meta)
        weight_map.update({n: fname for n in g})
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": weight_map}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
