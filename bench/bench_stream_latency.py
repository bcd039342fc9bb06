#!/usr/bin/env python3
"""Live-stream latency of `mtla-st -`: from the end of an utterance in the audio to its
translation on stdout.

Feeds tests/data/vad/speech_with_pauses.wav (four sentences; their word-aligned ends are in
speech_with_pauses.tsv) to `mtla-st --raw -` through a pipe in 20 ms chunks at real-time pace,
as arecord would, and timestamps each line as it arrives. Latency of utterance i = arrival of
line i - the moment the sample at the utterance's end was written. It includes the VAD's wait
for a pause (min_silence_ms, 500 ms by default), the frame of audio in flight, and the
translation itself.

  python3 bench/bench_stream_latency.py --model DIR [--beam N] [--max-len-b N] [--mtla-st build/mtla-st]
"""
import argparse
import pathlib
import statistics
import subprocess
import threading
import time
import wave

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--beam", default="5")
    ap.add_argument("--threads", default="0")
    ap.add_argument("--max-len-b", default=None,
                    help="cap the tokens per utterance (random-weight models never stop early)")
    ap.add_argument("--mtla-st", default=str(ROOT / "build" / "mtla-st"))
    args = ap.parse_args()

    wav = ROOT / "tests/data/vad/speech_with_pauses.wav"
    with wave.open(str(wav)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = w.readframes(w.getnframes())
    ends = []
    for line in (ROOT / "tests/data/vad/speech_with_pauses.tsv").read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and not line.startswith("#"):
            try:
                ends.append(float(fields[1]))
            except ValueError:
                pass  # header

    cmd = [args.mtla_st, "--model", args.model, "--beam", args.beam, "--threads", args.threads]
    if args.max_len_b:
        cmd += ["--max-len-b", args.max_len_b]
    proc = subprocess.Popen(cmd + ["--raw", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    arrivals = []

    def reader():
        for _ in iter(proc.stdout.readline, b""):
            arrivals.append(time.monotonic())

    t = threading.Thread(target=reader)
    t.start()
    chunk = 320 * 2  # 20 ms
    t0 = time.monotonic()
    for i in range(0, len(pcm), chunk):
        due = t0 + i / 32000.0
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        proc.stdin.write(pcm[i:i + chunk])
        proc.stdin.flush()
    # keep the pipe open (a live microphone), 2 s of silence more, then end
    silence = bytes(chunk)
    for k in range(100):
        time.sleep(max(0.0, t0 + len(pcm) / 32000.0 + (k + 1) * 0.02 - time.monotonic()))
        proc.stdin.write(silence)
        proc.stdin.flush()
    proc.stdin.close()
    t.join()
    proc.wait()
    lat = [a - (t0 + e) for a, e in zip(arrivals, ends)]
    print(f"model {args.model}, beam {args.beam}: {len(arrivals)} lines for {len(ends)} "
          f"utterances")
    for i, (e, l) in enumerate(zip(ends, lat)):
        print(f"  utterance {i + 1} ends at {e:6.2f} s: line after {l * 1000:6.0f} ms")
    if lat:
        print(f"  latency mean {statistics.mean(lat) * 1000:.0f} ms, "
              f"max {max(lat) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
