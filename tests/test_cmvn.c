/* CMVN (SPEC.md section 2): exact small cases, and the statistics of real features. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

Test(cmvn, utterance_exact_values)
{
    /* dim 0: 1, 3 -> mean 2, var 1 -> -1, 1. dim 1: constant -> variance floor, stays 0. */
    float x[] = {1.0f, 5.0f, 3.0f, 5.0f};
    mtla_cmvn_utterance(x, 2, 2);
    cr_expect_float_eq(x[0], -1.0f, 1e-6);
    cr_expect_float_eq(x[2], 1.0f, 1e-6);
    cr_expect_float_eq(x[1], 0.0f, 1e-6);
    cr_expect_float_eq(x[3], 0.0f, 1e-6);
}

Test(cmvn, utterance_normalises_real_features)
{
    npy_array f = npy_load(fixture("tests/golden/frontend/clip_16000_s16.npy"));
    mtla_cmvn_utterance(f.data, f.rows, (int32_t)f.cols);
    for (size_t d = 0; d < f.cols; d++) {
        double sum = 0, sq = 0;
        for (size_t t = 0; t < f.rows; t++) {
            double v = f.data[t * f.cols + d];
            sum += v;
            sq += v * v;
        }
        double mean = sum / f.rows, var = sq / f.rows - mean * mean;
        cr_expect(fabs(mean) < 1e-5, "dim %zu mean %g", d, mean);
        cr_expect(fabs(var - 1.0) < 1e-4, "dim %zu variance %g", d, var);
    }
    npy_free(&f);
}

Test(cmvn, global_uses_the_model_statistics)
{
    float x[] = {1.0f, 10.0f, 3.0f, 20.0f};
    const float mean[] = {2.0f, 10.0f}, std[] = {0.5f, 5.0f};
    cr_assert_eq(mtla_cmvn_global(x, 2, 2, mean, std, NULL), MTLA_OK);
    cr_expect_float_eq(x[0], -2.0f, 1e-6);
    cr_expect_float_eq(x[1], 0.0f, 1e-6);
    cr_expect_float_eq(x[2], 2.0f, 1e-6);
    cr_expect_float_eq(x[3], 2.0f, 1e-6);
}

Test(cmvn, global_rejects_bad_statistics)
{
    float x[] = {1.0f, 2.0f};
    const float mean[] = {0.0f, 0.0f}, zero_std[] = {1.0f, 0.0f}, nan_mean[] = {NAN, 0.0f},
                one[] = {1.0f, 1.0f};
    mtla_error err;
    cr_expect_eq(mtla_cmvn_global(x, 1, 2, mean, zero_std, &err), MTLA_ERR_FORMAT);
    cr_expect(strstr(err.message, "dimension 1"), "%s", err.message);
    cr_expect_eq(mtla_cmvn_global(x, 1, 2, nan_mean, one, &err), MTLA_ERR_FORMAT);
    cr_expect_eq(mtla_cmvn_global(x, 1, 2, NULL, one, &err), MTLA_ERR_INVALID_ARGUMENT);
    /* Nothing was changed by the failed calls. */
    cr_expect_float_eq(x[0], 1.0f, 0);
    cr_expect_float_eq(x[1], 2.0f, 0);
}
