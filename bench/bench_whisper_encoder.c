/* Times the Whisper encoder (encoder/whisper.c) on the CPU backend, one thread: a model
 * directory with a "whisper" encoder, an input length in frames, the best of N runs.
 *   bench_whisper_encoder MODEL_DIR FRAMES [REPS]
 * The features are a fixed pseudo-random log-mel-like pattern (the cost does not depend on
 * the values). Prints "frames S best_ms". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/model_dir.h"
#include "core/ops.h"
#include "core/weights.h"
#include "encoder/encoder.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR FRAMES [REPS]\n", argv[0]);
        return 2;
    }
    int64_t frames = atoll(argv[2]);
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    mtla_error err = {0};
    mtla_model_dir *dir;
    mtla_weights *weights;
    mtla_encoder *enc;
    mtla_ops *ops = mtla_ops_cpu_create(1);
    if (!ops || mtla_model_dir_open(argv[1], &dir, &err) != MTLA_OK ||
        mtla_weights_create(ops, dir, &weights, &err) != MTLA_OK ||
        mtla_encoder_create(ops, weights, &dir->config, &enc, &err) != MTLA_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    size_t bins = (size_t)dir->config.frontend.fbank.num_mel_bins;
    int64_t s = mtla_encoder_output_frames(enc, frames);
    float *x = malloc((size_t)frames * bins * sizeof(float));
    float *out = malloc((size_t)s * (size_t)mtla_encoder_dim(enc) * sizeof(float));
    if (!x || !out)
        return 1;
    unsigned seed = 1;
    for (size_t i = 0; i < (size_t)frames * bins; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 16) & 0x7fff) / 32768.0f - 0.5f;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        if (mtla_encoder_forward(enc, x, frames, out, &err) != MTLA_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double t = now_ms() - t0;
        if (t < best)
            best = t;
    }
    printf("%lld %lld %.1f\n", (long long)frames, (long long)s, best);
    free(x);
    free(out);
    mtla_encoder_free(enc);
    mtla_weights_free(weights);
    mtla_model_dir_close(dir);
    mtla_ops_cpu_free(ops);
    return 0;
}
