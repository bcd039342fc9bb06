#!/usr/bin/env bash
# Downloads the .deb files of debs.txt into a folder, for build_corpus.sh --debs DIR on a
# machine without apt (the device machine: carry the folder there).
#
#   fetch_debs.sh DIR [--profile synth|text|all] [--any-version] [--wheels WDIR]
#
# --wheels WDIR also downloads the Python wheels of wheels.txt (CPython 3.12, x86-64), which
# the device's Python lacks, for build_corpus.sh --wheels WDIR.
#
# Needs Debian 12 (bookworm) apt sources and `apt-get update` done. The versions are those
# debs.txt pins; --any-version takes the current candidate of a package whose pinned version
# the archive no longer has (and says so). The .deb files are not to be committed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="" profile=all any=0 wheels=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --any-version) any=1; shift ;;
    --wheels) wheels="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "fetch_debs.sh: unknown option $1" >&2; exit 2 ;;
    *) dir="$1"; shift ;;
  esac
done
[ -n "$dir" ] || { echo "usage: fetch_debs.sh DIR [--profile synth|text|all] [--any-version]" >&2; exit 2; }
case "$profile" in synth|text|all) ;; *) echo "fetch_debs.sh: --profile synth, text or all" >&2; exit 2 ;; esac
mkdir -p "$dir"
cd "$dir"
failed=()
while read -r pkg ver prof; do
  case "$pkg" in ''|'#'*) continue ;; esac
  [ "$profile" = all ] || [ "$prof" = "$profile" ] || continue
  if ls ./"${pkg}"_*.deb >/dev/null 2>&1; then continue; fi
  if apt-get download -q "$pkg=$ver" >/dev/null 2>&1; then continue; fi
  if [ "$any" = 1 ] && apt-get download -q "$pkg" >/dev/null 2>&1; then
    echo "fetch_debs.sh: $pkg $ver is gone from the archive; took $(ls ./"${pkg}"_*.deb)" >&2
    continue
  fi
  failed+=("$pkg=$ver")
done < "$here/debs.txt"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fetch_debs.sh: could not download: ${failed[*]} (apt-get update first; --any-version)" >&2
  exit 1
fi
echo "$(ls ./*.deb | wc -l) .deb files, $(du -ch ./*.deb | tail -1 | cut -f1) in $PWD" >&2
if [ -n "$wheels" ]; then
  mkdir -p "$wheels"
  grep -v '^#' "$here/wheels.txt" | grep . | xargs python3 -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$wheels"
  echo "$(ls "$wheels"/*.whl | wc -l) wheels in $wheels" >&2
fi
