"""Augmentation of synthetic speech at 16 kHz: noise, reverberation, telephone band.

All of it is numpy (FFT filtering and convolution) and soxr (rate changes); every random
choice comes from the numpy Generator the caller passes, so an utterance's augmentation is a
function of the corpus seed and its id.

The noises are generated, not recorded: no Debian package ships a collection of recorded
background noise that suits (the sound packages are sound effects and music). Kinds:
  white, pink (1/f), brown (1/f^2)  coloured Gaussian noise
  hum       50 or 60 Hz mains hum with harmonics, plus a little white noise
  speech    noise with the long-term spectrum of the utterance itself (speech-shaped)
  babble    the utterance's own speech, cut and shifted several times and summed, quieter
Reverberation: a synthetic room impulse response (direct sound, a few early reflections and an
exponentially decaying noise tail for an RT60 of 0.15-0.9 s).
Telephone: band-pass 300-3400 Hz, 8 kHz, often G.711 mu-law 8-bit companding, back to 16 kHz
(the engine resamples what it gets to 16 kHz, so the manifests keep one rate).
"""
import numpy as np
import soxr

SR = 16000

# (name, probability); the names are what the manifest's "augment" column starts with.
PLAN = [
    ("clean", 0.35),
    ("noise", 0.25),
    ("reverb", 0.12),
    ("tel", 0.15),
    ("reverb+noise", 0.07),
    ("noise+tel", 0.06),
]
NOISE_KINDS = ["white", "pink", "brown", "hum", "speech", "babble"]


def choose(rng, plan=PLAN):
    names = [p[0] for p in plan]
    probs = np.array([p[1] for p in plan], dtype=float)
    return names[rng.choice(len(names), p=probs / probs.sum())]


def _fft_filter(x, gain_of_freq):
    n = len(x)
    nfft = 1 << max(1, int(np.ceil(np.log2(max(2, n)))))
    X = np.fft.rfft(x, nfft)
    f = np.fft.rfftfreq(nfft, 1.0 / SR)
    return np.fft.irfft(X * gain_of_freq(f), nfft)[:n]


def coloured_noise(rng, n, kind):
    w = rng.standard_normal(n)
    if kind == "white":
        y = w
    elif kind in ("pink", "brown"):
        power = 0.5 if kind == "pink" else 1.0
        y = _fft_filter(w, lambda f: 1.0 / np.maximum(f, 20.0) ** power)
    else:
        raise ValueError(kind)
    return y / (np.std(y) + 1e-12)


def hum(rng, n):
    base = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / SR
    y = np.zeros(n)
    for h in range(1, 6):
        y += rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * base * h * t + rng.uniform(0, 2 * np.pi))
    y += 0.05 * rng.standard_normal(n)
    return y / (np.std(y) + 1e-12)


def speech_shaped(rng, x):
    n = len(x)
    nfft = 1 << int(np.ceil(np.log2(max(2, n))))
    mag = np.abs(np.fft.rfft(x, nfft))
    # Smooth the magnitude so the noise has the spectral envelope, not the harmonics.
    k = 64
    mag = np.convolve(mag, np.ones(k) / k, mode="same")
    phase = rng.uniform(0, 2 * np.pi, len(mag))
    y = np.fft.irfft(mag * np.exp(1j * phase), nfft)[:n]
    return y / (np.std(y) + 1e-12)


def babble(rng, x):
    n = len(x)
    y = np.zeros(n)
    for _ in range(int(rng.integers(3, 7))):
        shift = int(rng.integers(0, n))
        seg = np.roll(x, shift) * rng.uniform(0.5, 1.0)
        if rng.random() < 0.5:
            seg = seg[::-1]
        y += seg
    return y / (np.std(y) + 1e-12)


def add_noise(rng, x, kind, snr_db):
    if kind in ("white", "pink", "brown"):
        noise = coloured_noise(rng, len(x), kind)
    elif kind == "hum":
        noise = hum(rng, len(x))
    elif kind == "speech":
        noise = speech_shaped(rng, x)
    elif kind == "babble":
        noise = babble(rng, x)
    else:
        raise ValueError(kind)
    p_signal = speech_power(x)
    scale = np.sqrt(p_signal / (10 ** (snr_db / 10.0)))
    return x + scale * noise


def speech_power(x):
    """Mean power of the louder frames (a crude voice activity), so silence pads do not count."""
    frame = 320
    n = len(x) // frame
    if n == 0:
        return float(np.mean(x ** 2) + 1e-12)
    p = np.mean(x[:n * frame].reshape(n, frame) ** 2, axis=1)
    loud = p[p >= 0.1 * np.max(p)] if np.max(p) > 0 else p
    return float(np.mean(loud) + 1e-12)


def room_impulse_response(rng, rt60):
    length = int(SR * min(1.5, rt60 * 1.2))
    t = np.arange(length) / SR
    decay = np.exp(-6.9078 * t / rt60)  # -60 dB at rt60
    tail = rng.standard_normal(length) * decay
    tail[: int(0.002 * SR)] = 0.0
    h = 0.3 * tail / (np.sqrt(np.sum(tail ** 2)) + 1e-12)
    h[0] = 1.0
    for _ in range(int(rng.integers(3, 8))):
        d = int(rng.uniform(0.002, 0.03) * SR)
        h[d] += rng.uniform(-0.6, 0.6)
    # Air and wall absorption: high frequencies die sooner.
    return _fft_filter(h, lambda f: 1.0 / (1.0 + (f / rng.uniform(3000, 7000)) ** 2))


def reverb(rng, x, rt60):
    h = room_impulse_response(rng, rt60)
    n = len(x) + len(h) - 1
    nfft = 1 << int(np.ceil(np.log2(n)))
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(h, nfft), nfft)[: len(x)]
    return y * (np.std(x) / (np.std(y) + 1e-12))


def mulaw(x, mu=255.0):
    """G.711-like mu-law companding to 8 bits and back, x in [-1, 1]."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((y + 1) / 2 * 255) / 255 * 2 - 1
    return np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu


def telephone(rng, x, use_mulaw):
    lo, hi = rng.uniform(250, 400), rng.uniform(3100, 3500)

    def band(f):
        # Smooth edges (2nd-order-like slopes) rather than a brick wall.
        return 1.0 / np.sqrt(1 + (lo / np.maximum(f, 1.0)) ** 4) / np.sqrt(1 + (f / hi) ** 8)

    y = _fft_filter(x, band)
    y8 = soxr.resample(y, SR, 8000)
    if use_mulaw:
        peak = np.max(np.abs(y8)) + 1e-12
        level = rng.uniform(0.3, 0.9)
        y8 = mulaw(y8 / peak * level) * peak / level
    return soxr.resample(y8, 8000, SR)


def apply(rng, x, name):
    """x: float signal at 16 kHz. Returns (augmented signal, description for the manifest).

    name is one of PLAN's, its steps applied left to right: "noise+tel" is background noise
    where the caller is, then the phone line.
    """
    parts = []
    for step in name.split("+"):
        if step == "clean":
            parts.append("clean")
        elif step == "reverb":
            rt60 = float(rng.uniform(0.15, 0.9))
            x = reverb(rng, x, rt60)
            parts.append("reverb:rt60=%.2f" % rt60)
        elif step == "tel":
            use_mulaw = bool(rng.random() < 0.7)
            x = telephone(rng, x, use_mulaw)
            parts.append("tel:8k" + (":mulaw" if use_mulaw else ""))
        elif step == "noise":
            kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
            snr = float(rng.uniform(0, 25) if kind != "babble" else rng.uniform(5, 25))
            x = add_noise(rng, x, kind, snr)
            parts.append("noise:%s:snr=%.1f" % (kind, snr))
        else:
            raise ValueError("unknown augmentation %r" % step)
    return x, "+".join(parts)


def normalise_level(rng, x):
    """A random speech level between -32 and -14 dBFS, peaks kept below full scale."""
    target_db = rng.uniform(-32, -14)
    rms = np.sqrt(speech_power(x))
    y = x * (10 ** (target_db / 20.0) / (rms + 1e-12))
    peak = np.max(np.abs(y)) if len(y) else 0.0
    if peak > 0.98:
        y *= 0.98 / peak
    return y
