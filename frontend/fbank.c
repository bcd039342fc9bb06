/* Kaldi-compatible log-mel filterbank (SPEC.md section 2), equal to
 * torchaudio.compliance.kaldi.fbank with dither 0, snip_edges, povey window, use_power,
 * use_log_fbank and no energy term. Per frame: remove DC -> pre-emphasis -> window -> FFT
 * (FFTW, zero-padded to a power of two) -> power spectrum -> mel bins -> log.
 *
 * Incremental: samples are buffered until a whole frame is present, so frame k always sees
 * samples [k*shift, k*shift + length) whatever the chunking of the input. Arithmetic is in
 * double; the reference computes in float32, which stays far inside the 1e-3 tolerance. */
#include <fftw3.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "frontend/fftw_planner.h"
#include "mtla-st.h"

struct mtla_fbank {
    mtla_fbank_params params;
    size_t frame_length; /* samples per frame (400 at 16 kHz, 25 ms) */
    size_t frame_shift;  /* samples between frames (160) */
    size_t fft_length;   /* frame_length rounded up to a power of two (512) */
    int32_t bins;

    double *window; /* povey window, frame_length */
    /* Mel filters, sparse: bin m covers power bins [mel_first[m], mel_first[m] + mel_count[m])
     * with weights mel_weights[mel_offset[m] ...]. */
    int32_t *mel_first;
    int32_t *mel_count;
    int32_t *mel_offset;
    double *mel_weights;

    double *fft_in;        /* fftw_malloc'ed, fft_length */
    fftw_complex *fft_out; /* fft_length / 2 + 1 */
    fftw_plan plan;

    float *samples; /* scaled input not yet consumed by a frame */
    size_t samples_start;
    size_t samples_end;
    size_t samples_capacity;

    float *frames; /* ready frames, bins floats each */
    size_t frames_start;
    size_t frames_end;
    size_t frames_capacity;
};

pthread_mutex_t mtla_fftw_planner_lock = PTHREAD_MUTEX_INITIALIZER;

mtla_fbank_params mtla_fbank_default_params(void)
{
    mtla_fbank_params p;
    p.sample_rate = 16000;
    p.num_mel_bins = 80;
    p.frame_length_ms = 25.0f;
    p.frame_shift_ms = 10.0f;
    p.preemphasis = 0.97f;
    p.remove_dc_offset = 1;
    p.low_freq = 20.0f;
    p.high_freq = 0.0f;
    p.input_scale = 32768.0f;
    return p;
}

/* The mel scale in float, as Kaldi (BaseFloat) and torchaudio (float32) build their filters:
 * weights computed in double differ from theirs by up to 2e-4 in log energy. */
static float mel_scale(float hz)
{
    return 1127.0f * logf(1.0f + hz / 700.0f);
}

static mtla_status validate(const mtla_fbank_params *p, mtla_error *err)
{
    if (p->sample_rate < 1000 || p->sample_rate > 768000)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "fbank sample_rate %d is out of range",
                         (int)p->sample_rate);
    if (!(p->frame_length_ms > 0.0f) || !(p->frame_shift_ms > 0.0f) ||
        p->frame_length_ms > 1000.0f || p->frame_shift_ms > 1000.0f)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "fbank frame_length_ms %g / frame_shift_ms %g are out of range",
                         p->frame_length_ms, p->frame_shift_ms);
    if (!(p->preemphasis >= 0.0f && p->preemphasis <= 1.0f))
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "fbank preemphasis %g is not in [0, 1]",
                         p->preemphasis);
    if (!(p->input_scale > 0.0f) || !isfinite(p->input_scale))
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "fbank input_scale %g must be positive",
                         p->input_scale);
    double nyquist = 0.5 * p->sample_rate;
    double high = p->high_freq > 0.0f ? p->high_freq : nyquist + p->high_freq;
    if (!(p->low_freq >= 0.0f) || !(high > p->low_freq) || high > nyquist)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "fbank band [%g, %g] Hz is empty or beyond Nyquist (%g Hz)", p->low_freq,
                         high, nyquist);
    return MTLA_OK;
}

static mtla_status build_mel_filters(mtla_fbank *f, mtla_error *err)
{
    const mtla_fbank_params *p = &f->params;
    size_t fft_bins = f->fft_length / 2; /* the Nyquist bin gets no weight, as in Kaldi */
    double nyquist = 0.5 * p->sample_rate;
    double high = p->high_freq > 0.0f ? p->high_freq : nyquist + p->high_freq;
    float bin_width = (float)((double)p->sample_rate / (double)f->fft_length);
    /* Band edges in double, filter shapes in float: the order of torchaudio's get_mel_banks. */
    double mel_low_d = 1127.0 * log(1.0 + p->low_freq / 700.0);
    double mel_high_d = 1127.0 * log(1.0 + high / 700.0);
    float mel_low = (float)mel_low_d;
    float delta = (float)((mel_high_d - mel_low_d) / (p->num_mel_bins + 1));

    f->mel_first = calloc((size_t)f->bins, sizeof(int32_t));
    f->mel_count = calloc((size_t)f->bins, sizeof(int32_t));
    f->mel_offset = calloc((size_t)f->bins, sizeof(int32_t));
    f->mel_weights = calloc((size_t)f->bins * fft_bins, sizeof(double));
    if (!f->mel_first || !f->mel_count || !f->mel_offset || !f->mel_weights)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory building mel filters");

    int32_t offset = 0;
    for (int32_t m = 0; m < f->bins; m++) {
        float left = mel_low + (float)m * delta;
        float center = mel_low + ((float)m + 1.0f) * delta;
        float right = mel_low + ((float)m + 2.0f) * delta;
        int32_t first = -1, count = 0;
        for (size_t k = 0; k < fft_bins; k++) {
            float mel = mel_scale(bin_width * (float)k);
            float up = (mel - left) / (center - left);
            float down = (right - mel) / (right - center);
            float w = fminf(up, down);
            if (w > 0.0) {
                if (first < 0)
                    first = (int32_t)k;
                f->mel_weights[offset + count] = w;
                count = (int32_t)k - first + 1;
            }
        }
        if (count == 0)
            return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                             "fbank: mel bin %d is empty; use fewer mel bins or a longer frame",
                             (int)m);
        f->mel_first[m] = first;
        f->mel_count[m] = count;
        f->mel_offset[m] = offset;
        offset += count;
    }
    return MTLA_OK;
}

mtla_status mtla_fbank_create(const mtla_fbank_params *params, mtla_fbank **out, mtla_error *err)
{
    *out = NULL;
    mtla_fbank_params defaults = mtla_fbank_default_params();
    if (!params)
        params = &defaults;
    mtla_status st = validate(params, err);
    if (st != MTLA_OK)
        return st;
    mtla_fbank *f = calloc(1, sizeof *f);
    if (!f)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory creating fbank");
    f->params = *params;
    /* Kaldi truncates milliseconds to whole samples. */
    f->frame_length = (size_t)(params->sample_rate * (double)params->frame_length_ms * 0.001);
    f->frame_shift = (size_t)(params->sample_rate * (double)params->frame_shift_ms * 0.001);
    f->fft_length = 1;
    while (f->fft_length < f->frame_length)
        f->fft_length *= 2;
    f->bins = params->num_mel_bins;
    if (f->frame_length < 2 || f->frame_shift < 1 || f->bins < 1 ||
        (size_t)f->bins > f->fft_length / 2) {
        mtla_fbank_free(f);
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "fbank: %d mel bins do not fit frames of %zu samples",
                         (int)params->num_mel_bins,
                         (size_t)(params->sample_rate * (double)params->frame_length_ms * 0.001));
    }

    f->window = malloc(f->frame_length * sizeof(double));
    f->fft_in = fftw_malloc(f->fft_length * sizeof(double));
    f->fft_out = fftw_malloc((f->fft_length / 2 + 1) * sizeof(fftw_complex));
    f->samples_capacity = 4 * f->frame_length;
    f->samples = malloc(f->samples_capacity * sizeof(float));
    f->frames_capacity = 64;
    f->frames = malloc(f->frames_capacity * (size_t)f->bins * sizeof(float));
    if (!f->window || !f->fft_in || !f->fft_out || !f->samples || !f->frames) {
        mtla_fbank_free(f);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory creating fbank");
    }
    for (size_t n = 0; n < f->frame_length; n++) {
        double hann = 0.5 - 0.5 * cos(2.0 * M_PI * (double)n / (double)(f->frame_length - 1));
        f->window[n] = pow(hann, 0.85);
    }
    st = build_mel_filters(f, err);
    if (st != MTLA_OK) {
        mtla_fbank_free(f);
        return st;
    }
    pthread_mutex_lock(&mtla_fftw_planner_lock);
    /* FFTW_ESTIMATE: the same plan, hence the same floating-point result, on every run. */
    f->plan = fftw_plan_dft_r2c_1d((int)f->fft_length, f->fft_in, f->fft_out, FFTW_ESTIMATE);
    pthread_mutex_unlock(&mtla_fftw_planner_lock);
    if (!f->plan) {
        mtla_fbank_free(f);
        return mtla_fail(err, MTLA_ERR_INTERNAL, "fbank: FFTW could not plan a %zu-point FFT",
                         f->fft_length);
    }
    *out = f;
    return MTLA_OK;
}

/* Computes the frame starting at `x` (frame_length scaled samples) into `out` (bins). */
static void compute_frame(mtla_fbank *f, const float *x, float *out)
{
    const size_t n = f->frame_length;
    double *d = f->fft_in;
    double mean = 0.0;
    for (size_t i = 0; i < n; i++) {
        d[i] = x[i];
        mean += d[i];
    }
    if (f->params.remove_dc_offset) {
        mean /= (double)n;
        for (size_t i = 0; i < n; i++)
            d[i] -= mean;
    }
    const double pre = f->params.preemphasis;
    if (pre != 0.0) {
        for (size_t i = n - 1; i > 0; i--)
            d[i] -= pre * d[i - 1];
        d[0] -= pre * d[0];
    }
    for (size_t i = 0; i < n; i++)
        d[i] *= f->window[i];
    memset(d + n, 0, (f->fft_length - n) * sizeof(double));
    fftw_execute(f->plan);

    for (int32_t m = 0; m < f->bins; m++) {
        const fftw_complex *spec = f->fft_out + f->mel_first[m];
        const double *w = f->mel_weights + f->mel_offset[m];
        double energy = 0.0;
        for (int32_t k = 0; k < f->mel_count[m]; k++)
            energy += w[k] * (spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1]);
        out[m] = (float)log(fmax(energy, (double)FLT_EPSILON));
    }
}

static int reserve_frames(mtla_fbank *f, size_t more)
{
    if (f->frames_start > 0 && f->frames_start == f->frames_end)
        f->frames_start = f->frames_end = 0;
    if (f->frames_end + more <= f->frames_capacity)
        return 1;
    size_t live = f->frames_end - f->frames_start;
    size_t bins = (size_t)f->bins;
    memmove(f->frames, f->frames + f->frames_start * bins, live * bins * sizeof(float));
    f->frames_start = 0;
    f->frames_end = live;
    if (live + more <= f->frames_capacity)
        return 1;
    size_t capacity = f->frames_capacity;
    while (capacity < live + more)
        capacity *= 2;
    float *grown = realloc(f->frames, capacity * bins * sizeof(float));
    if (!grown)
        return 0;
    f->frames = grown;
    f->frames_capacity = capacity;
    return 1;
}

mtla_status mtla_fbank_accept(mtla_fbank *f, const float *samples, size_t count, mtla_error *err)
{
    if (!f)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "no fbank handle");
    const float scale = f->params.input_scale;
    while (count > 0) {
        /* Keep the unconsumed tail at the front, then append as much input as fits. */
        if (f->samples_start > 0) {
            size_t live = f->samples_end - f->samples_start;
            memmove(f->samples, f->samples + f->samples_start, live * sizeof(float));
            f->samples_start = 0;
            f->samples_end = live;
        }
        size_t take = f->samples_capacity - f->samples_end;
        if (take > count)
            take = count;
        for (size_t i = 0; i < take; i++)
            f->samples[f->samples_end + i] = samples[i] * scale;
        f->samples_end += take;
        samples += take;
        count -= take;

        size_t live = f->samples_end - f->samples_start;
        size_t ready = live < f->frame_length ? 0 : (live - f->frame_length) / f->frame_shift + 1;
        if (ready == 0)
            continue;
        if (!reserve_frames(f, ready))
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory computing features");
        for (size_t k = 0; k < ready; k++) {
            compute_frame(f, f->samples + f->samples_start,
                          f->frames + f->frames_end * (size_t)f->bins);
            f->frames_end++;
            f->samples_start += f->frame_shift;
        }
    }
    return MTLA_OK;
}

size_t mtla_fbank_frames_ready(const mtla_fbank *f)
{
    return f ? f->frames_end - f->frames_start : 0;
}

size_t mtla_fbank_take(mtla_fbank *f, float *frames, size_t max_frames)
{
    if (!f)
        return 0;
    size_t n = f->frames_end - f->frames_start;
    if (n > max_frames)
        n = max_frames;
    size_t bins = (size_t)f->bins;
    memcpy(frames, f->frames + f->frames_start * bins, n * bins * sizeof(float));
    f->frames_start += n;
    return n;
}

int32_t mtla_fbank_num_bins(const mtla_fbank *f)
{
    return f ? f->bins : 0;
}

void mtla_fbank_reset(mtla_fbank *f)
{
    if (!f)
        return;
    f->samples_start = f->samples_end = 0;
    f->frames_start = f->frames_end = 0;
}

void mtla_fbank_free(mtla_fbank *f)
{
    if (!f)
        return;
    if (f->plan) {
        pthread_mutex_lock(&mtla_fftw_planner_lock);
        fftw_destroy_plan(f->plan);
        pthread_mutex_unlock(&mtla_fftw_planner_lock);
    }
    fftw_free(f->fft_in);
    fftw_free(f->fft_out);
    free(f->window);
    free(f->mel_first);
    free(f->mel_count);
    free(f->mel_offset);
    free(f->mel_weights);
    free(f->samples);
    free(f->frames);
    free(f);
}

mtla_status mtla_fbank_compute(const mtla_fbank_params *params, const float *samples, size_t count,
                               float **frames, size_t *num_frames, mtla_error *err)
{
    *frames = NULL;
    *num_frames = 0;
    mtla_fbank *f;
    mtla_status st = mtla_fbank_create(params, &f, err);
    if (st != MTLA_OK)
        return st;
    st = mtla_fbank_accept(f, samples, count, err);
    if (st == MTLA_OK) {
        size_t n = mtla_fbank_frames_ready(f);
        /* One extra row so that zero frames still yields a valid pointer. */
        float *out = malloc((n + 1) * (size_t)f->bins * sizeof(float));
        if (!out) {
            st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory computing features");
        } else {
            *num_frames = mtla_fbank_take(f, out, n);
            *frames = out;
        }
    }
    mtla_fbank_free(f);
    return st;
}
