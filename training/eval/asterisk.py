#!/usr/bin/env python3
"""The real-speech development set: Asterisk's English prompts (human voice, Debian
asterisk-core-sounds-en-wav) with the Spanish human translations of the same prompt ids
(the text list core-sounds-es.txt of asterisk-core-sounds-es).

  python3 training/eval/asterisk.py --out build-eval/asterisk_dev
  -> OUT/dev.tsv (corpus manifest format), OUT/audio/*.flac (16 kHz), OUT/summary.json

Packages (Debian bookworm, version 1.6.1): asterisk-core-sounds-en-wav holds the audio
(/usr/share/asterisk/sounds/en_US_f_Allison/**.wav, 8 kHz 16-bit mono); the text lists are
in the metapackages asterisk-core-sounds-en and asterisk-core-sounds-es
(/usr/share/doc/asterisk-core-sounds-{en,es}/core-sounds-{en,es}.txt.gz, lines
"prompt/id: text"). asterisk-core-sounds-es-wav (the Spanish audio) is not needed. By default
the three .deb files are fetched with `apt-get download` into OUT/debs (or taken from
--debs) and only the text lists and the dev prompts' audio are unpacked (OUT/root);
nothing is installed. --root / uses packages
installed with apt instead.

SPLIT RULE. Only prompts whose file name starts with a letter a..l are the development set
(used for evaluation and checkpoint choice, never for training). Prompts whose file name
starts with m..z are reserved for an independent test and are NEVER read: their audio is
never opened and their text lines are dropped on sight. A prompt id may have a folder
("digits/1", "letters/m", "dictate/pause"); so that no reading of "file name" can put a
test prompt into the dev set, a prompt is dev only if BOTH the first letter of its path and
the first letter of its base name are in a..l; if either is in m..z it is test; anything
else (e.g. "digits/1": base name starts with a digit) belongs to neither and is skipped.
Prompts whose text is a bracketed non-speech note ("[this is a simple beep tone]") are
skipped too.
"""
import argparse
import gzip
import json
import pathlib
import subprocess
import sys

PACKAGES = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-en", "asterisk-core-sounds-es")
SOUNDS = "usr/share/asterisk/sounds/en_US_f_Allison"
TEXT_EN = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
TEXT_ES = "usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz"
DEV_LETTERS = "abcdefghijkl"
TEST_LETTERS = "mnopqrstuvwxyz"


def split_of(prompt_id):
    """'dev', 'test' or 'none' (see SPLIT RULE above)."""
    base = prompt_id.rsplit("/", 1)[-1]
    firsts = {prompt_id[:1].lower(), base[:1].lower()}
    if any(c and c in TEST_LETTERS for c in firsts):
        return "test"
    if all(c and c in DEV_LETTERS for c in firsts):
        return "dev"
    return "none"


def read_dev_texts(path):
    """{prompt id: text} of the dev prompts of one core-sounds-*.txt.gz. Lines of test
    prompts are dropped as soon as their id is seen; their text is never kept."""
    out = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(";") or ":" not in line:
                continue
            pid, text = line.split(":", 1)
            pid = pid.strip()
            if split_of(pid) != "dev":
                continue
            out[pid] = text.strip()
    return out


def fetch_debs(debs_dir):
    debs_dir.mkdir(parents=True, exist_ok=True)
    have = {p.name.split("_")[0] for p in debs_dir.glob("*.deb")}
    need = [p for p in PACKAGES if p not in have]
    if need:
        subprocess.run(["apt-get", "download", *need], cwd=debs_dir, check=True)
    return sorted(debs_dir.glob("*.deb"))


def unpack(debs, root):
    """Unpacks the text lists and the DEV prompts' audio only: test prompts' files are
    skipped by name inside the package's archive and never written to disk."""
    import tarfile

    root.mkdir(parents=True, exist_ok=True)
    prefix = "./" + SOUNDS + "/"
    for d in debs:
        if d.name.split("_")[0] not in PACKAGES:
            continue
        p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(d)], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
            for m in tar:
                name = m.name if m.name.startswith("./") else "./" + m.name
                if not m.isfile():
                    continue
                if name.startswith(prefix):
                    pid = name[len(prefix):]
                    if not pid.endswith(".wav") or split_of(pid[:-4]) != "dev":
                        continue
                elif name.lstrip("./") not in (TEXT_EN, TEXT_ES):
                    continue
                tar.extract(m, root, filter="data")
        if p.wait() != 0:
            raise RuntimeError(f"dpkg-deb failed on {d}")


def open_dev_audio(root, pid):
    """Reads one prompt's audio; refuses anything but a dev prompt (the test set guard)."""
    assert split_of(pid) == "dev", f"refusing to read non-dev prompt {pid!r}"
    import soundfile as sf
    return sf.read(str(pathlib.Path(root) / SOUNDS / f"{pid}.wav"), dtype="float32",
                   always_2d=True)


def build(root, out):
    import numpy as np
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    en = read_dev_texts(pathlib.Path(root) / TEXT_EN)
    es = read_dev_texts(pathlib.Path(root) / TEXT_ES)
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], {"no_spanish": 0, "no_audio": 0, "non_speech": 0}
    for pid in sorted(en):
        if pid not in es:
            skipped["no_spanish"] += 1
            continue
        if en[pid].startswith("[") or es[pid].startswith("["):
            skipped["non_speech"] += 1
            continue
        wav = pathlib.Path(root) / SOUNDS / f"{pid}.wav"
        if not wav.exists():
            skipped["no_audio"] += 1
            continue
        x, sr = open_dev_audio(root, pid)
        x = torch.from_numpy(np.ascontiguousarray(x.mean(axis=1)))
        if sr != 16000:
            x = AF.resample(x, sr, 16000)
        x = x.clamp(-1.0, 1.0).numpy()
        name = pid.replace("/", "__") + ".flac"
        sf.write(str(audio_dir / name), x, 16000, subtype="PCM_16")
        rows.append((pid, f"audio/{name}", len(x), en[pid], es[pid], "en_US_f_Allison",
                     "none"))
    with (out / "dev.tsv").open("w", encoding="utf-8") as f:
        f.write("id\taudio\tn_samples\ten\tes\tvoice\taugment\n")
        for r in rows:
            f.write("\t".join(str(v).replace("\t", " ") for v in r) + "\n")
    for r in rows:
        assert split_of(r[0]) == "dev"
    summary = {"dev_prompts": len(rows), "skipped": skipped,
               "english_dev_texts": len(en), "spanish_dev_texts": len(es),
               "seconds": round(sum(r[2] for r in rows) / 16000, 1),
               "rule": "dev = first letter of path and of base name both in a..l; "
                       "m..z never read"}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--root", help="folder the packages are unpacked in ('/' = installed)")
    ap.add_argument("--debs", help="folder with the .deb files (default OUT/debs, fetched)")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.root:
        root = pathlib.Path(args.root)
    else:
        debs = fetch_debs(pathlib.Path(args.debs) if args.debs else out / "debs")
        root = out / "root"
        unpack(debs, root)
    print(json.dumps(build(root, out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
