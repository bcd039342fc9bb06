#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz (clang, ASan + UBSan) in build-fuzz/ and runs each
# for SECONDS (default 60) on its committed corpus, tests/fuzz/corpus/<harness>/. New inputs go
# to build-fuzz/fuzz-corpus/<harness>/, crashes to build-fuzz/fuzz-artifacts/<harness>/; the
# committed corpus changes only with --merge (which adds what the run found, minimised).
# Prints, per harness, executions, coverage (libFuzzer's final cov and ft) and crashes; exits
# non-zero when any harness crashed, leaked, hung or ran out of memory. docs/fuzzing.md.
#
#   scripts/fuzz.sh [--merge] [SECONDS [HARNESS...]]
# MTLA_FUZZ_BUILD=DIR builds and runs in DIR instead of build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

merge=0
if [ "${1:-}" = "--merge" ]; then merge=1; shift; fi
seconds=${1:-60}
shift || true
all=(fuzz_config fuzz_safetensors fuzz_safetensors_index fuzz_model_dir fuzz_vocab fuzz_spm
     fuzz_pcm_stream fuzz_audio_file fuzz_npy fuzz_files_from fuzz_cli)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
jobs=$(nproc 2>/dev/null || echo 2)
build=${MTLA_FUZZ_BUILD:-build-fuzz} # another build directory, e.g. one already built

if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  echo "scripts/fuzz.sh: clang not found (scripts/install-deps.sh installs it)" >&2
  exit 2
fi
mkdir -p "$build"
echo "== building the harnesses in $build (log: $build/fuzz-build.log)"
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMTLA_ST_FUZZ=ON \
         -DMTLA_ST_TESTS=OFF -DMTLA_ST_CUDA=OFF -DCMAKE_C_COMPILER=clang \
         -DCMAKE_CXX_COMPILER=clang++ &&
       cmake --build "$build" -j "$jobs" --target mtla_fuzz; } >"$build/fuzz-build.log" 2>&1; then
  tail -40 "$build/fuzz-build.log" >&2
  echo "scripts/fuzz.sh: the build failed" >&2
  exit 2
fi

dict_for() {
  case "$1" in
    fuzz_config | fuzz_model_dir) echo "-dict=tests/fuzz/json.dict" ;;
    fuzz_safetensors | fuzz_safetensors_index) echo "-dict=tests/fuzz/safetensors.dict" ;;
  esac
}

failed=0
summary=()
for h in "${harnesses[@]}"; do
  scratch="$build/fuzz-corpus/$h"
  artifacts="$build/fuzz-artifacts/$h"
  log="$build/fuzz-logs/$h.log"
  # The artifacts of this run only (a previous run's are replaced: keep them elsewhere, or in
  # the corpus as regress-* inputs, if they matter).
  rm -rf "$artifacts"
  mkdir -p "$scratch" "$artifacts" "$(dirname "$log")"
  echo "== $h: $seconds s"
  # -close_fd_mask=2: the command line's own messages would drown libFuzzer's (its reports
  # still go to a copy of stderr). -timeout: one input running this long is a hang.
  extra=()
  [ "$h" = fuzz_cli ] && extra+=(-close_fd_mask=2)
  status=0
  LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
  "$build/tests/fuzz/$h" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" $(dict_for "$h") "${extra[@]}" \
    "$scratch" "tests/fuzz/corpus/$h" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
  line=$(printf '%-24s execs %-10s cov %-6s ft %-7s crashes %s' "$h" "${execs:-?}" "${cov:-?}" \
    "${ft:-?}" "$crashes")
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    line+="  FAILED (exit $status; see $log, inputs in $artifacts)"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 || true
  fi
  echo "$line"
  summary+=("$line")
  if [ "$merge" -eq 1 ]; then
    "$build/tests/fuzz/$h" -merge=1 "${extra[@]}" "tests/fuzz/corpus/$h" "$scratch" \
      >>"$log" 2>&1
  fi
done
echo "== fuzz summary ($seconds s each)"
printf '%s\n' "${summary[@]}"
exit "$failed"
