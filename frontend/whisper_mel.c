/* Whisper's log-mel spectrogram (docs/frontend.md "Whisper log-mel"), equal to
 * whisper.audio.log_mel_spectrogram(x, n_mels) for unpadded input and to training/whisper.py
 * log_mel, which documents the definition:
 *   frames f = 0 .. N/160 - 1 of 400 samples centred on 160 f, the signal reflected at both
 *   ends (inputs shorter than 201 samples are first extended with zeros, as log_mel does, so
 *   that a reflection exists); periodic Hann window; |FFT|^2 of bins 0 .. 200; Slaney mel
 *   filters (librosa.filters.mel(sr=16000, n_fft=400, n_mels), norm "slaney", htk False);
 *   L = log10(max(mel, 1e-10)); L = max(L, max over all frames and bins of L - 8); (L + 4) / 4.
 * Computed in double (whisper runs float32: they agree within ~1e-6); the filters are computed
 * here from the Slaney formula rather than read from whisper's mel_filters.npz. */
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "frontend/fftw_planner.h"
#include "mtla-st.h"

#define WM_SAMPLE_RATE 16000
#define WM_N_FFT 400
#define WM_HOP 160
#define WM_BINS (WM_N_FFT / 2 + 1) /* 201 */
#define WM_PAD (WM_N_FFT / 2)      /* centring: 200 samples reflected each side */

struct mtla_whisper_mel {
    int32_t bins;            /* n_mels */
    double window[WM_N_FFT]; /* periodic Hann */
    /* Sparse filters: mel m covers FFT bins [first[m], first[m] + count[m]) with weights
     * weights[m * WM_BINS ...]. */
    int32_t *first;
    int32_t *count;
    double *weights;
    double *fft_in;        /* fftw_malloc'ed, WM_N_FFT */
    fftw_complex *fft_out; /* WM_BINS */
    fftw_plan plan;
    double power[WM_BINS];
};

/* librosa's Slaney mel scale: linear below 1 kHz, logarithmic above. */
static double hz_to_mel(double hz)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = 15.0;
    const double logstep = log(6.4) / 27.0;
    return hz >= min_log_hz ? min_log_mel + log(hz / min_log_hz) / logstep : hz / f_sp;
}

static double mel_to_hz(double mel)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = 15.0;
    const double logstep = log(6.4) / 27.0;
    return mel >= min_log_mel ? min_log_hz * exp(logstep * (mel - min_log_mel)) : f_sp * mel;
}

/* librosa.filters.mel: triangles between n_mels + 2 points equally spaced in mel from 0 Hz to
 * Nyquist, each scaled by 2 / (its upper edge - its lower edge) in Hz. */
static mtla_status build_filters(mtla_whisper_mel *m, mtla_error *err)
{
    int32_t n = m->bins;
    double *edges = malloc((size_t)(n + 2) * sizeof *edges);
    m->first = calloc((size_t)n, sizeof *m->first);
    m->count = calloc((size_t)n, sizeof *m->count);
    m->weights = calloc((size_t)n * WM_BINS, sizeof *m->weights);
    if (!edges || !m->first || !m->count || !m->weights) {
        free(edges);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory building Whisper mel filters");
    }
    double mel_max = hz_to_mel(WM_SAMPLE_RATE / 2.0);
    for (int32_t i = 0; i < n + 2; i++)
        edges[i] = mel_to_hz(mel_max * i / (n + 1)); /* linspace(0, mel_max, n + 2) */
    for (int32_t b = 0; b < n; b++) {
        double enorm = 2.0 / (edges[b + 2] - edges[b]);
        int32_t first = -1, last = -1;
        for (int32_t k = 0; k < WM_BINS; k++) {
            double f = (double)WM_SAMPLE_RATE / 2.0 * k / (WM_BINS - 1); /* linspace(0, sr/2) */
            double lower = (f - edges[b]) / (edges[b + 1] - edges[b]);
            double upper = (edges[b + 2] - f) / (edges[b + 2] - edges[b + 1]);
            double w = fmax(0.0, fmin(lower, upper)) * enorm;
            m->weights[(size_t)b * WM_BINS + (size_t)k] = w;
            if (w > 0.0) {
                if (first < 0)
                    first = k;
                last = k;
            }
        }
        /* 128 bins over 201 FFT bins leave none empty, but guard the sparse form anyway */
        m->first[b] = first < 0 ? 0 : first;
        m->count[b] = first < 0 ? 0 : last - first + 1;
    }
    free(edges);
    return MTLA_OK;
}

mtla_status mtla_whisper_mel_create(int32_t num_mel_bins, mtla_whisper_mel **out, mtla_error *err)
{
    if (!out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_whisper_mel_create: out is NULL");
    *out = NULL;
    if (num_mel_bins != 80 && num_mel_bins != 128)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "Whisper log-mel has 80 or 128 mel bins (got %d)", (int)num_mel_bins);
    mtla_whisper_mel *m = calloc(1, sizeof *m);
    if (!m)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the Whisper log-mel");
    m->bins = num_mel_bins;
    for (int j = 0; j < WM_N_FFT; j++) /* torch.hann_window(400), periodic */
        m->window[j] = 0.5 - 0.5 * cos(2.0 * M_PI * j / WM_N_FFT);
    mtla_status st = build_filters(m, err);
    if (st != MTLA_OK) {
        mtla_whisper_mel_free(m);
        return st;
    }
    m->fft_in = fftw_malloc(WM_N_FFT * sizeof(double));
    m->fft_out = fftw_malloc(WM_BINS * sizeof(fftw_complex));
    if (m->fft_in && m->fft_out) {
        pthread_mutex_lock(&mtla_fftw_planner_lock);
        m->plan = fftw_plan_dft_r2c_1d(WM_N_FFT, m->fft_in, m->fft_out, FFTW_ESTIMATE);
        pthread_mutex_unlock(&mtla_fftw_planner_lock);
    }
    if (!m->plan) {
        mtla_whisper_mel_free(m);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the Whisper log-mel FFT");
    }
    *out = m;
    return MTLA_OK;
}

void mtla_whisper_mel_free(mtla_whisper_mel *m)
{
    if (!m)
        return;
    if (m->plan) {
        pthread_mutex_lock(&mtla_fftw_planner_lock);
        fftw_destroy_plan(m->plan);
        pthread_mutex_unlock(&mtla_fftw_planner_lock);
    }
    fftw_free(m->fft_in);
    fftw_free(m->fft_out);
    free(m->first);
    free(m->count);
    free(m->weights);
    free(m);
}

size_t mtla_whisper_mel_frames(size_t count)
{
    return count / WM_HOP;
}

int32_t mtla_whisper_mel_num_bins(const mtla_whisper_mel *m)
{
    return m ? m->bins : 0;
}

/* Sample i of the centred signal: x extended with zeros to `length` (>= 201) samples, then
 * reflected (without repeating the edge sample) at both ends, as torch.stft(center=True,
 * pad_mode="reflect") pads. */
static double centred_sample(const float *x, size_t count, int64_t length, int64_t i)
{
    if (i < 0)
        i = -i;
    else if (i >= length)
        i = 2 * (length - 1) - i;
    return i < (int64_t)count ? (double)x[i] : 0.0;
}

void mtla_whisper_mel_compute(mtla_whisper_mel *m, const float *samples, size_t count,
                              float *frames)
{
    size_t n_frames = mtla_whisper_mel_frames(count);
    int64_t length = count > WM_PAD ? (int64_t)count : WM_PAD + 1;
    double top = -INFINITY;
    for (size_t f = 0; f < n_frames; f++) {
        int64_t start = (int64_t)f * WM_HOP - WM_PAD;
        if (start >= 0 && start + WM_N_FFT <= (int64_t)count)
            for (int j = 0; j < WM_N_FFT; j++) /* inside the signal: no reflection */
                m->fft_in[j] = m->window[j] * (double)samples[start + j];
        else
            for (int j = 0; j < WM_N_FFT; j++)
                m->fft_in[j] = m->window[j] * centred_sample(samples, count, length, start + j);
        fftw_execute(m->plan);
        for (int k = 0; k < WM_BINS; k++)
            m->power[k] = m->fft_out[k][0] * m->fft_out[k][0] + m->fft_out[k][1] * m->fft_out[k][1];
        float *row = frames + f * (size_t)m->bins;
        for (int32_t b = 0; b < m->bins; b++) {
            const double *w = m->weights + (size_t)b * WM_BINS;
            double mel = 0.0;
            for (int32_t k = m->first[b]; k < m->first[b] + m->count[b]; k++)
                mel += w[k] * m->power[k];
            double l = log10(fmax(mel, 1e-10));
            row[b] = (float)l;
            if (l > top)
                top = l;
        }
    }
    /* The clamp: the dynamic range is limited to 8 (80 dB) below the input's loudest value. */
    float floor_value = (float)(top - 8.0);
    size_t total = n_frames * (size_t)m->bins;
    for (size_t i = 0; i < total; i++) {
        float l = frames[i] > floor_value ? frames[i] : floor_value;
        frames[i] = (l + 4.0f) / 4.0f;
    }
}
