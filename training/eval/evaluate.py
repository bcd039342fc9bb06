#!/usr/bin/env python3
"""Translate a set of utterances and score them with sacrebleu (BLEU and chrF).

  python3 training/eval/evaluate.py --model samples/model --manifest CORPUS/test_voice.tsv
  python3 training/eval/evaluate.py --model M --audio-dir DIR --refs refs.tsv
  options: --engine c (default: build/mtla-st, or --bin) | oracle (tools/reference, float32
           PyTorch beam search) ; --beam N ; --limit N ; --dtype fp32|bf16|int8 (C engine) ;
           --out DIR (hyps/refs/report.json)

A manifest is the corpus format (id, audio relative to the manifest, ..., es). --refs is a
TSV "id<TAB>Spanish text" whose ids are audio file names without extension below
--audio-dir. References and hypotheses are detokenised text; BLEU is sacrebleu's default
(13a tokenisation, mixed case), chrF its default (chrF2). --unaccented also scores both
sides with accents stripped and lower-cased (the Asterisk Spanish prompts are written
mostly without accents).
"""
import argparse
import json
import pathlib
import sys
import time
import unicodedata

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from training.eval.common import engine_texts, find_engine, torch_features  # noqa: E402

AUDIO_EXT = (".flac", ".wav", ".ogg", ".mp3", ".opus")


def load_items(args):
    if args.manifest:
        from training.dataset import read_manifest
        return [(r["id"], r["audio"], r["es"]) for r in read_manifest(args.manifest)]
    refs = {}
    for line in pathlib.Path(args.refs).read_text(encoding="utf-8").splitlines():
        if line.strip():
            k, v = line.split("\t", 1)
            refs[k] = v
    items = []
    for p in sorted(pathlib.Path(args.audio_dir).rglob("*")):
        if p.suffix.lower() in AUDIO_EXT:
            k = str(p.relative_to(args.audio_dir).with_suffix(""))
            if k in refs:
                items.append((k, str(p), refs[k]))
    return items


def strip_accents(s):
    return "".join(c for c in unicodedata.normalize("NFD", s)
                   if unicodedata.category(c) != "Mn").lower()


def score(hyps, refs):
    import sacrebleu
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(hyps, [refs])
    c = chrf.corpus_score(hyps, [refs])
    return {"bleu": round(b.score, 2), "chrf": round(c.score, 2),
            "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature()), "bleu_detail": str(b)}


def translate_oracle(model_dir, audio_files, beam):
    from tools.reference.model import SpeechTranslator
    m = SpeechTranslator(model_dir)
    out = []
    for a in audio_files:
        hyps = m.translate(torch_features(a), beam=beam)
        out.append(m.detokenize(hyps[0]["tokens"]))
    return out


def evaluate(model, items, engine="c", binary=None, beam=None, unaccented=False, dtype=None):
    audio = [a for _, a, _ in items]
    refs = [r for _, _, r in items]
    t0 = time.time()
    if engine == "c":
        b = find_engine(binary)
        if b is None:
            raise SystemExit("no mtla-st binary: build it or pass --bin / $MTLA_ST_BIN")
        hyps = engine_texts(b, model, audio, beam=beam, dtype=dtype)
    else:
        hyps = translate_oracle(model, audio, beam)
    rep = {"n": len(items), "engine": engine, "beam": beam, "seconds": round(time.time() - t0, 1)}
    if dtype:
        rep["dtype"] = dtype
    rep.update(score(hyps, refs))
    if unaccented:
        u = score([strip_accents(h) for h in hyps], [strip_accents(r) for r in refs])
        rep["unaccented_lowercase"] = {"bleu": u["bleu"], "chrf": u["chrf"]}
    return rep, hyps, refs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest")
    src.add_argument("--audio-dir")
    ap.add_argument("--refs", help="with --audio-dir: TSV id<TAB>reference")
    ap.add_argument("--engine", choices=("c", "oracle"), default="c")
    ap.add_argument("--bin", help="mtla-st binary")
    ap.add_argument("--beam", type=int)
    ap.add_argument("--dtype", choices=("fp32", "bf16", "int8"),
                    help="the C engine's --dtype (docs/engine.md \"Reduced precision\")")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--unaccented", action="store_true")
    ap.add_argument("--out", help="folder for hyps.txt, refs.txt, ids.txt, report.json")
    args = ap.parse_args(argv)
    if args.audio_dir and not args.refs:
        ap.error("--audio-dir needs --refs")
    items = load_items(args)
    if args.limit:
        items = items[: args.limit]
    if not items:
        raise SystemExit("nothing to evaluate")
    if args.dtype and args.engine != "c":
        ap.error("--dtype is an option of the C engine")
    rep, hyps, refs = evaluate(args.model, items, args.engine, args.bin, args.beam,
                               args.unaccented, args.dtype)
    rep["model"] = str(args.model)
    rep["set"] = str(args.manifest or args.audio_dir)
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "hyps.txt").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
        (out / "refs.txt").write_text("".join(r + "\n" for r in refs), encoding="utf-8")
        (out / "ids.txt").write_text("".join(i + "\n" for i, _, _ in items), encoding="utf-8")
        (out / "report.json").write_text(json.dumps(rep, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(rep, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
