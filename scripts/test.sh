#!/usr/bin/env bash
# Builds mtla-st and runs the whole test suite twice: a normal Release build (with the CUDA
# backend compiled when a toolkit is present), then a CPU build under AddressSanitizer and
# UndefinedBehaviorSanitizer; then every fuzz harness for 30 s on its corpus, a regression check
# that fails on any crash (skipped without clang unless MTLA_FUZZ_REQUIRED=1, as in CI). Needs
# the packages of scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

echo "== Release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMTLA_ST_SANITIZE=ON \
  -DMTLA_ST_CUDA=OFF
cmake --build build-sanitize -j "$jobs"
# The two-hour streaming test and the --partial soak run a quarter of an hour of audio here, and
# the killed-and-resumed directory run 200 files: the sanitizers make them about ten times
# slower, and memory growth shows within minutes.
MTLA_TEST_STREAM_HOURS=0.25 MTLA_TEST_PARTIAL_HOURS=0.25 MTLA_TEST_RESUME_FILES=200 \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-sanitize --output-on-failure -j "$jobs"

echo "== Fuzz harnesses, 30 s each on their corpus (docs/fuzzing.md)"
if command -v clang >/dev/null && command -v clang++ >/dev/null; then
  bash scripts/fuzz.sh "${MTLA_FUZZ_SECONDS:-30}"
elif [ "${MTLA_FUZZ_REQUIRED:-0}" = 1 ]; then
  echo "clang not found, and MTLA_FUZZ_REQUIRED=1: run scripts/install-deps.sh" >&2
  exit 1
else
  echo "skipped: clang not found (scripts/install-deps.sh installs it)"
fi
