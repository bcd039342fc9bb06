"""Beam search with fairseq SequenceGenerator + BeamSearch semantics, batch size 1
(SPEC section 6, docs/architecture.md section 5). All scores are float32 like fairseq's.

Per step (0 .. max_len):
- log-probs of the live hypotheses; NaN -> -inf; PAD -inf; UNK -= unk_penalty;
  step >= max_len: everything but EOS -inf (EOS forced); step < min_len: EOS -inf.
- step 0: candidates from hypothesis 0 only (all rows are identical), top min(2B, V-1);
  later: cumulative score + log-prob over all B x V, top min(2B, B*V-1).
- EOS candidates that are finite and among the first B candidates are finalised (at most B
  in all) with score cum / (step+1)^lenpen; step+1 counts the EOS, not the start token.
- The sentence ends when B hypotheses are finalised or at step == max_len.
- Otherwise the next hypotheses are the first B candidates that are not (finite) EOS;
  caches are reordered by their source hypothesis.
Result: finalised hypotheses sorted by score, best first (stable for equal scores).
"""
import math

import torch


def max_len_for(cfg, n_frames, max_positions=1024):
    """fairseq: min(int(max_len_a * src_len + max_len_b), max_decoder_positions - 1), src_len
    being the number of input fbank frames."""
    g = cfg["generation"]
    return min(int(g["max_len_a"] * n_frames + g["max_len_b"]), max_positions - 1)


def _decision_margin(flat, B, eos, V):
    """How far this step's outcome is from flipping: the smallest score gap between two
    candidates whose swap would change the result, i.e. the B-th and (B+1)-th candidates that
    do not end in EOS (which hypotheses live on), and ranks B-1 and B when either ends in EOS
    (whether that EOS is finalised). An implementation whose cumulative scores differ from
    these by less than half of it makes the same choices at this step."""
    k = min(2 * B + 2, flat.numel())
    sc, idx = torch.topk(flat, k)
    is_eos = (idx.fmod(V) == eos).tolist()
    sc = sc.tolist()
    gaps = []
    live = [i for i in range(k) if not is_eos[i] and sc[i] != -math.inf]
    if len(live) > B:
        gaps.append(sc[live[B - 1]] - sc[live[B]])
    if k > B and (is_eos[B - 1] or is_eos[B]) and sc[B] != -math.inf:
        gaps.append(sc[B - 1] - sc[B])
    return min(gaps) if gaps else math.inf


@torch.no_grad()
def beam_search(decoder, P, beam, max_len, min_len=1, lenpen=1.0, unk_penalty=0.0,
                margins=None):
    """Returns a list of dicts {tokens (without the final EOS), score, positional_scores
    (per-token log-probs including EOS), steps}, best first. When `margins` is a list, the
    decision margin of every step (see _decision_margin) is appended to it."""
    cfg = decoder.cfg["vocab"]
    eos, pad, unk = cfg["eos"], cfg["pad"], cfg["unk"]
    assert min_len <= max_len
    B = beam
    tokens = torch.full((B, max_len + 2), pad, dtype=torch.long)
    tokens[:, 0] = eos
    scores = torch.zeros(B, max_len + 1, dtype=torch.float32)
    finalized = []
    state = None
    for step in range(max_len + 1):
        if state is None:
            lprobs, state = decoder.start(P, B)
        else:
            lprobs = decoder.step(tokens[:, step], state)
        V = lprobs.shape[1]
        lprobs = lprobs.clone()
        lprobs[lprobs != lprobs] = -math.inf
        lprobs[:, pad] = -math.inf
        lprobs[:, unk] -= unk_penalty
        if step >= max_len:
            lprobs[:, :eos] = -math.inf
            lprobs[:, eos + 1:] = -math.inf
        if step < min_len:
            lprobs[:, eos] = -math.inf

        if step == 0:
            flat = lprobs[0]
            k = min(2 * B, V - 1)
        else:
            flat = (lprobs + scores[:, step - 1:step]).view(-1)
            k = min(2 * B, B * V - 1)
        if margins is not None:
            margins.append(_decision_margin(flat, B, eos, V))
        cand_scores, idx = torch.topk(flat, k)
        cand_beams = torch.div(idx, V, rounding_mode="trunc")
        cand_tokens = idx.fmod(V)
        eos_mask = cand_tokens.eq(eos) & cand_scores.ne(-math.inf)

        for c in range(min(B, k)):
            if eos_mask[c] and len(finalized) < B:
                b = int(cand_beams[c])
                pos_scores = torch.cat([scores[b, :step], cand_scores[c:c + 1]])
                pos_scores[1:] = pos_scores[1:] - pos_scores[:-1].clone()
                finalized.append({
                    "tokens": tokens[b, 1:step + 1].tolist(),
                    "score": float(cand_scores[c] / (step + 1) ** lenpen),
                    "positional_scores": [float(v) for v in pos_scores],
                    "steps": step + 1,
                })
        if len(finalized) == B or step == max_len:
            break

        # first B candidates that do not end in EOS (fairseq's active_mask / topk smallest)
        active = [c for c in range(k) if not eos_mask[c]][:B]
        assert len(active) == B, "fewer than B non-EOS candidates (not reachable at batch 1)"
        active = torch.tensor(active)
        src = cand_beams[active]
        tokens[:, :step + 1] = tokens[src, :step + 1]
        tokens[:, step + 1] = cand_tokens[active]
        if step > 0:
            scores[:, :step] = scores[src, :step]
        scores[:, step] = cand_scores[active]
        decoder.reorder(state, src)

    order = sorted(range(len(finalized)), key=lambda i: -finalized[i]["score"])
    return [finalized[i] for i in order]
