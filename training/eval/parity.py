#!/usr/bin/env python3
"""Check that the C engine and the PyTorch model give identical tokens on audio files.

  python3 training/eval/parity.py --model samples/model samples/audio/*.wav [--beam N]

Per file: the engine's frontend writes the raw log-mel features (`mtla-st features`); the
float32 PyTorch oracle (tools/reference, reading the same model directory) runs beam search
on them; the engine runs on the same features (--input-features) and on the audio file
itself. All three token sequences must be identical. The oracle's smallest decision margin
is printed too (how far the search was from a tie; docs of tools/reference/beam.py).
Exit status 1 on any difference.
"""
import argparse
import json
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from training.eval.common import engine_features, engine_tokens, find_engine  # noqa: E402


def check(model_dir, audio_files, binary, beam=None):
    import numpy as np
    import torch

    from tools.reference.beam import beam_search
    from tools.reference.model import SpeechTranslator

    torch.set_num_threads(1)
    m = SpeechTranslator(model_dir)
    g = m.cfg["generation"]
    beam = beam or g["beam"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        npys = []
        for i, a in enumerate(audio_files):
            npy = pathlib.Path(tmp) / f"{i}.npy"
            engine_features(binary, a, npy, model_dir)
            npys.append(npy)
        c_feat = engine_tokens(binary, model_dir, npys, features=True, beam=beam)
        c_audio = engine_tokens(binary, model_dir, audio_files, features=False, beam=beam)
        for a, npy, cf, ca in zip(audio_files, npys, c_feat, c_audio):
            feats = np.load(npy)
            _, P = m.encode(feats)
            margins = []
            hyps = beam_search(m.decoder, P, beam, m.max_len(len(feats)),
                               min_len=g.get("min_len", 1), lenpen=g["lenpen"],
                               margins=margins)
            o = hyps[0]["tokens"]
            results.append({"file": str(a), "frames": len(feats), "oracle_tokens": o,
                            "engine_features_tokens": cf, "engine_audio_tokens": ca,
                            "identical": o == cf == ca, "text": m.detokenize(o),
                            "min_decision_margin": min(margins) if margins else None})
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--bin")
    ap.add_argument("--beam", type=int)
    ap.add_argument("audio", nargs="+")
    args = ap.parse_args(argv)
    binary = find_engine(args.bin)
    if binary is None:
        raise SystemExit("no mtla-st binary: build it or pass --bin / $MTLA_ST_BIN")
    res = check(args.model, args.audio, binary, args.beam)
    for r in res:
        print(json.dumps(r, ensure_ascii=False))
    ok = all(r["identical"] for r in res)
    print(f"{'identical' if ok else 'DIFFERENT'}: {sum(r['identical'] for r in res)}/{len(res)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
