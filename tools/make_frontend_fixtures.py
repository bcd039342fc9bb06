#!/usr/bin/env python3
"""Builds the frontend test inputs and golden features committed under tests/.

Sources: the LibriVox clips in samples/audio/ (public domain recordings, shipped by Debian's
pocketsphinx-testdata). Everything else is derived from them here, deterministically:

  tests/data/frontend/   the clips at 8, 22.05, 44.1 and 48 kHz in several containers and
                         sample formats (WAV, WAVE_FORMAT_EXTENSIBLE, FLAC, stereo), plus lossy
                         and unusual formats for the decoding tests.
  tests/golden/frontend/ reference features: each input decoded with soundfile, averaged to
                         mono, resampled to 16 kHz with python-soxr (libsoxr, quality HQ, the
                         setting mtla-st uses), scaled by 32768 and passed through
                         torchaudio.compliance.kaldi.fbank(num_mel_bins=80, dither=0) in
                         float64. kaldi-native-fbank (float32) is run on the same signal as a
                         cross-check wherever float32 is accurate.
  tests/data/vad/        speech with inserted pauses and noise, and the true speech boundaries,
                         found on each clean clip with torchaudio.functional.vad (a port of
                         SoX's vad effect) from both ends; and the whole recordings (with their
                         own room tone, breaths and decays) with pauses and noise, the truth
                         being the first and last word of each as aligned by the recogniser
                         pocketsphinx (Debian packages pocketsphinx, pocketsphinx-en-us).

Ogg/Opus serial numbers and the PEAK chunk libsndfile writes into float WAV files change from
run to run, so those files differ byte-wise when regenerated; their samples, and every golden
file, do not.

Run from the repository root:  python3 tools/make_frontend_fixtures.py
Requirements: tools/requirements.txt.
"""
import json
import pathlib
import re
import subprocess
import sys

import kaldi_native_fbank as knf
import numpy as np
import soundfile as sf
import soxr
import torch
import torchaudio

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLIPS = ROOT / "samples" / "audio"
DATA = ROOT / "tests" / "data" / "frontend"
GOLDEN = ROOT / "tests" / "golden" / "frontend"
VAD = ROOT / "tests" / "data" / "vad"
RATE = 16000


def clip(name, seconds=None):
    x, sr = sf.read(CLIPS / f"sense_and_sensibility_01_austen_64kb-{name}.wav", dtype="float32")
    assert sr == RATE
    return x if seconds is None else x[: int(seconds * RATE)]


def resample(x, sr_in, sr_out):
    return x if sr_in == sr_out else soxr.resample(x, sr_in, sr_out, quality="HQ")


def reference_fbank(mono16k):
    # float64: in float32 the bins of band-limited audio (e.g. 8 kHz input, empty above 4 kHz)
    # hold energies ~1e-12 of the frame's and are pure rounding noise, so references disagree
    # there by up to 0.4 in log. In float64 the result is determined by the input alone.
    wave = torch.from_numpy(mono16k.astype(np.float64))[None] * 32768.0
    return torchaudio.compliance.kaldi.fbank(
        wave, num_mel_bins=80, dither=0.0, sample_frequency=RATE
    ).numpy()


def knf_fbank(mono16k):
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = RATE
    opts.mel_opts.num_bins = 80
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(RATE, (mono16k.astype(np.float64) * 32768.0).tolist())
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


# (file name, source clip, seconds, rate, channels, soundfile format, subtype)
PARITY_CASES = [
    ("clip_8000_s16.wav", "0880", 3.0, 8000, 1, "WAV", "PCM_16"),
    ("clip_16000_s16.wav", "0930", 3.0, 16000, 1, "WAV", "PCM_16"),
    ("clip_22050_stereo.flac", "0930", 2.0, 22050, 2, "FLAC", "PCM_16"),
    ("clip_44100_f32_extensible.wav", "0890", 2.0, 44100, 1, "WAVEX", "FLOAT"),
    ("clip_48000_s24_stereo.flac", "0920", 2.0, 48000, 2, "FLAC", "PCM_24"),
]

# Formats only checked for decoding (lossy, or unusual sample types).
FORMAT_CASES = [
    ("clip.ogg", "OGG", "VORBIS", 22050),
    ("clip.opus", "OGG", "OPUS", 48000),
    ("clip.mp3", "MP3", "MPEG_LAYER_III", 44100),
    ("clip_u8.wav", "WAV", "PCM_U8", 16000),
    ("clip_f64.wav", "WAV", "DOUBLE", 16000),
]


def make_multichannel(x, channels):
    if channels == 1:
        return x
    # Right channel quieter and slightly different, so that averaging is really exercised.
    right = 0.5 * x + 0.02 * np.roll(x, 7)
    return np.stack([x, right], axis=1).astype(np.float32)


def write_parity_fixtures():
    DATA.mkdir(parents=True, exist_ok=True)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name, src, seconds, rate, channels, fmt, subtype in PARITY_CASES:
        x = resample(clip(src, seconds), RATE, rate).astype(np.float32)
        x = np.clip(x, -0.999, 0.999)
        sf.write(DATA / name, make_multichannel(x, channels), rate, format=fmt, subtype=subtype)
        # Golden features from what a decoder really returns for the written file.
        decoded, sr = sf.read(DATA / name, dtype="float32", always_2d=True)
        mono = decoded.mean(axis=1, dtype=np.float32) if channels > 1 else decoded[:, 0]
        mono16k = resample(mono, sr, RATE).astype(np.float32)
        feats = reference_fbank(mono16k)
        cross = knf_fbank(mono16k)
        # kaldi-native-fbank computes in float32: compare where float32 is accurate, i.e. bins
        # within e^9 (~40 dB) of the frame's loudest bin.
        reliable = feats > feats.max(axis=1, keepdims=True) - 9.0
        gap = float(np.abs(feats - cross)[reliable].max()) if feats.shape == cross.shape else np.inf
        if gap > 1e-3:
            sys.exit(f"{name}: torchaudio and kaldi-native-fbank disagree ({gap})")
        golden = name.rsplit(".", 1)[0] + ".npy"
        np.save(GOLDEN / golden, feats.astype("<f4"))  # stored as float32, compared at 1e-3
        manifest.append({"input": f"tests/data/frontend/{name}", "golden": f"tests/golden/frontend/{golden}",
                         "rate": rate, "channels": channels, "frames": int(feats.shape[0]),
                         "knf_max_abs_diff": gap})
        print(f"{name}: {feats.shape[0]} frames, torchaudio vs kaldi-native-fbank {gap:.2e}")
    (GOLDEN / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

    x = clip("0880", 1.5)
    for name, fmt, subtype, rate in FORMAT_CASES:
        sf.write(DATA / name, resample(x, RATE, rate).astype(np.float32), rate, format=fmt, subtype=subtype)
    sf.write(DATA / "clip_reference_16000.wav", x, RATE, subtype="PCM_16")


def speech_bounds(x):
    """First and last speech sample of a clean clip, by SoX-style VAD from each end."""
    wave = torch.from_numpy(x)[None]
    head = torchaudio.functional.vad(wave, RATE).shape[1]
    tail = torchaudio.functional.vad(torch.flip(wave, [1]), RATE).shape[1]
    return len(x) - head, tail  # start index, end index (exclusive)


def write_vad_fixtures():
    VAD.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261122)
    pieces, truth, t = [], [], 0

    def add(samples):
        nonlocal t
        pieces.append(samples.astype(np.float32))
        t += len(samples)

    # Real speech, pauses of 0.8-1.6 s, and a noisy background throughout (about 25 dB SNR).
    layout = [("0880", 1.0), ("0930", 1.3), ("0920", 0.8), ("0890", 1.6)]
    add(np.zeros(int(0.9 * RATE)))
    for name, pause in layout:
        x = clip(name)
        start, end = speech_bounds(x)
        speech = x[start:end]
        truth.append((t / RATE, (t + len(speech)) / RATE))
        add(speech)
        add(np.zeros(int(pause * RATE)))
    signal = np.concatenate(pieces)
    speech_rms = np.sqrt(np.mean(np.concatenate([clip(n) for n, _ in layout]) ** 2))
    noise = rng.normal(0.0, speech_rms / 10 ** (25 / 20), len(signal))
    signal = np.clip(signal + noise, -1, 1).astype(np.float32)
    sf.write(VAD / "speech_with_pauses.wav", signal, RATE, subtype="PCM_16")
    with open(VAD / "speech_with_pauses.tsv", "w") as f:
        f.write("# true speech boundaries in seconds (start, end); see tools/make_frontend_fixtures.py\n")
        for start, end in truth:
            f.write(f"{start:.4f}\t{end:.4f}\n")
    print("vad truth:", [(round(a, 3), round(b, 3)) for a, b in truth])

    # Continuous speech: the same clips with only 0.3 s pauses (shorter than a VAD pause), to
    # check that a maximum segment length cuts inside a pause, not inside a word.
    pieces, pauses, t = [], [], 0
    for name, _ in layout:
        x = clip(name)
        start, end = speech_bounds(x)
        add(x[start:end])
        pauses.append((t / RATE, (t + int(0.3 * RATE)) / RATE))
        add(np.zeros(int(0.3 * RATE)))
    signal = np.concatenate(pieces)
    signal = np.clip(signal + rng.normal(0.0, speech_rms / 10 ** (30 / 20), len(signal)), -1, 1)
    sf.write(VAD / "continuous_speech.wav", signal.astype(np.float32), RATE, subtype="PCM_16")
    with open(VAD / "continuous_speech_pauses.tsv", "w") as f:
        f.write("# pauses between sentences in seconds (start, end)\n")
        for start, end in pauses[:-1]:
            f.write(f"{start:.4f}\t{end:.4f}\n")


def aligned_words(path):
    """First word start and last word end (seconds) as pocketsphinx recognises them."""
    out = subprocess.run(["pocketsphinx_continuous", "-infile", str(path), "-time", "yes"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    words = [line.split() for line in out[1:] if len(line.split()) == 4]
    words = [w for w in words if not re.fullmatch(r"<s>|</s>|<sil>|\[\w+\]|\+\+?\w+\+\+?", w[0])]
    return float(words[0][1]), float(words[-1][2])


def write_recordings_fixture():
    """Whole recordings, natural edges: the hard case for an energy VAD."""
    rng = np.random.default_rng(20261123)
    layout = [("0880", 1.0), ("0930", 1.3), ("0920", 0.8), ("0890", 1.6)]
    pieces, truth, t = [np.zeros(int(0.9 * RATE), np.float32)], [], int(0.9 * RATE)
    for name, pause in layout:
        x = clip(name)
        start, end = aligned_words(CLIPS / f"sense_and_sensibility_01_austen_64kb-{name}.wav")
        truth.append((t / RATE + start, t / RATE + end))
        pieces += [x, np.zeros(int(pause * RATE), np.float32)]
        t += len(x) + int(pause * RATE)
    signal = np.concatenate(pieces)
    speech_rms = np.sqrt(np.mean(np.concatenate([clip(n) for n, _ in layout]) ** 2))
    signal = np.clip(signal + rng.normal(0.0, speech_rms / 10 ** (25 / 20), len(signal)), -1, 1)
    sf.write(VAD / "recordings_with_pauses.wav", signal.astype(np.float32), RATE, subtype="PCM_16")
    with open(VAD / "recordings_with_pauses.tsv", "w") as f:
        f.write("# first word start and last word end in seconds, aligned by pocketsphinx\n")
        for start, end in truth:
            f.write(f"{start:.4f}\t{end:.4f}\n")
    print("recordings truth:", [(round(a, 3), round(b, 3)) for a, b in truth])


if __name__ == "__main__":
    write_parity_fixtures()
    write_vad_fixtures()
    write_recordings_fixture()
