/* Wan DiT weights: one allocation on the backend holding every tensor, laid out by a plan that
 * both the checkpoint loader and the random-weight builder use. Fused destinations (q|k|v of
 * self-attention, k|v of cross-attention) are filled from their separate published tensors. */
#include "wan_dit.h"

#include "error.h"
#include "model_detect.h"
#include "wan_keys.h"
#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- layout plan ------------------------------------------------------------------------ */

/* Assigns shape and dtype, and an offset (stored in data until bind) in the weight block. */
static void place(size_t *offset, tensor *t, enum dtype dt, int ndim, int64_t a, int64_t b,
                  int64_t c, int64_t d, int64_t e)
{
    int64_t shape[5] = {a, b, c, d, e};
    *t = tensor_make(NULL, dt, DEV_CPU, ndim, shape);
    *offset = (*offset + 255) & ~(size_t)255;
    t->data = (void *)(uintptr_t)*offset;
    *offset += tensor_nbytes(t);
}

#define P1(t, dt, a) place(&off, &(t), dt, 1, a, 0, 0, 0, 0)
#define P2(t, dt, a, b) place(&off, &(t), dt, 2, a, b, 0, 0, 0)

static size_t plan(wan_dit *m)
{
    const wan_config *c = &m->cfg;
    const int64_t D = c->dim, F = c->ffn_dim;
    const enum dtype w = m->wdt, f32 = DT_F32;
    size_t off = 0;
    place(&off, &m->patch_w, w, 5, D, c->in_dim, c->patch[0], c->patch[1], c->patch[2]);
    P1(m->patch_b, f32, D);
    P2(m->text1_w, w, D, c->text_dim);
    P1(m->text1_b, f32, D);
    P2(m->text2_w, w, D, D);
    P1(m->text2_b, f32, D);
    P2(m->time1_w, f32, D, c->freq_dim);
    P1(m->time1_b, f32, D);
    P2(m->time2_w, f32, D, D);
    P1(m->time2_b, f32, D);
    P2(m->proj_w, f32, 6 * D, D);
    P1(m->proj_b, f32, 6 * D);
    P2(m->head_w, f32, (int64_t)c->out_dim * c->patch[0] * c->patch[1] * c->patch[2], D);
    P1(m->head_b, f32, m->head_w.shape[0]);
    P2(m->head_mod, f32, 2, D);
    for (int i = 0; i < c->layers; i++) {
        wan_block_weights *b = &m->blocks[i];
        P2(b->modulation, f32, 6, D);
        P2(b->qkv_w, w, 3 * D, D);
        P1(b->qkv_b, f32, 3 * D);
        P2(b->o_w, w, D, D);
        P1(b->o_b, f32, D);
        P1(b->norm_q, f32, D);
        P1(b->norm_k, f32, D);
        P1(b->norm3_w, f32, D);
        P1(b->norm3_b, f32, D);
        P2(b->cq_w, w, D, D);
        P1(b->cq_b, f32, D);
        P2(b->ckv_w, w, 2 * D, D);
        P1(b->ckv_b, f32, 2 * D);
        P2(b->co_w, w, D, D);
        P1(b->co_b, f32, D);
        P1(b->cnorm_q, f32, D);
        P1(b->cnorm_k, f32, D);
        P2(b->ffn1_w, w, F, D);
        P1(b->ffn1_b, f32, F);
        P2(b->ffn2_w, w, D, F);
        P1(b->ffn2_b, f32, D);
    }
    return off;
}

#undef P1
#undef P2

static void bind_one(tensor *t, char *base, enum device dev)
{
    t->data = base + (uintptr_t)t->data;
    t->dev = dev;
}

/* Every tensor of the model, for binding: the order does not matter. */
static void for_each_tensor(wan_dit *m, void (*fn)(tensor *, char *, enum device), char *base)
{
    tensor *top[] = {&m->patch_w, &m->patch_b, &m->text1_w, &m->text1_b, &m->text2_w,
                     &m->text2_b, &m->time1_w, &m->time1_b, &m->time2_w, &m->time2_b,
                     &m->proj_w,  &m->proj_b,  &m->head_w,  &m->head_b,  &m->head_mod};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        fn(top[i], base, m->be->dev);
    for (int i = 0; i < m->cfg.layers; i++) {
        wan_block_weights *b = &m->blocks[i];
        tensor *bt[] = {&b->modulation, &b->qkv_w, &b->qkv_b, &b->o_w, &b->o_b, &b->norm_q,
                        &b->norm_k, &b->norm3_w, &b->norm3_b, &b->cq_w, &b->cq_b, &b->ckv_w,
                        &b->ckv_b, &b->co_w, &b->co_b, &b->cnorm_q, &b->cnorm_k, &b->ffn1_w,
                        &b->ffn1_b, &b->ffn2_w, &b->ffn2_b};
        for (size_t j = 0; j < sizeof bt / sizeof bt[0]; j++)
            fn(bt[j], base, m->be->dev);
    }
}

/* ---- sources: published tensor name, its published shape, where it goes -------------- */

typedef int (*source_fn)(void *ctx, const char *canonical, int ndim, const int64_t *shape,
                         tensor *dst);

static int visit(source_fn fn, void *ctx, const char *name, tensor *dst, int ndim, int64_t a,
                 int64_t b, int64_t c)
{
    int64_t shape[3] = {a, b, c};
    return fn(ctx, name, ndim, shape, dst);
}

/* rows [r0, r0 + n) of a 2D (or 1D) destination */
static tensor rows(const tensor *t, int64_t r0, int64_t n) { return tensor_slice(t, 0, r0, n); }

static int for_each_source(wan_dit *m, source_fn fn, void *ctx)
{
    const wan_config *c = &m->cfg;
    const int64_t D = c->dim, F = c->ffn_dim;
    char name[128];
    /* the conv weight keeps its 5D published shape */
    {
        int64_t s[5] = {D, c->in_dim, c->patch[0], c->patch[1], c->patch[2]};
        TRY(fn(ctx, "patch_embedding.weight", 5, s, &m->patch_w));
    }
    TRY(visit(fn, ctx, "patch_embedding.bias", &m->patch_b, 1, D, 0, 0));
    TRY(visit(fn, ctx, "text_embedding.0.weight", &m->text1_w, 2, D, c->text_dim, 0));
    TRY(visit(fn, ctx, "text_embedding.0.bias", &m->text1_b, 1, D, 0, 0));
    TRY(visit(fn, ctx, "text_embedding.2.weight", &m->text2_w, 2, D, D, 0));
    TRY(visit(fn, ctx, "text_embedding.2.bias", &m->text2_b, 1, D, 0, 0));
    TRY(visit(fn, ctx, "time_embedding.0.weight", &m->time1_w, 2, D, c->freq_dim, 0));
    TRY(visit(fn, ctx, "time_embedding.0.bias", &m->time1_b, 1, D, 0, 0));
    TRY(visit(fn, ctx, "time_embedding.2.weight", &m->time2_w, 2, D, D, 0));
    TRY(visit(fn, ctx, "time_embedding.2.bias", &m->time2_b, 1, D, 0, 0));
    TRY(visit(fn, ctx, "time_projection.1.weight", &m->proj_w, 2, 6 * D, D, 0));
    TRY(visit(fn, ctx, "time_projection.1.bias", &m->proj_b, 1, 6 * D, 0, 0));
    TRY(visit(fn, ctx, "head.head.weight", &m->head_w, 2, m->head_w.shape[0], D, 0));
    TRY(visit(fn, ctx, "head.head.bias", &m->head_b, 1, m->head_w.shape[0], 0, 0));
    TRY(visit(fn, ctx, "head.modulation", &m->head_mod, 3, 1, 2, D));
    for (int i = 0; i < c->layers; i++) {
        wan_block_weights *b = &m->blocks[i];
        struct {
            const char *suffix;
            tensor dst;
            int ndim;
            int64_t a, b, c;
        } list[] = {
            {"modulation", b->modulation, 3, 1, 6, D},
            {"self_attn.q.weight", rows(&b->qkv_w, 0, D), 2, D, D, 0},
            {"self_attn.k.weight", rows(&b->qkv_w, D, D), 2, D, D, 0},
            {"self_attn.v.weight", rows(&b->qkv_w, 2 * D, D), 2, D, D, 0},
            {"self_attn.q.bias", rows(&b->qkv_b, 0, D), 1, D, 0, 0},
            {"self_attn.k.bias", rows(&b->qkv_b, D, D), 1, D, 0, 0},
            {"self_attn.v.bias", rows(&b->qkv_b, 2 * D, D), 1, D, 0, 0},
            {"self_attn.o.weight", b->o_w, 2, D, D, 0},
            {"self_attn.o.bias", b->o_b, 1, D, 0, 0},
            {"self_attn.norm_q.weight", b->norm_q, 1, D, 0, 0},
            {"self_attn.norm_k.weight", b->norm_k, 1, D, 0, 0},
            {"norm3.weight", b->norm3_w, 1, D, 0, 0},
            {"norm3.bias", b->norm3_b, 1, D, 0, 0},
            {"cross_attn.q.weight", b->cq_w, 2, D, D, 0},
            {"cross_attn.q.bias", b->cq_b, 1, D, 0, 0},
            {"cross_attn.k.weight", rows(&b->ckv_w, 0, D), 2, D, D, 0},
            {"cross_attn.v.weight", rows(&b->ckv_w, D, D), 2, D, D, 0},
            {"cross_attn.k.bias", rows(&b->ckv_b, 0, D), 1, D, 0, 0},
            {"cross_attn.v.bias", rows(&b->ckv_b, D, D), 1, D, 0, 0},
            {"cross_attn.o.weight", b->co_w, 2, D, D, 0},
            {"cross_attn.o.bias", b->co_b, 1, D, 0, 0},
            {"cross_attn.norm_q.weight", b->cnorm_q, 1, D, 0, 0},
            {"cross_attn.norm_k.weight", b->cnorm_k, 1, D, 0, 0},
            {"ffn.0.weight", b->ffn1_w, 2, F, D, 0},
            {"ffn.0.bias", b->ffn1_b, 1, F, 0, 0},
            {"ffn.2.weight", b->ffn2_w, 2, D, F, 0},
            {"ffn.2.bias", b->ffn2_b, 1, D, 0, 0},
        };
        for (size_t j = 0; j < sizeof list / sizeof list[0]; j++) {
            snprintf(name, sizeof name, "blocks.%d.%s", i, list[j].suffix);
            TRY(visit(fn, ctx, name, &list[j].dst, list[j].ndim, list[j].a, list[j].b, list[j].c));
        }
    }
    return REEL_OK;
}

/* ---- allocation ------------------------------------------------------------------------- */

static int dit_alloc(const wan_config *cfg, backend *be, wan_dit **out)
{
    TRY(wan_config_validate(cfg));
    wan_dit *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(REEL_E_NOMEM, "Wan DiT: out of host memory");
    m->cfg = *cfg;
    m->be = be;
    m->wdt = be->dev == DEV_CUDA ? DT_BF16 : DT_F32;
    m->blocks = calloc((size_t)cfg->layers, sizeof *m->blocks);
    if (!m->blocks) {
        free(m);
        return err_set(REEL_E_NOMEM, "Wan DiT: out of host memory");
    }
    m->weight_bytes = plan(m);
    int st = be->ops->alloc(be, m->weight_bytes, &m->weight_mem);
    if (st < 0) {
        wan_dit_free(m);
        return err_wrap(st, "Wan DiT weights (%.2f GiB)", (double)m->weight_bytes / (1 << 30));
    }
    for_each_tensor(m, bind_one, m->weight_mem);
    *out = m;
    return REEL_OK;
}

void wan_dit_free(wan_dit *m)
{
    if (!m)
        return;
    if (m->weight_mem)
        m->be->ops->free(m->be, m->weight_mem);
    free(m->blocks);
    free(m);
}

/* ---- loading from a checkpoint ------------------------------------------------------------ */

typedef struct load_ctx {
    wan_dit *m;
    const weights *ws;
    const model_info *mi;
    float *tmp;        /* host staging for tensors stored with strides */
    size_t tmp_count;
} load_ctx;

static int load_source(void *vctx, const char *canonical, int ndim, const int64_t *shape,
                       tensor *dst)
{
    load_ctx *L = vctx;
    char key[256];
    TRY(wan_key(L->mi, canonical, key, sizeof key));
    const weight_entry *e = weights_find(L->ws, key);
    if (!e)
        return err_set(REEL_E_FORMAT, "%s: Wan DiT tensor '%s' is missing", weights_path(L->ws),
                       key);
    bool same = e->t.ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = e->t.shape[i] == shape[i];
    if (!same) {
        char got[96], want[96];
        tensor w = tensor_make(NULL, DT_F32, DEV_CPU, ndim, shape);
        return err_set(REEL_E_FORMAT, "%s: '%s' has shape %s, expected %s", e->file, key,
                       tensor_shape_str(&e->t, got, sizeof got),
                       tensor_shape_str(&w, want, sizeof want));
    }
    if (!dtype_is_float(e->t.dtype))
        return err_set(REEL_E_UNSUPPORTED, "%s: '%s' is %s, expected a float dtype", e->file, key,
                       dtype_name(e->t.dtype));
    backend *be = L->m->be;
    tensor src = e->t;
    if (!tensor_is_contiguous(&src) || e->t.dtype == DT_F64) {
        size_t n = (size_t)tensor_numel(&src);
        if (n > L->tmp_count) {
            float *p = realloc(L->tmp, n * sizeof *p);
            if (!p)
                return err_set(REEL_E_NOMEM, "%s: staging '%s'", e->file, key);
            L->tmp = p;
            L->tmp_count = n;
        }
        TRY(weights_read_f32(e, L->tmp));
        src = tensor_make(L->tmp, DT_F32, DEV_CPU, e->t.ndim, e->t.shape);
    }
    int st = be->ops->copy(be, &src, dst);
    if (st < 0)
        return err_wrap(st, "%s: uploading '%s'", e->file, key);
    return REEL_OK;
}

/* A diffusers model root holds the DiT in transformer/. */
static char *resolve_dit_path(const char *path)
{
    struct stat st;
    size_t n = strlen(path) + 32;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/transformer", path);
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
        return p;
    snprintf(p, n, "%s", path);
    return p;
}

int wan_dit_load(const char *path, backend *be, wan_dit **out)
{
    *out = NULL;
    char *dit_path = resolve_dit_path(path);
    if (!dit_path)
        return err_set(REEL_E_NOMEM, "out of host memory");
    weights *ws = NULL;
    int st = weights_open(dit_path, &ws);
    free(dit_path);
    if (st < 0)
        return st;
    model_info mi;
    st = model_detect(ws, &mi);
    if (st >= 0 && mi.kind != MODEL_WAN_DIT)
        st = err_set(REEL_E_FORMAT, "%s: not a Wan DiT checkpoint (detected %s)", weights_path(ws),
                     model_kind_name(mi.kind));
    wan_config cfg;
    if (st >= 0)
        st = wan_config_from_weights(ws, &mi, NULL, &cfg);
    wan_dit *m = NULL;
    if (st >= 0)
        st = dit_alloc(&cfg, be, &m);
    if (st >= 0) {
        load_ctx L = {m, ws, &mi, NULL, 0};
        st = for_each_source(m, load_source, &L);
        free(L.tmp);
        if (st >= 0)
            st = be->ops->sync(be);
    }
    weights_close(ws);
    if (st < 0) {
        wan_dit_free(m);
        return st;
    }
    *out = m;
    return REEL_OK;
}

/* ---- random weights (benchmarks) ------------------------------------------------------------ */

typedef struct random_ctx {
    wan_dit *m;
    float *pool;       /* a block of random normals reused cyclically: a billion fresh normals
                          per model would take longer than the benchmark itself */
    size_t pool_count;
    size_t cursor;
    float *chunk;
    size_t chunk_count;
} random_ctx;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int random_source(void *vctx, const char *canonical, int ndim, const int64_t *shape,
                         tensor *dst)
{
    random_ctx *R = vctx;
    backend *be = R->m->be;
    size_t n = (size_t)tensor_numel(dst);
    size_t fan_in = ndim >= 2 ? (size_t)(tensor_numel(dst) / dst->shape[0]) : 1;
    /* Norm gains near 1, everything else at the scale of a trained layer (1/sqrt(fan_in)). */
    bool gain = strstr(canonical, "norm") != NULL && ndim == 1;
    float scale = ndim >= 2 && strstr(canonical, "modulation") == NULL
                      ? 1.0f / sqrtf((float)fan_in)
                      : 0.05f;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < R->chunk_count ? n - done : R->chunk_count;
        for (size_t i = 0; i < k; i++) {
            float r = R->pool[R->cursor];
            R->cursor = (R->cursor + 1) % R->pool_count;
            R->chunk[i] = gain ? 1.0f + 0.1f * r : scale * r;
        }
        /* destinations are packed tensors or row ranges of them: contiguous */
        tensor src = tensor_1d(R->chunk, DT_F32, DEV_CPU, (int64_t)k);
        tensor part = tensor_1d((char *)dst->data + done * dtype_size(dst->dtype), dst->dtype,
                                dst->dev, (int64_t)k);
        TRY(be->ops->copy(be, &src, &part));
        TRY(be->ops->sync(be)); /* the chunk buffer is reused */
        done += k;
    }
    return REEL_OK;
}

int wan_dit_create_random(const wan_config *cfg, backend *be, uint64_t seed, wan_dit **out)
{
    *out = NULL;
    wan_dit *m;
    TRY(dit_alloc(cfg, be, &m));
    random_ctx R = {m, NULL, (size_t)1 << 20, 0, NULL, (size_t)1 << 24};
    R.pool = malloc(R.pool_count * sizeof(float));
    R.chunk = malloc(R.chunk_count * sizeof(float));
    int st = REEL_OK;
    if (!R.pool || !R.chunk)
        st = err_set(REEL_E_NOMEM, "random weights: out of host memory");
    uint64_t s = seed;
    for (size_t i = 0; st >= 0 && i < R.pool_count; i += 2) {
        double u1 = ((double)(splitmix(&s) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(splitmix(&s) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        R.pool[i] = (float)(r * cos(6.283185307179586 * u2));
        R.pool[i + 1] = (float)(r * sin(6.283185307179586 * u2));
    }
    if (st >= 0)
        st = for_each_source(m, random_source, &R);
    free(R.pool);
    free(R.chunk);
    if (st < 0) {
        wan_dit_free(m);
        return st;
    }
    *out = m;
    return REEL_OK;
}

reel_attn_config wan_dit_attn_config(const wan_dit *m, int F, int H, int W, int num_steps)
{
    reel_attn_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.device = m->be->dev == DEV_CUDA ? REEL_ATTN_CUDA : REEL_ATTN_CPU;
    c.dtype = m->be->dev == DEV_CUDA ? REEL_ATTN_BF16 : REEL_ATTN_F32;
    c.cuda_device = m->be->device_index;
    c.model_dim = m->cfg.dim;
    c.heads = m->cfg.heads;
    c.head_dim = m->cfg.head_dim;
    c.grid_f = F / m->cfg.patch[0];
    c.grid_h = H / m->cfg.patch[1];
    c.grid_w = W / m->cfg.patch[2];
    c.num_steps = num_steps;
    c.num_layers = m->cfg.layers;
    return c;
}
