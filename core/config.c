/* config.json (docs/model-format.md) with cJSON. Parsing checks the shape of the JSON (keys,
 * types, nothing unknown, nothing that does not apply to the chosen type); validation checks
 * the values on the struct. Either way the first problem found is reported, by JSON path. */
#include "core/config.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"

#define TRY(call)                                                                                  \
    do {                                                                                           \
        mtla_status try_status_ = (call);                                                          \
        if (try_status_ != MTLA_OK)                                                                \
            return try_status_;                                                                    \
    } while (0)

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

enum { PATH_MAX_LEN = 128, VALUE_TEXT_LEN = 64 };

static const char *const cmvn_names[] = {"utterance", "global", "none"};
static const char *const frontend_names[] = {"kaldi_fbank", "whisper"};
static const char *const encoder_names[] = {"transformer", "conformer", "whisper"};
static const char *const positions_names[] = {"sinusoidal", "abs", "rel_pos"};
static const char *const attention_names[] = {"mha", "gqa", "mla", "mtla"};

const char *mtla_cmvn_type_name(mtla_cmvn_type type)
{
    return (unsigned)type < COUNT(cmvn_names) ? cmvn_names[type] : "?";
}

const char *mtla_frontend_type_name(mtla_frontend_type type)
{
    return (unsigned)type < COUNT(frontend_names) ? frontend_names[type] : "?";
}

int64_t mtla_model_config_max_frames(const mtla_model_config *config)
{
    if (config->encoder.type == MTLA_ENCODER_WHISPER)
        return 2 * (int64_t)config->encoder.max_positions;
    return 0;
}

const char *mtla_encoder_type_name(mtla_encoder_type type)
{
    return (unsigned)type < COUNT(encoder_names) ? encoder_names[type] : "?";
}

const char *mtla_positions_name(mtla_positions positions)
{
    return (unsigned)positions < COUNT(positions_names) ? positions_names[positions] : "?";
}

const char *mtla_attention_type_name(mtla_attention_type type)
{
    return (unsigned)type < COUNT(attention_names) ? attention_names[type] : "?";
}

/* ---------------------------------------------------------------- reading JSON values */

/* "parent.key", or "key" at the top level. */
static const char *join(char *buf, const char *parent, const char *key)
{
    if (parent[0])
        snprintf(buf, PATH_MAX_LEN, "%s.%s", parent, key);
    else
        snprintf(buf, PATH_MAX_LEN, "%s", key);
    return buf;
}

/* A short, single-line rendering of a JSON value for "(got ...)". */
static const char *describe(const cJSON *v, char *buf)
{
    if (cJSON_IsNumber(v)) {
        snprintf(buf, VALUE_TEXT_LEN, "%.10g", v->valuedouble);
    } else if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        size_t n = strlen(s), shown = n > 40 ? 40 : n;
        snprintf(buf, VALUE_TEXT_LEN, "\"%.*s%s\"", (int)shown, s, n > shown ? "..." : "");
        for (char *c = buf; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, VALUE_TEXT_LEN, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNull(v)) {
        snprintf(buf, VALUE_TEXT_LEN, "null");
    } else if (cJSON_IsArray(v)) {
        snprintf(buf, VALUE_TEXT_LEN, "an array");
    } else {
        snprintf(buf, VALUE_TEXT_LEN, "an object");
    }
    return buf;
}

static int name_in(const char *name, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* Every member of `obj` must be in `allowed` and appear once. Members in `inapplicable` are
 * known keys that the chosen `type` does not use: they must be absent too, with a message that
 * says so. */
static mtla_status check_keys(const cJSON *obj, const char *parent, const char *const *allowed,
                              size_t allowed_count, const char *const *inapplicable,
                              size_t inapplicable_count, const char *type, mtla_error *err)
{
    char path[PATH_MAX_LEN];
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (!name_in(c->string, allowed, allowed_count)) {
            if (name_in(c->string, inapplicable, inapplicable_count))
                return mtla_fail(err, MTLA_ERR_FORMAT,
                                 "config.json: %s does not apply to type \"%s\" and must be absent",
                                 join(path, parent, c->string), type);
            return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: unknown key %s",
                             join(path, parent, c->string));
        }
        /* Members before c are distinct allowed keys, so this loop is short. */
        for (const cJSON *d = obj->child; d != c; d = d->next)
            if (strcmp(d->string, c->string) == 0)
                return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s appears twice",
                                 join(path, parent, c->string));
    }
    return MTLA_OK;
}

static mtla_status get_member(const cJSON *obj, const char *parent, const char *key,
                              const cJSON **out, mtla_error *err)
{
    char path[PATH_MAX_LEN];
    *out = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!*out)
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s is missing",
                         join(path, parent, key));
    return MTLA_OK;
}

static mtla_status get_object(const cJSON *obj, const char *parent, const char *key,
                              const cJSON **out, mtla_error *err)
{
    char path[PATH_MAX_LEN], value[VALUE_TEXT_LEN];
    TRY(get_member(obj, parent, key, out, err));
    if (!cJSON_IsObject(*out))
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s must be an object (got %s)",
                         join(path, parent, key), describe(*out, value));
    return MTLA_OK;
}

static mtla_status json_int(const cJSON *v, const char *path, int32_t *out, mtla_error *err)
{
    char value[VALUE_TEXT_LEN];
    /* cJSON holds every number as a double: integers are exact up to 2^53, far beyond int32. */
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)INT32_MIN || v->valuedouble > (double)INT32_MAX)
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s must be a 32-bit integer (got %s)",
                         path, describe(v, value));
    *out = (int32_t)v->valuedouble;
    return MTLA_OK;
}

static mtla_status get_int(const cJSON *obj, const char *parent, const char *key, int32_t *out,
                           mtla_error *err)
{
    char path[PATH_MAX_LEN];
    const cJSON *v;
    TRY(get_member(obj, parent, key, &v, err));
    return json_int(v, join(path, parent, key), out, err);
}

/* Leaves *out untouched when the key is absent. */
static mtla_status get_optional_int(const cJSON *obj, const char *parent, const char *key,
                                    int32_t *out, int *present, mtla_error *err)
{
    char path[PATH_MAX_LEN];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *present = v != NULL;
    if (!v)
        return MTLA_OK;
    return json_int(v, join(path, parent, key), out, err);
}

static mtla_status get_double(const cJSON *obj, const char *parent, const char *key, double *out,
                              mtla_error *err)
{
    char path[PATH_MAX_LEN], value[VALUE_TEXT_LEN];
    const cJSON *v;
    TRY(get_member(obj, parent, key, &v, err));
    /* A number too large for a double (1e999) parses as infinity. */
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s must be a finite number (got %s)",
                         join(path, parent, key), describe(v, value));
    *out = v->valuedouble;
    return MTLA_OK;
}

static mtla_status get_float(const cJSON *obj, const char *parent, const char *key, float *out,
                             mtla_error *err)
{
    char path[PATH_MAX_LEN];
    double d = 0.0;
    TRY(get_double(obj, parent, key, &d, err));
    if (fabs(d) > FLT_MAX)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: %s is out of the range of a 32-bit float (got %g)",
                         join(path, parent, key), d);
    *out = (float)d;
    return MTLA_OK;
}

static mtla_status get_bool(const cJSON *obj, const char *parent, const char *key, int *out,
                            mtla_error *err)
{
    char path[PATH_MAX_LEN], value[VALUE_TEXT_LEN];
    const cJSON *v;
    TRY(get_member(obj, parent, key, &v, err));
    if (!cJSON_IsBool(v))
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s must be true or false (got %s)",
                         join(path, parent, key), describe(v, value));
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return MTLA_OK;
}

static mtla_status get_string(const cJSON *obj, const char *parent, const char *key,
                              const char **out, mtla_error *err)
{
    char path[PATH_MAX_LEN], value[VALUE_TEXT_LEN];
    const cJSON *v;
    TRY(get_member(obj, parent, key, &v, err));
    if (!cJSON_IsString(v))
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s must be a string (got %s)",
                         join(path, parent, key), describe(v, value));
    *out = v->valuestring;
    return MTLA_OK;
}

/* A string that must be one of `names`; *out is its index. */
static mtla_status get_enum(const cJSON *obj, const char *parent, const char *key,
                            const char *const *names, size_t count, int *out, mtla_error *err)
{
    char path[PATH_MAX_LEN], value[VALUE_TEXT_LEN], choices[160] = "";
    const cJSON *v;
    TRY(get_member(obj, parent, key, &v, err));
    if (cJSON_IsString(v))
        for (size_t i = 0; i < count; i++)
            if (strcmp(v->valuestring, names[i]) == 0) {
                *out = (int)i;
                return MTLA_OK;
            }
    size_t used = 0;
    for (size_t i = 0; i < count && used < sizeof choices; i++)
        used += (size_t)snprintf(choices + used, sizeof choices - used, "%s\"%s\"",
                                 i == 0 ? "" : (i + 1 == count ? " or " : ", "), names[i]);
    return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s must be %s%s (got %s)",
                     join(path, parent, key), count > 1 ? "one of " : "", choices,
                     describe(v, value));
}

/* ---------------------------------------------------------------- sections */

/* frontend.type "whisper": sample_rate, num_mel_bins, n_fft, hop_length, cmvn. */
static mtla_status parse_whisper_frontend(const cJSON *fe, mtla_frontend_config *out,
                                          const char *const *kaldi_keys, size_t kaldi_count,
                                          mtla_error *err)
{
    static const char *const keys[] = {"type",  "sample_rate", "num_mel_bins",
                                       "n_fft", "hop_length",  "cmvn"};
    const char *p = "frontend";
    mtla_fbank_params *fb = &out->fbank;
    int index;
    TRY(check_keys(fe, p, keys, COUNT(keys), kaldi_keys, kaldi_count, "whisper", err));
    TRY(get_int(fe, p, "sample_rate", &fb->sample_rate, err));
    TRY(get_int(fe, p, "num_mel_bins", &fb->num_mel_bins, err));
    TRY(get_int(fe, p, "n_fft", &out->n_fft, err));
    TRY(get_int(fe, p, "hop_length", &out->hop_length, err));
    TRY(get_enum(fe, p, "cmvn", cmvn_names, COUNT(cmvn_names), &index, err));
    out->cmvn = (mtla_cmvn_type)index;
    if (fb->sample_rate > 0) {
        fb->frame_length_ms = (float)(1000.0 * out->n_fft / fb->sample_rate);
        fb->frame_shift_ms = (float)(1000.0 * out->hop_length / fb->sample_rate);
    }
    return MTLA_OK;
}

static mtla_status parse_frontend(const cJSON *fe, mtla_frontend_config *out, mtla_error *err)
{
    static const char *const keys[] = {
        "type",           "sample_rate", "num_mel_bins", "frame_length_ms",
        "frame_shift_ms", "dither",      "preemphasis",  "remove_dc_offset",
        "window",         "snip_edges",  "low_freq",     "high_freq",
        "input_scale",    "cmvn"};
    static const char *const whisper_keys[] = {"n_fft", "hop_length"};
    static const char *const windows[] = {"povey"};
    const char *p = "frontend";
    mtla_fbank_params *fb = &out->fbank;
    int flag, index;
    double dither;
    /* frontend.type is optional: models written before it existed are Kaldi fbank ones. */
    out->type = MTLA_FRONTEND_KALDI_FBANK;
    if (cJSON_GetObjectItemCaseSensitive(fe, "type")) {
        TRY(get_enum(fe, p, "type", frontend_names, COUNT(frontend_names), &index, err));
        out->type = (mtla_frontend_type)index;
    }
    if (out->type == MTLA_FRONTEND_WHISPER)
        return parse_whisper_frontend(fe, out, keys + 3, COUNT(keys) - 4,
                                      err); /* the Kaldi-only keys */
    TRY(check_keys(fe, p, keys, COUNT(keys), whisper_keys, COUNT(whisper_keys), "kaldi_fbank",
                   err));
    TRY(get_int(fe, p, "sample_rate", &fb->sample_rate, err));
    TRY(get_int(fe, p, "num_mel_bins", &fb->num_mel_bins, err));
    TRY(get_float(fe, p, "frame_length_ms", &fb->frame_length_ms, err));
    TRY(get_float(fe, p, "frame_shift_ms", &fb->frame_shift_ms, err));
    TRY(get_double(fe, p, "dither", &dither, err));
    if (dither != 0.0)
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: frontend.dither must be 0 (got %g)",
                         dither);
    TRY(get_float(fe, p, "preemphasis", &fb->preemphasis, err));
    TRY(get_bool(fe, p, "remove_dc_offset", &flag, err));
    fb->remove_dc_offset = flag;
    TRY(get_enum(fe, p, "window", windows, COUNT(windows), &index, err));
    TRY(get_bool(fe, p, "snip_edges", &flag, err));
    if (!flag)
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: frontend.snip_edges must be true");
    TRY(get_float(fe, p, "low_freq", &fb->low_freq, err));
    TRY(get_float(fe, p, "high_freq", &fb->high_freq, err));
    TRY(get_float(fe, p, "input_scale", &fb->input_scale, err));
    TRY(get_enum(fe, p, "cmvn", cmvn_names, COUNT(cmvn_names), &index, err));
    out->cmvn = (mtla_cmvn_type)index;
    return MTLA_OK;
}

static mtla_status parse_encoder(const cJSON *enc, mtla_encoder_config *out, mtla_error *err)
{
    static const char *const keys[] = {"type",    "layers",     "d_model",   "heads",
                                       "ffn_dim", "subsampler", "positions", "conv_kernel"};
    static const char *const whisper_keys[] = {"type",  "layers",  "d_model",
                                               "heads", "ffn_dim", "max_positions"};
    static const char *const fairseq_only[] = {"subsampler", "positions", "conv_kernel"};
    static const char *const whisper_only[] = {"max_positions"};
    static const char *const sub_keys[] = {"type", "channels", "kernel_sizes"};
    static const char *const sub_types[] = {"conv1d_glu"};
    const char *p = "encoder";
    int index, present;
    char path[PATH_MAX_LEN], value[VALUE_TEXT_LEN];

    TRY(get_enum(enc, p, "type", encoder_names, COUNT(encoder_names), &index, err));
    out->type = (mtla_encoder_type)index;
    if (out->type == MTLA_ENCODER_WHISPER)
        TRY(check_keys(enc, p, whisper_keys, COUNT(whisper_keys), fairseq_only, COUNT(fairseq_only),
                       "whisper", err));
    else
        TRY(check_keys(enc, p, keys, COUNT(keys), whisper_only, COUNT(whisper_only),
                       encoder_names[index], err));
    TRY(get_int(enc, p, "layers", &out->layers, err));
    TRY(get_int(enc, p, "d_model", &out->d_model, err));
    TRY(get_int(enc, p, "heads", &out->heads, err));
    TRY(get_int(enc, p, "ffn_dim", &out->ffn_dim, err));
    if (out->type == MTLA_ENCODER_WHISPER)
        return get_int(enc, p, "max_positions", &out->max_positions, err);

    const cJSON *sub, *kernels;
    const char *sp = "encoder.subsampler";
    TRY(get_object(enc, p, "subsampler", &sub, err));
    TRY(check_keys(sub, sp, sub_keys, COUNT(sub_keys), NULL, 0, NULL, err));
    TRY(get_enum(sub, sp, "type", sub_types, COUNT(sub_types), &index, err));
    TRY(get_int(sub, sp, "channels", &out->subsampler.channels, err));
    TRY(get_member(sub, sp, "kernel_sizes", &kernels, err));
    int n = cJSON_IsArray(kernels) ? cJSON_GetArraySize(kernels) : -1;
    if (n < 1 || n > MTLA_SUBSAMPLER_MAX_LAYERS)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: encoder.subsampler.kernel_sizes must be an array of 1 to "
                         "%d integers (got %s)",
                         MTLA_SUBSAMPLER_MAX_LAYERS, describe(kernels, value));
    out->subsampler.num_layers = n;
    int i = 0;
    for (const cJSON *k = kernels->child; k; k = k->next, i++) {
        snprintf(path, sizeof path, "encoder.subsampler.kernel_sizes[%d]", i);
        TRY(json_int(k, path, &out->subsampler.kernel_sizes[i], err));
    }

    TRY(get_enum(enc, p, "positions", positions_names, COUNT(positions_names), &index, err));
    out->positions = (mtla_positions)index;
    /* The transformer ignores conv_kernel (any integer, or absent; tools/reference accepts the
     * same); docs/model-format.md's example still writes it. */
    out->conv_kernel = 0;
    TRY(get_optional_int(enc, p, "conv_kernel", &out->conv_kernel, &present, err));
    if (out->type == MTLA_ENCODER_TRANSFORMER)
        out->conv_kernel = 0;
    if (!present && out->type == MTLA_ENCODER_CONFORMER)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: encoder.conv_kernel is missing (a conformer needs it)");
    return MTLA_OK;
}

static mtla_status parse_attention(const cJSON *att, mtla_attention_config *out, mtla_error *err)
{
    /* Keys per type (docs/model-format.md). mla and mtla tolerate kv_heads (it must then equal
     * heads) and head_dim (ignored): the example config in the docs gives them to "mtla". */
    static const char *const all_keys[] = {"type",
                                           "heads",
                                           "kv_heads",
                                           "head_dim",
                                           "kv_lora_rank",
                                           "qk_nope_head_dim",
                                           "qk_rope_head_dim",
                                           "v_head_dim",
                                           "down_rate",
                                           "hyper_rank",
                                           "rope_theta"};
    static const char *const mha_keys[] = {"type", "heads", "kv_heads", "head_dim", "rope_theta"};
    static const char *const mla_keys[] = {"type",
                                           "heads",
                                           "kv_heads",
                                           "head_dim",
                                           "kv_lora_rank",
                                           "qk_nope_head_dim",
                                           "qk_rope_head_dim",
                                           "v_head_dim",
                                           "rope_theta"};
    static const char *const mtla_keys[] = {"type",
                                            "heads",
                                            "kv_heads",
                                            "head_dim",
                                            "kv_lora_rank",
                                            "qk_nope_head_dim",
                                            "qk_rope_head_dim",
                                            "v_head_dim",
                                            "down_rate",
                                            "hyper_rank",
                                            "rope_theta"};
    const char *p = "decoder.attention";
    int index, present;
    TRY(get_enum(att, p, "type", attention_names, COUNT(attention_names), &index, err));
    out->type = (mtla_attention_type)index;
    const char *const *keys = mha_keys;
    size_t count = COUNT(mha_keys);
    if (out->type == MTLA_ATTENTION_MLA)
        keys = mla_keys, count = COUNT(mla_keys);
    else if (out->type == MTLA_ATTENTION_MTLA)
        keys = mtla_keys, count = COUNT(mtla_keys);
    TRY(check_keys(att, p, keys, count, all_keys, COUNT(all_keys), attention_names[index], err));

    TRY(get_int(att, p, "heads", &out->heads, err));
    TRY(get_double(att, p, "rope_theta", &out->rope_theta, err));
    if (out->type == MTLA_ATTENTION_MHA || out->type == MTLA_ATTENTION_GQA) {
        TRY(get_int(att, p, "kv_heads", &out->kv_heads, err));
        TRY(get_int(att, p, "head_dim", &out->head_dim, err));
        return MTLA_OK;
    }
    int32_t ignored;
    out->kv_heads = out->heads;
    TRY(get_optional_int(att, p, "kv_heads", &out->kv_heads, &present, err));
    TRY(get_optional_int(att, p, "head_dim", &ignored, &present, err));
    TRY(get_int(att, p, "kv_lora_rank", &out->kv_lora_rank, err));
    TRY(get_int(att, p, "qk_nope_head_dim", &out->qk_nope_head_dim, err));
    TRY(get_int(att, p, "qk_rope_head_dim", &out->qk_rope_head_dim, err));
    TRY(get_int(att, p, "v_head_dim", &out->v_head_dim, err));
    if (out->type == MTLA_ATTENTION_MTLA) {
        TRY(get_int(att, p, "down_rate", &out->down_rate, err));
        TRY(get_int(att, p, "hyper_rank", &out->hyper_rank, err));
    }
    return MTLA_OK;
}

static mtla_status parse_decoder(const cJSON *dec, mtla_decoder_config *out, mtla_error *err)
{
    static const char *const keys[] = {"layers", "d_model", "ffn_dim", "projector_stack",
                                       "attention"};
    const char *p = "decoder";
    const cJSON *att;
    TRY(check_keys(dec, p, keys, COUNT(keys), NULL, 0, NULL, err));
    TRY(get_int(dec, p, "layers", &out->layers, err));
    TRY(get_int(dec, p, "d_model", &out->d_model, err));
    TRY(get_int(dec, p, "ffn_dim", &out->ffn_dim, err));
    TRY(get_int(dec, p, "projector_stack", &out->projector_stack, err));
    TRY(get_object(dec, p, "attention", &att, err));
    return parse_attention(att, &out->attention, err);
}

static mtla_status parse_vocab(const cJSON *v, mtla_vocab_config *out, mtla_error *err)
{
    static const char *const keys[] = {"size", "bos", "pad", "eos", "unk"};
    TRY(check_keys(v, "vocab", keys, COUNT(keys), NULL, 0, NULL, err));
    TRY(get_int(v, "vocab", "size", &out->size, err));
    TRY(get_int(v, "vocab", "bos", &out->bos, err));
    TRY(get_int(v, "vocab", "pad", &out->pad, err));
    TRY(get_int(v, "vocab", "eos", &out->eos, err));
    return get_int(v, "vocab", "unk", &out->unk, err);
}

static mtla_status parse_generation(const cJSON *g, mtla_generation_config *out, mtla_error *err)
{
    static const char *const keys[] = {"beam", "lenpen", "max_len_a", "max_len_b", "min_len"};
    const char *p = "generation";
    int present;
    TRY(check_keys(g, p, keys, COUNT(keys), NULL, 0, NULL, err));
    TRY(get_int(g, p, "beam", &out->beam, err));
    TRY(get_double(g, p, "lenpen", &out->lenpen, err));
    TRY(get_double(g, p, "max_len_a", &out->max_len_a, err));
    TRY(get_int(g, p, "max_len_b", &out->max_len_b, err));
    out->min_len = 1;
    return get_optional_int(g, p, "min_len", &out->min_len, &present, err);
}

static mtla_status get_language(const cJSON *l, const char *key, char *out, mtla_error *err)
{
    const char *s = NULL;
    TRY(get_string(l, "languages", key, &s, err));
    size_t n = strlen(s);
    if (n >= MTLA_LANGUAGE_MAX)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: languages.%s must be at most %d bytes (got %zu)", key,
                         MTLA_LANGUAGE_MAX - 1, n);
    memcpy(out, s, n + 1);
    return MTLA_OK;
}

static mtla_status parse_root(const cJSON *root, mtla_model_config *c, mtla_error *err)
{
    static const char *const keys[] = {"format",     "format_version", "frontend",
                                       "encoder",    "decoder",        "vocab",
                                       "generation", "languages",      "notes"};
    static const char *const language_keys[] = {"source", "target"};
    char value[VALUE_TEXT_LEN];
    const cJSON *v;
    if (!cJSON_IsObject(root))
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: the top level must be an object");
    /* format and format_version first: a later version may have any other keys. */
    TRY(get_member(root, "", "format", &v, err));
    if (!cJSON_IsString(v) || strcmp(v->valuestring, MTLA_FORMAT_NAME) != 0)
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: format must be \"%s\" (got %s)",
                         MTLA_FORMAT_NAME, describe(v, value));
    TRY(get_member(root, "", "format_version", &v, err));
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
        v->valuedouble != MTLA_FORMAT_VERSION)
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED,
                         "config.json: format_version %s is not supported (this reader knows "
                         "version %d)",
                         describe(v, value), MTLA_FORMAT_VERSION);
    TRY(get_int(root, "", "format_version", &c->format_version, err));
    TRY(check_keys(root, "", keys, COUNT(keys), NULL, 0, NULL, err));

    const cJSON *section;
    TRY(get_object(root, "", "frontend", &section, err));
    TRY(parse_frontend(section, &c->frontend, err));
    TRY(get_object(root, "", "encoder", &section, err));
    TRY(parse_encoder(section, &c->encoder, err));
    TRY(get_object(root, "", "decoder", &section, err));
    TRY(parse_decoder(section, &c->decoder, err));
    TRY(get_object(root, "", "vocab", &section, err));
    TRY(parse_vocab(section, &c->vocab, err));
    TRY(get_object(root, "", "generation", &section, err));
    TRY(parse_generation(section, &c->generation, err));
    TRY(get_object(root, "", "languages", &section, err));
    TRY(check_keys(section, "languages", language_keys, COUNT(language_keys), NULL, 0, NULL, err));
    TRY(get_language(section, "source", c->languages.source, err));
    return get_language(section, "target", c->languages.target, err);
}

mtla_status mtla_model_config_parse(const char *text, size_t size, mtla_model_config *config,
                                    mtla_error *err)
{
    if (!config)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "config.json: no config to fill");
    memset(config, 0, sizeof *config);
    if (!text)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "config.json: no text to parse");
    size_t bad_at;
    if (!mtla_utf8_valid(text, size, &bad_at))
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json is not valid UTF-8 (byte %zu)", bad_at);
    /* RFC 8259 forbids a byte order mark; cJSON would skip it silently. */
    if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json starts with a byte order mark");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + size ? (size_t)(end - text) : 0;
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json is not valid JSON (near byte %zu)", at);
    }
    /* Only whitespace may follow the value (cJSON stops after the first one). */
    for (size_t i = (size_t)(end - text); i < size; i++)
        if (!strchr(" \t\r\n", text[i]) || text[i] == '\0') {
            cJSON_Delete(root);
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "config.json is not valid JSON (data after the object at byte %zu)",
                             i);
        }
    mtla_status st = parse_root(root, config, err);
    cJSON_Delete(root);
    if (st == MTLA_OK)
        st = mtla_model_config_validate(config, err);
    if (st != MTLA_OK)
        memset(config, 0, sizeof *config);
    return st;
}

/* ---------------------------------------------------------------- validation */

static mtla_status int_in(const char *path, int32_t v, int32_t lo, int32_t hi, mtla_error *err)
{
    if (v >= lo && v <= hi)
        return MTLA_OK;
    if (hi == INT32_MAX)
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s must be an integer >= %d (got %d)",
                         path, (int)lo, (int)v);
    return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: %s must be an integer in %d..%d (got %d)",
                     path, (int)lo, (int)hi, (int)v);
}

static mtla_status odd_in(const char *path, int32_t v, int32_t hi, mtla_error *err)
{
    if (v >= 1 && v <= hi && v % 2 == 1)
        return MTLA_OK;
    return mtla_fail(err, MTLA_ERR_FORMAT,
                     "config.json: %s must be an odd integer in 1..%d (got %d)", path, (int)hi,
                     (int)v);
}

static mtla_status even_in(const char *path, int32_t v, int32_t hi, mtla_error *err)
{
    if (v >= 2 && v <= hi && v % 2 == 0)
        return MTLA_OK;
    return mtla_fail(err, MTLA_ERR_FORMAT,
                     "config.json: %s must be an even integer in 2..%d (got %d)", path, (int)hi,
                     (int)v);
}

/* The bounds mtla_fbank_create (frontend/fbank.c) enforces, so that a model that loads can
 * always build its frontend; sample_rate is further pinned to 16000 by the format. */
/* Whisper's log-mel is defined for its own constants only (frontend/whisper_mel.c). */
static mtla_status validate_whisper_frontend(const mtla_frontend_config *f, mtla_error *err)
{
    const mtla_fbank_params *p = &f->fbank;
    if (p->num_mel_bins != 80 && p->num_mel_bins != 128)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.num_mel_bins must be 80 or 128 for type "
                         "\"whisper\" (got %d)",
                         (int)p->num_mel_bins);
    if (f->n_fft != 400)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.n_fft must be 400 for type \"whisper\" (got %d)",
                         (int)f->n_fft);
    if (f->hop_length != 160)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.hop_length must be 160 for type \"whisper\" (got "
                         "%d)",
                         (int)f->hop_length);
    if (f->cmvn != MTLA_CMVN_NONE)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.cmvn must be \"none\" for type \"whisper\" (got "
                         "\"%s\")",
                         mtla_cmvn_type_name(f->cmvn));
    return MTLA_OK;
}

static mtla_status validate_frontend(const mtla_frontend_config *f, mtla_error *err)
{
    const mtla_fbank_params *p = &f->fbank;
    if ((unsigned)f->type >= COUNT(frontend_names))
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: frontend.type has no valid value");
    if (p->sample_rate != 16000)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.sample_rate must be 16000 (got %d)",
                         (int)p->sample_rate);
    if (f->type == MTLA_FRONTEND_WHISPER)
        return validate_whisper_frontend(f, err);
    TRY(int_in("frontend.num_mel_bins", p->num_mel_bins, 1, 256, err));
    if (!(p->frame_length_ms > 0.0f && p->frame_length_ms <= 1000.0f))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.frame_length_ms must be in (0, 1000] (got %g)",
                         p->frame_length_ms);
    if (!(p->frame_shift_ms > 0.0f && p->frame_shift_ms <= 1000.0f))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.frame_shift_ms must be in (0, 1000] (got %g)",
                         p->frame_shift_ms);
    /* Kaldi truncates milliseconds to whole samples, as fbank.c does. */
    size_t length = (size_t)(p->sample_rate * (double)p->frame_length_ms * 0.001);
    size_t shift = (size_t)(p->sample_rate * (double)p->frame_shift_ms * 0.001);
    size_t fft = 1;
    while (fft < length)
        fft *= 2;
    if (length < 2)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.frame_length_ms %g is shorter than two samples",
                         p->frame_length_ms);
    if (shift < 1)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.frame_shift_ms %g is shorter than one sample",
                         p->frame_shift_ms);
    if ((size_t)p->num_mel_bins > fft / 2)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.num_mel_bins %d do not fit frames of %zu samples",
                         (int)p->num_mel_bins, length);
    if (!(p->preemphasis >= 0.0f && p->preemphasis <= 1.0f))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.preemphasis must be in [0, 1] (got %g)",
                         p->preemphasis);
    if (p->remove_dc_offset != 0 && p->remove_dc_offset != 1)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.remove_dc_offset must be true or false");
    if (!(p->low_freq >= 0.0f) || !isfinite(p->low_freq))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.low_freq must be a number >= 0 (got %g)",
                         p->low_freq);
    double nyquist = 0.5 * p->sample_rate;
    double high = p->high_freq > 0.0f ? p->high_freq : nyquist + p->high_freq;
    if (!(high > p->low_freq) || high > nyquist)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.low_freq %g and frontend.high_freq %g give the "
                         "band [%g, %g] Hz, which is empty or beyond Nyquist (%g Hz)",
                         p->low_freq, p->high_freq, p->low_freq, high, nyquist);
    if (!(p->input_scale > 0.0f) || !isfinite(p->input_scale))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: frontend.input_scale must be a positive number (got %g)",
                         p->input_scale);
    if ((unsigned)f->cmvn >= COUNT(cmvn_names))
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: frontend.cmvn has no valid value");
    return MTLA_OK;
}

static mtla_status validate_encoder(const mtla_encoder_config *e, mtla_error *err)
{
    char path[PATH_MAX_LEN];
    if ((unsigned)e->type >= COUNT(encoder_names))
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: encoder.type has no valid value");
    TRY(int_in("encoder.layers", e->layers, 1, MTLA_CONFIG_MAX_LAYERS, err));
    TRY(int_in("encoder.d_model", e->d_model, 1, MTLA_CONFIG_MAX_DIM, err));
    TRY(int_in("encoder.heads", e->heads, 1, MTLA_CONFIG_MAX_DIM, err));
    TRY(int_in("encoder.ffn_dim", e->ffn_dim, 1, MTLA_CONFIG_MAX_DIM, err));
    if (e->d_model % e->heads != 0)
        return mtla_fail(
            err, MTLA_ERR_FORMAT,
            "config.json: encoder.d_model (%d) must be divisible by encoder.heads (%d)",
            (int)e->d_model, (int)e->heads);
    if (e->type == MTLA_ENCODER_WHISPER)
        return int_in("encoder.max_positions", e->max_positions, 1, MTLA_CONFIG_MAX_POSITIONS, err);
    TRY(even_in("encoder.subsampler.channels", e->subsampler.channels, MTLA_CONFIG_MAX_DIM, err));
    TRY(int_in("encoder.subsampler.kernel_sizes (count)", e->subsampler.num_layers, 1,
               MTLA_SUBSAMPLER_MAX_LAYERS, err));
    for (int32_t i = 0; i < e->subsampler.num_layers; i++) {
        snprintf(path, sizeof path, "encoder.subsampler.kernel_sizes[%d]", (int)i);
        TRY(odd_in(path, e->subsampler.kernel_sizes[i], MTLA_CONFIG_MAX_DIM - 1, err));
    }
    if (e->type == MTLA_ENCODER_TRANSFORMER) {
        if (e->positions != MTLA_POSITIONS_SINUSOIDAL)
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "config.json: encoder.positions must be \"sinusoidal\" for a "
                             "transformer (got \"%s\")",
                             mtla_positions_name(e->positions));
        /* conv_kernel is ignored by the transformer (0 on the struct). */
    } else {
        if (e->positions != MTLA_POSITIONS_ABS && e->positions != MTLA_POSITIONS_REL_POS)
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "config.json: encoder.positions must be \"abs\" or \"rel_pos\" for a "
                             "conformer (got \"%s\")",
                             mtla_positions_name(e->positions));
        TRY(odd_in("encoder.conv_kernel", e->conv_kernel, MTLA_CONFIG_MAX_DIM - 1, err));
    }
    return MTLA_OK;
}

static mtla_status validate_attention(const mtla_attention_config *a, mtla_error *err)
{
    const char *type = mtla_attention_type_name(a->type);
    if ((unsigned)a->type >= COUNT(attention_names))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: decoder.attention.type has no valid value");
    TRY(int_in("decoder.attention.heads", a->heads, 1, MTLA_CONFIG_MAX_DIM, err));
    if (!(a->rope_theta > 0.0) || !isfinite(a->rope_theta))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: decoder.attention.rope_theta must be a positive number "
                         "(got %g)",
                         a->rope_theta);
    switch (a->type) {
    case MTLA_ATTENTION_GQA:
        /* SPEC.md 7: gqa has fewer K/V heads than query heads; 1 is MQA. */
        if (a->kv_heads < 1 || a->kv_heads >= a->heads || a->heads % a->kv_heads != 0)
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "config.json: decoder.attention.kv_heads must divide heads (%d) and "
                             "be smaller than it for gqa (got %d)",
                             (int)a->heads, (int)a->kv_heads);
        TRY(even_in("decoder.attention.head_dim", a->head_dim, MTLA_CONFIG_MAX_HEAD_DIM, err));
        break;
    case MTLA_ATTENTION_MHA:
    case MTLA_ATTENTION_MLA:
    case MTLA_ATTENTION_MTLA:
        if (a->kv_heads != a->heads)
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "config.json: decoder.attention.kv_heads must equal heads (%d) for "
                             "%s (got %d)",
                             (int)a->heads, type, (int)a->kv_heads);
        if (a->type == MTLA_ATTENTION_MHA) {
            TRY(even_in("decoder.attention.head_dim", a->head_dim, MTLA_CONFIG_MAX_HEAD_DIM, err));
            break;
        }
        TRY(int_in("decoder.attention.kv_lora_rank", a->kv_lora_rank, 1, MTLA_CONFIG_MAX_HEAD_DIM,
                   err));
        TRY(int_in("decoder.attention.qk_nope_head_dim", a->qk_nope_head_dim, 1,
                   MTLA_CONFIG_MAX_HEAD_DIM, err));
        TRY(even_in("decoder.attention.qk_rope_head_dim", a->qk_rope_head_dim,
                    MTLA_CONFIG_MAX_HEAD_DIM, err));
        TRY(int_in("decoder.attention.v_head_dim", a->v_head_dim, 1, MTLA_CONFIG_MAX_HEAD_DIM,
                   err));
        if (a->type == MTLA_ATTENTION_MTLA) {
            TRY(int_in("decoder.attention.down_rate", a->down_rate, 1, INT32_MAX, err));
            TRY(int_in("decoder.attention.hyper_rank", a->hyper_rank, 1, MTLA_CONFIG_MAX_DIM, err));
        }
        break;
    }
    return MTLA_OK;
}

static mtla_status validate_decoder(const mtla_decoder_config *d, mtla_error *err)
{
    TRY(int_in("decoder.layers", d->layers, 1, MTLA_CONFIG_MAX_LAYERS, err));
    TRY(even_in("decoder.d_model", d->d_model, MTLA_CONFIG_MAX_DIM, err));
    TRY(int_in("decoder.ffn_dim", d->ffn_dim, 1, MTLA_CONFIG_MAX_DIM, err));
    TRY(int_in("decoder.projector_stack", d->projector_stack, 1, MTLA_CONFIG_MAX_DIM, err));
    return validate_attention(&d->attention, err);
}

static mtla_status validate_vocab(const mtla_vocab_config *v, mtla_error *err)
{
    TRY(int_in("vocab.size", v->size, 5, MTLA_CONFIG_MAX_VOCAB, err));
    TRY(int_in("vocab.bos", v->bos, 0, v->size - 1, err));
    TRY(int_in("vocab.pad", v->pad, 0, v->size - 1, err));
    TRY(int_in("vocab.eos", v->eos, 0, v->size - 1, err));
    TRY(int_in("vocab.unk", v->unk, 0, v->size - 1, err));
    if (v->bos == v->pad || v->bos == v->eos || v->bos == v->unk || v->pad == v->eos ||
        v->pad == v->unk || v->eos == v->unk)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: vocab.bos, vocab.pad, vocab.eos and vocab.unk must be "
                         "distinct (got %d, %d, %d, %d)",
                         (int)v->bos, (int)v->pad, (int)v->eos, (int)v->unk);
    return MTLA_OK;
}

static mtla_status validate_generation(const mtla_generation_config *g, mtla_error *err)
{
    TRY(int_in("generation.beam", g->beam, 1, INT32_MAX, err));
    if (!isfinite(g->lenpen))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: generation.lenpen must be a finite number (got %g)",
                         g->lenpen);
    if (!(g->max_len_a >= 0.0) || !isfinite(g->max_len_a))
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: generation.max_len_a must be a number >= 0 (got %g)",
                         g->max_len_a);
    TRY(int_in("generation.max_len_b", g->max_len_b, 1, INT32_MAX, err));
    return int_in("generation.min_len", g->min_len, 1, INT32_MAX, err);
}

static mtla_status validate_language(const char *key, const char *value, mtla_error *err)
{
    if (memchr(value, '\0', MTLA_LANGUAGE_MAX) == NULL)
        return mtla_fail(err, MTLA_ERR_FORMAT, "config.json: languages.%s is not terminated", key);
    if (value[0] == '\0')
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: languages.%s must be a non-empty string", key);
    return MTLA_OK;
}

mtla_status mtla_model_config_validate(const mtla_model_config *c, mtla_error *err)
{
    if (!c)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "config.json: no config to validate");
    if (c->format_version != MTLA_FORMAT_VERSION)
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED,
                         "config.json: format_version %d is not supported (this reader knows "
                         "version %d)",
                         (int)c->format_version, MTLA_FORMAT_VERSION);
    TRY(validate_frontend(&c->frontend, err));
    TRY(validate_encoder(&c->encoder, err));
    /* The Whisper encoder was trained on Whisper's features and nothing else. */
    if (c->encoder.type == MTLA_ENCODER_WHISPER && c->frontend.type != MTLA_FRONTEND_WHISPER)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "config.json: encoder.type \"whisper\" needs frontend.type \"whisper\" "
                         "(got \"%s\")",
                         mtla_frontend_type_name(c->frontend.type));
    TRY(validate_decoder(&c->decoder, err));
    TRY(validate_vocab(&c->vocab, err));
    TRY(validate_generation(&c->generation, err));
    TRY(validate_language("source", c->languages.source, err));
    return validate_language("target", c->languages.target, err);
}
