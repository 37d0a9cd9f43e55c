/* The umT5 encoder forward (t5_encoder.h for the math), on any backend through dit/backend.h
 * plus the two ops of t5_internal.h. Per layer, with n tokens, width D, attention width A and
 * feed-forward width F (wdt: the backend's weight dtype):
 *   h    = rms_norm(x, norm1)          wdt [n, D]     x: the f32 residual stream
 *   qkv  = h Wqkv^T                    wdt [n, 3A]
 *   att  = attention(qkv, bias, mask)  wdt [n, A]
 *   x   += att Wo^T                    (branch f32 [n, D])
 *   h    = rms_norm(x, norm2)
 *   g    = h Wi^T                      wdt [n, 2F]    gate | up
 *   a    = gelu_tanh(gate) * up        wdt [n, F]
 *   x   += a Wdown^T
 * then out = rms_norm(x, final) in f32. */
#include "t5_internal.h"

#include "error.h"

#include <string.h>

int t5_attention(t5_encoder *t, const tensor *qkv, const tensor *bias, int n_valid, tensor *out)
{
    backend *be = t->be;
    if (be->dev == DEV_CPU)
        return t5_cpu_attention(be, qkv, bias, t->cfg.heads, n_valid, out);
    int64_t n = qkv->shape[0];
    int64_t shape[3] = {t->cfg.heads, n, n};
    size_t mark = arena_mark(&t->act);
    tensor scores, probs;
    int st = arena_tensor(&t->act, DT_F32, 3, shape, &scores);
    if (st == REEL_OK)
        st = arena_tensor(&t->act, DT_BF16, 3, shape, &probs);
    if (st == REEL_OK)
        st = t5_cuda_attention(t->cuda, be, qkv, bias, t->cfg.heads, n_valid, &scores, &probs, out);
    arena_reset(&t->act, mark);
    return st;
}

int t5_gated_gelu(t5_encoder *t, const tensor *g, tensor *out)
{
    if (t->be->dev == DEV_CPU)
        return t5_cpu_gated_gelu(t->be, g, out);
    return t5_cuda_gated_gelu(t->be, g, out);
}

/* Embedding rows of ids into t->host_x (the table stays in the file mapping). */
static int t5_embed(t5_encoder *t, const int32_t *ids, int n)
{
    const weight_entry *e = t->embed;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->cfg.vocab)
            return err_set(REEL_E_INVALID,
                           "umT5: token id %d at position %d is outside the vocabulary of %lld",
                           (int)ids[i], i, (long long)t->cfg.vocab);
        weight_entry row = *e;
        row.t = tensor_slice(&e->t, 0, ids[i], 1);
        TRY(weights_read_f32(&row, t->host_x + (size_t)i * t->cfg.dim));
    }
    return REEL_OK;
}

static int t5_layer_forward(t5_encoder *t, const t5_layer *L, tensor *x, int n_valid)
{
    backend *be = t->be;
    const struct backend_ops *ops = be->ops;
    const t5_config *c = &t->cfg;
    int64_t n = x->shape[0];
    int64_t s_h[2] = {n, c->dim}, s_qkv[2] = {n, 3 * c->dim_attn}, s_att[2] = {n, c->dim_attn};
    int64_t s_g[2] = {n, 2 * c->ffn}, s_a[2] = {n, c->ffn};
    tensor h, qkv, att, branch, g, a;
    size_t mark = arena_mark(&t->act);
    TRY(arena_tensor(&t->act, t->wdt, 2, s_h, &h));
    TRY(arena_tensor(&t->act, DT_F32, 2, s_h, &branch));
    TRY(arena_tensor(&t->act, t->wdt, 2, s_qkv, &qkv));
    TRY(arena_tensor(&t->act, t->wdt, 2, s_att, &att));
    TRY(arena_tensor(&t->act, t->wdt, 2, s_g, &g));
    TRY(arena_tensor(&t->act, t->wdt, 2, s_a, &a));

    TRY(ops->rms_norm(be, x, &L->norm1, c->eps, NULL, 0, &h));
    TRY(ops->gemm(be, &h, &L->wqkv, NULL, ACT_NONE, &qkv));
    TRY(t5_attention(t, &qkv, &L->bias, n_valid, &att));
    TRY(ops->gemm(be, &att, &L->wo, NULL, ACT_NONE, &branch));
    TRY(ops->add_gated(be, x, &branch, NULL));

    TRY(ops->rms_norm(be, x, &L->norm2, c->eps, NULL, 0, &h));
    TRY(ops->gemm(be, &h, &L->wi, NULL, ACT_NONE, &g));
    TRY(t5_gated_gelu(t, &g, &a));
    TRY(ops->gemm(be, &a, &L->wdown, NULL, ACT_NONE, &branch));
    TRY(ops->add_gated(be, x, &branch, NULL));
    arena_reset(&t->act, mark);
    return REEL_OK;
}

int t5_encode_masked(t5_encoder *t, const int32_t *ids, int n, int n_valid, float *out)
{
    if (n < 1 || n > T5_MAX_TOKENS || n_valid < 1 || n_valid > n)
        return err_set(REEL_E_INVALID,
                       "umT5: %d tokens with %d unmasked: need 1 <= unmasked <= tokens <= %d", n,
                       n_valid, T5_MAX_TOKENS);
    backend *be = t->be;
    int64_t shape[2] = {n, t->cfg.dim};
    TRY(t5_embed(t, ids, n));
    size_t mark = arena_mark(&t->act);
    tensor x, y;
    tensor host_x = tensor_make(t->host_x, DT_F32, DEV_CPU, 2, shape);
    tensor host_out = tensor_make(out, DT_F32, DEV_CPU, 2, shape);
    int st = arena_tensor(&t->act, DT_F32, 2, shape, &x);
    if (st == REEL_OK)
        st = arena_tensor(&t->act, DT_F32, 2, shape, &y);
    if (st == REEL_OK)
        st = be->ops->copy(be, &host_x, &x);
    for (int l = 0; st == REEL_OK && l < t->cfg.layers; l++) {
        st = t5_layer_forward(t, &t->layer[l], &x, n_valid);
        if (st < 0)
            st = err_wrap(st, "umT5 layer %d: ", l);
    }
    if (st == REEL_OK)
        st = be->ops->rms_norm(be, &x, &t->final_norm, t->cfg.eps, NULL, 0, &y);
    if (st == REEL_OK)
        st = be->ops->copy(be, &y, &host_out);
    if (st == REEL_OK)
        st = be->ops->sync(be);
    arena_reset(&t->act, mark);
    return st;
}

int t5_encode(t5_encoder *t, const int32_t *ids, int n, float *out)
{
    return t5_encode_masked(t, ids, n, n, out);
}
