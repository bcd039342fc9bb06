#!/usr/bin/env python3
"""Throughput of mtla-st serve (docs/serve.md), against running `mtla-st FILE` once per request.

    bench/serve_load.py [--bin build/mtla-st] [--model DIR] [--requests 64] [--concurrency 4]
                        [--workers 2] [--threads 1] [FILE...]

Starts the server on a free loopback port with the model (default: the bundled one), sends
REQUESTS POST /v1/audio/translations (response_format json) CONCURRENCY at a time, cycling over
the FILEs (default: the five samples/audio clips), and reports requests/s, the real-time factor
(wall time / seconds of audio served: below 1 is faster than real time), latency percentiles
and the server's RSS before and after. Then the same requests as subprocesses, CONCURRENCY
`mtla-st --model DIR --threads T FILE` at a time, each loading the model: what a user without
the server would run. Every answer is checked against the first one for its file.
"""
import argparse
import concurrent.futures
import glob
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seconds_of(path):
    with wave.open(path) as w:
        return w.getnframes() / w.getframerate()


def form(path, boundary="mtlaBenchBoundary"):
    with open(path, "rb") as f:
        data = f.read()
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
            f"{os.path.basename(path)}\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "mtla-st"))
    ap.add_argument("--model", default=os.path.join(ROOT, "samples", "model"))
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per translator")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = a.files or sorted(glob.glob(os.path.join(ROOT, "samples/audio/*.wav")))
    bodies = [form(f) for f in files]
    audio = [seconds_of(f) for f in files]
    jobs = list(range(a.requests))
    served = sum(audio[i % len(files)] for i in jobs)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([a.bin, "serve", "--port", str(port), "--model", a.model,
                               "--workers", str(a.workers), "--threads", str(a.threads),
                               "--queue", str(max(16, a.concurrency))],
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.05)

        def one(i):
            body, boundary = bodies[i % len(files)]
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            t0 = time.monotonic()
            c.request("POST", "/v1/audio/translations", body,
                      {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            r = c.getresponse()
            text = r.read()
            c.close()
            if r.status != 200:
                sys.exit(f"request {i}: {r.status} {text[:200]!r}")
            return i, json.loads(text)["text"], time.monotonic() - t0

        expected = {i: one(i)[1] for i in range(len(files))}  # also warms the workers up
        rss_before = rss_mb(server.pid)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(a.concurrency) as pool:
            results = list(pool.map(one, jobs))
        wall = time.monotonic() - t0
        rss_after = rss_mb(server.pid)
        bad = [i for i, text, _ in results if text != expected[i % len(files)]]
        latency = [t for _, _, t in results]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    def cli(i):
        r = subprocess.run([a.bin, "--model", a.model, "--threads", str(a.threads), "--quiet",
                            files[i % len(files)]], capture_output=True, check=True)
        return r.stdout.decode().strip()

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.concurrency) as pool:
        cli_texts = list(pool.map(cli, jobs))
    cli_wall = time.monotonic() - t0
    cli_bad = [i for i in jobs if cli_texts[i] != expected[i % len(files)]]

    print(f"{a.requests} requests, {a.concurrency} at a time, {len(files)} files, "
          f"{served:.1f} s of audio; model {a.model}")
    print(f"mtla-st serve, {a.workers} workers x {a.threads} threads: {wall:.2f} s, "
          f"{a.requests / wall:.2f} requests/s, real-time factor {wall / served:.4f}; latency "
          f"p50 {percentile(latency, 50) * 1000:.0f} ms, p95 {percentile(latency, 95) * 1000:.0f}"
          f" ms; RSS {rss_before:.1f} MB before, {rss_after:.1f} MB after; "
          f"{len(bad)} answers differ")
    print(f"mtla-st FILE per request, {a.concurrency} processes x {a.threads} threads: "
          f"{cli_wall:.2f} s, {a.requests / cli_wall:.2f} requests/s, real-time factor "
          f"{cli_wall / served:.4f}; {len(cli_bad)} answers differ from the server's")
    if bad or cli_bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
