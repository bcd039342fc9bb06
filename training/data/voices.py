"""Text-to-speech engines for the corpus: flite in-process, espeak-ng and festival as programs.

Each engine returns int16 samples at its own rate; synthesize.py does pitch, rate to 16 kHz and
augmentation. The voices:

  flite_<v>      libflite1 (libflite_cmu_us_<v>.so.1): awb (Scottish male), rms (US male),
                 slt (US female) are clustergen voices, kal16 (US male) a diphone voice
  festival_kal   festvox-kallpc16k  (kal_diphone, the same speaker as flite_kal16)
  festival_ked   festvox-kdlpc16k   (ked_diphone, US male)
  festival_slt   festvox-us-slt-hts (cmu_us_slt_arctic_hts, the same speaker as flite_slt)
  espeak_<accent>+<variant>   espeak-ng + espeak-ng-data (formant synthesis); accents by
                 espeak-ng's voice names ("en" is British English), variants from its !v folder

Speaking rate is changed by each engine's own duration control ("stretch" d: durations times
d): flite's duration_stretch feature, festival's Duration_Stretch parameter (hts_engine's -r
1/d for the HTS voice, which ignores Duration_Stretch), espeak-ng's words per minute 175/d.
"""
import ctypes
import os
import shutil
import subprocess
import tempfile

import numpy as np

FLITE_VOICES = ["awb", "rms", "slt", "kal16"]
FESTIVAL_VOICES = {
    "kal": ("voice_kal_diphone", "/usr/share/festival/voices/english/kal_diphone", "festvox-kallpc16k"),
    "ked": ("voice_ked_diphone", "/usr/share/festival/voices/english/ked_diphone", "festvox-kdlpc16k"),
    "slt": ("voice_cmu_us_slt_arctic_hts", "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts",
            "festvox-us-slt-hts"),
}
ESPEAK_ACCENTS = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
# Variants that still sound like a person talking (no whisper, croak, robots).
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "Andy", "Annie", "david", "edward", "john",
                   "linda", "max", "paul", "robert", "steph", "belinda", "benjamin", "anika"]


def engine_of(voice):
    return voice.split("_", 1)[0]


def all_voices():
    v = ["flite_" + x for x in FLITE_VOICES] + ["festival_" + x for x in sorted(FESTIVAL_VOICES)]
    v += ["espeak_%s+%s" % (a, b) for a in ESPEAK_ACCENTS for b in ESPEAK_VARIANTS]
    return v


def _preload(root, sonames):
    """dlopen these libraries of the root by absolute path, so that a library loaded after them
    finds its dependencies even where LD_LIBRARY_PATH was not set before Python started."""
    for name in sonames:
        for d in root.library_dirs():
            p = os.path.join(d, name)
            if os.path.exists(p):
                ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL)
                break


class _CstWave(ctypes.Structure):
    # flite's cst_wave (cst_wave.h)
    _fields_ = [("type", ctypes.c_char_p), ("sample_rate", ctypes.c_int),
                ("num_samples", ctypes.c_int), ("num_channels", ctypes.c_int),
                ("samples", ctypes.POINTER(ctypes.c_short))]


class Flite:
    """libflite through ctypes: flite_text_to_wave on a registered voice."""

    def __init__(self, root):
        self.root = root
        lib = root.require("/usr/lib/x86_64-linux-gnu/libflite.so.1", "libflite1")
        _preload(root, ["libasound.so.2"])
        self.lib = ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
        for dep in ("libflite_usenglish.so.1", "libflite_cmulex.so.1"):
            ctypes.CDLL(os.path.join(os.path.dirname(lib), dep), mode=ctypes.RTLD_GLOBAL)
        self.lib.flite_init()
        self.lib.flite_text_to_wave.restype = ctypes.POINTER(_CstWave)
        self.lib.flite_text_to_wave.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        self.lib.flite_feat_set_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float]
        self.lib.delete_wave.argtypes = [ctypes.c_void_p]
        self.voices = {}
        self.libdir = os.path.dirname(lib)
        self.libc = ctypes.CDLL(None)
        self.libc.srand.argtypes = [ctypes.c_uint]

    def _voice(self, name):
        if name not in self.voices:
            vl = ctypes.CDLL(os.path.join(self.libdir, "libflite_cmu_us_%s.so.1" % name))
            reg = getattr(vl, "register_cmu_us_" + name)
            reg.restype = ctypes.c_void_p
            reg.argtypes = [ctypes.c_char_p]
            vox = reg(None)
            if not vox:
                raise RuntimeError("flite: voice %s did not register" % name)
            # cst_voice starts {const char *name; cst_features *features; ...} (cst_voice.h)
            feats = ctypes.cast(vox, ctypes.POINTER(ctypes.c_void_p))[1]
            self.voices[name] = (vl, vox, feats)
        return self.voices[name]

    def synth(self, voice, text, stretch, seed=0):
        """The clustergen voices excite their filters with rand() noise: seeding it per
        utterance makes the audio a function of the call alone, not of earlier calls."""
        _, vox, feats = self._voice(voice)
        self.libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        self.lib.flite_feat_set_float(feats, b"duration_stretch", float(stretch))
        w = self.lib.flite_text_to_wave(text.encode("utf-8"), vox)
        if not w:
            raise RuntimeError("flite: no audio for %r" % text)
        try:
            n, sr = w.contents.num_samples, w.contents.sample_rate
            x = np.ctypeslib.as_array(w.contents.samples, (n,)).copy() if n > 0 else np.zeros(0, np.int16)
        finally:
            self.lib.delete_wave(w)
        return x.astype(np.int16), sr


class Espeak:
    """The espeak-ng program, one process per utterance, WAV on its standard output.

    Not libespeak-ng in-process: the library keeps state from one utterance to the next
    (its pitch flutter and echo buffers, measured here as a few samples more or less for the
    same call), which would make the audio depend on what a worker spoke before. A fresh
    process costs about 10 ms, and espeak-ng still runs hundreds of times faster than real
    time.
    """

    def __init__(self, root):
        data = root.require("/usr/lib/x86_64-linux-gnu/espeak-ng-data/phontab", "espeak-ng-data")
        self.binary = root.require_program("espeak-ng", "espeak-ng")
        self.path = os.path.dirname(os.path.dirname(data))  # the folder that holds espeak-ng-data/
        self.env = root.child_env()

    def synth(self, voice, text, stretch, pitch=50):
        rate = int(round(min(450, max(80, 175.0 / stretch))))
        p = subprocess.run([self.binary, "--path=" + self.path, "-v", voice, "-s", str(rate),
                            "-p", str(int(pitch)), "--stdout", text],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        if p.returncode != 0 or len(p.stdout) < 44:
            raise RuntimeError("espeak-ng %s failed (%d): %s" % (voice, p.returncode, p.stderr.decode()[-300:]))
        return read_wav_bytes(p.stdout)


def _scheme_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Festival:
    """festival --batch over a script that synthesises many utterances into WAV files."""

    def __init__(self, root):
        self.root = root
        self.binary = root.require_program("festival", "festival")
        self.libdir = root.require("/usr/share/festival/init.scm", "festival")[:-len("/init.scm")]
        self.env = root.child_env()

    def synth_batch(self, items):
        """items: [(voice, text, stretch)] -> [(int16 samples, rate) or None on failure]."""
        if not items:
            return []
        tmp = tempfile.mkdtemp(prefix="festival-")
        try:
            lines = []
            current = None
            for i, (voice, text, stretch) in enumerate(items):
                func, path, package = FESTIVAL_VOICES[voice]
                self.root.require(path, package)
                if voice != current:
                    lines.append("(%s)" % func)
                    current = voice
                if voice == "slt":
                    lines.append('(set! hts_engine_params (append cmu_us_slt_arctic_hts::hts_engine_params '
                                 '(list (list "-r" %.4f))))' % (1.0 / stretch))
                else:
                    lines.append("(Parameter.set 'Duration_Stretch %.4f)" % stretch)
                wav = os.path.join(tmp, "%d.wav" % i)
                lines.append("(unwind-protect (utt.save.wave (utt.synth (Utterance Text %s)) %s 'riff) nil)"
                             % (_scheme_string(text), _scheme_string(wav)))
            script = os.path.join(tmp, "batch.scm")
            with open(script, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            # Debian's festival reads init.scm from its data folder and voices and lexicons from
            # below its library folder: both are this root's /usr/share/festival.
            p = subprocess.run([self.binary, "--libdir", self.libdir, "--datadir", self.libdir,
                                "--batch", script], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out = []
            for i in range(len(items)):
                wav = os.path.join(tmp, "%d.wav" % i)
                out.append(read_wav(wav) if os.path.exists(wav) else None)
            if p.returncode != 0 and all(o is None for o in out):
                raise RuntimeError("festival failed (%d): %s" % (p.returncode, p.stderr.decode()[-500:]))
            return out
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def read_wav(path):
    with open(path, "rb") as f:
        return read_wav_bytes(f.read())


def read_wav_bytes(data):
    """int16 samples and rate of a 16-bit WAV (a streamed one too: its sizes may be wrong)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    pos, rate, channels, bits = 12, None, 1, 16
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if cid == b"fmt ":
            channels = int.from_bytes(data[pos + 10:pos + 12], "little")
            rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            bits = int.from_bytes(data[pos + 22:pos + 24], "little")
        elif cid == b"data":
            if rate is None or bits != 16:
                raise ValueError("WAV: no 16-bit format chunk before the data")
            body = data[pos + 8:]
            if 0 < size <= len(body):
                body = body[:size]  # espeak-ng --stdout writes a size it cannot know: keep what came
            x = np.frombuffer(body[:len(body) // (2 * channels) * 2 * channels], dtype="<i2")
            if channels > 1:
                x = x.reshape(-1, channels)[:, 0]
            return x.astype(np.int16), rate
        pos += 8 + size + (size & 1)
    raise ValueError("WAV: no data chunk")


class Engines:
    """The engines one process uses, opened on first use."""

    def __init__(self, root):
        self.root = root
        self._flite = self._espeak = self._festival = None

    @property
    def flite(self):
        if self._flite is None:
            self._flite = Flite(self.root)
        return self._flite

    @property
    def espeak(self):
        if self._espeak is None:
            self._espeak = Espeak(self.root)
        return self._espeak

    @property
    def festival(self):
        if self._festival is None:
            self._festival = Festival(self.root)
        return self._festival
