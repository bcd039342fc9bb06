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
  libcjson-dev         # config.json and safetensors headers
  libsentencepiece-dev # detokenisation
  libcriterion-dev     # unit tests
  python3-srt python3-webvtt # tests check subtitle output with real parsers
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
