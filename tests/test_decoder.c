/* The decoder and the beam search against the PyTorch oracle (tools/reference, fixtures by
 * tools/golden/make_golden.py): for every golden model, starting from the oracle's own speech
 * prompt, the log-probabilities of forced decoding (incremental caches) within 1e-4, and the
 * beam results for beam 1, 5 and 50 token for token, scores within 1e-4. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model_dir.h"
#include "core/ops.h"
#include "core/weights.h"
#include "decoder/beam.h"
#include "decoder/decoder.h"
#include "golden.h"
#include "test_support.h"

#define TOLERANCE 1e-4

typedef struct golden {
    mtla_model_dir *dir;
    mtla_ops *ops;
    mtla_weights *weights;
    mtla_decoder *decoder;
    mtla_decoder_state *state;
    npy_array prompt;
    cJSON *meta, *beam;
} golden;

static golden golden_open(const char *model)
{
    golden g = {0};
    char rel[256];
    mtla_error err = {0};
    snprintf(rel, sizeof rel, "tests/golden/models/%s", model);
    cr_assert_eq(mtla_model_dir_open(fixture(rel), &g.dir, &err), MTLA_OK, "%s: %s", model,
                 err.message);
    g.ops = mtla_ops_cpu_create(1);
    cr_assert(g.ops);
    cr_assert_eq(mtla_weights_create(g.ops, g.dir, &g.weights, &err), MTLA_OK);
    cr_assert_eq(mtla_decoder_create(g.ops, g.weights, &g.dir->config, &g.decoder, &err), MTLA_OK,
                 "%s", err.message);
    cr_assert_eq(mtla_decoder_state_create(g.decoder, &g.state, &err), MTLA_OK);
    g.prompt = golden_npy(g.dir->path, "prompt.npy");
    cr_assert_eq(g.prompt.cols, (size_t)g.dir->config.decoder.d_model);
    g.meta = golden_json(g.dir->path, "meta.json");
    g.beam = golden_json(g.dir->path, "beam.json");
    return g;
}

static void golden_close(golden *g)
{
    mtla_decoder_state_free(g->state);
    mtla_decoder_free(g->decoder);
    mtla_weights_free(g->weights);
    mtla_ops_cpu_free(g->ops);
    mtla_model_dir_close(g->dir);
    npy_free(&g->prompt);
    cJSON_Delete(g->meta);
    cJSON_Delete(g->beam);
}

/* Row j = log-probs after decoder inputs 0..j, from one hypothesis's incremental path. */
static void check_forced(const char *model)
{
    golden g = golden_open(model);
    npy_array want = golden_npy(g.dir->path, "steplogprobs.npy");
    cJSON *inputs = cJSON_GetObjectItem(g.meta, "decoder_inputs");
    int n = cJSON_GetArraySize(inputs);
    int32_t V = g.dir->config.vocab.size;
    cr_assert_eq(want.rows, (size_t)n);
    cr_assert_eq(want.cols, (size_t)V);
    cr_assert_eq((int)cJSON_GetArrayItem(inputs, 0)->valuedouble, g.dir->config.vocab.eos);

    float *lp = malloc((size_t)V * sizeof *lp);
    mtla_error err = {0};
    cr_assert_eq(mtla_decoder_start(g.state, g.prompt.data, (int64_t)g.prompt.rows, 1, n, lp, &err),
                 MTLA_OK, "%s", err.message);
    double worst = max_abs_diff(lp, want.data, (size_t)V);
    for (int j = 1; j < n; j++) {
        int32_t token = (int32_t)cJSON_GetArrayItem(inputs, j)->valuedouble;
        cr_assert_eq(mtla_decoder_step(g.state, &token, lp, &err), MTLA_OK, "%s", err.message);
        double d = max_abs_diff(lp, want.data + (size_t)j * V, (size_t)V);
        cr_expect_leq(d, TOLERANCE, "%s: step %d log-probs differ by %g", model, j, d);
        worst = d > worst ? d : worst;
    }
    cr_log_info("%s forced decoding: max |ours - oracle| = %.2e", model, worst);
    free(lp);
    npy_free(&want);
    golden_close(&g);
}

static void check_beam(const char *model, int beam)
{
    golden g = golden_open(model);
    char key[16];
    snprintf(key, sizeof key, "%d", beam);
    cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(g.beam, "beams"), key);
    cr_assert(want, "%s: beam.json has no beam %d", model, beam);
    mtla_beam_params p = {
        .beam = beam,
        .max_len = (int32_t)cJSON_GetObjectItem(g.beam, "max_len")->valuedouble,
        .min_len = (int32_t)cJSON_GetObjectItem(g.beam, "min_len")->valuedouble,
        .lenpen = (float)cJSON_GetObjectItem(g.beam, "lenpen")->valuedouble,
    };
    int64_t frames = (int64_t)cJSON_GetObjectItem(g.beam, "n_frames")->valuedouble;
    const mtla_model_config *c = &g.dir->config;
    cr_assert_eq(mtla_beam_max_len(c->generation.max_len_a, c->generation.max_len_b, frames),
                 p.max_len, "%s: max_len from the config and the frame count", model);

    mtla_beam_result res;
    mtla_error err = {0};
    cr_assert_eq(mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &res, &err),
                 MTLA_OK, "%s", err.message);
    cJSON *finalized = cJSON_GetObjectItem(want, "finalized");
    cr_assert_eq(res.count, cJSON_GetArraySize(finalized), "%s beam %d: %d finalised, oracle %d",
                 model, beam, (int)res.count, cJSON_GetArraySize(finalized));
    char what[96];
    snprintf(what, sizeof what, "%s beam %d best", model, beam);
    golden_expect_tokens(what, cJSON_GetObjectItem(want, "tokens"), res.hyps[0].tokens,
                         res.hyps[0].length);
    double score = cJSON_GetObjectItem(want, "score")->valuedouble;
    cr_expect_leq(fabs(res.hyps[0].score - score), TOLERANCE, "%s: score %.6f, oracle %.6f", what,
                  res.hyps[0].score, score);
    for (int32_t i = 0; i < res.count; i++) {
        cJSON *h = cJSON_GetArrayItem(finalized, i);
        snprintf(what, sizeof what, "%s beam %d finalised #%d", model, beam, (int)i);
        golden_expect_tokens(what, cJSON_GetObjectItem(h, "tokens"), res.hyps[i].tokens,
                             res.hyps[i].length);
        double s = cJSON_GetObjectItem(h, "score")->valuedouble;
        cr_expect_leq(fabs(res.hyps[i].score - s), TOLERANCE, "%s: score %.6f, oracle %.6f", what,
                      res.hyps[i].score, s);
    }
    cr_log_info("%s beam %d: %d tokens, score %.5f (oracle %.5f), %d steps", model, beam,
                (int)res.hyps[0].length, res.hyps[0].score, score, (int)res.steps);
    mtla_beam_result_free(&res);
    golden_close(&g);
}

#define GOLDEN_MODEL(name)                                                                         \
    Test(decoder, name##_forced_log_probs)                                                         \
    {                                                                                              \
        check_forced(#name);                                                                       \
    }                                                                                              \
    Test(beam, name##_beam_1)                                                                      \
    {                                                                                              \
        check_beam(#name, 1);                                                                      \
    }                                                                                              \
    Test(beam, name##_beam_5)                                                                      \
    {                                                                                              \
        check_beam(#name, 5);                                                                      \
    }                                                                                              \
    Test(beam, name##_beam_50)                                                                     \
    {                                                                                              \
        check_beam(#name, 50);                                                                     \
    }

GOLDEN_MODEL(transformer_mtla_s2)
GOLDEN_MODEL(transformer_mtla_s2_even)
GOLDEN_MODEL(conformer_relpos_mtla_s3)
GOLDEN_MODEL(transformer_mtla_s1)
GOLDEN_MODEL(transformer_mla)
GOLDEN_MODEL(transformer_mha)
GOLDEN_MODEL(conformer_abs_gqa)
GOLDEN_MODEL(whisper_mtla_s2)

/* The decoder's own invariants, independent of fixtures. */
Test(decoder, mtla_shares_complete_prompt_chunks_and_reorders_only_own_slots)
{
    golden g = golden_open("transformer_mtla_s2");
    int32_t V = g.dir->config.vocab.size;
    float *lp = malloc((size_t)(4 * V) * sizeof *lp);
    mtla_error err = {0};
    int64_t S = (int64_t)g.prompt.rows;
    cr_assert_eq(mtla_decoder_start(g.state, g.prompt.data, S, 4, 10, lp, &err), MTLA_OK);
    int64_t shared, own;
    mtla_decoder_cache_bytes(g.state, &shared, &own);
    const mtla_attention_config *a = &g.dir->config.decoder.attention;
    int64_t slot =
        (int64_t)(a->kv_lora_rank + a->qk_rope_head_dim) * 4 * g.dir->config.decoder.layers;
    cr_expect_eq(shared, (S / 2) * slot, "shared: floor(S/s) slots per layer");
    cr_expect_eq(own, slot, "own: one slot (the start token's chunk) per layer");

    /* Different tokens per hypothesis, then a permutation: each row must follow its cache. */
    int32_t tokens[4] = {5, 6, 7, 8};
    cr_assert_eq(mtla_decoder_step(g.state, tokens, lp, &err), MTLA_OK);
    float *before = malloc((size_t)(4 * V) * sizeof *before);
    int32_t next[4] = {9, 9, 9, 9};
    cr_assert_eq(mtla_decoder_step(g.state, next, before, &err), MTLA_OK);

    mtla_decoder_state *again;
    cr_assert_eq(mtla_decoder_state_create(g.decoder, &again, &err), MTLA_OK);
    cr_assert_eq(mtla_decoder_start(again, g.prompt.data, S, 4, 10, lp, &err), MTLA_OK);
    cr_assert_eq(mtla_decoder_step(again, tokens, lp, &err), MTLA_OK);
    int32_t perm[4] = {3, 1, 0, 0};
    mtla_decoder_reorder(again, perm);
    float *after = malloc((size_t)(4 * V) * sizeof *after);
    cr_assert_eq(mtla_decoder_step(again, next, after, &err), MTLA_OK);
    for (int b = 0; b < 4; b++)
        cr_expect_leq(max_abs_diff(after + (size_t)b * V, before + (size_t)perm[b] * V, (size_t)V),
                      1e-6, "hypothesis %d after reorder", b);
    mtla_decoder_state_free(again);
    free(before);
    free(after);
    free(lp);
    golden_close(&g);
}

Test(decoder, stepping_past_the_reserved_length_is_an_error)
{
    golden g = golden_open("transformer_mha");
    int32_t V = g.dir->config.vocab.size;
    float *lp = malloc((size_t)V * sizeof *lp);
    mtla_error err = {0};
    cr_assert_eq(mtla_decoder_start(g.state, g.prompt.data, (int64_t)g.prompt.rows, 1, 1, lp, &err),
                 MTLA_OK);
    int32_t token = 5;
    cr_assert_eq(mtla_decoder_step(g.state, &token, lp, &err), MTLA_OK);
    cr_expect_neq(mtla_decoder_step(g.state, &token, lp, &err), MTLA_OK);
    cr_expect(strstr(err.message, "reserved"), "%s", err.message);
    token = V;
    cr_expect_neq(mtla_decoder_step(g.state, &token, lp, &err), MTLA_OK);
    free(lp);
    golden_close(&g);
}

/* ------------------------------------------------------------------ forced prefix */

static mtla_beam_params prefix_params(int32_t beam, const int32_t *prefix, int32_t length)
{
    mtla_beam_params p = {.beam = beam, .max_len = 20, .min_len = 1, .lenpen = 1.0f};
    p.prefix = prefix;
    p.prefix_length = length;
    return p;
}

/* Index of the largest log-prob that beam search may choose (pad excluded). */
static int32_t best_token(const float *lp, int32_t V, int32_t pad)
{
    int32_t best = pad == 0 ? 1 : 0;
    for (int32_t v = 0; v < V; v++)
        if (v != pad && lp[v] > lp[best])
            best = v;
    return best;
}

Test(beam, forced_prefix_tokens_are_scored_and_greedy_search_continues_from_them)
{
    golden g = golden_open("transformer_mtla_s2");
    const mtla_vocab_config *vc = &g.dir->config.vocab;
    int32_t V = vc->size;
    const int32_t prefix[3] = {5, 9, 7};
    mtla_beam_params p = prefix_params(1, prefix, 3);
    mtla_beam_result res;
    mtla_error err = {0};
    cr_assert_eq(mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &res, &err),
                 MTLA_OK, "%s", err.message);
    cr_assert_eq(res.count, 1);
    const mtla_beam_hypothesis *h = &res.hyps[0];
    cr_assert_geq(h->length, 3);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(h->tokens[i], prefix[i], "token %d is %d, forced %d", i, (int)h->tokens[i],
                     (int)prefix[i]);

    /* The same path by hand: each forced token's log-prob, then the greedy choice after them. */
    float *lp = malloc((size_t)V * sizeof *lp);
    cr_assert_eq(
        mtla_decoder_start(g.state, g.prompt.data, (int64_t)g.prompt.rows, 1, 20, lp, &err),
        MTLA_OK);
    for (int i = 0; i < 3; i++) {
        cr_expect_leq(fabsf(h->positional[i] - lp[prefix[i]]), 1e-5,
                      "forced token %d scored %g, its log-prob is %g", i, h->positional[i],
                      lp[prefix[i]]);
        cr_assert_eq(mtla_decoder_step(g.state, &prefix[i], lp, &err), MTLA_OK);
    }
    int32_t next = best_token(lp, V, vc->pad);
    if (h->length > 3)
        cr_expect_eq(h->tokens[3], next, "greedy continuation %d, by hand %d", (int)h->tokens[3],
                     (int)next);
    else
        cr_expect_eq(next, vc->eos, "ended after the prefix, but EOS is not the best next token");
    cr_expect_leq(fabsf(h->positional[3] - lp[next]), 1e-5);
    double sum = 0;
    for (int32_t i = 0; i <= h->length; i++)
        sum += h->positional[i];
    cr_expect_leq(fabs(h->score - sum / (h->length + 1)), 1e-4, "score with lenpen 1");
    free(lp);
    mtla_beam_result_free(&res);
    golden_close(&g);
}

Test(beam, every_hypothesis_of_a_wide_beam_starts_with_the_forced_prefix)
{
    golden g = golden_open("transformer_mtla_s2");
    const int32_t prefix[2] = {11, 4};
    mtla_beam_params p = prefix_params(5, prefix, 2);
    mtla_beam_result res;
    mtla_error err = {0};
    cr_assert_eq(mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &res, &err),
                 MTLA_OK, "%s", err.message);
    cr_assert_eq(res.count, 5);
    float first = res.hyps[0].positional[0];
    for (int32_t k = 0; k < res.count; k++) {
        const mtla_beam_hypothesis *h = &res.hyps[k];
        cr_assert_geq(h->length, 2);
        cr_expect(h->tokens[0] == 11 && h->tokens[1] == 4, "hypothesis %d starts %d %d", (int)k,
                  (int)h->tokens[0], (int)h->tokens[1]);
        cr_expect_eq(h->positional[0], first, "the forced token has one score in every hypothesis");
        if (k > 0)
            cr_expect_geq(res.hyps[k - 1].score, h->score, "best first");
    }
    mtla_beam_result_free(&res);
    golden_close(&g);
}

Test(beam, a_prefix_of_the_free_result_gives_the_free_result)
{
    golden g = golden_open("transformer_mtla_s2");
    mtla_beam_params p = prefix_params(1, NULL, 0);
    mtla_beam_result free_res, forced;
    mtla_error err = {0};
    cr_assert_eq(
        mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &free_res, &err),
        MTLA_OK);
    cr_assert_geq(free_res.hyps[0].length, 2);
    p = prefix_params(1, free_res.hyps[0].tokens, 2);
    cr_assert_eq(
        mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &forced, &err),
        MTLA_OK);
    cr_assert_eq(forced.hyps[0].length, free_res.hyps[0].length);
    for (int32_t i = 0; i < forced.hyps[0].length; i++)
        cr_expect_eq(forced.hyps[0].tokens[i], free_res.hyps[0].tokens[i], "token %d", (int)i);
    cr_expect_leq(fabsf(forced.hyps[0].score - free_res.hyps[0].score), 1e-6);
    mtla_beam_result_free(&free_res);
    mtla_beam_result_free(&forced);
    golden_close(&g);
}

Test(beam, a_prefix_with_eos_or_pad_or_too_long_is_refused)
{
    golden g = golden_open("transformer_mtla_s2");
    const mtla_vocab_config *vc = &g.dir->config.vocab;
    mtla_beam_result res;
    mtla_error err = {0};
    int32_t bad[2] = {5, vc->eos};
    mtla_beam_params p = prefix_params(2, bad, 2);
    cr_expect_eq(mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &res, &err),
                 MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "prefix token 1"), "%s", err.message);
    bad[1] = vc->pad;
    cr_expect_eq(mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &res, &err),
                 MTLA_ERR_INVALID_ARGUMENT);
    int32_t longer[21];
    for (int i = 0; i < 21; i++)
        longer[i] = 5;
    p = prefix_params(2, longer, 21);
    cr_expect_eq(mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &res, &err),
                 MTLA_ERR_INVALID_ARGUMENT);
    /* As long as max_len: the prefix, then EOS. */
    p = prefix_params(2, longer, 20);
    cr_assert_eq(mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &res, &err),
                 MTLA_OK, "%s", err.message);
    cr_expect_eq(res.hyps[0].length, 20);
    mtla_beam_result_free(&res);
    golden_close(&g);
}

Test(beam, the_token_after_the_prefix_is_one_of_the_allowed)
{
    golden g = golden_open("transformer_mtla_s2");
    const mtla_vocab_config *vc = &g.dir->config.vocab;
    unsigned char *allowed = calloc((size_t)vc->size, 1);
    allowed[7] = allowed[8] = 1;
    const int32_t prefix[1] = {5};
    mtla_beam_params p = prefix_params(4, prefix, 1);
    p.next_allowed = allowed;
    mtla_beam_result res;
    mtla_error err = {0};
    cr_assert_eq(mtla_beam_search(g.state, g.prompt.data, (int64_t)g.prompt.rows, &p, &res, &err),
                 MTLA_OK, "%s", err.message);
    for (int32_t k = 0; k < res.count; k++) {
        const mtla_beam_hypothesis *h = &res.hyps[k];
        cr_assert_geq(h->length, 1);
        cr_expect(h->length == 1 || h->tokens[1] == 7 || h->tokens[1] == 8,
                  "hypothesis %d continues with %d", (int)k, (int)h->tokens[1]);
    }
    free(allowed);
    mtla_beam_result_free(&res);
    golden_close(&g);
}
