/* One forward of the Wan DiT (wan/modules/model.py WanModel.forward), op by op on a backend.
 * Per block:  a = LN(x)(1+scale1)+shift1 -> fused QKV GEMM -> RMSNorm+RoPE on q, k -> self
 * attention (plugin) -> O GEMM -> x += y*gate1 -> cross attention on LN3(x) against the cached
 * text K/V -> x += y -> b = LN(x)(1+scale2)+shift2 -> FFN (GELU in the GEMM epilogue) ->
 * x += y*gate2. x (the residual stream) stays fp32 throughout, as in the reference. */
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

static int attend(attn_instance *inst, const tensor *q, const tensor *k, const tensor *v,
                  tensor *out, int layer, int step, float timestep, const wan_dit *m,
                  int64_t kv_tokens)
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
    return attn_instance_forward(inst, &a);
}

/* ---- text context ------------------------------------------------------------------------- */

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
    const int64_t T = c->text_len, D = c->dim;
    /* Zero rows up to text_len, then the text MLP: padded rows become a bias-derived constant
     * that cross-attention attends to (no mask), exactly as the reference. */
    float *padded = calloc((size_t)(T * c->text_dim), sizeof(float));
    if (!padded)
        return err_set(REEL_E_NOMEM, "text context: out of host memory");
    memcpy(padded, context->data, (size_t)tensor_nbytes(context));
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

size_t wan_dit_scratch_bytes(const wan_dit *m, int F, int H, int W)
{
    const wan_config *c = &m->cfg;
    size_t L = (size_t)(F / c->patch[0]) * (H / c->patch[1]) * (W / c->patch[2]);
    size_t D = (size_t)c->dim, FF = (size_t)c->ffn_dim, cs = dtype_size(compute_dtype(m));
    size_t G = (size_t)F; /* at most one timestep per frame */
    size_t x = L * D * 4;
    size_t embed = L * D * cs;
    size_t time = G * ((size_t)c->freq_dim + 2 * D + 6 * D + 2 * D) * 4;
    size_t self = 6 * L * D * cs, cross = 4 * L * D * cs, ffn = L * (2 * D + FF) * cs;
    size_t block = 6 * G * D * 4 + (self > ffn ? (self > cross ? self : cross) : (ffn > cross ? ffn : cross));
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
    tensor x;      /* [L, D] f32 residual stream */
    tensor e0;     /* [G, 6D] f32 */
    rope_grid grid;
    int64_t L;
    float t0;      /* first timestep, for the plugin */
} fwd;

static int block_forward(fwd *f, int i)
{
    wan_dit *m = f->m;
    backend *be = m->be;
    const struct backend_ops *op = be->ops;
    const wan_config *c = &m->cfg;
    const wan_block_weights *b = &m->blocks[i];
    const enum dtype cdt = compute_dtype(m);
    const int64_t L = f->L, D = c->dim, G = f->e0.shape[0];
    arena *S = f->S;
    size_t mark = arena_mark(S);

    /* m = e0 + block.modulation, sliced into shift/scale/gate views of [G, D] */
    tensor mod, a, qkv, o, y, h;
    TRY(lap(f->lp, PH_OTHER));
    TRY(new2(S, DT_F32, G, 6 * D, &mod));
    tensor bm = tensor_1d(b->modulation.data, DT_F32, be->dev, 6 * D);
    TRY(op->modulate(be, &f->e0, &bm, NULL, &mod));
    tensor shift1 = tensor_slice(&mod, 1, 0 * D, D), scale1 = tensor_slice(&mod, 1, 1 * D, D);
    tensor gate1 = tensor_slice(&mod, 1, 2 * D, D), shift2 = tensor_slice(&mod, 1, 3 * D, D);
    tensor scale2 = tensor_slice(&mod, 1, 4 * D, D), gate2 = tensor_slice(&mod, 1, 5 * D, D);
    size_t after_mod = arena_mark(S);

    /* self-attention */
    TRY(new2(S, cdt, L, D, &a));
    TRY(op->layer_norm(be, &f->x, NULL, NULL, &shift1, &scale1, c->eps, &a));
    TRY(new2(S, cdt, L, 3 * D, &qkv));
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &a, &b->qkv_w, &b->qkv_b, ACT_NONE, &qkv));
    tensor q = tensor_slice(&qkv, 1, 0, D), k = tensor_slice(&qkv, 1, D, D);
    tensor v = tensor_slice(&qkv, 1, 2 * D, D);
    TRY(lap(f->lp, PH_OTHER));
    TRY(op->rms_norm(be, &q, &b->norm_q, c->eps, &f->grid, c->head_dim, &q));
    TRY(op->rms_norm(be, &k, &b->norm_k, c->eps, &f->grid, c->head_dim, &k));
    TRY(new2(S, cdt, L, D, &o));
    TRY(lap(f->lp, PH_SELF));
    TRY(attend(f->args->self_attn, &q, &k, &v, &o, i, f->args->step, f->t0, m, L));
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &o, &b->o_w, &b->o_b, ACT_NONE, &a)); /* a is free again: reuse it */
    TRY(lap(f->lp, PH_OTHER));
    TRY(op->add_gated(be, &f->x, &a, &gate1));
    arena_reset(S, after_mod);

    /* cross-attention against the prompt's cached K/V */
    const int64_t T = c->text_len;
    tensor kv = tensor_slice(&f->args->context->ckv, 0, i, 1);
    kv = tensor_2d(kv.data, cdt, be->dev, T, 2 * D);
    tensor ck = tensor_slice(&kv, 1, 0, D), cv = tensor_slice(&kv, 1, D, D);
    TRY(new2(S, cdt, L, D, &a));
    TRY(op->layer_norm(be, &f->x, &b->norm3_w, &b->norm3_b, NULL, NULL, c->eps, &a));
    TRY(new2(S, cdt, L, D, &q));
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &a, &b->cq_w, &b->cq_b, ACT_NONE, &q));
    TRY(lap(f->lp, PH_OTHER));
    TRY(op->rms_norm(be, &q, &b->cnorm_q, c->eps, NULL, c->head_dim, &q));
    TRY(lap(f->lp, PH_CROSS));
    TRY(attend(f->args->cross_attn, &q, &ck, &cv, &a, i, f->args->step, f->t0, m, T));
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &a, &b->co_w, &b->co_b, ACT_NONE, &q));
    TRY(lap(f->lp, PH_OTHER));
    TRY(op->add_gated(be, &f->x, &q, NULL));
    arena_reset(S, after_mod);

    /* feed-forward */
    TRY(new2(S, cdt, L, D, &a));
    TRY(op->layer_norm(be, &f->x, NULL, NULL, &shift2, &scale2, c->eps, &a));
    TRY(new2(S, cdt, L, c->ffn_dim, &h));
    TRY(lap(f->lp, PH_GEMM));
    TRY(op->gemm(be, &a, &b->ffn1_w, &b->ffn1_b, ACT_GELU_TANH, &h));
    TRY(new2(S, cdt, L, D, &y));
    TRY(op->gemm(be, &h, &b->ffn2_w, &b->ffn2_b, ACT_NONE, &y));
    TRY(lap(f->lp, PH_OTHER));
    TRY(op->add_gated(be, &f->x, &y, &gate2));
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
    const tensor *o = a->out;
    if (!o || o->dtype != DT_F32 || o->dev != m->be->dev || o->ndim != 4 ||
        o->shape[0] != c->out_dim || o->shape[1] != x->shape[1] || o->shape[2] != x->shape[2] ||
        o->shape[3] != x->shape[3] || !tensor_is_contiguous(o))
        return err_set(REEL_E_INVALID, "output: expected f32 [%d, %lld, %lld, %lld] on the device",
                       c->out_dim, (long long)x->shape[1], (long long)x->shape[2],
                       (long long)x->shape[3]);
    int frames = (int)(x->shape[1] / c->patch[0]);
    if (a->n_timesteps != 1 && a->n_timesteps != frames)
        return err_set(REEL_E_INVALID, "%d timesteps given: expected 1 or one per latent frame (%d)",
                       a->n_timesteps, frames);
    if (!a->context || !a->context->ckv.data || !a->self_attn || !a->cross_attn)
        return err_set(REEL_E_INVALID, "forward needs a prepared context and attention instances");
    return REEL_OK;
}

int wan_dit_forward(wan_dit *m, const wan_forward_args *args, arena *S)
{
    TRY(check_args(m, args));
    backend *be = m->be;
    const struct backend_ops *op = be->ops;
    const wan_config *c = &m->cfg;
    const enum dtype cdt = compute_dtype(m);
    const int64_t D = c->dim, G = args->n_timesteps;
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
    f.t0 = args->timesteps[0];
    size_t mark = arena_mark(S);
    int st = REEL_OK;

    /* time embedding (fp32): e = MLP(sinusoid(t)), e0 = proj(SiLU(e)) */
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
    TRY(new2(S, DT_F32, G, D, &e));
    TRY(op->gemm(be, &e1, &m->time2_w, &m->time2_b, ACT_NONE, &e));
    TRY(new2(S, DT_F32, G, D, &se));
    TRY(op->silu(be, &e, &se));
    TRY(new2(S, DT_F32, G, 6 * D, &f.e0));
    TRY(op->gemm(be, &se, &m->proj_w, &m->proj_b, ACT_NONE, &f.e0));

    /* patch embedding in the compute dtype, then the fp32 residual stream */
    TRY(new2(S, DT_F32, f.L, D, &f.x));
    size_t before_tokens = arena_mark(S);
    tensor tok;
    TRY(new2(S, cdt, f.L, D, &tok));
    TRY(lap(&lp, PH_GEMM));
    TRY(op->patch_embed(be, lat, &m->patch_w, &m->patch_b, &tok));
    TRY(lap(&lp, PH_OTHER));
    TRY(op->copy(be, &tok, &f.x));
    arena_reset(S, before_tokens);

    for (int i = 0; i < c->layers; i++) {
        st = block_forward(&f, i);
        if (st < 0)
            return err_wrap(st, "block %d", i);
    }

    /* head: shift/scale = head.modulation + e (e, not e0), LN, fp32 linear, unpatchify */
    tensor hshift, hscale, ln, out_tok;
    tensor hm0 = tensor_1d(m->head_mod.data, DT_F32, be->dev, D);
    tensor hm1 = tensor_1d((float *)m->head_mod.data + D, DT_F32, be->dev, D);
    TRY(new2(S, DT_F32, G, D, &hshift));
    TRY(op->modulate(be, &e, &hm0, NULL, &hshift));
    TRY(new2(S, DT_F32, G, D, &hscale));
    TRY(op->modulate(be, &e, &hm1, NULL, &hscale));
    TRY(new2(S, DT_F32, f.L, D, &ln));
    TRY(op->layer_norm(be, &f.x, NULL, NULL, &hshift, &hscale, c->eps, &ln));
    TRY(new2(S, DT_F32, f.L, m->head_w.shape[0], &out_tok));
    TRY(lap(&lp, PH_GEMM));
    TRY(op->gemm(be, &ln, &m->head_w, &m->head_b, ACT_NONE, &out_tok));
    TRY(lap(&lp, PH_OTHER));
    patch_geom pg = {c->patch[0], c->patch[1], c->patch[2], f.grid.f, f.grid.h, f.grid.w};
    TRY(op->unpatchify(be, &out_tok, &pg, args->out));
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
