#!/usr/bin/env python3
"""End-to-end smoke test of the trainer on CPU (a few minutes on 2 cores).

1. A tiny synthetic corpus: short English sentences spoken by flite (voices kal16, slt, rms
   for training; awb, a held-out voice, for validation and test), Spanish targets, written
   as 16 kHz FLAC with the corpus manifests (train.tsv, valid.tsv, test_voice.tsv).
2. training/train.py with configs/tiny.json: 20 steps (DataLoader collation), then a second
   command resumes from checkpoint_last.pt to step 30 (as chained 10-minute device commands
   do) with the resident corpus (normalised features in memory, batched SpecAugment).
3. training/average.py (the 3 checkpoints of lowest loss on the --dev manifest, here the
   test_voice set), training/export.py (float16, forced into several shards).
4. The export loads in tools/reference's oracle and in the C engine; on 2 test utterances
   the oracle's beam search and the engine (on the engine's features and on the audio)
   give identical tokens (training/eval/parity.py).
5. training/eval/evaluate.py scores the test set with sacrebleu (numbers meaningless).

Run: python3 training/tests/test_smoke.py [--keep DIR]
Exit 77 (skipped) when torch, torchaudio, sentencepiece, soundfile, sacrebleu, the authors'
mtla package, flite or the mtla-st binary is missing (the binary: $MTLA_ST_BIN,
build/mtla-st or /tmp/build-train/mtla-st).
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SKIP = 77
PAIRS = [
    ("Good morning.", "Buenos días."),
    ("Thank you very much.", "Muchas gracias."),
    ("Where is the station?", "¿Dónde está la estación?"),
    ("The house is red.", "La casa es roja."),
    ("I like to read books.", "Me gusta leer libros."),
    ("Please close the door.", "Por favor, cierra la puerta."),
    ("The weather is cold today.", "Hoy hace frío."),
    ("My brother lives in the city.", "Mi hermano vive en la ciudad."),
    ("We eat bread and cheese.", "Comemos pan y queso."),
    ("The children play in the garden.", "Los niños juegan en el jardín."),
    ("She has a small dog.", "Ella tiene un perro pequeño."),
    ("It is time to go home.", "Es hora de ir a casa."),
    ("The water is very clean.", "El agua está muy limpia."),
    ("He writes a long letter.", "Él escribe una carta larga."),
]
TRAIN_VOICES, HELD_OUT_VOICE = ("kal16", "slt", "rms"), "awb"


def missing_requirement():
    for mod in ("torch", "torchaudio", "sentencepiece", "soundfile", "sacrebleu",
                "safetensors"):
        try:
            __import__(mod)
        except ImportError:
            return f"python package {mod} is not installed"
    try:
        from tools.reference.authors import mtla_class
        mtla_class()
    except ImportError as e:
        return str(e)
    if not shutil.which("flite"):
        return "flite is not installed (apt-get install flite)"
    from training.eval.common import find_engine
    if find_engine() is None:
        return "no mtla-st binary ($MTLA_ST_BIN, build/mtla-st, /tmp/build-train/mtla-st)"
    return None


def synthesize(text, voice, path):
    import soundfile as sf
    wav = path.with_suffix(".wav")
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
    x, sr = sf.read(str(wav), dtype="int16")
    assert sr == 16000, (voice, sr)
    sf.write(str(path), x, 16000, subtype="PCM_16")
    wav.unlink()
    return len(x)


def make_corpus(root):
    (root / "audio").mkdir(parents=True)
    sets = {"train": [(i, v) for v in TRAIN_VOICES for i in range(len(PAIRS))],
            "valid": [(i, HELD_OUT_VOICE) for i in range(0, len(PAIRS), 2)],
            "test_voice": [(i, HELD_OUT_VOICE) for i in range(1, len(PAIRS), 2)]}
    for name, items in sets.items():
        with (root / f"{name}.tsv").open("w", encoding="utf-8") as f:
            f.write("id\taudio\tn_samples\ten\tes\tvoice\taugment\n")
            for i, v in items:
                uid = f"s{i:02d}-{v}"
                audio = root / "audio" / f"{uid}.flac"
                n = audio.exists() and __import__("soundfile").info(str(audio)).frames or \
                    synthesize(PAIRS[i][0], v, audio)
                f.write(f"{uid}\taudio/{uid}.flac\t{n}\t{PAIRS[i][0]}\t{PAIRS[i][1]}\t{v}\t"
                        f"none\n")
    return sets


def run(cmd, **kw):
    t = time.time()
    r = subprocess.run([sys.executable] + cmd, cwd=ROOT, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise AssertionError(f"{cmd[0]} failed with status {r.returncode}")
    print(f"  {' '.join(str(c) for c in cmd[:1])}: {time.time() - t:.1f} s")
    return r.stdout


def smoke(tmp):
    tmp = pathlib.Path(tmp)
    t0 = time.time()
    corpus, runp, export = tmp / "corpus", tmp / "run", tmp / "model"
    sets = make_corpus(corpus)
    print(f"corpus: {sum(len(v) for v in sets.values())} utterances in "
          f"{time.time() - t0:.1f} s")
    common = ["--config", "training/configs/tiny.json", "--corpus", str(corpus),
              "--run", str(runp), "--device", "cpu", "--workers", "0", "--threads", "2",
              "--dev", str(corpus / "test_voice.tsv")]
    # first command: DataLoader collation; the resumed one: the resident (in-memory) corpus
    run(["training/train.py", *common, "--max-steps", "20", "--loader", "workers"])
    out = run(["training/train.py", *common, "--loader", "resident"])
    assert "resumed at step 20" in out, out[-2000:]
    assert (runp / "DONE").read_text().strip() == "30"
    hist = json.loads((runp / "history.json").read_text())
    assert [h["step"] for h in hist["saves"]] == [10, 20, 30], hist["saves"]
    losses = [r["loss"] for r in hist["log"]]
    print(f"train loss per 5 steps: {' '.join(f'{x:.2f}' for x in losses)}")
    assert losses[-1] < losses[0], "the training loss did not go down"

    assert all(h["dev"]["loss"] > 0 for h in hist["saves"])
    run(["training/average.py", "--run", str(runp), "--best", "3", "--by", "dev",
         "--out", str(runp / "averaged.pt")])
    run(["training/export.py", "--checkpoint", str(runp / "averaged.pt"), "--out",
         str(export), "--dtype", "F16", "--max-shard-mib", "0.2"])
    shards = sorted(p.name for p in export.glob("model-*.safetensors"))
    assert len(shards) >= 2, shards
    cfg = json.loads((export / "config.json").read_text())
    assert cfg["generation"]["beam"] == 5 and cfg["languages"] == {"source": "en",
                                                                   "target": "es"}

    from training.eval.common import find_engine
    from training.eval.parity import check
    test_audio = [str(corpus / "audio" / f"s{i:02d}-{HELD_OUT_VOICE}.flac") for i in (1, 3)]
    t = time.time()
    res = check(str(export), test_audio, find_engine())
    for r in res:
        print(f"  {pathlib.Path(r['file']).name}: {len(r['oracle_tokens'])} tokens, "
              f"identical {r['identical']}, min decision margin {r['min_decision_margin']:.2e}"
              f", text {r['text'][:60]!r}")
    print(f"parity: {time.time() - t:.1f} s")
    assert all(r["identical"] for r in res), res

    rep = json.loads(run(["training/eval/evaluate.py", "--model", str(export), "--manifest",
                          str(corpus / "test_voice.tsv")]).strip().splitlines()[-1])
    print(f"evaluate (C engine, test_voice): BLEU {rep['bleu']} chrF {rep['chrf']} "
          f"on {rep['n']} utterances")
    assert rep["n"] == len(sets["test_voice"]) and "bleu" in rep and "chrf" in rep
    print(f"smoke test passed in {time.time() - t0:.0f} s")


def test_smoke():
    why = missing_requirement()
    if why:
        import pytest
        pytest.skip(why)
    with tempfile.TemporaryDirectory() as tmp:
        smoke(tmp)


def main():
    why = missing_requirement()
    if why:
        print(f"skip: {why}")
        return SKIP
    if len(sys.argv) == 3 and sys.argv[1] == "--keep":
        keep = pathlib.Path(sys.argv[2])
        if keep.exists():
            shutil.rmtree(keep)
        keep.mkdir(parents=True)
        smoke(keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            smoke(tmp)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
