/* One forward of the Wan DiT (wan/modules/model.py WanModel.forward), op by op on a backend,
 * for n text contexts at once (wan_dit.h): the residual stream holds n copies of the latent's
 * L tokens, [n*L, D], element b in rows [b*L, (b+1)*L). Row-wise ops and GEMMs run once over all
 * rows; RoPE, self-attention and cross-attention run per element slice.
 * Per block:  a = LN(x)(1+scale1)+shift1 -> fused QKV GEMM -> RMSNorm+RoPE on q, k -> self
 * attention (plugin) -> O GEMM -> x += y*gate1 -> cross attention on LN3(x) against the cached
 * text K/V -> x += y -> b = LN(x)(1+scale2)+shift2 -> FFN (GELU in the GEMM epilogue) ->
 * x += y*gate2. x (the residual stream) stays fp32 throughout, as in the reference.
 * The elements differ only from block 0's cross-attention on: up to there they hold the same
 * latent and timesteps, so block 0's self-attention (the QKV GEMM to the O GEMM) runs for
 * element 0 alone and its output is copied to the others (the same numbers, one n-th of the
 * work). */
#include "wan_dit.h"

#include "../attention/attn.h"
#include "error.h"
#include "clock.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- phase timing (only when a profile is asked for: each lap waits for the device) ------ */

enum { PH_GEMM, PH_SELF, PH_CROSS, PH_OTHER, PH_COUNT };

typedef struct laps {
    backend *be;
    wan_profile *out;
    double acc[PH_COUNT];
    double last;
    int cur;
} laps;

/* Closes the running phase and starts `phase`. */
static int lap(laps *l, int phase)
{
    if (!l->out)
        return REEL_OK;
    TRY(l->be->ops->sync(l->be));
    double t = clock_ms();
    l->acc[l->cur] += t - l->last;
    l->last = t;
    l->cur = phase;
    return REEL_OK;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static enum dtype compute_dtype(const wan_dit *m) { return m->be->dev == DEV_CUDA ? DT_BF16 : DT_F32; }

static int new2(arena *S, enum dtype dt, int64_t r, int64_t c, tensor *t)
{
    int64_t shape[2] = {r, c};
    return arena_tensor(S, dt, 2, shape, t);
}

/* Sinusoidal timestep embedding, cos half first, computed in double as the reference does. */
static void sinusoid(const float *t, int n, int freq_dim, float *out)
{
    int half = freq_dim / 2;
    for (int g = 0; g < n; g++)
        for (int j = 0; j < half; j++) {
            double w = pow(10000.0, -(double)j / half);
            double a = (double)t[g] * w;
            out[(size_t)g * freq_dim + j] = (float)cos(a);
            out[(size_t)g * freq_dim + half + j] = (float)sin(a);
        }
}

/* Rows [0, R) of t (the first batch element's) copied into each of the n - 1 blocks of R rows
 * after them: the elements share the latent's tokens and the time embedding. */
static int repeat_first(backend *be, tensor *t, int64_t R, int64_t n)
{
    tensor first = tensor_slice(t, 0, 0, R);
    for (int64_t b = 1; b < n; b++) {
        tensor dst = tensor_slice(t, 0, b * R, R);
        TRY(be->ops->copy(be, &first, &dst));
    }
    return REEL_OK;
}

static int attend(attn_instance *inst, const tensor *q, const tensor *k, const tensor *v,
                  tensor *out, int layer, int step, float timestep, const wan_dit *m,
                  int64_t kv_tokens, int64_t last_key_copies)
{
    reel_attn_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.q = q->data;
    a.k = k->data;
    a.v = v->data;
    a.out = out->data;
    a.q_tokens = q->shape[0];
    a.kv_tokens = kv_tokens;
    a.q_row_stride = q->stride[0];
    a.kv_row_stride = k->stride[0];
    a.scale = 1.0f / sqrtf((float)m->cfg.head_dim);
    a.layer = layer;
    a.step = step;
    a.timestep = timestep;
    a.cuda_stream = m->be->stream;
    a.last_key_copies = last_key_copies;
    return attn_instance_forward(inst, &a);
}

/* ---- text context ------------------------------------------------------------------------- */

static int all_zero(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != 0.f)
            return 0;
    return 1;
}

int wan_context_prepare(wan_dit *m, const tensor *context, arena *S, wan_context *out)
{
    const wan_config *c = &m->cfg;
    backend *be = m->be;
    const enum dtype cdt = compute_dtype(m);
    memset(out, 0, sizeof *out);
    if (context->dtype != DT_F32 || context->dev != DEV_CPU || context->ndim != 2 ||
        context->shape[1] != c->text_dim || context->shape[0] > c->text_len ||
        !tensor_is_contiguous(context)) {
        char s[96];
        return err_set(REEL_E_INVALID,
                       "text context: expected f32 host [L <= %d, %d], got %s %s", c->text_len,
                       c->text_dim, dtype_name(context->dtype), tensor_shape_str(context, s, sizeof s));
    }
    const int64_t D = c->dim;
    /* Zero rows up to text_len, then the text MLP: padded rows become a bias-derived constant
     * that cross-attention attends to (no mask), as the reference does; here one such row stands
     * for all of them (wan_context). Trailing zero rows passed in are padding too. */
    const float *cx = context->data;
    int64_t used = context->shape[0];
    while (used > 0 && all_zero(cx + (used - 1) * c->text_dim, c->text_dim))
        used--;
    const int64_t T = used < c->text_len ? used + 1 : c->text_len;
    out->rows = T;
    out->last_copies = used < c->text_len ? c->text_len - used : 1;
    float *padded = calloc((size_t)(T * c->text_dim), sizeof(float));
    if (!padded)
        return err_set(REEL_E_NOMEM, "text context: out of host memory");
    memcpy(padded, cx, sizeof(float) * (size_t)(used * c->text_dim));
    size_t mark = arena_mark(S);
    tensor host = tensor_2d(padded, DT_F32, DEV_CPU, T, c->text_dim), dev, h, emb;
    int st = new2(S, cdt, T, c->text_dim, &dev);
    if (st >= 0)
        st = be->ops->copy(be, &host, &dev);
    if (st >= 0)
        st = new2(S, cdt, T, D, &h);
    if (st >= 0)
        st = be->ops->gemm(be, &dev, &m->text1_w, &m->text1_b, ACT_GELU_TANH, &h);
    if (st >= 0)
        st = new2(S, cdt, T, D, &emb);
    if (st >= 0)
        st = be->ops->gemm(be, &h, &m->text2_w, &m->text2_b, ACT_NONE, &emb);
    if (st >= 0) {
        int64_t shape[3] = {c->layers, T, 2 * D};
        st = backend_tensor_alloc(be, cdt, 3, shape, &out->ckv);
        out->mem = out->ckv.data;
    }
    for (int i = 0; st >= 0 && i < c->layers; i++) {
        tensor kv = tensor_slice(&out->ckv, 0, i, 1);
        kv = tensor_2d(kv.data, cdt, be->dev, T, 2 * D);
        st = be->ops->gemm(be, &emb, &m->blocks[i].ckv_w, &m->blocks[i].ckv_b, ACT_NONE, &kv);
        tensor k = tensor_slice(&kv, 1, 0, D);
        if (st >= 0)
            st = be->ops->rms_norm(be, &k, &m->blocks[i].cnorm_k, c->eps, NULL, c->head_dim, &k);
    }
    if (st >= 0)
        st = be->ops->sync(be);
    arena_reset(S, mark);
    free(padded);
    if (st < 0) {
        wan_context_free(m, out);
        return err_wrap(st, "preparing the text context");
    }
    return REEL_OK;
}

void wan_context_free(wan_dit *m, wan_context *c)
{
    if (c->mem)
        m->be->ops->free(m->be, c->mem);
    memset(c, 0, sizeof *c);
}

/* ---- sizes ---------------------------------------------------------------------------------- */

size_t wan_dit_scratch_bytes(const wan_dit *m, int F, int H, int W, int n_contexts)
{
    const wan_config *c = &m->cfg;
    size_t n = n_contexts > 1 ? (size_t)n_contexts : 1;
    size_t tokens = (size_t)(F / c->patch[0]) * (H / c->patch[1]) * (W / c->patch[2]);
    size_t L = n * tokens; /* rows of the residual stream */
    size_t D = (size_t)c->dim, FF = (size_t)c->ffn_dim, cs = dtype_size(compute_dtype(m));
    size_t G = (size_t)F; /* at most one timestep per frame */
    size_t x = L * D * 4;
    size_t embed = tokens * D * cs;
    /* the sinusoid and the MLP's hidden rows once; e, e0 and the head's shift/scale per element */
    size_t time = (G * ((size_t)c->freq_dim + 2 * D) + n * G * (D + 6 * D + 2 * D)) * 4;
    /* across blocks: two modulations and a1; inside: ca + qkv + o, ca + q, or h + y */
    size_t self = 5 * L * D * cs, cross = 2 * L * D * cs, ffn = L * (D + FF) * cs;
    size_t block = 2 * 6 * n * G * D * 4 + L * D * cs +
                   (self > ffn ? (self > cross ? self : cross) : (ffn > cross ? ffn : cross));
    size_t head = L * D * 4 + L * (size_t)c->out_dim * c->patch[0] * c->patch[1] * c->patch[2] * 4;
    size_t body = block > head ? block : head;
    if (embed > body)
        body = embed;
    return x + time + body + (64u << 10) /* 256-byte alignment of each allocation */;
}

/* ---- one block ---------------------------------------------------------------------------- */

typedef struct fwd {
    wan_dit *m;
    const wan_forward_args *args;
    arena *S;
    laps *lp;
    tensor x;      /* [n*L, D] f32 residual stream */
    tensor e0;     /* [n*G, 6D] f32: element b's modulation groups in rows [b*G, (b+1)*G) */
    tensor mod[2]; /* [n*G, 6D] f32: blocks i and i + 1's modulation (block i in mod[i % 2]) */
    tensor a1;     /* [n*L, D]: the current block's first norm output, then scratch */
    rope_grid grid;
    int64_t L;     /* tokens of one element */
    int64_t n;     /* batch elements (contexts) */
    float t0;      /* first timestep, for the plugin */
} fwd;

/* Element b's rows of a [n*L, ...] activation. */
static tensor elem(const fwd *f, const tensor *t, int64_t b)
{
    return tensor_slice(t, 0, b * f->L, f->L);
}

/* mod = e0 + block i's modulation: [n*G, 6D], sliced into shift/scale/gate views of [n*G, D];
 * with the backend's rule (row r uses group r / (rows / groups)) element b's rows meet its own
 * copy of the G groups */
static int block_modulation(fwd *f, int i, tensor *mod)
{
    backend *be = f->m->be;
    tensor bm = tensor_1d(f->m->blocks[i].modulation.data, DT_F32, be->dev, 6 * f->m->cfg.dim);
    return be->ops->modulate(be, &f->e0, &bm, NULL, mod);
}

static tensor mod_part(const fwd *f, const tensor *mod, int part)
{
    return tensor_slice(mod, 1, part * f->m->cfg.dim, f->m->cfg.dim);
}

/* Block i. On entry f->mod[i % 2] holds its modulation and f->a1 its first norm's output; each
 * residual update is fused with the norm that reads x next (add_gated_norm), the last one with
 * block i + 1's first norm (whose modulation is computed here), so the f32 stream is read once
 * per update instead of twice. */
static int block_forward(fwd *f, int i)
{
    wan_dit *m = f->m;
    backend *be = m->be;
    const struct backend_ops *op = be->ops;
    const wan_config *c = &m->cfg;
    const wan_block_weights *b = &m->blocks[i];
    const enum dtype cdt = compute_dtype(m);
    const int64_t L = f->L, N = f->n * f->L, D = c->dim;
    const int64_t ns = i == 0 ? 1 : f->n; /* elements that run self-attention (see the top) */
    arena *S = f->S;
    size_t mark = arena_mark(S);
    const tensor *mod = &f->mod[i % 2];
    tensor gate1 = mod_part(f, mod, 2), shift2 = mod_part(f, mod, 3);
    tensor scale2 = mod_part(f, mod, 4), gate2 = mod_part(f, mod, 5);
    tensor ca, qkv, o, q, h, y;

    /* self-attention on a1; RoPE takes row index as token index, so it runs per element slice */
    TRY(new2(S, cdt, N, D, &ca)); /* the cross-attention norm's output, written at the end */
    size_t after_ca = arena_mark(S);
    TRY(new2(S, cdt, ns * L, 3 * D, &qkv));
    tensor a1s = tensor_slice(&f->a1, 0, 0, ns * L);
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &a1s, &b->qkv_w, &b->qkv_b, ACT_NONE, &qkv));
    q = tensor_slice(&qkv, 1, 0, D);
    tensor k = tensor_slice(&qkv, 1, D, D), v = tensor_slice(&qkv, 1, 2 * D, D);
    TRY(lap(f->lp, PH_OTHER));
    for (int64_t e = 0; e < ns; e++) {
        tensor qe = elem(f, &q, e), ke = elem(f, &k, e);
        TRY(op->rms_norm(be, &qe, &b->norm_q, c->eps, &f->grid, c->head_dim, &qe));
        TRY(op->rms_norm(be, &ke, &b->norm_k, c->eps, &f->grid, c->head_dim, &ke));
    }
    TRY(new2(S, cdt, ns * L, D, &o));
    TRY(lap(f->lp, PH_SELF));
    for (int64_t e = 0; e < ns; e++) {
        tensor qe = elem(f, &q, e), ke = elem(f, &k, e), ve = elem(f, &v, e), oe = elem(f, &o, e);
        TRY(attend(f->args->self_attn, &qe, &ke, &ve, &oe, i, f->args->step, f->t0, m, L, 1));
    }
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &o, &b->o_w, &b->o_b, ACT_NONE, &a1s)); /* a1 is free again: reuse it */
    TRY(lap(f->lp, PH_OTHER));
    if (ns < f->n)
        TRY(repeat_first(be, &f->a1, L, f->n));
    TRY(op->add_gated_norm(be, &f->x, &f->a1, &gate1, &b->norm3_w, &b->norm3_b, NULL, NULL,
                           c->eps, &ca));
    arena_reset(S, after_ca);

    /* cross-attention: element e against its own prompt's cached K/V */
    TRY(new2(S, cdt, N, D, &q));
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &ca, &b->cq_w, &b->cq_b, ACT_NONE, &q));
    TRY(lap(f->lp, PH_OTHER));
    TRY(op->rms_norm(be, &q, &b->cnorm_q, c->eps, NULL, c->head_dim, &q));
    TRY(lap(f->lp, PH_CROSS));
    for (int64_t e = 0; e < f->n; e++) {
        const wan_context *cx = f->args->contexts[e];
        tensor kv = tensor_slice(&cx->ckv, 0, i, 1);
        kv = tensor_2d(kv.data, cdt, be->dev, cx->rows, 2 * D);
        tensor ck = tensor_slice(&kv, 1, 0, D), cv = tensor_slice(&kv, 1, D, D);
        tensor qe = elem(f, &q, e), ae = elem(f, &ca, e);
        TRY(attend(f->args->cross_attn, &qe, &ck, &cv, &ae, i, f->args->step, f->t0, m, cx->rows,
                   cx->last_copies));
    }
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &ca, &b->co_w, &b->co_b, ACT_NONE, &q));
    TRY(lap(f->lp, PH_OTHER));
    TRY(op->add_gated_norm(be, &f->x, &q, NULL, NULL, NULL, &shift2, &scale2, c->eps, &f->a1));
    arena_reset(S, mark);

    /* feed-forward on a1, then the residual update fused with the next block's first norm */
    TRY(new2(S, cdt, N, c->ffn_dim, &h));
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &f->a1, &b->ffn1_w, &b->ffn1_b, ACT_GELU_TANH, &h));
    TRY(new2(S, cdt, N, D, &y));
    TRY(op->gemm(be, &h, &b->ffn2_w, &b->ffn2_b, ACT_NONE, &y));
    TRY(lap(f->lp, PH_OTHER));
    if (i + 1 < c->layers) {
        tensor *next = &f->mod[(i + 1) % 2];
        TRY(block_modulation(f, i + 1, next));
        tensor shift1 = mod_part(f, next, 0), scale1 = mod_part(f, next, 1);
        TRY(op->add_gated_norm(be, &f->x, &y, &gate2, NULL, NULL, &shift1, &scale1, c->eps,
                               &f->a1));
    } else {
        TRY(op->add_gated(be, &f->x, &y, &gate2));
    }
    arena_reset(S, mark);
    return REEL_OK;
}

/* ---- the forward ---------------------------------------------------------------------------- */

static int check_args(const wan_dit *m, const wan_forward_args *a)
{
    const wan_config *c = &m->cfg;
    const tensor *x = a->latent;
    char s[96];
    if (!x || x->dtype != DT_F32 || x->dev != m->be->dev || x->ndim != 4 || x->shape[0] != c->in_dim ||
        !tensor_is_contiguous(x))
        return err_set(REEL_E_INVALID, "latent: expected f32 [%d, F, H, W] on the %s backend, got %s %s",
                       c->in_dim, m->be->ops->name, x ? dtype_name(x->dtype) : "none",
                       x ? tensor_shape_str(x, s, sizeof s) : "");
    for (int i = 0; i < 3; i++)
        if (x->shape[1 + i] % c->patch[i] != 0 || x->shape[1 + i] <= 0)
            return err_set(REEL_E_INVALID, "latent %s: frames/height/width must be multiples of the "
                           "patch %dx%dx%d", tensor_shape_str(x, s, sizeof s), c->patch[0],
                           c->patch[1], c->patch[2]);
    const int n = a->n_contexts;
    if (n < 1 || !a->contexts)
        return err_set(REEL_E_INVALID, "forward: %d text contexts given, expected 1 or more", n);
    for (int i = 0; i < n; i++)
        if (!a->contexts[i] || !a->contexts[i]->ckv.data)
            return err_set(REEL_E_INVALID, "forward: text context %d of %d is not prepared", i, n);
    if (!a->self_attn || !a->cross_attn)
        return err_set(REEL_E_INVALID, "forward needs self- and cross-attention instances");
    /* [n, C_out, F, H, W], or the single prediction's [C_out, F, H, W] when n is 1 */
    const tensor *o = a->out;
    int lead = o ? o->ndim - 4 : -1;
    if (!o || o->dtype != DT_F32 || o->dev != m->be->dev || lead < 0 || lead > 1 ||
        (lead ? o->shape[0] != n : n != 1) || o->shape[lead] != c->out_dim ||
        o->shape[lead + 1] != x->shape[1] || o->shape[lead + 2] != x->shape[2] ||
        o->shape[lead + 3] != x->shape[3] || !tensor_is_contiguous(o))
        return err_set(REEL_E_INVALID, "output: expected f32 [%d, %d, %lld, %lld, %lld]%s on the "
                       "device, got %s %s", n, c->out_dim, (long long)x->shape[1],
                       (long long)x->shape[2], (long long)x->shape[3],
                       n == 1 ? " (or without the leading 1)" : "",
                       o ? dtype_name(o->dtype) : "none", o ? tensor_shape_str(o, s, sizeof s) : "");
    int frames = (int)(x->shape[1] / c->patch[0]);
    if (a->n_timesteps != 1 && a->n_timesteps != frames)
        return err_set(REEL_E_INVALID, "%d timesteps given: expected 1 or one per latent frame (%d)",
                       a->n_timesteps, frames);
    return REEL_OK;
}

int wan_dit_forward(wan_dit *m, const wan_forward_args *args, arena *S)
{
    TRY(check_args(m, args));
    backend *be = m->be;
    const struct backend_ops *op = be->ops;
    const wan_config *c = &m->cfg;
    const enum dtype cdt = compute_dtype(m);
    const int64_t D = c->dim, G = args->n_timesteps, n = args->n_contexts;
    const tensor *lat = args->latent;
    fwd f;
    memset(&f, 0, sizeof f);
    laps lp = {be, args->profile, {0}, 0, PH_OTHER};
    if (args->profile) {
        TRY(op->sync(be));
        lp.last = clock_ms();
    }
    double t_start = lp.last;
    f.m = m;
    f.args = args;
    f.S = S;
    f.lp = &lp;
    f.grid = (rope_grid){(int)(lat->shape[1] / c->patch[0]), (int)(lat->shape[2] / c->patch[1]),
                         (int)(lat->shape[3] / c->patch[2]), 0};
    f.L = (int64_t)f.grid.f * f.grid.h * f.grid.w;
    f.n = n;
    f.t0 = args->timesteps[0];
    size_t mark = arena_mark(S);
    int st = REEL_OK;

    /* time embedding (fp32), once: e = MLP(sinusoid(t)), e0 = proj(SiLU(e)); e and e0 are
     * written into element 0's rows and repeated for the others */
    float *sin_host = malloc((size_t)G * c->freq_dim * sizeof(float));
    if (!sin_host)
        return err_set(REEL_E_NOMEM, "time embedding: out of host memory");
    sinusoid(args->timesteps, (int)G, c->freq_dim, sin_host);
    tensor sh = tensor_2d(sin_host, DT_F32, DEV_CPU, G, c->freq_dim), sd, e1, e, se;
    st = new2(S, DT_F32, G, c->freq_dim, &sd);
    if (st >= 0)
        st = op->copy(be, &sh, &sd);
    if (st >= 0)
        st = op->sync(be); /* sin_host is freed next */
    free(sin_host);
    TRY(st);
    TRY(new2(S, DT_F32, G, D, &e1));
    TRY(op->gemm(be, &sd, &m->time1_w, &m->time1_b, ACT_NONE, &e1));
    TRY(op->silu(be, &e1, &e1));
    TRY(new2(S, DT_F32, n * G, D, &e));
    tensor e_first = tensor_slice(&e, 0, 0, G);
    TRY(op->gemm(be, &e1, &m->time2_w, &m->time2_b, ACT_NONE, &e_first));
    TRY(repeat_first(be, &e, G, n));
    TRY(new2(S, DT_F32, G, D, &se));
    TRY(op->silu(be, &e_first, &se));
    TRY(new2(S, DT_F32, n * G, 6 * D, &f.e0));
    tensor e0_first = tensor_slice(&f.e0, 0, 0, G);
    TRY(op->gemm(be, &se, &m->proj_w, &m->proj_b, ACT_NONE, &e0_first));
    TRY(repeat_first(be, &f.e0, G, n));

    /* patch embedding in the compute dtype, once, then the fp32 residual stream: element 0's
     * rows converted, the other elements' copied from them */
    TRY(new2(S, DT_F32, n * f.L, D, &f.x));
    size_t before_tokens = arena_mark(S);
    tensor tok;
    TRY(new2(S, cdt, f.L, D, &tok));
    TRY(lap(&lp, PH_GEMM));
    TRY(op->patch_embed(be, lat, &m->patch_w, &m->patch_b, &tok));
    TRY(lap(&lp, PH_OTHER));
    tensor x_first = elem(&f, &f.x, 0);
    TRY(op->copy(be, &tok, &x_first));
    TRY(repeat_first(be, &f.x, f.L, n));
    arena_reset(S, before_tokens);

    /* the blocks' modulation (two, alternating) and first-norm buffers live across blocks */
    size_t before_blocks = arena_mark(S);
    TRY(new2(S, DT_F32, n * G, 6 * D, &f.mod[0]));
    TRY(new2(S, DT_F32, n * G, 6 * D, &f.mod[1]));
    TRY(new2(S, cdt, n * f.L, D, &f.a1));
    TRY(block_modulation(&f, 0, &f.mod[0]));
    /* block 0 reads element 0's rows only (see the top) */
    tensor shift1 = mod_part(&f, &f.mod[0], 0), scale1 = mod_part(&f, &f.mod[0], 1);
    shift1 = tensor_slice(&shift1, 0, 0, G), scale1 = tensor_slice(&scale1, 0, 0, G);
    tensor a1_first = elem(&f, &f.a1, 0);
    TRY(op->layer_norm(be, &x_first, NULL, NULL, &shift1, &scale1, c->eps, &a1_first));
    for (int i = 0; i < c->layers; i++) {
        st = block_forward(&f, i);
        if (st < 0)
            return err_wrap(st, "block %d", i);
    }
    arena_reset(S, before_blocks);

    /* head: shift/scale = head.modulation + e (e, not e0), LN, fp32 linear, unpatchify each
     * element's tokens into its prediction */
    tensor hshift, hscale, ln, out_tok;
    tensor hm0 = tensor_1d(m->head_mod.data, DT_F32, be->dev, D);
    tensor hm1 = tensor_1d((float *)m->head_mod.data + D, DT_F32, be->dev, D);
    TRY(new2(S, DT_F32, n * G, D, &hshift));
    TRY(op->modulate(be, &e, &hm0, NULL, &hshift));
    TRY(new2(S, DT_F32, n * G, D, &hscale));
    TRY(op->modulate(be, &e, &hm1, NULL, &hscale));
    TRY(new2(S, DT_F32, n * f.L, D, &ln));
    TRY(op->layer_norm(be, &f.x, NULL, NULL, &hshift, &hscale, c->eps, &ln));
    TRY(new2(S, DT_F32, n * f.L, m->head_w.shape[0], &out_tok));
    TRY(lap(&lp, PH_GEMM));
    TRY(op->gemm(be, &ln, &m->head_w, &m->head_b, ACT_NONE, &out_tok));
    TRY(lap(&lp, PH_OTHER));
    patch_geom pg = {c->patch[0], c->patch[1], c->patch[2], f.grid.f, f.grid.h, f.grid.w};
    for (int64_t b = 0; b < n; b++) {
        tensor ob = *args->out, tb = elem(&f, &out_tok, b);
        if (ob.ndim == 5) {
            tensor one = tensor_slice(args->out, 0, b, 1);
            TRY(tensor_reshape(&one, 4, one.shape + 1, &ob));
        }
        TRY(op->unpatchify(be, &tb, &pg, &ob));
    }
    arena_reset(S, mark);
    if (args->profile) {
        TRY(lap(&lp, PH_OTHER));
        wan_profile *p = args->profile;
        p->gemm_ms = lp.acc[PH_GEMM];
        p->self_attn_ms = lp.acc[PH_SELF];
        p->cross_attn_ms = lp.acc[PH_CROSS];
        p->other_ms = lp.acc[PH_OTHER];
        p->total_ms = lp.last - t_start;
    }
    return REEL_OK;
}
