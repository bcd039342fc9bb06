/* Reading the oracle's golden fixtures (tests/golden/models/NAME/fixtures, written by
 * tools/golden/make_golden.py; formats in tools/reference/README.md), shared by the encoder,
 * decoder and CUDA suites. Every helper aborts the current test on a problem. */
#ifndef MTLA_TEST_GOLDEN_H
#define MTLA_TEST_GOLDEN_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "core/model_dir.h"
#include "test_support.h"

/* fixtures/FILE of the model directory `model_dir`, parsed as JSON (cJSON_Delete it). */
cJSON *golden_json(const char *model_dir, const char *file);
/* fixtures/FILE of `model_dir` as a float32 2-D array. */
npy_array golden_npy(const char *model_dir, const char *file);
/* The input features meta.json names, after the CMVN it names (checked against the model's
 * config): what the encoder reads. */
npy_array golden_features(const mtla_model_dir *dir, const cJSON *meta);
/* Asserts that `tokens` equals the JSON array of ids `want`; `what` labels the messages. */
void golden_expect_tokens(const char *what, const cJSON *want, const int32_t *tokens,
                          int32_t length);

#endif
