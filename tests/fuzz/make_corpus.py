#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<harness>/) from the test
fixtures: small files whole, large ones cut to a few kilobytes (their headers and the start
of their bodies), and hand-made small files where the fixtures have none (tensor files, .npy,
lists, command lines). Standard library only.

    python3 tests/fuzz/make_corpus.py BUILD_FUZZ_DIR

BUILD_FUZZ_DIR holds make_seed_model (cmake -DMTLA_ST_FUZZ=ON), which writes the tensors a
tiny config asks for, so that the model-directory seed is a complete, loadable model.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
GOLDEN = os.path.join(ROOT, "tests", "golden", "models")
DATA = os.path.join(ROOT, "tests", "data")
SEP = b"\n--mtla-fuzz-part--\n"
CUT = 6144  # bytes kept of a large fixture


def read(path, limit=None):
    with open(path, "rb") as f:
        return f.read() if limit is None else f.read(limit)


def put(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, bytes)] -> a safetensors file."""
    header, body = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def wav(rate, channels, bits, frames, fmt=1, extensible=False, rf64=False):
    """A small WAV file of a tone (PCM or float), optionally WAVE_FORMAT_EXTENSIBLE or RF64."""
    samples = []
    for i in range(frames):
        v = 0.5 * math.sin(2 * math.pi * 440 * i / rate)
        for _ in range(channels):
            if fmt == 3:
                samples.append(struct.pack("<f" if bits == 32 else "<d", v))
            elif bits == 8:
                samples.append(struct.pack("<B", int(128 + 127 * v)))
            elif bits == 24:
                samples.append(struct.pack("<i", int(v * 8388607))[:3])
            else:
                samples.append(struct.pack("<h" if bits == 16 else "<i",
                                           int(v * (2 ** (bits - 1) - 1))))
    data = b"".join(samples)
    block = channels * bits // 8
    fmt_body = struct.pack("<HHIIHH", 0xFFFE if extensible else fmt, channels, rate,
                           rate * block, block, bits)
    if extensible:
        guid = struct.pack("<H", fmt) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt_body += struct.pack("<HHI", 22, bits, 0) + guid
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
    if rf64:
        ds64 = struct.pack("<QQQI", 0, len(data), frames, 0)
        head = b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"ds64" + \
            struct.pack("<I", len(ds64)) + ds64
        return head + chunks + b"data" + struct.pack("<I", 0xFFFFFFFF) + data
    body = b"WAVE" + chunks + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def npy(rows, cols, descr="<f4", fortran=False, values=None):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': (%d, %d), }" % (
        descr, "True" if fortran else "False", rows, cols)
    unpadded = 10 + len(d) + 1
    d += " " * (-unpadded % 64) + "\n"
    values = values if values is not None else [0.25 * i for i in range(rows * cols)]
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode() + f32(values)


def tiny_config():
    with open(os.path.join(GOLDEN, "transformer_mtla_s2", "config.json")) as f:
        c = json.load(f)
    c["encoder"].update(layers=1, d_model=8, heads=2, ffn_dim=8)
    c["encoder"]["subsampler"].update(channels=8, kernel_sizes=[3])
    c["decoder"].update(layers=1, d_model=8, ffn_dim=8)
    c["decoder"]["attention"].update(heads=2, kv_lora_rank=4, qk_nope_head_dim=2,
                                     qk_rope_head_dim=2, v_head_dim=2, down_rate=2, hyper_rank=2)
    c["notes"] = "fuzz seed (tests/fuzz/make_corpus.py): the smallest model of this shape"
    return json.dumps(c, indent=1).encode()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    make_seed_model = os.path.join(sys.argv[1], "tests", "fuzz", "make_seed_model")
    # Seeds are (re)written by name; other entries (regress-*: inputs that once failed, and
    # what scripts/fuzz.sh --merge added) stay.

    # config.json: every golden model's, and the tiny one.
    for model in sorted(os.listdir(GOLDEN)):
        put("fuzz_config", model + ".json", read(os.path.join(GOLDEN, model, "config.json")))
    config = tiny_config()
    put("fuzz_config", "tiny.json", config)

    # Tensor files: each dtype, a scalar, an empty tensor, metadata, unaligned header.
    small = [("a.weight", "F32", [2, 3], f32([1, -2, 3.5, 0, 1e-38, -0.0])),
             ("a.bias", "F16", [3], b"\x00\x3c\x00\x80\x00\x7c"),
             ("b", "BF16", [2], b"\x80\x3f\xc0\x7f")]
    put("fuzz_safetensors", "three_dtypes", safetensors(small, {"format": "pt"}))
    put("fuzz_safetensors", "scalar", safetensors([("s", "F32", [], f32([2.0]))]))
    put("fuzz_safetensors", "empty_tensor", safetensors([("e", "F16", [0, 4], b"")]))
    put("fuzz_safetensors", "unpadded", safetensors(small[:1], pad=False))
    put("fuzz_safetensors", "no_tensors", safetensors([], {}))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "config.json")
        st = os.path.join(tmp, "model.safetensors")
        with open(cfg, "wb") as f:
            f.write(config)
        subprocess.run([make_seed_model, cfg, st], check=True)
        model_st = read(st)
    put("fuzz_safetensors", "tiny_model", model_st)

    # A shard index with two shards (the layout of the sharded golden model).
    index = {"metadata": {"total_size": 0}, "weight_map": {}}
    shards = [small[:2], small[2:]]
    for k, tensors in enumerate(shards, 1):
        for t in tensors:
            index["weight_map"][t[0]] = "model-%05d-of-%05d.safetensors" % (k, len(shards))
    put("fuzz_safetensors_index", "two_shards",
        json.dumps(index, indent=1).encode() + SEP + safetensors(shards[0]) + SEP +
        safetensors(shards[1]))
    sharded = os.path.join(GOLDEN, "conformer_abs_gqa", "model.safetensors.index.json")
    put("fuzz_safetensors_index", "golden_index_only", read(sharded))

    # A whole model directory: the tiny config, a golden vocabulary and tokenizer, its tensors.
    vocab = read(os.path.join(GOLDEN, "transformer_mtla_s2", "vocab.txt"))
    spm = read(os.path.join(GOLDEN, "transformer_mtla_s2", "tokenizer.model"))
    put("fuzz_model_dir", "tiny_model", config + SEP + vocab + SEP + model_st + SEP + spm)
    put("fuzz_model_dir", "config_only", config)

    # vocab.txt and tokenizer.model.
    put("fuzz_vocab", "golden_vocab.txt", vocab)
    put("fuzz_vocab", "tokenizer_vocab.txt", read(os.path.join(DATA, "tokenizer", "vocab.txt")))
    put("fuzz_vocab", "crlf_no_final_newline", b"<s>\r\n<pad>\r\n</s>\r\n<unk>\r\n\xe2\x96\x81a")
    put("fuzz_spm", "golden.model", spm)

    # Audio: small WAV files of each sample kind, cut fixtures of every other format.
    wavs = {"s16_16k": wav(16000, 1, 16, 800), "u8_8k": wav(8000, 1, 8, 400),
            "s24_stereo_48k": wav(48000, 2, 24, 600), "s32_22k": wav(22050, 1, 32, 500),
            "f32_ext_44k": wav(44100, 1, 32, 600, fmt=3, extensible=True),
            "f64_16k": wav(16000, 1, 64, 300, fmt=3), "rf64_s16": wav(16000, 1, 16, 400, rf64=True)}
    for name, data in wavs.items():
        put("fuzz_audio_file", name + ".wav", data)
    for name in sorted(os.listdir(os.path.join(DATA, "frontend"))):
        if not name.endswith(".wav"):
            put("fuzz_audio_file", name, read(os.path.join(DATA, "frontend", name), CUT))
    # Streams: control byte (detect_wav | encoding | rate | channels), piece sizes, bytes.
    put("fuzz_pcm_stream", "wav_whole", b"\x01\x00" + wavs["s16_16k"])
    put("fuzz_pcm_stream", "wav_in_pieces", b"\x01\x03" + struct.pack("<HHH", 1, 7, 300) +
        wavs["s24_stereo_48k"])
    put("fuzz_pcm_stream", "rf64_in_pieces", b"\x01\x02" + struct.pack("<HH", 13, 64) +
        wavs["rf64_s16"])
    put("fuzz_pcm_stream", "f32_ext", b"\x01\x01" + struct.pack("<H", 100) + wavs["f32_ext_44k"])
    put("fuzz_pcm_stream", "raw_s16_8k", b"\x04\x01" + struct.pack("<H", 3) +
        wavs["s16_16k"][44:])
    put("fuzz_pcm_stream", "raw_f32_stereo", b"\x22\x00" + f32([0.1, -0.1] * 200))

    # .npy features.
    put("fuzz_npy", "small", npy(3, 80))
    put("fuzz_npy", "empty_rows", npy(0, 80))
    put("fuzz_npy", "fortran", npy(2, 2, fortran=True))
    put("fuzz_npy", "golden_prompt_cut",
        read(os.path.join(GOLDEN, "transformer_mtla_s2", "fixtures", "prompt.npy"), 2048))

    # --files-from lists (names of the harness's sandbox) and command lines (NUL-separated).
    put("fuzz_files_from", "files_and_dirs", b"a.wav\n# a comment\n\nsub\nlink\r\nnotes.txt\n")
    put("fuzz_files_from", "stdin_refused", b"a.wav\n-\n")
    put("fuzz_files_from", "missing", b"missing.wav\nsub/deeper\n")
    for name, args in {
        "translate": ["a.wav", "--beam", "4", "--lenpen", "1.2", "-f", "jsonl", "-t", "2"],
        "partial": ["--partial", "--policy", "wait-k", "--wait-k", "2", "--partial-step", "500",
                    "--no-realtime", "--logprob-threshold", "-5", "--repeat-limit", "2", "-"],
        "stdin_raw": ["--raw", "--rate", "8000", "--channels", "2", "--encoding", "f32", "-"],
        "files_from": ["--files-from", "list", "-o", "out", "--shard", "1/2", "--overwrite"],
        "features": ["features", "a.wav", "-o", "f.npy", "--cmvn", "utterance"],
        "segments": ["segments", "--onset-db", "-30", "--min-speech", "100", "a.wav"],
        "grouped": ["-qvs", "--device=cuda:1", "--max-len-a=0.5", "--max-len-b=9", "sub"],
        "help": ["segments", "--help"],
    }.items():
        put("fuzz_cli", name, b"\0".join(a.encode() for a in args))

    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(CORPUS) for f in fs)
    print("corpus: %d bytes" % total)


if __name__ == "__main__":
    main()
