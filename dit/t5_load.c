/* Loading the umT5 encoder onto a backend. Matrices are copied from the file mapping straight
 * into backend memory in the backend's weight dtype (the copy converts bf16/f16/f32 on the way);
 * q, k, v are stacked into one matrix and the two feed-forward inputs into another, so that each
 * takes one GEMM. The token embedding (a quarter of XXL's parameters) stays in the mapping:
 * a prompt needs at most 512 of its 256384 rows. */
#include "t5_internal.h"

#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A model folder rather than the encoder's own: Wan's release keeps the T5 as one .pth beside
 * the DiT, diffusers keeps it in text_encoder/. */
static void t5_resolve(const char *path, char *buf, size_t cap)
{
    static const char *const inside[] = {"models_t5_umt5-xxl-enc-bf16.pth", "text_encoder"};
    struct stat sb;
    snprintf(buf, cap, "%s", path);
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return;
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        char cand[1024];
        if ((size_t)snprintf(cand, sizeof cand, "%s/%s", path, inside[i]) >= sizeof cand)
            continue;
        if (stat(cand, &sb) == 0) {
            snprintf(buf, cap, "%s", cand);
            return;
        }
    }
}

/* Copies the stored tensor e into dst (contiguous, on the backend, same element count). */
static int t5_upload(t5_encoder *t, const weight_entry *e, tensor *dst)
{
    backend *be = t->be;
    int st;
    if (tensor_is_contiguous(&e->t)) {
        st = be->ops->copy(be, &e->t, dst);
    } else {
        int64_t n = tensor_numel(&e->t);
        float *tmp = malloc((size_t)n * sizeof(float));
        if (!tmp)
            return err_set(REEL_E_NOMEM, "%s: %s: cannot allocate %lld floats", e->file, e->name,
                           (long long)n);
        st = weights_read_f32(e, tmp);
        if (st == REEL_OK) {
            tensor src = tensor_make(tmp, DT_F32, DEV_CPU, e->t.ndim, e->t.shape);
            st = be->ops->copy(be, &src, dst);
        }
        if (st == REEL_OK)
            st = be->ops->sync(be); /* the copy may read tmp until then */
        free(tmp);
    }
    return st < 0 ? err_wrap(st, "%s: %s: ", e->file, e->name) : REEL_OK;
}

static const weight_entry *t5_entry(const t5_encoder *t, enum t5_param p, int layer)
{
    char key[256];
    return weights_find(t->ws, t5_key(&t->cfg, p, layer, key, sizeof key));
}

/* Stacks the [rows, cols] matrices of params[0..n) into one [n * rows, cols] tensor. */
static int t5_load_stacked(t5_encoder *t, const enum t5_param *params, int n, int layer,
                           int64_t rows, int64_t cols, tensor *dst)
{
    int64_t shape[2] = {n * rows, cols};
    TRY(backend_tensor_alloc(t->be, t->wdt, 2, shape, dst));
    for (int i = 0; i < n; i++) {
        tensor part = tensor_slice(dst, 0, i * rows, rows);
        TRY(t5_upload(t, t5_entry(t, params[i], layer), &part));
    }
    return REEL_OK;
}

static int t5_load_vector(t5_encoder *t, enum t5_param p, int layer, tensor *dst)
{
    int64_t d = t->cfg.dim;
    TRY(backend_tensor_alloc(t->be, DT_F32, 1, &d, dst));
    return t5_upload(t, t5_entry(t, p, layer), dst);
}

static int t5_load_bias(t5_encoder *t, int layer, tensor *dst)
{
    const t5_config *c = &t->cfg;
    const weight_entry *e =
        c->shared_bias ? t5_entry(t, T5P_SHARED_REL, 0) : t5_entry(t, T5P_REL, layer);
    float *emb = malloc((size_t)c->buckets * c->heads * sizeof(float));
    float *table = malloc((size_t)c->heads * T5_BIAS_SPAN * sizeof(float));
    int64_t shape[2] = {c->heads, T5_BIAS_SPAN};
    int st = emb && table ? REEL_OK : err_set(REEL_E_NOMEM, "umT5: cannot allocate a bias table");
    if (st == REEL_OK)
        st = weights_read_f32(e, emb);
    if (st == REEL_OK) {
        t5_bias_table(emb, c->buckets, c->heads, c->max_distance, table);
        st = backend_tensor_alloc(t->be, DT_F32, 2, shape, dst);
    }
    if (st == REEL_OK) {
        tensor src = tensor_make(table, DT_F32, DEV_CPU, 2, shape);
        st = t->be->ops->copy(t->be, &src, dst);
    }
    if (st == REEL_OK)
        st = t->be->ops->sync(t->be);
    free(emb);
    free(table);
    return st;
}

static int t5_load_layer(t5_encoder *t, int l)
{
    static const enum t5_param qkv[3] = {T5P_Q, T5P_K, T5P_V}, in[2] = {T5P_GATE, T5P_UP};
    static const enum t5_param o[1] = {T5P_O}, down[1] = {T5P_DOWN};
    const t5_config *c = &t->cfg;
    t5_layer *L = &t->layer[l];
    TRY(t5_load_vector(t, T5P_NORM1, l, &L->norm1));
    TRY(t5_load_vector(t, T5P_NORM2, l, &L->norm2));
    TRY(t5_load_stacked(t, qkv, 3, l, c->dim_attn, c->dim, &L->wqkv));
    TRY(t5_load_stacked(t, o, 1, l, c->dim, c->dim_attn, &L->wo));
    TRY(t5_load_stacked(t, in, 2, l, c->ffn, c->dim, &L->wi));
    TRY(t5_load_stacked(t, down, 1, l, c->dim, c->ffn, &L->wdown));
    return t5_load_bias(t, l, &L->bias);
}

/* Activations of one prompt of T5_MAX_TOKENS tokens (see t5_forward.c for the list). */
static size_t t5_arena_bytes(const t5_encoder *t)
{
    const t5_config *c = &t->cfg;
    size_t n = T5_MAX_TOKENS, w = dtype_size(t->wdt);
    size_t bytes = 3 * n * c->dim * sizeof(float);                    /* x, branch, out */
    bytes += n * (size_t)(c->dim + 4 * c->dim_attn + 3 * c->ffn) * w; /* h, qkv, att, g, a */
    if (t->be->dev == DEV_CUDA)                                       /* scores f32, probs bf16 */
        bytes += (size_t)c->heads * n * n * (sizeof(float) + 2);
    return bytes + 16 * 256; /* alignment of each piece */
}

static void t5_describe(t5_encoder *t)
{
    const t5_config *c = &t->cfg;
    snprintf(
        t->desc, sizeof t->desc,
        "umT5 encoder (%s layout%s%s%s): dim %lld, %d layers, %d heads x %d, ffn %lld, vocab %lld, "
        "%d buckets to distance %d%s, eps %g%s",
        c->layout == T5_LAYOUT_WAN ? "Wan t5.py" : "Hugging Face",
        *c->prefix ? ", keys under '" : "", c->prefix, *c->prefix ? "'" : "", (long long)c->dim,
        c->layers, c->heads, c->head_dim, (long long)c->ffn, (long long)c->vocab, c->buckets,
        c->max_distance, c->shared_bias ? " (shared)" : "", (double)c->eps,
        c->has_config_json ? ", config.json" : "");
}

int t5_load(const char *path, backend *be, t5_encoder **out)
{
    *out = NULL;
    char resolved[1024];
    t5_resolve(path, resolved, sizeof resolved);
    t5_encoder *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(REEL_E_NOMEM, "umT5: cannot allocate the encoder");
    t->be = be;
    t->wdt = be->dev == DEV_CUDA ? DT_BF16 : DT_F32;
    int st = weights_open(resolved, &t->ws);
    if (st == REEL_OK)
        st = t5_config_read(t->ws, &t->cfg);
    if (st == REEL_OK) {
        char key[256];
        t->embed = weights_find(t->ws, t5_key(&t->cfg, T5P_EMBED, 0, key, sizeof key));
        t->layer = calloc((size_t)t->cfg.layers, sizeof *t->layer);
        t->host_x = malloc((size_t)T5_MAX_TOKENS * t->cfg.dim * sizeof(float));
        if (!t->layer || !t->host_x)
            st = err_set(REEL_E_NOMEM, "umT5: cannot allocate %d layers of width %lld",
                         t->cfg.layers, (long long)t->cfg.dim);
    }
    for (int l = 0; st == REEL_OK && l < t->cfg.layers; l++) {
        st = t5_load_layer(t, l);
        if (st < 0)
            st = err_wrap(st, "umT5 layer %d: ", l);
    }
    if (st == REEL_OK)
        st = t5_load_vector(t, T5P_FINAL_NORM, 0, &t->final_norm);
    if (st == REEL_OK)
        st = arena_init(&t->act, be, t5_arena_bytes(t), "umT5 activations");
    if (st == REEL_OK && be->dev == DEV_CUDA)
        st = t5_cuda_open(be, &t->cuda);
    if (st == REEL_OK)
        st = be->ops->sync(be);
    if (st < 0) {
        t5_free(t);
        return st;
    }
    t5_describe(t);
    *out = t;
    return REEL_OK;
}

void t5_free(t5_encoder *t)
{
    if (!t)
        return;
    backend *be = t->be;
    for (int l = 0; t->layer && l < t->cfg.layers; l++) {
        t5_layer *L = &t->layer[l];
        tensor *all[] = {&L->norm1, &L->norm2, &L->wqkv, &L->wo, &L->wi, &L->wdown, &L->bias};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            backend_tensor_free(be, all[i]);
    }
    backend_tensor_free(be, &t->final_norm);
    arena_release(&t->act);
    if (t->cuda)
        t5_cuda_close(t->cuda);
    free(t->layer);
    free(t->host_x);
    weights_close(t->ws);
    free(t);
}

int t5_dim(const t5_encoder *t) { return (int)t->cfg.dim; }
int t5_vocab(const t5_encoder *t) { return (int)t->cfg.vocab; }
const char *t5_description(const t5_encoder *t) { return t->desc; }
