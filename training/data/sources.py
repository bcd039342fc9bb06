#!/usr/bin/env python3
"""English sentences from Debian packages, cleaned, filtered and deduplicated.

    python3 sources.py --out sentences.tsv [--root DIR] [--stats stats.json]
                       [--limit N --seed S]

Each source reads the files one Debian package installs (below --root, see debroot.py):

  fortunes   fortunes, fortunes-min      /usr/share/games/fortunes/*  (fortune cookies)
  wordnet    wordnet-base                 /usr/share/wordnet/data.*   (gloss examples)
  web        sword-text-web + libsword-utils  mod2imp engWEB2015eb   (World English Bible)
  gcide      dict-gcide                   /usr/share/dictd/gcide.*    (attributed quotations)
  austen     r-cran-janeaustenr           data/Rdata.rdb              (six novels)
  jargon     dict-jargon                  /usr/share/dictd/jargon.*   (entry prose)
  devil      dict-devil                   /usr/share/dictd/devil.*    (entry prose)

Every sentence goes through normalise() then keep_reason() (None = kept); duplicates are
decided on dedup_key() and the first source in the order above keeps it. Sentences equal to an
Asterisk prompt (asterisk-core-sounds-en's core-sounds-en.txt, the evaluation set's texts) are
dropped. Output: TSV with header id, source, en; ids are "<source>-<sha1 of key>[:10]", so they
do not depend on the order or on --limit.
"""
import argparse
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from debroot import DebRoot  # noqa: E402
import rlazyload  # noqa: E402

SOURCES = ["fortunes", "wordnet", "web", "gcide", "austen", "jargon", "devil"]
MIN_WORDS, MAX_WORDS = 4, 25

# ---------------------------------------------------------------------------------------------
# Normalisation and filters
# ---------------------------------------------------------------------------------------------

_PUNCT_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": " - ", "\u2014": " - ", "\u2015": " - ", "\u2012": " - ",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
}


def normalise(s):
    """Typographic characters to ASCII, quotes dropped, dashes as commas, spaces collapsed.

    Quotation marks are not spoken, so they go; an apostrophe stays only inside a word
    (don't, Yahweh's). A dash between words is a pause: it becomes a comma.
    """
    s = unicodedata.normalize("NFC", s)
    s = "".join(_PUNCT_MAP.get(c, c) for c in s)
    s = s.replace('"', " ")
    s = re.sub(r"(?<![A-Za-z])'|'(?![A-Za-z])", " ", s)
    s = re.sub(r"\s+--+\s*|\s*--+\s+|\s+-\s+", ", ", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    s = re.sub(r",(\s*,)+", ",", s)
    s = re.sub(r"([;:!?.]),", r"\1", s)
    s = re.sub(r"^[,;:]\s*", "", s)
    s = re.sub(r"[,;:]\s*([.!?])$", r"\1", s)
    return s


_ALLOWED = re.compile(r"^[A-Za-z0-9 ,.;:!?'-]+$")
_URLISH = re.compile(r"(https?:|www\.|ftp\.|\.(com|org|net|edu|gov|uk|de)\b|@)", re.I)
_LABEL = re.compile(r"^[A-Za-z][\w .'-]{0,24}:\s")
_ROMAN = re.compile(r"^(?=[MDCLXVI])M*(C[MD]|D?C{0,3})(X[CL]|L?X{0,3})(I[XV]|V?I{0,3})\.?$")


def words(s):
    return s.split()


def keep_reason(s):
    """None when s is a clean sentence to keep, else the reason it is dropped."""
    if not s:
        return "empty"
    if _URLISH.search(s):
        return "url"
    if not _ALLOWED.match(s):
        return "chars"
    n = len(words(s))
    if n < MIN_WORDS:
        return "short"
    if n > MAX_WORDS:
        return "long"
    if not (s[0].isupper() or s[0].isdigit()):
        return "start"
    if s[-1] not in ".!?":
        return "end"
    if ".." in s or re.search(r"[!?.]{2,}", s) or re.search(r"[,;:]{2,}", s):
        return "punct"
    letters = [c for c in s if c.isalpha()]
    upper = sum(1 for c in letters if c.isupper())
    if len(letters) < 10 or upper > 0.3 * len(letters):
        return "caps"
    if _LABEL.match(s):
        return "label"
    for w in words(s):
        core = w.strip(",.;:!?'-")
        if any(c.isdigit() for c in core) and not re.fullmatch(r"\d{1,4}", core):
            return "number"
        if len(core) > 20:
            return "token"
        if "-" in core and (core.startswith("-") or core.endswith("-") or "--" in core):
            return "punct"
    if re.search(r"[;:]\s*$", s[:-1]):
        return "punct"
    if re.search(r"\b(\w)\s+\1\s+\1\b", s):
        return "repeat"
    return None


def dedup_key(s):
    """Lower case letters and digits, one space apart: what two texts share when they sound alike."""
    return " ".join(re.findall(r"[a-z0-9']+", s.lower().replace("-", " ")))


def sentence_id(source, s):
    return "%s-%s" % (source, hashlib.sha1(dedup_key(s).encode()).hexdigest()[:10])


_ABBREV = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "mt", "gen",
    "col", "capt", "lt", "rev", "prof", "hon", "gov", "sgt", "cf", "viz", "ca", "vol", "ch",
    "fig", "op", "esq", "messrs", "mme", "mlle", "ft", "oz", "lb", "approx", "dept", "inc",
    "ltd", "co", "corp", "ave", "blvd", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "a.m", "p.m", "u.s", "u.k", "lit", "fr", "l", "gr", "ger",
}


def split_sentences(text):
    """Sentences of running text: a break after . ! ? followed by a capital or a quote.

    A full stop after a known abbreviation or a single letter (an initial) is no break.
    """
    text = re.sub(r"\s+", " ", text).strip()
    out, start = [], 0
    for m in re.finditer(r"[.!?]+['\")\]\u2019\u201d]*\s+(?=['\"(\[\u2018\u201c]?[A-Z0-9])", text):
        end = m.end()
        head = text[start:m.start() + 1]
        if text[m.start()] == ".":
            last = re.split(r"[\s(\[\"']", head[:-1])[-1].lower()
            if last in _ABBREV or (len(last) == 1 and last.isalpha()):
                continue
        out.append(text[start:end].strip())
        start = end
    if start < len(text):
        out.append(text[start:].strip())
    return [s for s in out if s]


# ---------------------------------------------------------------------------------------------
# Sources: each yields raw candidate sentences in document order
# ---------------------------------------------------------------------------------------------


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def src_fortunes(root):
    d = root.require("/usr/share/games/fortunes", "fortunes")
    names = sorted(n for n in os.listdir(d)
                   if not n.endswith((".dat", ".u8")) and os.path.isfile(os.path.join(d, n))
                   and not os.path.islink(os.path.join(d, n)))
    for name in names:
        for cookie in re.split(r"^%\s*$", read_text(os.path.join(d, name)), flags=re.M):
            segment = []
            for line in cookie.split("\n"):
                if re.match(r"^\s*--", line):  # attribution: the cookie's text is over
                    break
                m = re.match(r"^\s*([A-Za-z][\w .'-]{0,24}):\t\s*(.*)$", line)
                if m:  # "Q:<tab>..." or "Speaker:<tab>...": one utterance per line
                    yield from split_sentences(" ".join(segment))
                    segment = []
                    yield from split_sentences(m.group(2))
                    continue
                if not line.strip():
                    yield from split_sentences(" ".join(segment))
                    segment = []
                    continue
                segment.append(line.strip())
            yield from split_sentences(" ".join(segment))


def src_wordnet(root):
    for pos in ("noun", "verb", "adj", "adv"):
        p = root.require("/usr/share/wordnet/data." + pos, "wordnet-base")
        with open(p, encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                gloss = line.split("|", 1)[1]
                for ex in re.findall(r'"([^"]+)"', gloss):
                    ex = re.sub(r"\s*--.*$", "", ex).strip()  # "-- Shakespeare"
                    ex = re.sub(r"\s*;\s*$", "", ex)
                    if not ex:
                        continue
                    ex = ex[0].upper() + ex[1:]
                    if ex[-1] not in ".!?":
                        ex += "."
                    yield ex


def src_web(root):
    """World English Bible: mod2imp prints the module; verses of a chapter joined, then split."""
    mod2imp = root.require_program("mod2imp", "libsword-utils")
    sword = root.require("/usr/share/sword", "sword-text-web")
    env = root.child_env({"SWORD_PATH": sword, "HOME": os.environ.get("HOME", "/tmp")})
    out = subprocess.run([mod2imp, "engWEB2015eb"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=True).stdout.decode("utf-8", "replace")
    chapter, current = [], None
    for block in out.split("$$$")[1:]:
        head, _, body = block.partition("\n")
        m = re.match(r"^(.*) (\d+):(\d+)$", head.strip())
        if not m:
            continue
        book_chapter, verse = (m.group(1), m.group(2)), int(m.group(3))
        if book_chapter != current:
            yield from split_sentences(" ".join(chapter))
            chapter, current = [], book_chapter
        if verse == 0:
            continue  # book and chapter headings, prefaces
        body = re.sub(r"<note\b.*?</note>", " ", body, flags=re.S)
        body = re.sub(r"<title\b.*?</title>", " ", body, flags=re.S)
        body = re.sub(r"<[^>]*>", "", body)
        chapter.append(body.strip())
    yield from split_sentences(" ".join(chapter))


def dictd_number(s):
    digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    n = 0
    for c in s:
        n = n * 64 + digits.index(c)
    return n


def dictd_entries(root, name, package):
    """(headword, text) of a dictd dictionary, in file order, its 00-database entries left out."""
    index = root.require("/usr/share/dictd/%s.index" % name, package)
    data = gzip.open(root.require("/usr/share/dictd/%s.dict.dz" % name, package)).read()
    entries = {}
    with open(index, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00-database") or parts[0].startswith("00database"):
                continue
            # Several headwords can point at one entry: keep it once, under its first headword.
            entries.setdefault((dictd_number(parts[1]), dictd_number(parts[2])), parts[0])
    for (off, length), head in sorted(entries.items()):
        yield head, data[off:off + length].decode("utf-8", errors="replace")


def src_gcide(root):
    """Quotations: a quoted passage followed by --Author."""
    for _, text in dictd_entries(root, "gcide", "dict-gcide"):
        flat = re.sub(r"\s+", " ", text)
        for m in re.finditer(r'"([^"]{10,600})"\s*--\s*[A-Z]', flat):
            yield from split_sentences(m.group(1))


def src_austen(root):
    prefix = root.require("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb",
                          "r-cran-janeaustenr")[:-4]
    books = rlazyload.read_lazyload(prefix)
    for name in sorted(books):
        para = []
        for line in books[name] + [""]:
            line = (line or "").strip()
            if line:
                para.append(line)
                continue
            text = " ".join(para)
            para = []
            text = re.sub(r"_([^_]+)_", r"\1", text)  # _emphasis_
            yield from split_sentences(text)


def _prose_paragraphs(text, indent_max):
    """Paragraphs of lines indented by at most indent_max spaces (deeper ones are verse or code)."""
    para = []
    for line in text.split("\n") + [""]:
        if not line.strip():
            if para:
                yield " ".join(para)
            para = []
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent > indent_max or "\t" in line[:indent + 1]:
            if para:
                yield " ".join(para)
            para = []
            continue
        para.append(line.strip())


def src_jargon(root):
    for _, text in dictd_entries(root, "jargon", "dict-jargon"):
        body = text.split("\n", 1)[1] if "\n" in text else ""
        for p in _prose_paragraphs(body, 4):
            if re.match(r"^/[^/]+/", p) or re.match(r"^\w+\.$", p):
                continue  # pronunciation and part-of-speech lines
            p = re.sub(r"^\[[^\]]*\]\s*", "", p)   # [common], [techspeak]
            p = re.sub(r"^\d+\.\s*", "", p)        # sense numbers
            p = re.sub(r"\{([^}]*)\}", r"\1", p)   # cross references
            yield from split_sentences(p)


def src_devil(root):
    for _, text in dictd_entries(root, "devil", "dict-devil"):
        for i, p in enumerate(_prose_paragraphs(text, 0)):
            if i == 0:
                p = re.sub(r"^[A-Z][A-Z' -]*,\s*[a-z. ]+\.\s+", "", p)  # "CHILDHOOD, n.  "
            yield from split_sentences(p)


SOURCE_FUNCS = {
    "fortunes": src_fortunes, "wordnet": src_wordnet, "web": src_web, "gcide": src_gcide,
    "austen": src_austen, "jargon": src_jargon, "devil": src_devil,
}

# ---------------------------------------------------------------------------------------------
# Evaluation texts that must never be trained on
# ---------------------------------------------------------------------------------------------

ASTERISK_TXT = {
    "en": ("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz", "asterisk-core-sounds-en"),
    "es": ("/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz", "asterisk-core-sounds-es"),
}


def asterisk_prompts(root, lang):
    """Texts of the Asterisk prompts (name: text lines), whole and split into sentences."""
    path, package = ASTERISK_TXT[lang]
    texts = []
    with gzip.open(root.require(path, package), "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            text = line.split(":", 1)[1].strip()
            if text.startswith("["):
                continue  # [tone descriptions]
            texts.append(text)
    return texts


def forbidden_keys(texts):
    """dedup_key()s of the prompts and of each of their sentences."""
    keys = set()
    for t in texts:
        for piece in [t] + split_sentences(t):
            k = dedup_key(normalise(piece))
            if k:
                keys.add(k)
    return keys


# ---------------------------------------------------------------------------------------------


def collect(root, sources=SOURCES, forbidden=frozenset()):
    """(kept rows [(id, source, en)], stats)."""
    seen = set()
    rows = []
    stats = {}
    for name in sources:
        st = {"candidates": 0, "kept": 0, "duplicate": 0, "evaluation_text": 0, "dropped": {}}
        for raw in SOURCE_FUNCS[name](root):
            st["candidates"] += 1
            s = normalise(raw)
            why = keep_reason(s)
            if why is not None:
                st["dropped"][why] = st["dropped"].get(why, 0) + 1
                continue
            k = dedup_key(s)
            if k in forbidden:
                st["evaluation_text"] += 1
                continue
            if k in seen:
                st["duplicate"] += 1
                continue
            seen.add(k)
            rows.append((sentence_id(name, s), name, s))
            st["kept"] += 1
        st["dropped"] = dict(sorted(st["dropped"].items()))
        stats[name] = st
    return rows, stats


def subsample(rows, limit, seed):
    """A deterministic sample of limit rows (all when limit is 0), in their original order."""
    if not limit or limit >= len(rows):
        return rows
    rng = random.Random(seed)
    pick = set(rng.sample(range(len(rows)), limit))
    return [r for i, r in enumerate(rows) if i in pick]


def read_tsv(path, columns=None):
    """Rows of a TSV with a header line, as dicts; with columns, the header must start so."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if columns and header[:len(columns)] != columns:
            raise SystemExit("%s: expected columns %s" % (path, ", ".join(columns)))
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


def write_tsv(path, header, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            assert not any("\t" in str(x) or "\n" in str(x) for x in r), r
            f.write("\t".join(str(x) for x in r) + "\n")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="sentences TSV to write (id, source, en)")
    ap.add_argument("--root", default=None, help="folder the .debs were unpacked into (default $MTLA_DEB_ROOT or /)")
    ap.add_argument("--stats", help="JSON file for the counts per source")
    ap.add_argument("--sources", default=",".join(SOURCES), help="comma-separated subset of " + ",".join(SOURCES))
    ap.add_argument("--limit", type=int, default=0, help="keep a seeded random sample of N sentences")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    root = DebRoot(args.root)
    sources = [s for s in args.sources.split(",") if s]
    for s in sources:
        if s not in SOURCE_FUNCS:
            ap.error("unknown source %r" % s)
    en_prompts = asterisk_prompts(root, "en")
    rows, stats = collect(root, sources, forbidden_keys(en_prompts))
    total = len(rows)
    rows = subsample(rows, args.limit, args.seed)
    write_tsv(args.out, ["id", "source", "en"], rows)
    summary = {"sources": stats, "distinct": total, "written": len(rows),
               "asterisk_en_prompts": len(en_prompts), "limit": args.limit, "seed": args.seed}
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
    for name in sources:
        st = stats[name]
        print("%-9s candidates %7d  kept %6d  duplicate %5d  evaluation %d  dropped %s" % (
            name, st["candidates"], st["kept"], st["duplicate"], st["evaluation_text"],
            " ".join("%s=%d" % kv for kv in st["dropped"].items())), file=sys.stderr)
    print("distinct sentences: %d, written: %d" % (total, len(rows)), file=sys.stderr)


if __name__ == "__main__":
    main()
