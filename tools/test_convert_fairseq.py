#!/usr/bin/env python3
"""Round-trip test of tools/convert_fairseq.py on the golden models.

Each golden model directory (tests/golden/models/) is exported to the authors' fairseq
checkpoint format (tools/reference/fairseq_export.py) in a temporary directory and converted
back with the converter's command line. The result must have the same config (apart from the
free-form notes), every tensor bit-identical in the same storage type, and the oracle must
translate the model's golden input to the same hypotheses. Then the converter's error paths:
each bad input must exit with status 1 (2 for bad usage) and a message naming the problem.

Exit status: 0 pass, 1 fail, 77 skipped (PyTorch, NumPy or safetensors not importable; CI
has no PyTorch).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "models"
CONVERTER = ROOT / "tools" / "convert_fairseq.py"

try:
    import numpy as np
    import safetensors  # noqa: F401
    import torch
except ImportError as e:
    print(f"SKIP: {e.name} is not importable; the converter test needs "
          "tools/requirements.txt installed")
    sys.exit(77)

sys.path.insert(0, str(ROOT / "tools"))
from reference.fairseq_export import FairseqExportError, export  # noqa: E402
from reference.model import SpeechTranslator  # noqa: E402
from reference.model_dir import load_model_dir  # noqa: E402

try:
    from reference import authors
    authors.mtla_class()
    MTLA_IMPL = "auto"
except ImportError:
    MTLA_IMPL = "ours"   # the authors' module is missing; our own MTLA code decodes

torch.set_num_threads(1)
FAILURES = []


def check(cond, what):
    print(f"{'ok  ' if cond else 'FAIL'} {what}")
    if not cond:
        FAILURES.append(what)
    return cond


def convert(ckpt_dir, out, *extra):
    cmd = [sys.executable, str(CONVERTER), str(ckpt_dir / "checkpoint.pt"),
           "--dict", str(ckpt_dir / "dict.txt"), "--spm", str(ckpt_dir / "spm.model"),
           "-o", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True)


def bits(t):
    return t.contiguous().view(torch.int32)


def translations(md, beams=(1, 5)):
    meta = json.loads((md.path / "fixtures" / "meta.json").read_text())
    fbank = np.load(ROOT / meta["input"])
    m = SpeechTranslator(md, mtla_impl=MTLA_IMPL)
    return {b: [(h["tokens"], h["score"]) for h in m.translate(fbank, beam=b)] for b in beams}


# (golden model, export options, converter options, what it exercises)
CASES = [
    ("transformer_mtla_s2", dict(style="args"), [],
     "recipe arch, legacy args checkpoint"),
    ("transformer_mtla_s2_even", dict(style="cfg"), ["--dtype", "f16"],
     "cfg checkpoint with a Namespace, F16 output"),
    ("transformer_mtla_s2_even", dict(style="args", dtype=torch.float16), ["--dtype", "f16"],
     "fp16 checkpoint tensors"),
    ("conformer_relpos_mtla_s3", dict(style="cfg-dict", mlta_spelling=True, ctc_weight=0.3),
     ["--dtype", "bf16"], "ESPnet rel_pos conformer, MLTA spelling, cfg as dict, CTC head, BF16"),
    ("transformer_mla", dict(style="args"), [], "MLA arch"),
    ("transformer_mha", dict(style="args"), [], "MHA (roformer) arch, max_len_a from the args"),
    ("conformer_abs_gqa", dict(style="cfg"), ["--shards", "2"],
     "conformer with fairseq attention, GQA, global CMVN, 2 shards"),
]


def round_trips(tmp):
    for i, (name, exp_opts, conv_opts, what) in enumerate(CASES):
        golden = load_model_dir(GOLDEN / name)
        cfg = golden.config
        ck = tmp / f"ckpt{i}"
        paths = export(golden.path, ck, **exp_opts)
        extra = ["--source-lang", cfg["languages"]["source"],
                 "--target-lang", cfg["languages"]["target"]]
        if "gcmvn" in paths:
            extra += ["--global-cmvn", str(paths["gcmvn"])]
        elif cfg["frontend"]["cmvn"] == "none":
            extra += ["--cmvn", "none"]
        out = tmp / f"out{i}"
        r = convert(ck, out, *extra, *conv_opts)
        if not check(r.returncode == 0, f"{name} ({what}): converter exits 0"):
            print(r.stdout + r.stderr)
            continue
        conv = load_model_dir(out)
        a = {k: v for k, v in conv.config.items() if k != "notes"}
        b = {k: v for k, v in cfg.items() if k != "notes"}
        check(a == b, f"{name}: config equal")
        if a != b:
            print(json.dumps(a, indent=1), json.dumps(b, indent=1))
        check(set(conv.tensors) == set(golden.tensors), f"{name}: same tensor names")
        same = [n for n in golden.tensors if n in conv.tensors and
                torch.equal(bits(conv.tensors[n]), bits(golden.tensors[n]))]
        check(len(same) == len(golden.tensors),
              f"{name}: {len(same)}/{len(golden.tensors)} tensors bit-identical")
        dt = conv_opts[conv_opts.index("--dtype") + 1].upper() if "--dtype" in conv_opts else "F32"
        check(all(d == dt for d in conv.stored_dtypes.values()), f"{name}: stored as {dt}")
        if dt == "F32" and set(golden.stored_dtypes.values()) == {"F32"}:
            check((out / "model.safetensors").exists() == (golden.path / "model.safetensors").exists(),
                  f"{name}: same file layout")
        check(conv.vocab == golden.vocab, f"{name}: vocab.txt equal")
        check(conv.tokenizer_path.read_bytes() == golden.tokenizer_path.read_bytes(),
              f"{name}: tokenizer.model copied")
        conv.path = golden.path   # for the fixtures' input path only
        t_conv, t_gold = translations(conv), translations(golden)
        check(t_conv == t_gold, f"{name}: oracle translations identical (beam 1 and 5)")
        fx = json.loads((golden.path / "fixtures" / "beam.json").read_text())
        check(t_conv[5][0][0] == fx["beams"]["5"]["tokens"],
              f"{name}: beam 5 best equals the golden fixture")


def espnet_abs(tmp):
    """ESPnet attention with absolute positions: same maths as fairseq's, other names."""
    golden = load_model_dir(GOLDEN / "conformer_abs_gqa")
    ck = tmp / "espnet_abs"
    paths = export(golden.path, ck, style="args")
    c = torch.load(paths["checkpoint"], weights_only=False)
    c["args"].attn_type = "espnet"
    for k in list(c["model"]):
        for p in ("q", "k", "v", "out"):
            tag = f".self_attn.{p}_proj."
            if k.startswith("encoder.conformer_layers.") and tag in k:
                c["model"][k.replace(tag, f".self_attn.linear_{p}.")] = c["model"].pop(k)
    torch.save(c, paths["checkpoint"])
    out = tmp / "espnet_abs_out"
    r = convert(ck, out, "--global-cmvn", str(paths["gcmvn"]), "--target-lang", "es")
    if check(r.returncode == 0, "conformer espnet+abs: converter exits 0"):
        conv = load_model_dir(out)
        check(all(torch.equal(bits(conv.tensors[n]), bits(golden.tensors[n]))
                  for n in golden.tensors), "conformer espnet+abs: renamed tensors identical")
    else:
        print(r.stdout + r.stderr)


def not_exportable():
    try:
        export(GOLDEN / "transformer_mtla_s1", pathlib.Path(tempfile.mkdtemp()) / "x")
        check(False, "exporter refuses hyper_rank != r/4")
    except FairseqExportError as e:
        check("hyper_rank" in str(e), f"exporter refuses hyper_rank != r/4 ({e})")


def errors(tmp):
    base = tmp / "err_base"
    export(GOLDEN / "transformer_mtla_s2", base, style="args")
    good = torch.load(base / "checkpoint.pt", weights_only=False)

    def variant(tag, edit_ckpt=None, edit_dir=None):
        d = tmp / f"err_{tag}"
        d.mkdir()
        for f in ("dict.txt", "spm.model"):
            (d / f).write_bytes((base / f).read_bytes())
        c = {"args": argparse.Namespace(**vars(good["args"])), "cfg": None,
             "model": dict(good["model"])}
        if edit_ckpt:
            edit_ckpt(c)
        torch.save(c, d / "checkpoint.pt")
        if edit_dir:
            edit_dir(d)
        return d

    def expect(tag, d, status, words, *extra):
        r = convert(d, tmp / f"out_{tag}", *extra)
        msg = (r.stderr.strip().splitlines() or [""])[-1]
        ok = r.returncode == status and all(w in r.stderr for w in words)
        check(ok, f"error case {tag}: exit {r.returncode}, {msg!r}")
        check(not (tmp / f"out_{tag}" / "config.json").exists() or status == 0,
              f"error case {tag}: no model directory written")

    def setarg(**kw):
        return lambda c: [setattr(c["args"], k, v) for k, v in kw.items()]

    def drop(key):
        return lambda c: c["model"].pop(key)

    def add(key, shape):
        return lambda c: c["model"].__setitem__(key, torch.zeros(shape))

    expect("unknown_arch", variant("unknown_arch", setarg(arch="transformer_iwslt_de_en")), 1,
           ["unsupported arch", "transformer_iwslt_de_en"])
    expect("decoder_type", variant("decoder_type", setarg(decoder_type="transformer")), 1,
           ["decoder_type"])
    expect("missing_tensor", variant("missing_tensor", drop("decoder.layers.1.fc2.weight")), 1,
           ["missing", "decoder.layers.1.fc2.weight"])
    expect("extra_tensor", variant("extra_tensor", add("decoder.layers.0.adapter.weight", (4,))),
           1, ["do not belong", "decoder.layers.0.adapter.weight"])
    expect("q_lora", variant("q_lora", setarg(decoder_q_lora_rank=64)), 1, ["q_lora_rank"])
    expect("option_mismatch", variant("option_mismatch", setarg(decoder_kv_lora_rank=256)), 1,
           ["decoder_kv_lora_rank", "256"])
    expect("post_ln", variant("post_ln", setarg(encoder_normalize_before=False)), 1, ["pre-LN"])
    expect("no_args", variant("no_args", lambda c: c.update(args=None)), 1,
           ["neither 'args' nor 'cfg'"])
    expect("dict_size", variant("dict_size", edit_dir=lambda d: (d / "dict.txt").write_text(
        "".join((base / "dict.txt").read_text().splitlines(True)[:-1]))), 1,
        ["dict.txt", "embed_tokens"])
    expect("dict_dup", variant("dict_dup", edit_dir=lambda d: (d / "dict.txt").write_text(
        (base / "dict.txt").read_text() + "\u2581la 1\n")), 1, ["duplicate"])
    expect("dict_format", variant("dict_format", edit_dir=lambda d: (d / "dict.txt").write_text(
        "oops\n")), 1, ["expected '<piece> <count>'"])
    expect("bad_spm", variant("bad_spm", edit_dir=lambda d: (d / "spm.model").write_bytes(
        b"not a model")), 1, ["SentencePiece"])
    expect("not_checkpoint", variant("not_checkpoint", edit_dir=lambda d: (
        d / "checkpoint.pt").write_text("hello")), 1, ["not a readable PyTorch checkpoint"])
    expect("no_file", tmp / "does_not_exist", 1, ["no such file"])
    np.savez(tmp / "no_std.npz", mean=np.zeros(80, np.float32))
    expect("cmvn_no_std", variant("cmvn_no_std"), 1, ["'std'"], "--global-cmvn",
           str(tmp / "no_std.npz"))
    np.savez(tmp / "short.npz", mean=np.zeros(40, np.float32), std=np.ones(40, np.float32))
    expect("cmvn_shape", variant("cmvn_shape"), 1, ["shape", "80 mel bins"], "--global-cmvn",
           str(tmp / "short.npz"))
    expect("cmvn_not_npz", variant("cmvn_not_npz"), 1, ["not a .npz file"], "--global-cmvn",
           str(base / "dict.txt"))
    expect("usage", variant("usage"), 2, ["--dtype"], "--dtype", "f64")

    gqa = tmp / "err_gqa_base"
    export(GOLDEN / "conformer_abs_gqa", gqa, style="args")
    c = torch.load(gqa / "checkpoint.pt", weights_only=False)
    c["args"].decoder_att_type = "MQA"
    torch.save(c, gqa / "checkpoint.pt")
    expect("mqa_mismatch", gqa, 1, ["MQA", "kv heads"], "--global-cmvn", str(gqa / "gcmvn.npz"))
    c["args"].decoder_att_type = "GQA"
    c["args"].pos_enc_type = "rope"
    torch.save(c, gqa / "checkpoint.pt")
    expect("rope_conformer", gqa, 1, ["pos_enc_type='rope'"])


def main():
    print(f"converter round trip (oracle MTLA implementation: {MTLA_IMPL})")
    with tempfile.TemporaryDirectory(prefix="test_convert_fairseq.") as t:
        tmp = pathlib.Path(t)
        round_trips(tmp)
        espnet_abs(tmp)
        not_exportable()
        errors(tmp)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
