#!/usr/bin/env python3
"""Builds the tokenizer fixture committed under tests/data/tokenizer/.

A small SentencePiece unigram model of Spanish text, trained with the Python sentencepiece
package with fairseq's special ids (bos 0, pad 1, eos 2, unk 3), its vocab.txt (line i = the
piece of model id i, as docs/model-format.md specifies), and cases.tsv: for each text, the model
ids Python sentencepiece gives (pieces mapped through vocab.txt) and the text fairseq prints for
those ids (SentencepieceBPE.decode: pieces joined by spaces, spaces removed, U+2581 turned into
a space, ends stripped; docs/architecture.md section 1 item 7).

Run from the repository root:  python3 tools/make_tokenizer_fixture.py
"""
import pathlib
import random

import sentencepiece as spm

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "tokenizer"

SENTENCES = """\
¿Dónde está la estación de tren más cercana?
¡Qué día tan bonito hace hoy en la ciudad!
El niño leyó un libro sobre la historia de España.
No era un joven mal dispuesto, aunque algo frío y egoísta.
La señora Dashwood tenía tres hijas y muy poco dinero.
Mañana vamos a comprar pan, queso y aceitunas en el mercado.
Los estudiantes aprendieron a traducir frases del inglés al español.
El tiempo cambia rápidamente en las montañas del norte.
¿Podría hablar más despacio, por favor?
Necesitamos una reunión para decidir el presupuesto del año.
Ella cantó una canción antigua que su abuela le enseñó.
El médico recomendó descanso y mucha agua durante tres días.
La música llenaba la plaza mientras caía la noche.
Un pequeño perro corría detrás de la pelota roja.
Las ventanas del edificio brillaban bajo el sol de la tarde.
Había una vez un pescador que vivía junto al mar.
El tren de las ocho llega con veinte minutos de retraso.
Quiero aprender a cocinar platos típicos de cada región.
La película terminó y todos aplaudieron con entusiasmo.
¿Cuánto cuesta un billete de ida y vuelta a Sevilla?
""".splitlines()

CASES = [
    "¿Dónde está la estación?",
    "No era un joven mal dispuesto.",
    "¡Hola, mundo!",
    "el tren llega mañana",
    "xylophone qwz",           # pieces outside the training text
    "  espacios   de más  ",
    "",
]


def fairseq_detokenize(pieces):
    return " ".join(pieces).replace(" ", "").replace("\u2581", " ").strip()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    random.seed(7)
    corpus = OUT / "corpus.txt"
    lines = [random.choice(SENTENCES) for _ in range(2000)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(OUT / "spm"), model_type="unigram",
        vocab_size=160, character_coverage=1.0, bos_id=0, pad_id=1, eos_id=2, unk_id=3,
        num_threads=1, seed_sentencepiece_size=100000, minloglevel=2)
    corpus.unlink()
    (OUT / "spm.vocab").unlink()
    (OUT / "spm.model").rename(OUT / "tokenizer.model")

    sp = spm.SentencePieceProcessor(model_file=str(OUT / "tokenizer.model"))
    # For this model the dictionary order is SentencePiece's (docs/architecture.md 3.6); the
    # specials are written as fairseq names them.
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    pieces[:4] = ["<s>", "<pad>", "</s>", "<unk>"]
    (OUT / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    index = {p: i for i, p in enumerate(pieces)}

    with open(OUT / "cases.tsv", "w", encoding="utf-8") as f:
        f.write("# text<TAB>model ids<TAB>text fairseq prints for those ids\n")
        for text in CASES:
            encoded = sp.encode(text, out_type=str)
            ids = [index.get(p, 3) for p in encoded]
            shown = ["<unk>" if i == 3 else pieces[i] for i in ids]
            f.write(f"{text}\t{' '.join(map(str, ids))}\t{fairseq_detokenize(shown)}\n")
    print((OUT / "cases.tsv").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
