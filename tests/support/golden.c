#include "golden.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *golden_json(const char *model_dir, const char *file)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fixtures/%s", model_dir, file);
    size_t size;
    unsigned char *text = read_file(path, &size);
    cJSON *json = cJSON_ParseWithLength((const char *)text, size);
    free(text);
    cr_assert(json, "%s is not JSON", path);
    return json;
}

npy_array golden_npy(const char *model_dir, const char *file)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fixtures/%s", model_dir, file);
    return npy_load(path);
}

npy_array golden_features(const mtla_model_dir *dir, const cJSON *meta)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(meta, "input");
    const cJSON *cmvn = cJSON_GetObjectItemCaseSensitive(meta, "cmvn");
    cr_assert(cJSON_IsString(input) && cJSON_IsString(cmvn), "meta.json lacks input or cmvn");
    cr_assert_str_eq(cmvn->valuestring, mtla_cmvn_type_name(dir->config.frontend.cmvn));

    npy_array f = npy_load(fixture(input->valuestring));
    cr_assert_eq(f.cols, (size_t)dir->config.frontend.fbank.num_mel_bins);
    if (strcmp(cmvn->valuestring, "utterance") == 0) {
        mtla_cmvn_utterance(f.data, f.rows, (int32_t)f.cols);
    } else if (strcmp(cmvn->valuestring, "global") == 0) {
        const mtla_tensor *mean = mtla_model_dir_tensor(dir, "frontend.cmvn.mean");
        const mtla_tensor *std = mtla_model_dir_tensor(dir, "frontend.cmvn.std");
        cr_assert(mean && std, "global CMVN without frontend.cmvn tensors");
        mtla_error err = {0};
        cr_assert_eq(mtla_cmvn_global(f.data, f.rows, (int32_t)f.cols, mean->data, std->data, &err),
                     MTLA_OK, "%s", err.message);
    } else {
        cr_assert_str_eq(cmvn->valuestring, "none");
    }
    return f;
}

void golden_expect_tokens(const char *what, const cJSON *want, const int32_t *tokens,
                          int32_t length)
{
    cr_assert_eq(cJSON_GetArraySize(want), length, "%s: %d tokens, oracle has %d", what,
                 (int)length, cJSON_GetArraySize(want));
    for (int32_t i = 0; i < length; i++)
        cr_assert_eq(tokens[i], (int32_t)cJSON_GetArrayItem(want, i)->valuedouble,
                     "%s: token %d is %d, oracle has %d", what, (int)i, (int)tokens[i],
                     (int)cJSON_GetArrayItem(want, i)->valuedouble);
}
