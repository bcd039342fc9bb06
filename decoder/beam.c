/* fairseq beam search at batch size 1 (decoder/beam.h). The loop follows
 * SequenceGenerator._generate and BeamSearch.step line by line; docs/architecture.md section 5
 * lists each rule and where it was read. Scores are float32, as fairseq's. */
#include "decoder/beam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int32_t mtla_beam_max_len(double max_len_a, int32_t max_len_b, int64_t frames)
{
    /* min(int(a * src_len + b), max_decoder_positions - 1), max_decoder_positions = 1024 */
    double len = max_len_a * (double)frames + (double)max_len_b;
    if (!(len < 1023.0))
        return 1023;
    return len < 1.0 ? 1 : (int32_t)len;
}

typedef struct candidate {
    float score;
    int64_t index; /* hypothesis * V + token */
} candidate;

/* Candidate a ranks before b: higher score, then lower index (torch.topk leaves ties
 * unspecified; this order is deterministic). */
static int ranks_before(const candidate *a, const candidate *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    return a->index < b->index;
}

/* Restores the min-heap order (worst candidate at the root) of heap[0..size) below j. */
static void sift_down(candidate *heap, int32_t size, int32_t j)
{
    for (;;) {
        int32_t l = 2 * j + 1, r = l + 1, worst = j;
        if (l < size && ranks_before(&heap[worst], &heap[l]))
            worst = l;
        if (r < size && ranks_before(&heap[worst], &heap[r]))
            worst = r;
        if (worst == j)
            return;
        candidate t = heap[j];
        heap[j] = heap[worst];
        heap[worst] = t;
        j = worst;
    }
}

/* The k best of n scores (host), best first. heap[] is a min-heap of the k best so far. */
static int32_t top_k(const float *scores, int64_t n, int32_t k, candidate *heap)
{
    int32_t size = 0;
    for (int64_t i = 0; i < n; i++) {
        candidate c = {scores[i], i};
        if (size == k) {
            if (ranks_before(&c, &heap[0])) {
                heap[0] = c; /* replaces the worst */
                sift_down(heap, size, 0);
            }
            continue;
        }
        int32_t j = size++;
        heap[j] = c;
        while (j > 0 && ranks_before(&heap[(j - 1) / 2], &heap[j])) {
            candidate t = heap[j];
            heap[j] = heap[(j - 1) / 2];
            heap[(j - 1) / 2] = t;
            j = (j - 1) / 2;
        }
    }
    /* Heap sort: repeatedly move the worst to the end. */
    for (int32_t end = size - 1; end > 0; end--) {
        candidate t = heap[0];
        heap[0] = heap[end];
        heap[end] = t;
        sift_down(heap, end, 0);
    }
    return size;
}

void mtla_beam_result_free(mtla_beam_result *result)
{
    if (!result)
        return;
    for (int32_t i = 0; i < result->count; i++) {
        free(result->hyps[i].tokens);
        free(result->hyps[i].positional);
    }
    free(result->hyps);
    memset(result, 0, sizeof *result);
}

typedef struct search {
    int32_t B, V, max_len;
    int32_t *tokens, *tokens_next; /* [B, max_len + 2]: start token then text */
    float *scores, *scores_next;   /* [B, max_len + 1] cumulative log-probs */
    float *lprobs;                 /* [B, V] */
    float *flat;                   /* [B * V] candidate scores */
    candidate *cands;              /* [2B] */
    int32_t *source, *next_tokens;
} search;

static void search_free(search *s)
{
    free(s->tokens);
    free(s->tokens_next);
    free(s->scores);
    free(s->scores_next);
    free(s->lprobs);
    free(s->flat);
    free(s->cands);
    free(s->source);
    free(s->next_tokens);
}

static int cmp_hyp(const void *pa, const void *pb)
{
    const mtla_beam_hypothesis *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return 0;
}

/* Finalises hypothesis `b` ending in EOS at `step` with cumulative score `cum`. */
static mtla_status finalize(const search *s, mtla_beam_result *res, int32_t b, int32_t step,
                            float cum, float lenpen, mtla_error *err)
{
    mtla_beam_hypothesis *h = &res->hyps[res->count];
    h->length = step;
    h->tokens = malloc((size_t)(step > 0 ? step : 1) * sizeof *h->tokens);
    h->positional = malloc((size_t)(step + 1) * sizeof *h->positional);
    if (!h->tokens || !h->positional) {
        free(h->tokens);
        free(h->positional);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory in beam search");
    }
    int32_t W = s->max_len + 2, SW = s->max_len + 1;
    memcpy(h->tokens, s->tokens + (int64_t)b * W + 1, (size_t)step * sizeof *h->tokens);
    float prev = 0.0f;
    for (int32_t i = 0; i <= step; i++) {
        float v = i < step ? s->scores[(int64_t)b * SW + i] : cum;
        h->positional[i] = v - prev;
        prev = v;
    }
    h->score = cum / powf((float)(step + 1), lenpen);
    res->count++;
    return MTLA_OK;
}

mtla_status mtla_beam_search(mtla_decoder_state *state, const float *prompt, int64_t prompt_frames,
                             const mtla_beam_params *p, mtla_beam_result *res, mtla_error *err)
{
    memset(res, 0, sizeof *res);
    const mtla_vocab_config *vocab = mtla_decoder_vocab(state);
    if (p->beam < 1 || p->max_len < 1 || p->min_len < 0 || p->min_len > p->max_len)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "beam search needs beam >= 1 and 0 <= min_len <= max_len (got beam %d, "
                         "min_len %d, max_len %d)",
                         (int)p->beam, (int)p->min_len, (int)p->max_len);
    int32_t P = p->prefix ? p->prefix_length : 0;
    if (P < 0 || P > p->max_len)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "a forced prefix of %d tokens does not fit max_len %d", (int)P,
                         (int)p->max_len);
    for (int32_t i = 0; i < P; i++)
        if (p->prefix[i] < 0 || p->prefix[i] >= vocab->size || p->prefix[i] == vocab->eos ||
            p->prefix[i] == vocab->pad)
            return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                             "forced prefix token %d is %d: not an id of the vocabulary "
                             "(0..%d) other than EOS and pad",
                             (int)i, (int)p->prefix[i], (int)vocab->size - 1);
    search s = {.B = p->beam, .V = vocab->size, .max_len = p->max_len};
    int32_t B = s.B, V = s.V, W = s.max_len + 2, SW = s.max_len + 1;
    int32_t eos = vocab->eos;
    s.tokens = malloc((size_t)B * (size_t)W * sizeof *s.tokens);
    s.tokens_next = malloc((size_t)B * (size_t)W * sizeof *s.tokens);
    s.scores = calloc((size_t)B * (size_t)SW, sizeof *s.scores);
    s.scores_next = calloc((size_t)B * (size_t)SW, sizeof *s.scores);
    s.lprobs = malloc((size_t)B * (size_t)V * sizeof *s.lprobs);
    s.flat = malloc((size_t)B * (size_t)V * sizeof *s.flat);
    s.cands = malloc((size_t)(2 * B) * sizeof *s.cands);
    s.source = malloc((size_t)B * sizeof *s.source);
    s.next_tokens = malloc((size_t)B * sizeof *s.next_tokens);
    res->hyps = calloc((size_t)B, sizeof *res->hyps);
    if (!s.tokens || !s.tokens_next || !s.scores || !s.scores_next || !s.lprobs || !s.flat ||
        !s.cands || !s.source || !s.next_tokens || !res->hyps) {
        search_free(&s);
        free(res->hyps);
        res->hyps = NULL;
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a beam of %d", (int)B);
    }
    for (int64_t i = 0; i < (int64_t)B * W; i++)
        s.tokens[i] = vocab->pad;
    for (int32_t b = 0; b < B; b++)
        s.tokens[(int64_t)b * W] = eos;

    mtla_status st = MTLA_OK;
    for (int32_t step = 0; step <= s.max_len; step++) {
        if (step == 0) {
            st = mtla_decoder_start(state, prompt, prompt_frames, B, s.max_len, s.lprobs, err);
        } else {
            for (int32_t b = 0; b < B; b++)
                s.next_tokens[b] = s.tokens[(int64_t)b * W + step];
            st = mtla_decoder_step(state, s.next_tokens, s.lprobs, err);
        }
        if (st != MTLA_OK)
            break;
        res->steps = step + 1;
        /* Step 0 and the steps of the forced prefix: every hypothesis is the same. */
        int32_t rows = step <= P ? 1 : B;
        for (int32_t b = 0; b < rows; b++) {
            float *lp = s.lprobs + (int64_t)b * V;
            for (int32_t v = 0; v < V; v++)
                if (isnan(lp[v]))
                    lp[v] = -INFINITY;
            lp[vocab->pad] = -INFINITY;
            lp[vocab->unk] -= p->unk_penalty;
            if (step >= s.max_len)
                for (int32_t v = 0; v < V; v++)
                    if (v != eos)
                        lp[v] = -INFINITY;
            if (step < p->min_len)
                lp[eos] = -INFINITY;
            if (step == P && P > 0 && p->next_allowed)
                for (int32_t v = 0; v < V; v++)
                    if (!p->next_allowed[v] && v != eos)
                        lp[v] = -INFINITY;
            float prev = step == 0 ? 0.0f : s.scores[(int64_t)b * SW + step - 1];
            for (int32_t v = 0; v < V; v++)
                s.flat[(int64_t)b * V + v] = step == 0 ? lp[v] : lp[v] + prev;
        }
        if (step < P) {
            /* fairseq _prefix_tokens: only the forced token keeps its log-prob, so the beam
             * stays B copies of one hypothesis, whose caches are therefore equal (no reorder). */
            int32_t token = p->prefix[step];
            float score = s.flat[token];
            for (int32_t b = 0; b < B; b++) {
                s.tokens[(int64_t)b * W + step + 1] = token;
                s.scores[(int64_t)b * SW + step] = score;
            }
            continue;
        }
        int64_t n = (int64_t)rows * V;
        int32_t k = (int32_t)(2 * (int64_t)B < n - 1 ? 2 * B : n - 1);
        k = top_k(s.flat, n, k, s.cands);

        /* EOS among the first B candidates (and finite) ends a hypothesis. */
        for (int32_t c = 0; c < k && c < B && st == MTLA_OK; c++) {
            int32_t token = (int32_t)(s.cands[c].index % V);
            if (token == eos && s.cands[c].score != -INFINITY && res->count < B)
                st = finalize(&s, res, (int32_t)(s.cands[c].index / V), step, s.cands[c].score,
                              p->lenpen, err);
        }
        if (st != MTLA_OK || res->count == B || step == s.max_len)
            break;

        /* The next beam: the first B candidates that are not a finite EOS. */
        int32_t active = 0;
        for (int32_t c = 0; c < k && active < B; c++) {
            int32_t token = (int32_t)(s.cands[c].index % V);
            if (token == eos && s.cands[c].score != -INFINITY)
                continue;
            int32_t src = (int32_t)(s.cands[c].index / V);
            memcpy(s.tokens_next + (int64_t)active * W, s.tokens + (int64_t)src * W,
                   (size_t)(step + 1) * sizeof *s.tokens);
            s.tokens_next[(int64_t)active * W + step + 1] = token;
            memcpy(s.scores_next + (int64_t)active * SW, s.scores + (int64_t)src * SW,
                   (size_t)step * sizeof *s.scores);
            s.scores_next[(int64_t)active * SW + step] = s.cands[c].score;
            s.source[active++] = src;
        }
        if (active < B) {
            st = mtla_fail(err, MTLA_ERR_INTERNAL,
                           "beam search found %d of %d live hypotheses at step %d", (int)active,
                           (int)B, (int)step);
            break;
        }
        int32_t *t = s.tokens;
        s.tokens = s.tokens_next;
        s.tokens_next = t;
        float *u = s.scores;
        s.scores = s.scores_next;
        s.scores_next = u;
        mtla_decoder_reorder(state, s.source);
    }
    search_free(&s);
    if (st != MTLA_OK) {
        mtla_beam_result_free(res);
        return st;
    }
    /* Best first; qsort is not stable, so equal scores keep finalisation order by index. */
    for (int32_t i = 1; i < res->count; i++)
        for (int32_t j = i; j > 0 && cmp_hyp(&res->hyps[j - 1], &res->hyps[j]) > 0; j--) {
            mtla_beam_hypothesis t = res->hyps[j];
            res->hyps[j] = res->hyps[j - 1];
            res->hyps[j - 1] = t;
        }
    return MTLA_OK;
}
