/* bench_frontend: single-threaded throughput of the audio frontend, in seconds of audio
 * processed per second of wall time ("x real time").
 *
 *   bench_frontend [SOURCE_DIR]
 *
 * SOURCE_DIR (default: the source tree this was built from) must hold samples/audio/, the
 * LibriVox clips as .wav files, and tests/data/frontend/, the decoding fixtures. The clips are
 * concatenated into one ten-minute recording held in memory; the fixtures are decoded from disk
 * again and again. Each figure is the best of REPEATS runs (the least disturbed by the rest of the
 * machine), timed with CLOCK_MONOTONIC. bench/RESULTS.md records the figures and what each
 * measurement covers. Uses only the public header, like any outside program. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mtla-st.h"

#ifndef MTLA_SOURCE_DIR
#define MTLA_SOURCE_DIR "."
#endif

enum {
    RATE = 16000,          /* the models' input rate */
    CHUNK = 1600,          /* 100 ms: what a streaming caller (microphone, pipe) hands over */
    LONG_SECONDS = 600,    /* length of the concatenated recording */
    DECODE_SECONDS = 120,  /* audio decoded per repetition of a file benchmark */
    REPEATS = 10,          /* best of this many */
    MAX_CLIPS = 64
};

/* Files decoded in benchmark (d): their own rate and layout, resampled to RATE mono. */
static const char *const DECODE_FILES[] = {
    "tests/data/frontend/clip_16000_s16.wav",            /* no resampling: decode + fbank */
    "tests/data/frontend/clip_44100_f32_extensible.wav", /* 44.1 kHz float: + soxr */
    "tests/data/frontend/clip_48000_s24_stereo.flac",    /* FLAC, stereo mix, + soxr */
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void report(const char *name, double audio_seconds, double wall_seconds)
{
    printf("%-50s %10.1f %10.4f %10.0fx\n", name, audio_seconds, wall_seconds,
           audio_seconds / wall_seconds);
    fflush(stdout);
}

/* The "model name" of /proc/cpuinfo with its family and model numbers (a virtual machine often
 * shows only a vendor name), or "unknown". */
static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512], name[256] = "", family[32] = "?", model[32] = "?";
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n' && name[0])
            break; /* end of the first processor's block */
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        value[strcspn(value, "\n")] = '\0';
        if (strncmp(line, "model name", 10) == 0)
            snprintf(name, sizeof name, "%s", value);
        else if (strncmp(line, "cpu family", 10) == 0)
            snprintf(family, sizeof family, "%s", value);
        else if (strncmp(line, "model\t", 6) == 0)
            snprintf(model, sizeof model, "%s", value);
    }
    fclose(f);
    if (name[0])
        snprintf(out, size, "%s (family %s, model %s)", name, family, model);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads every .wav file of samples/audio/ (in name order) at RATE and repeats them one after another
 * until LONG_SECONDS are filled. Returns a malloc'ed buffer, or NULL after printing why. */
static float *load_long_input(const char *source_dir, size_t *count, int *clips_used)
{
    char dir_path[4096];
    snprintf(dir_path, sizeof dir_path, "%s/samples/audio", source_dir);
    DIR *dir = opendir(dir_path);
    if (!dir) {
        fprintf(stderr, "bench_frontend: cannot open %s\n", dir_path);
        return NULL;
    }
    char *names[MAX_CLIPS];
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && n < MAX_CLIPS) {
        size_t len = strlen(entry->d_name);
        if (len > 4 && strcmp(entry->d_name + len - 4, ".wav") == 0) {
            names[n] = strdup(entry->d_name);
            if (!names[n])
                break;
            n++;
        }
    }
    closedir(dir);
    qsort(names, (size_t)n, sizeof names[0], compare_names);

    float *clips[MAX_CLIPS];
    size_t lengths[MAX_CLIPS];
    size_t total_clips = 0;
    int loaded = 0, ok = n > 0;
    if (n == 0)
        fprintf(stderr, "bench_frontend: no .wav files in %s\n", dir_path);
    for (int i = 0; i < n && ok; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir_path, names[i]);
        mtla_error err;
        if (mtla_audio_load(path, NULL, RATE, &clips[i], &lengths[i], &err) != MTLA_OK) {
            fprintf(stderr, "bench_frontend: %s\n", err.message);
            ok = 0;
            break;
        }
        loaded++;
        total_clips += lengths[i];
    }

    float *out = NULL;
    size_t target = (size_t)LONG_SECONDS * RATE, filled = 0;
    if (ok && total_clips > 0) {
        /* Whole clips only, so the recording has the clips' natural pauses between sentences. */
        size_t capacity = target + total_clips;
        out = malloc(capacity * sizeof(float));
        if (!out)
            fprintf(stderr, "bench_frontend: out of memory for %zu samples\n", capacity);
        for (int i = 0; out && filled < target; i = (i + 1) % loaded) {
            memcpy(out + filled, clips[i], lengths[i] * sizeof(float));
            filled += lengths[i];
        }
    }
    for (int i = 0; i < loaded; i++)
        free(clips[i]);
    for (int i = 0; i < n; i++)
        free(names[i]);
    *count = filled;
    *clips_used = loaded;
    return out;
}

/* (a), (b): streams `input` through a fresh fbank in CHUNK-sample pieces, taking the frames as
 * they come into `frames` (room for all of them); with `cmvn`, normalises them afterwards as
 * one utterance, as `mtla-st features --cmvn utterance` does. Returns the wall time, or a
 * negative value after printing why. */
static double run_fbank(const float *input, size_t count, float *frames, size_t max_frames,
                        int cmvn, size_t *num_frames)
{
    mtla_error err;
    mtla_fbank_params params = mtla_fbank_default_params();
    mtla_fbank *fbank;
    /* Creation (FFTW planning) is outside the timing: a session makes it once. */
    if (mtla_fbank_create(&params, &fbank, &err) != MTLA_OK) {
        fprintf(stderr, "bench_frontend: %s\n", err.message);
        return -1.0;
    }
    const size_t bins = (size_t)mtla_fbank_num_bins(fbank);
    size_t n = 0;
    double start = now_seconds();
    for (size_t pos = 0; pos < count; pos += CHUNK) {
        size_t len = count - pos < CHUNK ? count - pos : CHUNK;
        if (mtla_fbank_accept(fbank, input + pos, len, &err) != MTLA_OK) {
            fprintf(stderr, "bench_frontend: %s\n", err.message);
            mtla_fbank_free(fbank);
            return -1.0;
        }
        n += mtla_fbank_take(fbank, frames + n * bins, max_frames - n);
    }
    if (cmvn)
        mtla_cmvn_utterance(frames, n, (int32_t)bins);
    double wall = now_seconds() - start;
    mtla_fbank_free(fbank);
    *num_frames = n;
    return wall;
}

/* (c): streams `input` through a fresh VAD in CHUNK-sample pieces, taking segments as they
 * become ready. */
static double run_vad(const float *input, size_t count, size_t *num_segments)
{
    mtla_error err;
    mtla_vad_params params = mtla_vad_default_params();
    mtla_vad *vad;
    if (mtla_vad_create(&params, &vad, &err) != MTLA_OK) {
        fprintf(stderr, "bench_frontend: %s\n", err.message);
        return -1.0;
    }
    size_t segments = 0;
    mtla_segment seg;
    double start = now_seconds();
    for (size_t pos = 0; pos < count; pos += CHUNK) {
        size_t len = count - pos < CHUNK ? count - pos : CHUNK;
        if (mtla_vad_accept(vad, input + pos, len, &err) != MTLA_OK) {
            fprintf(stderr, "bench_frontend: %s\n", err.message);
            mtla_vad_free(vad);
            return -1.0;
        }
        while (mtla_vad_take(vad, &seg))
            segments++;
    }
    mtla_vad_finish(vad);
    while (mtla_vad_take(vad, &seg))
        segments++;
    double wall = now_seconds() - start;
    mtla_vad_free(vad);
    *num_segments = segments;
    return wall;
}

/* (d): opens `path`, reads it at RATE in CHUNK-sample pieces into an fbank, closes it, and
 * again until DECODE_SECONDS of output audio have passed. Opening (header parsing, soxr set-up)
 * is inside the timing: it is part of handling a file. The fbank is made once and reset per
 * file. Returns the wall time and the output samples in *samples_out. */
static double run_decode(const char *path, size_t *samples_out)
{
    mtla_error err;
    mtla_fbank_params params = mtla_fbank_default_params();
    mtla_fbank *fbank;
    if (mtla_fbank_create(&params, &fbank, &err) != MTLA_OK) {
        fprintf(stderr, "bench_frontend: %s\n", err.message);
        return -1.0;
    }
    static float chunk[CHUNK];
    static float frames[CHUNK]; /* scratch: the frames are taken and dropped */
    const size_t max_frames = CHUNK / (size_t)mtla_fbank_num_bins(fbank);
    size_t total = 0;
    double wall = -1.0;
    double start = now_seconds();
    while (total < (size_t)DECODE_SECONDS * RATE) {
        mtla_audio *audio;
        if (mtla_audio_open_file(path, RATE, &audio, &err) != MTLA_OK)
            goto fail;
        mtla_fbank_reset(fbank);
        for (;;) {
            size_t got = 0;
            if (mtla_audio_read(audio, chunk, CHUNK, &got, &err) != MTLA_OK ||
                mtla_fbank_accept(fbank, chunk, got, &err) != MTLA_OK) {
                mtla_audio_close(audio);
                goto fail;
            }
            while (mtla_fbank_take(fbank, frames, max_frames) > 0)
                ;
            if (got == 0)
                break;
            total += got;
        }
        mtla_audio_close(audio);
    }
    wall = now_seconds() - start;
    *samples_out = total;
    mtla_fbank_free(fbank);
    return wall;
fail:
    fprintf(stderr, "bench_frontend: %s\n", err.message);
    mtla_fbank_free(fbank);
    return -1.0;
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
        fprintf(argc > 2 ? stderr : stdout,
                "Usage: %s [SOURCE_DIR]\n"
                "Single-threaded frontend throughput on samples/audio/*.wav and\n"
                "tests/data/frontend/ under SOURCE_DIR (default %s).\n",
                argv[0], MTLA_SOURCE_DIR);
        return argc > 2 ? 2 : 0;
    }
    const char *source_dir = argc == 2 ? argv[1] : MTLA_SOURCE_DIR;

    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    printf("mtla-st %s frontend benchmark\n", mtla_version());
    printf("cpu: %s\n", cpu);
    printf("threads: 1 (single-threaded; every call on the main thread)\n");

    size_t count = 0;
    int clips = 0;
    float *input = load_long_input(source_dir, &count, &clips);
    if (!input)
        return 1;
    const double input_seconds = (double)count / RATE;
    printf("input: %d LibriVox clips from %s/samples/audio repeated to %.1f s at %d Hz; "
           "chunks of %d samples; best of %d\n",
           clips, source_dir, input_seconds, RATE, (int)CHUNK, (int)REPEATS);

    const size_t bins = (size_t)mtla_fbank_default_params().num_mel_bins;
    const size_t max_frames = count / 160 + 1;
    float *frames = malloc(max_frames * bins * sizeof(float));
    if (!frames) {
        fprintf(stderr, "bench_frontend: out of memory for %zu frames\n", max_frames);
        free(input);
        return 1;
    }

    printf("\n%-50s %10s %10s %11s\n", "measurement", "audio s", "wall s", "x real time");
    int status = 0;
    for (int cmvn = 0; cmvn <= 1 && status == 0; cmvn++) {
        double best = -1.0;
        size_t n = 0;
        for (int r = 0; r < REPEATS; r++) {
            double wall = run_fbank(input, count, frames, max_frames, cmvn, &n);
            if (wall < 0.0) {
                status = 1;
                break;
            }
            if (best < 0.0 || wall < best)
                best = wall;
        }
        /* snip_edges framing: 400-sample frames every 160 samples. */
        size_t expected = count < 400 ? 0 : (count - 400) / 160 + 1;
        if (status == 0 && n != expected) {
            fprintf(stderr, "bench_frontend: fbank gave %zu frames for %zu samples\n", n, count);
            status = 1;
        }
        if (status == 0)
            report(cmvn ? "(b) fbank + utterance CMVN, 16 kHz" : "(a) fbank, 16 kHz", input_seconds,
                   best);
    }

    if (status == 0) {
        double best = -1.0;
        size_t segments = 0;
        for (int r = 0; r < REPEATS && status == 0; r++) {
            double wall = run_vad(input, count, &segments);
            if (wall < 0.0)
                status = 1;
            else if (best < 0.0 || wall < best)
                best = wall;
        }
        if (status == 0 && segments == 0) {
            fprintf(stderr, "bench_frontend: the VAD found no speech in the recording\n");
            status = 1;
        }
        if (status == 0)
            report("(c) VAD, 16 kHz", input_seconds, best);
    }

    for (size_t i = 0; i < sizeof DECODE_FILES / sizeof DECODE_FILES[0] && status == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", source_dir, DECODE_FILES[i]);
        double best = -1.0;
        size_t samples = 0;
        for (int r = 0; r < REPEATS && status == 0; r++) {
            double wall = run_decode(path, &samples);
            if (wall < 0.0)
                status = 1;
            else if (best < 0.0 || wall < best)
                best = wall;
        }
        if (status == 0) {
            const char *base = strrchr(DECODE_FILES[i], '/') + 1;
            char name[128];
            snprintf(name, sizeof name, "(d) file + fbank: %s", base);
            report(name, (double)samples / RATE, best);
        }
    }

    free(frames);
    free(input);
    return status;
}
