#!/usr/bin/env python3
"""bench_oracle: bench/bench_engine.c's measurements, made with the PyTorch oracle
(tools/reference) on the same model directory and features, with the same TSV columns
(engine "torch").

  python3 bench/bench_oracle.py [--threads T] [--dtype fp32|bf16] [--beams 1,5,50] [--steps N]
      [--encoder-reps R] [--decode-reps R] [--profile] [--no-header] MODEL_DIR FEATURES.npy

FEATURES.npy: raw fbank (frames x 80, before CMVN), as `mtla-st features` writes it; the
model's CMVN is applied outside the timed part, as bench_engine does.

- enc_ms, enc_best_ms: median and fastest of R runs of reference.encoder.encode + project
  (torch.no_grad), after one untimed run.
- step_ms: reference.beam.beam_search with min_len = max_len = N (exactly N + 1 decoder
  calls), wall time / (N + 1); median over R searches.
- cache bytes: the oracle keeps every hypothesis's whole cache, the prompt's keys included
  (fairseq style: concatenated per step, reordered with index_select), so shared_B is 0 and
  hyp_B@L is the sum of nbytes of every tensor in the decoder state (all layers) over the
  number of hypotheses, after the start token and L text tokens. Measured on a
  one-hypothesis decode for L = N/4, N/2, N, and checked against the beam search's final state.
  For MTLA s >= 2 the state is the authors' module's (prev_kv_t, prev_k_pe and a per-row
  step counter, infer_steps, 4 bytes per hypothesis per layer).

--dtype bf16 runs the encoder and the searches under torch.autocast("cpu", torch.bfloat16),
PyTorch's own reduced-precision CPU inference: linear layers and matrix products in bfloat16
(oneDNN), the rest in float32. The dtype column says which; weight_MiB and rss_MiB (the
engine's columns) are left empty ("-").

torch.set_num_threads(T) and set_num_interop_threads(1) before anything runs.
"""
import contextlib
import argparse
import pathlib
import statistics
import sys
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from reference.beam import beam_search  # noqa: E402
from reference.encoder import encode, normalize_features, project  # noqa: E402
from reference.model import SpeechTranslator  # noqa: E402


class TimedDecoder:
    """The oracle's PromptDecoder with its start/step/reorder timed and its last state kept."""

    def __init__(self, decoder):
        self.inner, self.cfg = decoder, decoder.cfg
        self.state = None
        self.seconds = {"start": 0.0, "step": 0.0, "reorder": 0.0}

    def _timed(self, part, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.seconds[part] += time.perf_counter() - t0
        return out

    def start(self, P, batch):
        lp, self.state = self._timed("start", self.inner.start, P, batch)
        return lp, self.state

    def step(self, tokens, state):
        return self._timed("step", self.inner.step, tokens, state)

    def reorder(self, state, idx):
        return self._timed("reorder", self.inner.reorder, state, idx)


def state_bytes(obj):
    """Bytes of every tensor reachable from a decoder state (dicts, lists, tensors)."""
    if torch.is_tensor(obj):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(state_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(state_bytes(v) for v in obj)
    return 0


def cache_curve(decoder, P, lengths, vocab_size):
    """Per-hypothesis state bytes after the start token and L text tokens, one hypothesis."""
    _, state = decoder.start(P, 1)
    out, step = {}, 0
    for step in range(1, max(lengths) + 1):
        token = 4 + (step * 7919) % (vocab_size - 4)
        decoder.step(torch.tensor([token]), state)
        if step in lengths:
            out[step] = state_bytes(state["caches"])
    return [out[L] for L in lengths]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("features")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--beams", default="1,5,50")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--encoder-reps", type=int, default=3)
    ap.add_argument("--decode-reps", type=int, default=1)
    ap.add_argument("--profile", action="store_true",
                    help="time decoder start/step/reorder and the search around them (stderr)")
    ap.add_argument("--no-header", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    beams = [int(b) for b in a.beams.split(",")]
    N = a.steps

    m = SpeechTranslator(a.model_dir)
    cfg, W = m.cfg, m.W
    fbank = np.load(a.features)
    x = normalize_features(fbank, cfg, W)
    name = pathlib.Path(a.model_dir).resolve().name
    att = cfg["decoder"]["attention"]
    s = att.get("down_rate", 1)

    precision = (torch.autocast("cpu", dtype=torch.bfloat16) if a.dtype == "bf16"
                 else contextlib.nullcontext())
    with torch.no_grad(), precision:
        times = []
        project(encode(x, cfg, W), cfg, W)  # untimed, as bench_engine's first run
        for _ in range(a.encoder_reps):
            t0 = time.perf_counter()
            P = project(encode(x, cfg, W), cfg, W)
            times.append(time.perf_counter() - t0)
        enc_ms, enc_best_ms = 1e3 * statistics.median(times), 1e3 * min(times)

        lengths = [N // 4, N // 2, N]
        per_hyp = cache_curve(m.decoder, P, lengths, cfg["vocab"]["size"])

        if not a.no_header:
            print("\t".join(["engine", "model", "attention", "s", "threads", "beam", "steps",
                             "frames", "prompt", "enc_ms", "enc_best_ms", "step_ms", "decode_s",
                             "shared_B"] +
                            [f"hyp_B@{L}" for L in lengths] + [f"total_B@{L}" for L in lengths] +
                            ["dtype", "weight_MiB", "rss_MiB"]))
        for B in beams:
            times = []
            for _ in range(a.decode_reps):
                dec = TimedDecoder(m.decoder)
                t0 = time.perf_counter()
                hyps = beam_search(dec, P, B, N, min_len=N, lenpen=1.0)
                times.append(time.perf_counter() - t0)
                if len(hyps[0]["tokens"]) != N:
                    sys.exit(f"bench_oracle: beam {B} gave {len(hyps[0]['tokens'])} tokens, "
                             f"expected {N}")
            total = statistics.median(times)
            final = state_bytes(dec.state["caches"])
            if final != B * per_hyp[-1]:
                print(f"bench_oracle: warning: beam {B} ends with {final / B:.0f} bytes per "
                      f"hypothesis, the one-hypothesis decode had {per_hyp[-1]}", file=sys.stderr)
            if a.profile:
                wall = times[-1]
                parts = dict(dec.seconds)
                parts["outside start/step/reorder"] = wall - sum(dec.seconds.values())
                print(f"# profile {name} beam {B}: {N + 1} decoder calls, "
                      f"{1e3 * wall / (N + 1):.2f} ms per call", file=sys.stderr)
                for k, v in parts.items():
                    print(f"#   {k:30s} {1e3 * v / (N + 1):8.2f} ms/call {100 * v / wall:5.1f} %",
                          file=sys.stderr)
            row = ["torch", name, att["type"], s, a.threads, B, N, len(fbank), P.shape[0],
                   f"{enc_ms:.1f}", f"{enc_best_ms:.1f}", f"{1e3 * total / (N + 1):.3f}",
                   f"{total:.3f}", 0]
            row += per_hyp + [f"{h:.0f}" for h in per_hyp] + [a.dtype, "-", "-"]
            print("\t".join(str(v) for v in row), flush=True)


if __name__ == "__main__":
    main()
