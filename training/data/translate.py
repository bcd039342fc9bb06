#!/usr/bin/env python3
"""Spanish targets for English sentences with Apertium (apertium, apertium-eng-spa).

    python3 translate.py --in sentences.tsv --out pairs.tsv [--root DIR] [--jobs N]
                         [--human human.tsv] [--max-pairs N]
                         [--stats stats.json] [--check-unmarked N]

Input: TSV id, source, en (sources.py). Output: TSV id, en, es, source.

With --human (parallel.py's TSV id, source, en, es: translations written by people), every
human pair is kept first, and Apertium translates only the sentences that have none (decided
on sources.dedup_key, so "web" sentences that are whole Bible verses take Reina-Valera's
Spanish). --max-pairs N then keeps all human pairs and a seeded choice of machine pairs (the
lowest sha1 of their ids) up to N pairs in all, so that the corpus's size, and the time to
speak it, stays what it was while its human share grows.

Apertium runs in its marking mode (no -u): a word it does not know comes out as *word, one
whose translation it cannot generate as #word, one missing from the bilingual dictionary as
@word. A pair with any mark is dropped, so every kept translation is free of marks and is
what `apertium -u eng-spa` prints for it (--check-unmarked N translates N kept sentences again
both ways and counts differences).

The Spanish text is then tidied (tidy_spanish): spaces, capital first letter, and the opening
marks ¿ ¡ that Apertium does not write (add_opening_marks). Pairs whose Spanish equals an
Asterisk Spanish prompt (the evaluation references) are dropped too.
"""
import argparse
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from debroot import DebRoot  # noqa: E402
import sources  # noqa: E402

PAIR = "eng-spa"

INTERROGATIVES = ("qué", "quién", "quiénes", "cómo", "dónde", "adónde", "cuándo", "cuánto",
                  "cuánta", "cuántos", "cuántas", "cuál", "cuáles", "por qué")


def has_marks(es):
    """Apertium's marks: *unknown, #not generated, @not in the bilingual dictionary.

    The English sentences hold none of these characters (sources.keep_reason), so any of
    them in the output is a mark, also inside a word (ex-*widow).
    """
    return any(c in es for c in "*#@")


def add_opening_marks(s):
    """Add ¿ and ¡ at the start of each clause that ends in ? or !.

    A clause starts after the previous . ! ? ; : or at the start of the text. Within it, a
    question that follows a comma and begins with an interrogative word opens there
    ("Pero, ¿qué haces?"); an exclamation opens at the clause start.
    """
    out = []
    pos = 0
    for m in re.finditer(r"[?!]+", s):
        end = m.end()
        clause = s[pos:end]
        kind = m.group(0)[0]
        opener, closer = ("¿", "?") if kind == "?" else ("¡", "!")
        if opener in clause:
            out.append(clause)
            pos = end
            continue
        lead = len(clause) - len(clause.lstrip())
        body = clause[lead:]
        start = 0
        if kind == "?":
            for w in INTERROGATIVES:
                k = body.lower().rfind(", " + w + " ")
                if k < 0 and body.lower().endswith(", " + w + closer):
                    k = len(body) - len(w) - 3
                if k >= 0:
                    start = max(start, k + 2)
        body = body[:start] + opener + body[start:]
        out.append(clause[:lead] + body)
        pos = end
    out.append(s[pos:])
    return "".join(out)


def _split_clauses_for_marks(s):
    # add_opening_marks sees one sentence; internal . ; : also end clauses.
    parts = re.split(r"(?<=[.;:])(\s+)", s)
    return parts


def tidy_spanish(es):
    """Spaces and punctuation of Apertium's output, then ¿ ¡."""
    es = es.strip()
    es = re.sub(r"\s+", " ", es)
    es = re.sub(r"\s+([,.;:!?])", r"\1", es)
    es = re.sub(r"([¿¡])\s+", r"\1", es)
    es = re.sub(r",(?=\S)", ", ", es)
    es = "".join(add_opening_marks(p) if p.strip() else p for p in _split_clauses_for_marks(es))
    # Capital letter at the start and after an opening mark that starts the sentence.
    m = re.match(r"^([¿¡]*)(\w)", es)
    if m:
        es = m.group(1) + m.group(2).upper() + es[m.end():]
    return es


class Apertium:
    """Runs Apertium's eng-spa pipeline from a root (see debroot.py).

    The pipeline is the mode file's, in null-flush mode (apertium-wblank-mode -z): each
    sentence ends with a NUL and its translation comes back ended by a NUL, so sentences line
    up with their translations by construction. The formatter that `apertium` puts around the
    pipeline (apertium-destxt) is not needed: the sentences hold no character that is special
    in Apertium's stream format (see escape()).

    The transfer stages keep some variables from one sentence to the next even so ("They fell
    down near them." gives "cerca" or "cercanos" depending on the sentence before): about 0.2%
    of translations depend on their neighbours. A fresh pipeline per batch (--batch, fixed)
    keeps the output a function of the input file alone, whatever --jobs is.
    """

    def __init__(self, root):
        self.root = root
        mode = root.require("/usr/share/apertium/modes/%s.mode" % PAIR, "apertium-eng-spa")
        wblank = root.require_program("apertium-wblank-mode", "apertium")
        self.tmp = tempfile.mkdtemp(prefix="apertium-mode-")
        if root.root != "/":
            # The mode file names the data by absolute path: point it into the root.
            text = open(mode).read().replace("/usr/share/apertium/", root.path("/usr/share/apertium/"))
            mode = os.path.join(self.tmp, PAIR + ".mode")
            with open(mode, "w") as f:
                f.write(text)
        self.env = root.child_env()
        self.pipeline = subprocess.run([wblank, "-z", mode], env=self.env, check=True,
                                       stdout=subprocess.PIPE).stdout.decode().strip()

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, texts, unmarked=False):
        """Translations of texts, in order."""
        if not texts:
            return []
        data = "".join(escape(t) + " \0" for t in texts).encode("utf-8")
        # $1 is the generator's option: -g keeps the marks (*unknown, #not generated), -n drops
        # them (what `apertium -u` passes).
        p = subprocess.run(["bash", "-c", self.pipeline, "apertium", "-n" if unmarked else "-g", ""],
                           input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        if p.returncode != 0:
            raise RuntimeError("apertium failed (%d): %s" % (p.returncode, p.stderr.decode()[-500:]))
        out = p.stdout.decode("utf-8", "replace").split("\0")
        if len(out) < len(texts) or any(x.strip() for x in out[len(texts):]):
            raise RuntimeError("apertium: %d translations for %d sentences" % (len(out), len(texts)))
        return [unescape(x).strip() for x in out[:len(texts)]]


_SPECIAL = "\\[]^$/<>@{}*#+~"


def escape(text):
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def unescape(text):
    return re.sub(r"\\(.)", r"\1", text)


_worker = {}


def _init_worker(root_dir, unmarked):
    _worker["ap"] = Apertium(DebRoot(root_dir))
    _worker["unmarked"] = unmarked


def _translate_batch(texts):
    return _worker["ap"].run(texts, _worker["unmarked"])


def translate_all(root, texts, jobs=1, batch=2000, unmarked=False):
    batches = [texts[i:i + batch] for i in range(0, len(texts), batch)]
    if jobs <= 1 or len(batches) <= 1:
        ap = Apertium(root)
        try:
            return [t for b in batches for t in ap.run(b, unmarked)]
        finally:
            ap.close()
    with multiprocessing.Pool(jobs, _init_worker, (root.root, unmarked)) as pool:
        out = pool.map(_translate_batch, batches, chunksize=1)
    return [t for b in out for t in b]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in", dest="inp", required=True, help="sentences TSV (id, source, en)")
    ap.add_argument("--out", required=True, help="pairs TSV to write (id, en, es, source)")
    ap.add_argument("--root", default=None, help="folder the .debs were unpacked into (default $MTLA_DEB_ROOT or /)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batch", type=int, default=2000, help="sentences per apertium pipeline")
    ap.add_argument("--stats", help="JSON file for the counts")
    ap.add_argument("--check-unmarked", type=int, default=0, metavar="N",
                    help="translate N kept sentences again with -u and count differences")
    ap.add_argument("--human", help="human translations (parallel.py): used instead of Apertium")
    ap.add_argument("--max-pairs", type=int, default=0, metavar="N",
                    help="all human pairs, then machine pairs up to N pairs in all (0: no limit)")
    args = ap.parse_args(argv)

    root = DebRoot(args.root)
    rows = sources.read_tsv(args.inp)
    human = []
    if args.human:
        import parallel
        human = parallel.read_tsv(args.human)
        human_keys = {sources.dedup_key(h["en"]) for h in human}
        covered = sum(1 for r in rows if sources.dedup_key(r["en"]) in human_keys)
        rows = [r for r in rows if sources.dedup_key(r["en"]) not in human_keys]
    room = max(0, args.max_pairs - len(human))  # machine pairs wanted, with --max-pairs
    if args.max_pairs:
        # Apertium keeps 56% of the sentences (40,917 of 73,241 here): translate twice the room.
        order = sorted(rows, key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())
        pick = {r["id"] for r in order[:2 * room + 100]}
        rows = [r for r in rows if r["id"] in pick]
    t0 = time.time()
    es_raw = translate_all(root, [r["en"] for r in rows], args.jobs, args.batch)
    seconds = time.time() - t0

    forbidden_es = sources.forbidden_keys(sources.asterisk_prompts(root, "es"))
    kept, dropped = [], {"unknown_word": 0, "evaluation_text": 0, "empty": 0}
    sentences_with_marks_by_kind = {"*": 0, "#": 0, "@": 0}
    words_total, words_marked = 0, 0
    for r, es in zip(rows, es_raw):
        toks = es.split()
        words_total += len(toks)
        marked = [t for t in toks if has_marks(t)]
        words_marked += len(marked)
        if marked:
            for kind in sentences_with_marks_by_kind:
                if any(kind in t for t in marked):
                    sentences_with_marks_by_kind[kind] += 1
            dropped["unknown_word"] += 1
            continue
        es = tidy_spanish(es)
        if not es:
            dropped["empty"] += 1
            continue
        if sources.dedup_key(es) in forbidden_es:
            dropped["evaluation_text"] += 1
            continue
        kept.append((r["id"], r["en"], es, r["source"]))

    if args.max_pairs:
        if len(kept) < room:
            print("translate.py: only %d machine pairs for %d places" % (len(kept), room),
                  file=sys.stderr)
        order = sorted(kept, key=lambda k: hashlib.sha1(k[0].encode()).hexdigest())
        pick = {k[0] for k in order[:room]}
        kept = [k for k in kept if k[0] in pick]
    machine = len(kept)
    human_kept = [(h["id"], h["en"], h["es"], h["source"]) for h in human]
    kept = human_kept + kept

    check = None
    if args.check_unmarked and machine:
        machine_pairs = kept[len(human_kept):]
        sample = machine_pairs[:: max(1, machine // args.check_unmarked)][:args.check_unmarked]
        # Both modes on the same list, so that only -u (not the neighbours) can differ.
        texts = [k[1] for k in sample]
        marked = translate_all(root, texts, args.jobs, args.batch)
        unmarked = translate_all(root, texts, args.jobs, args.batch, unmarked=True)
        diff = sum(1 for m, u in zip(marked, unmarked) if tidy_spanish(m) != tidy_spanish(u))
        context = sum(1 for k, m in zip(sample, marked) if tidy_spanish(m) != k[2])
        check = {"checked": len(sample), "different_with_u": diff,
                 "different_in_other_context": context}

    sources.write_tsv(args.out, ["id", "en", "es", "source"], kept)
    per_source = {}
    for r in rows:
        per_source.setdefault(r["source"], [0, 0])[0] += 1
    for h in human:
        per_source.setdefault(h["source"], [0, 0])[0] += 1
    for k in kept:
        per_source[k[3]][1] += 1
    stats = {
        "sentences": len(rows), "pairs": len(kept), "human_pairs": len(human_kept),
        "machine_pairs": machine, "max_pairs": args.max_pairs,
        "sentences_with_human_translation": covered if args.human else 0, "dropped": dropped,
        "sentences_with_marks": sentences_with_marks_by_kind,
        "words": words_total, "marked_words": words_marked,
        "marked_word_rate": (words_marked / words_total) if words_total else 0.0,
        "apertium_seconds": round(seconds, 2), "jobs": args.jobs,
        "sentences_per_second": round(len(rows) / seconds, 1) if seconds > 0 else None,
        "per_source_sentences_pairs": per_source, "unmarked_check": check,
    }
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(stats, f, indent=1, sort_keys=True)
    print(json.dumps(stats, sort_keys=True), file=sys.stderr)


if __name__ == "__main__":
    main()
