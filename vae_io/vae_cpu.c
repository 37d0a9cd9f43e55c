/* The CPU executor of the Wan VAE: the fp32 reference that the CUDA executor is tested
 * against (tests/gpu/test_vae_cuda.c). Activations are f32 [c][t][h][w], as PyTorch stores a
 * batch-1 NCDHW tensor. Convolutions gather receptive fields (im2col) and multiply them with
 * the CPU backend's GEMM; the rest are plain loops, split between worker threads where large. */
#include "vae_internal.h"

#include "dit/cpu_pool.h"
#include "dit/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cpu_vae {
    cpu_pool *pool;
    float *slot[2];
    size_t slot_cap[2];
} cpu_vae;

static cpu_vae *impl(vae_exec *ex) { return ex->impl; }

static size_t act_numel(const vae_act *a) { return (size_t)a->c * a->t * a->h * a->w; }

static int cpu_prepare(vae_exec *ex, wan_vae *v) { return REEL_OK; }

static void cpu_destroy(vae_exec *ex)
{
    cpu_vae *c = impl(ex);
    if (c) {
        cpu_pool_free(c->pool);
        free(c->slot[0]);
        free(c->slot[1]);
        free(c);
    }
    free(ex);
}

static int cpu_alloc(vae_exec *ex, int c, int t, int h, int w, vae_act *a)
{
    a->c = c, a->t = t, a->h = h, a->w = w;
    a->data = malloc(act_numel(a) * sizeof(float));
    if (!a->data)
        return err_set(REEL_E_NOMEM, "vae: activation [%d, %d, %d, %d] (%.1f MiB)", c, t, h, w,
                       (double)act_numel(a) * 4 / (1 << 20));
    return REEL_OK;
}

static void cpu_release(vae_exec *ex, vae_act *a)
{
    free(a->data);
    a->data = NULL;
}

static int cpu_zero(vae_exec *ex, vae_act *a)
{
    memset(a->data, 0, act_numel(a) * sizeof(float));
    return REEL_OK;
}

static int cpu_upload(vae_exec *ex, const float *host, vae_act *a)
{
    memcpy(a->data, host, act_numel(a) * sizeof(float));
    return REEL_OK;
}

static int cpu_download(vae_exec *ex, const vae_act *a, int slot, int clamp)
{
    cpu_vae *c = impl(ex);
    size_t n = act_numel(a);
    if (c->slot_cap[slot] < n) {
        free(c->slot[slot]);
        c->slot_cap[slot] = 0;
        if (!(c->slot[slot] = malloc(n * sizeof(float))))
            return err_set(REEL_E_NOMEM, "vae: output buffer of %zu floats", n);
        c->slot_cap[slot] = n;
    }
    const float *src = a->data;
    float *dst = c->slot[slot];
    for (size_t i = 0; i < n; i++)
        dst[i] = clamp ? fminf(fmaxf(src[i], -1.0f), 1.0f) : src[i];
    return REEL_OK;
}

static int cpu_fetch(vae_exec *ex, int slot, const float **host)
{
    *host = impl(ex)->slot[slot];
    return REEL_OK;
}

/* RMS_norm over channels of nvox voxels (channel stride nvox), optionally followed by SiLU:
 * x / max(||x||, 1e-12) * sqrt(c) * gamma, as F.normalize(x, dim=1) * scale * gamma. */
static void rms_norm_cf(const float *x, float *y, int c, size_t nvox, const float *gamma, int silu)
{
    enum { B = 256 };
    float ss[B];
    float scale = sqrtf((float)c);
    for (size_t p0 = 0; p0 < nvox; p0 += B) {
        size_t nb = nvox - p0 < B ? nvox - p0 : B;
        memset(ss, 0, sizeof ss);
        for (int ch = 0; ch < c; ch++) {
            const float *xr = x + (size_t)ch * nvox + p0;
            for (size_t i = 0; i < nb; i++)
                ss[i] += xr[i] * xr[i];
        }
        for (size_t i = 0; i < nb; i++)
            ss[i] = scale / fmaxf(sqrtf(ss[i]), 1e-12f);
        for (int ch = 0; ch < c; ch++) {
            const float *xr = x + (size_t)ch * nvox + p0;
            float *yr = y + (size_t)ch * nvox + p0;
            for (size_t i = 0; i < nb; i++) {
                float v = xr[i] * ss[i] * gamma[ch];
                yr[i] = silu ? v / (1.0f + expf(-v)) : v;
            }
        }
    }
}

/* Convolution as GEMM over slabs of output voxels: col [n, cin*taps] gathers each voxel's
 * receptive field (zeros in the padding), the backend's blocked GEMM multiplies it with the
 * weights in their PyTorch layout [cout, cin*taps], and the [n, cout] result is scattered
 * back channel-first with the residual. Slabs keep col near 32 MiB at any frame size. */
typedef struct im2col_job {
    const vae_conv *L;
    const float *in; /* [cin][tin][h][w] */
    int tin, h, w, ho, wo;
    int64_t p0;      /* first output voxel of the slab */
    float *col;      /* [n][cin * taps] */
} im2col_job;

static void im2col_task(void *ctx, int64_t begin, int64_t end, int worker)
{
    const im2col_job *j = ctx;
    const vae_conv *L = j->L;
    int64_t K = (int64_t)L->cin * L->kt * L->kh * L->kw;
    size_t plane = (size_t)j->h * j->w;
    for (int64_t i = begin; i < end; i++) {
        int64_t p = j->p0 + i;
        int x = (int)(p % j->wo), y = (int)(p / j->wo % j->ho), t = (int)(p / ((int64_t)j->wo * j->ho));
        float *row = j->col + i * K;
        for (int ci = 0; ci < L->cin; ci++)
            for (int a = 0; a < L->kt; a++) {
                const float *frame = j->in + ((size_t)ci * j->tin + (size_t)(t * L->st + a)) * plane;
                int x0 = x * L->sw - L->pad_left;
                for (int b = 0; b < L->kh; b++, row += L->kw) {
                    int yi = y * L->sh + b - L->pad_top;
                    const float *src = frame + (size_t)yi * j->w;
                    if (yi < 0 || yi >= j->h)
                        memset(row, 0, (size_t)L->kw * sizeof(float));
                    else if (x0 >= 0 && x0 + L->kw <= j->w)
                        memcpy(row, src + x0, (size_t)L->kw * sizeof(float));
                    else
                        for (int d = 0; d < L->kw; d++)
                            row[d] = x0 + d >= 0 && x0 + d < j->w ? src[x0 + d] : 0.0f;
                }
            }
    }
}

static int conv_gemm(vae_exec *ex, const vae_conv *L, const float *in, int tin, int h, int w,
                     vae_act *out, const float *res)
{
    int64_t K = (int64_t)L->cin * L->kt * L->kh * L->kw, P = (int64_t)out->t * out->h * out->w;
    int64_t slab = ((int64_t)8 << 20) / K;
    slab = slab < 1 ? 1 : slab > P ? P : slab;
    float *col = malloc((size_t)(slab * K) * sizeof(float));
    float *tmp = malloc((size_t)(slab * L->cout) * sizeof(float));
    int st = REEL_OK;
    if (!col || !tmp) {
        st = err_set(REEL_E_NOMEM, "vae: %s: %lld x %lld convolution buffer", L->name,
                     (long long)slab, (long long)K);
        goto done;
    }
    tensor wt = tensor_2d(L->w, DT_F32, DEV_CPU, L->cout, K), bt = tensor_1d(L->b, DT_F32, DEV_CPU, L->cout);
    float *o = out->data;
    for (int64_t p0 = 0; p0 < P && st >= 0; p0 += slab) {
        int64_t n = P - p0 < slab ? P - p0 : slab;
        im2col_job j = {L, in, tin, h, w, out->h, out->w, p0, col};
        cpu_pool_for(impl(ex)->pool, n, 64, im2col_task, &j);
        tensor at = tensor_2d(col, DT_F32, DEV_CPU, n, K), ot = tensor_2d(tmp, DT_F32, DEV_CPU, n, L->cout);
        st = ex->be->ops->gemm(ex->be, &at, &wt, &bt, ACT_NONE, &ot);
        for (int co = 0; st >= 0 && co < L->cout; co++) {
            float *dst = o + (size_t)co * P + p0;
            const float *r = res ? res + (size_t)co * P + p0 : NULL;
            for (int64_t i = 0; i < n; i++)
                dst[i] = tmp[i * L->cout + co] + (r ? r[i] : 0.0f);
        }
    }
    if (st < 0)
        err_wrap(st, "vae: %s", L->name);
done:
    free(col);
    free(tmp);
    return st;
}

static int cpu_conv(vae_exec *ex, const vae_conv *L, vae_act *cache, const vae_act *x,
                    const vae_norm *pre, const vae_act *residual, vae_act *out)
{
    int nc = L->cache_frames, tin = nc + x->t;
    size_t plane = (size_t)x->h * x->w, xvol = (size_t)x->t * plane;
    const float *in = x->data;
    float *buf = NULL;
    if (nc || pre) {
        /* [cin][cache frames, pre(x) frames] */
        buf = malloc((size_t)L->cin * tin * plane * sizeof(float));
        float *normed = pre ? malloc((size_t)L->cin * xvol * sizeof(float)) : NULL;
        if (!buf || (pre && !normed)) {
            free(buf);
            free(normed);
            return err_set(REEL_E_NOMEM, "vae: %s input [%d, %d, %d, %d]", L->name, L->cin, tin,
                           x->h, x->w);
        }
        const float *src = x->data;
        if (pre) {
            rms_norm_cf(x->data, normed, L->cin, xvol, pre->g, 1);
            src = normed;
        }
        for (int c = 0; c < L->cin; c++) {
            float *dst = buf + (size_t)c * tin * plane;
            if (nc)
                memcpy(dst, (const float *)cache->data + (size_t)c * nc * plane,
                       (size_t)nc * plane * sizeof(float));
            memcpy(dst + (size_t)nc * plane, src + (size_t)c * xvol, xvol * sizeof(float));
        }
        free(normed);
        in = buf;
    }
    int st = conv_gemm(ex, L, in, tin, x->h, x->w, out, residual ? residual->data : NULL);
    if (st >= 0 && nc) /* the cache keeps the last nc frames of the sequence the kernel ran over */
        for (int c = 0; c < L->cin; c++)
            memcpy((float *)cache->data + (size_t)c * nc * plane,
                   in + ((size_t)c * tin + (size_t)(tin - nc)) * plane,
                   (size_t)nc * plane * sizeof(float));
    free(buf);
    return st;
}

typedef struct attn_job {
    int c, n;           /* channels, tokens of one frame */
    const float *qkv;   /* [3c][n] */
    float *o;           /* [c][n] */
    float *scores;      /* [threads][n] */
} attn_job;

/* Single-head attention, scale 1/sqrt(c): query tokens split between workers. */
static void attn_task(void *ctx, int64_t begin, int64_t end, int worker)
{
    const attn_job *j = ctx;
    const float *q = j->qkv, *k = j->qkv + (size_t)j->c * j->n, *v = j->qkv + 2 * (size_t)j->c * j->n;
    float *s = j->scores + (size_t)worker * j->n;
    float scale = 1.0f / sqrtf((float)j->c);
    for (int64_t i = begin; i < end; i++) {
        for (int m = 0; m < j->n; m++)
            s[m] = 0.0f;
        for (int ch = 0; ch < j->c; ch++) {
            float qv = q[(size_t)ch * j->n + i] * scale;
            const float *kr = k + (size_t)ch * j->n;
            for (int m = 0; m < j->n; m++)
                s[m] += qv * kr[m];
        }
        float mx = -INFINITY, sum = 0.0f;
        for (int m = 0; m < j->n; m++)
            mx = fmaxf(mx, s[m]);
        for (int m = 0; m < j->n; m++)
            sum += (s[m] = expf(s[m] - mx));
        for (int ch = 0; ch < j->c; ch++) {
            const float *vr = v + (size_t)ch * j->n;
            float acc = 0.0f;
            for (int m = 0; m < j->n; m++)
                acc += s[m] * vr[m];
            j->o[(size_t)ch * j->n + i] = acc / sum;
        }
    }
}

/* 1x1 convolution over one frame: out[co][p] = b[co] + sum_ci w[co][ci] in[ci][p] (+ res). */
static void pointwise(const vae_conv *L, const float *in, size_t n, const float *res, float *out)
{
    for (int co = 0; co < L->cout; co++) {
        float *o = out + (size_t)co * n;
        for (size_t p = 0; p < n; p++)
            o[p] = L->b[co] + (res ? res[(size_t)co * n + p] : 0.0f);
        for (int ci = 0; ci < L->cin; ci++) {
            float wv = L->w[(size_t)co * L->cin + ci];
            const float *ir = in + (size_t)ci * n;
            for (size_t p = 0; p < n; p++)
                o[p] += wv * ir[p];
        }
    }
}

static int cpu_attention(vae_exec *ex, const vae_layer *L, const vae_act *x, vae_act *out)
{
    cpu_vae *cv = impl(ex);
    int c = x->c;
    size_t n = (size_t)x->h * x->w, vol = (size_t)x->t * n;
    int threads = cpu_pool_threads(cv->pool);
    float *xn = malloc((size_t)c * n * sizeof(float)), *qkv = malloc(3 * (size_t)c * n * sizeof(float));
    float *o = malloc((size_t)c * n * sizeof(float));
    float *scores = malloc((size_t)threads * n * sizeof(float));
    float *frame = malloc((size_t)c * n * sizeof(float));
    int st = REEL_OK;
    if (!xn || !qkv || !o || !scores || !frame) {
        st = err_set(REEL_E_NOMEM, "vae: attention over %zu tokens of %d channels", n, c);
        goto done;
    }
    for (int t = 0; t < x->t; t++) {
        /* this frame as [c][n] */
        for (int ch = 0; ch < c; ch++)
            memcpy(frame + (size_t)ch * n, (const float *)x->data + (size_t)ch * vol + (size_t)t * n,
                   n * sizeof(float));
        rms_norm_cf(frame, xn, c, n, L->n1.g, 0);
        pointwise(&L->c[0], xn, n, NULL, qkv);
        attn_job j = {c, (int)n, qkv, o, scores};
        cpu_pool_for(cv->pool, (int64_t)n, 16, attn_task, &j);
        pointwise(&L->c[1], o, n, frame, xn);
        for (int ch = 0; ch < c; ch++)
            memcpy((float *)out->data + (size_t)ch * vol + (size_t)t * n, xn + (size_t)ch * n,
                   n * sizeof(float));
    }
done:
    free(xn);
    free(qkv);
    free(o);
    free(scores);
    free(frame);
    return st;
}

static int cpu_upsample(vae_exec *ex, const vae_act *x, int interleave, vae_act *out)
{
    const float *src = x->data;
    float *dst = out->data;
    for (int c = 0; c < out->c; c++)
        for (int t = 0; t < out->t; t++) {
            /* out frame t of channel c comes from frame t/2, channel c or c + C when interleaved */
            int sc = interleave ? (t & 1) * out->c + c : c, stf = interleave ? t / 2 : t;
            const float *ip = src + ((size_t)sc * x->t + stf) * x->h * x->w;
            float *op = dst + ((size_t)c * out->t + t) * out->h * out->w;
            for (int y = 0; y < out->h; y++)
                for (int xx = 0; xx < out->w; xx++)
                    op[(size_t)y * out->w + xx] = ip[(size_t)(y / 2) * x->w + xx / 2];
        }
    return REEL_OK;
}

static int cpu_keep_last(vae_exec *ex, const vae_act *x, vae_act *cache)
{
    size_t plane = (size_t)x->h * x->w;
    for (int c = 0; c < x->c; c++)
        memcpy((float *)cache->data + (size_t)c * cache->t * plane,
               (const float *)x->data + ((size_t)c * x->t + (size_t)(x->t - cache->t)) * plane,
               (size_t)cache->t * plane * sizeof(float));
    return REEL_OK;
}

static void cpu_memory(vae_exec *ex, size_t *peak, size_t *weights)
{
    if (peak)
        *peak = 0;
    if (weights)
        *weights = 0;
}

static void cpu_reset_peak(vae_exec *ex) {}

static const struct vae_exec_ops cpu_ops = {
    cpu_prepare,  cpu_destroy,   cpu_alloc,    cpu_release,   cpu_zero,
    cpu_upload,   cpu_download,  cpu_fetch,    cpu_conv,      cpu_attention,
    cpu_upsample, cpu_keep_last, cpu_memory,   cpu_reset_peak,
};

int vae_exec_cpu_create(backend *be, vae_exec **out)
{
    vae_exec *ex = calloc(1, sizeof *ex);
    cpu_vae *c = calloc(1, sizeof *c);
    if (!ex || !c) {
        free(ex);
        free(c);
        return err_set(REEL_E_NOMEM, "vae: cpu executor");
    }
    ex->ops = &cpu_ops;
    ex->be = be;
    ex->impl = c;
    int st = cpu_pool_create(be->threads > 0 ? be->threads : 1, &c->pool);
    if (st < 0) {
        cpu_destroy(ex);
        return st;
    }
    *out = ex;
    return REEL_OK;
}
