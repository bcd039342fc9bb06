#!/usr/bin/env bash
# The English-speech to Spanish-text corpus, end to end (see README.md in this folder).
#
#   build_corpus.sh --out DIR [--limit N] [--jobs N] [--seed S] [--debs DIR | --root DIR]
#                   [--wheels DIR] [--pairs FILE] [--text-only] [--renditions N]
#                   [--valid N] [--test N] [--holdout-voice V] [--max-seconds T]
#                   [--no-human] [--max-pairs N]
#
#   --out DIR        where everything goes: DIR/text/{sentences,pairs}.tsv and their stats,
#                    DIR/train.tsv valid.tsv test_voice.tsv, DIR/audio/, DIR/plan.tsv
#   --limit N        a seeded sample of N English sentences (a quick run); 0 = all (default)
#   --jobs N         processes for Apertium and for synthesis (default: all cores)
#   --seed S         the one seed: sample, splits, voices, rates, pitches, augmentation (1)
#   --debs DIR       a folder of .deb files (fetch_debs.sh): unpacked with dpkg -x into
#                    DIR/root once, and every Debian file is then taken from there
#   --root DIR       a folder that .debs were already unpacked into (instead of --debs)
#   --wheels DIR     Python wheels to install first (fetch_debs.sh --wheels): into DIR/site
#   --pairs FILE     skip the text part and speak these pairs (id, en, es, source)
#   --text-only      stop after the pairs
#   --no-human       Apertium's Spanish for every sentence (the human translations of
#                    parallel.py are used by default: Bible verses, game dialogue, gettext)
#   --max-pairs N    all human pairs, then Apertium pairs up to N in all (0 = all; default 0)
#   --renditions N   utterances per train sentence, each with its own voice (default 1)
#   --max-seconds T  synthesis starts no new work after T s; rerun to continue (exit 3)
#   --valid N, --test N, --holdout-voice V, --chunk N: passed to synthesize.py (see there)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="" limit=0 jobs="$(nproc 2>/dev/null || echo 1)" seed=1 debs="" root="" pairs="" text_only=0 wheels=""
human=1 max_pairs=0
synth_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --debs) debs="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    --wheels) wheels="$2"; shift 2 ;;
    --pairs) pairs="$2"; shift 2 ;;
    --text-only) text_only=1; shift ;;
    --no-human) human=0; shift ;;
    --max-pairs) max_pairs="$2"; shift 2 ;;
    --renditions|--valid|--test|--holdout-voice|--max-seconds|--chunk) synth_args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "build_corpus.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "build_corpus.sh: --out DIR is required" >&2; exit 2; }
mkdir -p "$out/text"
out="$(cd "$out" && pwd)"

if [ -n "$wheels" ]; then
  wheels="$(cd "$wheels" && pwd)"
  if [ ! -d "$wheels/site" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$wheels/site" "$wheels"/*.whl
  fi
  export PYTHONPATH="$wheels/site${PYTHONPATH:+:$PYTHONPATH}"
fi
python3 - <<'EOF' || { echo "build_corpus.sh: needs the Python packages numpy, soxr and soundfile" >&2; exit 2; }
import numpy, soxr, soundfile
EOF

if [ -n "$debs" ]; then
  debs="$(cd "$debs" && pwd)"
  root="$debs/root"
  stamp="$root/.unpacked"
  # Unpack again only when the set of .debs changed.
  list="$(cd "$debs" && ls -1 ./*.deb | sort | md5sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$list" ]; then
    rm -rf "$root"; mkdir -p "$root"
    n=0
    for f in "$debs"/*.deb; do dpkg -x "$f" "$root"; n=$((n + 1)); done
    echo "$list" > "$stamp"
    echo "unpacked $n .deb files into $root" >&2
  fi
fi
if [ -n "$root" ]; then
  eval "$(python3 "$here/debroot.py" "$root")"
else
  export MTLA_DEB_ROOT=/
fi

if [ -z "$pairs" ]; then
  t0=$(date +%s)
  python3 "$here/sources.py" --out "$out/text/sentences.tsv" --stats "$out/text/sources_stats.json" \
    --limit "$limit" --seed "$seed"
  t1=$(date +%s)
  human_args=()
  if [ "$human" = 1 ]; then
    python3 "$here/parallel.py" --out "$out/text/human.tsv" --stats "$out/text/human_stats.json" \
      --limit "$limit" --seed "$seed"
    human_args=(--human "$out/text/human.tsv")
  fi
  t2=$(date +%s)
  python3 "$here/translate.py" --in "$out/text/sentences.tsv" --out "$out/text/pairs.tsv" \
    --stats "$out/text/translate_stats.json" --jobs "$jobs" --max-pairs "$max_pairs" \
    ${human_args[@]+"${human_args[@]}"}
  t3=$(date +%s)
  echo "text: sources $((t1 - t0)) s, human pairs $((t2 - t1)) s, apertium $((t3 - t2)) s" >&2
  pairs="$out/text/pairs.tsv"
fi
[ "$text_only" = 1 ] && exit 0

python3 "$here/synthesize.py" --pairs "$pairs" --out "$out" --jobs "$jobs" --seed "$seed" \
  ${synth_args[@]+"${synth_args[@]}"}
