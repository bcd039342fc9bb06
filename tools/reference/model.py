"""The whole model: fbank features -> CMVN -> encoder -> projector -> decoder -> beam search."""
import torch

from .beam import beam_search, max_len_for
from .decoder import PromptDecoder
from .encoder import encode, normalize_features, project
from .model_dir import load_model_dir


class SpeechTranslator:
    """A model directory, ready to run. mtla_impl: "auto" (authors' module where it is right,
    see attention.py) or "ours" (our own MTLA math everywhere, for cross-checks)."""

    def __init__(self, model_dir, mtla_impl="auto"):
        self.md = load_model_dir(model_dir) if not hasattr(model_dir, "config") else model_dir
        self.cfg, self.W = self.md.config, self.md.tensors
        self.decoder = PromptDecoder(self.cfg, self.W, mtla_impl)

    @torch.no_grad()
    def encode(self, fbank):
        """fbank (T, n_mel) before CMVN -> (encoder output (S_enc, E), prompt P (S, D))."""
        x = normalize_features(fbank, self.cfg, self.W)
        if x.ndim != 2 or x.shape[1] != self.cfg["frontend"]["num_mel_bins"]:
            raise ValueError(f"features must be (T, {self.cfg['frontend']['num_mel_bins']}), "
                             f"got {tuple(x.shape)}")
        enc = encode(x, self.cfg, self.W)
        return enc, project(enc, self.cfg, self.W)

    def max_len(self, n_frames):
        return max_len_for(self.cfg, n_frames)

    @torch.no_grad()
    def translate(self, fbank, beam=None, max_len=None):
        """Beam search on one utterance; returns the finalised hypotheses, best first."""
        g = self.cfg["generation"]
        _, P = self.encode(fbank)
        return beam_search(self.decoder, P, beam or g["beam"],
                           max_len if max_len is not None else self.max_len(len(fbank)),
                           min_len=g.get("min_len", 1), lenpen=g["lenpen"])

    def detokenize(self, ids):
        """fairseq SentencepieceBPE.decode: pieces joined, '\u2581' -> space, ends stripped;
        bos/pad/eos dropped, unk printed as its piece (docs/model-format.md)."""
        v = self.cfg["vocab"]
        skip = {v["bos"], v["pad"], v["eos"]}
        text = "".join(self.md.vocab[i] for i in ids if i not in skip)
        return text.replace("\u2581", " ").strip()
