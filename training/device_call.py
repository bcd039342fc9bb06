#!/usr/bin/env python3
"""One device-machine command of the training run (training/device_plan.md), and the
preparation of what it carries.

Here (CPU machine, before the session's first device call):
  python3 training/device_call.py prepare [--corpus-src DIR]
    -> .device/whl/            wheels the device image lacks (mtla, soundfile, cffi, pycparser),
                               for its Python 3.12
       .device/asterisk_dev/   the Asterisk a..l dev set (training/eval/asterisk.py), scored at
                               every save for checkpoint choice
       .device/corpus_src/     a copy of --corpus-src (what training/data/ needs to build the
                               corpus on the device: sentence pairs, synthesiser .debs)
    and adds /.device/ to .git/info/exclude (it travels with `carry`, not with git).

There (each device call, from the repository root; state kept in build-train/, an ignored
folder that stays between back-to-back calls on the same machine):
  python3 training/device_call.py call --out "$OUT" --budget 570 \
      [--corpus-cmd "bash training/data/... build-train/corpus"]
    1. installs the wheels into /tmp/site (once per machine);
    2. if build-train/corpus/train.tsv is missing, runs --corpus-cmd (which must write the
       corpus manifests there, training/dataset.py's format);
    3. trains (training/train.py, resuming build-train/run) until `budget` minus the time the
       export needs, measured from this command's start;
    4. averages the best checkpoints by Asterisk-dev loss (valid loss when absent) and exports
       the float16 model directory, in shards of at most 15 MiB, to $OUT/model; copies
       train.log (tail) and history.json to $OUT. Every call thus returns a usable model.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CARRY = ROOT / ".device"
WHEELS = ("mtla==0.3.2", "soundfile==0.14.0", "cffi", "pycparser")
PIP_PLATFORM = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                "--platform", "manylinux2014_x86_64"]


def prepare(args):
    CARRY.mkdir(exist_ok=True)
    exclude = ROOT / ".git" / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    if not exclude.exists() or "/.device/" not in exclude.read_text().split():
        with exclude.open("a") as f:
            f.write("/.device/\n")
    whl = CARRY / "whl"
    whl.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *PIP_PLATFORM,
                    "-d", str(whl), *WHEELS], check=True)
    dev = CARRY / "asterisk_dev"
    if not (dev / "dev.tsv").exists():
        subprocess.run([sys.executable, str(ROOT / "training/eval/asterisk.py"), "--out",
                        str(ROOT / "build-eval/asterisk_dev")], check=True)
        dev.mkdir(exist_ok=True)
        shutil.copy(ROOT / "build-eval/asterisk_dev/dev.tsv", dev / "dev.tsv")
        shutil.copytree(ROOT / "build-eval/asterisk_dev/audio", dev / "audio",
                        dirs_exist_ok=True)
    if args.corpus_src:
        shutil.copytree(args.corpus_src, CARRY / "corpus_src", dirs_exist_ok=True)
    size = sum(p.stat().st_size for p in CARRY.rglob("*") if p.is_file())
    print(f"{CARRY}: {size / 2**20:.1f} MiB (the working tree and carried paths travel "
          f"within 64 MiB)")
    return 0


def sh(cmd, env, log):
    log(f"$ {cmd if isinstance(cmd, str) else ' '.join(map(str, cmd))}")
    r = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"failed ({r.returncode}): {cmd}")


def call(args):
    t0 = time.time()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = ROOT / "build-train"
    work.mkdir(exist_ok=True)

    def log(msg):
        line = f"[device_call {time.time() - t0:6.1f} s] {msg}"
        print(line, flush=True)
        with (work / "device_call.log").open("a") as f:
            f.write(line + "\n")

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    site = pathlib.Path("/tmp/site")
    have = subprocess.run([sys.executable, "-c", "import importlib.util as u, sys; sys.exit("
                           "any(u.find_spec(m) is None for m in ('mtla', 'soundfile')))"],
                          env=env).returncode == 0
    if not have and not (site / "mtla").exists():
        wheels = sorted(str(p) for p in (CARRY / "whl").glob("*.whl"))
        sh([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
            "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(site), *wheels],
           env, log)
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(site)
    if shutil.which("nvidia-smi"):
        subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                        "--format=csv,noheader"])

    corpus = pathlib.Path(args.corpus)
    if not (corpus / "train.tsv").exists():
        if not args.corpus_cmd:
            raise SystemExit(f"{corpus}/train.tsv is missing and no --corpus-cmd was given")
        sh(args.corpus_cmd, env, log)
        log(f"corpus built: {sum(1 for _ in open(corpus / 'train.tsv')) - 1} train utterances")

    run = pathlib.Path(args.run)
    dev = CARRY / "asterisk_dev" / "dev.tsv"
    budget = args.budget - (time.time() - t0) - args.export_reserve
    if budget > 30 and not (run / "DONE").exists():
        cmd = [sys.executable, "training/train.py", "--config", args.config, "--corpus",
               str(corpus), "--run", str(run), "--time-budget", f"{budget:.0f}"]
        if dev.exists():
            cmd += ["--dev", str(dev)]
        log(f"$ {' '.join(cmd)}")
        r = subprocess.run(cmd, env=env, cwd=ROOT)
        left = args.budget - (time.time() - t0) - args.export_reserve
        if r.returncode and left > 60:
            # a failure of the fast path (bf16 autocast, resident corpus) must not cost the
            # session: go on in float32 with DataLoader workers, resuming what was saved
            log(f"train.py failed ({r.returncode}); retrying with --amp none --loader workers")
            cmd[cmd.index("--time-budget") + 1] = f"{left:.0f}"
            sh(cmd + ["--amp", "none", "--loader", "workers"], env, log)
        elif r.returncode:
            raise SystemExit(f"train.py failed ({r.returncode})")
    else:
        log(f"no training this call (budget {budget:.0f} s, DONE {(run / 'DONE').exists()})")

    if not (run / "history.json").exists():
        raise SystemExit(f"{run}/history.json is missing: nothing was saved yet")
    hist = json.loads((run / "history.json").read_text())
    by = "dev" if all(h.get("dev") for h in hist["saves"]) else "valid"
    sh([sys.executable, "training/average.py", "--run", str(run), "--best", str(args.average),
        "--by", by, "--out", str(run / "averaged.pt")], env, log)
    sh([sys.executable, "training/export.py", "--checkpoint", str(run / "averaged.pt"),
        "--out", str(out / "model"), "--dtype", "F16", "--max-shard-mib", "15",
        "--note", f"averaged_by={by}"], env, log)
    shutil.copy(run / "history.json", out / "history.json")
    lines = (run / "train.log").read_text().splitlines()
    (out / "train_log.txt").write_text("\n".join(lines[-3000:]) + "\n")
    n = sum(1 for p in out.rglob("*") if p.is_file())
    log(f"done: {n} files in $OUT (at most 8 come back)")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("prepare", help="here: fill .device/ for `carry`")
    p.add_argument("--corpus-src", help="folder the corpus builder needs on the device")
    c = sub.add_parser("call", help="there: one device command")
    c.add_argument("--out", required=True, help="$OUT")
    c.add_argument("--budget", type=float, default=570,
                   help="seconds this command may take in all (its limit is 600)")
    c.add_argument("--export-reserve", type=float, default=60,
                   help="seconds kept for the last validation, averaging and export")
    c.add_argument("--config", default="training/configs/small.json")
    c.add_argument("--corpus", default="build-train/corpus")
    c.add_argument("--run", default="build-train/run")
    c.add_argument("--corpus-cmd", help="shell command that writes CORPUS/train.tsv etc.")
    c.add_argument("--average", type=int, default=8, help="checkpoints to average")
    args = ap.parse_args(argv)
    return prepare(args) if args.what == "prepare" else call(args)


if __name__ == "__main__":
    sys.exit(main())
