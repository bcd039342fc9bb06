#!/usr/bin/env python3
"""Per-word emission delays, AL and LAAL of a simultaneous translation run.

Reads the events of `mtla-st --partial --format jsonl` (a file, or standard input) and treats
each utterance as one SimulEval instance: its source is the utterance's audio, from its start
to its end, and the delay of a target word is the audio heard since the utterance's start
when the word was committed (a partial event's audio_end - start), or the whole source for
words that only came with the final event. Delays are capped at the source length, as in
SimulEval, where nothing is read past the end of the source. They count audio, not compute:
this is SimulEval's non-computation-aware latency.

AL and LAAL are computed as SimulEval defines them (simuleval/evaluator/scorers/
latency_scorer.py, ALScorer and LAALScorer, latency unit "word"):

    AL   = 1/tau sum_{i=1}^{tau} d_i - (i - 1) |X| / |Y|
    LAAL = 1/tau sum_{i=1}^{tau} d_i - (i - 1) |X| / max(|Y|, |Y*|)

with tau the first word whose delay reaches |X| (the source length in ms), |Y| the reference
length in words (--references, one line per utterance) or else the prediction's, |Y*| the
prediction's; when the first delay exceeds |X| the score is that delay. Corpus scores are the
means over utterances. With simuleval installed (pip install simuleval) the per-utterance
scores are checked against its own scorers.

  mtla-st --partial --no-realtime -f jsonl talk.wav > events.jsonl
  python3 bench/partial_latency.py events.jsonl [--references refs.txt] [--json]
"""
import argparse
import json
import sys
import warnings
from types import SimpleNamespace


def read_utterances(lines):
    """Utterances in order: start, end (s), and (delay_ms, word) pairs."""
    open_ = {}
    done = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError as error:
            sys.exit(f"line {number}: not JSON ({error})")
        if e.get("type") not in ("partial", "final"):
            continue
        u = open_.setdefault(e["utterance"], {"start": e["start"], "words": [], "committed": 0})
        if e["type"] == "partial":
            words = e["committed"].split()
            heard_ms = (e["audio_end"] - u["start"]) * 1000.0
            u["words"] += [(heard_ms, w) for w in words[u["committed"]:]]
            u["committed"] = max(u["committed"], len(words))
        else:
            source_ms = (e["end"] - u["start"]) * 1000.0
            words = e["text"].split()
            u["words"] += [(source_ms, w) for w in words[u["committed"]:]]
            u["end"] = e["end"]
            u["source_ms"] = source_ms
            # Nothing is read past the end of the source.
            u["words"] = [(min(d, source_ms), w) for d, w in u["words"]]
            done.append(u)
            del open_[e["utterance"]]
    if open_:
        print(f"warning: {len(open_)} utterance(s) without a final event left out", file=sys.stderr)
    return done


def lagging(delays, source_length, target_length, adaptive):
    """ALScorer.compute / LAALScorer.compute of SimulEval 1.1, for one instance."""
    if delays[0] > source_length:
        return delays[0]
    length = max(len(delays), target_length) if adaptive else target_length
    gamma = length / source_length
    total, tau = 0.0, 0
    for t_minus_1, d in enumerate(delays):
        total += d - t_minus_1 / gamma
        tau = t_minus_1 + 1
        if d >= source_length:
            break
    return total / tau


def simuleval_scores(delays, source_length, reference):
    """SimulEval's own AL and LAAL, or None when it is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydub, imported by simuleval, looks for ffmpeg
            from simuleval.evaluator.scorers.latency_scorer import ALScorer, LAALScorer
    except ImportError:
        return None
    ins = SimpleNamespace(
        delays=delays,
        source_length=source_length,
        reference=reference,
        reference_length=len(reference.split(" ")) if reference is not None else None,
    )
    return ALScorer().compute(ins), LAALScorer().compute(ins)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("events", nargs="?", help="jsonl events (default: standard input)")
    ap.add_argument("--references", help="reference translations, one line per utterance")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    with open(args.events, encoding="utf-8") if args.events else sys.stdin as f:
        utterances = read_utterances(f)
    references = None
    if args.references:
        with open(args.references, encoding="utf-8") as f:
            references = [line.strip() for line in f]
        if len(references) != len(utterances):
            sys.exit(f"{len(references)} references for {len(utterances)} utterances")

    results = []
    for i, u in enumerate(utterances):
        delays = [d for d, _ in u["words"]]
        if not delays:
            continue  # SimulEval skips instances without delays
        reference = references[i] if references else None
        target = len(reference.split(" ")) if reference is not None else len(delays)
        al = lagging(delays, u["source_ms"], target, adaptive=False)
        laal = lagging(delays, u["source_ms"], target, adaptive=True)
        theirs = simuleval_scores(delays, u["source_ms"], reference)
        if theirs is not None and (abs(theirs[0] - al) > 1e-6 or abs(theirs[1] - laal) > 1e-6):
            sys.exit(f"utterance {i}: AL/LAAL {al}/{laal}, SimulEval {theirs[0]}/{theirs[1]}")
        results.append({
            "utterance": i,
            "start": u["start"],
            "end": u["end"],
            "source_ms": u["source_ms"],
            "words": [{"word": w, "delay_ms": d} for d, w in u["words"]],
            "AL": al,
            "LAAL": laal,
        })
    corpus = {
        "utterances": len(results),
        "words": sum(len(r["words"]) for r in results),
        "AL": sum(r["AL"] for r in results) / len(results) if results else None,
        "LAAL": sum(r["LAAL"] for r in results) / len(results) if results else None,
        "checked_with_simuleval": simuleval_scores([1.0], 1.0, None) is not None,
    }
    if args.json:
        json.dump({"utterances": results, "corpus": corpus}, sys.stdout, ensure_ascii=False,
                  indent=1)
        print()
        return
    for r in results:
        print(f"utterance {r['utterance']}: {r['start']:.2f}-{r['end']:.2f} s, "
              f"{len(r['words'])} words, AL {r['AL']:.0f} ms, LAAL {r['LAAL']:.0f} ms")
        print("  " + " ".join(f"{w['word']}@{w['delay_ms']:.0f}" for w in r["words"]))
    if results:
        print(f"corpus: {corpus['utterances']} utterances, {corpus['words']} words, "
              f"AL {corpus['AL']:.0f} ms, LAAL {corpus['LAAL']:.0f} ms"
              + (" (matches SimulEval)" if corpus["checked_with_simuleval"] else ""))
    else:
        print("no utterance with words")


if __name__ == "__main__":
    main()
