#!/usr/bin/env python3
"""Human Spanish translations of English sentences, from Debian packages.

    python3 parallel.py --out human.tsv [--root DIR] [--stats stats.json] [--sources a,b]
                        [--limit N --seed S]

Each source pairs an English text with the Spanish that a person wrote for it:

  bible     sword-text-web + sword-text-sparv   World English Bible verse = Reina-Valera 1909
            (libsword-utils: mod2imp)            verse, aligned by their "$$$Book C:V" keys
  fillets   fillets-ng-data                      the game's dialogues, dialogs_en.lua against
                                                 dialogs_es.lua by dialogue id
  gettext   GETTEXT_PACKAGES below               msgid and msgstr of their Spanish .mo catalogs
                                                 (polib reads them)

The English side passes the rules of sources.py (normalise, keep_reason: 4-25 words, plain
ASCII, a capital first and . ! ? last, no numbers, no markup, placeholders or accelerators,
which keep_reason's character set rejects). The Spanish side passes spanish_keep_reason(): no
markup, format codes or accelerators, the same kind of final mark, and a length not far from the
English one (aligned texts that are not translations of each other are left out). Reina-Valera
1909 writes the accents of its time (á, fué, dió): modern_spelling() writes them as today.

Pairs whose English equals an Asterisk English prompt or whose Spanish equals an Asterisk
Spanish prompt are dropped (they are the evaluation set). A sentence that two sources translate
is kept once, from the first source in the order above. Output: TSV id, source, en, es, with
ids "<source>-<sha1 of the English key>[:10]" as in sources.py.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from debroot import DebRoot  # noqa: E402
import sources  # noqa: E402

SOURCES = ["bible", "fillets", "gettext"]
MODULE_CONF = {"engWEB2015eb": "engWEB2015eb", "spaRV1909eb": "spaRV1909eb"}

# Packages whose Spanish catalogs are read: interface messages of programs and games. Fixed
# here, so that the corpus does not depend on what else happens to be installed.
GETTEXT_PACKAGES = [
    "libreoffice-l10n-es", "wesnoth-1.16-data", "gimp-data", "gnucash-common", "vlc-l10n",
    "libgtk2.0-common", "libc-l10n", "gnupg-l10n", "binutils-common", "man-db", "wget",
    "packagekit", "xdg-user-dirs", "software-properties-common",
]

# ---------------------------------------------------------------------------------------------
# Spanish text rules
# ---------------------------------------------------------------------------------------------

# Reina-Valera 1909 spells by the rules of its day: a written accent on monosyllables (fué,
# dió, vió) and on the one-letter words á, é, ó. The Real Academia dropped them in 1952.
_OLD_SPELLING = {
    "á": "a", "é": "e", "ó": "o", "ú": "u", "fué": "fue", "fuí": "fui", "dió": "dio",
    "vió": "vio", "pié": "pie", "dí": "di", "fé": "fe", "vé": "ve", "ví": "vi", "ní": "ni",
    "crió": "crio", "rió": "rio", "guió": "guio", "lió": "lio", "pió": "pio", "huí": "hui",
}
_OLD_RE = re.compile(r"\b(%s)\b" % "|".join(sorted(_OLD_SPELLING, key=len, reverse=True)),
                     re.IGNORECASE)


def modern_spelling(s):
    def repl(m):
        w = m.group(0)
        new = _OLD_SPELLING[w.lower()]
        return new[0].upper() + new[1:] if w[0].isupper() else new
    return _OLD_RE.sub(repl, s)


def normalise_spanish(s):
    """Typographic characters as sources.normalise does, quotes dropped, spaces tidied."""
    s = unicodedata.normalize("NFC", s)
    s = "".join(sources._PUNCT_MAP.get(c, c) for c in s)
    s = s.replace('"', " ")
    s = re.sub(r"(?<![^\W\d_])'|'(?![^\W\d_])", " ", s)
    s = re.sub(r"\s+--+\s*|\s*--+\s+|\s+-\s+", ", ", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    s = re.sub(r"([¿¡])\s+", r"\1", s)
    s = re.sub(r",(\s*,)+", ",", s)
    s = re.sub(r"^[,;:]\s*", "", s)
    return s


_ES_ALLOWED = re.compile(r"^[A-Za-zÁÉÍÓÚÜÑáéíóúüñ0-9 ,.;:!?¿¡'-]+$")


def spanish_keep_reason(es, en):
    """None when es is a clean Spanish sentence that can translate en, else the reason."""
    if not es:
        return "empty"
    if sources._URLISH.search(es):
        return "url"
    if not _ES_ALLOWED.match(es):
        return "chars"
    first = es.lstrip("¿¡")
    if not first or not (first[0].isupper() or first[0].isdigit()):
        return "start"
    if es[-1] not in ".!?" or ".." in es:
        return "end"
    if (es[-1] == "?") != (en[-1] == "?"):
        return "final_mark"
    if sources.dedup_key(es) == sources.dedup_key(en):
        return "untranslated"
    if (es[-1] == "?" and "¿" not in es) or (es[-1] == "!" and "¡" not in es):
        return "opening_mark"  # careless text, and in Reina-Valera mostly a misaligned verse
    ratio = len(es) / max(1, len(en))
    if not 0.6 <= ratio <= 2.0:
        return "length"
    n = len(es.split())
    if n < 2 or n > 40:
        return "words"
    return None


# ---------------------------------------------------------------------------------------------
# Sources: each yields (English, Spanish) in document order
# ---------------------------------------------------------------------------------------------


def _imp_verses(root, module, package):
    """{"Book C:V": text without markup} of a SWORD module, through mod2imp."""
    mod2imp = root.require_program("mod2imp", "libsword-utils")
    sword = root.require("/usr/share/sword", package)
    root.require("/usr/share/sword/mods.d/%s.conf" % MODULE_CONF[module], package)
    env = root.child_env({"SWORD_PATH": sword, "HOME": os.environ.get("HOME", "/tmp")})
    out = subprocess.run([mod2imp, module], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=True).stdout.decode("utf-8", "replace")
    verses = {}
    for block in out.split("$$$")[1:]:
        head, _, body = block.partition("\n")
        head = head.strip()
        if not re.match(r"^.* \d+:[1-9]\d*$", head):
            continue  # headings (verse 0), book and module introductions
        body = re.sub(r"<note\b.*?</note>", " ", body, flags=re.S)
        body = re.sub(r"<title\b.*?</title>", " ", body, flags=re.S)
        body = re.sub(r"<[^>]*>", "", body)
        verses[head] = re.sub(r"\s+", " ", body).strip()
    return verses


def align_keys(en, es):
    """(en text, es text) of the verses both modules have, in the English module's order.

    The two modules do not always number verses alike (Job 40-41 and some Psalms are split
    differently), and a verse of the same number is then another text: only chapters with the
    same number of verses in both are kept.
    """
    def chapter(key):
        return key.rsplit(":", 1)[0]

    def counts(verses):
        n = {}
        for k in verses:
            n[chapter(k)] = n.get(chapter(k), 0) + 1
        return n

    n_en, n_es = counts(en), counts(es)
    return [(en[k], es[k]) for k in en
            if k in es and en[k] and es[k] and n_en[chapter(k)] == n_es.get(chapter(k))]


def sentence_case_opening(s):
    """The capitals of a chapter's first word ("LEVANTÁNDOSE entonces") as a sentence starts."""
    m = re.match(r"^([¿¡]*)([^\W\d_]{2,})\b", s)
    if m and m.group(2).isupper():
        w = m.group(2)
        s = m.group(1) + w[0] + w[1:].lower() + s[m.end():]
    return s


def src_bible(root):
    en = _imp_verses(root, "engWEB2015eb", "sword-text-web")
    es = _imp_verses(root, "spaRV1909eb", "sword-text-sparv")
    for e, s in align_keys(en, es):
        yield e, sentence_case_opening(modern_spelling(s))


_LUA_CALL = re.compile(r'dialogId\(\s*"([^"]+)"\s*,\s*"[^"]*"\s*,\s*"((?:[^"\\]|\\.)*)"\s*\)'
                       r'(?:\s*dialogStr\(\s*"((?:[^"\\]|\\.)*)"\s*\))?')


def lua_dialogues(text):
    """[(id, English, translation or None)] of a fillets-ng dialogs_*.lua file."""
    unq = lambda s: re.sub(r"\\(.)", r"\1", s) if s is not None else None  # noqa: E731
    return [(m.group(1), unq(m.group(2)), unq(m.group(3))) for m in _LUA_CALL.finditer(text)]


def src_fillets(root):
    base = root.require("/usr/share/games/fillets-ng/script", "fillets-ng-data")
    for level in sorted(os.listdir(base)):
        for prefix in ("dialogs", "demo_dialogs"):
            path = os.path.join(base, level, prefix + "_es.lua")
            if not os.path.isfile(path):
                continue
            for _, en, es in lua_dialogues(sources.read_text(path)):
                if es:
                    # A line of dialogue may hold several sentences; keep it whole when it is
                    # one, since the Spanish cannot be split in step with the English.
                    yield en, es


def _package_files(root, package):
    """Files of an installed package (dpkg), or every file when root is an unpacked folder."""
    if root.root != "/":
        return None
    p = subprocess.run(["dpkg-query", "-L", package], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    if p.returncode != 0:
        raise SystemExit("parallel.py: the gettext source needs the Debian package %s "
                         "(apt-get install %s)" % (package, package))
    return p.stdout.decode("utf-8", "replace").split("\n")


def gettext_catalogs(root, packages=GETTEXT_PACKAGES):
    """Sorted paths of the Spanish .mo catalogs of the given packages."""
    want = re.compile(r"/es(_ES)?/LC_MESSAGES/[^/]+\.mo$")
    found = set()
    for package in packages:
        files = _package_files(root, package)
        if files is None:  # an unpacked root: every catalog in it
            for d, _, names in os.walk(root.root):
                found.update(os.path.join(d, n) for n in names if want.search(os.path.join(d, n)))
            break
        found.update(f for f in files if want.search(f) and os.path.isfile(f))
    return sorted(found)


def catalog_pairs(path):
    """(msgid, msgstr) of a .mo catalog's translated singular messages, in file order."""
    import polib
    try:
        mo = polib.mofile(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        print("parallel.py: %s: skipped (%s)" % (path, e), file=sys.stderr)
        return
    for entry in mo:
        if entry.msgid_plural or not entry.msgid or not entry.msgstr:
            continue
        yield entry.msgid, entry.msgstr


def src_gettext(root):
    for path in gettext_catalogs(root):
        yield from catalog_pairs(path)


SOURCE_FUNCS = {"bible": src_bible, "fillets": src_fillets, "gettext": src_gettext}

# ---------------------------------------------------------------------------------------------


def collect(root, names=SOURCES, forbidden_en=frozenset(), forbidden_es=frozenset()):
    """(rows [(id, source, en, es)], stats)."""
    seen = set()
    rows, stats = [], {}
    for name in names:
        st = {"candidates": 0, "kept": 0, "duplicate": 0, "evaluation_text": 0,
              "dropped_en": {}, "dropped_es": {}}
        for raw_en, raw_es in SOURCE_FUNCS[name](root):
            st["candidates"] += 1
            en = sources.normalise(raw_en)
            why = sources.keep_reason(en)
            if why is not None:
                st["dropped_en"][why] = st["dropped_en"].get(why, 0) + 1
                continue
            es = normalise_spanish(raw_es)
            why = spanish_keep_reason(es, en)
            if why is not None:
                st["dropped_es"][why] = st["dropped_es"].get(why, 0) + 1
                continue
            key = sources.dedup_key(en)
            if key in forbidden_en or sources.dedup_key(es) in forbidden_es:
                st["evaluation_text"] += 1
                continue
            if key in seen:
                st["duplicate"] += 1
                continue
            seen.add(key)
            rows.append((sources.sentence_id(name, en), name, en, es))
            st["kept"] += 1
        st["dropped_en"] = dict(sorted(st["dropped_en"].items()))
        st["dropped_es"] = dict(sorted(st["dropped_es"].items()))
        stats[name] = st
    return rows, stats


COLUMNS = ["id", "source", "en", "es"]


def read_tsv(path):
    return sources.read_tsv(path, COLUMNS)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="TSV to write (id, source, en, es)")
    ap.add_argument("--root", default=None, help="folder the .debs were unpacked into (default $MTLA_DEB_ROOT or /)")
    ap.add_argument("--stats", help="JSON file for the counts per source")
    ap.add_argument("--sources", default=",".join(SOURCES), help="comma-separated subset of " + ",".join(SOURCES))
    ap.add_argument("--limit", type=int, default=0, help="keep a seeded random sample of N pairs")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    root = DebRoot(args.root)
    names = [s for s in args.sources.split(",") if s]
    for s in names:
        if s not in SOURCE_FUNCS:
            ap.error("unknown source %r" % s)
    forbidden_en = sources.forbidden_keys(sources.asterisk_prompts(root, "en"))
    forbidden_es = sources.forbidden_keys(sources.asterisk_prompts(root, "es"))
    rows, stats = collect(root, names, forbidden_en, forbidden_es)
    total = len(rows)
    rows = sources.subsample(rows, args.limit, args.seed)
    sources.write_tsv(args.out, COLUMNS, rows)
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump({"sources": stats, "distinct": total, "pairs": len(rows), "limit": args.limit,
                       "gettext_packages": GETTEXT_PACKAGES}, f, indent=1, sort_keys=True)
    for name in names:
        st = stats[name]
        print("%-8s candidates %7d  kept %6d  duplicate %5d  evaluation %d  en %s  es %s" % (
            name, st["candidates"], st["kept"], st["duplicate"], st["evaluation_text"],
            " ".join("%s=%d" % kv for kv in st["dropped_en"].items()),
            " ".join("%s=%d" % kv for kv in st["dropped_es"].items())), file=sys.stderr)
    print("human pairs: %d, written: %d" % (total, len(rows)), file=sys.stderr)


if __name__ == "__main__":
    main()
