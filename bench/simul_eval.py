#!/usr/bin/env python3
"""Latency and quality of mtla-st's simultaneous policies, one table (issue 10).

For each policy (the utterance-level baseline, local agreement, wait-k for several k) every
clip of a set is streamed through `mtla-st --partial --format jsonl`, and the events are scored
as SimulEval scores a speech-to-text instance:

- AL and LAAL (bench/partial_latency.py, checked against SimulEval's own ALScorer and
  LAALScorer when `simuleval` is installed): the delay of a target word is the audio heard
  when it was committed. Clips are streamed with --no-realtime: audio as fast as the engine
  takes it, so these are the non-computation-aware figures.
- AL_CA and LAAL_CA, the computation-aware versions: the same clips paced in real time
  (--realtime), each event stamped with the wall-clock time at which it reached this script's
  end of the pipe; a word's delay is that time less the wall-clock time at which the
  utterance's first sample was due, the pacing starting when the model is loaded (the median
  load time of three runs on 0.2 s of silence is subtracted: a live session has its model
  loaded before anyone speaks). It holds the compute, the pipe and the pacing, as a listener
  would see it. Only on --ca-limit clips (real time costs real time).
- BLEU and chrF (sacrebleu) of the final texts against the references of the set and against
  the offline translation (`mtla-st FILE`, whole utterances, beam as configured).

    python3 bench/simul_eval.py --tsv /var/cache/mtla-st/eval/asterisk_dev/dev.tsv \\
        [--model samples/model] [--binary build/mtla-st] [--ks 1,3,5] [--step 1000] \\
        [--ca-limit 20] [--threads 1] [--json out.json]
    python3 bench/simul_eval.py --files samples/audio/*.wav

--tsv takes a manifest with columns audio (relative to the manifest) and es (the reference);
--files takes clips without references (then only scores against the offline translation).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import partial_latency  # noqa: E402


def read_set(args):
    if args.files:
        return [(os.path.abspath(f), None) for f in args.files]
    base = os.path.dirname(os.path.abspath(args.tsv))
    clips = []
    with open(args.tsv, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            clips.append((os.path.join(base, row["audio"]), row.get("es")))
    return clips[:args.limit] if args.limit else clips


def startup_seconds(args):
    """Median time to load the model and stream 0.2 s of silence (no event comes of it)."""
    import tempfile
    import wave
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "silence.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(b"\0\0" * 3200)
        times = []
        for _ in range(3):
            t0 = time.monotonic()
            run_partial(args, "local-agreement", 0, path, realtime=False, startup=0.0)
            times.append(time.monotonic() - t0)
    return sorted(times)[1]


def run_partial(args, policy, k, clip, realtime, startup=None):
    """Events of one clip: (stamp_s, event), stamp_s the wall time since the pacing began."""
    startup = args.startup if startup is None else startup
    cmd = [args.binary, "--partial", "--format", "jsonl", "--threads", str(args.threads),
           "--partial-step", str(args.step), "--policy", policy,
           "--realtime" if realtime else "--no-realtime", "-q"]
    if args.model:
        cmd += ["--model", args.model]
    if policy == "wait-k":
        cmd += ["--wait-k", str(k)]
    cmd.append(clip)
    events = []
    t0 = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          bufsize=1) as p:
        for line in p.stdout:
            if line.strip():
                events.append((time.monotonic() - t0 - startup, json.loads(line)))
        err = p.stderr.read()
    if p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(cmd), p.returncode, err.strip()))
    return events


def utterances(events, stamped):
    """partial_latency's utterances of one clip; with stamped, delays are wall-clock ones."""
    if not stamped:
        return partial_latency.read_utterances(json.dumps(e) for _, e in events)
    # A word's computation-aware delay: the wall time of the event that committed it less the
    # wall time at which the utterance's first sample was due (the run starts at sample 0).
    out, open_ = [], {}
    for stamp, e in events:
        u = open_.setdefault(e["utterance"], {"start": e["start"], "words": [], "committed": 0})
        delay = (stamp - u["start"]) * 1000.0
        if e["type"] == "partial":
            words = e["committed"].split()
            u["words"] += [(delay, w) for w in words[u["committed"]:]]
            u["committed"] = max(u["committed"], len(words))
        elif e["type"] == "final":
            words = e["text"].split()
            u["words"] += [(delay, w) for w in words[u["committed"]:]]
            u["end"] = e["end"]
            u["source_ms"] = (e["end"] - e["start"]) * 1000.0
            out.append(u)
            del open_[e["utterance"]]
    return out


def clip_latency(utts, reference, computation_aware):
    """AL and LAAL of one clip: its utterances' words as one instance, as SimulEval sees a clip."""
    delays, source_ms, offset = [], 0.0, 0.0
    for u in utts:
        # Utterances of a clip follow each other: delays are counted from the clip's start.
        offset = u["start"] * 1000.0
        delays += [offset + d for d, _ in u["words"]]
        source_ms = u["end"] * 1000.0
    if not delays:
        return None
    if not computation_aware:
        delays = [min(d, source_ms) for d in delays]  # nothing is read past the source's end
    delays = sorted(delays)  # a later utterance's words never come before an earlier one's
    target = len(reference.split()) if reference else len(delays)
    al = partial_latency.lagging(delays, source_ms, target, adaptive=False)
    laal = partial_latency.lagging(delays, source_ms, target, adaptive=True)
    if not computation_aware:
        theirs = partial_latency.simuleval_scores(delays, source_ms, reference)
        if theirs is not None and (abs(theirs[0] - al) > 1e-6 or abs(theirs[1] - laal) > 1e-6):
            sys.exit("AL/LAAL %f/%f differ from SimulEval's %f/%f" % (al, laal, *theirs))
    return al, laal


def offline_texts(args, clips):
    cmd = [args.binary, "--threads", str(args.threads), "-q", "--format", "jsonl"]
    if args.model:
        cmd += ["--model", args.model]
    texts = []
    for clip, _ in clips:
        out = subprocess.run(cmd + [clip], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        if out.returncode != 0:
            sys.exit("%s failed: %s" % (clip, out.stderr.strip()))
        lines = [json.loads(x) for x in out.stdout.splitlines() if x.strip()]
        texts.append(" ".join(x["text"] for x in lines if x.get("text")).strip())
    return texts


def quality(hyps, refs):
    import sacrebleu
    ok = [(h, r) for h, r in zip(hyps, refs) if r is not None]
    if not ok:
        return None, None
    h, r = [x for x, _ in ok], [[y for _, y in ok]]
    return sacrebleu.corpus_bleu(h, r).score, sacrebleu.corpus_chrf(h, r).score


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--tsv", help="manifest with columns audio and es")
    src.add_argument("--files", nargs="+", help="clips without references")
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "build", "mtla-st"))
    ap.add_argument("--model", default=None, help="model directory (default: the bundled one)")
    ap.add_argument("--ks", default="1,3,5", help="the k of wait-k to run")
    ap.add_argument("--step", type=int, default=1000, help="--partial-step in ms")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="only the first N clips")
    ap.add_argument("--ca-limit", type=int, default=10,
                    help="clips streamed in real time for the computation-aware figures")
    ap.add_argument("--json", help="write every figure here too")
    args = ap.parse_args()

    clips = read_set(args)
    refs = [r for _, r in clips]
    t0 = time.time()
    args.startup = startup_seconds(args)
    offline = offline_texts(args, clips)
    policies = [("offline", 0), ("local-agreement", 0)]
    policies += [("wait-k", int(k)) for k in args.ks.split(",") if k]
    rows = []
    for policy, k in policies:
        finals, al, laal, al_ca, laal_ca = [], [], [], [], []
        for i, (clip, ref) in enumerate(clips):
            events = run_partial(args, policy, k, clip, realtime=False)
            finals.append(" ".join(e["text"] for _, e in events if e["type"] == "final").strip())
            lat = clip_latency(utterances(events, False), ref, False)
            if lat:
                al.append(lat[0])
                laal.append(lat[1])
            if i < args.ca_limit:
                lat = clip_latency(utterances(run_partial(args, policy, k, clip, True), True),
                                   ref, True)
                if lat:
                    al_ca.append(lat[0])
                    laal_ca.append(lat[1])
        bleu, chrf = quality(finals, refs)
        bleu_off, chrf_off = quality(finals, offline)
        rows.append({"policy": policy + (" k=%d" % k if policy == "wait-k" else ""),
                     "AL": mean(al), "LAAL": mean(laal), "AL_CA": mean(al_ca),
                     "LAAL_CA": mean(laal_ca), "BLEU": bleu, "chrF": chrf,
                     "BLEU_vs_offline": bleu_off, "chrF_vs_offline": chrf_off,
                     "clips": len(clips), "ca_clips": min(args.ca_limit, len(clips))})
        print("%s done (%.0f s)" % (rows[-1]["policy"], time.time() - t0), file=sys.stderr)
    off_bleu, off_chrf = quality(offline, refs)

    def f(x, fmt="%.0f"):
        return "-" if x is None else fmt % x

    print("| policy | AL ms | LAAL ms | AL_CA ms | LAAL_CA ms | BLEU | chrF | chrF vs offline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("| whole utterance, `mtla-st FILE` | - | - | - | - | %s | %s | 100 |"
          % (f(off_bleu, "%.1f"), f(off_chrf, "%.1f")))
    for r in rows:
        print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["policy"], f(r["AL"]), f(r["LAAL"]), f(r["AL_CA"]), f(r["LAAL_CA"]),
            f(r["BLEU"], "%.1f"), f(r["chrF"], "%.1f"), f(r["chrF_vs_offline"], "%.1f")))
    print("%d clips (computation-aware: first %d, real-time pacing, %.2f s of model loading "
          "subtracted), --partial-step %d ms, %d thread(s), SimulEval check: %s" % (
              len(clips), min(args.ca_limit, len(clips)), args.startup, args.step, args.threads,
              "yes" if partial_latency.simuleval_scores([1.0], 1.0, None) is not None else "no"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"offline": {"BLEU": off_bleu, "chrF": off_chrf}, "rows": rows,
                       "args": vars(args)}, fh, indent=1)


if __name__ == "__main__":
    main()
