/* The prompt decoder (decoder/decoder.h). Each function names the equation of SPEC.md (or the
 * section of docs/architecture.md) it implements; all arithmetic on activations goes through
 * the ops table, so the same code drives the CPU and the CUDA backends. */
#include "decoder/decoder.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5f /* every LayerNorm of the authors' models (torch default) */

/* decoder.layers.L.self_attn.* for "mla" and "mtla" (docs/model-format.md). */
typedef struct latent_weights {
    mtla_matrix wq;         /* wq.weight [H*(d_n+d_r), D]: head h = [q_n | q_r] */
    mtla_matrix wkv_a;      /* wkv_a.weight [r+d_r, D]: rows [0,r) c_raw, [r,r+d_r) k_r */
    const float *kv_norm_w; /* kv_norm.weight [r] */
    const float *kv_norm_b; /* kv_norm.bias [r] */
    const float *wkv_b;     /* wkv_b.weight [H*(d_n+d_v), r]: per head W_UK (d_n rows), W_UV */
    mtla_matrix wo;         /* wo.weight [D, H*d_v] */
    mtla_matrix fc_c_w;     /* hypernet_down.fc_c.weight [h_r, r] (mtla only) */
    const float *fc_c_b;    /* hypernet_down.fc_c.bias [h_r] */
    mtla_matrix fc_p_w;     /* hypernet_down.fc_p.weight [h_r, r] */
    const float *fc_p_b;    /* hypernet_down.fc_p.bias [h_r] */
} latent_weights;

/* decoder.layers.L.self_attn.* for "mha" and "gqa". */
typedef struct rotary_weights {
    mtla_matrix q_w, k_w, v_w, o_w; /* q_proj [H*d_h, D], k_proj and v_proj [H_kv*d_h, D],
                                       out_proj [D, H*d_h] */
    const float *q_b, *k_b, *v_b, *o_b; /* their biases */
} rotary_weights;

typedef struct decoder_layer {
    const float *ln1_w, *ln1_b; /* decoder.layers.L.self_attn_layer_norm [D] */
    mtla_matrix fc1_w;          /* decoder.layers.L.fc1.weight [G, D] */
    const float *fc1_b;         /* decoder.layers.L.fc1.bias [G] */
    mtla_matrix fc2_w;          /* decoder.layers.L.fc2.weight [D, G] */
    const float *fc2_b;         /* decoder.layers.L.fc2.bias [D] */
    const float *ln2_w, *ln2_b; /* decoder.layers.L.final_layer_norm [D] */
    latent_weights latent;
    rotary_weights rotary;
} decoder_layer;

struct mtla_decoder {
    const mtla_ops *ops;
    mtla_decoder_config cfg;
    mtla_vocab_config vocab;
    int latent;                     /* mla or mtla */
    int merge;                      /* mtla: slots are hyper-network weighted sums */
    int32_t s;                      /* tokens per slot: down_rate for mtla, 1 otherwise */
    int64_t key;                    /* floats per cached key row: latent r + d_r; rotary d_h */
    const float *embed;             /* decoder.embed_tokens.weight [V, D] */
    const float *final_w, *final_b; /* decoder.layer_norm [D] */
    mtla_matrix output;             /* decoder.output_projection.weight [V, D] (no bias) */
    decoder_layer *layers;
};

typedef struct layer_cache {
    /* latent: [n_shared, r+d_r] slots [c | rope key]; rotary: K then V, each [H_kv, S, d_h]. */
    float *shared;
    /* latent: [hyps, cap, r+d_r]; rotary: K then V, each [hyps, H_kv, cap, d_h]. `spare` has
     * the same size and receives reorders. */
    float *own;
    float *spare;
} layer_cache;

/* Backend buffers for one step of up to `rows` key rows and `hyps` hypotheses. */
typedef struct workspace {
    float *x, *a, *h; /* [rows, D] */
    float *ffn;       /* [hyps, G] */
    float *q;         /* [hyps, H*(d_n+d_r)] or [hyps, H*d_h] */
    float *qcat;      /* latent: [hyps, H, r+d_r] absorbed queries */
    float *att;       /* [hyps, H, max(r, d_h)] attention outputs */
    float *y;         /* [hyps, H*d_v] */
    float *c, *kr;    /* latent: [rows, r], [rows, d_r]; rotary: K, V rows [rows, H_kv*d_h] */
    float *cp, *cc;   /* mtla: [rows, h_r] */
    float *gate;      /* mtla: [rows] */
    float *pe;        /* mtla: [rows, r] chunk sinusoids */
    float *logits;    /* [hyps, V] */
} workspace;

struct mtla_decoder_state {
    mtla_decoder *dec;
    layer_cache *caches;
    int64_t prompt_frames; /* S */
    int64_t n_shared;      /* shared key rows (slots) per layer */
    int64_t n_own;         /* own key rows per hypothesis per layer */
    int64_t cap;           /* own key rows each hypothesis has room for */
    int64_t count;         /* rows absorbed so far: prompt + start + text tokens */
    int32_t hyps;
    int64_t ws_rows, ws_hyps, cache_shared, cache_own; /* capacities allocated */
    workspace ws;
    float *positions; /* host: rope positions, one per rotated row */
    float *pe_host;   /* host: [rows, r] */
    int64_t positions_count;
};

/* ------------------------------------------------------------------ weights */

static mtla_status bind(mtla_weights *w, const float **dst, mtla_error *err, const char *name,
                        int layer)
{
    char full[MTLA_TENSOR_NAME_MAX];
    snprintf(full, sizeof full, "decoder.layers.%d.%s", layer, name);
    *dst = mtla_weights_get(w, err, "%s", full);
    return *dst ? MTLA_OK : err->status;
}

/* A Linear weight, in the translator's dtype. */
static mtla_status bind_matrix(mtla_weights *w, mtla_matrix *dst, mtla_error *err,
                               const char *name, int layer)
{
    char full[MTLA_TENSOR_NAME_MAX];
    snprintf(full, sizeof full, "decoder.layers.%d.%s", layer, name);
    *dst = mtla_weights_matrix(w, err, "%s", full);
    return dst->data ? MTLA_OK : err->status;
}

mtla_status mtla_decoder_create(const mtla_ops *ops, mtla_weights *weights,
                                const mtla_model_config *config, mtla_decoder **out,
                                mtla_error *err)
{
    *out = NULL;
    const mtla_attention_config *att = &config->decoder.attention;
    if (att->kv_lora_rank > MTLA_OPS_MAX_HEAD_DIM || att->head_dim > MTLA_OPS_MAX_HEAD_DIM)
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED,
                         "decoder attention rank above %d is not supported", MTLA_OPS_MAX_HEAD_DIM);
    mtla_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the decoder");
    d->ops = ops;
    d->cfg = config->decoder;
    d->vocab = config->vocab;
    d->latent = att->type == MTLA_ATTENTION_MLA || att->type == MTLA_ATTENTION_MTLA;
    d->merge = att->type == MTLA_ATTENTION_MTLA;
    d->s = d->merge ? att->down_rate : 1;
    d->key = d->latent ? att->kv_lora_rank + att->qk_rope_head_dim : att->head_dim;
    d->layers = calloc((size_t)d->cfg.layers, sizeof *d->layers);
    if (!d->layers) {
        free(d);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the decoder");
    }
    mtla_status st = MTLA_OK;
#define BIND(dst, name)                                                                            \
    do {                                                                                           \
        if (st == MTLA_OK)                                                                         \
            st = bind(weights, &(dst), err, name, l);                                              \
    } while (0)
#define BIND_MATRIX(dst, name)                                                                     \
    do {                                                                                           \
        if (st == MTLA_OK)                                                                         \
            st = bind_matrix(weights, &(dst), err, name, l);                                       \
    } while (0)
    for (int l = 0; l < d->cfg.layers && st == MTLA_OK; l++) {
        decoder_layer *L = &d->layers[l];
        BIND(L->ln1_w, "self_attn_layer_norm.weight");
        BIND(L->ln1_b, "self_attn_layer_norm.bias");
        BIND_MATRIX(L->fc1_w, "fc1.weight");
        BIND(L->fc1_b, "fc1.bias");
        BIND_MATRIX(L->fc2_w, "fc2.weight");
        BIND(L->fc2_b, "fc2.bias");
        BIND(L->ln2_w, "final_layer_norm.weight");
        BIND(L->ln2_b, "final_layer_norm.bias");
        if (d->latent) {
            latent_weights *a = &L->latent;
            BIND_MATRIX(a->wq, "self_attn.wq.weight");
            BIND_MATRIX(a->wkv_a, "self_attn.wkv_a.weight");
            BIND(a->kv_norm_w, "self_attn.kv_norm.weight");
            BIND(a->kv_norm_b, "self_attn.kv_norm.bias");
            BIND(a->wkv_b, "self_attn.wkv_b.weight");
            BIND_MATRIX(a->wo, "self_attn.wo.weight");
            if (d->merge) {
                BIND_MATRIX(a->fc_c_w, "self_attn.hypernet_down.fc_c.weight");
                BIND(a->fc_c_b, "self_attn.hypernet_down.fc_c.bias");
                BIND_MATRIX(a->fc_p_w, "self_attn.hypernet_down.fc_p.weight");
                BIND(a->fc_p_b, "self_attn.hypernet_down.fc_p.bias");
            }
        } else {
            rotary_weights *a = &L->rotary;
            BIND_MATRIX(a->q_w, "self_attn.q_proj.weight");
            BIND(a->q_b, "self_attn.q_proj.bias");
            BIND_MATRIX(a->k_w, "self_attn.k_proj.weight");
            BIND(a->k_b, "self_attn.k_proj.bias");
            BIND_MATRIX(a->v_w, "self_attn.v_proj.weight");
            BIND(a->v_b, "self_attn.v_proj.bias");
            BIND_MATRIX(a->o_w, "self_attn.out_proj.weight");
            BIND(a->o_b, "self_attn.out_proj.bias");
        }
    }
#undef BIND
#undef BIND_MATRIX
    if (st == MTLA_OK) {
        d->embed = mtla_weights_get(weights, err, "decoder.embed_tokens.weight");
        d->final_w = mtla_weights_get(weights, err, "decoder.layer_norm.weight");
        d->final_b = mtla_weights_get(weights, err, "decoder.layer_norm.bias");
        d->output = mtla_weights_matrix(weights, err, "decoder.output_projection.weight");
        if (!d->embed || !d->final_w || !d->final_b || !d->output.data)
            st = err->status;
    }
    if (st != MTLA_OK) {
        mtla_decoder_free(d);
        return st;
    }
    *out = d;
    return MTLA_OK;
}

void mtla_decoder_free(mtla_decoder *decoder)
{
    if (!decoder)
        return;
    free(decoder->layers);
    free(decoder);
}

const mtla_vocab_config *mtla_decoder_vocab(const mtla_decoder_state *state)
{
    return &state->dec->vocab;
}

/* ------------------------------------------------------------------ state and buffers */

mtla_status mtla_decoder_state_create(mtla_decoder *decoder, mtla_decoder_state **out,
                                      mtla_error *err)
{
    *out = NULL;
    mtla_decoder_state *st = calloc(1, sizeof *st);
    if (st)
        st->caches = calloc((size_t)decoder->cfg.layers, sizeof *st->caches);
    if (!st || !st->caches) {
        free(st);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a decoding state");
    }
    st->dec = decoder;
    *out = st;
    return MTLA_OK;
}

static void workspace_free(const mtla_ops *ops, workspace *ws)
{
    float **all[] = {&ws->x, &ws->a,  &ws->h,  &ws->ffn, &ws->q,    &ws->qcat, &ws->att,   &ws->y,
                     &ws->c, &ws->kr, &ws->cp, &ws->cc,  &ws->gate, &ws->pe,   &ws->logits};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (*all[i])
            ops->free(ops, *all[i]);
        *all[i] = NULL;
    }
}

void mtla_decoder_state_free(mtla_decoder_state *state)
{
    if (!state)
        return;
    const mtla_ops *ops = state->dec->ops;
    for (int l = 0; l < state->dec->cfg.layers; l++) {
        layer_cache *c = &state->caches[l];
        if (c->shared)
            ops->free(ops, c->shared);
        if (c->own)
            ops->free(ops, c->own);
        if (c->spare)
            ops->free(ops, c->spare);
    }
    free(state->caches);
    workspace_free(ops, &state->ws);
    free(state->positions);
    free(state->pe_host);
    free(state);
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Buffers for `rows` key rows at once (the first step: prompt + start token) and `hyps`
 * hypotheses; kept between utterances and regrown only when too small. */
static mtla_status workspace_reserve(mtla_decoder_state *st, int64_t rows, int64_t hyps,
                                     mtla_error *err)
{
    if (rows <= st->ws_rows && hyps <= st->ws_hyps)
        return MTLA_OK;
    rows = max64(rows, st->ws_rows);
    hyps = max64(hyps, st->ws_hyps);
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const mtla_attention_config *att = &d->cfg.attention;
    int64_t D = d->cfg.d_model, H = att->heads;
    int64_t rows_all = max64(rows, hyps);
    workspace_free(ops, &st->ws);
    workspace *ws = &st->ws;
    int64_t q_width, att_width, y_width, c_width, kr_width;
    if (d->latent) {
        q_width = H * (att->qk_nope_head_dim + att->qk_rope_head_dim);
        att_width = H * att->kv_lora_rank;
        y_width = H * att->v_head_dim;
        c_width = att->kv_lora_rank;
        kr_width = att->qk_rope_head_dim;
    } else {
        q_width = H * att->head_dim;
        att_width = H * att->head_dim;
        y_width = H * att->head_dim;
        c_width = (int64_t)att->kv_heads * att->head_dim;
        kr_width = c_width;
    }
    int64_t hr = d->merge ? att->hyper_rank : 1;
    int64_t r = d->latent ? att->kv_lora_rank : 1;
    struct {
        float **buf;
        int64_t count;
    } plan[] = {
        {&ws->x, rows_all * D},
        {&ws->a, rows_all * D},
        {&ws->h, rows_all * max64(D, r)}, /* also the latent c_raw rows */
        {&ws->ffn, hyps * d->cfg.ffn_dim},
        {&ws->q, hyps * q_width},
        {&ws->qcat, d->latent ? hyps * H * d->key : 1},
        {&ws->att, hyps * att_width},
        {&ws->y, hyps * y_width},
        {&ws->c, rows_all * c_width},
        {&ws->kr, rows_all * kr_width},
        {&ws->cp, rows_all * hr},
        {&ws->cc, rows_all * hr},
        {&ws->gate, rows_all},
        {&ws->pe, rows_all * r},
        {&ws->logits, hyps * d->vocab.size},
    };
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        *plan[i].buf = ops->alloc(ops, (size_t)plan[i].count);
        if (!*plan[i].buf) {
            workspace_free(ops, ws);
            st->ws_rows = st->ws_hyps = 0;
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of %s memory for a decoding workspace",
                             ops->name);
        }
    }
    int64_t npos = rows_all * max64(H, att->kv_heads);
    float *positions = realloc(st->positions, (size_t)npos * sizeof *positions);
    float *pe_host = realloc(st->pe_host, (size_t)(rows_all * r) * sizeof *pe_host);
    if (positions)
        st->positions = positions;
    if (pe_host)
        st->pe_host = pe_host;
    if (!positions || !pe_host) {
        workspace_free(ops, ws);
        st->ws_rows = st->ws_hyps = 0;
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a decoding workspace");
    }
    st->positions_count = npos;
    st->ws_rows = rows;
    st->ws_hyps = hyps;
    return MTLA_OK;
}

/* Floats of one layer's shared and own caches. */
static int64_t shared_floats(const mtla_decoder_state *st)
{
    const mtla_decoder *d = st->dec;
    if (d->latent)
        return st->n_shared * d->key;
    return 2 * (int64_t)d->cfg.attention.kv_heads * st->n_shared * d->key;
}

static int64_t own_floats(const mtla_decoder_state *st, int64_t hyps, int64_t cap)
{
    const mtla_decoder *d = st->dec;
    int64_t heads = d->latent ? 1 : 2 * (int64_t)d->cfg.attention.kv_heads;
    return hyps * heads * cap * d->key;
}

static mtla_status caches_reserve(mtla_decoder_state *st, mtla_error *err)
{
    const mtla_ops *ops = st->dec->ops;
    int64_t shared = max64(shared_floats(st), 1);
    int64_t own = own_floats(st, st->hyps, st->cap);
    for (int l = 0; l < st->dec->cfg.layers; l++) {
        layer_cache *c = &st->caches[l];
        if (shared > st->cache_shared) {
            if (c->shared)
                ops->free(ops, c->shared);
            c->shared = ops->alloc(ops, (size_t)shared);
        }
        if (own > st->cache_own) {
            if (c->own)
                ops->free(ops, c->own);
            if (c->spare)
                ops->free(ops, c->spare);
            c->own = ops->alloc(ops, (size_t)own);
            c->spare = ops->alloc(ops, (size_t)own);
        }
        if (!c->shared || !c->own || !c->spare) {
            st->cache_shared = st->cache_own = 0;
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of %s memory for the decoder cache",
                             ops->name);
        }
    }
    st->cache_shared = max64(shared, st->cache_shared);
    st->cache_own = max64(own, st->cache_own);
    return MTLA_OK;
}

/* The rope/positions buffer: `n` rows at position `pos`, each repeated `repeat` times. */
static const float *positions_from(mtla_decoder_state *st, int64_t first, int64_t n, int64_t repeat)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < repeat; k++)
            st->positions[i * repeat + k] = (float)(first + i);
    return st->positions;
}

static const float *positions_same(mtla_decoder_state *st, int64_t pos, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        st->positions[i] = (float)pos;
    return st->positions;
}

/* ------------------------------------------------------------------ MTLA pieces (SPEC.md 5) */

/* Chunk sinusoid PE(m) of the hyper-network, d = r: sin on even dims 2i, cos on odd dims,
 * frequency exp(2i * -(ln(10000) / r)); float32 in torch's order of operations. */
static void chunk_sinusoid(float *pe, int64_t m, int64_t r)
{
    float step = -(logf(10000.0f) / (float)r);
    for (int64_t i = 0; i < r; i += 2) {
        float freq = expf((float)i * step);
        float angle = (float)m * freq;
        pe[i] = sinf(angle);
        if (i + 1 < r)
            pe[i + 1] = cosf(angle);
    }
}

/* c (n rows, already kv_norm'ed) *= w, w = sigmoid(fc_c(PE(m_i)) . fc_p(c_i)),
 * m_i = floor((T_i - 1) / s) for the 1-based global index T_i = first_index + i, or
 * T_i = first_index for every row when same_index (one row per hypothesis). */
static void merge_weights(mtla_decoder_state *st, const latent_weights *w, int64_t n,
                          int64_t first_index, int same_index)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const mtla_attention_config *att = &d->cfg.attention;
    int64_t r = att->kv_lora_rank, hr = att->hyper_rank, s = d->s;
    workspace *ws = &st->ws;
    int64_t m0 = (first_index - 1) / s;
    int64_t m1 = same_index ? m0 : (first_index + n - 2) / s;
    int64_t chunks = m1 - m0 + 1;
    for (int64_t m = m0; m <= m1; m++)
        chunk_sinusoid(st->pe_host + (m - m0) * r, m, r);
    ops->upload(ops, ws->pe, st->pe_host, (size_t)(chunks * r));
    ops->linear(ops, ws->pe, chunks, r, &w->fc_c_w, w->fc_c_b, hr, ws->cc);
    ops->linear(ops, ws->c, n, r, &w->fc_p_w, w->fc_p_b, hr, ws->cp);
    if (chunks == 1) {
        ops->row_dot_sigmoid(ops, ws->cp, hr, ws->cc, 0, n, hr, ws->gate);
    } else {
        /* One call per chunk, each row reading its own chunk's fc_c(PE(m)). */
        for (int64_t i = 0; i < n;) {
            int64_t m = (first_index + i - 1) / s;
            int64_t end = (m + 1) * s - first_index + 1; /* first row of the next chunk */
            int64_t len = (end < n ? end : n) - i;
            ops->row_dot_sigmoid(ops, ws->cp + i * hr, hr, ws->cc + (m - m0) * hr, 0, len, hr,
                                 ws->gate + i);
            i += len;
        }
    }
    ops->scale_rows(ops, ws->c, n, r, r, ws->gate);
}

/* Latent keys of `n` input rows x ([n, D]) at global indices first_index.. (positions
 * first_index-1..): ws->c = (w *) kv_norm(c_raw), ws->kr = RoPE(k_r). */
static void latent_keys(mtla_decoder_state *st, const latent_weights *w, const float *x, int64_t n,
                        int64_t first_index, int same_position)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const mtla_attention_config *att = &d->cfg.attention;
    int64_t D = d->cfg.d_model, r = att->kv_lora_rank, dr = att->qk_rope_head_dim;
    workspace *ws = &st->ws;
    mtla_matrix c_raw = mtla_matrix_rows(&w->wkv_a, 0, r), k_r = mtla_matrix_rows(&w->wkv_a, r, dr);
    ops->linear(ops, x, n, D, &c_raw, NULL, r, ws->h);
    ops->linear(ops, x, n, D, &k_r, NULL, dr, ws->kr);
    ops->layer_norm(ops, ws->h, n, r, w->kv_norm_w, w->kv_norm_b, LN_EPS, ws->c);
    const float *pos = same_position ? positions_same(st, first_index - 1, n)
                                     : positions_from(st, first_index - 1, n, 1);
    ops->rope(ops, ws->kr, n, dr, dr, pos, (float)att->rope_theta);
    if (d->merge)
        merge_weights(st, w, n, first_index, same_position);
}

/* Absorbed queries of `hyps` rows a at position pos: qcat[b, h] = [W_UK,h^T q_n,h | RoPE(q_r,h)]
 * (SPEC.md 5). */
static void latent_queries(mtla_decoder_state *st, const latent_weights *w, const float *a,
                           int64_t hyps, int64_t pos)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const mtla_attention_config *att = &d->cfg.attention;
    int64_t D = d->cfg.d_model, H = att->heads, r = att->kv_lora_rank;
    int64_t dn = att->qk_nope_head_dim, dr = att->qk_rope_head_dim, dv = att->v_head_dim;
    int64_t qw = dn + dr, K = d->key;
    workspace *ws = &st->ws;
    ops->linear(ops, a, hyps, D, &w->wq, NULL, H * qw, ws->q);
    ops->rope(ops, ws->q + dn, hyps * H, qw, dr, positions_same(st, pos, hyps * H),
              (float)att->rope_theta);
    for (int64_t h = 0; h < H; h++)
        ops->gemm(ops, 0, 0, hyps, r, dn, 1.0f, ws->q + h * qw, H * qw,
                  w->wkv_b + h * (dn + dv) * r, r, 0.0f, ws->qcat + h * K, H * K);
    ops->copy2d(ops, ws->qcat + r, K, ws->q + dn, qw, hyps * H, dr, 0);
}

/* out[b] = W_o concat_h(W_UV,h o_h) for the attention outputs o ([hyps, H, r]). */
static void latent_output(mtla_decoder_state *st, const latent_weights *w, int64_t hyps, float *out)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const mtla_attention_config *att = &d->cfg.attention;
    int64_t D = d->cfg.d_model, H = att->heads, r = att->kv_lora_rank;
    int64_t dn = att->qk_nope_head_dim, dv = att->v_head_dim;
    workspace *ws = &st->ws;
    for (int64_t h = 0; h < H; h++)
        ops->gemm(ops, 0, 1, hyps, dv, r, 1.0f, ws->att + h * r, H * r,
                  w->wkv_b + (h * (dn + dv) + dn) * r, r, 0.0f, ws->y + h * dv, H * dv);
    ops->linear(ops, ws->y, hyps, H * dv, &w->wo, NULL, D, out);
}

static void latent_attend(mtla_decoder_state *st, const layer_cache *cache, int64_t hyps)
{
    const mtla_decoder *d = st->dec;
    const mtla_attention_config *att = &d->cfg.attention;
    int64_t K = d->key;
    mtla_kv_block blocks[2] = {
        {cache->shared, cache->shared, st->n_shared, K, 0, 0},
        {cache->own, cache->own, st->n_own, K, 0, st->cap * K},
    };
    float scale = 1.0f / sqrtf((float)(att->qk_nope_head_dim + att->qk_rope_head_dim));
    d->ops->decode_attention(d->ops, hyps, att->heads, 1, K, att->kv_lora_rank, scale, st->ws.qcat,
                             blocks, 2, st->ws.att);
}

/* First step, latent types: key rows [P ; a] with T = 1 .. S+1. Complete prompt chunks go to
 * the shared slots; the chunk holding the start token becomes hypothesis 0's own slot 0. */
static void latent_start(mtla_decoder_state *st, int l, const float *prompt, const float *a,
                         float *out)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const latent_weights *w = &d->layers[l].latent;
    const layer_cache *cache = &st->caches[l];
    const mtla_attention_config *att = &d->cfg.attention;
    int64_t S = st->prompt_frames, D = d->cfg.d_model, r = att->kv_lora_rank;
    int64_t dr = att->qk_rope_head_dim, K = d->key, s = d->s;
    workspace *ws = &st->ws;

    /* rows [P ; a] side by side in ws->a's tail would alias a; copy them into ws->x's rows
     * 1.. instead: x row 0 still holds the start token's hidden state, needed after this. */
    float *rows = ws->x + D;
    ops->copy(ops, rows, prompt, (size_t)(S * D));
    ops->copy(ops, rows + S * D, a, (size_t)D);
    latent_keys(st, w, rows, S + 1, 1, 0);

    /* Slot k = sum of w c over chunk rows k s .. k s + s - 1, rope key of the chunk's last row. */
    int64_t n = st->n_shared;
    if (n > 0) {
        for (int64_t i = 0; i < s; i++)
            ops->copy2d(ops, cache->shared, K, ws->c + i * r, s * r, n, r, i > 0);
        ops->copy2d(ops, cache->shared + r, K, ws->kr + (s - 1) * dr, s * dr, n, dr, 0);
    }
    for (int64_t i = n * s; i <= S; i++)
        ops->copy2d(ops, cache->own, K, ws->c + i * r, r, 1, r, i > n * s);
    ops->copy2d(ops, cache->own + r, K, ws->kr + S * dr, dr, 1, dr, 0);

    latent_queries(st, w, a, 1, S);
    latent_attend(st, cache, 1);
    latent_output(st, w, 1, out);
}

/* A later step: one row per hypothesis at global index T = count + 1. A row whose
 * (T - 1) mod s == 0 opens a new slot; any other row adds w c into the last slot and
 * overwrites its rope key (SPEC.md 5). */
static void latent_step(mtla_decoder_state *st, int l, const float *a, int opens, float *out)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const latent_weights *w = &d->layers[l].latent;
    const layer_cache *cache = &st->caches[l];
    int64_t r = d->cfg.attention.kv_lora_rank, dr = d->cfg.attention.qk_rope_head_dim;
    int64_t K = d->key, hyps = st->hyps, T = st->count + 1;
    workspace *ws = &st->ws;

    latent_keys(st, w, a, hyps, T, 1);
    float *slot = cache->own + (st->n_own - 1) * K; /* n_own already counts an opened slot */
    ops->copy2d(ops, slot, st->cap * K, ws->c, r, hyps, r, !opens);
    ops->copy2d(ops, slot + r, st->cap * K, ws->kr, dr, hyps, dr, 0);

    latent_queries(st, w, a, hyps, T - 1);
    latent_attend(st, cache, hyps);
    latent_output(st, w, hyps, out);
}

/* ------------------------------------------------------------------ MHA / GQA */

/* K, V rows of x ([n, D]) at positions first.. (or all at `first` when same_position):
 * ws->c = RoPE(k_proj x), ws->kr = v_proj x, [n, H_kv*d_h]. */
static void rotary_keys(mtla_decoder_state *st, const rotary_weights *w, const float *x, int64_t n,
                        int64_t first, int same_position)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const mtla_attention_config *att = &d->cfg.attention;
    int64_t D = d->cfg.d_model, Hkv = att->kv_heads, dh = att->head_dim;
    workspace *ws = &st->ws;
    ops->linear(ops, x, n, D, &w->k_w, w->k_b, Hkv * dh, ws->c);
    ops->linear(ops, x, n, D, &w->v_w, w->v_b, Hkv * dh, ws->kr);
    const float *pos =
        same_position ? positions_same(st, first, n * Hkv) : positions_from(st, first, n, Hkv);
    ops->rope(ops, ws->c, n * Hkv, dh, dh, pos, (float)att->rope_theta);
}

/* q = RoPE((q_proj a) d_h^-1/2) for `hyps` rows at position pos, then attention over the
 * shared prompt K/V and the hypotheses' own rows, then out_proj. */
static void rotary_attend(mtla_decoder_state *st, int l, const float *a, int64_t hyps, int64_t pos,
                          float *out)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const rotary_weights *w = &d->layers[l].rotary;
    const layer_cache *cache = &st->caches[l];
    const mtla_attention_config *att = &d->cfg.attention;
    int64_t D = d->cfg.d_model, H = att->heads, Hkv = att->kv_heads, dh = att->head_dim;
    workspace *ws = &st->ws;
    ops->linear(ops, a, hyps, D, &w->q_w, w->q_b, H * dh, ws->q);
    ops->scale(ops, ws->q, 1.0f / sqrtf((float)dh), (size_t)(hyps * H * dh));
    ops->rope(ops, ws->q, hyps * H, dh, dh, positions_same(st, pos, hyps * H),
              (float)att->rope_theta);
    int64_t S = st->n_shared;
    const float *own_v = cache->own + own_floats(st, st->hyps, st->cap) / 2;
    mtla_kv_block blocks[2] = {
        {cache->shared, cache->shared + Hkv * S * dh, S, dh, S * dh, 0},
        {cache->own, own_v, st->n_own, dh, st->cap * dh, Hkv * st->cap * dh},
    };
    ops->decode_attention(ops, hyps, H, Hkv, dh, dh, 1.0f, ws->q, blocks, 2, ws->att);
    ops->linear(ops, ws->att, hyps, H * dh, &w->o_w, w->o_b, D, out);
}

/* Writes `hyps` K/V rows (ws->c, ws->kr) into own row `slot` of every hypothesis. */
static void rotary_store(mtla_decoder_state *st, const layer_cache *cache, int64_t hyps,
                         int64_t slot)
{
    const mtla_ops *ops = st->dec->ops;
    int64_t dh = st->dec->cfg.attention.head_dim;
    float *own_v = cache->own + own_floats(st, st->hyps, st->cap) / 2;
    /* Rows (b, g) of K are cap*d_h apart in the own cache and d_h apart in ws. */
    int64_t rows = hyps * st->dec->cfg.attention.kv_heads;
    ops->copy2d(ops, cache->own + slot * dh, st->cap * dh, st->ws.c, dh, rows, dh, 0);
    ops->copy2d(ops, own_v + slot * dh, st->cap * dh, st->ws.kr, dh, rows, dh, 0);
}

static void rotary_start(mtla_decoder_state *st, int l, const float *prompt, const float *a,
                         float *out)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const layer_cache *cache = &st->caches[l];
    int64_t S = st->prompt_frames, Hkv = d->cfg.attention.kv_heads;
    int64_t dh = d->cfg.attention.head_dim;
    workspace *ws = &st->ws;

    rotary_keys(st, &d->layers[l].rotary, prompt, S, 0, 0);
    /* [S, H_kv*d_h] -> [H_kv, S, d_h], K then V. */
    float *shared_v = cache->shared + Hkv * S * dh;
    for (int64_t g = 0; g < Hkv; g++) {
        ops->copy2d(ops, cache->shared + g * S * dh, dh, ws->c + g * dh, Hkv * dh, S, dh, 0);
        ops->copy2d(ops, shared_v + g * S * dh, dh, ws->kr + g * dh, Hkv * dh, S, dh, 0);
    }
    rotary_keys(st, &d->layers[l].rotary, a, 1, S, 1);
    rotary_store(st, cache, 1, 0);
    rotary_attend(st, l, a, 1, S, out);
}

static void rotary_step(mtla_decoder_state *st, int l, const float *a, float *out)
{
    int64_t pos = st->count; /* 0-based position of the new row */
    rotary_keys(st, &st->dec->layers[l].rotary, a, st->hyps, pos, 1);
    rotary_store(st, &st->caches[l], st->hyps, st->n_own - 1);
    rotary_attend(st, l, a, st->hyps, pos, out);
}

/* ------------------------------------------------------------------ layers (SPEC.md 4) */

/* x = LN1(x + attention); x = LN2(x + fc2(ReLU(fc1(x)))) for `n` rows; ws->h holds the
 * attention output on entry. */
static void layer_finish(mtla_decoder_state *st, int l, int64_t n)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    const decoder_layer *L = &d->layers[l];
    int64_t D = d->cfg.d_model, G = d->cfg.ffn_dim;
    workspace *ws = &st->ws;
    ops->axpy(ops, 1.0f, ws->x, ws->h, (size_t)(n * D));
    ops->layer_norm(ops, ws->h, n, D, L->ln1_w, L->ln1_b, LN_EPS, ws->x);
    ops->linear(ops, ws->x, n, D, &L->fc1_w, L->fc1_b, G, ws->ffn);
    ops->relu(ops, ws->ffn, (size_t)(n * G));
    ops->linear(ops, ws->ffn, n, G, &L->fc2_w, L->fc2_b, D, ws->h);
    ops->axpy(ops, 1.0f, ws->x, ws->h, (size_t)(n * D));
    ops->layer_norm(ops, ws->h, n, D, L->ln2_w, L->ln2_b, LN_EPS, ws->x);
}

/* decoder.layer_norm, output projection, log-softmax; [n, V] to the host. */
static void decoder_output(mtla_decoder_state *st, int64_t n, float *logprobs)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    int64_t D = d->cfg.d_model, V = d->vocab.size;
    workspace *ws = &st->ws;
    ops->layer_norm(ops, ws->x, n, D, d->final_w, d->final_b, LN_EPS, ws->a);
    ops->linear(ops, ws->a, n, D, &d->output, NULL, V, ws->logits);
    ops->log_softmax(ops, ws->logits, n, V);
    ops->download(ops, logprobs, ws->logits, (size_t)(n * V));
}

static void embed(mtla_decoder_state *st, const int32_t *tokens, int64_t n)
{
    const mtla_decoder *d = st->dec;
    int64_t D = d->cfg.d_model;
    d->ops->embed(d->ops, d->embed, D, tokens, n, sqrtf((float)D), st->ws.x);
}

mtla_status mtla_decoder_start(mtla_decoder_state *st, const float *prompt, int64_t prompt_frames,
                               int32_t hyps, int32_t max_steps, float *logprobs, mtla_error *err)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    if (prompt_frames < 1 || hyps < 1 || max_steps < 0)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "decoder start needs a prompt and at least one hypothesis");
    int64_t S = prompt_frames, s = d->s, D = d->cfg.d_model;
    st->prompt_frames = S;
    st->hyps = hyps;
    st->count = S + 1;
    st->n_own = 1;
    /* Shared: rows only prompt frames touch (MTLA: complete chunks). Own: from the first row
     * not shared up to the last row a hypothesis can reach, S + 1 + max_steps. */
    st->n_shared = d->latent ? S / s : S;
    int64_t last = S + 1 + max_steps;
    st->cap = (last - st->n_shared * s + s - 1) / s;
    mtla_status status = workspace_reserve(st, S + 2, hyps, err);
    if (status == MTLA_OK)
        status = caches_reserve(st, err);
    if (status != MTLA_OK)
        return status;

    workspace *ws = &st->ws;
    int32_t start = d->vocab.eos; /* fairseq starts every hypothesis with EOS */
    embed(st, &start, 1);
    for (int l = 0; l < d->cfg.layers; l++) {
        const decoder_layer *L = &d->layers[l];
        ops->layer_norm(ops, ws->x, 1, D, L->ln1_w, L->ln1_b, LN_EPS, ws->a);
        if (d->latent)
            latent_start(st, l, prompt, ws->a, ws->h);
        else
            rotary_start(st, l, prompt, ws->a, ws->h);
        layer_finish(st, l, 1);
    }
    decoder_output(st, 1, logprobs);

    /* Every hypothesis begins as a copy of hypothesis 0. */
    if (hyps > 1) {
        int32_t *zeros = calloc((size_t)hyps, sizeof *zeros);
        if (!zeros)
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a decoding state");
        mtla_decoder_reorder(st, zeros);
        free(zeros);
    }
    return MTLA_OK;
}

mtla_status mtla_decoder_step(mtla_decoder_state *st, const int32_t *tokens, float *logprobs,
                              mtla_error *err)
{
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    int64_t T = st->count + 1, D = d->cfg.d_model;
    int opens = (T - 1) % d->s == 0;
    if (st->n_own + opens > st->cap)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "decoder stepped past the %" PRId64 " rows reserved at start", st->cap);
    for (int32_t b = 0; b < st->hyps; b++)
        if (tokens[b] < 0 || tokens[b] >= d->vocab.size)
            return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "token id %d out of range",
                             (int)tokens[b]);
    st->n_own += opens;
    embed(st, tokens, st->hyps);
    workspace *ws = &st->ws;
    for (int l = 0; l < d->cfg.layers; l++) {
        const decoder_layer *L = &d->layers[l];
        ops->layer_norm(ops, ws->x, st->hyps, D, L->ln1_w, L->ln1_b, LN_EPS, ws->a);
        if (d->latent)
            latent_step(st, l, ws->a, opens, ws->h);
        else
            rotary_step(st, l, ws->a, ws->h);
        layer_finish(st, l, st->hyps);
    }
    st->count = T;
    decoder_output(st, st->hyps, logprobs);
    return MTLA_OK;
}

void mtla_decoder_reorder(mtla_decoder_state *st, const int32_t *source)
{
    int identity = 1;
    for (int32_t b = 0; b < st->hyps && identity; b++)
        identity = source[b] == b;
    if (identity)
        return;
    const mtla_decoder *d = st->dec;
    const mtla_ops *ops = d->ops;
    int64_t K = d->key, cap = st->cap;
    /* Only the filled rows move: n_own of each (hypothesis, head) block. */
    int64_t blocks = d->latent ? 1 : 2 * (int64_t)d->cfg.attention.kv_heads;
    int64_t v_offset = own_floats(st, st->hyps, cap) / 2;
    for (int l = 0; l < d->cfg.layers; l++) {
        layer_cache *c = &st->caches[l];
        for (int64_t g = 0; g < blocks; g++) {
            /* latent: one block per hypothesis; rotary: K heads then V heads. */
            int64_t offset =
                d->latent ? 0
                          : (g < blocks / 2 ? g * cap * K : v_offset + (g - blocks / 2) * cap * K);
            int64_t stride = d->latent ? cap * K : (blocks / 2) * cap * K;
            ops->gather_rows(ops, c->spare + offset, stride, c->own + offset, stride, source,
                             st->hyps, st->n_own * K);
        }
        float *t = c->own;
        c->own = c->spare;
        c->spare = t;
    }
}

void mtla_decoder_cache_bytes(const mtla_decoder_state *st, int64_t *shared,
                              int64_t *per_hypothesis)
{
    const mtla_decoder *d = st->dec;
    int64_t layers = d->cfg.layers;
    int64_t heads = d->latent ? 1 : 2 * (int64_t)d->cfg.attention.kv_heads;
    *shared = layers * shared_floats(st) * (int64_t)sizeof(float);
    *per_hypothesis = layers * heads * st->n_own * d->key * (int64_t)sizeof(float);
}
