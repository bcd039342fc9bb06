/* Encoder self-attention over one unpadded sequence, head by head: each head's q, k and v are
 * the columns h*d_k .. (h+1)*d_k - 1 of the [T, E] projections, read in place through the
 * leading dimension E, and its output lands in the same columns of ctx.
 *
 * - fairseq MultiheadAttention (transformer; conformer "abs"), docs/architecture.md 2.3:
 *   q = (x Wq^T + bq) d_k^-1/2, A_h = softmax(q_h k_h^T), ctx_h = A_h v_h.
 * - ESPnet RelPositionMultiHeadedAttention (conformer "rel_pos"), docs/architecture.md 2.4:
 *   score(h,i,j) = [(q_i + u_h).k_j + (q_i + v_h).p_h(i - j)] / sqrt(d_k), p = linear_pos(PE).
 * Oracle: tools/reference/encoder.py fairseq_self_attention, relpos_self_attention. */
#include <math.h>

#include "encoder/encoder_internal.h"

/* ctx_h = softmax(scores) v_h for head h, scores [t, t] in ws->scores. */
static void attend_head(const mtla_ops *ops, int64_t t, int64_t dim, int64_t dk, int64_t h,
                        enc_workspace *ws)
{
    ops->softmax(ops, ws->scores, t, t, t);
    ops->gemm(ops, 0, 0, t, dk, t, 1.0f, ws->scores, t, ws->v + h * dk, dim, 0.0f, ws->ctx + h * dk,
              dim);
}

void enc_self_attention(const mtla_ops *ops, const enc_attention *w, mtla_positions positions,
                        int64_t t, int64_t dim, int64_t heads, const float *x, enc_workspace *ws,
                        float *out)
{
    int64_t dk = dim / heads;
    ops->linear(ops, x, t, dim, &w->q.weight, w->q.bias, dim, ws->q);
    ops->linear(ops, x, t, dim, &w->k.weight, w->k.bias, dim, ws->k);
    ops->linear(ops, x, t, dim, &w->v.weight, w->v.bias, dim, ws->v);

    if (positions != MTLA_POSITIONS_REL_POS) {
        ops->scale(ops, ws->q, (float)pow((double)dk, -0.5), (size_t)(t * dim));
        for (int64_t h = 0; h < heads; h++) {
            ops->gemm(ops, 0, 1, t, t, dk, 1.0f, ws->q + h * dk, dim, ws->k + h * dk, dim, 0.0f,
                      ws->scores, t);
            attend_head(ops, t, dim, dk, h, ws);
        }
    } else {
        int64_t np = 2 * t - 1; /* relative positions t-1 .. -(t-1) */
        ops->linear(ops, ws->pos, np, dim, &w->pos_weight, NULL, dim, ws->pos_proj);
        /* pos_bias_u/v [H, d_k] flattened are biases over the E columns of q */
        ops->copy(ops, ws->q_u, ws->q, (size_t)(t * dim));
        ops->add_bias(ops, ws->q_u, w->pos_bias_u, t, dim);
        ops->copy(ops, ws->q_v, ws->q, (size_t)(t * dim));
        ops->add_bias(ops, ws->q_v, w->pos_bias_v, t, dim);
        float inv_sqrt_dk = (float)(1.0 / sqrt((double)dk));
        for (int64_t h = 0; h < heads; h++) {
            /* ac[i, j] = (q_i + u_h).k_j */
            ops->gemm(ops, 0, 1, t, t, dk, 1.0f, ws->q_u + h * dk, dim, ws->k + h * dk, dim, 0.0f,
                      ws->scores, t);
            /* bd[i, r] = (q_i + v_h).p_h(t - 1 - r), then ac[i, j] += bd[i, t - 1 - i + j] */
            ops->gemm(ops, 0, 1, t, np, dk, 1.0f, ws->q_v + h * dk, dim, ws->pos_proj + h * dk, dim,
                      0.0f, ws->bd, np);
            ops->rel_shift_add(ops, ws->scores, t, ws->bd, np);
            ops->scale(ops, ws->scores, inv_sqrt_dk, (size_t)(t * t));
            attend_head(ops, t, dim, dk, h, ws);
        }
    }
    ops->linear(ops, ws->ctx, t, dim, &w->out.weight, w->out.bias, dim, out);
}
