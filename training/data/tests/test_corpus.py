#!/usr/bin/env python3
"""Checks of the corpus scripts: their rules on small cases, then a small corpus end to end.

    python3 training/data/tests/test_corpus.py [--keep DIR]

The text rule checks need nothing; the audio ones need numpy and soxr (without them: exit 77).
The end-to-end part builds a corpus of 200 English sentences with build_corpus.sh (about half a
minute on 2 cores) and needs the Debian packages of README.md installed (or MTLA_DEB_ROOT set to
a folder they were unpacked into) and the Python packages numpy, soxr and soundfile; without
them the script says what is missing and exits 77 (skipped). It ends with "N passed, N failed".
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)
sys.path.insert(0, DATA)

SKIP = 77
results = {"passed": 0, "failed": 0}


def check(name, fn):
    try:
        fn()
    except Exception:  # a failed assert or an error: report it and go on
        results["failed"] += 1
        print("FAIL %s" % name)
        traceback.print_exc()
    else:
        results["passed"] += 1
        print("ok   %s" % name)


# ---------------------------------------------------------------------------------------------
# Rules on small cases
# ---------------------------------------------------------------------------------------------


def test_filters():
    import sources as s
    assert s.keep_reason("The cat sat on the mat.") is None
    assert s.keep_reason("Where did you put the keys?") is None
    assert s.keep_reason("I was born in 1984, I think.") is None
    cases = {
        "Visit www.example.com for the details.": "url",
        "Mail me at someone@example.org please.": "url",
        "THIS IS ALL CAPS TEXT HERE.": "caps",
        "Too short.": "short",
        " ".join(["word"] * 25) + " end.": "long",
        "The price is $5 for you today.": "chars",
        "Use the (optional) flag here.": "chars",
        "Caf\u00e9 au lait is my favourite drink.": "chars",
        "no capital letter at the start.": "start",
        "It ends with a colon here:": "end",
        "It just trails off and never ends": "end",
        "Q: What is the answer to this?": "label",
        "Wait... what did you just say?": "punct",
        "Call 555-1234 to order it now.": "number",
        "Version 3.14 is out for everyone.": "number",
    }
    for text, why in cases.items():
        got = s.keep_reason(s.normalise(text) if why != "chars" else text)
        assert got == why, (text, got, why)


def test_normalise():
    import sources as s
    assert s.normalise("\u201cHello,\u201d she said \u2014 \u201ccome here.\u201d") == "Hello, she said, come here."
    assert s.normalise("Don\u2019t stop -- ever.") == "Don't stop, ever."
    assert s.normalise("  Many   spaces , here .") == "Many spaces, here."
    assert s.dedup_key("Hello, World!") == s.dedup_key("hello world")
    assert s.dedup_key("Don't-stop") == "don't stop"


def test_split_sentences():
    import sources as s
    got = s.split_sentences("Mr. Smith went home. He slept. J. R. Tolkien wrote it! Did he? Yes.")
    assert got == ["Mr. Smith went home.", "He slept.", "J. R. Tolkien wrote it!", "Did he?", "Yes."], got
    assert s.split_sentences("One line\nand its continuation.") == ["One line and its continuation."]


def test_opening_marks():
    import translate as t
    cases = {
        "Dónde es la estación?": "¿Dónde es la estación?",
        "Qué día bello!": "¡Qué día bello!",
        "Pero, qué haces?": "Pero, ¿qué haces?",
        "Sí, por qué no?": "Sí, ¿por qué no?",
        "Dijo: quién eres?": "Dijo: ¿quién eres?",
        "Hola. Cómo estás?": "Hola. ¿Cómo estás?",
        "Quién eres? Qué quieres?": "¿Quién eres? ¿Qué quieres?",
        "Eh! Qué?": "¡Eh! ¿Qué?",
        "¿Ya está?": "¿Ya está?",
        "Hola , mundo .": "Hola, mundo.",
        "dónde  está?": "¿Dónde está?",
        "Es un perro.": "Es un perro.",
    }
    for raw, want in cases.items():
        got = t.tidy_spanish(raw)
        assert got == want, (raw, got, want)


def test_parallel_rules():
    import parallel as pa
    assert pa.modern_spelling("Y fué la luz, y dió á su Hijo; Fué ó no.") == "Y fue la luz, y dio a su Hijo; Fue o no."
    assert pa.sentence_case_opening("LEVANTÁNDOSE entonces toda la multitud.") == "Levantándose entonces toda la multitud."
    assert pa.sentence_case_opening("Y él dijo.") == "Y él dijo."
    assert pa.sentence_case_opening("¡AY de mí!") == "¡Ay de mí!"
    assert pa.normalise_spanish("\u00abHola\u00bb , dijo \u2014 \u00bf qu\u00e9 tal ?") == "Hola, dijo, ¿qué tal?"
    en = "Where is the file?"
    assert pa.spanish_keep_reason("¿Dónde está el archivo?", en) is None
    cases = {
        "¿Dónde está el %s?": "chars",
        "¿Dónde está el _archivo?": "chars",
        "<b>Dónde</b> está?": "chars",
        "dónde está el archivo?": "start",
        "Dónde está el archivo": "end",
        "Está el archivo.": "final_mark",
        "Dónde está el archivo?": "opening_mark",
        "Where is the file?": "untranslated",
        "¿Qué?": "length",
        "Visite www.ejemplo.com ahora mismo por favor?": "url",
    }
    for es, why in cases.items():
        got = pa.spanish_keep_reason(es, en)
        assert got == why, (es, got, why)


def test_parallel_bible_alignment():
    import parallel as pa
    en = {"Job 1:1": "A1", "Job 1:2": "A2", "Job 2:1": "B1", "Job 2:2": "B2", "Job 3:1": "C1"}
    es = {"Job 1:1": "a1", "Job 1:2": "a2", "Job 2:1": "b1", "Job 2:2": "b2", "Job 2:3": "b3",
          "Job 3:1": ""}
    # Chapter 2 is numbered differently (2 against 3 verses): left out; an empty verse too.
    assert pa.align_keys(en, es) == [("A1", "a1"), ("A2", "a2")]


def test_parallel_fillets_reader():
    import parallel as pa
    text = ('\ndialogId("x-a", "font_big", "Are you \\"sure\\"?")\n'
            'dialogStr("¿Estás \\"seguro\\"?")\n\n'
            'dialogId("x-b", "font_small", "Untranslated line.")\n')
    assert pa.lua_dialogues(text) == [("x-a", 'Are you "sure"?', '¿Estás "seguro"?'),
                                      ("x-b", "Untranslated line.", None)]


def test_parallel_gettext_catalog():
    import parallel as pa
    try:
        import polib
    except ImportError:
        print("     (polib missing: catalog reader not checked)")
        return
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    po.append(polib.POEntry(msgid="Please enter your password.", msgstr="Introduzca su contraseña."))
    po.append(polib.POEntry(msgid="Untranslated message here.", msgstr=""))
    po.append(polib.POEntry(msgid="One file", msgid_plural="%d files", msgstr_plural={0: "Un archivo", 1: "%d archivos"}))
    po.append(polib.POEntry(msgid="Open", msgstr="Abrir", msgctxt="menu"))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "es.mo")
        po.save_as_mofile(path)
        got = list(pa.catalog_pairs(path))
        with open(os.path.join(d, "bad.mo"), "wb") as f:
            f.write(b"\x00not a catalog")
        assert list(pa.catalog_pairs(os.path.join(d, "bad.mo"))) == []
    assert ("Please enter your password.", "Introduzca su contraseña.") in got, got
    assert ("Open", "Abrir") in got and len(got) == 2, got


def test_marks():
    import translate as t
    assert t.has_marks("Quiero mi perro, dijo el *glorp.")
    assert t.has_marks("Dónde es la #canal?")
    assert t.has_marks("Mi ex-*widow lo dijo.")
    assert t.has_marks("un @word aquí")
    assert not t.has_marks("Quiero mi perro.")
    assert t.unescape(t.escape("a*b[c]")) == "a*b[c]"


def test_splits():
    import synthesize as sy
    pairs = [{"id": "x-%d" % i, "en": "Sentence number %d is here." % i, "es": "e"} for i in range(3000)]
    a = sy.assign_splits(pairs, 1, 50, 60)
    b = sy.assign_splits(list(reversed(pairs)), 1, 50, 60)
    assert a == b
    counts = {s: list(a.values()).count(s) for s in sy.SPLITS}
    assert counts == {"train": 2890, "valid": 50, "test_voice": 60}, counts
    c = sy.assign_splits(pairs, 2, 50, 60)
    assert c != a
    small = sy.assign_splits(pairs[:100], 1, 1000, 1000)
    assert list(small.values()).count("valid") == 5 and list(small.values()).count("test_voice") == 5


def test_holdout_voices():
    import synthesize as sy
    seen = sy.seen_voices("flite_slt")
    assert "flite_slt" not in seen and "festival_slt" not in seen and "flite_rms" in seen
    w = sy.voice_weights(seen)
    assert abs(w.sum() - 1) < 1e-9
    pairs = [{"id": "x-%d" % i, "en": "Sentence number %d is here." % i, "es": "e"} for i in range(400)]
    plan = sy.make_plan(pairs, 1, 20, 20, 2, "flite_rms")
    for j in plan:
        if j["split"] == "test_voice":
            assert j["voice"] == "flite_rms"
        else:
            assert j["voice"] != "flite_rms"
        assert 0.85 <= j["rate"] <= 1.2 and abs(j["pitch_st"]) <= 2.5
    assert plan == sy.make_plan(pairs, 1, 20, 20, 2, "flite_rms")
    assert sum(1 for j in plan if j["split"] == "train") == 2 * 360


def test_augment():
    import numpy as np
    import augment as au
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000.0
    x = 0.1 * (np.sin(2 * np.pi * 200 * t) + np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6000 * t))
    y = au.telephone(rng, x, use_mulaw=False)
    assert len(y) == len(x)
    spec = np.abs(np.fft.rfft(y))
    f = np.fft.rfftfreq(len(y), 1 / 16000)
    band = spec[(f > 900) & (f < 1100)].max()
    assert spec[(f > 5800) & (f < 6200)].max() < 0.01 * band  # gone above the phone band
    assert spec[(f > 180) & (f < 220)].max() < 0.5 * band      # weaker below it
    q = au.mulaw(np.linspace(-1, 1, 1001))
    assert np.max(np.abs(q - np.linspace(-1, 1, 1001))) < 0.05
    for snr in (0.0, 10.0, 20.0):
        n = au.add_noise(np.random.default_rng(1), x, "white", snr) - x
        got = 10 * np.log10(au.speech_power(x) / np.mean(n ** 2))
        assert abs(got - snr) < 0.5, (snr, got)
    r = au.reverb(np.random.default_rng(2), x, 0.5)
    assert len(r) == len(x) and np.isfinite(r).all()
    for name, _ in au.PLAN:
        z, desc = au.apply(np.random.default_rng(3), x.copy(), name)
        assert len(z) == len(x) and desc.split(":")[0] in ("clean", "noise", "reverb", "tel")
    lvl = au.normalise_level(np.random.default_rng(4), x * 100)
    assert np.max(np.abs(lvl)) <= 0.98 + 1e-9


def test_wav_reader():
    import numpy as np
    import voices
    samples = (np.arange(100) - 50).astype("<i2").tobytes()
    fmt = (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + \
        (22050).to_bytes(4, "little") + (44100).to_bytes(4, "little") + (2).to_bytes(2, "little") + \
        (16).to_bytes(2, "little")
    # A streamed WAV, as espeak-ng --stdout writes it: sizes it cannot know.
    wav = b"RIFF" + (0x7FFFF000).to_bytes(4, "little") + b"WAVEfmt " + fmt + b"data" + \
        (0x7FFFF000).to_bytes(4, "little") + samples
    x, sr = voices.read_wav_bytes(wav)
    assert sr == 22050 and len(x) == 100 and x[0] == -50


# ---------------------------------------------------------------------------------------------
# A small corpus end to end
# ---------------------------------------------------------------------------------------------


def missing_tools():
    missing = []
    for mod in ("numpy", "soxr", "soundfile"):
        try:
            __import__(mod)
        except ImportError:
            missing.append("Python package " + mod)
    from debroot import DebRoot
    root = DebRoot()
    needs = [
        ("/usr/share/games/fortunes/fortunes", "fortunes-min"),
        ("/usr/share/wordnet/data.noun", "wordnet-base"),
        ("/usr/share/sword/mods.d/engWEB2015eb.conf", "sword-text-web"),
        ("/usr/share/sword/mods.d/spaRV1909eb.conf", "sword-text-sparv"),
        ("/usr/share/games/fillets-ng/script", "fillets-ng-data"),
        ("/usr/share/dictd/gcide.index", "dict-gcide"),
        ("/usr/share/dictd/jargon.index", "dict-jargon"),
        ("/usr/share/dictd/devil.index", "dict-devil"),
        ("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb", "r-cran-janeaustenr"),
        ("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz", "asterisk-core-sounds-en"),
        ("/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz", "asterisk-core-sounds-es"),
        ("/usr/share/apertium/modes/eng-spa.mode", "apertium-eng-spa"),
        ("/usr/lib/x86_64-linux-gnu/libflite_cmu_us_rms.so.1", "libflite1"),
        ("/usr/lib/x86_64-linux-gnu/espeak-ng-data/phontab", "espeak-ng-data"),
        ("/usr/share/festival/voices/english/kal_diphone", "festvox-kallpc16k"),
        ("/usr/share/festival/voices/english/ked_diphone", "festvox-kdlpc16k"),
        ("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts", "festvox-us-slt-hts"),
    ]
    for path, pkg in needs:
        if not os.path.exists(root.path(path)):
            missing.append("Debian package " + pkg)
    try:
        import polib  # noqa: F401
    except ImportError:
        missing.append("Python package polib")
    if root.root == "/":
        import parallel
        for pkg in parallel.GETTEXT_PACKAGES:
            if subprocess.run(["dpkg-query", "-W", pkg], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode != 0:
                missing.append("Debian package " + pkg)
    for prog, pkg in (("mod2imp", "libsword-utils"), ("apertium-wblank-mode", "apertium"),
                      ("lt-proc", "lttoolbox"), ("espeak-ng", "espeak-ng"), ("festival", "festival")):
        if root.which(prog) is None:
            missing.append("Debian package " + pkg)
    return missing


def read_manifest(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip()]
    return header, rows


def md5s(folder):
    out = {}
    for dirpath, _, files in os.walk(os.path.join(folder, "audio")):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                out[name] = hashlib.md5(f.read()).hexdigest()
    return out


def end_to_end(work):
    import numpy as np
    import soundfile
    import sources as s
    import synthesize as sy
    from debroot import DebRoot

    out = os.path.join(work, "corpus")
    cmd = ["bash", os.path.join(DATA, "build_corpus.sh"), "--out", out, "--limit", "200", "--jobs", "2",
           "--seed", "7", "--renditions", "2"]
    if os.environ.get("MTLA_DEB_ROOT", "/") != "/":
        cmd += ["--root", os.environ["MTLA_DEB_ROOT"]]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        print(log[-3000:])
        raise AssertionError("build_corpus.sh failed (%d)" % p.returncode)
    manifests = {split: read_manifest(os.path.join(out, split + ".tsv")) for split in sy.SPLITS}

    def columns():
        for split, (header, rows) in manifests.items():
            assert header == sy.MANIFEST_COLUMNS, (split, header)
            assert rows, split
            for r in rows:
                assert len(r) == len(sy.MANIFEST_COLUMNS) and all(r[c] != "" for c in sy.MANIFEST_COLUMNS), r

    def audio():
        for split, (_, rows) in manifests.items():
            for r in rows:
                path = os.path.join(out, r["audio"])
                info = soundfile.info(path)
                assert info.samplerate == 16000 and info.channels == 1 and info.format == "FLAC", (path, info)
                x, sr = soundfile.read(path, dtype="int16")
                assert sr == 16000 and len(x) == int(r["n_samples"]) and len(x) > 8000, r["id"]
                assert np.abs(x).max() > 1000, r["id"]  # not silence

    def splits_disjoint():
        owner = {}
        for split, (_, rows) in manifests.items():
            for r in rows:
                k = s.dedup_key(r["en"])
                assert owner.setdefault(k, split) == split, (r["en"], owner[k], split)
        ids = [r["id"] for _, rows in manifests.values() for r in rows]
        assert len(ids) == len(set(ids))

    def held_out_voice():
        train_voices = {r["voice"] for r in manifests["train"][1]} | {r["voice"] for r in manifests["valid"][1]}
        test_voices = {r["voice"] for r in manifests["test_voice"][1]}
        assert test_voices == {"flite_rms"}, test_voices
        assert "flite_rms" not in train_voices
        engines = {v.split("_")[0] for v in train_voices}
        assert engines == {"flite", "festival", "espeak"}, train_voices

    def spanish():
        for _, rows in manifests.values():
            for r in rows:
                es = r["es"]
                assert not any(c in es for c in "*#@"), es
                if es.endswith("?"):
                    assert "¿" in es, es
                if es.endswith("!"):
                    assert "¡" in es, es

    def no_evaluation_text():
        root = DebRoot()
        forbidden = s.forbidden_keys(s.asterisk_prompts(root, "en"))
        assert len(forbidden) > 300
        for _, rows in manifests.values():
            for r in rows:
                assert s.dedup_key(r["en"]) not in forbidden, r["en"]

    def human_translations():
        # --limit 200 also samples 200 human pairs; they reach the manifests with their own
        # Spanish, and no sentence of theirs was sent to Apertium as well.
        import parallel
        human = parallel.read_tsv(os.path.join(out, "text", "human.tsv"))
        assert len(human) == 200, len(human)
        by_key = {s.dedup_key(h["en"]): h for h in human}
        def source(r):
            return r["id"].split("-", 1)[0]  # ids are <source>-<sha1>-<rendition>
        got = [r for _, rows in manifests.values() for r in rows if source(r) in parallel.SOURCES]
        assert got, "no human pair in the manifests"
        for r in got:
            h = by_key[s.dedup_key(r["en"])]
            assert r["es"] == h["es"] and source(r) == h["source"], (r, h)
        machine = [r for _, rows in manifests.values() for r in rows if source(r) not in parallel.SOURCES]
        assert machine and not any(s.dedup_key(r["en"]) in by_key for r in machine)

    def austen_reader():
        import rlazyload
        root = DebRoot()
        books = rlazyload.read_lazyload(root.path("/usr/lib/R/site-library/janeaustenr/data/Rdata"))
        assert sorted(books) == ["emma", "mansfieldpark", "northangerabbey", "persuasion",
                                 "prideprejudice", "sensesensibility"], sorted(books)
        assert len(books["emma"]) == 16235 and books["emma"][0] == "EMMA"

    def deterministic():
        # The same pairs with another process count: the same manifests and the same audio.
        again = os.path.join(work, "again")
        cmd2 = [sys.executable, os.path.join(DATA, "synthesize.py"), "--pairs",
                os.path.join(out, "text", "pairs.tsv"), "--out", again, "--jobs", "1", "--seed", "7",
                "--renditions", "2"]
        p2 = subprocess.run(cmd2, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p2.returncode == 0, p2.stdout.decode()[-2000:]
        for split in sy.SPLITS:
            with open(os.path.join(out, split + ".tsv"), "rb") as a, open(os.path.join(again, split + ".tsv"), "rb") as b:
                assert a.read() == b.read(), split
        assert md5s(out) == md5s(again)

    for name, fn in [("e2e manifest columns", columns), ("e2e audio 16 kHz FLAC", audio),
                     ("e2e splits disjoint", splits_disjoint), ("e2e held-out voice", held_out_voice),
                     ("e2e spanish marks", spanish), ("e2e no asterisk prompt text", no_evaluation_text),
                     ("e2e human translations", human_translations),
                     ("e2e janeaustenr reader", austen_reader), ("e2e deterministic", deterministic)]:
        check(name, fn)


def main():
    keep = None
    if len(sys.argv) > 2 and sys.argv[1] == "--keep":
        keep = sys.argv[2]
    for name, fn in [("filters", test_filters), ("normalise", test_normalise),
                     ("split sentences", test_split_sentences), ("opening marks", test_opening_marks),
                     ("apertium marks", test_marks), ("parallel: spanish rules", test_parallel_rules),
                     ("parallel: bible alignment", test_parallel_bible_alignment),
                     ("parallel: fillets reader", test_parallel_fillets_reader),
                     ("parallel: gettext catalog", test_parallel_gettext_catalog)]:
        check(name, fn)
    # The other rule checks import synthesize.py and augment.py, which need numpy and soxr.
    try:
        import numpy  # noqa: F401
        import soxr  # noqa: F401
    except ImportError as e:
        print("skipping the audio rule checks and the end-to-end corpus: %s" % e)
        print("%d passed, %d failed, 2 skipped" % (results["passed"], results["failed"]))
        return 1 if results["failed"] else SKIP
    for name, fn in [("splits", test_splits), ("held-out voices", test_holdout_voices),
                     ("augment", test_augment), ("wav reader", test_wav_reader)]:
        check(name, fn)
    missing = missing_tools()
    if missing:
        print("skipping the end-to-end corpus: missing %s (see training/data/README.md)" % ", ".join(sorted(set(missing))))
        print("%d passed, %d failed, 1 skipped" % (results["passed"], results["failed"]))
        return 1 if results["failed"] else SKIP
    if keep:
        os.makedirs(keep, exist_ok=True)
        end_to_end(keep)
    else:
        with tempfile.TemporaryDirectory(prefix="mtla-corpus-test-") as work:
            end_to_end(work)
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
