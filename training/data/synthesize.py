#!/usr/bin/env python3
"""English speech for the pairs: several voices, random rate and pitch, augmentation, splits.

    python3 synthesize.py --pairs pairs.tsv --out DIR [--root DEBROOT] [--jobs N] [--seed S]
        [--valid 1000] [--test 1000] [--renditions 1] [--holdout-voice flite_rms]
        [--max-seconds T]
    python3 synthesize.py --pairs pairs.tsv --bench N [--root DEBROOT]

Splits are by sentence: a seeded hash of each English sentence orders the pairs; the first
--test go to test_voice, the next --valid to valid, the rest to train (each at most 5% of the
pairs when there are few). test_voice is spoken only by the held-out voice, which (with any
voice of the same speaker, SAME_SPEAKER) never speaks in train or valid; valid uses the
voices of train.

Every utterance's choices (voice, speaking rate 0.85-1.2, pitch -2.5..+2.5 semitones, padding,
augmentation) come from a generator seeded by (--seed, its id), so the corpus does not depend
on --jobs or on the order work is done in. Pitch is changed the way a tape does it: the engine
speaks with durations stretched by pitch/rate, and the samples are then read pitch times
faster (soxr), which leaves durations divided by rate and the pitch (and formants) shifted.

Output in DIR:
  plan.tsv                       every utterance and its parameters
  audio/<split>/<xx>/<id>.flac   16 kHz mono 16-bit FLAC
  train.tsv valid.tsv test_voice.tsv   id, audio (relative to the manifest), n_samples, en,
                                 es, voice, augment
  done.tsv                       utterances finished so far (a rerun continues from it)
  synth_stats.json               counts, hours, speed per voice
With --max-seconds the run stops starting new work after T seconds and exits with status 3
when not everything is done; run it again with the same options to continue.
"""
import argparse
import concurrent.futures
import hashlib
import io
import json
import multiprocessing
import os
import sys
import time

import numpy as np
import soundfile
import soxr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import augment  # noqa: E402
import sources  # noqa: E402
import voices  # noqa: E402
from debroot import DebRoot  # noqa: E402

SR = augment.SR
SPLITS = ["train", "valid", "test_voice"]
MANIFEST_COLUMNS = ["id", "audio", "n_samples", "en", "es", "voice", "augment"]
PLAN_COLUMNS = ["id", "split", "pair", "voice", "rate", "pitch_st", "espeak_pitch", "lead_s", "trail_s", "augment", "en", "es"]
# Voices of one speaker: holding one out holds out the others.
SAME_SPEAKER = {"flite_slt": ["festival_slt"], "festival_slt": ["flite_slt"],
                "flite_kal16": ["festival_kal"], "festival_kal": ["flite_kal16"]}
# Share of the utterances each engine speaks (split evenly over its voices in use).
ENGINE_SHARE = {"flite": 0.35, "festival": 0.30, "espeak": 0.35}
RATE_RANGE = (0.85, 1.2)
PITCH_SEMITONES = 2.5


def rng_for(seed, *key):
    h = hashlib.sha256(("%d:" % seed + ":".join(str(k) for k in key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def unit_hash(seed, key):
    h = hashlib.sha256(("split:%d:%s" % (seed, key)).encode()).digest()
    return int.from_bytes(h[:8], "little") / 2.0 ** 64


def assign_splits(pairs, seed, n_valid, n_test):
    """{pair id: split}: by a seeded hash of the English sentence's dedup key."""
    order = sorted(pairs, key=lambda p: (unit_hash(seed, sources.dedup_key(p["en"])), p["id"]))
    cap = max(1, int(0.05 * len(order))) if len(order) < 40 * max(n_valid, n_test, 1) else None
    if cap is not None:
        n_valid, n_test = min(n_valid, cap), min(n_test, cap)
    out = {}
    for i, p in enumerate(order):
        out[p["id"]] = "test_voice" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out


def seen_voices(holdout):
    held = {holdout} | set(SAME_SPEAKER.get(holdout, []))
    return [v for v in voices.all_voices() if v not in held]


def voice_weights(vs):
    by_engine = {}
    for v in vs:
        by_engine.setdefault(voices.engine_of(v), []).append(v)
    total = sum(ENGINE_SHARE[e] for e in by_engine)
    return np.array([ENGINE_SHARE[voices.engine_of(v)] / total / len(by_engine[voices.engine_of(v)])
                     for v in vs])


def make_plan(pairs, seed, n_valid, n_test, renditions, holdout):
    if holdout not in voices.all_voices():
        raise SystemExit("unknown --holdout-voice %s; voices: %s" % (holdout, ", ".join(voices.all_voices()[:8])))
    split_of = assign_splits(pairs, seed, n_valid, n_test)
    seen = seen_voices(holdout)
    weights = voice_weights(seen)
    plan = []
    for p in sorted(pairs, key=lambda p: p["id"]):
        split = split_of[p["id"]]
        n = renditions if split == "train" else 1
        for r in range(n):
            uid = "%s-%d" % (p["id"], r)
            rng = rng_for(seed, "plan", uid)
            voice = holdout if split == "test_voice" else seen[int(rng.choice(len(seen), p=weights))]
            plan.append({
                "id": uid, "split": split, "pair": p["id"], "voice": voice,
                "rate": round(float(rng.uniform(*RATE_RANGE)), 3),
                "pitch_st": round(float(rng.uniform(-PITCH_SEMITONES, PITCH_SEMITONES)), 2),
                "espeak_pitch": int(rng.integers(35, 66)),
                "lead_s": round(float(rng.uniform(0.05, 0.5)), 3),
                "trail_s": round(float(rng.uniform(0.1, 0.6)), 3),
                "augment": augment.choose(rng), "en": p["en"], "es": p["es"],
            })
    return plan


def audio_relpath(job):
    return "audio/%s/%s/%s.flac" % (job["split"], hashlib.sha1(job["id"].encode()).hexdigest()[:2], job["id"])


# --------------------------------------------------------------------------------------------
# Work done in the worker processes
# --------------------------------------------------------------------------------------------

_engines = None


def _init_worker(root_dir):
    global _engines
    _engines = voices.Engines(DebRoot(root_dir))


def engine_stretch(job):
    """Duration stretch for the engine: pitch/rate (see the module's docstring)."""
    return 2.0 ** (float(job["pitch_st"]) / 12.0) / float(job["rate"])


def render(job, raw, seed):
    """Engine output (int16, rate) -> int16 at 16 kHz with pitch, padding, augmentation, level."""
    x, sr = raw
    pitch = 2.0 ** (float(job["pitch_st"]) / 12.0)
    y = soxr.resample(x.astype(np.float32) / 32768.0, sr * pitch, SR).astype(np.float64)
    rng = rng_for(seed, "audio", job["id"])
    y = np.concatenate([np.zeros(int(float(job["lead_s"]) * SR)), y, np.zeros(int(float(job["trail_s"]) * SR))])
    y, desc = augment.apply(rng, y, job["augment"])
    y = augment.normalise_level(rng, y)
    return np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16), desc


def _synth_chunk(args):
    jobs, out_dir, seed = args
    results = []
    t0 = time.perf_counter()
    fest = [j for j in jobs if voices.engine_of(j["voice"]) == "festival"]
    raws = {}
    if fest:
        try:
            got = _engines.festival.synth_batch(
                [(j["voice"].split("_", 1)[1], j["en"], engine_stretch(j)) for j in fest])
        except RuntimeError as e:
            print("synthesis failed for %d festival utterances: %s" % (len(fest), e), file=sys.stderr)
            got = [None] * len(fest)
        for j, g in zip(fest, got):
            raws[j["id"]] = g
    fest_time = time.perf_counter() - t0
    for j in jobs:
        t1 = time.perf_counter()
        engine, name = j["voice"].split("_", 1)
        try:
            if engine == "flite":
                raw = _engines.flite.synth(name, j["en"], engine_stretch(j),
                                           int(rng_for(seed, "flite", j["id"]).integers(2 ** 31)))
            elif engine == "espeak":
                raw = _engines.espeak.synth(name, j["en"], engine_stretch(j), int(j["espeak_pitch"]))
            else:
                raw = raws.get(j["id"])
        except RuntimeError as e:
            print("synthesis failed for %s: %s" % (j["id"], e), file=sys.stderr)
            raw = None
        # Festival spoke the whole chunk at once: each of its utterances gets an equal share.
        synth_s = (time.perf_counter() - t1) if engine != "festival" else fest_time / max(1, len(fest))
        t_render = time.perf_counter()
        if raw is None or len(raw[0]) < raw[1] * 0.2:
            results.append({"id": j["id"], "ok": False, "voice": j["voice"]})
            continue
        pcm, desc = render(j, raw, seed)
        path = os.path.join(out_dir, audio_relpath(j))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp.flac"
        soundfile.write(tmp, pcm, SR, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
        results.append({"id": j["id"], "ok": True, "voice": j["voice"], "n_samples": int(len(pcm)),
                        "augment": desc, "synth_s": synth_s,
                        "total_s": synth_s + time.perf_counter() - t_render})
    return results


# --------------------------------------------------------------------------------------------


def write_tsv(path, columns, rows):
    sources.write_tsv(path, columns, [[r[c] for c in columns] for r in rows])


def read_done(path):
    done = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 4:
                    done[parts[0]] = {"n_samples": int(parts[1]), "augment": parts[2], "voice": parts[3]}
    return done


def chunks_of(plan, size):
    # Festival jobs of one voice together, so one festival process speaks a whole chunk.
    order = sorted(plan, key=lambda j: (voices.engine_of(j["voice"]) != "festival", j["voice"], j["id"]))
    return [order[i:i + size] for i in range(0, len(order), size)]


def run(args):
    root = DebRoot(args.root)
    pairs = sources_read(args.pairs)
    os.makedirs(args.out, exist_ok=True)
    plan = make_plan(pairs, args.seed, args.valid, args.test, args.renditions, args.holdout_voice)
    write_tsv(os.path.join(args.out, "plan.tsv"), PLAN_COLUMNS, plan)
    done_path = os.path.join(args.out, "done.tsv")
    index = {j["id"]: j for j in plan}
    done = {k: v for k, v in read_done(done_path).items()
            if k in index and os.path.exists(os.path.join(args.out, audio_relpath(index[k])))}
    todo = [j for j in plan if j["id"] not in done]
    print("%d utterances planned, %d already done, %d to make with %d processes"
          % (len(plan), len(done), len(todo), args.jobs), file=sys.stderr)

    t0 = time.time()
    per_voice = {}
    failed = []
    stopped = False
    chunks = chunks_of(todo, args.chunk)
    ctx = multiprocessing.get_context("fork")
    with open(done_path, "a", encoding="utf-8") as done_f, \
            concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx, initializer=_init_worker,
                                                   initargs=(root.root,)) as pool:
        pending = set()
        next_chunk = 0
        finished = 0
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < 2 * args.jobs:
                if args.max_seconds and time.time() - t0 > args.max_seconds:
                    stopped = True
                    break
                pending.add(pool.submit(_synth_chunk, (chunks[next_chunk], args.out, args.seed)))
                next_chunk += 1
            if stopped and not pending:
                break
            if not pending:
                continue
            ready, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in ready:
                for r in fut.result():
                    if not r["ok"]:
                        failed.append(r["id"])
                        continue
                    done[r["id"]] = r
                    done_f.write("%s\t%d\t%s\t%s\n" % (r["id"], r["n_samples"], r["augment"], r["voice"]))
                    v = per_voice.setdefault(r["voice"], [0, 0.0, 0.0, 0.0])
                    v[0] += 1
                    v[1] += r["n_samples"] / SR
                    v[2] += r["synth_s"]
                    v[3] += r["total_s"]
                    finished += 1
            done_f.flush()
            if finished and (finished % 2000 < args.chunk or not pending):
                el = time.time() - t0
                print("  %d/%d made, %.0f s, %.1f utterances/s" % (finished, len(todo), el, finished / max(el, 1e-9)),
                      file=sys.stderr)
            if stopped and not pending:
                break
    wall = time.time() - t0

    stats = summarise(plan, done, per_voice, wall, args, failed)
    with open(os.path.join(args.out, "synth_stats.json"), "w") as f:
        json.dump(stats, f, indent=1, sort_keys=True)
    if stopped:
        print("%d of %d utterances made (time limit): run again to continue"
              % (len(done), len(plan)), file=sys.stderr)
        return 3
    # An utterance whose synthesis failed (reported above) is left out of the manifests.
    ok_plan = [j for j in plan if j["id"] in done]
    for split in SPLITS:
        rows = []
        for j in ok_plan:
            if j["split"] != split:
                continue
            d = done[j["id"]]
            rows.append({"id": j["id"], "audio": audio_relpath(j), "n_samples": d["n_samples"],
                         "en": j["en"], "es": j["es"], "voice": j["voice"], "augment": d["augment"]})
        write_tsv(os.path.join(args.out, split + ".tsv"), MANIFEST_COLUMNS, rows)
    print(json.dumps({k: stats[k] for k in ("utterances", "hours", "wall_seconds_this_run", "failed")}),
          file=sys.stderr)
    return 0


def sources_read(path):
    return sources.read_tsv(path, ["id", "en", "es", "source"])


def summarise(plan, done, per_voice, wall, args, failed):
    by_split = {s: {"utterances": 0, "hours": 0.0} for s in SPLITS}
    for j in plan:
        if j["id"] in done:
            b = by_split[j["split"]]
            b["utterances"] += 1
            b["hours"] += done[j["id"]]["n_samples"] / SR / 3600
    speed = {}
    for v, (n, audio_s, synth_s, total_s) in sorted(per_voice.items()):
        speed[v] = {"utterances": n, "audio_s": round(audio_s, 1),
                    "engine_x_realtime": round(audio_s / synth_s, 1) if synth_s > 0 else None,
                    "with_augment_and_flac_x_realtime": round(audio_s / total_s, 1) if total_s > 0 else None}
    engines = {}
    for v, s in speed.items():
        e = voices.engine_of(v) if voices.engine_of(v) != "flite" else v
        if voices.engine_of(v) == "espeak":
            e = "espeak (all accents and variants)"
        acc = engines.setdefault(e, [0.0, 0.0, 0.0])
        n, audio_s, synth_s, total_s = per_voice[v]
        acc[0] += audio_s
        acc[1] += synth_s
        acc[2] += total_s
    return {
        "utterances": sum(b["utterances"] for b in by_split.values()),
        "hours": round(sum(b["hours"] for b in by_split.values()), 3),
        "splits": {s: {"utterances": b["utterances"], "hours": round(b["hours"], 3)} for s, b in by_split.items()},
        "wall_seconds_this_run": round(wall, 1), "jobs": args.jobs,
        "seed": args.seed, "holdout_voice": args.holdout_voice, "renditions": args.renditions,
        "failed": failed,
        "speed_per_voice_this_run": speed,
        "speed_per_engine_this_run": {e: {"engine_x_realtime": round(a / s, 1) if s else None,
                                          "with_augment_and_flac_x_realtime": round(a / t, 1) if t else None}
                                      for e, (a, s, t) in sorted(engines.items())},
    }


def bench(args):
    """Engine speed, one process, clean speech at rate 1: x real time per voice."""
    root = DebRoot(args.root)
    pairs = sources_read(args.pairs)
    rng = np.random.default_rng(args.seed)
    texts = [pairs[i]["en"] for i in rng.choice(len(pairs), min(args.bench, len(pairs)), replace=False)]
    eng = voices.Engines(root)
    out = {}
    bench_voices = ["flite_" + v for v in voices.FLITE_VOICES] + \
        ["festival_" + v for v in sorted(voices.FESTIVAL_VOICES)] + \
        ["espeak_en-us+m3", "espeak_en+f2", "espeak_en-gb-scotland+klatt"]
    for v in bench_voices:
        engine, name = v.split("_", 1)
        t0 = time.perf_counter()
        if engine == "festival":
            raws = eng.festival.synth_batch([(name, t, 1.0) for t in texts])
        elif engine == "flite":
            raws = [eng.flite.synth(name, t, 1.0) for t in texts]
        else:
            raws = [eng.espeak.synth(name, t, 1.0) for t in texts]
        dt = time.perf_counter() - t0
        audio = sum(len(x) / sr for x, sr in raws if x is not None)
        t1 = time.perf_counter()
        for i, (x, sr) in enumerate(raws):
            job = {"id": "bench-%d" % i, "pitch_st": 0.0, "lead_s": 0.1, "trail_s": 0.1, "augment": "clean"}
            pcm, _ = render(job, (x, sr), args.seed)
            soundfile.write(io.BytesIO(), pcm, SR, format="FLAC", subtype="PCM_16")
        dt2 = time.perf_counter() - t1
        out[v] = {"sentences": len(texts), "audio_s": round(audio, 1), "engine_s": round(dt, 2),
                  "engine_x_realtime": round(audio / dt, 1),
                  "engine_rate_flac_x_realtime": round(audio / (dt + dt2), 1)}
        print("%-28s %6.1f s audio in %6.2f s: x%.0f real time (x%.0f with resampling and FLAC)"
              % (v, audio, dt, audio / dt, audio / (dt + dt2)), file=sys.stderr)
    # Augmentation cost alone, on 16 kHz audio of the last voice.
    t0 = time.perf_counter()
    total = 0.0
    for i, (x, sr) in enumerate(raws):
        for name in [p[0] for p in augment.PLAN]:
            y = soxr.resample(x.astype(np.float32) / 32768.0, sr, SR).astype(np.float64)
            augment.apply(rng_for(args.seed, "bench", i, name), y, name)
            total += len(y) / SR
    dt = time.perf_counter() - t0
    out["augment_all_kinds_x_realtime"] = round(total / dt, 1)
    print("augmentation (each kind once): x%.0f real time" % (total / dt), file=sys.stderr)
    if args.bench_out:
        with open(args.bench_out, "w") as f:
            json.dump(out, f, indent=1, sort_keys=True)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", required=True, help="pairs TSV from translate.py (id, en, es, source)")
    ap.add_argument("--out", help="output folder")
    ap.add_argument("--root", default=None, help="folder the .debs were unpacked into (default $MTLA_DEB_ROOT or /)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--valid", type=int, default=1000, help="sentences in valid")
    ap.add_argument("--test", type=int, default=1000, help="sentences in test_voice")
    ap.add_argument("--renditions", type=int, default=1, help="utterances per train sentence (voices differ)")
    ap.add_argument("--holdout-voice", default="flite_rms", help="the voice of test_voice, never in train/valid")
    ap.add_argument("--chunk", type=int, default=32, help="utterances per task")
    ap.add_argument("--max-seconds", type=float, default=0, help="stop starting work after this long (0: no limit)")
    ap.add_argument("--bench", type=int, default=0, metavar="N", help="measure engine speed on N sentences and exit")
    ap.add_argument("--bench-out", help="JSON file for --bench")
    args = ap.parse_args(argv)
    if args.bench:
        return bench(args)
    if not args.out:
        ap.error("--out is required")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
