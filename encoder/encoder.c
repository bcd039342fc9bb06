/* The encoder's public entry points (encoder/encoder.h): weight binding, the workspace, the
 * order of the stages (SPEC.md 3, docs/architecture.md 2.1 to 2.4) and the projector
 * (docs/architecture.md 3.1). The stages themselves live in subsampler.c, positions.c,
 * attention.c, transformer.c and conformer.c. */
#include "encoder/encoder.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "encoder/encoder_internal.h"

struct mtla_encoder {
    const mtla_ops *ops;
    mtla_encoder_config config; /* E = d_model, H = heads, F = ffn_dim */
    int32_t num_mel_bins;
    int32_t prompt_dim;      /* D: decoder.d_model */
    int32_t projector_stack; /* k */

    enc_subsampler subsampler;                 /* encoder.subsample.conv_layers.* */
    enc_transformer_layer *transformer_layers; /* encoder.transformer_layers.* */
    enc_norm layer_norm;                       /* transformer: encoder.layer_norm */
    enc_linear linear;                         /* conformer: encoder.linear [E, E] */
    enc_conformer_layer *conformer_layers;     /* encoder.conformer_layers.* */
    enc_whisper whisper;                       /* whisper: encoder.conv1, conv2, ... */
    enc_linear projector1;                     /* decoder.projector.linear1 [D/2, k E] */
    enc_linear projector2;                     /* decoder.projector.linear2 [D, D/2] */

    /* Grown on demand, kept between calls. */
    float *work; /* backend memory, carved into `ws` for the current input length */
    size_t work_count;
    enc_workspace ws;
    float *host_table; /* position table staging for device backends */
    size_t host_table_count;
    float *projector_hidden; /* backend memory, [S, D/2] */
    size_t projector_hidden_count;
};

/* ---------------------------------------------------------------- weight binding */

/* Collects the first failure so that binding code reads as a plain list of tensors. */
typedef struct binder {
    mtla_weights *weights;
    mtla_status status;
    mtla_error error;
} binder;

/* Formats a tensor name (or a prefix of one) into name[MTLA_TENSOR_NAME_MAX]; 0 on failure. */
static int format_name(binder *b, char *name, const char *format, va_list args)
{
    if (b->status != MTLA_OK)
        return 0;
    int n = vsnprintf(name, MTLA_TENSOR_NAME_MAX, format, args);
    if (n < 0 || n >= MTLA_TENSOR_NAME_MAX) {
        b->status = mtla_fail(&b->error, MTLA_ERR_INTERNAL, "tensor name too long: '%s...'", name);
        return 0;
    }
    return 1;
}

static const float *bind(binder *b, const char *format, ...) MTLA_PRINTF(2, 3);
static const float *bind(binder *b, const char *format, ...)
{
    char name[MTLA_TENSOR_NAME_MAX];
    va_list args;
    va_start(args, format);
    int ok = format_name(b, name, format, args);
    va_end(args);
    if (!ok)
        return NULL;
    const float *data = mtla_weights_get(b->weights, &b->error, "%s", name);
    if (!data)
        b->status = b->error.status;
    return data;
}

/* A matrix only ops->linear reads, in the translator's dtype. */
static mtla_matrix bind_matrix(binder *b, const char *format, ...) MTLA_PRINTF(2, 3);
static mtla_matrix bind_matrix(binder *b, const char *format, ...)
{
    char name[MTLA_TENSOR_NAME_MAX];
    mtla_matrix m = {0};
    va_list args;
    va_start(args, format);
    int ok = format_name(b, name, format, args);
    va_end(args);
    if (!ok)
        return m;
    m = mtla_weights_matrix(b->weights, &b->error, "%s", name);
    if (!m.data)
        b->status = b->error.status;
    return m;
}

/* {prefix}.weight and, with_bias, {prefix}.bias */
static enc_linear bind_linear(binder *b, int with_bias, const char *format, ...) MTLA_PRINTF(3, 4);
static enc_linear bind_linear(binder *b, int with_bias, const char *format, ...)
{
    char prefix[MTLA_TENSOR_NAME_MAX];
    enc_linear l = {0};
    va_list args;
    va_start(args, format);
    int ok = format_name(b, prefix, format, args);
    va_end(args);
    if (ok) {
        l.weight = bind_matrix(b, "%s.weight", prefix);
        l.bias = with_bias ? bind(b, "%s.bias", prefix) : NULL;
    }
    return l;
}

/* LayerNorm {prefix}.weight (gamma) and {prefix}.bias (beta) */
static enc_norm bind_norm(binder *b, const char *format, ...) MTLA_PRINTF(2, 3);
static enc_norm bind_norm(binder *b, const char *format, ...)
{
    enc_norm n = {0};
    char prefix[MTLA_TENSOR_NAME_MAX];
    va_list args;
    va_start(args, format);
    int ok = format_name(b, prefix, format, args);
    va_end(args);
    if (ok) {
        n.weight = bind(b, "%s.weight", prefix);
        n.bias = bind(b, "%s.bias", prefix);
    }
    return n;
}

/* {p}.self_attn. fairseq MultiheadAttention names its projections {q,k,v,out}_proj; ESPnet's
 * RelPositionMultiHeadedAttention linear_{q,k,v,out}, plus linear_pos and pos_bias_u/v. */
static enc_attention bind_attention(binder *b, const char *p, int espnet_rel_pos)
{
    enc_attention a = {0};
    if (!espnet_rel_pos) {
        a.q = bind_linear(b, 1, "%s.self_attn.q_proj", p);
        a.k = bind_linear(b, 1, "%s.self_attn.k_proj", p);
        a.v = bind_linear(b, 1, "%s.self_attn.v_proj", p);
        a.out = bind_linear(b, 1, "%s.self_attn.out_proj", p);
        return a;
    }
    a.q = bind_linear(b, 1, "%s.self_attn.linear_q", p);
    a.k = bind_linear(b, 1, "%s.self_attn.linear_k", p);
    a.v = bind_linear(b, 1, "%s.self_attn.linear_v", p);
    a.out = bind_linear(b, 1, "%s.self_attn.linear_out", p);
    a.pos_weight = bind_matrix(b, "%s.self_attn.linear_pos.weight", p);
    a.pos_bias_u = bind(b, "%s.self_attn.pos_bias_u", p);
    a.pos_bias_v = bind(b, "%s.self_attn.pos_bias_v", p);
    return a;
}

static void bind_transformer_layer(binder *b, int32_t l, enc_transformer_layer *layer)
{
    char p[MTLA_TENSOR_NAME_MAX];
    snprintf(p, sizeof p, "encoder.transformer_layers.%d", (int)l);
    layer->self_attn_layer_norm = bind_norm(b, "%s.self_attn_layer_norm", p);
    layer->self_attn = bind_attention(b, p, 0);
    layer->final_layer_norm = bind_norm(b, "%s.final_layer_norm", p);
    layer->fc1 = bind_linear(b, 1, "%s.fc1", p);
    layer->fc2 = bind_linear(b, 1, "%s.fc2", p);
}

static void bind_whisper_layer(binder *b, int32_t l, enc_whisper_layer *layer)
{
    char p[MTLA_TENSOR_NAME_MAX];
    snprintf(p, sizeof p, "encoder.layers.%d", (int)l);
    layer->self_attn_layer_norm = bind_norm(b, "%s.self_attn_layer_norm", p);
    layer->self_attn.q = bind_linear(b, 1, "%s.self_attn.q_proj", p);
    layer->self_attn.k = bind_linear(b, 0, "%s.self_attn.k_proj", p);
    layer->self_attn.v = bind_linear(b, 1, "%s.self_attn.v_proj", p);
    layer->self_attn.out = bind_linear(b, 1, "%s.self_attn.out_proj", p);
    layer->final_layer_norm = bind_norm(b, "%s.final_layer_norm", p);
    layer->fc1 = bind_linear(b, 1, "%s.fc1", p);
    layer->fc2 = bind_linear(b, 1, "%s.fc2", p);
}

static void bind_whisper(binder *b, const mtla_encoder_config *c, enc_whisper *w)
{
    w->conv1_weight = bind(b, "encoder.conv1.weight");
    w->conv1_bias = bind(b, "encoder.conv1.bias");
    w->conv2_weight = bind(b, "encoder.conv2.weight");
    w->conv2_bias = bind(b, "encoder.conv2.bias");
    w->embed_positions = bind(b, "encoder.embed_positions.weight");
    for (int32_t l = 0; l < c->layers; l++)
        bind_whisper_layer(b, l, &w->layers[l]);
    w->layer_norm = bind_norm(b, "encoder.layer_norm");
}

static enc_conformer_ffn bind_conformer_ffn(binder *b, const char *p, const char *ffn)
{
    enc_conformer_ffn f;
    f.layer_norm = bind_norm(b, "%s.%s.layer_norm", p, ffn);
    f.w_1 = bind_linear(b, 1, "%s.%s.w_1", p, ffn);
    f.w_2 = bind_linear(b, 1, "%s.%s.w_2", p, ffn);
    return f;
}

/* The host copy of tensor {p}.{leaf} of the model (for folding), or NULL with b->status set. */
static const float *host_tensor(binder *b, const char *p, const char *leaf)
{
    if (b->status != MTLA_OK)
        return NULL;
    const mtla_tensor *t = mtla_model_dir_tensorf(mtla_weights_model(b->weights), "%s.%s", p, leaf);
    if (!t) {
        b->status = mtla_fail(&b->error, MTLA_ERR_INTERNAL, "model has no tensor '%s.%s'", p, leaf);
        return NULL;
    }
    return t->data;
}

/* {p}.conv_module.depthwise_conv.weight [E, 1, K] and {p}.conv_module.batch_norm.{weight,
 * bias, running_mean, running_var} become one depthwise weight and a bias (inference
 * BatchNorm). fold_w [E K] and fold_b [E] are host scratch. */
static void bind_folded_depthwise(binder *b, const char *p, int64_t dim, int64_t kernel,
                                  float *fold_w, float *fold_b, enc_conformer_conv *c)
{
    const float *w = host_tensor(b, p, "conv_module.depthwise_conv.weight");
    const float *gamma = host_tensor(b, p, "conv_module.batch_norm.weight");
    const float *beta = host_tensor(b, p, "conv_module.batch_norm.bias");
    const float *mean = host_tensor(b, p, "conv_module.batch_norm.running_mean");
    const float *var = host_tensor(b, p, "conv_module.batch_norm.running_var");
    if (b->status != MTLA_OK)
        return;
    enc_fold_batch_norm(w, gamma, beta, mean, var, dim, kernel, fold_w, fold_b);
    c->depthwise_conv = mtla_weights_add(b->weights, fold_w, (size_t)(dim * kernel), &b->error);
    c->depthwise_bias =
        c->depthwise_conv ? mtla_weights_add(b->weights, fold_b, (size_t)dim, &b->error) : NULL;
    if (!c->depthwise_conv || !c->depthwise_bias)
        b->status = b->error.status;
}

static void bind_conformer_layer(binder *b, int32_t l, int rel_pos, int64_t dim, int64_t kernel,
                                 float *fold_w, float *fold_b, enc_conformer_layer *layer)
{
    char p[MTLA_TENSOR_NAME_MAX];
    snprintf(p, sizeof p, "encoder.conformer_layers.%d", (int)l);
    layer->ffn1 = bind_conformer_ffn(b, p, "ffn1");
    layer->self_attn_layer_norm = bind_norm(b, "%s.self_attn_layer_norm", p);
    layer->self_attn = bind_attention(b, p, rel_pos);
    enc_conformer_conv *c = &layer->conv_module;
    c->layer_norm = bind_norm(b, "%s.conv_module.layer_norm", p);
    c->pointwise_conv1 = bind_matrix(b, "%s.conv_module.pointwise_conv1.weight", p);
    bind_folded_depthwise(b, p, dim, kernel, fold_w, fold_b, c);
    c->pointwise_conv2 = bind_matrix(b, "%s.conv_module.pointwise_conv2.weight", p);
    layer->ffn2 = bind_conformer_ffn(b, p, "ffn2");
    layer->final_layer_norm = bind_norm(b, "%s.final_layer_norm", p);
}

static mtla_status bind_all(mtla_encoder *enc, mtla_weights *weights, mtla_error *err)
{
    const mtla_encoder_config *c = &enc->config;
    binder b = {.weights = weights, .status = MTLA_OK};

    for (int32_t i = 0; i < enc->subsampler.layers; i++) {
        enc->subsampler.weight[i] = bind(&b, "encoder.subsample.conv_layers.%d.weight", (int)i);
        enc->subsampler.bias[i] = bind(&b, "encoder.subsample.conv_layers.%d.bias", (int)i);
    }

    if (c->type == MTLA_ENCODER_WHISPER) {
        bind_whisper(&b, c, &enc->whisper);
    } else if (c->type == MTLA_ENCODER_TRANSFORMER) {
        for (int32_t l = 0; l < c->layers; l++)
            bind_transformer_layer(&b, l, &enc->transformer_layers[l]);
        enc->layer_norm = bind_norm(&b, "encoder.layer_norm");
    } else {
        enc->linear = bind_linear(&b, 1, "encoder.linear");
        int64_t dim = c->d_model, kernel = c->conv_kernel;
        float *fold_w = malloc((size_t)(dim * kernel) * sizeof(float));
        float *fold_b = malloc((size_t)dim * sizeof(float));
        if (!fold_w || !fold_b)
            b.status = mtla_fail(&b.error, MTLA_ERR_NO_MEMORY,
                                 "out of memory folding the conformer BatchNorm");
        for (int32_t l = 0; l < c->layers && b.status == MTLA_OK; l++)
            bind_conformer_layer(&b, l, c->positions == MTLA_POSITIONS_REL_POS, dim, kernel, fold_w,
                                 fold_b, &enc->conformer_layers[l]);
        free(fold_w);
        free(fold_b);
    }

    enc->projector1 = bind_linear(&b, 1, "decoder.projector.linear1");
    enc->projector2 = bind_linear(&b, 1, "decoder.projector.linear2");

    if (b.status != MTLA_OK)
        return mtla_fail(err, b.status, "encoder: %s", b.error.message);
    return MTLA_OK;
}

/* ---------------------------------------------------------------- create, free */

mtla_status mtla_encoder_create(const mtla_ops *ops, mtla_weights *weights,
                                const mtla_model_config *config, mtla_encoder **out,
                                mtla_error *err)
{
    if (!out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_encoder_create: out is NULL");
    *out = NULL;
    if (!ops || !weights || !config)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "mtla_encoder_create needs ops, weights and a config");
    mtla_status st = mtla_model_config_validate(config, err);
    if (st != MTLA_OK)
        return st;
    const mtla_encoder_config *c = &config->encoder;
    /* fairseq's sinusoid divides by d/2 - 1 */
    if (c->type != MTLA_ENCODER_WHISPER && c->positions != MTLA_POSITIONS_REL_POS && c->d_model < 4)
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED,
                         "encoder.d_model must be at least 4 for sinusoidal positions (got %d)",
                         (int)c->d_model);

    mtla_encoder *enc = calloc(1, sizeof *enc);
    if (!enc)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the encoder");
    enc->ops = ops;
    enc->config = *c;
    enc->num_mel_bins = config->frontend.fbank.num_mel_bins;
    enc->prompt_dim = config->decoder.d_model;
    enc->projector_stack = config->decoder.projector_stack;

    enc_subsampler *sub = &enc->subsampler;
    sub->layers = c->subsampler.num_layers;
    for (int32_t i = 0; i < sub->layers; i++) {
        sub->kernel[i] = c->subsampler.kernel_sizes[i];
        sub->c_in[i] = i == 0 ? enc->num_mel_bins : c->subsampler.channels / 2;
        sub->c_out[i] = i + 1 == sub->layers ? 2 * c->d_model : c->subsampler.channels;
    }

    enc->whisper.num_mel_bins = enc->num_mel_bins;
    enc->whisper.max_positions = c->max_positions;

    if (c->type == MTLA_ENCODER_WHISPER)
        enc->whisper.layers = calloc((size_t)c->layers, sizeof *enc->whisper.layers);
    else if (c->type == MTLA_ENCODER_TRANSFORMER)
        enc->transformer_layers = calloc((size_t)c->layers, sizeof *enc->transformer_layers);
    else
        enc->conformer_layers = calloc((size_t)c->layers, sizeof *enc->conformer_layers);
    if (!enc->transformer_layers && !enc->conformer_layers && !enc->whisper.layers) {
        mtla_encoder_free(enc);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the encoder layers");
    }

    st = bind_all(enc, weights, err);
    if (st != MTLA_OK) {
        mtla_encoder_free(enc);
        return st;
    }
    *out = enc;
    return MTLA_OK;
}

void mtla_encoder_free(mtla_encoder *enc)
{
    if (!enc)
        return;
    if (enc->work)
        enc->ops->free(enc->ops, enc->work);
    if (enc->projector_hidden)
        enc->ops->free(enc->ops, enc->projector_hidden);
    free(enc->host_table);
    free(enc->transformer_layers);
    free(enc->conformer_layers);
    free(enc->whisper.layers);
    free(enc);
}

/* ---------------------------------------------------------------- sizes */

int64_t mtla_encoder_output_frames(const mtla_encoder *enc, int64_t input_frames)
{
    if (!enc || input_frames <= 0)
        return 0;
    if (enc->config.type == MTLA_ENCODER_WHISPER)
        return enc_whisper_frames(input_frames);
    return enc_subsampler_frames_after(&enc->subsampler, enc->subsampler.layers - 1, input_frames);
}

int32_t mtla_encoder_dim(const mtla_encoder *enc)
{
    return enc ? enc->config.d_model : 0;
}

int64_t mtla_encoder_prompt_frames(const mtla_encoder *enc, int64_t s_enc)
{
    if (!enc || s_enc <= 0)
        return 0;
    return s_enc / enc->projector_stack;
}

/* ---------------------------------------------------------------- workspace */

#define ENC_ALIGN 16 /* floats: every buffer starts on a 64-byte boundary */

typedef struct layout {
    float *base; /* NULL while sizing */
    size_t count;
    int overflow;
} layout;

/* Reserves rows x cols floats (none when either is 0: the buffer stays NULL). */
static float *reserve(layout *l, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0 || l->overflow)
        return NULL;
    size_t r = (size_t)rows, c = (size_t)cols;
    if ((uint64_t)rows > SIZE_MAX || r > (SIZE_MAX - ENC_ALIGN - l->count) / c) {
        l->overflow = 1;
        return NULL;
    }
    size_t start = l->count;
    l->count += (r * c + ENC_ALIGN - 1) / ENC_ALIGN * ENC_ALIGN;
    return l->base ? l->base + start : NULL;
}

static void lay_out(const mtla_encoder *enc, int64_t t, layout *l, enc_workspace *ws)
{
    const mtla_encoder_config *c = &enc->config;
    const enc_subsampler *sub = &enc->subsampler;
    int64_t dim = c->d_model;
    int64_t s = mtla_encoder_output_frames(enc, t);
    int conformer = c->type == MTLA_ENCODER_CONFORMER;
    int rel_pos = c->positions == MTLA_POSITIONS_REL_POS;

    int64_t conv_max = 0, glu_max = 0;
    for (int32_t i = 0; i < sub->layers; i++) {
        int64_t len = enc_subsampler_frames_after(sub, i, t);
        if (len * sub->c_out[i] > conv_max)
            conv_max = len * sub->c_out[i];
        if (i + 1 < sub->layers && len * (sub->c_out[i] / 2) > glu_max)
            glu_max = len * (sub->c_out[i] / 2);
    }
    if (c->type == MTLA_ENCODER_WHISPER)
        conv_max = t * dim; /* conv1's output */
    *ws = (enc_workspace){0};
    ws->sub_conv = reserve(l, conv_max, 1);
    ws->sub_glu = reserve(l, glu_max, 1);
    ws->x = reserve(l, s, dim);
    ws->y = reserve(l, s, dim);
    ws->a = reserve(l, s, dim);
    ws->o = reserve(l, s, dim);
    int64_t hidden = c->ffn_dim;
    if (conformer && 2 * dim > hidden)
        hidden = 2 * dim;
    ws->hidden = reserve(l, s, hidden);
    ws->q = reserve(l, s, dim);
    ws->k = reserve(l, s, dim);
    ws->v = reserve(l, s, dim);
    ws->ctx = reserve(l, s, dim);
    ws->scores = reserve(l, s, s);
    if (c->type != MTLA_ENCODER_WHISPER) /* whisper adds its stored table in place */
        ws->pos = reserve(l, rel_pos ? 2 * s - 1 : s, dim);
    if (rel_pos) {
        ws->pos_proj = reserve(l, 2 * s - 1, dim);
        ws->q_u = reserve(l, s, dim);
        ws->q_v = reserve(l, s, dim);
        ws->bd = reserve(l, s, 2 * s - 1);
    }
    if (conformer) {
        ws->conv_glu = reserve(l, s, dim);
        ws->conv_dw = reserve(l, s, dim);
    }
}

/* Lays the workspace out for `t` input frames, growing it when needed. */
static mtla_status workspace_prepare(mtla_encoder *enc, int64_t t, mtla_error *err)
{
    layout l = {0};
    lay_out(enc, t, &l, &enc->ws);
    if (l.overflow)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "an input of %lld frames is too long for the encoder", (long long)t);
    if (l.count > enc->work_count) {
        if (enc->work)
            enc->ops->free(enc->ops, enc->work);
        enc->work_count = 0;
        enc->work = enc->ops->alloc(enc->ops, l.count);
        if (!enc->work)
            return mtla_fail(err, MTLA_ERR_NO_MEMORY,
                             "out of %s memory for the encoder workspace (%zu MiB, %lld frames)",
                             enc->ops->name, l.count * sizeof(float) >> 20, (long long)t);
        enc->work_count = l.count;
    }
    l = (layout){.base = enc->work};
    lay_out(enc, t, &l, &enc->ws);
    return MTLA_OK;
}

/* Computes a position table of rows x dim on the host and puts it in ws->pos. */
static mtla_status positions_prepare(mtla_encoder *enc, int64_t s, mtla_error *err)
{
    const mtla_ops *ops = enc->ops;
    int64_t dim = enc->config.d_model;
    int rel_pos = enc->config.positions == MTLA_POSITIONS_REL_POS;
    int64_t rows = rel_pos ? 2 * s - 1 : s;
    size_t count = (size_t)(rows * dim);
    float *table = enc->ws.pos;
    if (!ops->host_memory) {
        if (count > enc->host_table_count) {
            free(enc->host_table);
            enc->host_table_count = 0;
            enc->host_table = malloc(count * sizeof(float));
            if (!enc->host_table)
                return mtla_fail(err, MTLA_ERR_NO_MEMORY,
                                 "out of memory for the encoder position table");
            enc->host_table_count = count;
        }
        table = enc->host_table;
    }
    if (rel_pos)
        enc_relative_positions(table, s, dim);
    else
        enc_fairseq_sinusoid(table, s, dim, 2); /* padding index 1 + 1 */
    if (!ops->host_memory)
        ops->upload(ops, enc->ws.pos, table, count);
    return MTLA_OK;
}

/* ---------------------------------------------------------------- forward */

mtla_status mtla_encoder_forward(mtla_encoder *enc, const float *features, int64_t frames,
                                 float *out, mtla_error *err)
{
    if (!enc || !features || !out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "mtla_encoder_forward needs an encoder, features and an output");
    if (frames < 0)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "negative frame count %lld",
                         (long long)frames);
    if (frames == 0)
        return mtla_fail(err, MTLA_ERR_EMPTY,
                         "the encoder needs at least one feature frame, got none");
    if (frames > MTLA_ENCODER_MAX_FRAMES)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "an input of %lld frames is longer than the encoder accepts (%lld)",
                         (long long)frames, (long long)MTLA_ENCODER_MAX_FRAMES);

    const mtla_ops *ops = enc->ops;
    const mtla_encoder_config *c = &enc->config;
    int64_t dim = c->d_model, s = mtla_encoder_output_frames(enc, frames);
    if (c->type == MTLA_ENCODER_WHISPER) {
        if (s > c->max_positions)
            return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                             "an input of %lld frames (%.2f s) gives %lld encoder frames; this "
                             "Whisper encoder has %d positions (at most %lld frames, %.2f s)",
                             (long long)frames, (double)frames / 100.0, (long long)s,
                             (int)c->max_positions, 2 * (long long)c->max_positions,
                             (double)c->max_positions / 50.0);
        mtla_status st = workspace_prepare(enc, frames, err);
        if (st == MTLA_OK)
            enc_whisper_forward(ops, &enc->whisper, c, features, frames, &enc->ws, out);
        return st;
    }
    mtla_status st = workspace_prepare(enc, frames, err);
    if (st == MTLA_OK)
        st = positions_prepare(enc, s, err);
    if (st != MTLA_OK)
        return st;
    enc_workspace ws = enc->ws;
    size_t n = (size_t)(s * dim);

    /* x = sqrt(E) subsample(features) */
    enc_subsampler_forward(ops, &enc->subsampler, features, frames, ws.sub_conv, ws.sub_glu, ws.x);
    ops->scale(ops, ws.x, (float)sqrt((double)dim), n);
    if (c->positions != MTLA_POSITIONS_REL_POS)
        ops->axpy(ops, 1.0f, ws.pos, ws.x, n);

    if (c->type == MTLA_ENCODER_TRANSFORMER) {
        for (int32_t l = 0; l < c->layers; l++)
            enc_transformer_layer_forward(ops, &enc->transformer_layers[l], s, dim, c->heads,
                                          c->ffn_dim, &ws);
        ops->layer_norm(ops, ws.x, s, dim, enc->layer_norm.weight, enc->layer_norm.bias, ENC_LN_EPS,
                        out);
        return MTLA_OK;
    }

    /* conformer: encoder.linear, then layers; each ends in its own norm, none after them */
    ops->linear(ops, ws.x, s, dim, &enc->linear.weight, enc->linear.bias, dim, ws.y);
    for (int32_t l = 0; l < c->layers; l++) {
        float *tmp = ws.x;
        ws.x = ws.y;
        ws.y = tmp;
        enc_conformer_layer_forward(ops, &enc->conformer_layers[l], c->positions, s, dim, c->heads,
                                    c->ffn_dim, c->conv_kernel, &ws,
                                    l + 1 == c->layers ? out : ws.y);
    }
    return MTLA_OK;
}

/* ---------------------------------------------------------------- projector */

mtla_status mtla_encoder_project(mtla_encoder *enc, const float *enc_out, int64_t s_enc,
                                 float *prompt, int64_t *s_out, mtla_error *err)
{
    if (s_out)
        *s_out = 0;
    if (!enc || !enc_out || !prompt || !s_out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "mtla_encoder_project needs an encoder, its output, a prompt buffer "
                         "and s_out");
    int64_t k = enc->projector_stack;
    if (s_enc < 0)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "negative encoder frame count %lld",
                         (long long)s_enc);
    if (s_enc < k)
        return mtla_fail(err, MTLA_ERR_EMPTY,
                         "the projector stacks %lld encoder frames but the input gave only %lld "
                         "(too short to translate)",
                         (long long)k, (long long)s_enc);

    const mtla_ops *ops = enc->ops;
    int64_t s = s_enc / k, dim = enc->config.d_model, d = enc->prompt_dim, half = d / 2;
    if ((uint64_t)s > SIZE_MAX / (uint64_t)half)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "encoder output of %lld frames is too long", (long long)s_enc);
    size_t need = (size_t)s * (size_t)half;
    if (need > enc->projector_hidden_count) {
        if (enc->projector_hidden)
            ops->free(ops, enc->projector_hidden);
        enc->projector_hidden_count = 0;
        enc->projector_hidden = ops->alloc(ops, need);
        if (!enc->projector_hidden)
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of %s memory for the projector",
                             ops->name);
        enc->projector_hidden_count = need;
    }
    /* Frame stacking is a reshape: rows of k consecutive frames are contiguous in [S_enc, E],
     * so enc_out read as [s, k E] is the stacked input, its trailing s_enc mod k rows unread. */
    ops->linear(ops, enc_out, s, k * dim, &enc->projector1.weight, enc->projector1.bias, half,
                enc->projector_hidden);
    ops->relu(ops, enc->projector_hidden, need);
    ops->linear(ops, enc->projector_hidden, s, half, &enc->projector2.weight, enc->projector2.bias,
                d, prompt);
    *s_out = s;
    return MTLA_OK;
}
