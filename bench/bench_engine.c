/* bench_engine: encoder time, per-step decode time and decoder cache bytes of the CPU engine
 * on one model and one utterance; bench/bench_oracle.py measures the same with the PyTorch
 * oracle, and bench/run_engine_bench.sh runs both (bench/RESULTS.md has the figures).
 *
 *   bench_engine [options] MODEL_DIR INPUT
 *
 *   INPUT                 fbank features as .npy (frames x num_mel_bins float32, before CMVN,
 *                         what `mtla-st features` writes) or any audio file
 *   --threads T           CPU threads (OpenMP and OpenBLAS), default 1
 *   --dtype D             fp32 (default), bf16 or int8: the linear layers' weights
 *                         (docs/engine.md "Reduced precision"); weight_MiB reports the weight
 *                         memory the engine made for it (converted matrices), rss_MiB the
 *                         process's resident memory after the search (every weight read)
 *   --beams 1,5,50        beam sizes, default 1,5,50
 *   --steps N             decoder steps per search, default 100
 *   --encoder-reps R      timed encoder runs after one untimed one; the median (enc_ms) and
 *                         the fastest (enc_best_ms) are reported (default 3)
 *   --decode-reps R       beam searches per beam; the median is reported (default 1)
 *   --profile             also time every backend op during the searches (stderr)
 *   --no-header           leave out the TSV header line
 *
 * A beam search runs with min_len = max_len = N: EOS is -inf before step N and forced at step
 * N, so every search makes exactly N + 1 decoder calls (the start step with the prompt, then
 * N text tokens), whatever the random weights prefer. step_ms is the search's wall time over
 * N + 1, beam bookkeeping and cache reordering included.
 *
 * Cache bytes come from mtla_decoder_cache_bytes: `shared` is the speech prompt's part, stored
 * once for all hypotheses; `hyp@L` is what one hypothesis owns after the start token and L text
 * tokens (L = N/4, N/2, N; measured on a separate one-hypothesis decode, and checked against the
 * beam search's own state at L = N); `total@L` = shared / beam + hyp@L, the cache of one
 * utterance divided by the beam. These are the rows filled; the engine reserves room for N
 * rows per hypothesis at the start, and a second buffer of that size receives reorders.
 *
 * Output: one TSV line per beam on stdout. Links the library's internals (core/, encoder/,
 * decoder/), not only the public header, to reach the encoder and decoder separately. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/model_dir.h"
#include "core/ops.h"
#include "core/weights.h"
#include "decoder/beam.h"
#include "decoder/decoder.h"
#include "encoder/encoder.h"
#include "mtla-st.h"
#include "npy.h"

enum { MAX_BEAMS = 16, MAX_REPS = 64 };

typedef struct options {
    const char *model_dir;
    const char *input;
    int threads;
    mtla_compute_dtype dtype;
    int beams[MAX_BEAMS];
    int nbeams;
    int steps;
    int encoder_reps;
    int decode_reps;
    int profile;
    int header;
} options;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------ op profiler */

/* A backend table whose every op times the same op of an inner backend: the time of each part
 * of a decoder step without a sampling profiler. `state` points to the profiler. */
enum {
    P_ALLOC,
    P_COPY,
    P_GEMM,
    P_LINEAR,
    P_LAYER_NORM,
    P_SOFTMAX,
    P_LOG_SOFTMAX,
    P_ELEMENTWISE,
    P_CONV,
    P_COPY2D,
    P_GATHER_ROWS,
    P_ROW_DOT_SIGMOID,
    P_SCALE_ROWS,
    P_DECODE_ATTENTION,
    P_REL_SHIFT,
    P_EMBED,
    P_ROPE,
    P_COUNT
};
static const char *const PROFILE_NAMES[P_COUNT] = {"alloc/free",
                                                   "copy/fill/upload",
                                                   "gemm (other)",
                                                   "linear",
                                                   "layer_norm",
                                                   "softmax",
                                                   "log_softmax",
                                                   "relu/silu/scale/axpy/bias/glu",
                                                   "conv1d",
                                                   "copy2d",
                                                   "gather_rows (reorder)",
                                                   "row_dot_sigmoid (mtla w)",
                                                   "scale_rows (mtla w)",
                                                   "decode_attention",
                                                   "rel_shift_add",
                                                   "embed",
                                                   "rope"};

typedef struct profiler {
    mtla_ops table; /* what the model code calls */
    const mtla_ops *inner;
    double seconds[P_COUNT];
    long calls[P_COUNT];
} profiler;

#define PROFILED(slot, call)                                                                       \
    do {                                                                                           \
        profiler *p_ = (profiler *)ops->state;                                                     \
        const mtla_ops *in = p_->inner;                                                            \
        double t0_ = now_seconds();                                                                \
        call;                                                                                      \
        p_->seconds[slot] += now_seconds() - t0_;                                                  \
        p_->calls[slot]++;                                                                         \
    } while (0)

static float *pr_alloc(const mtla_ops *ops, size_t count)
{
    float *r;
    PROFILED(P_ALLOC, r = in->alloc(in, count));
    return r;
}
static void pr_free(const mtla_ops *ops, float *b)
{
    PROFILED(P_ALLOC, in->free(in, b));
}
static void pr_upload(const mtla_ops *ops, float *d, const float *h, size_t n)
{
    PROFILED(P_COPY, in->upload(in, d, h, n));
}
static void pr_download(const mtla_ops *ops, float *h, const float *s, size_t n)
{
    PROFILED(P_COPY, in->download(in, h, s, n));
}
static void pr_copy(const mtla_ops *ops, float *d, const float *s, size_t n)
{
    PROFILED(P_COPY, in->copy(in, d, s, n));
}
static void pr_fill(const mtla_ops *ops, float *d, float v, size_t n)
{
    PROFILED(P_COPY, in->fill(in, d, v, n));
}
static void pr_gemm(const mtla_ops *ops, int ta, int tb, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc)
{
    PROFILED(P_GEMM, in->gemm(in, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
}
static void pr_linear(const mtla_ops *ops, const float *x, int64_t rows, int64_t din,
                      const mtla_matrix *w, const float *bias, int64_t dout, float *y)
{
    PROFILED(P_LINEAR, in->linear(in, x, rows, din, w, bias, dout, y));
}
static void pr_layer_norm(const mtla_ops *ops, const float *x, int64_t rows, int64_t dim,
                          const float *g, const float *b, float eps, float *y)
{
    PROFILED(P_LAYER_NORM, in->layer_norm(in, x, rows, dim, g, b, eps, y));
}
static void pr_softmax(const mtla_ops *ops, float *x, int64_t rows, int64_t cols, int64_t ld)
{
    PROFILED(P_SOFTMAX, in->softmax(in, x, rows, cols, ld));
}
static void pr_log_softmax(const mtla_ops *ops, float *x, int64_t rows, int64_t cols)
{
    PROFILED(P_LOG_SOFTMAX, in->log_softmax(in, x, rows, cols));
}
static void pr_glu(const mtla_ops *ops, const float *x, int64_t rows, int64_t half, float *y)
{
    PROFILED(P_ELEMENTWISE, in->glu(in, x, rows, half, y));
}
static void pr_relu(const mtla_ops *ops, float *x, size_t n)
{
    PROFILED(P_ELEMENTWISE, in->relu(in, x, n));
}
static void pr_silu(const mtla_ops *ops, float *x, size_t n)
{
    PROFILED(P_ELEMENTWISE, in->silu(in, x, n));
}
static void pr_scale(const mtla_ops *ops, float *x, float alpha, size_t n)
{
    PROFILED(P_ELEMENTWISE, in->scale(in, x, alpha, n));
}
static void pr_axpy(const mtla_ops *ops, float alpha, const float *x, float *y, size_t n)
{
    PROFILED(P_ELEMENTWISE, in->axpy(in, alpha, x, y, n));
}
static void pr_add_bias(const mtla_ops *ops, float *x, const float *b, int64_t rows, int64_t cols)
{
    PROFILED(P_ELEMENTWISE, in->add_bias(in, x, b, rows, cols));
}
static void pr_conv1d(const mtla_ops *ops, const float *x, int64_t t, int64_t cin, const float *w,
                      const float *b, int64_t cout, int64_t k, int64_t stride, int64_t pad,
                      float *y)
{
    PROFILED(P_CONV, in->conv1d(in, x, t, cin, w, b, cout, k, stride, pad, y));
}
static void pr_depthwise_conv1d(const mtla_ops *ops, const float *x, int64_t t, int64_t ch,
                                const float *w, int64_t k, int64_t pad, float *y)
{
    PROFILED(P_CONV, in->depthwise_conv1d(in, x, t, ch, w, k, pad, y));
}
static void pr_copy2d(const mtla_ops *ops, float *d, int64_t ldd, const float *s, int64_t lds,
                      int64_t rows, int64_t cols, int acc)
{
    PROFILED(P_COPY2D, in->copy2d(in, d, ldd, s, lds, rows, cols, acc));
}
static void pr_gather_rows(const mtla_ops *ops, float *d, int64_t ldd, const float *s, int64_t lds,
                           const int32_t *index, int64_t rows, int64_t cols)
{
    PROFILED(P_GATHER_ROWS, in->gather_rows(in, d, ldd, s, lds, index, rows, cols));
}
static void pr_row_dot_sigmoid(const mtla_ops *ops, const float *a, int64_t lda, const float *b,
                               int64_t ldb, int64_t rows, int64_t dim, float *out)
{
    PROFILED(P_ROW_DOT_SIGMOID, in->row_dot_sigmoid(in, a, lda, b, ldb, rows, dim, out));
}
static void pr_scale_rows(const mtla_ops *ops, float *x, int64_t rows, int64_t cols, int64_t ld,
                          const float *w)
{
    PROFILED(P_SCALE_ROWS, in->scale_rows(in, x, rows, cols, ld, w));
}
static void pr_decode_attention(const mtla_ops *ops, int64_t batch, int64_t heads, int64_t kv_heads,
                                int64_t dk, int64_t dv, float scale, const float *q,
                                const mtla_kv_block *blocks, int nblocks, float *o)
{
    PROFILED(P_DECODE_ATTENTION, in->decode_attention(in, batch, heads, kv_heads, dk, dv, scale, q,
                                                      blocks, nblocks, o));
}
static void pr_rel_shift_add(const mtla_ops *ops, float *scores, int64_t t, const float *bd,
                             int64_t ld)
{
    PROFILED(P_REL_SHIFT, in->rel_shift_add(in, scores, t, bd, ld));
}
static void pr_embed(const mtla_ops *ops, const float *table, int64_t dim, const int32_t *ids,
                     int64_t n, float scale, float *y)
{
    PROFILED(P_EMBED, in->embed(in, table, dim, ids, n, scale, y));
}
static void pr_rope(const mtla_ops *ops, float *x, int64_t rows, int64_t ld, int64_t dim,
                    const float *positions, float theta)
{
    PROFILED(P_ROPE, in->rope(in, x, rows, ld, dim, positions, theta));
}

static void profiler_init(profiler *p, const mtla_ops *inner)
{
    memset(p, 0, sizeof *p);
    p->inner = inner;
    mtla_ops *t = &p->table;
    t->name = inner->name;
    t->state = p;
    t->host_memory = inner->host_memory;
    t->matrix_types = inner->matrix_types;
    t->alloc = pr_alloc;
    t->free = pr_free;
    t->upload = pr_upload;
    t->download = pr_download;
    t->copy = pr_copy;
    t->fill = pr_fill;
    t->gemm = pr_gemm;
    t->linear = pr_linear;
    t->layer_norm = pr_layer_norm;
    t->softmax = pr_softmax;
    t->log_softmax = pr_log_softmax;
    t->glu = pr_glu;
    t->relu = pr_relu;
    t->silu = pr_silu;
    t->scale = pr_scale;
    t->axpy = pr_axpy;
    t->add_bias = pr_add_bias;
    t->conv1d = pr_conv1d;
    t->depthwise_conv1d = pr_depthwise_conv1d;
    t->copy2d = pr_copy2d;
    t->gather_rows = pr_gather_rows;
    t->row_dot_sigmoid = pr_row_dot_sigmoid;
    t->scale_rows = pr_scale_rows;
    t->decode_attention = pr_decode_attention;
    t->rel_shift_add = pr_rel_shift_add;
    t->embed = pr_embed;
    t->rope = pr_rope;
}

static void profiler_reset(profiler *p)
{
    memset(p->seconds, 0, sizeof p->seconds);
    memset(p->calls, 0, sizeof p->calls);
}

/* One block of lines per search: time per op and what is left (the host's beam bookkeeping
 * and everything between the ops). */
static void profiler_report(const profiler *p, const char *what, int runs, double wall)
{
    double ops = 0.0;
    for (int i = 0; i < P_COUNT; i++)
        ops += p->seconds[i];
    fprintf(stderr, "# profile %s: %d runs, %.2f ms per run\n", what, runs, 1e3 * wall / runs);
    for (int i = 0; i < P_COUNT; i++)
        if (p->calls[i])
            fprintf(stderr, "#   %-30s %8.2f ms/run %5.1f %%  (%ld op calls)\n", PROFILE_NAMES[i],
                    1e3 * p->seconds[i] / runs, 100.0 * p->seconds[i] / wall, p->calls[i]);
    fprintf(stderr, "#   %-30s %8.2f ms/run %5.1f %%\n", "outside the ops",
            1e3 * (wall - ops) / runs, 100.0 * (wall - ops) / wall);
}

/* ------------------------------------------------------------------ inputs */

static int parse_beams(const char *text, options *o)
{
    o->nbeams = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long b = strtol(p, &end, 10);
        if (end == p || b < 1 || b > 100000 || o->nbeams == MAX_BEAMS)
            return -1;
        o->beams[o->nbeams++] = (int)b;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return o->nbeams > 0 ? 0 : -1;
}

static int parse_int(const char *text, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_engine [--threads T] [--dtype fp32|bf16|int8] [--beams 1,5,50] "
               "[--steps N] "
               "[--encoder-reps R] [--decode-reps R] [--profile] [--no-header] MODEL_DIR "
               "INPUT\n");
}

static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){.threads = 1,
                   .beams = {1, 5, 50},
                   .nbeams = 3,
                   .steps = 100,
                   .encoder_reps = 3,
                   .decode_reps = 1,
                   .header = 1};
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--threads") == 0 && v)
            bad = parse_int(v, 1, 1024, &o->threads), i++;
        else if (strcmp(a, "--dtype") == 0 && v) {
            bad = 1;
            for (int d = MTLA_COMPUTE_FP32; d <= MTLA_COMPUTE_INT8; d++)
                if (strcmp(v, mtla_compute_dtype_name((mtla_compute_dtype)d)) == 0)
                    o->dtype = (mtla_compute_dtype)d, bad = 0;
            i++;
        }
        else if (strcmp(a, "--beams") == 0 && v)
            bad = parse_beams(v, o), i++;
        else if (strcmp(a, "--steps") == 0 && v)
            bad = parse_int(v, 4, 1022, &o->steps), i++;
        else if (strcmp(a, "--encoder-reps") == 0 && v)
            bad = parse_int(v, 1, MAX_REPS, &o->encoder_reps), i++;
        else if (strcmp(a, "--decode-reps") == 0 && v)
            bad = parse_int(v, 1, MAX_REPS, &o->decode_reps), i++;
        else if (strcmp(a, "--profile") == 0)
            o->profile = 1;
        else if (strcmp(a, "--no-header") == 0)
            o->header = 0;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (a[0] == '-' && a[1])
            bad = 1;
        else if (positional == 0)
            o->model_dir = a, positional++;
        else if (positional == 1)
            o->input = a, positional++;
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "bench_engine: bad option or value at '%s'\n", a);
            return -1;
        }
    }
    if (positional != 2) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The model's input features for INPUT (.npy of raw fbank, or audio), CMVN applied as the
 * model's config says. */
static float *load_features(const mtla_model_dir *dir, const char *input, size_t *frames)
{
    const mtla_frontend_config *fe = &dir->config.frontend;
    size_t bins = (size_t)fe->fbank.num_mel_bins, cols = 0;
    float *x = NULL;
    char message[512];
    mtla_error err;
    if (ends_with(input, ".npy")) {
        if (npy_read_f32(input, &x, frames, &cols, message, sizeof message) != 0) {
            fprintf(stderr, "bench_engine: %s\n", message);
            return NULL;
        }
        if (cols != bins) {
            fprintf(stderr, "bench_engine: %s has %zu columns, the model wants %zu\n", input, cols,
                    bins);
            free(x);
            return NULL;
        }
    } else {
        float *samples;
        size_t count;
        if (mtla_audio_load(input, NULL, fe->fbank.sample_rate, &samples, &count, &err) !=
            MTLA_OK) {
            fprintf(stderr, "bench_engine: %s\n", err.message);
            return NULL;
        }
        mtla_status st = mtla_fbank_compute(&fe->fbank, samples, count, &x, frames, &err);
        free(samples);
        if (st != MTLA_OK) {
            fprintf(stderr, "bench_engine: %s\n", err.message);
            return NULL;
        }
    }
    if (fe->cmvn == MTLA_CMVN_UTTERANCE) {
        mtla_cmvn_utterance(x, *frames, (int32_t)bins);
    } else if (fe->cmvn == MTLA_CMVN_GLOBAL) {
        const mtla_tensor *mean = mtla_model_dir_tensor(dir, "frontend.cmvn.mean");
        const mtla_tensor *std = mtla_model_dir_tensor(dir, "frontend.cmvn.std");
        if (!mean || !std ||
            mtla_cmvn_global(x, *frames, (int32_t)bins, mean->data, std->data, &err) != MTLA_OK) {
            fprintf(stderr, "bench_engine: global CMVN failed\n");
            free(x);
            return NULL;
        }
    }
    return x;
}

static const char *attention_name(mtla_attention_type t)
{
    switch (t) {
    case MTLA_ATTENTION_MHA: return "mha";
    case MTLA_ATTENTION_GQA: return "gqa";
    case MTLA_ATTENTION_MLA: return "mla";
    case MTLA_ATTENTION_MTLA: return "mtla";
    }
    return "?";
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    static char name[256];
    size_t start = n;
    while (start > 0 && path[start - 1] != '/')
        start--;
    snprintf(name, sizeof name, "%.*s", (int)(n - start), path + start);
    return name;
}

/* ------------------------------------------------------------------ measurements */

/* VmRSS of /proc/self/status in MiB; -1 where it cannot be read. */
static double resident_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = -1.0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtod(line + 6, NULL);
    if (f)
        fclose(f);
    return kib < 0 ? -1.0 : kib / 1024.0;
}

/* Per-hypothesis cache bytes after the start token and lengths[i] text tokens, on one
 * hypothesis fed arbitrary in-vocabulary tokens (the bytes do not depend on which). */
static int cache_curve(mtla_decoder_state *state, const mtla_vocab_config *vocab,
                       const float *prompt, int64_t prompt_frames, const int *lengths, int n,
                       int64_t *shared, int64_t *per_hyp)
{
    int max = lengths[n - 1];
    float *logprobs = malloc((size_t)vocab->size * sizeof *logprobs);
    mtla_error err;
    if (!logprobs ||
        mtla_decoder_start(state, prompt, prompt_frames, 1, max, logprobs, &err) != MTLA_OK) {
        fprintf(stderr, "bench_engine: decoder start failed: %s\n",
                logprobs ? err.message : "out of memory");
        free(logprobs);
        return -1;
    }
    int next = 0;
    for (int step = 1; step <= max; step++) {
        int32_t token = 4 + (int32_t)((step * 7919) % (vocab->size - 4));
        if (mtla_decoder_step(state, &token, logprobs, &err) != MTLA_OK) {
            fprintf(stderr, "bench_engine: decoder step failed: %s\n", err.message);
            free(logprobs);
            return -1;
        }
        while (next < n && lengths[next] == step) {
            mtla_decoder_cache_bytes(state, shared, &per_hyp[next]);
            next++;
        }
    }
    free(logprobs);
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;

    mtla_error err;
    mtla_model_dir *dir = NULL;
    if (mtla_model_dir_open(o.model_dir, &dir, &err) != MTLA_OK) {
        fprintf(stderr, "bench_engine: %s\n", err.message);
        return 1;
    }
    const mtla_model_config *cfg = &dir->config;
    size_t frames = 0;
    float *features = load_features(dir, o.input, &frames);
    if (!features)
        return 1;

    mtla_ops *cpu = o.dtype == MTLA_COMPUTE_FP32 ? mtla_ops_cpu_create(o.threads)
                                                 : mtla_ops_cpu_create_reduced(o.threads);
    if (!cpu) {
        fprintf(stderr, "bench_engine: out of memory\n");
        return 1;
    }
    profiler *prof = NULL;
    const mtla_ops *ops = cpu;
    if (o.profile) {
        prof = malloc(sizeof *prof);
        if (!prof) {
            fprintf(stderr, "bench_engine: out of memory\n");
            return 1;
        }
        profiler_init(prof, cpu);
        ops = &prof->table;
    }
    mtla_weights *weights = NULL;
    mtla_encoder *enc = NULL;
    mtla_decoder *dec = NULL;
    mtla_decoder_state *state = NULL;
    if (mtla_weights_create_dtype(ops, dir, o.dtype, &weights, &err) != MTLA_OK ||
        mtla_encoder_create(ops, weights, cfg, &enc, &err) != MTLA_OK ||
        mtla_decoder_create(ops, weights, cfg, &dec, &err) != MTLA_OK ||
        mtla_decoder_state_create(dec, &state, &err) != MTLA_OK) {
        fprintf(stderr, "bench_engine: %s\n", err.message);
        return 1;
    }

    /* ---- encoder + projector, median of encoder_reps */
    int64_t s_enc = mtla_encoder_output_frames(enc, (int64_t)frames);
    int64_t s_max = mtla_encoder_prompt_frames(enc, s_enc);
    int64_t E = mtla_encoder_dim(enc), D = cfg->decoder.d_model;
    float *x = ops->alloc(ops, frames * (size_t)cfg->frontend.fbank.num_mel_bins);
    float *enc_out = ops->alloc(ops, (size_t)(s_enc * E));
    float *prompt = ops->alloc(ops, (size_t)(s_max * D));
    if (!x || !enc_out || !prompt) {
        fprintf(stderr, "bench_engine: out of memory for the encoder\n");
        return 1;
    }
    ops->upload(ops, x, features, frames * (size_t)cfg->frontend.fbank.num_mel_bins);
    double enc_times[MAX_REPS];
    int64_t S = 0;
    /* Run -1 is not timed: it faults in the encoder weights, which are used in place in the
     * model files' read-only mapping (the oracle reads every tensor into memory at load). */
    for (int r = -1; r < o.encoder_reps; r++) {
        if (prof && r == 0)
            profiler_reset(prof);
        double t0 = now_seconds();
        if (mtla_encoder_forward(enc, x, (int64_t)frames, enc_out, &err) != MTLA_OK ||
            mtla_encoder_project(enc, enc_out, s_enc, prompt, &S, &err) != MTLA_OK) {
            fprintf(stderr, "bench_engine: encoder failed: %s\n", err.message);
            return 1;
        }
        if (r >= 0)
            enc_times[r] = now_seconds() - t0;
    }
    const char *model = base_name(o.model_dir);
    char label[320];
    if (prof) {
        double sum = 0.0;
        for (int r = 0; r < o.encoder_reps; r++)
            sum += enc_times[r];
        snprintf(label, sizeof label, "%s encoder + projector (runs)", model);
        profiler_report(prof, label, o.encoder_reps, sum);
        profiler_reset(prof);
    }
    double enc_ms = 1e3 * median(enc_times, o.encoder_reps); /* sorts: [0] is the best */
    double weight_mib = (double)mtla_weights_owned_bytes(weights) / (1 << 20);
    double enc_best_ms = 1e3 * enc_times[0];

    /* ---- cache bytes as the output grows */
    const mtla_vocab_config *vocab = mtla_decoder_vocab(state);
    int lengths[3] = {o.steps / 4, o.steps / 2, o.steps};
    int64_t shared = 0, per_hyp[3];
    if (cache_curve(state, vocab, prompt, S, lengths, 3, &shared, per_hyp) != 0)
        return 1;

    const mtla_attention_config *att = &cfg->decoder.attention;
    if (o.header)
        printf(
            "engine\tmodel\tattention\ts\tthreads\tbeam\tsteps\tframes\tprompt\tenc_ms\t"
            "enc_best_ms\tstep_ms\tdecode_s\tshared_B\thyp_B@%d\thyp_B@%d\thyp_B@%d\ttotal_B@%d\t"
            "total_B@%d\ttotal_B@%d\tdtype\tweight_MiB\trss_MiB\n",
            lengths[0], lengths[1], lengths[2], lengths[0], lengths[1], lengths[2]);

    /* ---- beam searches of exactly steps + 1 decoder calls */
    for (int bi = 0; bi < o.nbeams; bi++) {
        int beam = o.beams[bi];
        mtla_beam_params bp = {.beam = beam,
                               .max_len = o.steps,
                               .min_len = o.steps,
                               .lenpen = 1.0f,
                               .unk_penalty = 0.0f};
        double times[MAX_REPS];
        for (int r = 0; r < o.decode_reps; r++) {
            mtla_beam_result res;
            if (prof)
                profiler_reset(prof);
            double t0 = now_seconds();
            mtla_status st = mtla_beam_search(state, prompt, S, &bp, &res, &err);
            times[r] = now_seconds() - t0;
            if (st != MTLA_OK) {
                fprintf(stderr, "bench_engine: beam %d failed: %s\n", beam, err.message);
                return 1;
            }
            if (res.steps != o.steps + 1 || res.count < 1 || res.hyps[0].length != o.steps) {
                fprintf(stderr,
                        "bench_engine: beam %d ran %d decoder calls (best hypothesis %d "
                        "tokens), expected %d\n",
                        beam, res.steps, res.count ? res.hyps[0].length : -1, o.steps + 1);
                return 1;
            }
            mtla_beam_result_free(&res);
            if (prof && r == o.decode_reps - 1) {
                snprintf(label, sizeof label, "%s beam %d, per decoder call (runs)", model, beam);
                profiler_report(prof, label, o.steps + 1, times[r]);
            }
        }
        int64_t beam_shared, beam_hyp;
        mtla_decoder_cache_bytes(state, &beam_shared, &beam_hyp);
        if (beam_shared != shared || beam_hyp != per_hyp[2])
            fprintf(stderr,
                    "bench_engine: warning: beam %d ends with %lld + %lld cache bytes per "
                    "hypothesis, the one-hypothesis decode had %lld + %lld\n",
                    beam, (long long)beam_shared, (long long)beam_hyp, (long long)shared,
                    (long long)per_hyp[2]);
        double total = median(times, o.decode_reps);
        double rss_mib = resident_mib(); /* every weight has been read by now */
        printf("c\t%s\t%s\t%d\t%d\t%d\t%d\t%zu\t%lld\t%.1f\t%.1f\t%.3f\t%.3f\t%lld", model,
               attention_name(att->type), att->type == MTLA_ATTENTION_MTLA ? att->down_rate : 1,
               o.threads, beam, o.steps, frames, (long long)S, enc_ms, enc_best_ms,
               1e3 * total / (o.steps + 1), total, (long long)shared);
        for (int i = 0; i < 3; i++)
            printf("\t%lld", (long long)per_hyp[i]);
        for (int i = 0; i < 3; i++)
            printf("\t%.0f", (double)shared / beam + (double)per_hyp[i]);
        printf("\t%s\t%.1f\t%.1f\n", mtla_compute_dtype_name(o.dtype), weight_mib, rss_mib);
        fflush(stdout);
    }

    ops->free(ops, x);
    ops->free(ops, enc_out);
    ops->free(ops, prompt);
    mtla_decoder_state_free(state);
    mtla_decoder_free(dec);
    mtla_encoder_free(enc);
    mtla_weights_free(weights);
    free(prof);
    mtla_ops_cpu_free(cpu);
    mtla_model_dir_close(dir);
    free(features);
    return 0;
}
