#!/usr/bin/env python3
"""SentencePiece (unigram) on the Spanish side of the training manifest.

The model is trained with the fairseq dictionary's special ids, bos=0 (<s>), pad=1 (<pad>),
eos=2 (</s>), unk=3 (<unk>), as the authors' recipe does (docs/architecture.md section 1
item 6), so model id = SentencePiece id and vocab.txt is the pieces in id order.

  python3 training/spm.py --manifest CORPUS/train.tsv --vocab-size 2000 --out RUN/spm
  -> RUN/spm/spm.model, RUN/spm/spm.vocab, RUN/spm/vocab.txt
"""
import argparse
import pathlib
import sys

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def train_spm(texts, out_dir, vocab_size, character_coverage=1.0, seed_sentencepieces=None):
    """Trains <out_dir>/spm.model on `texts` (an iterable of str); returns its path."""
    import sentencepiece as spm

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "spm_input.txt"
    with corpus.open("w", encoding="utf-8") as f:
        n = 0
        for t in texts:
            t = t.strip()
            if t:
                f.write(t + "\n")
                n += 1
    if n == 0:
        raise ValueError("no target text to train SentencePiece on")
    args = dict(input=str(corpus), model_prefix=str(out_dir / "spm"), model_type="unigram",
                vocab_size=vocab_size, character_coverage=character_coverage,
                bos_id=0, pad_id=1, eos_id=2, unk_id=3, bos_piece=SPECIALS[0],
                pad_piece=SPECIALS[1], eos_piece=SPECIALS[2], unk_piece=SPECIALS[3],
                input_sentence_size=2_000_000, shuffle_input_sentence=True,
                hard_vocab_limit=False, num_threads=4, minloglevel=2)
    if seed_sentencepieces:
        args["seed_sentencepiece_size"] = seed_sentencepieces
    spm.SentencePieceTrainer.train(**args)
    vocab = load_vocab(out_dir / "spm.model")
    (out_dir / "vocab.txt").write_text("".join(p + "\n" for p in vocab), encoding="utf-8")
    return out_dir / "spm.model"


def load_vocab(model_path):
    """Pieces in model-id order; checks the fairseq special ids."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    vocab = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    if tuple(vocab[:4]) != SPECIALS:
        raise ValueError(f"{model_path}: ids 0..3 are {vocab[:4]}, expected {SPECIALS}")
    for p in vocab:
        if "\n" in p or "\r" in p or "\0" in p:
            raise ValueError(f"{model_path}: piece {p!r} cannot be a vocab.txt line")
    return vocab


class Tokenizer:
    """Text <-> model ids (= SentencePiece ids); decode follows fairseq SentencepieceBPE."""

    def __init__(self, model_path):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(model_path))
        self.vocab = load_vocab(model_path)
        self.bos, self.pad, self.eos, self.unk = 0, 1, 2, 3

    def __len__(self):
        return len(self.vocab)

    def encode(self, text):
        """ids without EOS."""
        return self.sp.encode(text.strip(), out_type=int)

    def decode(self, ids):
        skip = {self.bos, self.pad, self.eos}
        return "".join(self.vocab[i] for i in ids if i not in skip).replace("\u2581", " ").strip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True, help="train.tsv (column es)")
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from training.dataset import read_manifest
    path = train_spm((r["es"] for r in read_manifest(args.manifest)), args.out,
                     args.vocab_size)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
