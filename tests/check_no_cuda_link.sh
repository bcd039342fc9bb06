#!/usr/bin/env bash
# check_no_cuda_link.sh FILE... [--plugin PLUGIN]: fails when any FILE (the mtla-st binary,
# libmtla-st.so) needs cuBLAS, the CUDA runtime or the driver library, directly (readelf -d) or
# through its dependencies (ldd), so that CPU runs never map them. With --plugin, also checks
# that the check can see such a dependency (the plugin needs libcublas) and that the plugin
# exports nothing but its entry point. Exits 77 (skipped) without readelf.
set -euo pipefail
command -v readelf >/dev/null || { echo "readelf not found"; exit 77; }
cuda='lib(cublas|cublasLt|cudart|cuda)\.so'
files=() plugin=
while [ $# -gt 0 ]; do
  case $1 in
    --plugin) plugin=$2; shift 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
status=0
for f in "${files[@]}"; do
  if readelf -d "$f" | grep NEEDED | grep -E "$cuda"; then
    echo "FAIL: $f needs CUDA libraries directly"; status=1
  fi
  if ldd "$f" | grep -E "$cuda"; then
    echo "FAIL: $f maps CUDA libraries through its dependencies"; status=1
  fi
  echo "ok: $f: $(readelf -d "$f" | grep -c NEEDED) NEEDED entries, none of CUDA"
done
if [ -n "$plugin" ]; then
  if ! readelf -d "$plugin" | grep NEEDED | grep -qE 'libcublas\.so'; then
    echo "FAIL: $plugin does not need libcublas: the check above cannot be trusted"; status=1
  fi
  exported=$(nm -D --defined-only "$plugin" | awk '$2 ~ /^[TDBVWR]$/ {print $3}' | sort | tr '\n' ' ')
  if [ "$exported" != "mtla_cuda_backend_v1 " ]; then
    echo "FAIL: $plugin exports more than mtla_cuda_backend_v1: $exported"; status=1
  fi
  echo "ok: $plugin needs libcublas and exports: $exported"
fi
exit $status
