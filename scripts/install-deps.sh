#!/usr/bin/env bash
# Installs the Debian packages mtla-st builds and tests with. Run as root (or with sudo).
# The CUDA toolkit is optional and not installed here: when nvcc is on PATH (or at
# /usr/local/cuda) the CUDA backend is compiled too.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libsndfile1-dev      # audio files: WAV/FLAC/Ogg/Opus/MP3
  libsoxr-dev          # resampling to 16 kHz
  libfftw3-dev         # FFT for the fbank frontend
  libopenblas-dev      # CPU matrix products
  libdnnl-dev          # oneDNN: bf16 / int8 products of --dtype (optional to the build)
  libcjson-dev         # config.json and safetensors headers
  libsentencepiece-dev # detokenisation
  libcriterion-dev     # unit tests
  libwebsockets-dev    # mtla-st serve: HTTP, multipart uploads, WebSocket (docs/serve.md)
  curl python3-pip     # tests/test_serve.py drives the server with curl and Python clients
  python3-srt python3-webvtt # tests check subtitle output with real parsers
  clang                # the fuzz harnesses (scripts/fuzz.sh, docs/fuzzing.md)
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# libFuzzer's runtime: its own package on Debian 12 (only recommended by clang's packages, which
# --no-install-recommends skips); part of libclang-common-*-dev on older releases.
if apt-cache show libclang-rt-dev >/dev/null 2>&1; then packages+=(libclang-rt-dev); fi
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
# The official OpenAI client and websockets, which tests/test_serve.py drives the server with;
# neither is packaged (openai) or recent enough (websockets) in Debian 12. Debian's pip refuses
# the system interpreter without --break-system-packages (PEP 668); a pyenv one takes it too.
$sudo python3 -m pip install --quiet --break-system-packages openai websockets
