#include "backend_args.h"

#include "error.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

static const char *dev_name(enum device d) { return d == DEV_CUDA ? "cuda" : "cpu"; }

/* "f32 or bf16" for messages. */
static const char *mask_str(unsigned dtypes, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int d = 0; d < DT_COUNT && used < n; d++)
        if (dtypes & DTM(d))
            used += (size_t)snprintf(buf + used, n - used, used ? " or %s" : "%s",
                                     dtype_name((enum dtype)d));
    return buf;
}

static int check_dev_dtype(const char *op, const char *arg, const tensor *t, enum device dev,
                           unsigned dtypes)
{
    char shape[96], want[64];
    if (!t->data && tensor_numel(t) > 0)
        return err_set(REEL_E_INVALID, "%s: %s %s has no data", op, arg,
                       tensor_shape_str(t, shape, sizeof shape));
    if (t->dev != dev)
        return err_set(REEL_E_INVALID, "%s: %s %s is on %s, this backend works on %s", op, arg,
                       tensor_shape_str(t, shape, sizeof shape), dev_name(t->dev), dev_name(dev));
    if ((unsigned)t->dtype >= DT_COUNT || !(dtypes & DTM(t->dtype)))
        return err_set(REEL_E_INVALID, "%s: %s %s is %s, expected %s", op, arg,
                       tensor_shape_str(t, shape, sizeof shape), dtype_name(t->dtype),
                       mask_str(dtypes, want, sizeof want));
    return REEL_OK;
}

int barg_rows(const char *op, const char *arg, const tensor *t, enum device dev, unsigned dtypes,
              row_view *v)
{
    char shape[96];
    TRY(check_dev_dtype(op, arg, t, dev, dtypes));
    if (t->ndim < 1)
        return err_set(REEL_E_INVALID, "%s: %s is a scalar, expected rows of values", op, arg);
    int64_t stride = tensor_row_stride(t);
    int64_t cols = t->shape[t->ndim - 1];
    if (stride < 0 || (tensor_rows(t) > 1 && stride < cols))
        return err_set(REEL_E_INVALID,
                       "%s: %s %s is not a row view (innermost dim contiguous, rows evenly spaced)",
                       op, arg, tensor_shape_str(t, shape, sizeof shape));
    v->data = t->data;
    v->dtype = t->dtype;
    v->rows = tensor_rows(t);
    v->cols = cols;
    v->stride = stride;
    return REEL_OK;
}

int barg_rows_like(const char *op, const char *arg, const tensor *t, const tensor *ref,
                   enum device dev, unsigned dtypes, row_view *v)
{
    char a[96], b[96];
    if (!tensor_same_shape(t, ref))
        return err_set(REEL_E_INVALID, "%s: %s is %s, expected the input's shape %s", op, arg,
                       tensor_shape_str(t, a, sizeof a), tensor_shape_str(ref, b, sizeof b));
    return barg_rows(op, arg, t, dev, dtypes, v);
}

int barg_vec(const char *op, const char *arg, const tensor *t, int64_t cols, enum device dev,
             unsigned dtypes, row_view *v)
{
    char shape[96];
    v->data = NULL;
    v->rows = 1;
    v->cols = cols;
    v->stride = cols;
    v->dtype = DT_F32;
    if (!t)
        return REEL_OK;
    TRY(check_dev_dtype(op, arg, t, dev, dtypes));
    if (tensor_numel(t) != cols || t->shape[t->ndim - 1] != cols || !tensor_is_contiguous(t))
        return err_set(REEL_E_INVALID, "%s: %s is %s, expected a contiguous [%lld]", op, arg,
                       tensor_shape_str(t, shape, sizeof shape), (long long)cols);
    v->data = t->data;
    v->dtype = t->dtype;
    return REEL_OK;
}

int barg_mod(const char *op, const char *arg, const tensor *t, int64_t rows, int64_t cols,
             enum device dev, unsigned dtypes, row_view *v)
{
    char shape[96];
    if (!t || t->ndim <= 1)
        return barg_vec(op, arg, t, cols, dev, dtypes, v);
    TRY(barg_rows(op, arg, t, dev, dtypes, v));
    if (v->cols != cols || v->rows < 1 || rows % v->rows != 0)
        return err_set(REEL_E_INVALID,
                       "%s: %s is %s, expected [%lld] or [G, %lld] with G dividing the %lld rows",
                       op, arg, tensor_shape_str(t, shape, sizeof shape), (long long)cols,
                       (long long)cols, (long long)rows);
    return REEL_OK;
}

int barg_contig(const char *op, const char *arg, const tensor *t, enum device dev,
                unsigned dtypes)
{
    char shape[96];
    TRY(check_dev_dtype(op, arg, t, dev, dtypes));
    if (!tensor_is_contiguous(t))
        return err_set(REEL_E_INVALID, "%s: %s %s must be contiguous", op, arg,
                       tensor_shape_str(t, shape, sizeof shape));
    return REEL_OK;
}

int barg_rope(const char *op, const rope_grid *g, int head_dim, int64_t rows, int64_t cols)
{
    if (head_dim <= 0 || head_dim % 2 || cols % head_dim)
        return err_set(REEL_E_INVALID,
                       "%s: head_dim %d must be even, positive and divide the row width %lld", op,
                       head_dim, (long long)cols);
    if (g->f < 0 || g->h < 0 || g->w < 0 || g->f0 < 0 ||
        (int64_t)g->f * g->h * g->w != rows)
        return err_set(REEL_E_INVALID,
                       "%s: RoPE grid %dx%dx%d (f0 %d) does not match the %lld token rows", op,
                       g->f, g->h, g->w, g->f0, (long long)rows);
    return REEL_OK;
}

int barg_gemm(const char *op, const tensor *a, const tensor *w, const tensor *bias,
              const tensor *out, enum device dev, unsigned in_dtypes, unsigned bias_dtypes,
              unsigned out_dtypes, gemm_args *g)
{
    char sa[96], sw[96], so[96];
    TRY(barg_rows(op, "a", a, dev, in_dtypes, &g->a));
    TRY(barg_contig(op, "w", w, dev, in_dtypes));
    TRY(barg_rows(op, "out", out, dev, out_dtypes, &g->out));
    g->m = g->a.rows;
    g->k = g->a.cols;
    if (w->ndim != 2 || w->shape[1] != g->k || g->out.rows != g->m || g->out.cols != w->shape[0])
        return err_set(REEL_E_INVALID, "%s: a %s, w %s and out %s do not fit [M,K]x[N,K]->[M,N]",
                       op, tensor_shape_str(a, sa, sizeof sa), tensor_shape_str(w, sw, sizeof sw),
                       tensor_shape_str(out, so, sizeof so));
    if (g->k == 0)
        return err_set(REEL_E_INVALID, "%s: a %s has K = 0", op, tensor_shape_str(a, sa, sizeof sa));
    if (w->dtype != a->dtype)
        return err_set(REEL_E_INVALID, "%s: a is %s but w is %s (they must match)", op,
                       dtype_name(a->dtype), dtype_name(w->dtype));
    g->n = w->shape[0];
    g->w = (row_view){w->data, w->dtype, g->n, g->k, g->k};
    return barg_vec(op, "bias", bias, g->n, dev, bias_dtypes, &g->bias);
}

int barg_patch_embed(const char *op, const tensor *latent, const tensor *w, const tensor *bias,
                     const tensor *out, enum device dev, unsigned in_dtypes,
                     unsigned out_dtypes, patch_args *p)
{
    char sl[96], sw[96];
    TRY(barg_contig(op, "latent", latent, dev, in_dtypes));
    TRY(barg_contig(op, "w", w, dev, in_dtypes));
    if (latent->ndim != 4 || w->ndim != 5 || w->shape[1] != latent->shape[0] || w->shape[2] < 1 ||
        w->shape[3] < 1 || w->shape[4] < 1)
        return err_set(REEL_E_INVALID,
                       "%s: latent %s and w %s: expected [C, F, H, W] and [D, C, pt, ph, pw]", op,
                       tensor_shape_str(latent, sl, sizeof sl), tensor_shape_str(w, sw, sizeof sw));
    if (latent->shape[1] % w->shape[2] || latent->shape[2] % w->shape[3] ||
        latent->shape[3] % w->shape[4])
        return err_set(REEL_E_INVALID,
                       "%s: latent %s is not divisible into patches %lldx%lldx%lld (w %s)", op,
                       tensor_shape_str(latent, sl, sizeof sl), (long long)w->shape[2],
                       (long long)w->shape[3], (long long)w->shape[4],
                       tensor_shape_str(w, sw, sizeof sw));
    p->channels = latent->shape[0];
    p->dim = w->shape[0];
    p->g.pt = (int)w->shape[2];
    p->g.ph = (int)w->shape[3];
    p->g.pw = (int)w->shape[4];
    p->g.f = (int)(latent->shape[1] / p->g.pt);
    p->g.h = (int)(latent->shape[2] / p->g.ph);
    p->g.w = (int)(latent->shape[3] / p->g.pw);
    TRY(barg_rows(op, "out", out, dev, out_dtypes, &p->out));
    if (p->out.rows != (int64_t)p->g.f * p->g.h * p->g.w || p->out.cols != p->dim)
        return err_set(REEL_E_INVALID, "%s: out %s, expected [%lld, %lld] tokens", op,
                       tensor_shape_str(out, sl, sizeof sl),
                       (long long)p->g.f * p->g.h * p->g.w, (long long)p->dim);
    return barg_vec(op, "bias", bias, p->dim, dev, in_dtypes | DTM(DT_F32), &p->bias);
}

int barg_unpatchify(const char *op, const tensor *x, const patch_geom *g, const tensor *out,
                    enum device dev, unsigned in_dtypes, unsigned out_dtypes, row_view *xv,
                    int64_t *channels)
{
    char sx[96], so[96];
    if (g->pt < 1 || g->ph < 1 || g->pw < 1 || g->f < 0 || g->h < 0 || g->w < 0)
        return err_set(REEL_E_INVALID, "%s: bad patch geometry %dx%dx%d over grid %dx%dx%d", op,
                       g->pt, g->ph, g->pw, g->f, g->h, g->w);
    TRY(barg_rows(op, "x", x, dev, in_dtypes, xv));
    TRY(barg_contig(op, "out", out, dev, out_dtypes));
    int64_t patch = (int64_t)g->pt * g->ph * g->pw;
    int64_t c = xv->cols / patch;
    if (xv->rows != (int64_t)g->f * g->h * g->w || xv->cols % patch || out->ndim != 4 ||
        out->shape[0] != c || out->shape[1] != (int64_t)g->f * g->pt ||
        out->shape[2] != (int64_t)g->h * g->ph || out->shape[3] != (int64_t)g->w * g->pw)
        return err_set(REEL_E_INVALID,
                       "%s: x %s and out %s do not match grid %dx%dx%d with patch %dx%dx%d", op,
                       tensor_shape_str(x, sx, sizeof sx), tensor_shape_str(out, so, sizeof so),
                       g->f, g->h, g->w, g->pt, g->ph, g->pw);
    *channels = c;
    return REEL_OK;
}

int barg_lincomb(const char *op, int n, const tensor *const *in, const double *coef,
                 const tensor *out, enum device dev)
{
    char a[96], b[96], arg[16];
    if (n < 1 || n > BACKEND_LINCOMB_MAX || !in || !coef)
        return err_set(REEL_E_INVALID, "%s: %d inputs given, expected 1 to %d", op, n,
                       BACKEND_LINCOMB_MAX);
    TRY(barg_contig(op, "out", out, dev, DTM(DT_F32)));
    int64_t count = tensor_numel(out);
    uintptr_t o0 = (uintptr_t)out->data, o1 = o0 + (uintptr_t)count * sizeof(float);
    for (int j = 0; j < n; j++) {
        snprintf(arg, sizeof arg, "in[%d]", j);
        if (!in[j])
            return err_set(REEL_E_INVALID, "%s: %s is NULL", op, arg);
        TRY(barg_contig(op, arg, in[j], dev, DTM(DT_F32)));
        if (tensor_numel(in[j]) != count)
            return err_set(REEL_E_INVALID, "%s: %s %s has %lld values, out %s has %lld", op, arg,
                           tensor_shape_str(in[j], a, sizeof a), (long long)tensor_numel(in[j]),
                           tensor_shape_str(out, b, sizeof b), (long long)count);
        if (!isfinite(coef[j]))
            return err_set(REEL_E_INVALID, "%s: the coefficient of %s is %g", op, arg, coef[j]);
        uintptr_t i0 = (uintptr_t)in[j]->data, i1 = i0 + (uintptr_t)count * sizeof(float);
        if (count > 0 && i0 != o0 && i0 < o1 && o0 < i1)
            return err_set(REEL_E_INVALID,
                           "%s: out %s partly overlaps %s %s (it may only be the same memory)",
                           op, tensor_shape_str(out, b, sizeof b), arg,
                           tensor_shape_str(in[j], a, sizeof a));
    }
    return REEL_OK;
}
