/* Streaming voice activity segmentation.
 *
 * Each 10 ms frame gets its energy in dBFS. The noise floor is the lowest frame energy of the
 * last few seconds (a sliding-window minimum, so it follows a changing background in both
 * directions). With hysteresis a frame is
 *   loud   when energy > max(floor + onset_db, ABSOLUTE_SPEECH_DB),
 *   voiced when energy > max(floor + offset_db, ABSOLUTE_SPEECH_DB - (onset_db - offset_db)).
 * An utterance starts at the first voiced frame of a run of voiced frames holding at least
 * min_speech_ms of loud frames, and ends after the last voiced frame once min_silence_ms
 * pass without one. Segments are widened by padding_ms on both sides (never overlapping the
 * previous one). An utterance longer than max_segment_ms is cut at the quietest 50 ms of its
 * segment's second half, so that the cut falls in a pause between words rather than inside one;
 * the rest goes on as a new utterance. Padding gives way where needed, so that no segment is
 * longer than max_segment_ms.
 *
 * At stream start the window holds only the frames seen so far. When speech comes first, the
 * floor is then the quietest speech frame, and that speech is found late or, if it is steady,
 * not at all. So during the first window, and until a segment has been emitted, each new low of
 * the floor judges every frame since the start again against it, as if that floor had been
 * known from the first frame.
 *
 * Memory is fixed at creation: the floor window, and the energies of the last frames (two
 * maximum segments, and at least the floor window), which hold every frame read again. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "mtla-st.h"

enum {
    FLOOR_WINDOW_MS = 5000, /* noise floor = minimum energy over this window */
    QUIET_SMOOTH_FRAMES = 5 /* frames averaged when looking for the quietest cut point */
};

/* Speech quieter than this (dBFS, frame RMS) is ignored whatever the floor; it keeps digital
 * silence (floor -100 dB) from turning faint hiss into speech. */
static const float ABSOLUTE_SPEECH_DB = -55.0f;
static const float ENERGY_FLOOR_DB = -100.0f;

typedef enum vad_state { VAD_SILENCE, VAD_SPEECH } vad_state;

struct mtla_vad {
    mtla_vad_params params;
    int64_t frame_samples;
    int64_t min_speech_frames;
    int64_t min_silence_frames;
    int64_t padding_frames;
    int64_t max_segment_frames;
    int64_t floor_window_frames;

    /* Partial frame carried between calls. */
    double partial_energy;
    int64_t partial_count;
    int64_t samples_seen;
    int64_t frames_seen;

    /* Sliding-window minimum: a deque of (frame, energy) with increasing energies. */
    int64_t *floor_frames;
    float *floor_energies;
    int64_t floor_capacity;
    int64_t floor_head;
    int64_t floor_size;

    /* Energies of the last history_capacity frames, frame f at f % history_capacity. */
    float *history;
    int64_t history_capacity;

    vad_state state;
    int64_t run_start;     /* silence: first frame of the current voiced run, -1 if none */
    int64_t run_loud;      /* loud frames in that run */
    int64_t speech_start;  /* speech: first frame of the open utterance */
    int64_t segment_start; /* speech: first frame of its segment, padding included */
    int64_t last_voiced;   /* speech: last voiced frame */
    int64_t previous_end;  /* sample where the previous segment ended */

    mtla_segment *ready;
    size_t ready_start;
    size_t ready_end;
    size_t ready_capacity;
};

mtla_vad_params mtla_vad_default_params(void)
{
    mtla_vad_params p;
    p.sample_rate = 16000;
    p.frame_ms = 10;
    p.onset_db = 9.0f;
    p.offset_db = 5.0f;
    p.min_speech_ms = 120;
    p.min_silence_ms = 500;
    p.padding_ms = 200;
    p.max_segment_ms = 20000;
    return p;
}

/* In 64 bits: validation calls it before any field is bounded. */
static int64_t ms_to_frames(int64_t ms, int64_t frame_ms)
{
    return (ms + frame_ms - 1) / frame_ms;
}

/* Checks every field. The bounds between durations keep an open utterance within
 * max_segment_ms with a single cut (see advance); they are checked in frames, as used, and
 * reported in milliseconds. */
static mtla_status validate_params(const mtla_vad_params *p, mtla_error *err)
{
    if (p->sample_rate < 1000 || p->sample_rate > 768000)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "vad sample_rate %d is not in [1000, 768000]", (int)p->sample_rate);
    if (p->frame_ms < 1 || p->frame_ms > 100)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "vad frame_ms %d is not in [1, 100]",
                         (int)p->frame_ms);
    if (!(p->onset_db >= 0.0f && p->onset_db <= 60.0f))
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "vad onset_db %g is not in [0, 60]",
                         p->onset_db);
    if (!(p->offset_db >= 0.0f && p->offset_db <= 60.0f))
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "vad offset_db %g is not in [0, 60]",
                         p->offset_db);
    if (p->offset_db > p->onset_db)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "vad offset_db %g is above onset_db %g",
                         p->offset_db, p->onset_db);
    if (p->max_segment_ms < 1000 || p->max_segment_ms > 3600 * 1000)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "vad max_segment_ms %d is not in [1000, 3600000]", (int)p->max_segment_ms);
    int64_t max_frames = p->max_segment_ms / p->frame_ms;
    int64_t half_ms = max_frames / 2 * p->frame_ms, quarter_ms = max_frames / 4 * p->frame_ms;
    if (p->min_speech_ms < 0 || ms_to_frames(p->min_speech_ms, p->frame_ms) > max_frames / 2)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "vad min_speech_ms %d is not in [0, %lld] (half of max_segment_ms)",
                         (int)p->min_speech_ms, (long long)half_ms);
    if (p->min_silence_ms < p->frame_ms ||
        ms_to_frames(p->min_silence_ms, p->frame_ms) > max_frames / 2)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "vad min_silence_ms %d is not in [%d, %lld] (frame_ms to half of "
                         "max_segment_ms)",
                         (int)p->min_silence_ms, (int)p->frame_ms, (long long)half_ms);
    if (p->padding_ms < 0 || ms_to_frames(p->padding_ms, p->frame_ms) > max_frames / 4)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "vad padding_ms %d is not in [0, %lld] (a quarter of max_segment_ms)",
                         (int)p->padding_ms, (long long)quarter_ms);
    return MTLA_OK;
}

mtla_status mtla_vad_create(const mtla_vad_params *params, mtla_vad **out, mtla_error *err)
{
    if (!out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "no place for the VAD handle");
    *out = NULL;
    mtla_vad_params defaults = mtla_vad_default_params();
    const mtla_vad_params *p = params ? params : &defaults;
    mtla_status status = validate_params(p, err);
    if (status != MTLA_OK)
        return status;

    mtla_vad *v = calloc(1, sizeof *v);
    if (!v)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory creating the VAD");
    v->params = *p;
    v->frame_samples = (int64_t)p->sample_rate * p->frame_ms / 1000;
    v->min_speech_frames = ms_to_frames(p->min_speech_ms, p->frame_ms);
    if (v->min_speech_frames < 1)
        v->min_speech_frames = 1;
    v->min_silence_frames = ms_to_frames(p->min_silence_ms, p->frame_ms);
    v->padding_frames = ms_to_frames(p->padding_ms, p->frame_ms);
    v->max_segment_frames = p->max_segment_ms / p->frame_ms;
    v->floor_window_frames = FLOOR_WINDOW_MS / p->frame_ms;
    v->floor_capacity = v->floor_window_frames + 1;
    v->floor_frames = malloc((size_t)v->floor_capacity * sizeof(int64_t));
    v->floor_energies = malloc((size_t)v->floor_capacity * sizeof(float));
    v->history_capacity = 2 * v->max_segment_frames;
    if (v->history_capacity < v->floor_window_frames)
        v->history_capacity = v->floor_window_frames;
    v->history = malloc((size_t)v->history_capacity * sizeof(float));
    v->ready_capacity = 16;
    v->ready = malloc(v->ready_capacity * sizeof(mtla_segment));
    if (!v->floor_frames || !v->floor_energies || !v->history || !v->ready) {
        mtla_vad_free(v);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory creating the VAD");
    }
    v->state = VAD_SILENCE;
    v->run_start = -1;
    *out = v;
    return MTLA_OK;
}

/* Pushes a frame's energy into the sliding-window minimum and returns the current floor. */
static float floor_update(mtla_vad *v, int64_t frame, float energy)
{
    int64_t cap = v->floor_capacity;
    /* Drop entries that left the window (front), then those not smaller than the new one
     * (back): the deque stays increasing, its front is the minimum. */
    while (v->floor_size > 0 && v->floor_frames[v->floor_head] <= frame - v->floor_window_frames) {
        v->floor_head = (v->floor_head + 1) % cap;
        v->floor_size--;
    }
    while (v->floor_size > 0) {
        int64_t back = (v->floor_head + v->floor_size - 1) % cap;
        if (v->floor_energies[back] < energy)
            break;
        v->floor_size--;
    }
    int64_t slot = (v->floor_head + v->floor_size) % cap;
    v->floor_frames[slot] = frame;
    v->floor_energies[slot] = energy;
    v->floor_size++;
    return v->floor_energies[v->floor_head];
}

static int is_loud(const mtla_vad *v, float energy, float floor_db)
{
    return energy > fmaxf(floor_db + v->params.onset_db, ABSOLUTE_SPEECH_DB);
}

static int is_voiced(const mtla_vad *v, float energy, float floor_db)
{
    float spread = v->params.onset_db - v->params.offset_db;
    return energy > fmaxf(floor_db + v->params.offset_db, ABSOLUTE_SPEECH_DB - spread);
}

/* Callers only ask for frames of the last history_capacity (see advance and process_frame). */
static float history_energy(const mtla_vad *v, int64_t frame)
{
    return v->history[frame % v->history_capacity];
}

/* First frame of the segment of an utterance starting at `speech_start`: padded, but neither
 * before the stream nor inside the previous segment. */
static int64_t padded_start(const mtla_vad *v, int64_t speech_start)
{
    int64_t start = speech_start - v->padding_frames;
    int64_t earliest = (v->previous_end + v->frame_samples - 1) / v->frame_samples;
    return start > earliest ? start : earliest;
}

static int push_segment(mtla_vad *v, int64_t start, int64_t end)
{
    if (start < v->previous_end)
        start = v->previous_end;
    if (end <= start)
        return 1;
    if (v->ready_start > 0 && v->ready_start == v->ready_end)
        v->ready_start = v->ready_end = 0;
    if (v->ready_end == v->ready_capacity) {
        size_t live = v->ready_end - v->ready_start;
        memmove(v->ready, v->ready + v->ready_start, live * sizeof(mtla_segment));
        v->ready_start = 0;
        v->ready_end = live;
        if (live == v->ready_capacity) {
            mtla_segment *grown = realloc(v->ready, 2 * v->ready_capacity * sizeof(mtla_segment));
            if (!grown)
                return 0;
            v->ready = grown;
            v->ready_capacity *= 2;
        }
    }
    v->ready[v->ready_end].start = start;
    v->ready[v->ready_end].end = end;
    v->ready_end++;
    v->previous_end = end;
    return 1;
}

/* Closes the open utterance after frame `last` (inclusive); `limit` is the latest sample the
 * padded end may reach. */
static int close_utterance(mtla_vad *v, int64_t last, int64_t limit)
{
    int64_t start = v->segment_start * v->frame_samples;
    int64_t end_frame = last + 1 + v->padding_frames;
    if (end_frame > v->segment_start + v->max_segment_frames)
        end_frame = v->segment_start + v->max_segment_frames;
    int64_t end = end_frame * v->frame_samples;
    if (end > limit)
        end = limit;
    v->state = VAD_SILENCE;
    v->run_start = -1;
    v->run_loud = 0;
    return push_segment(v, start, end);
}

/* Voiced frame `frame` takes the open utterance past max_segment_frames: end its segment at the
 * quietest point of the segment's second half (no later than its maximum, and before `frame`)
 * and go on with the rest as a new utterance. */
static int cut_segment(mtla_vad *v, int64_t frame)
{
    int64_t half = QUIET_SMOOTH_FRAMES / 2;
    int64_t first = v->segment_start + v->max_segment_frames / 2;
    int64_t last = v->segment_start + v->max_segment_frames;
    if (last > frame - half)
        last = frame - half; /* the smoothing window around the cut must have been seen */
    if (first > last)
        first = last;
    int64_t cut = last;
    double quietest = INFINITY;
    for (int64_t c = first; c <= last; c++) {
        double sum = 0.0;
        for (int64_t k = c - half; k <= c + half; k++)
            sum += history_energy(v, k);
        if (sum < quietest) {
            quietest = sum;
            cut = c;
        }
    }
    if (!push_segment(v, v->segment_start * v->frame_samples, cut * v->frame_samples))
        return 0;
    v->speech_start = cut;
    v->segment_start = cut;
    return 1;
}

/* Takes frame `frame` through the state machine, judged against the floor `floor_db`.
 *
 * While an utterance is open, [segment_start, last_voiced] holds at most max_segment_frames:
 * the onset run is at most half of it and padding a quarter, the start padding gives way
 * below, and a cut leaves at most half of it plus one pause (min_silence_frames <= half). So
 * the frames the cut reads lie within two maximum segments of history. */
static int advance(mtla_vad *v, int64_t frame, float energy, float floor_db)
{
    int loud = is_loud(v, energy, floor_db);
    int voiced = is_voiced(v, energy, floor_db);

    if (v->state == VAD_SILENCE) {
        if (!voiced) {
            v->run_start = -1;
            v->run_loud = 0;
            return 1;
        }
        if (v->run_start < 0) {
            v->run_start = frame;
            v->run_loud = 0;
        }
        /* A long murmur that never gets loud enough slides forward, so an utterance never
         * starts more than half a maximum segment before its onset is confirmed. */
        if (frame - v->run_start + 1 > v->max_segment_frames / 2)
            v->run_start = frame - v->max_segment_frames / 2 + 1;
        v->run_loud += loud;
        if (v->run_loud < v->min_speech_frames)
            return 1;
        v->state = VAD_SPEECH;
        v->speech_start = v->run_start;
        v->segment_start = padded_start(v, v->run_start);
        v->last_voiced = frame;
        return 1;
    }

    if (voiced)
        v->last_voiced = frame;
    int64_t wait =
        v->min_silence_frames > v->padding_frames ? v->min_silence_frames : v->padding_frames;
    if (frame - v->last_voiced >= wait)
        return close_utterance(v, v->last_voiced, (frame + 1) * v->frame_samples);
    if (voiced && frame + 1 - v->segment_start > v->max_segment_frames) {
        if (frame + 1 - v->speech_start > v->max_segment_frames)
            return cut_segment(v, frame);
        v->segment_start = frame + 1 - v->max_segment_frames; /* less padding, same speech */
    }
    return 1;
}

static int process_frame(mtla_vad *v, float energy)
{
    int64_t frame = v->frames_seen++;
    v->history[frame % v->history_capacity] = energy;
    float previous_floor = v->floor_size > 0 ? v->floor_energies[v->floor_head] : INFINITY;
    float floor_db = floor_update(v, frame, energy);
    /* Stream start (see the top comment): the window has not lost a frame yet, so the floor
     * only falls; nothing emitted means that the state machine can start over. Each new low
     * costs one pass over less than a floor window of frames, and only during the first. */
    if (frame > 0 && frame < v->floor_window_frames && floor_db < previous_floor &&
        v->previous_end == 0) {
        v->state = VAD_SILENCE;
        v->run_start = -1;
        v->run_loud = 0;
        for (int64_t f = 0; f < frame; f++)
            if (!advance(v, f, history_energy(v, f), floor_db))
                return 0;
    }
    return advance(v, frame, energy, floor_db);
}

mtla_status mtla_vad_accept(mtla_vad *v, const float *samples, size_t count, mtla_error *err)
{
    if (!v)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "no VAD handle");
    if (!samples && count > 0)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "no samples given to the VAD");
    for (size_t i = 0; i < count; i++) {
        double x = samples[i];
        v->partial_energy += x * x;
        v->partial_count++;
        if (v->partial_count == v->frame_samples) {
            double mean = v->partial_energy / (double)v->frame_samples;
            float db = mean > 0.0 ? (float)(10.0 * log10(mean)) : ENERGY_FLOOR_DB;
            if (db < ENERGY_FLOOR_DB)
                db = ENERGY_FLOOR_DB;
            v->partial_energy = 0.0;
            v->partial_count = 0;
            if (!process_frame(v, db)) {
                v->samples_seen += (int64_t)(i + 1);
                return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory in the VAD");
            }
        }
    }
    v->samples_seen += (int64_t)count;
    return MTLA_OK;
}

void mtla_vad_finish(mtla_vad *v)
{
    if (!v || v->state != VAD_SPEECH)
        return;
    /* The stream ended inside an utterance: close it, padded up to the last sample. */
    if (!close_utterance(v, v->last_voiced, v->samples_seen)) {
        /* Out of memory for the queue: the utterance is lost, nothing else can be done. */
    }
}

int mtla_vad_take(mtla_vad *v, mtla_segment *segment)
{
    if (!v || !segment || v->ready_start == v->ready_end)
        return 0;
    *segment = v->ready[v->ready_start++];
    return 1;
}

int mtla_vad_open(const mtla_vad *v, int64_t *start)
{
    if (!v || v->state != VAD_SPEECH)
        return 0;
    if (start) {
        int64_t first = v->segment_start * v->frame_samples;
        *start = first > v->previous_end ? first : v->previous_end; /* as push_segment */
    }
    return 1;
}

int64_t mtla_vad_position(const mtla_vad *v)
{
    return v ? v->samples_seen : 0;
}

void mtla_vad_free(mtla_vad *v)
{
    if (!v)
        return;
    free(v->floor_frames);
    free(v->floor_energies);
    free(v->history);
    free(v->ready);
    free(v);
}
