#!/usr/bin/env bash
# bench/startup.sh BUILD_DIR...: startup time and peak RSS of mtla-st from each build, so that a
# build with the CUDA plugin can be held to one without CUDA (-DMTLA_ST_CUDA=OFF): the plugin is
# loaded only for --device cuda, so CPU runs should cost the same (bench/RESULTS.md, "Startup").
#
# Commands: `mtla-st features` of a 3 s 48 kHz stereo FLAC clip, and the translation of a 3 s
# 16 kHz clip by a golden model on one CPU thread; where the plugin is built, also the same
# translation with --device cuda, which loads it (on a machine without a GPU it is refused,
# exit 2, after cudart and cuBLAS are mapped). Each command runs RUNS times (5) per build, the
# builds taking turns so that a busy machine slows them alike; printed are the best wall time
# (ms, date +%s%N around the run) and the best peak RSS (MB, GNU time's %M, as /usr/bin/time -v
# reports it). The builds must be built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
clip=$root/tests/data/frontend/clip_48000_s24_stereo.flac
speech=$root/tests/data/frontend/clip_16000_s16.wav
model=$root/tests/golden/models/transformer_mtla_s2
[ $# -gt 0 ] || { echo "usage: $0 BUILD_DIR..." >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# measure KEY CMD...: one run; keeps the best ms and KB under $out/KEY.*
measure() {
  local key=$1 t0 t1 ms kb status=0
  shift
  t0=$(date +%s%N)
  /usr/bin/time -f %M -o "$out/rss" "$@" >"$out/stdout" 2>"$out/stderr" || status=$?
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  kb=$(tail -n 1 "$out/rss")
  if [ ! -e "$out/$key.ms" ] || [ "$ms" -lt "$(cat "$out/$key.ms")" ]; then echo "$ms" >"$out/$key.ms"; fi
  if [ ! -e "$out/$key.kb" ] || [ "$kb" -lt "$(cat "$out/$key.kb")" ]; then echo "$kb" >"$out/$key.kb"; fi
  echo "$status" >"$out/$key.status"
  head -c 300 "$out/stderr" >"$out/$key.stderr"
}

commands=(features translate cuda)
for _ in $(seq "$runs"); do
  for b in $(seq $#); do
    build=${!b}
    bin=$build/mtla-st
    measure "$b.features" "$bin" features "$clip" -o "$out/f.npy"
    measure "$b.translate" "$bin" --model "$model" --threads 1 "$speech"
    if [ -e "$build/libmtla-st-cuda.so" ]; then
      measure "$b.cuda" "$bin" --model "$model" --device cuda "$speech"
    fi
  done
done

echo "best of $runs; features: $(basename "$clip"); translate: $(basename "$model") on $(basename "$speech")"
printf '%-28s %-26s %9s %9s %5s\n' build command "wall ms" "RSS MB" exit
for b in $(seq $#); do
  build=${!b}
  echo "# $build: mtla-st needs $(readelf -d "$build/mtla-st" | awk '/NEEDED/ {print $5}' | tr -d '[]' | tr '\n' ' ')"
  for c in "${commands[@]}"; do
    [ -e "$out/$b.$c.ms" ] || continue
    case $c in
      features) name="features (FLAC)" ;;
      translate) name="translate (cpu)" ;;
      cuda) name="translate --device cuda" ;;
    esac
    printf '%-28s %-26s %9d %9.1f %5d\n' "$(basename "$build")" "$name" "$(cat "$out/$b.$c.ms")" \
      "$(echo "$(cat "$out/$b.$c.kb") / 1024" | bc -l)" "$(cat "$out/$b.$c.status")"
    if [ "$c" = cuda ]; then echo "  --device cuda said: $(cat "$out/$b.$c.stderr")"; fi
  done
done
