/* Simultaneous translation sessions of include/mtla-st.h (docs/streaming.md): a VAD, a window
 * of recent samples, and the state of the open utterance (its committed tokens and text, the
 * previous hypothesis for LocalAgreement-2). Each partial step translates the open utterance
 * from its start with the committed tokens forced (decoder/beam.h), passes the hypothesis
 * through the guards, and lets the policy commit a longer prefix, at a word boundary. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/stream_internal.h"
#include "api/translator_internal.h"
#include "core/error.h"
#include "mtla-st.h"
#include "tokenizer/tokenizer.h"

/* A translation of the open utterance and its guard values. */
typedef struct hypothesis {
    mtla_translation tr;
    float *logprobs; /* tr.token_count + 1 */
    float avg_logprob;
} hypothesis;

struct mtla_stream {
    mtla_translator *translator;
    const mtla_tokenizer *tokenizer;
    mtla_stream_params p;
    mtla_vad *vad;
    int32_t rate;
    int64_t step_samples, max_samples, lookback;
    /* samples [base, base + count) of the input */
    float *window;
    size_t count, capacity;
    int64_t base;
    int64_t position;
    int finished;
    int64_t next_utterance;
    int64_t steps, skipped;

    /* the open utterance */
    int open;
    int64_t start;     /* its first sample, as first reported */
    int64_t last_step; /* position of its last partial step (its start before the first) */
    int64_t index;     /* its number once it has given an event, else -1 */
    int32_t *committed;
    int32_t committed_count, committed_capacity;
    char *committed_text;
    int32_t *previous; /* LocalAgreement-2: the last hypothesis the guards let through */
    int32_t previous_count, previous_capacity;
    int have_previous;
    char *tentative;           /* the tentative text last reported */
    unsigned char *word_start; /* [vocab]: the piece starts a word (U+2581) */
    int32_t vocab;
};

mtla_stream_params mtla_stream_default_params(const mtla_model *model)
{
    mtla_stream_params p;
    memset(&p, 0, sizeof p);
    p.policy = MTLA_POLICY_LOCAL_AGREEMENT;
    p.partial_step_ms = 1000;
    p.wait_k = 3;
    p.logprob_threshold = -1.0f;
    p.repeat_ngram = 4;
    p.repeat_limit = 3;
    p.vad = mtla_vad_default_params();
    if (model) {
        p.vad.sample_rate = mtla_model_fbank_params(model).sample_rate;
        int64_t max_ms = mtla_model_max_input_ms(model);
        if (max_ms > 0 && p.vad.max_segment_ms > max_ms)
            p.vad.max_segment_ms = (int32_t)max_ms;
        p.decode = mtla_decode_default_params(model);
    }
    return p;
}

int mtla_stream_repeats(const int32_t *tokens, int32_t count, int32_t max_ngram, int32_t limit)
{
    if (limit <= 0)
        return 0;
    for (int32_t g = 1; g <= max_ngram; g++)
        for (int32_t i = 0; i + g <= count; i++) {
            int32_t runs = 1;
            while (i + (int64_t)(runs + 1) * g <= count &&
                   memcmp(tokens + i, tokens + i + (int64_t)runs * g, (size_t)g * sizeof *tokens) ==
                       0)
                runs++;
            if (runs > limit)
                return 1;
        }
    return 0;
}

static mtla_status validate(const mtla_stream_params *p, int32_t model_rate, mtla_error *err)
{
    if (p->policy != MTLA_POLICY_LOCAL_AGREEMENT && p->policy != MTLA_POLICY_WAIT_K &&
        p->policy != MTLA_POLICY_OFFLINE)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "stream policy %d is unknown",
                         (int)p->policy);
    if (p->partial_step_ms < 100 || p->partial_step_ms > 60000)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "stream partial_step_ms %d is not in [100, 60000]",
                         (int)p->partial_step_ms);
    if (p->wait_k < 1 || p->wait_k > 1000)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "stream wait_k %d is not in [1, 1000]",
                         (int)p->wait_k);
    if (isnan(p->logprob_threshold) || p->logprob_threshold > 0.0f)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "stream logprob_threshold %g is not <= 0 (-INFINITY: off)",
                         p->logprob_threshold);
    if (p->repeat_limit < 0 ||
        (p->repeat_limit > 0 && (p->repeat_ngram < 1 || p->repeat_ngram > 64)))
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "stream repeat_limit %d must be >= 0 and repeat_ngram %d in [1, 64]",
                         (int)p->repeat_limit, (int)p->repeat_ngram);
    if (p->vad.sample_rate != model_rate)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "stream vad.sample_rate %d is not the model's %d Hz",
                         (int)p->vad.sample_rate, (int)model_rate);
    return MTLA_OK;
}

mtla_status mtla_stream_create(mtla_translator *translator, const mtla_stream_params *params,
                               mtla_stream **out, mtla_error *err)
{
    if (!out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_stream_create: no output");
    *out = NULL;
    if (!translator)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_stream_create: no translator");
    const mtla_model *model = mtla_translator_model(translator);
    mtla_stream_params defaults = mtla_stream_default_params(model);
    const mtla_stream_params *p = params ? params : &defaults;
    int32_t rate = mtla_model_fbank_params(model).sample_rate;
    mtla_status st = validate(p, rate, err);
    if (st != MTLA_OK)
        return st;
    mtla_stream *s = calloc(1, sizeof *s);
    if (!s)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a stream");
    s->translator = translator;
    s->tokenizer = mtla_translator_tokenizer(translator);
    s->p = *p;
    s->rate = rate;
    s->step_samples = (int64_t)p->partial_step_ms * rate / 1000;
    s->max_samples = (int64_t)p->vad.max_segment_ms * rate / 1000;
    /* A segment starts at most a maximum segment plus padding before the VAD's position (as
     * cli/segmenter.c keeps). */
    s->lookback =
        ((int64_t)p->vad.max_segment_ms + 2 * p->vad.padding_ms + p->vad.min_silence_ms + 1000) *
        rate / 1000;
    s->index = -1;
    int32_t V = mtla_model_vocab_size(model);
    s->vocab = V;
    s->word_start = calloc((size_t)V, 1);
    if (!s->word_start) {
        free(s);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a stream");
    }
    for (int32_t v = 0; v < V; v++) {
        const char *piece = mtla_tokenizer_piece(s->tokenizer, v);
        s->word_start[v] = piece && strncmp(piece, "\xe2\x96\x81", 3) == 0;
    }
    st = mtla_vad_create(&p->vad, &s->vad, err);
    if (st != MTLA_OK) {
        free(s->word_start);
        free(s);
        return st;
    }
    *out = s;
    return MTLA_OK;
}

static void utterance_reset(mtla_stream *s)
{
    s->open = 0;
    s->index = -1;
    s->committed_count = 0;
    s->previous_count = 0;
    s->have_previous = 0;
    free(s->committed_text);
    s->committed_text = NULL;
    free(s->tentative);
    s->tentative = NULL;
}

void mtla_stream_free(mtla_stream *s)
{
    if (!s)
        return;
    utterance_reset(s);
    free(s->committed);
    free(s->previous);
    free(s->window);
    free(s->word_start);
    mtla_vad_free(s->vad);
    free(s);
}

int64_t mtla_stream_position(const mtla_stream *s)
{
    return s ? s->position : 0;
}

void mtla_stream_counts(const mtla_stream *s, int64_t *steps, int64_t *skipped)
{
    if (steps)
        *steps = s ? s->steps : 0;
    if (skipped)
        *skipped = s ? s->skipped : 0;
}

static int tokens_reserve(int32_t **tokens, int32_t *capacity, int32_t need)
{
    if (need <= *capacity)
        return 0;
    int32_t cap = *capacity ? *capacity : 64;
    while (cap < need)
        cap *= 2;
    int32_t *grown = realloc(*tokens, (size_t)cap * sizeof *grown);
    if (!grown)
        return -1;
    *tokens = grown;
    *capacity = cap;
    return 0;
}

static int window_append(mtla_stream *s, const float *x, size_t n)
{
    if (s->count + n > s->capacity) {
        size_t capacity = s->capacity ? s->capacity : (size_t)s->rate * 4;
        while (capacity < s->count + n)
            capacity *= 2;
        float *grown = realloc(s->window, capacity * sizeof *grown);
        if (!grown)
            return -1;
        s->window = grown;
        s->capacity = capacity;
    }
    memcpy(s->window + s->count, x, n * sizeof *x);
    s->count += n;
    return 0;
}

static void window_trim(mtla_stream *s, int64_t keep_from)
{
    if (keep_from <= s->base)
        return;
    size_t drop = (size_t)(keep_from - s->base);
    if (drop > s->count)
        drop = s->count;
    memmove(s->window, s->window + drop, (s->count - drop) * sizeof *s->window);
    s->count -= drop;
    s->base += (int64_t)drop;
}

static void hypothesis_free(hypothesis *h)
{
    mtla_translation_free(&h->tr);
    free(h->logprobs);
    h->logprobs = NULL;
}

/* Translates samples [start, end) with the committed tokens forced and a new word after them
 * (commits end at word boundaries, so a committed word is never continued). *got is 0 when the span
 * is too short for the model (nothing to say yet) or the guards refuse the hypothesis. */
static mtla_status translate(mtla_stream *s, int64_t start, int64_t end, hypothesis *h, int *got,
                             mtla_error *err)
{
    memset(h, 0, sizeof *h);
    *got = 0;
    if (start < s->base)
        start = s->base;
    if (end - start > s->max_samples)
        end = start + s->max_samples; /* trailing silence past the VAD's maximum segment */
    if (end <= start)
        return MTLA_OK;
    mtla_status st = mtla_translator_run(
        s->translator, s->window + (start - s->base), (size_t)(end - start), &s->p.decode,
        s->committed, s->committed_count, s->word_start, &h->tr, &h->logprobs, err);
    if (st == MTLA_ERR_EMPTY)
        return MTLA_OK;
    if (st != MTLA_OK)
        return st;
    double sum = 0.0;
    for (int32_t i = 0; i <= h->tr.token_count; i++)
        sum += h->logprobs[i];
    h->avg_logprob = (float)(sum / (h->tr.token_count + 1));
    /* The log-prob threshold tests whether there is speech at all: once words of this utterance
     * are committed it is speech, and a weak model's low scores must not cut its final back to
     * the committed prefix (measured with the first bundled model); the loop guard still acts. */
    int no_speech = s->committed_count == 0 && h->avg_logprob < s->p.logprob_threshold;
    if (no_speech ||
        mtla_stream_repeats(h->tr.tokens, h->tr.token_count, s->p.repeat_ngram,
                            s->p.repeat_limit)) {
        hypothesis_free(h);
        return MTLA_OK;
    }
    *got = 1;
    return MTLA_OK;
}

static int starts_word(const mtla_stream *s, int32_t id)
{
    return id >= 0 && id < s->vocab && s->word_start[id];
}

/* The text of tokens[0..count) given that `text` is that of tokens[0..known): the decoded
 * whole when it extends `text` (it does when tokens[known] starts a word), else `text`, a
 * space and the rest decoded on its own. Malloc'ed. */
static mtla_status extend_text(const mtla_stream *s, const char *text, const int32_t *tokens,
                               int32_t known, int32_t count, char **out, mtla_error *err)
{
    *out = NULL;
    size_t n = text ? strlen(text) : 0;
    char *whole;
    mtla_status st = mtla_tokenizer_decode(s->tokenizer, tokens, (size_t)count, &whole, err);
    if (st != MTLA_OK)
        return st;
    if (strncmp(whole, text ? text : "", n) == 0) {
        *out = whole;
        return MTLA_OK;
    }
    free(whole);
    char *rest;
    st = mtla_tokenizer_decode(s->tokenizer, tokens + known, (size_t)(count - known), &rest, err);
    if (st != MTLA_OK)
        return st;
    size_t m = strlen(rest);
    *out = malloc(n + m + 2);
    if (*out) {
        memcpy(*out, text, n);
        size_t at = n;
        if (n && m)
            (*out)[at++] = ' ';
        memcpy(*out + at, rest, m + 1);
    }
    free(rest);
    return *out ? MTLA_OK : mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a text");
}

static void emit(mtla_stream *s, mtla_stream_event_type type, int64_t end, const char *committed,
                 const char *tentative, float avg_logprob)
{
    if (s->index < 0)
        s->index = s->next_utterance++;
    mtla_stream_event e = {
        .type = type,
        .utterance = s->index,
        .start = s->start,
        .end = end,
        .committed = committed ? committed : "",
        .tentative = tentative ? tentative : "",
        .committed_tokens = s->committed_count,
        .avg_logprob = avg_logprob,
    };
    if (s->p.on_event)
        s->p.on_event(&e, s->p.user);
}

/* The policy's commit for hypothesis `tokens` (which starts with the committed tokens). */
static int32_t policy_commit(mtla_stream *s, const int32_t *tokens, int32_t count, int64_t heard)
{
    int32_t n = s->committed_count;
    if (s->p.policy == MTLA_POLICY_LOCAL_AGREEMENT) {
        if (s->have_previous) {
            int32_t m = s->previous_count < count ? s->previous_count : count;
            while (n < m && s->previous[n] == tokens[n])
                n++;
        }
    } else if (s->p.policy == MTLA_POLICY_WAIT_K) {
        int64_t chunks = heard / s->step_samples;
        int64_t target = chunks - s->p.wait_k + 1;
        if (target > n)
            n = target < count ? (int32_t)target : count;
    }
    /* Back to a word boundary: the token after the commit starts a word. The hypothesis' end
     * is no boundary, since the speaker may still be inside its last word. */
    while (n > s->committed_count && (n >= count || !starts_word(s, tokens[n])))
        n--;
    return n;
}

/* One partial step: the open utterance up to the current position. */
static mtla_status partial_step(mtla_stream *s, mtla_error *err)
{
    hypothesis h;
    int got;
    s->steps++;
    mtla_status st = translate(s, s->start, s->position, &h, &got, err);
    if (st != MTLA_OK || !got)
        return st;
    const int32_t *tokens = h.tr.tokens;
    int32_t count = h.tr.token_count;
    int32_t n = policy_commit(s, tokens, count, s->position - s->start);
    if (s->p.policy == MTLA_POLICY_LOCAL_AGREEMENT) {
        if (tokens_reserve(&s->previous, &s->previous_capacity, count) != 0) {
            hypothesis_free(&h);
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a hypothesis");
        }
        memcpy(s->previous, tokens, (size_t)count * sizeof *tokens);
        s->previous_count = count;
        s->have_previous = 1;
    }
    int changed = 0;
    if (n > s->committed_count) {
        char *text;
        st = extend_text(s, s->committed_text, tokens, s->committed_count, n, &text, err);
        if (st == MTLA_OK && tokens_reserve(&s->committed, &s->committed_capacity, n) != 0) {
            free(text);
            st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a hypothesis");
        }
        if (st != MTLA_OK) {
            hypothesis_free(&h);
            return st;
        }
        memcpy(s->committed + s->committed_count, tokens + s->committed_count,
               (size_t)(n - s->committed_count) * sizeof *tokens);
        s->committed_count = n;
        free(s->committed_text);
        s->committed_text = text;
        changed = 1;
    }
    /* The tentative text: the hypothesis' text after the committed one. */
    char *whole;
    st = extend_text(s, s->committed_text, tokens, s->committed_count, count, &whole, err);
    hypothesis_free(&h);
    if (st != MTLA_OK)
        return st;
    const char *rest = whole + (s->committed_text ? strlen(s->committed_text) : 0);
    while (*rest == ' ')
        rest++;
    if (changed || !s->tentative || strcmp(s->tentative, rest) != 0) {
        char *copy = strdup(rest);
        if (!copy) {
            free(whole);
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a text");
        }
        free(s->tentative);
        s->tentative = copy;
        if (changed || *rest || s->index >= 0)
            emit(s, MTLA_STREAM_PARTIAL, s->position, s->committed_text, s->tentative,
                 h.avg_logprob);
    }
    free(whole);
    return MTLA_OK;
}

/* The utterance ends: samples [start, end), the committed tokens forced. */
static mtla_status final_step(mtla_stream *s, int64_t start, int64_t end, mtla_error *err)
{
    hypothesis h;
    int got;
    mtla_status st = translate(s, start, end, &h, &got, err);
    if (st != MTLA_OK)
        return st;
    char *text = NULL;
    float avg = got ? h.avg_logprob : 0.0f;
    if (got)
        st = extend_text(s, s->committed_text, h.tr.tokens, s->committed_count, h.tr.token_count,
                         &text, err);
    else if (s->committed_text && !(text = strdup(s->committed_text)))
        st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a text");
    if (got && st == MTLA_OK && h.tr.token_count > s->committed_count) {
        if (tokens_reserve(&s->committed, &s->committed_capacity, h.tr.token_count) != 0) {
            st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a hypothesis");
        } else {
            memcpy(s->committed, h.tr.tokens, (size_t)h.tr.token_count * sizeof *h.tr.tokens);
            s->committed_count = h.tr.token_count;
        }
    }
    hypothesis_free(&h);
    if (st == MTLA_OK && (s->index >= 0 || (text && *text)))
        emit(s, MTLA_STREAM_FINAL, end, text, "", avg);
    free(text);
    utterance_reset(s);
    return st;
}

/* The VAD's ready segments end utterances; then an utterance it has opened is followed. */
static mtla_status follow_vad(mtla_stream *s, mtla_error *err)
{
    mtla_segment seg;
    mtla_status st = MTLA_OK;
    while (st == MTLA_OK && mtla_vad_take(s->vad, &seg)) {
        if (!s->open) {
            /* Shorter than the onset lag: it was never seen open. */
            s->start = seg.start;
            s->index = -1;
        }
        st = final_step(s, seg.start, seg.end, err);
    }
    if (st != MTLA_OK)
        return st;
    int64_t start;
    int open = mtla_vad_open(s->vad, &start);
    if (open && !s->open) {
        s->open = 1;
        s->start = start;
        s->last_step = start;
        s->index = -1;
    } else if (!open && s->open) {
        /* The VAD took its onset back (stream start, docs/vad.md): nothing to finish unless
         * something was said. */
        if (s->index >= 0)
            return final_step(s, s->start, s->position, err);
        utterance_reset(s);
    }
    return MTLA_OK;
}

mtla_status mtla_stream_accept(mtla_stream *s, const float *samples, size_t count, mtla_error *err)
{
    if (!s || (!samples && count))
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_stream_accept: NULL argument");
    if (s->finished)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "the stream has been finished");
    if (count == 0)
        return MTLA_OK;
    if (window_append(s, samples, count) != 0)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for %zu samples", count);
    mtla_status st = mtla_vad_accept(s->vad, samples, count, err);
    if (st != MTLA_OK)
        return st;
    s->position += (int64_t)count;
    st = follow_vad(s, err);
    if (st == MTLA_OK && s->open && s->p.policy != MTLA_POLICY_OFFLINE &&
        s->position - s->last_step >= s->step_samples) {
        /* One step for everything this call brought: the ones it spans are skipped. */
        s->skipped += (s->position - s->last_step) / s->step_samples - 1;
        s->last_step = s->position;
        st = partial_step(s, err);
    }
    int64_t keep = s->position - s->lookback;
    if (s->open && s->start < keep)
        keep = s->start;
    window_trim(s, keep);
    return st;
}

mtla_status mtla_stream_finish(mtla_stream *s, mtla_error *err)
{
    if (!s)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_stream_finish: no stream");
    if (s->finished)
        return MTLA_OK;
    s->finished = 1;
    mtla_vad_finish(s->vad);
    mtla_status st = follow_vad(s, err);
    if (st == MTLA_OK && s->open)
        st = final_step(s, s->start, s->position, err);
    return st;
}
