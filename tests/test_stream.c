/* The simultaneous translation session (include/mtla-st.h, api/stream.c) used directly, with a
 * random-weight golden model: the text is gibberish but deterministic, so these check the
 * mechanics: partial events before an utterance ends, committed text that only grows, finals
 * that start with it, pauses and finish ending utterances, coalesced steps, the policies, and
 * no events for silence, noise and tones. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/stream_internal.h"
#include "test_support.h"

#define SPEECH "tests/data/vad/speech_with_pauses.wav"    /* 4 sentences, 20.8 s */
#define CONTINUOUS "tests/data/vad/continuous_speech.wav" /* 16.4 s, pauses of 0.3 s only */
#define RATE 16000

typedef struct recorded {
    mtla_stream_event e;
    char *committed, *tentative;
} recorded;

typedef struct recorder {
    recorded *events;
    size_t count, capacity;
} recorder;

static void on_event(const mtla_stream_event *e, void *user)
{
    recorder *r = user;
    if (r->count == r->capacity) {
        r->capacity = r->capacity ? 2 * r->capacity : 64;
        r->events = realloc(r->events, r->capacity * sizeof *r->events);
        cr_assert(r->events);
    }
    recorded *x = &r->events[r->count++];
    x->e = *e;
    x->committed = strdup(e->committed);
    x->tentative = strdup(e->tentative);
    x->e.committed = x->committed;
    x->e.tentative = x->tentative;
}

static void recorder_free(recorder *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->events[i].committed);
        free(r->events[i].tentative);
    }
    free(r->events);
    memset(r, 0, sizeof *r);
}

typedef struct fixture_model {
    mtla_model *model;
    mtla_translator *translator;
} fixture_model;

static fixture_model open_model(const char *name)
{
    fixture_model f;
    char rel[256];
    mtla_error err;
    snprintf(rel, sizeof rel, "tests/golden/models/%s", name);
    cr_assert_eq(mtla_model_open(fixture(rel), &f.model, &err), MTLA_OK, "%s", err.message);
    mtla_translator_params tp = mtla_translator_default_params();
    tp.threads = 1;
    cr_assert_eq(mtla_translator_create(f.model, &tp, &f.translator, &err), MTLA_OK, "%s",
                 err.message);
    return f;
}

static void close_model(fixture_model *f)
{
    mtla_translator_free(f->translator);
    mtla_model_close(f->model);
}

/* Default parameters reporting to `r`, the guards off unless `guards`: a random model's
 * hypotheses are as unsure as a trained model's on noise. */
static mtla_stream_params params_for(const fixture_model *f, recorder *r, int guards)
{
    mtla_stream_params p = mtla_stream_default_params(f->model);
    p.on_event = on_event;
    p.user = r;
    if (!guards) {
        p.logprob_threshold = -INFINITY;
        p.repeat_limit = 0;
    }
    return p;
}

/* Feeds x[0..n) in chunks of `chunk` samples, then finishes. */
static void run_stream(const fixture_model *f, const mtla_stream_params *p, const float *x,
                       size_t n, size_t chunk, int finish)
{
    mtla_stream *s;
    mtla_error err;
    cr_assert_eq(mtla_stream_create(f->translator, p, &s, &err), MTLA_OK, "%s", err.message);
    for (size_t at = 0; at < n; at += chunk) {
        size_t m = n - at < chunk ? n - at : chunk;
        cr_assert_eq(mtla_stream_accept(s, x + at, m, &err), MTLA_OK, "%s", err.message);
    }
    cr_expect_eq(mtla_stream_position(s), (int64_t)n);
    if (finish)
        cr_assert_eq(mtla_stream_finish(s, &err), MTLA_OK, "%s", err.message);
    mtla_stream_free(s);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The invariants of any event sequence: utterances numbered in order, each one's partials
 * then exactly one final; committed text only grows; the final starts with it; times grow. */
static size_t check_sequence(const recorder *r)
{
    int64_t utterance = -1;
    const char *committed = "";
    int64_t last_end = -1, finals = 0, previous_final = 0;
    int open = 0;
    for (size_t i = 0; i < r->count; i++) {
        const mtla_stream_event *e = &r->events[i].e;
        if (!open) {
            cr_assert_eq(e->utterance, utterance + 1, "event %zu: utterance %lld after %lld", i,
                         (long long)e->utterance, (long long)utterance);
            utterance = e->utterance;
            committed = "";
            open = 1;
        }
        cr_assert_eq(e->utterance, utterance, "event %zu belongs to the open utterance", i);
        /* A partial ends where the audio heard ends, trailing silence included; the final
         * where the VAD ends the segment, which may be earlier. */
        if (e->type == MTLA_STREAM_PARTIAL)
            cr_expect_geq(e->end, last_end, "event %zu: end %lld before %lld", i, (long long)e->end,
                          (long long)last_end);
        cr_expect_lt(e->start, e->end);
        cr_expect_geq(e->start, previous_final, "event %zu starts inside the utterance before", i);
        last_end = e->end;
        cr_expect(starts_with(e->committed, committed),
                  "event %zu: committed '%s' does not start with the earlier '%s'", i, e->committed,
                  committed);
        char after = e->committed[strlen(committed)];
        cr_expect(!*committed || after == ' ' || after == '\0',
                  "event %zu: the committed word ending '%s' goes on in '%s'", i, committed,
                  e->committed);
        committed = e->committed;
        if (e->type == MTLA_STREAM_FINAL) {
            cr_expect_str_empty(e->tentative);
            finals++;
            open = 0;
            previous_final = e->end;
        }
    }
    cr_expect(!open, "the last utterance has a final event");
    return (size_t)finals;
}

static size_t count_type(const recorder *r, mtla_stream_event_type type)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++)
        n += r->events[i].e.type == type;
    return n;
}

Test(stream_api, a_long_utterance_gives_committed_text_before_it_ends, .timeout = 120)
{
    fixture_model f = open_model("transformer_mtla_s2");
    size_t n;
    float *x = load_audio(fixture(CONTINUOUS), &n);
    recorder r = {0};
    mtla_stream_params p = params_for(&f, &r, 0);
    run_stream(&f, &p, x, n, RATE / 10, 1);
    cr_assert_eq(check_sequence(&r), 1, "one utterance: its pauses are shorter than 500 ms");
    const mtla_stream_event *final = &r.events[r.count - 1].e;
    cr_assert_eq(final->type, MTLA_STREAM_FINAL);
    cr_expect_gt(final->end - final->start, 15 * RATE, "at least 15 s long");
    cr_expect_geq(count_type(&r, MTLA_STREAM_PARTIAL), 5, "partials while it is heard");
    int64_t first_commit = -1;
    for (size_t i = 0; i < r.count && first_commit < 0; i++)
        if (r.events[i].e.type == MTLA_STREAM_PARTIAL && r.events[i].e.committed[0])
            first_commit = r.events[i].e.end;
    cr_assert_geq(first_commit, 0, "something committed before the utterance ended");
    cr_expect_lt(first_commit, final->end - 5 * RATE, "committed %.1f s before the end",
                 (double)(final->end - first_commit) / RATE);
    /* Partials come at the steps: every 1000 ms of audio (fed 100 ms at a time). */
    for (size_t i = 0; i + 1 < r.count; i++)
        cr_expect_eq((r.events[i].e.end - r.events[i].e.start) % (RATE / 10), 0);
    recorder_free(&r);
    free(x);
    close_model(&f);
}

Test(stream_api, pauses_end_utterances_and_offline_finals_equal_whole_translations, .timeout = 120)
{
    fixture_model f = open_model("transformer_mtla_s2");
    size_t n;
    float *x = load_audio(fixture(SPEECH), &n);
    recorder r = {0}, offline = {0};
    mtla_stream_params p = params_for(&f, &r, 0);
    run_stream(&f, &p, x, n, 1024, 1);
    cr_expect_eq(check_sequence(&r), 4, "four sentences");

    p = params_for(&f, &offline, 0);
    p.policy = MTLA_POLICY_OFFLINE;
    run_stream(&f, &p, x, n, 1024, 1);
    cr_assert_eq(check_sequence(&offline), 4);
    cr_expect_eq(count_type(&offline, MTLA_STREAM_PARTIAL), 0, "offline: finals only");
    for (size_t i = 0; i < offline.count; i++) {
        const mtla_stream_event *e = &offline.events[i].e;
        mtla_translation tr;
        mtla_error err;
        cr_assert_eq(mtla_translate_samples(f.translator, x + e->start, (size_t)(e->end - e->start),
                                            &p.decode, &tr, &err),
                     MTLA_OK);
        cr_expect_str_eq(e->committed, tr.text, "utterance %zu", i);
        mtla_translation_free(&tr);
    }
    /* With partials, the same utterances end at the same samples. */
    for (size_t i = 0, k = 0; i < r.count; i++)
        if (r.events[i].e.type == MTLA_STREAM_FINAL && k < offline.count)
            cr_expect_eq(r.events[i].e.end, offline.events[k++].e.end);
    recorder_free(&r);
    recorder_free(&offline);
    free(x);
    close_model(&f);
}

Test(stream_api, finish_ends_the_open_utterance)
{
    fixture_model f = open_model("transformer_mtla_s2");
    size_t n;
    float *x = load_audio(fixture(SPEECH), &n);
    recorder r = {0};
    mtla_stream_params p = params_for(&f, &r, 0);
    mtla_stream *s;
    mtla_error err;
    cr_assert_eq(mtla_stream_create(f.translator, &p, &s, &err), MTLA_OK);
    size_t part = (size_t)(2.5 * RATE); /* inside sentence 1 */
    for (size_t at = 0; at < part; at += 1600)
        cr_assert_eq(mtla_stream_accept(s, x + at, 1600, &err), MTLA_OK);
    cr_expect_eq(count_type(&r, MTLA_STREAM_FINAL), 0, "still open");
    cr_assert_eq(mtla_stream_finish(s, &err), MTLA_OK);
    cr_assert_eq(check_sequence(&r), 1);
    cr_expect_eq(r.events[r.count - 1].e.end, (int64_t)part, "ends at the last sample");
    mtla_stream_free(s);
    recorder_free(&r);
    free(x);
    close_model(&f);
}

Test(stream_api, one_call_runs_one_step_and_skips_the_others)
{
    fixture_model f = open_model("transformer_mtla_s2");
    size_t n;
    float *x = load_audio(fixture(CONTINUOUS), &n);
    recorder r = {0};
    mtla_stream_params p = params_for(&f, &r, 0);
    mtla_stream *s;
    mtla_error err;
    cr_assert_eq(mtla_stream_create(f.translator, &p, &s, &err), MTLA_OK);
    cr_assert_eq(mtla_stream_accept(s, x, RATE, &err), MTLA_OK);
    cr_assert_eq(mtla_stream_accept(s, x + RATE, 10 * RATE, &err), MTLA_OK, "10 s at once");
    int64_t steps, skipped;
    mtla_stream_counts(s, &steps, &skipped);
    cr_expect_leq(steps, 2, "%lld steps", (long long)steps);
    cr_expect_geq(skipped, 8, "%lld skipped", (long long)skipped);
    cr_assert_eq(mtla_stream_finish(s, &err), MTLA_OK);
    cr_expect_neq(mtla_stream_accept(s, x, 10, &err), MTLA_OK, "no audio after finish");
    mtla_stream_free(s);
    recorder_free(&r);
    free(x);
    close_model(&f);
}

Test(stream_api, wait_k_commits_k_chunks_behind, .timeout = 120)
{
    fixture_model f = open_model("transformer_mtla_s2");
    size_t n;
    float *x = load_audio(fixture(CONTINUOUS), &n);
    recorder r = {0};
    mtla_stream_params p = params_for(&f, &r, 0);
    p.policy = MTLA_POLICY_WAIT_K;
    p.wait_k = 2;
    p.partial_step_ms = 500;
    run_stream(&f, &p, x, n, RATE / 10, 1);
    cr_assert_eq(check_sequence(&r), 1);
    int32_t most = 0;
    for (size_t i = 0; i < r.count; i++) {
        const mtla_stream_event *e = &r.events[i].e;
        if (e->type != MTLA_STREAM_PARTIAL)
            continue;
        int64_t chunks = (e->end - e->start) / (RATE / 2);
        cr_expect_leq(e->committed_tokens, chunks - 2 + 1, "%lld chunks heard, %d committed",
                      (long long)chunks, (int)e->committed_tokens);
        most = e->committed_tokens > most ? e->committed_tokens : most;
    }
    cr_expect_gt(most, 0, "wait-k commits while the utterance is heard");
    recorder_free(&r);
    free(x);
    close_model(&f);
}

/* x[i] for `seconds` of a test signal. */
static float *make_signal(const char *kind, double seconds, size_t *n)
{
    *n = (size_t)(seconds * RATE);
    float *x = malloc(*n * sizeof *x);
    cr_assert(x);
    uint32_t state = 12345;
    for (size_t i = 0; i < *n; i++) {
        double t = (double)i / RATE;
        state = state * 1664525u + 1013904223u;
        double white = ((double)(state >> 8) / (1 << 24)) * 2.0 - 1.0;
        if (strcmp(kind, "silence") == 0)
            x[i] = 0.0f;
        else if (strcmp(kind, "noise") == 0)
            x[i] = (float)(0.1 * white);
        else if (strcmp(kind, "tone") == 0)
            x[i] = (float)(0.3 * sin(2 * M_PI * 440 * t));
        else /* "bursts": 1 s tones at 440 and 1000 Hz between 1 s of faint noise */
            x[i] = fmod(t, 2.0) >= 1.0
                       ? (float)(0.3 * sin(2 * M_PI * (fmod(t, 4.0) < 2 ? 440 : 1000) * t))
                       : (float)(0.001 * white);
    }
    return x;
}

static void check_quiet(const char *kind, int guards)
{
    fixture_model f = open_model("transformer_mtla_s2");
    size_t n;
    float *x = make_signal(kind, 12.0, &n);
    recorder r = {0};
    mtla_stream_params p = params_for(&f, &r, guards);
    run_stream(&f, &p, x, n, RATE / 10, 1);
    cr_expect_eq(r.count, 0, "%s: %zu events, the first '%s' '%s'", kind, r.count,
                 r.count ? r.events[0].e.committed : "", r.count ? r.events[0].e.tentative : "");
    recorder_free(&r);
    free(x);
    close_model(&f);
}

Test(stream_api, silence_gives_no_events)
{
    check_quiet("silence", 0);
}

Test(stream_api, steady_noise_gives_no_events)
{
    check_quiet("noise", 0);
}

Test(stream_api, a_steady_tone_gives_no_events)
{
    check_quiet("tone", 1);
}

Test(stream_api, tone_bursts_open_utterances_but_the_guards_refuse_them)
{
    check_quiet("bursts", 1);
    /* Without the guards the VAD's utterances do give events: the guards refused them. */
    fixture_model f = open_model("transformer_mtla_s2");
    size_t n;
    float *x = make_signal("bursts", 12.0, &n);
    recorder r = {0};
    mtla_stream_params p = params_for(&f, &r, 0);
    run_stream(&f, &p, x, n, RATE / 10, 1);
    cr_expect_geq(count_type(&r, MTLA_STREAM_FINAL), 3, "%zu finals without guards",
                  count_type(&r, MTLA_STREAM_FINAL));
    recorder_free(&r);
    free(x);
    close_model(&f);
}

Test(stream_api, the_repetition_guard_finds_looping_ngrams)
{
    const int32_t ok[] = {5, 6, 7, 5, 6, 8, 5, 6, 9};
    cr_expect_eq(mtla_stream_repeats(ok, 9, 4, 3), 0);
    const int32_t unigram[] = {4, 9, 9, 9, 9, 7};
    cr_expect_eq(mtla_stream_repeats(unigram, 6, 4, 3), 1, "one token four times");
    cr_expect_eq(mtla_stream_repeats(unigram, 6, 4, 4), 0, "within a limit of 4");
    const int32_t bigram[] = {1, 5, 6, 5, 6, 5, 6, 5, 6, 2};
    cr_expect_eq(mtla_stream_repeats(bigram, 10, 4, 3), 1, "a bigram four times");
    cr_expect_eq(mtla_stream_repeats(bigram, 10, 1, 3), 0, "longer than max_ngram");
    cr_expect_eq(mtla_stream_repeats(bigram, 10, 4, 0), 0, "off");
    cr_expect_eq(mtla_stream_repeats(NULL, 0, 4, 3), 0);
}

Test(stream_api, bad_parameters_are_refused_with_the_field_named)
{
    fixture_model f = open_model("transformer_mtla_s2");
    mtla_stream_params p = mtla_stream_default_params(f.model);
    mtla_stream *s;
    mtla_error err;
    p.partial_step_ms = 10;
    cr_expect_eq(mtla_stream_create(f.translator, &p, &s, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "partial_step_ms"), "%s", err.message);
    p = mtla_stream_default_params(f.model);
    p.wait_k = 0;
    cr_expect_eq(mtla_stream_create(f.translator, &p, &s, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "wait_k"), "%s", err.message);
    p = mtla_stream_default_params(f.model);
    p.vad.sample_rate = 8000;
    cr_expect_eq(mtla_stream_create(f.translator, &p, &s, &err), MTLA_ERR_INVALID_ARGUMENT);
    p = mtla_stream_default_params(f.model);
    p.policy = (mtla_stream_policy)7;
    cr_expect_eq(mtla_stream_create(f.translator, &p, &s, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(mtla_stream_create(NULL, NULL, &s, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(mtla_stream_create(f.translator, NULL, &s, &err), MTLA_OK, "defaults");
    mtla_stream_free(s);
    close_model(&f);
}

Test(stream_api, a_whisper_model_streams_within_its_maximum_input, .timeout = 120)
{
    fixture_model f = open_model("whisper_mtla_s2");
    size_t n;
    float *x = load_audio(fixture(CONTINUOUS), &n);
    recorder r = {0};
    mtla_stream_params p = params_for(&f, &r, 0);
    int64_t max_ms = mtla_model_max_input_ms(f.model);
    cr_expect(max_ms == 0 || p.vad.max_segment_ms <= max_ms, "the VAD is capped at %lld ms",
              (long long)max_ms);
    run_stream(&f, &p, x, n, RATE / 10, 1);
    size_t finals = check_sequence(&r);
    cr_expect_geq(finals, 1);
    for (size_t i = 0; i < r.count; i++)
        if (r.events[i].e.type == MTLA_STREAM_FINAL && max_ms > 0)
            cr_expect_leq((r.events[i].e.end - r.events[i].e.start) * 1000 / RATE, max_ms + 300,
                          "utterance %zu", i);
    recorder_free(&r);
    free(x);
    close_model(&f);
}
