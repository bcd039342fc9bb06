"""Corpus manifests -> fbank feature cache -> length-bucketed batches.

Manifests (written by training/data/): TSV with a header and the columns
id, audio (path relative to the manifest, 16 kHz mono FLAC), n_samples, en, es, voice, augment.

Features are SPEC.md section 2's: torchaudio.compliance.kaldi.fbank(x * 32768,
num_mel_bins=80) with its defaults (25 ms / 10 ms, snip_edges, dither 0, DC removal,
pre-emphasis 0.97, povey window, 20 Hz .. Nyquist, log floor FLT_EPSILON), then utterance
CMVN with float64 statistics and a variance floor of 1e-10 (tools/reference's
normalize_features, i.e. what the engine does). The raw log-mel features are computed once
per manifest into a cache (one .npy of all frames, float16 by default, plus an index), so a
training run that is resumed in another 10-minute command does not redo them.

With a Whisper encoder (encoder type "whisper", training/whisper.py) the cache holds instead
the frozen encoder's OUTPUT for each utterance, (floor((N/160 - 1)/2) + 1, 384) float16 rows
from Whisper's log-mel of the utterance alone (no padding to 30 s, as the engine runs it), and
no normalisation follows: the trainer then trains only the projector and the decoder.
"""
import csv
import json
import math
import os
import pathlib

import numpy as np

COLUMNS = ("id", "audio", "n_samples", "en", "es", "voice", "augment")
SAMPLE_RATE = 16000
N_MEL = 80


def read_manifest(path):
    """Rows as dicts; 'audio' made absolute (relative to the manifest's folder)."""
    path = pathlib.Path(path)
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing} (header {reader.fieldnames})")
        for r in reader:
            r = dict(r)
            r["audio"] = str((path.parent / r["audio"]).resolve())
            r["n_samples"] = int(r["n_samples"])
            rows.append(r)
    return rows


def num_frames(n_samples):
    """Kaldi snip_edges frame count for 25 ms / 10 ms at 16 kHz."""
    return 0 if n_samples < 400 else 1 + (n_samples - 400) // 160


def read_audio(path):
    """float32 mono samples in [-1, 1] at 16 kHz."""
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"{path}: {sr} Hz, the corpus must be {SAMPLE_RATE} Hz")
    return x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]


def fbank(samples):
    """(N,) float samples in [-1, 1] -> (T, 80) float32 log-mel (SPEC.md section 2)."""
    import torch
    from torchaudio.compliance import kaldi

    x = torch.as_tensor(np.asarray(samples, dtype=np.float32))[None] * 32768.0
    return kaldi.fbank(x, num_mel_bins=N_MEL, sample_frequency=SAMPLE_RATE,
                       dither=0.0).numpy()


def utterance_cmvn(x):
    """Per-dimension (x - mean) / sqrt(max(E[x^2] - mean^2, 1e-10)), float64 statistics."""
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=0)
    var = (x64 * x64).mean(axis=0) - mean * mean
    return ((x64 - mean) * (1.0 / np.sqrt(np.maximum(var, 1e-10)))).astype(np.float32)


CACHE_KINDS = ("fbank", "whisper")
WHISPER_MAX_POSITIONS = 1500    # tiny.en's encoder/position_encodings rows
_WHISPER = {}   # the frozen encoder, loaded once per process (before the pool forks)


def whisper_encoder():
    if "enc" not in _WHISPER:
        from training.whisper import load_ct2_encoder
        _WHISPER["enc"], _WHISPER["n_mels"] = load_ct2_encoder()
    return _WHISPER["enc"], _WHISPER["n_mels"]


def cache_frames(kind, n_samples):
    """Frames of the cache entry of an utterance; 0 (the utterance is left out) when it is
    longer than a Whisper encoder takes (30 s: the engine cuts such audio at pauses first)."""
    if kind == "fbank":
        return num_frames(n_samples)
    mel = n_samples // 160
    s = 0 if mel <= 0 else (mel - 1) // 2 + 1
    return s if s <= WHISPER_MAX_POSITIONS else 0


def cache_dim(kind):
    return N_MEL if kind == "fbank" else whisper_encoder()[0].config["d_model"]


def whisper_features(samples):
    """Samples -> the frozen Whisper encoder's output for the utterance alone (S, E)."""
    import torch

    from training.whisper import log_mel
    enc, n_mels = whisper_encoder()
    mel = log_mel(samples, n_mels)
    with torch.inference_mode():
        return enc(torch.from_numpy(mel)[None])[0].numpy()


def _features_job(args):
    i, path, kind = args
    import torch
    torch.set_num_threads(1)
    x = read_audio(path)
    return i, fbank(x) if kind == "fbank" else whisper_features(x)


def build_feature_cache(manifest, cache_dir, workers=None, dtype="float16", log=print,
                        kind="fbank"):
    """Computes (or finds) the feature cache of a manifest; returns its index path. kind
    "fbank": Kaldi fbank frames; "whisper": the frozen Whisper encoder's outputs."""
    if kind not in CACHE_KINDS:
        raise ValueError(f"cache kind {kind!r}: one of {CACHE_KINDS}")
    manifest = pathlib.Path(manifest)
    cache_dir = pathlib.Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = manifest.stem
    index_path = cache_dir / f"{stem}.index.json"
    feats_path = cache_dir / f"{stem}.feats.npy"
    st = manifest.stat()
    stamp = {"manifest": str(manifest.resolve()), "size": st.st_size, "mtime": st.st_mtime,
             "dtype": dtype, "kind": kind}
    if kind == "fbank":
        del stamp["kind"]           # caches made before kinds existed stay valid
    if index_path.exists():
        idx = json.loads(index_path.read_text())
        if idx.get("stamp") == stamp and feats_path.exists():
            return index_path
    rows = read_manifest(manifest)
    frames = [cache_frames(kind, r["n_samples"]) for r in rows]
    dim = cache_dim(kind)
    offsets = np.concatenate([[0], np.cumsum(frames)]).astype(np.int64)
    tmp = cache_dir / f"{stem}.feats.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype),
                                    shape=(int(offsets[-1]), dim))
    jobs = [(i, r["audio"], kind) for i, r in enumerate(rows) if frames[i] > 0]
    workers = workers or max(1, (os.cpu_count() or 1))
    done = 0
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        ctx = mp.get_context("fork")
        with ctx.Pool(workers) as pool:
            results = pool.imap_unordered(_features_job, jobs, chunksize=16)
            for i, f in results:
                done += _store(out, offsets, frames, rows, i, f)
                if done % 2000 == 0:
                    log(f"features {stem}: {done}/{len(jobs)}")
    else:
        for job in jobs:
            i, f = _features_job(job)
            done += _store(out, offsets, frames, rows, i, f)
    out.flush()
    del out
    os.replace(tmp, feats_path)
    index_path.write_text(json.dumps({
        "stamp": stamp, "kind": kind, "ids": [r["id"] for r in rows],
        "offsets": offsets.tolist(),
        "en": [r["en"] for r in rows], "es": [r["es"] for r in rows],
        "voice": [r["voice"] for r in rows], "augment": [r["augment"] for r in rows]},
        ensure_ascii=False))
    log(f"features {stem}: {len(rows)} utterances, {int(offsets[-1])} frames -> {feats_path}")
    return index_path


def _store(out, offsets, frames, rows, i, f):
    if f.shape != (frames[i], out.shape[1]):
        raise ValueError(f"{rows[i]['audio']}: {f.shape[0]} frames, the manifest's n_samples "
                         f"{rows[i]['n_samples']} gives {frames[i]}")
    out[offsets[i]:offsets[i + 1]] = f
    return 1


class FeatureCorpus:
    """A cached manifest with tokenised targets, filtered by length."""

    def __init__(self, index_path, tokenizer, min_frames=20, max_frames=3000,
                 max_tokens=256):
        index_path = pathlib.Path(index_path)
        idx = json.loads(index_path.read_text())
        self.feats = np.load(index_path.with_name(index_path.name.replace(".index.json",
                                                                          ".feats.npy")),
                             mmap_mode="r")
        off = np.asarray(idx["offsets"], dtype=np.int64)
        self.ids, self.es = idx["ids"], idx["es"]
        self.kind = idx.get("kind", "fbank")
        self.normalise = self.kind == "fbank"  # utterance CMVN; encoder outputs are used as is
        self.dim = int(self.feats.shape[1])
        keep, self.start, self.frames, self.targets = [], [], [], []
        self.dropped = 0
        for i, text in enumerate(self.es):
            n = int(off[i + 1] - off[i])
            toks = tokenizer.encode(text)
            if not (min_frames <= n <= max_frames) or not 1 <= len(toks) + 1 <= max_tokens:
                self.dropped += 1
                continue
            keep.append(i)
            self.start.append(int(off[i]))
            self.frames.append(n)
            self.targets.append(toks)
        self.keep = keep
        self.frames = np.asarray(self.frames, dtype=np.int64)
        self.eos, self.pad = tokenizer.eos, tokenizer.pad

    def __len__(self):
        return len(self.keep)

    def features(self, k):
        s = self.start[k]
        return np.asarray(self.feats[s:s + self.frames[k]], dtype=np.float32)

    def batches(self, max_frames, max_sentences, seed, epoch, shuffle=True):
        """Length-bucketed batches: utterances sorted by frames (random tie-break), cut so
        that batch size x longest utterance <= max_frames; batch order shuffled per epoch."""
        rng = np.random.default_rng([seed, epoch])
        order = np.lexsort((rng.random(len(self)), self.frames)) if shuffle else \
            np.argsort(self.frames, kind="stable")
        out, cur, longest = [], [], 0
        for k in order:
            n = int(self.frames[k])
            if cur and (max(longest, n) * (len(cur) + 1) > max_frames or
                        len(cur) >= max_sentences):
                out.append(cur)
                cur, longest = [], 0
            cur.append(int(k))
            longest = max(longest, n)
        if cur:
            out.append(cur)
        if shuffle:
            rng.shuffle(out)
        return out


def spec_augment(x, rng, freq_masks=2, freq_width=27, time_masks=2, time_width=40,
                 time_p=1.0):
    """fairseq SpecAugmentTransform-style masks on one normalised utterance (T, F), set to 0
    (the utterance mean after CMVN). Time masks are at most time_p * T long."""
    x = x.copy()
    T, Fdim = x.shape
    for _ in range(freq_masks):
        f = int(rng.integers(0, freq_width + 1))
        if 0 < f < Fdim:
            f0 = int(rng.integers(0, Fdim - f + 1))
            x[:, f0:f0 + f] = 0.0
    max_t = min(time_width, int(math.floor(time_p * T)))
    for _ in range(time_masks):
        t = int(rng.integers(0, max_t + 1)) if max_t > 0 else 0
        if 0 < t < T:
            t0 = int(rng.integers(0, T - t + 1))
            x[t0:t0 + t] = 0.0
    return x


class Collater:
    """Builds padded tensors for a batch of corpus indices (runs in DataLoader workers)."""

    def __init__(self, corpus, specaug=None, seed=0):
        self.c, self.specaug, self.seed = corpus, specaug, seed

    def __call__(self, batch):
        import torch

        ks = batch[0] if isinstance(batch[0], list) else batch
        rng = np.random.default_rng([self.seed, *ks[:4]])
        feats = []
        for k in ks:
            x = self.c.features(k)
            if self.c.normalise:
                x = utterance_cmvn(x)
            if self.specaug:
                x = spec_augment(x, rng, **self.specaug)
            feats.append(x)
        B = len(ks)
        T = max(len(f) for f in feats)
        L = max(len(self.c.targets[k]) + 1 for k in ks)
        fx = np.zeros((B, T, self.c.dim), dtype=np.float32)
        inp = np.full((B, L), self.c.pad, dtype=np.int64)
        tgt = np.full((B, L), self.c.pad, dtype=np.int64)
        flen = np.zeros(B, dtype=np.int64)
        tlen = np.zeros(B, dtype=np.int64)
        for b, (k, f) in enumerate(zip(ks, feats)):
            fx[b, :len(f)] = f
            flen[b] = len(f)
            y = self.c.targets[k]
            inp[b, 0] = self.c.eos
            inp[b, 1:len(y) + 1] = y
            tgt[b, :len(y)] = y
            tgt[b, len(y)] = self.c.eos
            tlen[b] = len(y) + 1
        return {"feats": torch.from_numpy(fx), "feat_len": torch.from_numpy(flen),
                "tokens": torch.from_numpy(inp), "target": torch.from_numpy(tgt),
                "tok_len": torch.from_numpy(tlen), "n_utt": B}


class ResidentCorpus:
    """The whole corpus held in (GPU) memory, already normalised, with batches assembled and
    SpecAugment applied there: no DataLoader workers, no host-to-device copies per batch.
    The normalised features are stored in float16 (utterance CMVN values are of order 1;
    rounding ~1e-3, far below SpecAugment's effect). Same batches as Collater, different
    SpecAugment random draws."""

    def __init__(self, corpus, device, dtype="float16", chunk_utts=4096):
        import torch

        self.c, self.device = corpus, torch.device(device)
        n = len(corpus)
        frames = torch.as_tensor(corpus.frames, dtype=torch.long)
        self.frames = frames.to(self.device)
        self.start = torch.zeros(n, dtype=torch.long)
        self.start[1:] = torch.cumsum(frames, 0)[:-1]
        total = int(frames.sum())
        dim = corpus.dim
        if not corpus.normalise and self.device.type == "cpu":
            # encoder outputs need no normalisation: on the CPU the cache file itself is the
            # table (memory-mapped, float16), indexed by the cache's own offsets
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)    # read-only memmap
                self.table = torch.from_numpy(corpus.feats)
            self.start = torch.as_tensor(corpus.start, dtype=torch.long)
            copy_n = 0                          # nothing to copy
        else:
            copy_n = n
            self.table = torch.empty(total, dim, dtype=getattr(torch, dtype),
                                     device=self.device)
        for a in range(0, copy_n, chunk_utts):      # utterance CMVN in float64, chunk by chunk
            ks = range(a, min(n, a + chunk_utts))
            if not corpus.normalise:           # encoder outputs: copied as they are
                raw = np.concatenate([corpus.features(k) for k in ks])
                lo = int(self.start[a])
                self.table[lo:lo + len(raw)] = torch.from_numpy(raw).to(self.device,
                                                                        self.table.dtype)
                continue
            raw = np.concatenate([corpus.features(k) for k in ks])
            x = torch.from_numpy(raw).to(self.device, torch.float64)
            seg = torch.repeat_interleave(torch.arange(len(ks), device=self.device),
                                          frames[a:a + len(ks)].to(self.device))
            cnt = frames[a:a + len(ks)].to(self.device, torch.float64)[:, None]
            s1 = torch.zeros(len(ks), dim, dtype=torch.float64, device=self.device)
            s2 = torch.zeros_like(s1)
            s1.index_add_(0, seg, x)
            s2.index_add_(0, seg, x * x)
            mean = s1 / cnt
            var = s2 / cnt - mean * mean
            y = (x - mean[seg]) * torch.rsqrt(var.clamp(min=1e-10))[seg]
            lo = int(self.start[a])
            self.table[lo:lo + len(raw)] = y.to(self.table.dtype)
        self.start = self.start.to(self.device)
        L = max(len(t) for t in corpus.targets) + 1
        tgt = np.full((n, L), corpus.pad, dtype=np.int64)
        for k, t in enumerate(corpus.targets):
            tgt[k, :len(t)] = t
            tgt[k, len(t)] = corpus.eos
        self.targets = torch.from_numpy(tgt).to(self.device)
        self.tlen = torch.as_tensor([len(t) + 1 for t in corpus.targets],
                                    device=self.device)
        self.eos, self.pad = corpus.eos, corpus.pad

    def batch(self, ks, specaug=None, generator=None):
        import torch

        ks = torch.as_tensor(ks, device=self.device)
        flen, tlen = self.frames[ks], self.tlen[ks]
        B, T, L = len(ks), int(flen.max()), int(tlen.max())
        t = torch.arange(T, device=self.device)[None, :]
        valid = t < flen[:, None]
        idx = self.start[ks][:, None] + torch.minimum(t, flen[:, None] - 1)
        feats = self.table[idx].float() * valid[:, :, None]
        if specaug:
            feats = spec_augment_batch(feats, flen, generator, **specaug)
        target = self.targets[ks, :L]
        tokens = torch.cat([torch.full((B, 1), self.eos, device=self.device,
                                       dtype=torch.long), target[:, :-1]], dim=1)
        tokens = torch.where(tokens == self.eos, torch.full_like(tokens, self.pad), tokens)
        tokens[:, 0] = self.eos
        return {"feats": feats, "feat_len": flen, "tokens": tokens, "target": target,
                "tok_len": tlen, "n_utt": B}


def spec_augment_batch(x, lengths, generator, freq_masks=2, freq_width=27, time_masks=2,
                       time_width=40, time_p=1.0):
    """spec_augment for a padded batch (B, T, F), each utterance its own masks."""
    import torch

    B, T, Fdim = x.shape
    dev = x.device
    keep = torch.ones(B, T, Fdim, dtype=torch.bool, device=dev)
    f_ar = torch.arange(Fdim, device=dev)[None, :]
    t_ar = torch.arange(T, device=dev)[None, :]

    def rand(n):
        return torch.rand(n, device=dev, generator=generator)

    for _ in range(freq_masks):
        f = torch.floor(rand(B) * (freq_width + 1)).long()
        f = torch.where(f < Fdim, f, torch.zeros_like(f))
        f0 = torch.floor(rand(B) * (Fdim - f + 1)).long()
        keep &= ~((f_ar >= f0[:, None]) & (f_ar < (f0 + f)[:, None]))[:, None, :]
    max_t = torch.clamp(torch.floor(time_p * lengths.float()), max=time_width).long()
    for _ in range(time_masks):
        w = torch.floor(rand(B) * (max_t + 1).float()).long()
        w = torch.where(w < lengths, w, torch.zeros_like(w))
        t0 = torch.floor(rand(B) * (lengths - w + 1).float()).long()
        keep &= ~((t_ar >= t0[:, None]) & (t_ar < (t0 + w)[:, None]))[:, :, None]
    return x * keep
