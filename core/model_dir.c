/* Loading a model directory: see core/model_dir.h for what is checked and in which order. The
 * table of tensors a config requires (mtla_model_tensor_specs) is the one place that knows the
 * authors' module tree; docs/model-format.md "Tensors" is its specification. */
#include "core/model_dir.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"

#define TRY(call)                                                                                  \
    do {                                                                                           \
        mtla_status try_status_ = (call);                                                          \
        if (try_status_ != MTLA_OK)                                                                \
            return try_status_;                                                                    \
    } while (0)

enum { NAME_TEXT = 96, SHAPE_TEXT = 160 };

#define CONFIG_MAX_BYTES ((size_t)16 * 1024 * 1024)
#define VOCAB_MAX_BYTES ((size_t)256 * 1024 * 1024)

/* ---------------------------------------------------------------- the tensor table */

typedef struct spec_list {
    mtla_tensor_spec *items;
    size_t count;
    size_t capacity;
    int failed; /* out of memory, or a name longer than MTLA_TENSOR_NAME_MAX */
} spec_list;

static void vadd(spec_list *l, int buffer, int32_t ndim, const int64_t *dims, const char *format,
                 va_list args)
{
    if (l->failed)
        return;
    if (l->count == l->capacity) {
        size_t capacity = l->capacity ? 2 * l->capacity : 256;
        mtla_tensor_spec *items = realloc(l->items, capacity * sizeof *items);
        if (!items) {
            l->failed = 1;
            return;
        }
        l->items = items;
        l->capacity = capacity;
    }
    mtla_tensor_spec *s = &l->items[l->count];
    memset(s, 0, sizeof *s);
    int n = vsnprintf(s->name, sizeof s->name, format, args);
    if (n < 0 || (size_t)n >= sizeof s->name) {
        l->failed = 1;
        return;
    }
    s->ndim = ndim;
    for (int32_t i = 0; i < ndim; i++)
        s->shape[i] = dims[i];
    s->buffer = buffer;
    l->count++;
}

/* [n] */
MTLA_PRINTF(3, 4) static void vec(spec_list *l, int64_t n, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vadd(l, 0, 1, &n, format, args);
    va_end(args);
}

/* [n], a statistic rather than a trained parameter */
MTLA_PRINTF(3, 4) static void statistic(spec_list *l, int64_t n, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vadd(l, 1, 1, &n, format, args);
    va_end(args);
}

/* [rows, cols] */
MTLA_PRINTF(4, 5)
static void mat(spec_list *l, int64_t rows, int64_t cols, const char *format, ...)
{
    int64_t dims[2] = {rows, cols};
    va_list args;
    va_start(args, format);
    vadd(l, 0, 2, dims, format, args);
    va_end(args);
}

/* [a, b, c]: nn.Conv1d weights [out, in / groups, kernel] */
MTLA_PRINTF(5, 6)
static void cube(spec_list *l, int64_t a, int64_t b, int64_t c, const char *format, ...)
{
    int64_t dims[3] = {a, b, c};
    va_list args;
    va_start(args, format);
    vadd(l, 0, 3, dims, format, args);
    va_end(args);
}

/* nn.Linear(in, out) at `module`: weight [out, in], bias [out] when it has one. */
static void linear(spec_list *l, const char *module, int64_t out, int64_t in, int bias)
{
    mat(l, out, in, "%s.weight", module);
    if (bias)
        vec(l, out, "%s.bias", module);
}

/* nn.LayerNorm(n) at `module`: weight, bias [n]. */
static void layer_norm(spec_list *l, const char *module, int64_t n)
{
    vec(l, n, "%s.weight", module);
    vec(l, n, "%s.bias", module);
}

/* snprintf into a module-path buffer of MTLA_TENSOR_NAME_MAX bytes. */
MTLA_PRINTF(2, 3) static const char *module(char *buf, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(buf, MTLA_TENSOR_NAME_MAX, format, args);
    va_end(args);
    return buf;
}

/* Whisper's AudioEncoder (openai-whisper model.py, Hugging Face WhisperEncoder names):
 * conv1 Conv1d(mel, E, 3, padding 1), conv2 Conv1d(E, E, 3, stride 2, padding 1), the stored
 * positions, pre-LN ResidualAttentionBlocks, then its final norm. */
static void whisper_encoder(spec_list *l, const mtla_encoder_config *enc, int64_t mel)
{
    const int64_t E = enc->d_model, F = enc->ffn_dim;
    char m[MTLA_TENSOR_NAME_MAX];
    cube(l, E, mel, 3, "encoder.conv1.weight");
    vec(l, E, "encoder.conv1.bias");
    cube(l, E, E, 3, "encoder.conv2.weight");
    vec(l, E, "encoder.conv2.bias");
    /* embed_positions: Whisper's sinusoid table as stored (a buffer there, a weight here) */
    mat(l, enc->max_positions, E, "encoder.embed_positions.weight");
    for (int32_t i = 0; i < enc->layers; i++) {
        /* self_attn: Whisper's MultiHeadAttention; its key projection has no bias */
        linear(l, module(m, "encoder.layers.%d.self_attn.q_proj", i), E, E, 1);
        linear(l, module(m, "encoder.layers.%d.self_attn.k_proj", i), E, E, 0);
        linear(l, module(m, "encoder.layers.%d.self_attn.v_proj", i), E, E, 1);
        linear(l, module(m, "encoder.layers.%d.self_attn.out_proj", i), E, E, 1);
        /* self_attn_layer_norm: LayerNorm(E) before self_attn (Whisper's attn_ln) */
        layer_norm(l, module(m, "encoder.layers.%d.self_attn_layer_norm", i), E);
        /* fc1, fc2: the GELU MLP, Linear(E, F) and Linear(F, E) (Whisper's mlp.0, mlp.2) */
        linear(l, module(m, "encoder.layers.%d.fc1", i), F, E, 1);
        linear(l, module(m, "encoder.layers.%d.fc2", i), E, F, 1);
        /* final_layer_norm: LayerNorm(E) before the MLP (Whisper's mlp_ln) */
        layer_norm(l, module(m, "encoder.layers.%d.final_layer_norm", i), E);
    }
    /* encoder.layer_norm: Whisper's ln_post */
    layer_norm(l, "encoder.layer_norm", E);
}

/* fairseq S2TTransformerEncoder layers (TransformerEncoderLayer, pre-LN), then its final norm. */
static void transformer_encoder(spec_list *l, const mtla_encoder_config *enc)
{
    const int64_t E = enc->d_model, F = enc->ffn_dim;
    char m[MTLA_TENSOR_NAME_MAX];
    for (int32_t i = 0; i < enc->layers; i++) {
        /* self_attn: fairseq MultiheadAttention, q_proj/k_proj/v_proj/out_proj Linear(E, E) */
        linear(l, module(m, "encoder.transformer_layers.%d.self_attn.q_proj", i), E, E, 1);
        linear(l, module(m, "encoder.transformer_layers.%d.self_attn.k_proj", i), E, E, 1);
        linear(l, module(m, "encoder.transformer_layers.%d.self_attn.v_proj", i), E, E, 1);
        linear(l, module(m, "encoder.transformer_layers.%d.self_attn.out_proj", i), E, E, 1);
        /* self_attn_layer_norm: LayerNorm(E) before self_attn */
        layer_norm(l, module(m, "encoder.transformer_layers.%d.self_attn_layer_norm", i), E);
        /* fc1 Linear(E, F), ReLU, fc2 Linear(F, E) */
        linear(l, module(m, "encoder.transformer_layers.%d.fc1", i), F, E, 1);
        linear(l, module(m, "encoder.transformer_layers.%d.fc2", i), E, F, 1);
        /* final_layer_norm: LayerNorm(E) before fc1 */
        layer_norm(l, module(m, "encoder.transformer_layers.%d.final_layer_norm", i), E);
    }
    /* encoder.layer_norm: the pre-LN stack's last LayerNorm(E) */
    layer_norm(l, "encoder.layer_norm", E);
}

/* fairseq S2TConformerEncoder: a Linear after the subsampler, then ConformerEncoderLayers. */
static void conformer_encoder(spec_list *l, const mtla_encoder_config *enc)
{
    const int64_t E = enc->d_model, F = enc->ffn_dim, H = enc->heads;
    char m[MTLA_TENSOR_NAME_MAX];
    /* encoder.linear: Linear(E, E) on the subsampler's output; no encoder-level norm */
    linear(l, "encoder.linear", E, E, 1);
    for (int32_t i = 0; i < enc->layers; i++) {
        /* ffn1, ffn2: FeedForwardModule, layer_norm LayerNorm(E), w_1 Linear(E, F), Swish,
         * w_2 Linear(F, E); the two macaron halves */
        for (int f = 1; f <= 2; f++) {
            layer_norm(l, module(m, "encoder.conformer_layers.%d.ffn%d.layer_norm", i, f), E);
            linear(l, module(m, "encoder.conformer_layers.%d.ffn%d.w_1", i, f), F, E, 1);
            linear(l, module(m, "encoder.conformer_layers.%d.ffn%d.w_2", i, f), E, F, 1);
        }
        /* self_attn_layer_norm: LayerNorm(E) before self_attn */
        layer_norm(l, module(m, "encoder.conformer_layers.%d.self_attn_layer_norm", i), E);
        if (enc->positions == MTLA_POSITIONS_ABS) {
            /* self_attn: fairseq MultiheadAttention, {q,k,v,out}_proj Linear(E, E) */
            linear(l, module(m, "encoder.conformer_layers.%d.self_attn.q_proj", i), E, E, 1);
            linear(l, module(m, "encoder.conformer_layers.%d.self_attn.k_proj", i), E, E, 1);
            linear(l, module(m, "encoder.conformer_layers.%d.self_attn.v_proj", i), E, E, 1);
            linear(l, module(m, "encoder.conformer_layers.%d.self_attn.out_proj", i), E, E, 1);
        } else {
            /* self_attn: ESPnet RelPositionMultiHeadedAttention, linear_{q,k,v,out}
             * Linear(E, E) */
            linear(l, module(m, "encoder.conformer_layers.%d.self_attn.linear_q", i), E, E, 1);
            linear(l, module(m, "encoder.conformer_layers.%d.self_attn.linear_k", i), E, E, 1);
            linear(l, module(m, "encoder.conformer_layers.%d.self_attn.linear_v", i), E, E, 1);
            linear(l, module(m, "encoder.conformer_layers.%d.self_attn.linear_out", i), E, E, 1);
            /* linear_pos: Linear(E, E, bias=False) on the relative position encodings */
            linear(l, module(m, "encoder.conformer_layers.%d.self_attn.linear_pos", i), E, E, 0);
            /* pos_bias_u, pos_bias_v: nn.Parameter [H, E/H], the content and position biases
             * of Transformer-XL */
            mat(l, H, E / H, "encoder.conformer_layers.%d.self_attn.pos_bias_u", i);
            mat(l, H, E / H, "encoder.conformer_layers.%d.self_attn.pos_bias_v", i);
        }
        /* conv_module: ConvolutionModule */
        /* layer_norm: LayerNorm(E) */
        layer_norm(l, module(m, "encoder.conformer_layers.%d.conv_module.layer_norm", i), E);
        /* pointwise_conv1: Conv1d(E, 2E, 1, bias=False), then GLU */
        cube(l, 2 * E, E, 1, "encoder.conformer_layers.%d.conv_module.pointwise_conv1.weight", i);
        /* depthwise_conv: Conv1d(E, E, conv_kernel, groups=E, bias=False) */
        cube(l, E, 1, enc->conv_kernel,
             "encoder.conformer_layers.%d.conv_module.depthwise_conv.weight", i);
        /* batch_norm: BatchNorm1d(E): affine weight and bias, running statistics
         * (num_batches_tracked is dropped by converters) */
        vec(l, E, "encoder.conformer_layers.%d.conv_module.batch_norm.weight", i);
        vec(l, E, "encoder.conformer_layers.%d.conv_module.batch_norm.bias", i);
        statistic(l, E, "encoder.conformer_layers.%d.conv_module.batch_norm.running_mean", i);
        statistic(l, E, "encoder.conformer_layers.%d.conv_module.batch_norm.running_var", i);
        /* pointwise_conv2: Conv1d(E, E, 1, bias=False) */
        cube(l, E, E, 1, "encoder.conformer_layers.%d.conv_module.pointwise_conv2.weight", i);
        /* final_layer_norm: LayerNorm(E) at the end of the layer */
        layer_norm(l, module(m, "encoder.conformer_layers.%d.final_layer_norm", i), E);
    }
}

/* The authors' self-attention of decoder layer `i` (MTLADecoderOnly's layers). */
static void decoder_attention(spec_list *l, const mtla_decoder_config *dec, int32_t i)
{
    const mtla_attention_config *a = &dec->attention;
    const int64_t D = dec->d_model, H = a->heads;
    char m[MTLA_TENSOR_NAME_MAX];
    if (a->type == MTLA_ATTENTION_MHA || a->type == MTLA_ATTENTION_GQA) {
        /* RotaryMultiheadAttention: q_proj Linear(D, H d_h), k_proj and v_proj
         * Linear(D, H_kv d_h), out_proj Linear(H d_h, D), all with bias */
        const int64_t dh = a->head_dim, kv = a->kv_heads;
        linear(l, module(m, "decoder.layers.%d.self_attn.q_proj", i), H * dh, D, 1);
        linear(l, module(m, "decoder.layers.%d.self_attn.k_proj", i), kv * dh, D, 1);
        linear(l, module(m, "decoder.layers.%d.self_attn.v_proj", i), kv * dh, D, 1);
        linear(l, module(m, "decoder.layers.%d.self_attn.out_proj", i), D, H * dh, 1);
        return;
    }
    const int64_t r = a->kv_lora_rank, dn = a->qk_nope_head_dim, dr = a->qk_rope_head_dim,
                  dv = a->v_head_dim;
    /* MLA / MTLA (no q LoRA): wq Linear(D, H (d_n + d_r), bias=False) */
    linear(l, module(m, "decoder.layers.%d.self_attn.wq", i), H * (dn + dr), D, 0);
    /* wkv_a Linear(D, r + d_r, bias=False): the latent c and the shared rotary key */
    linear(l, module(m, "decoder.layers.%d.self_attn.wkv_a", i), r + dr, D, 0);
    /* kv_norm: LayerNorm(r) on the latent */
    layer_norm(l, module(m, "decoder.layers.%d.self_attn.kv_norm", i), r);
    /* wkv_b Linear(r, H (d_n + d_v), bias=False): latent to per-head keys and values */
    linear(l, module(m, "decoder.layers.%d.self_attn.wkv_b", i), H * (dn + dv), r, 0);
    /* wo Linear(H d_v, D, bias=False) */
    linear(l, module(m, "decoder.layers.%d.self_attn.wo", i), D, H * dv, 0);
    if (a->type == MTLA_ATTENTION_MTLA) {
        /* hypernet_down: HyperNetwork, fc_c and fc_p Linear(r, h_r), which make the merge
         * weights w from the latent and its position */
        linear(l, module(m, "decoder.layers.%d.self_attn.hypernet_down.fc_c", i), a->hyper_rank, r,
               1);
        linear(l, module(m, "decoder.layers.%d.self_attn.hypernet_down.fc_p", i), a->hyper_rank, r,
               1);
    }
}

static int compare_specs(const void *a, const void *b)
{
    return strcmp(((const mtla_tensor_spec *)a)->name, ((const mtla_tensor_spec *)b)->name);
}

mtla_status mtla_model_tensor_specs(const mtla_model_config *c, mtla_tensor_spec **specs,
                                    size_t *count, mtla_error *err)
{
    *specs = NULL;
    *count = 0;
    TRY(mtla_model_config_validate(c, err));
    const mtla_encoder_config *enc = &c->encoder;
    const mtla_decoder_config *dec = &c->decoder;
    const int64_t mel = c->frontend.fbank.num_mel_bins, E = enc->d_model,
                  C = enc->subsampler.channels, D = dec->d_model, G = dec->ffn_dim,
                  V = c->vocab.size, k = dec->projector_stack;
    spec_list l = {0};
    char m[MTLA_TENSOR_NAME_MAX];

    /* frontend.cmvn.mean / .std: fairseq's GlobalCMVN statistics (stats_npz_path), per bin */
    if (c->frontend.cmvn == MTLA_CMVN_GLOBAL) {
        statistic(&l, mel, "frontend.cmvn.mean");
        statistic(&l, mel, "frontend.cmvn.std");
    }

    /* encoder.subsample: fairseq Conv1dSubsampler, conv_layers[i] Conv1d(in_i, out_i, K_i,
     * stride 2) each followed by a GLU that halves the channels: in_0 = mel bins,
     * in_i = C/2, out_i = C except the last, 2E, so the GLU leaves E */
    const int32_t n = enc->subsampler.num_layers;
    for (int32_t i = 0; i < n; i++) {
        const int64_t in = i == 0 ? mel : C / 2, out = i == n - 1 ? 2 * E : C;
        cube(&l, out, in, enc->subsampler.kernel_sizes[i],
             "encoder.subsample.conv_layers.%d.weight", i);
        vec(&l, out, "encoder.subsample.conv_layers.%d.bias", i);
    }
    if (enc->type == MTLA_ENCODER_WHISPER)
        whisper_encoder(&l, enc, mel);
    else if (enc->type == MTLA_ENCODER_TRANSFORMER)
        transformer_encoder(&l, enc);
    else
        conformer_encoder(&l, enc);

    /* decoder.projector: EncoderProjectorConcat over k stacked frames, linear1
     * Linear(k E, D/2), ReLU, linear2 Linear(D/2, D) */
    linear(&l, "decoder.projector.linear1", D / 2, k * E, 1);
    linear(&l, "decoder.projector.linear2", D, D / 2, 1);
    /* decoder.embed_tokens: nn.Embedding(V, D), not shared with the output projection */
    mat(&l, V, D, "decoder.embed_tokens.weight");
    for (int32_t i = 0; i < dec->layers; i++) {
        /* self_attn: see decoder_attention */
        decoder_attention(&l, dec, i);
        /* self_attn_layer_norm: LayerNorm(D) before self_attn */
        layer_norm(&l, module(m, "decoder.layers.%d.self_attn_layer_norm", i), D);
        /* fc1 Linear(D, G), ReLU, fc2 Linear(G, D) */
        linear(&l, module(m, "decoder.layers.%d.fc1", i), G, D, 1);
        linear(&l, module(m, "decoder.layers.%d.fc2", i), D, G, 1);
        /* final_layer_norm: LayerNorm(D) before fc1 */
        layer_norm(&l, module(m, "decoder.layers.%d.final_layer_norm", i), D);
    }
    /* decoder.layer_norm: the final LayerNorm(D) */
    layer_norm(&l, "decoder.layer_norm", D);
    /* decoder.output_projection: Linear(D, V, bias=False) */
    mat(&l, V, D, "decoder.output_projection.weight");

    if (l.failed) {
        free(l.items);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory listing the model's tensors");
    }
    qsort(l.items, l.count, sizeof *l.items, compare_specs);
    *specs = l.items;
    *count = l.count;
    return MTLA_OK;
}

static int64_t elements(const int64_t *shape, int32_t ndim)
{
    int64_t n = 1;
    for (int32_t i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

int64_t mtla_model_parameter_count(const mtla_tensor_spec *specs, size_t count)
{
    int64_t total = 0;
    for (size_t i = 0; i < count; i++)
        if (!specs[i].buffer)
            total += elements(specs[i].shape, specs[i].ndim);
    return total;
}

void mtla_model_describe(const mtla_model_config *c, int64_t parameters, char *buf, size_t size)
{
    const mtla_encoder_config *e = &c->encoder;
    const mtla_decoder_config *d = &c->decoder;
    const mtla_attention_config *a = &d->attention;
    char encoder[64], attention[48], count[32];
    if (e->type == MTLA_ENCODER_WHISPER)
        snprintf(encoder, sizeof encoder, "whisper %dx%d", (int)e->layers, (int)e->d_model);
    else if (e->type == MTLA_ENCODER_CONFORMER)
        snprintf(encoder, sizeof encoder, "conformer %s %dx%d", mtla_positions_name(e->positions),
                 (int)e->layers, (int)e->d_model);
    else
        snprintf(encoder, sizeof encoder, "transformer %dx%d", (int)e->layers, (int)e->d_model);
    if (a->type == MTLA_ATTENTION_MTLA)
        snprintf(attention, sizeof attention, "mtla s=%d", (int)a->down_rate);
    else if (a->type == MTLA_ATTENTION_GQA)
        snprintf(attention, sizeof attention, "gqa kv_heads=%d", (int)a->kv_heads);
    else
        snprintf(attention, sizeof attention, "%s", mtla_attention_type_name(a->type));
    if (parameters >= 1000000000)
        snprintf(count, sizeof count, "%.1fB", (double)parameters / 1e9);
    else if (parameters >= 1000000)
        snprintf(count, sizeof count, "%.1fM", (double)parameters / 1e6);
    else if (parameters >= 1000)
        snprintf(count, sizeof count, "%.1fK", (double)parameters / 1e3);
    else
        snprintf(count, sizeof count, "%lld", (long long)parameters);
    snprintf(buf, size, "%s encoder, %s %dx%d decoder, %s parameters", encoder, attention,
             (int)d->layers, (int)d->d_model, count);
}

/* ---------------------------------------------------------------- loading */

static mtla_status load_config(mtla_model_dir *m, mtla_error *err)
{
    char *text;
    size_t size;
    TRY(mtla_dir_read_file(m->path, "config.json", CONFIG_MAX_BYTES, &text, &size, err));
    mtla_status st = mtla_model_config_parse(text, size, &m->config, err);
    free(text);
    return st;
}

/* vocab.txt: line i is the piece of model id i. */
static mtla_status load_vocab(mtla_model_dir *m, mtla_error *err)
{
    char *text;
    size_t size, bad_at;
    TRY(mtla_dir_read_file(m->path, "vocab.txt", VOCAB_MAX_BYTES, &text, &size, err));
    m->vocab_text = text;
    if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        return mtla_fail(err, MTLA_ERR_FORMAT, "vocab.txt starts with a byte order mark");
    size_t lines = 0;
    int valid = mtla_utf8_valid(text, size, &bad_at);
    for (size_t i = 0, start = 0; i <= size; i++) {
        if (!valid && i == bad_at)
            return mtla_fail(err, MTLA_ERR_FORMAT, "vocab.txt line %zu is not valid UTF-8",
                             lines + 1);
        if (i == size && start == size)
            break; /* no text after the last newline: it ended the last line */
        if (i == size || text[i] == '\n') {
            if (i == start)
                return mtla_fail(err, MTLA_ERR_FORMAT, "vocab.txt line %zu is empty", lines + 1);
            lines++;
            start = i + 1;
        } else if (text[i] == '\0') {
            return mtla_fail(err, MTLA_ERR_FORMAT, "vocab.txt line %zu contains a NUL byte",
                             lines + 1);
        } else if (text[i] == '\r') {
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "vocab.txt line %zu contains a carriage return (CRLF line endings?)",
                             lines + 1);
        }
    }
    if (lines != (size_t)m->config.vocab.size)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "vocab.txt has %zu lines, but config.json vocab.size is %d", lines,
                         (int)m->config.vocab.size);
    m->pieces = malloc(lines * sizeof *m->pieces);
    if (!m->pieces)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory reading vocab.txt");
    char *piece = text;
    for (size_t i = 0; i < lines; i++) {
        char *newline = strchr(piece, '\n');
        if (newline)
            *newline = '\0';
        m->pieces[i] = piece;
        piece = newline ? newline + 1 : piece + strlen(piece);
    }
    return MTLA_OK;
}

static mtla_status check_tokenizer(mtla_model_dir *m, mtla_error *err)
{
    m->tokenizer_path = mtla_path_join(m->path, "tokenizer.model");
    if (!m->tokenizer_path)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory");
    struct stat info;
    if (stat(m->tokenizer_path, &info) != 0) {
        if (errno == ENOENT)
            return mtla_fail(err, MTLA_ERR_IO, "model directory '%s': tokenizer.model not found",
                             m->path);
        return mtla_fail(err, MTLA_ERR_IO, "model directory '%s': cannot stat tokenizer.model: %s",
                         m->path, strerror(errno));
    }
    if (!S_ISREG(info.st_mode))
        return mtla_fail(err, MTLA_ERR_IO,
                         "model directory '%s': tokenizer.model is not a "
                         "regular file",
                         m->path);
    if (info.st_size == 0)
        return mtla_fail(err, MTLA_ERR_FORMAT, "tokenizer.model is empty");
    return MTLA_OK;
}

static int host_is_little_endian(void)
{
    const uint16_t probe = 1;
    unsigned char first;
    memcpy(&first, &probe, 1);
    return first == 1;
}

/* The tensors present must be exactly the specs, with their shapes. */
static mtla_status match_tensors(const mtla_model_dir *m, const mtla_safetensors_set *set,
                                 mtla_error *err)
{
    char name[NAME_TEXT], have[SHAPE_TEXT], need[SHAPE_TEXT];
    for (size_t i = 0; i < m->tensor_count; i++) {
        const mtla_tensor_spec *s = &m->specs[i];
        const mtla_st_tensor *t = mtla_safetensors_set_find(set, s->name);
        if (!t)
            return mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' is missing (config needs %s)",
                             set->label, s->name,
                             mtla_shape_format(s->shape, s->ndim, need, sizeof need));
        int same = t->ndim == s->ndim;
        for (int32_t d = 0; same && d < s->ndim; d++)
            same = t->shape[d] == s->shape[d];
        if (!same)
            return mtla_fail(err, MTLA_ERR_FORMAT, "%s: tensor '%s' has shape %s, config needs %s",
                             t->file, s->name,
                             mtla_shape_format(t->shape, t->ndim, have, sizeof have),
                             mtla_shape_format(s->shape, s->ndim, need, sizeof need));
    }
    if (set->count == m->tensor_count)
        return MTLA_OK; /* every spec was found and names are unique on both sides */
    for (size_t i = 0; i < set->count; i++) {
        mtla_tensor_spec key;
        snprintf(key.name, sizeof key.name, "%s", set->tensors[i]->name);
        if (strlen(set->tensors[i]->name) >= sizeof key.name ||
            !bsearch(&key, m->specs, m->tensor_count, sizeof *m->specs, compare_specs))
            return mtla_fail(
                err, MTLA_ERR_FORMAT, "%s: unexpected tensor '%s' (not part of this configuration)",
                set->tensors[i]->file, mtla_printable(set->tensors[i]->name, name, sizeof name));
    }
    return mtla_fail(err, MTLA_ERR_INTERNAL, "%s: tensor count mismatch", set->label);
}

static mtla_status load_tensors(mtla_model_dir *m, mtla_error *err)
{
    mtla_safetensors_set *set;
    TRY(mtla_model_tensor_specs(&m->config, &m->specs, &m->tensor_count, err));
    m->parameter_count = mtla_model_parameter_count(m->specs, m->tensor_count);
    TRY(mtla_safetensors_set_open(m->path, &set, err));
    m->weights = set;
    TRY(match_tensors(m, set, err));

    m->tensors = calloc(m->tensor_count, sizeof *m->tensors);
    if (!m->tensors)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory loading tensors");
    const int little_endian = host_is_little_endian();
    for (size_t i = 0; i < m->tensor_count; i++) {
        const mtla_st_tensor *t = mtla_safetensors_set_find(set, m->specs[i].name);
        mtla_tensor *out = &m->tensors[i];
        out->name = m->specs[i].name;
        out->ndim = t->ndim;
        memcpy(out->shape, t->shape, sizeof out->shape);
        out->count = (size_t)t->count;
        out->stored = t->dtype;
        out->raw = t->data;
        if (t->count > SIZE_MAX / sizeof(float))
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "tensor '%s' is too large", out->name);
        if (t->dtype != MTLA_DTYPE_F32)
            continue; /* converted when first looked up */
        if (little_endian && (uintptr_t)t->data % _Alignof(float) == 0) {
            out->data = (const float *)(const void *)t->data;
            continue;
        }
        if (!(out->owned = malloc((size_t)t->count * sizeof(float))))
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory converting tensor '%s'",
                             out->name);
        mtla_convert_to_f32(t->dtype, t->data, t->count, out->owned);
        out->data = out->owned;
    }
    return MTLA_OK;
}

mtla_status mtla_model_dir_open(const char *path, mtla_model_dir **out, mtla_error *err)
{
    if (!out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "model directory: no output handle");
    *out = NULL;
    if (!path || !path[0])
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "model directory: no path given");
    struct stat info;
    if (stat(path, &info) != 0) {
        if (errno == ENOENT)
            return mtla_fail(err, MTLA_ERR_IO, "model directory '%s' not found", path);
        return mtla_fail(err, MTLA_ERR_IO, "model directory '%s': %s", path, strerror(errno));
    }
    if (!S_ISDIR(info.st_mode))
        return mtla_fail(err, MTLA_ERR_IO, "model directory '%s' is not a directory", path);

    mtla_model_dir *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory opening model directory '%s'",
                         path);
    }
    if (pthread_mutex_init(&m->convert_lock, NULL) != 0) {
        free(m->path);
        free(m);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "cannot make a lock for model directory '%s'",
                         path);
    }
    m->convert_lock_made = 1;
    /* Cheap checks first: a wrong vocabulary is found before any tensor is converted. */
    mtla_status st = load_config(m, err);
    if (st == MTLA_OK)
        st = load_vocab(m, err);
    if (st == MTLA_OK)
        st = check_tokenizer(m, err);
    if (st == MTLA_OK)
        st = load_tensors(m, err);
    if (st != MTLA_OK) {
        mtla_model_dir_close(m);
        return st;
    }
    *out = m;
    return MTLA_OK;
}

void mtla_model_dir_close(mtla_model_dir *m)
{
    if (!m)
        return;
    if (m->tensors)
        for (size_t i = 0; i < m->tensor_count; i++)
            free(m->tensors[i].owned);
    free(m->tensors);
    free(m->specs);
    mtla_safetensors_set_close(m->weights);
    if (m->convert_lock_made)
        pthread_mutex_destroy(&m->convert_lock);
    free(m->pieces);
    free(m->vocab_text);
    free(m->tokenizer_path);
    free(m->path);
    free(m);
}

void mtla_model_dir_release(const mtla_tensor *t)
{
    const unsigned char *raw = t->raw;
    size_t bytes = t->count * mtla_dtype_size(t->stored);
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    uintptr_t begin = ((uintptr_t)raw + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t end = ((uintptr_t)raw + bytes) / (uintptr_t)page * (uintptr_t)page;
    if (end > begin)
        madvise((void *)begin, end - begin, MADV_DONTNEED);
}

const mtla_tensor *mtla_model_dir_tensor(const mtla_model_dir *m, const char *name)
{
    const mtla_tensor *t = mtla_model_dir_stored(m, name);
    if (!t)
        return NULL;
    /* The conversion is the one mutation of an open model: made once, under the lock, so
     * that concurrent lookups see either nothing or the finished copy. */
    mtla_model_dir *dir = (mtla_model_dir *)m;
    mtla_tensor *mt = (mtla_tensor *)t;
    pthread_mutex_lock(&dir->convert_lock);
    if (!mt->data) {
        mt->owned = malloc((mt->count ? mt->count : 1) * sizeof(float));
        if (mt->owned) {
            mtla_convert_to_f32(mt->stored, mt->raw, mt->count, mt->owned);
            mt->data = mt->owned;
            mtla_model_dir_release(mt);
        }
    }
    const float *data = mt->data;
    pthread_mutex_unlock(&dir->convert_lock);
    return data ? mt : NULL;
}

const mtla_tensor *mtla_model_dir_stored(const mtla_model_dir *m, const char *name)
{
    if (!m || !name || !m->tensors)
        return NULL;
    size_t lo = 0, hi = m->tensor_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, m->specs[mid].name);
        if (c == 0)
            return &m->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const mtla_tensor *mtla_model_dir_tensorf(const mtla_model_dir *m, const char *format, ...)
{
    char name[MTLA_TENSOR_NAME_MAX];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(name, sizeof name, format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= sizeof name)
        return NULL;
    return mtla_model_dir_tensor(m, name);
}

const char *mtla_model_dir_piece(const mtla_model_dir *m, int32_t id)
{
    if (!m || !m->pieces || id < 0 || id >= m->config.vocab.size)
        return NULL;
    return m->pieces[id];
}

/* ---------------------------------------------------------------- public handle */

mtla_status mtla_model_open(const char *dir, mtla_model **out, mtla_error *err)
{
    if (!out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_model_open: no output handle");
    *out = NULL;
    mtla_model *model = calloc(1, sizeof *model);
    if (!model)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory opening a model");
    mtla_status st = mtla_model_dir_open(dir, &model->dir, err);
    if (st != MTLA_OK) {
        free(model);
        return st;
    }
    mtla_model_describe(&model->dir->config, model->dir->parameter_count, model->description,
                        sizeof model->description);
    *out = model;
    return MTLA_OK;
}

void mtla_model_close(mtla_model *model)
{
    if (!model)
        return;
    mtla_model_dir_close(model->dir);
    free(model);
}

const char *mtla_model_description(const mtla_model *model)
{
    return model ? model->description : "";
}

const char *mtla_model_source_language(const mtla_model *model)
{
    return model ? model->dir->config.languages.source : "";
}

const char *mtla_model_target_language(const mtla_model *model)
{
    return model ? model->dir->config.languages.target : "";
}

int32_t mtla_model_vocab_size(const mtla_model *model)
{
    return model ? model->dir->config.vocab.size : 0;
}
