"""Shared by the evaluation scripts: finding the engine, running it, oracle decoding."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def find_engine(explicit=None):
    """The mtla-st binary: --bin, $MTLA_ST_BIN, build/mtla-st, /tmp/build-train/mtla-st, PATH."""
    for c in (explicit, os.environ.get("MTLA_ST_BIN"), ROOT / "build" / "mtla-st",
              "/tmp/build-train/mtla-st", shutil.which("mtla-st")):
        if c and pathlib.Path(c).is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


def engine_features(binary, audio, out_npy, model=None):
    """Raw features (no CMVN) as the engine's frontend computes them (resampled to 16 kHz):
    Kaldi fbank, or the frontend of `model` (e.g. Whisper's log-mel) when one is given."""
    cmd = [binary, "features", str(audio), "-o", str(out_npy)]
    if model is not None:
        cmd[2:2] = ["--model", str(model)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def engine_tokens(binary, model, inputs, features=False, beam=None, threads=1):
    """One list of model ids per input (--print-tokens), one engine call per input so that
    every line is certainly that input's."""
    out = []
    for x in inputs:
        cmd = [binary, "--model", str(model), "--print-tokens", "-q", "--threads", str(threads)]
        if features:
            cmd.append("--input-features")
        if beam:
            cmd += ["--beam", str(beam)]
        r = subprocess.run(cmd + [str(x)], check=True, capture_output=True, text=True)
        lines = [ln for ln in r.stdout.splitlines()]
        if len(lines) != 1:
            raise RuntimeError(f"{x}: expected one line of tokens, got {r.stdout!r}")
        out.append([int(t) for t in lines[0].split()])
    return out


def engine_texts(binary, model, audio_files, beam=None, threads=0, dtype=None):
    """Translations of audio files, one engine call for all (jsonl output, keyed by file)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lst", delete=False) as f:
        for a in audio_files:
            f.write(str(a) + "\n")
        lst = f.name
    try:
        cmd = [binary, "--model", str(model), "-f", "jsonl", "-q", "--threads", str(threads),
               "--files-from", lst]
        if beam:
            cmd += ["--beam", str(beam)]
        if dtype:
            cmd += ["--dtype", dtype]
        r = subprocess.run(cmd, check=True, capture_output=True, text=True)
    finally:
        os.unlink(lst)
    by_file = {}
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        by_file.setdefault(rec["file"], []).append(rec["text"])
    missing = [a for a in audio_files if str(a) not in by_file]
    if missing:
        raise RuntimeError(f"the engine gave no output for {missing[:3]}")
    return [" ".join(by_file[str(a)]).strip() for a in audio_files]


def torch_features(audio):
    """Raw log-mel with the training frontend (torchaudio Kaldi fbank); resampled to 16 kHz
    with torchaudio when the file has another rate."""
    import numpy as np
    import soundfile as sf
    import torch

    from training.dataset import fbank

    x, sr = sf.read(str(audio), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != 16000:
        import torchaudio.functional as AF
        x = AF.resample(torch.from_numpy(np.ascontiguousarray(x)), sr, 16000).numpy()
    return fbank(x)
