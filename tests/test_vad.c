/* The streaming VAD (frontend/vad.c). Boundaries are checked against real speech with known
 * truth: tests/data/vad/, made by tools/make_frontend_fixtures.py from LibriVox clips, where
 * the true speech boundaries come from a SoX-style VAD run on each clean clip. Synthetic
 * signals (seeded, generated here) cover silence, noise, long murmurs and hours of input. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "test_support.h"

#define RATE 16000
#define MAX_SEGMENTS 64
#define MAX_INTERVALS 16

/* Boundary tolerance against the truth, and against a cut's pause. */
static const double BOUNDARY_TOLERANCE_S = 0.100;
static const double CUT_TOLERANCE_S = 0.050;

typedef struct interval {
    double start;
    double end;
} interval;

/* Reads a table of "start<TAB>end" in seconds; lines starting with '#' are comments. */
static size_t read_intervals(const char *path, interval *out, size_t capacity)
{
    size_t size;
    unsigned char *bytes = read_file(path, &size);
    char *text = malloc(size + 1);
    cr_assert(text);
    memcpy(text, bytes, size);
    text[size] = '\0';
    free(bytes);
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        cr_assert_lt(n, capacity, "too many lines in %s", path);
        cr_assert_eq(sscanf(line, "%lf %lf", &out[n].start, &out[n].end), 2, "bad line in %s: '%s'",
                     path, line);
        cr_assert_lt(out[n].start, out[n].end, "empty interval in %s", path);
        n++;
    }
    free(text);
    cr_assert_gt(n, 0, "no intervals in %s", path);
    return n;
}

static double seconds(int64_t sample)
{
    return (double)sample / RATE;
}

/* Segments found in one run, with the number of samples fed when each was taken (-1: only
 * after mtla_vad_finish). */
typedef struct vad_run {
    mtla_segment segments[MAX_SEGMENTS];
    int64_t ready_at[MAX_SEGMENTS];
    size_t count;
} vad_run;

static void take_ready(mtla_vad *vad, vad_run *run, int64_t fed)
{
    mtla_segment seg;
    while (mtla_vad_take(vad, &seg)) {
        cr_assert_lt(run->count, MAX_SEGMENTS, "too many segments");
        run->segments[run->count] = seg;
        run->ready_at[run->count] = fed;
        run->count++;
    }
}

/* A small seeded generator, so that synthetic signals and chunkings repeat exactly. */
static uint64_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

static double uniform(uint64_t *state)
{
    return ((double)next_random(state) + 0.5) / 2147483648.0;
}

static double gaussian(uint64_t *state)
{
    return sqrt(-2.0 * log(uniform(state))) * cos(2.0 * M_PI * uniform(state));
}

enum { RANDOM_CHUNK_MAX = 3000 };

/* Feeds `samples` to a new VAD in chunks of `chunk` samples (0: seeded pseudo-random sizes in
 * [1, RANDOM_CHUNK_MAX]), taking segments after every call, then declares the end of input. */
static vad_run run_vad(const mtla_vad_params *params, const float *samples, size_t count,
                       size_t chunk)
{
    mtla_vad *vad = NULL;
    mtla_error err;
    cr_assert_eq(mtla_vad_create(params, &vad, &err), MTLA_OK, "%s", err.message);
    vad_run run = {0};
    uint64_t rng = 12345;
    size_t fed = 0;
    while (fed < count) {
        size_t n = chunk ? chunk : 1 + next_random(&rng) % RANDOM_CHUNK_MAX;
        if (n > count - fed)
            n = count - fed;
        cr_assert_eq(mtla_vad_accept(vad, samples + fed, n, &err), MTLA_OK, "%s", err.message);
        fed += n;
        take_ready(vad, &run, (int64_t)fed);
    }
    cr_assert_eq(mtla_vad_position(vad), (int64_t)count);
    mtla_vad_finish(vad);
    take_ready(vad, &run, -1);
    mtla_vad_free(vad);
    return run;
}

static void assert_ordered(const vad_run *run, size_t count)
{
    for (size_t i = 0; i < run->count; i++) {
        const mtla_segment *s = &run->segments[i];
        cr_assert(s->start >= 0 && s->start < s->end && s->end <= (int64_t)count,
                  "segment %zu [%lld, %lld) is not inside the signal of %zu samples", i,
                  (long long)s->start, (long long)s->end, count);
        if (i > 0)
            cr_assert_geq(s->start, run->segments[i - 1].end,
                          "segment %zu starts at %.3f s, inside the previous one (ends %.3f s)", i,
                          seconds(s->start), seconds(run->segments[i - 1].end));
    }
}

static float *load_fixture(const char *name, size_t *count)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/vad/%s", name);
    return load_audio(fixture(path), count);
}

/* ---------------------------------------------------------------- boundaries on real speech */

Test(vad, finds_each_sentence_within_100_ms_without_padding)
{
    size_t n;
    float *x = load_fixture("speech_with_pauses.wav", &n);
    interval truth[MAX_INTERVALS];
    size_t sentences =
        read_intervals(fixture("tests/data/vad/speech_with_pauses.tsv"), truth, MAX_INTERVALS);
    cr_assert_eq(sentences, 4);
    mtla_vad_params p = mtla_vad_default_params();
    p.padding_ms = 0;
    vad_run run = run_vad(&p, x, n, 160);
    cr_assert_eq(run.count, sentences, "expected %zu segments, got %zu", sentences, run.count);
    assert_ordered(&run, n);
    for (size_t i = 0; i < sentences; i++) {
        double start = seconds(run.segments[i].start), end = seconds(run.segments[i].end);
        cr_expect_leq(fabs(start - truth[i].start), BOUNDARY_TOLERANCE_S,
                      "sentence %zu starts at %.3f s, truth %.3f s", i, start, truth[i].start);
        cr_expect_leq(fabs(end - truth[i].end), BOUNDARY_TOLERANCE_S,
                      "sentence %zu ends at %.3f s, truth %.3f s", i, end, truth[i].end);
    }
    free(x);
}

/* Whole recordings with their room tone, breaths and decays, against the words a recogniser
 * aligned. An energy VAD keeps a breath or decay after the last word when it stands above the
 * noise floor (here up to 150 ms), which errs on the safe side: the end may be late by up to
 * 200 ms but never more than 100 ms early, and starts are within 100 ms. */
Test(vad, finds_whole_recordings_against_aligned_words)
{
    size_t n;
    float *x = load_fixture("recordings_with_pauses.wav", &n);
    interval truth[MAX_INTERVALS];
    size_t sentences = read_intervals(fixture("tests/data/vad/recordings_with_pauses.tsv"),
                                      truth, MAX_INTERVALS);
    cr_assert_eq(sentences, 4);
    mtla_vad_params p = mtla_vad_default_params();
    p.padding_ms = 0;
    vad_run run = run_vad(&p, x, n, 160);
    cr_assert_eq(run.count, sentences, "expected %zu segments, got %zu", sentences, run.count);
    assert_ordered(&run, n);
    for (size_t i = 0; i < sentences; i++) {
        double start = seconds(run.segments[i].start), end = seconds(run.segments[i].end);
        cr_expect_leq(fabs(start - truth[i].start), BOUNDARY_TOLERANCE_S,
                      "sentence %zu starts at %.3f s, first word at %.3f s", i, start,
                      truth[i].start);
        cr_expect(end - truth[i].end >= -BOUNDARY_TOLERANCE_S && end - truth[i].end <= 0.200,
                  "sentence %zu ends at %.3f s, last word ends at %.3f s", i, end, truth[i].end);
    }
    free(x);
}

Test(vad, padding_widens_segments_without_overlap)
{
    size_t n;
    float *x = load_fixture("speech_with_pauses.wav", &n);
    interval truth[MAX_INTERVALS];
    size_t sentences =
        read_intervals(fixture("tests/data/vad/speech_with_pauses.tsv"), truth, MAX_INTERVALS);
    mtla_vad_params p = mtla_vad_default_params();
    cr_assert_eq(p.padding_ms, 200);
    vad_run run = run_vad(&p, x, n, 160);
    cr_assert_eq(run.count, sentences, "expected %zu segments, got %zu", sentences, run.count);
    assert_ordered(&run, n);
    double pad = p.padding_ms / 1000.0, duration = seconds((int64_t)n);
    for (size_t i = 0; i < sentences; i++) {
        double start = seconds(run.segments[i].start), end = seconds(run.segments[i].end);
        double want_start = fmax(truth[i].start - pad, 0.0);
        double want_end = fmin(truth[i].end + pad, duration);
        cr_expect_leq(fabs(start - want_start), BOUNDARY_TOLERANCE_S,
                      "segment %zu starts at %.3f s, expected %.3f s", i, start, want_start);
        cr_expect_leq(fabs(end - want_end), BOUNDARY_TOLERANCE_S,
                      "segment %zu ends at %.3f s, expected %.3f s", i, end, want_end);
        /* The padding is wider than the tolerance: the whole sentence is inside. */
        cr_expect(start <= truth[i].start && end >= truth[i].end,
                  "segment %zu [%.3f, %.3f] does not contain the sentence [%.3f, %.3f]", i, start,
                  end, truth[i].start, truth[i].end);
    }
    free(x);
}

Test(vad, speech_at_stream_start_is_found_from_its_first_frame)
{
    /* The same recording without its leading 0.9 s: speech from the first sample, so the noise
     * floor is unknown until the first pause. */
    size_t n;
    float *x = load_fixture("speech_with_pauses.wav", &n);
    interval truth[MAX_INTERVALS];
    size_t sentences =
        read_intervals(fixture("tests/data/vad/speech_with_pauses.tsv"), truth, MAX_INTERVALS);
    size_t skip = (size_t)lround(truth[0].start * RATE);
    mtla_vad_params p = mtla_vad_default_params();
    p.padding_ms = 0;
    vad_run run = run_vad(&p, x + skip, n - skip, 160);
    cr_assert_eq(run.count, sentences, "expected %zu segments, got %zu", sentences, run.count);
    for (size_t i = 0; i < sentences; i++) {
        double start = seconds(run.segments[i].start), end = seconds(run.segments[i].end);
        double offset = (double)skip / RATE;
        cr_expect_leq(fabs(start - (truth[i].start - offset)), BOUNDARY_TOLERANCE_S,
                      "sentence %zu starts at %.3f s, truth %.3f s", i, start,
                      truth[i].start - offset);
        cr_expect_leq(fabs(end - (truth[i].end - offset)), BOUNDARY_TOLERANCE_S,
                      "sentence %zu ends at %.3f s, truth %.3f s", i, end, truth[i].end - offset);
    }
    free(x);
}

/* A tone whose level rises by RAMP_DB_PER_S from the noise level, holds, and falls back:
 * hysteresis shows as the time between crossing floor + offset_db and floor + onset_db. */
enum { RAMP_DB_PER_S = 20 };
static const double RAMP_NOISE_DB = -60.0, RAMP_PEAK_DB = -30.0;
static const double RAMP_RISE_S = 2.0, RAMP_HOLD_S = 1.0;

static double ramp_level_db(double t)
{
    double rise = (RAMP_PEAK_DB - RAMP_NOISE_DB) / RAMP_DB_PER_S;
    double fall_start = RAMP_RISE_S + rise + RAMP_HOLD_S;
    if (t < RAMP_RISE_S || t >= fall_start + rise)
        return -200.0;
    if (t < RAMP_RISE_S + rise)
        return RAMP_NOISE_DB + RAMP_DB_PER_S * (t - RAMP_RISE_S);
    if (t < fall_start)
        return RAMP_PEAK_DB;
    return RAMP_PEAK_DB - RAMP_DB_PER_S * (t - fall_start);
}

/* When tone and noise together pass `threshold_db`: on the rise (rising != 0) or the fall. */
static double ramp_crossing(double threshold_db, int rising)
{
    double tone_db = 10.0 * log10(pow(10.0, threshold_db / 10.0) - pow(10.0, RAMP_NOISE_DB / 10.0));
    double rise = (RAMP_PEAK_DB - RAMP_NOISE_DB) / RAMP_DB_PER_S;
    if (rising)
        return RAMP_RISE_S + (tone_db - RAMP_NOISE_DB) / RAMP_DB_PER_S;
    return RAMP_RISE_S + rise + RAMP_HOLD_S + (RAMP_PEAK_DB - tone_db) / RAMP_DB_PER_S;
}

Test(vad, speech_lasts_from_and_to_the_offset_threshold)
{
    size_t n = 10 * RATE;
    float *x = malloc(n * sizeof(float));
    cr_assert(x);
    double noise = pow(10.0, RAMP_NOISE_DB / 20.0);
    uint64_t rng = 5;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / RATE, tone = sqrt(2.0) * pow(10.0, ramp_level_db(t) / 20.0);
        x[i] = (float)(noise * gaussian(&rng) + tone * sin(2.0 * M_PI * 440.0 * t));
    }
    mtla_vad_params p = mtla_vad_default_params();
    p.padding_ms = 0;
    vad_run run = run_vad(&p, x, n, 160);
    cr_assert_eq(run.count, 1);
    /* The floor is the quietest noise frame of the window: 0.5 to 2 dB below the noise level. */
    double tolerance = 0.030;
    double start = seconds(run.segments[0].start), end = seconds(run.segments[0].end);
    double earliest = ramp_crossing(RAMP_NOISE_DB - 2.0 + p.offset_db, 1) - tolerance;
    double latest = ramp_crossing(RAMP_NOISE_DB - 0.5 + p.offset_db, 1) + tolerance;
    cr_expect(start >= earliest && start <= latest,
              "speech starts at %.3f s, where the tone passes floor + offset_db is %.3f-%.3f s",
              start, earliest, latest);
    earliest = ramp_crossing(RAMP_NOISE_DB - 0.5 + p.offset_db, 0) - tolerance;
    latest = ramp_crossing(RAMP_NOISE_DB - 2.0 + p.offset_db, 0) + tolerance;
    cr_expect(end >= earliest && end <= latest,
              "speech ends at %.3f s, where the tone falls below floor + offset_db is %.3f-%.3f s",
              end, earliest, latest);
    free(x);
}

/* ---------------------------------------------------------------- streaming */

Test(vad, any_chunking_gives_the_same_segments_as_soon_as_they_end)
{
    size_t n;
    float *x = load_fixture("speech_with_pauses.wav", &n);
    interval truth[MAX_INTERVALS];
    size_t sentences =
        read_intervals(fixture("tests/data/vad/speech_with_pauses.tsv"), truth, MAX_INTERVALS);
    mtla_vad_params p = mtla_vad_default_params();
    vad_run whole = run_vad(&p, x, n, n);
    cr_assert_eq(whole.count, sentences);

    const size_t chunks[] = {1, 7, 160, 161, 4096, 0};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        size_t chunk = chunks[c];
        size_t largest = chunk ? chunk : RANDOM_CHUNK_MAX;
        vad_run run = run_vad(&p, x, n, chunk);
        cr_assert_eq(run.count, whole.count, "chunk %zu: %zu segments, whole input %zu", chunk,
                     run.count, whole.count);
        for (size_t i = 0; i < run.count; i++) {
            cr_assert(run.segments[i].start == whole.segments[i].start &&
                          run.segments[i].end == whole.segments[i].end,
                      "chunk %zu, segment %zu: [%lld, %lld), whole input [%lld, %lld)", chunk, i,
                      (long long)run.segments[i].start, (long long)run.segments[i].end,
                      (long long)whole.segments[i].start, (long long)whole.segments[i].end);
            /* Ready while the stream is open, once the pause after the sentence has lasted
             * min_silence_ms (+ a frame, + the boundary tolerance, + one chunk of input). */
            int64_t ready = run.ready_at[i];
            cr_assert_geq(ready, 0, "chunk %zu: segment %zu only came at end of input", chunk, i);
            cr_assert_geq(ready, run.segments[i].end,
                          "chunk %zu: segment %zu was ready before its end was fed", chunk, i);
            double latest = truth[i].end + (p.min_silence_ms + p.frame_ms) / 1000.0 +
                            BOUNDARY_TOLERANCE_S + (double)largest / RATE;
            cr_assert_leq(seconds(ready), latest,
                          "chunk %zu: sentence %zu ends at %.3f s, its segment came at %.3f s",
                          chunk, i, truth[i].end, seconds(ready));
        }
    }
    free(x);
}

/* ---------------------------------------------------------------- maximum segment length */

static void check_forced_cuts(int32_t padding_ms)
{
    size_t n;
    float *x = load_fixture("continuous_speech.wav", &n);
    interval pauses[MAX_INTERVALS];
    size_t count = read_intervals(fixture("tests/data/vad/continuous_speech_pauses.tsv"), pauses,
                                  MAX_INTERVALS);
    mtla_vad_params p = mtla_vad_default_params();
    p.padding_ms = padding_ms;
    p.max_segment_ms = 6000;
    /* The pauses are shorter than min_silence_ms: the speech is one utterance, which only a cut
     * can split, and the recording is long enough to need two. */
    cr_assert_lt((pauses[0].end - pauses[0].start) * 1000.0, p.min_silence_ms);
    cr_assert_gt(seconds((int64_t)n), 2.0 * p.max_segment_ms / 1000.0);
    vad_run run = run_vad(&p, x, n, 160);
    assert_ordered(&run, n);
    cr_assert_geq(run.count, 3, "a %.1f s utterance needs two cuts at %d ms, got %zu segments",
                  seconds((int64_t)n), (int)p.max_segment_ms, run.count);
    /* Speech starts at the first sample. */
    cr_expect_leq(seconds(run.segments[0].start), BOUNDARY_TOLERANCE_S, "first segment at %.3f s",
                  seconds(run.segments[0].start));
    size_t cuts = 0;
    for (size_t i = 0; i < run.count; i++) {
        const mtla_segment *s = &run.segments[i];
        cr_expect_leq(s->end - s->start, (int64_t)p.max_segment_ms * RATE / 1000,
                      "segment %zu [%.3f, %.3f] is longer than %d ms", i, seconds(s->start),
                      seconds(s->end), (int)p.max_segment_ms);
        if (i + 1 == run.count)
            continue;
        cr_assert_eq(s->end, run.segments[i + 1].start,
                     "segments %zu and %zu are not one utterance cut in two: [.., %.3f], "
                     "[%.3f, ..]",
                     i, i + 1, seconds(s->end), seconds(run.segments[i + 1].start));
        double cut = seconds(s->end);
        int inside = 0;
        for (size_t k = 0; k < count; k++)
            inside |=
                cut >= pauses[k].start - CUT_TOLERANCE_S && cut <= pauses[k].end + CUT_TOLERANCE_S;
        cr_expect(inside, "the cut at %.3f s is not inside a pause between sentences", cut);
        cuts++;
    }
    cr_assert_geq(cuts, 2);
    free(x);
}

Test(vad, long_utterance_is_cut_inside_pauses)
{
    check_forced_cuts(0);
}

Test(vad, padded_segments_stay_within_the_maximum)
{
    check_forced_cuts(200);
}

/* Gaussian noise at `noise_db` dBFS, with a 440 Hz tone of RMS `tone_db` dBFS added on the
 * samples in [tone_start, tone_end). */
static void synthesize(float *x, size_t count, int64_t first_sample, double noise_db,
                       double tone_db, int64_t tone_start, int64_t tone_end, uint64_t *rng)
{
    double noise = pow(10.0, noise_db / 20.0), tone = sqrt(2.0) * pow(10.0, tone_db / 20.0);
    for (size_t i = 0; i < count; i++) {
        int64_t t = first_sample + (int64_t)i;
        double y = noise * gaussian(rng);
        if (t >= tone_start && t < tone_end)
            y += tone * sin(2.0 * M_PI * 440.0 * (double)t / RATE);
        x[i] = (float)y;
    }
}

Test(vad, padding_gives_way_rather_than_cutting_an_utterance)
{
    /* A 5.9 s tone with a maximum of 6 s: padded on both sides it would last 6.3 s. Gaps of
     * 100 ms every second, like those between words, keep the noise in the floor window. */
    mtla_vad_params p = mtla_vad_default_params();
    p.max_segment_ms = 6000;
    size_t n = 10 * RATE;
    float *x = malloc(n * sizeof(float));
    cr_assert(x);
    uint64_t rng = 11;
    int64_t tone_start = 2 * RATE, tone_end = tone_start + 59 * RATE / 10;
    synthesize(x, n, 0, -60.0, -25.0, tone_start, tone_end, &rng);
    for (int64_t gap = tone_start + 9 * RATE / 10; gap < tone_end; gap += RATE)
        synthesize(x + gap, RATE / 10, gap, -60.0, -200.0, 0, 0, &rng);
    vad_run run = run_vad(&p, x, n, 160);
    cr_assert_eq(run.count, 1, "an utterance shorter than the maximum was cut in %zu", run.count);
    const mtla_segment *s = &run.segments[0];
    cr_expect(s->start <= tone_start && s->end >= tone_end,
              "the segment [%.3f, %.3f] does not contain the tone [%.3f, %.3f]", seconds(s->start),
              seconds(s->end), seconds(tone_start), seconds(tone_end));
    cr_expect_leq(s->end - s->start, (int64_t)p.max_segment_ms * RATE / 1000,
                  "the segment [%.3f, %.3f] is longer than %d ms", seconds(s->start),
                  seconds(s->end), (int)p.max_segment_ms);
    free(x);
}

Test(vad, murmur_before_onset_starts_at_most_half_a_segment_early)
{
    /* 1 s of noise, 3 s of a murmur 6 dB above it (voiced, never loud), 1.5 s of loud tone, then
     * noise: the onset run is longer than half a maximum segment (1 s here). */
    mtla_vad_params p = mtla_vad_default_params();
    p.padding_ms = 0;
    p.max_segment_ms = 2000;
    size_t n = 8 * RATE;
    float *x = malloc(n * sizeof(float));
    cr_assert(x);
    uint64_t rng = 7;
    synthesize(x, RATE, 0, -60.0, -200.0, 0, 0, &rng);
    synthesize(x + RATE, 3 * RATE, RATE, -54.0, -200.0, 0, 0, &rng);
    synthesize(x + 4 * RATE, 4 * RATE, 4 * RATE, -60.0, -25.0, 4 * RATE, 11 * RATE / 2, &rng);

    vad_run run = run_vad(&p, x, n, 160);
    assert_ordered(&run, n);
    cr_assert_geq(run.count, 1);
    double onset = 4.0, half = p.max_segment_ms / 2000.0;
    cr_expect_geq(seconds(run.segments[0].start), onset - half - 0.011,
                  "the utterance starts at %.3f s, more than half a segment before %.3f s",
                  seconds(run.segments[0].start), onset);
    cr_expect_leq(seconds(run.segments[0].start), onset);
    cr_expect_geq(seconds(run.segments[run.count - 1].end), 5.5 - 0.011);
    for (size_t i = 0; i < run.count; i++)
        cr_expect_leq(run.segments[i].end - run.segments[i].start,
                      (int64_t)p.max_segment_ms * RATE / 1000, "segment %zu is too long", i);
    free(x);
}

/* ---------------------------------------------------------------- silence, noise, end of input */

Test(vad, silence_and_steady_noise_give_no_segment)
{
    size_t n = 30 * RATE;
    float *x = calloc(n, sizeof(float));
    cr_assert(x);
    mtla_vad_params p = mtla_vad_default_params();
    vad_run run = run_vad(&p, x, n, 4096);
    cr_expect_eq(run.count, 0, "digital silence gave %zu segments", run.count);

    const double levels[] = {-70.0, -50.0, -30.0};
    for (size_t k = 0; k < sizeof levels / sizeof levels[0]; k++) {
        uint64_t rng = 99 + k;
        synthesize(x, n, 0, levels[k], -200.0, 0, 0, &rng);
        run = run_vad(&p, x, n, 4096);
        cr_expect_eq(run.count, 0, "noise at %g dBFS gave %zu segments, the first [%.3f, %.3f]",
                     levels[k], run.count, run.count ? seconds(run.segments[0].start) : 0.0,
                     run.count ? seconds(run.segments[0].end) : 0.0);
    }
    free(x);
}

Test(vad, stream_ending_inside_speech_is_closed_by_finish)
{
    /* Real speech cut in the middle of the third sentence. */
    size_t n;
    float *x = load_fixture("speech_with_pauses.wav", &n);
    interval truth[MAX_INTERVALS];
    read_intervals(fixture("tests/data/vad/speech_with_pauses.tsv"), truth, MAX_INTERVALS);
    size_t cut = (size_t)lround((truth[2].start + truth[2].end) / 2.0 * RATE) + 37;
    mtla_vad_params p = mtla_vad_default_params();
    p.padding_ms = 0;
    vad_run run = run_vad(&p, x, cut, 160);
    cr_assert_eq(run.count, 3);
    cr_expect_geq(run.ready_at[1], 0, "the second sentence ended before the cut");
    cr_assert_eq(run.ready_at[2], -1, "the open sentence must wait for the end of input");
    const mtla_segment *last = &run.segments[2];
    cr_expect_leq(fabs(seconds(last->start) - truth[2].start), BOUNDARY_TOLERANCE_S);
    cr_expect_leq(last->end, (int64_t)cut);
    cr_expect_geq(last->end, (int64_t)cut - (int64_t)p.min_silence_ms * RATE / 1000,
                  "the last segment ends at %.3f s, the stream at %.3f s", seconds(last->end),
                  seconds((int64_t)cut));
    free(x);

    /* A tone running to the last sample, which is not on a frame boundary: with padding the
     * segment reaches exactly the end of the stream. */
    size_t m = 3 * RATE + 123;
    float *y = malloc(m * sizeof(float));
    cr_assert(y);
    uint64_t rng = 3;
    synthesize(y, m, 0, -60.0, -25.0, RATE, (int64_t)m, &rng);
    mtla_vad *vad;
    mtla_error err;
    p = mtla_vad_default_params();
    cr_assert_eq(mtla_vad_create(&p, &vad, &err), MTLA_OK, "%s", err.message);
    cr_assert_eq(mtla_vad_accept(vad, y, m, &err), MTLA_OK, "%s", err.message);
    mtla_segment seg;
    cr_assert_eq(mtla_vad_take(vad, &seg), 0, "nothing is certain before the end of input");
    mtla_vad_finish(vad);
    cr_assert_eq(mtla_vad_take(vad, &seg), 1);
    cr_expect_leq(fabs(seconds(seg.start) - (1.0 - p.padding_ms / 1000.0)), BOUNDARY_TOLERANCE_S,
                  "the tone's segment starts at %.3f s", seconds(seg.start));
    cr_expect_eq(seg.end, (int64_t)m);
    mtla_vad_finish(vad);
    cr_expect_eq(mtla_vad_take(vad, &seg), 0, "finishing twice gives nothing more");
    mtla_vad_free(vad);
    free(y);
}

/* ---------------------------------------------------------------- parameters */

/* The default parameters with `field` set to `value`. */
static mtla_vad_params spoiled(const char *field, double value)
{
    mtla_vad_params p = mtla_vad_default_params();
    if (strcmp(field, "sample_rate") == 0)
        p.sample_rate = (int32_t)value;
    else if (strcmp(field, "frame_ms") == 0)
        p.frame_ms = (int32_t)value;
    else if (strcmp(field, "onset_db") == 0)
        p.onset_db = (float)value;
    else if (strcmp(field, "offset_db") == 0)
        p.offset_db = (float)value;
    else if (strcmp(field, "min_speech_ms") == 0)
        p.min_speech_ms = (int32_t)value;
    else if (strcmp(field, "min_silence_ms") == 0)
        p.min_silence_ms = (int32_t)value;
    else if (strcmp(field, "padding_ms") == 0)
        p.padding_ms = (int32_t)value;
    else if (strcmp(field, "max_segment_ms") == 0)
        p.max_segment_ms = (int32_t)value;
    else
        cr_assert_fail("no field %s", field);
    return p;
}

Test(vad, each_invalid_parameter_is_named)
{
    /* Against the defaults: onset_db 9, frame_ms 10, max_segment_ms 20000. */
    const struct {
        const char *field;
        double value;
    } cases[] = {
        {"sample_rate", 0},        {"sample_rate", -16000},
        {"sample_rate", 1000000},  {"frame_ms", 0},
        {"frame_ms", 101},         {"onset_db", 61},
        {"onset_db", -1},          {"onset_db", NAN},
        {"offset_db", -1},         {"offset_db", 10},
        {"offset_db", NAN},        {"min_speech_ms", -1},
        {"min_speech_ms", 10001},  {"min_silence_ms", 9},
        {"min_silence_ms", 0},     {"min_silence_ms", 10001},
        {"padding_ms", -1},        {"padding_ms", 5001},
        {"padding_ms", INT32_MAX}, {"max_segment_ms", 999},
        {"max_segment_ms", 0},     {"max_segment_ms", 3600001},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mtla_vad_params p = spoiled(cases[i].field, cases[i].value);
        mtla_vad *const sentinel = (mtla_vad *)&p;
        mtla_vad *vad = sentinel; /* must be set to NULL */
        mtla_error err = {0};
        cr_expect_eq(mtla_vad_create(&p, &vad, &err), MTLA_ERR_INVALID_ARGUMENT,
                     "%s = %g was accepted", cases[i].field, cases[i].value);
        cr_expect_eq(err.status, MTLA_ERR_INVALID_ARGUMENT);
        cr_expect(strstr(err.message, cases[i].field), "%s = %g: the message '%s' does not name it",
                  cases[i].field, cases[i].value, err.message);
        cr_expect_null(vad, "%s = %g: the handle was not set to NULL", cases[i].field,
                       cases[i].value);
        if (vad != sentinel)
            mtla_vad_free(vad);
    }
    /* A maximum too short for the other (default) durations. */
    mtla_vad_params p = spoiled("max_segment_ms", 1000);
    p.min_silence_ms = 600;
    mtla_vad *vad = NULL;
    mtla_error err = {0};
    cr_expect_eq(mtla_vad_create(&p, &vad, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "min_silence_ms") && strstr(err.message, "max_segment_ms"),
              "the message '%s' names neither min_silence_ms nor max_segment_ms", err.message);
    mtla_vad_free(vad);
}

Test(vad, limits_of_valid_parameters_are_accepted)
{
    mtla_vad_params p = mtla_vad_default_params();
    p.onset_db = p.offset_db;
    p.min_silence_ms = p.frame_ms;
    p.min_speech_ms = 0;
    p.max_segment_ms = 1000;
    p.padding_ms = 250;
    mtla_vad *vad = NULL;
    mtla_error err;
    cr_assert_eq(mtla_vad_create(&p, &vad, &err), MTLA_OK, "%s", err.message);
    mtla_vad_free(vad);
    cr_assert_eq(mtla_vad_create(NULL, &vad, &err), MTLA_OK, "NULL params mean the defaults");
    mtla_vad_free(vad);
    cr_expect_eq(mtla_vad_accept(NULL, NULL, 0, &err), MTLA_ERR_INVALID_ARGUMENT);
}

/* ---------------------------------------------------------------- hours of input */

Test(vad, two_hours_run_in_fixed_memory)
{
    /* Tone bursts of 3 s in noise, 2 s apart, made chunk by chunk and never stored. The first
     * burst starts with the stream. */
    const int64_t period = 5 * RATE, burst = 3 * RATE, total = 2 * 3600 * (int64_t)RATE;
    const int64_t bursts = total / period;
    mtla_vad_params p = mtla_vad_default_params();
    mtla_vad *vad;
    mtla_error err;
    cr_assert_eq(mtla_vad_create(&p, &vad, &err), MTLA_OK, "%s", err.message);
    enum { CHUNK = 4000 }; /* divides the period: a chunk never holds two bursts */
    cr_assert_eq(period % CHUNK, 0);
    float chunk[CHUNK];
    uint64_t rng = 2024;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    size_t heap_before = mallinfo2().uordblks;
#endif
    int64_t found = 0;
    double pad = p.padding_ms / 1000.0;
    for (int64_t t = 0; t < total; t += CHUNK) {
        int64_t k = t / period;
        synthesize(chunk, CHUNK, t, -50.0, -25.0, k * period, k * period + burst, &rng);
        cr_assert_eq(mtla_vad_accept(vad, chunk, CHUNK, &err), MTLA_OK, "%s", err.message);
        mtla_segment seg;
        while (mtla_vad_take(vad, &seg)) {
            double want_start = fmax((double)(found * period) / RATE - pad, 0.0);
            double want_end = (double)(found * period + burst) / RATE + pad;
            cr_assert_leq(fabs(seconds(seg.start) - want_start), BOUNDARY_TOLERANCE_S,
                          "segment %lld starts at %.3f s, expected %.3f s", (long long)found,
                          seconds(seg.start), want_start);
            cr_assert_leq(fabs(seconds(seg.end) - want_end), BOUNDARY_TOLERANCE_S,
                          "segment %lld ends at %.3f s, expected %.3f s", (long long)found,
                          seconds(seg.end), want_end);
            found++;
        }
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    size_t heap_after = mallinfo2().uordblks;
    cr_expect_leq(heap_after, heap_before + 4096, "the heap grew from %zu to %zu bytes",
                  heap_before, heap_after);
#endif
    mtla_vad_finish(vad);
    mtla_segment seg;
    while (mtla_vad_take(vad, &seg))
        found++;
    cr_expect_eq(found, bursts, "%lld bursts, %lld segments", (long long)bursts, (long long)found);
    cr_expect_eq(mtla_vad_position(vad), total);
    mtla_vad_free(vad);
}

Test(vad, an_open_utterance_is_reported_before_its_segment)
{
    size_t n;
    float *x = load_audio(fixture("tests/data/vad/speech_with_pauses.wav"), &n);
    mtla_vad *vad;
    mtla_error err;
    cr_assert_eq(mtla_vad_create(NULL, &vad, &err), MTLA_OK);
    int64_t open_start = -1;
    int segments = 0;
    cr_expect_eq(mtla_vad_open(vad, NULL), 0, "nothing open before any audio");
    for (size_t at = 0; at < n; at += 160) {
        size_t m = n - at < 160 ? n - at : 160;
        cr_assert_eq(mtla_vad_accept(vad, x + at, m, &err), MTLA_OK);
        mtla_segment seg;
        while (mtla_vad_take(vad, &seg)) {
            cr_expect_geq(open_start, 0, "segment %d was seen open", segments);
            cr_expect_geq(seg.start, open_start, "segment %d starts where it was open or later",
                          segments);
            segments++;
            open_start = -1;
        }
        int64_t start;
        if (mtla_vad_open(vad, &start)) {
            cr_expect_leq(start, mtla_vad_position(vad));
            if (open_start < 0)
                open_start = start;
        }
    }
    cr_expect_eq(segments, 4, "four sentences");
    cr_expect_eq(mtla_vad_open(vad, NULL), 0, "the file ends in a pause");
    mtla_vad_free(vad);
    /* Inside sentence 1, then the end of the stream. */
    cr_assert_eq(mtla_vad_create(NULL, &vad, &err), MTLA_OK);
    cr_assert_eq(mtla_vad_accept(vad, x, (size_t)(2.5 * RATE), &err), MTLA_OK);
    cr_expect_eq(mtla_vad_open(vad, NULL), 1);
    mtla_vad_finish(vad);
    cr_expect_eq(mtla_vad_open(vad, NULL), 0, "finish closes it");
    mtla_vad_free(vad);
    free(x);
}
