/* The CPU backend against naive double-precision loops written from the spec
 * (/work/shared/specs/wan_dit_detail.md §3), on random data at odd shapes, with strided row
 * views and grouped modulation; then the calls each op must refuse. Tolerance: relative L2
 * error 1e-5 (fp32 arithmetic against double); lincomb, which computes in double, 1e-7 (its one
 * f32 rounding) and bit-equal to the documented double sum. */
#include "check.h"

#include "dit/error.h"
#include "dit/numeric.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOL 1e-5

static backend *be;

/* A host buffer of rows x ld floats seen as a [rows, cols] row view (ld >= cols), filled with
 * normal noise of the given mean and deviation. */
typedef struct buf {
    float *mem;
    tensor t;
} buf;

static buf make_rows(int64_t rows, int64_t cols, int64_t ld, float mean, float sd)
{
    buf b;
    size_t n = (size_t)(rows * ld > 0 ? rows * ld : 1);
    b.mem = malloc(n * sizeof(float));
    check_fill_normal(b.mem, n, sd);
    for (size_t i = 0; i < n; i++)
        b.mem[i] += mean;
    tensor full = tensor_2d(b.mem, DT_F32, DEV_CPU, rows, ld);
    b.t = tensor_slice(&full, 1, 0, cols);
    return b;
}

static buf make_vec(int64_t n, float mean, float sd) { return make_rows(1, n, n, mean, sd); }

/* [n] as a 1-D tensor. */
static tensor as_1d(const buf *b) { return tensor_1d(b->mem, DT_F32, DEV_CPU, b->t.shape[1]); }

static float at(const tensor *t, int64_t r, int64_t c)
{
    return ((const float *)t->data)[r * t->stride[0] + c];
}

/* Gathers a [rows, cols] view into a dense array for comparison. */
static float *dense(const tensor *t)
{
    int64_t rows = t->shape[0], cols = t->shape[1];
    float *d = malloc((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            d[r * cols + c] = at(t, r, c);
    return d;
}

static double compare(const tensor *got, const double *ref)
{
    float *d = dense(got);
    double e = check_rel_l2_d(d, ref, (size_t)(got->shape[0] * got->shape[1]));
    free(d);
    return e;
}

static double gelu_d(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

/* ---------------------------------------------------------------------------------- gemm */

static void test_gemm_case(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldc,
                           bool with_bias, enum act act)
{
    buf a = make_rows(m, k, lda, 0, 1), w = make_rows(n, k, k, 0, 1), bias = make_vec(n, 0, 1);
    buf out = make_rows(m, n, ldc, NAN, 0);
    tensor bt = as_1d(&bias);
    CHECK_OK(be->ops->gemm(be, &a.t, &w.t, with_bias ? &bt : NULL, act, &out.t));
    double *ref = malloc((size_t)(m * n) * sizeof(double));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = with_bias ? bias.mem[j] : 0;
            for (int64_t q = 0; q < k; q++)
                s += (double)at(&a.t, i, q) * w.mem[j * k + q];
            ref[i * n + j] = act == ACT_GELU_TANH ? gelu_d(s) : s;
        }
    double e = compare(&out.t, ref);
    CHECK(e < TOL, "gemm %lldx%lldx%lld lda %lld ldc %lld bias %d act %d: rel_l2 %.3g",
          (long long)m, (long long)n, (long long)k, (long long)lda, (long long)ldc, with_bias,
          (int)act, e);
    /* the padding between strided rows must be left alone */
    for (int64_t i = 0; i < m && ldc > n; i++)
        CHECK(isnan(out.mem[i * ldc + n]), "gemm wrote past the row end at row %lld",
              (long long)i);
    free(ref);
    free(a.mem), free(w.mem), free(bias.mem), free(out.mem);
}

static void test_gemm(void)
{
    test_gemm_case(1, 37, 19, 19, 37, true, ACT_NONE);     /* M = 1: the time MLP */
    test_gemm_case(5, 3, 1, 1, 3, false, ACT_NONE);        /* tiny everything */
    test_gemm_case(67, 45, 300, 310, 50, true, ACT_GELU_TANH); /* strided a and out */
    test_gemm_case(130, 259, 523, 523, 259, false, ACT_NONE); /* several tiles and K slices */
    test_gemm_case(49, 129, 257, 600, 140, true, ACT_GELU_TANH); /* one past each block */

    /* a one-thread backend gives bit-identical results: tiles sum in a fixed order */
    backend *one;
    CHECK_OK(backend_cpu_create(1, &one));
    buf a = make_rows(97, 200, 200, 0, 1), w = make_rows(150, 200, 200, 0, 1);
    buf o1 = make_rows(97, 150, 150, 0, 0), o2 = make_rows(97, 150, 150, 0, 0);
    CHECK_OK(be->ops->gemm(be, &a.t, &w.t, NULL, ACT_NONE, &o1.t));
    CHECK_OK(one->ops->gemm(one, &a.t, &w.t, NULL, ACT_NONE, &o2.t));
    CHECK(memcmp(o1.mem, o2.mem, 97 * 150 * sizeof(float)) == 0,
          "gemm differs between 1 and %d threads", be->threads);
    backend_free(one);
    free(a.mem), free(w.mem), free(o1.mem), free(o2.mem);
}

/* 512^3 rate, printed (not checked: CI machines and sanitizers vary). */
static void bench_gemm(void)
{
    int64_t n = 512;
    buf a = make_rows(n, n, n, 0, 1), w = make_rows(n, n, n, 0, 1), o = make_rows(n, n, n, 0, 0);
    struct timespec t0, t1;
    CHECK_OK(be->ops->gemm(be, &a.t, &w.t, NULL, ACT_NONE, &o.t));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int reps = 4;
    for (int i = 0; i < reps; i++)
        CHECK_OK(be->ops->gemm(be, &a.t, &w.t, NULL, ACT_NONE, &o.t));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("gemm 512x512x512 on %d threads: %.1f GFLOP/s\n", be->threads,
           2.0 * n * n * n * reps / s / 1e9);
    free(a.mem), free(w.mem), free(o.mem);
}

/* ---------------------------------------------------------------------------- row norms */

/* Modulation of row r: [D] (groups 1) or [G, D] with row stride ld. */
typedef struct mod {
    buf b;
    int64_t groups;
} mod;

static mod make_mod(int64_t groups, int64_t d, int64_t ld)
{
    mod m = {make_rows(groups, d, ld, 0, 0.5f), groups};
    if (groups == 1)
        m.b.t = as_1d(&m.b);
    return m;
}

static double mod_at(const mod *m, int64_t rows, int64_t r, int64_t c)
{
    int64_t g = m->groups == 1 ? 0 : r / (rows / m->groups);
    return m->b.mem[g * (m->groups == 1 ? 0 : m->b.t.stride[0]) + c];
}

static void test_layer_norm_case(int64_t rows, int64_t d, int64_t ld, bool affine,
                                 int64_t groups, bool in_place, float sd)
{
    buf x = make_rows(rows, d, ld, 1.5f * sd, sd); /* a mean far from 0 tests the statistics */
    buf out = in_place ? x : make_rows(rows, d, ld + 3, NAN, 0);
    buf w = make_vec(d, 1, 0.3f), b = make_vec(d, 0, 0.3f);
    mod sh = make_mod(groups, d, d + 5), sc = make_mod(groups, d, d + 7);
    tensor wt = as_1d(&w), bt = as_1d(&b);
    double *ref = malloc((size_t)(rows * d) * sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t c = 0; c < d; c++)
            mean += at(&x.t, r, c);
        mean /= d;
        for (int64_t c = 0; c < d; c++)
            var += (at(&x.t, r, c) - mean) * (at(&x.t, r, c) - mean);
        var /= d;
        for (int64_t c = 0; c < d; c++) {
            double v = (at(&x.t, r, c) - mean) / sqrt(var + 1e-6);
            if (affine)
                v = v * w.mem[c] + b.mem[c];
            if (groups)
                v = v * (1 + mod_at(&sc, rows, r, c)) + mod_at(&sh, rows, r, c);
            ref[r * d + c] = v;
        }
    }
    CHECK_OK(be->ops->layer_norm(be, &x.t, affine ? &wt : NULL, affine ? &bt : NULL,
                                 groups ? &sh.b.t : NULL, groups ? &sc.b.t : NULL, 1e-6f,
                                 &out.t));
    double e = compare(&out.t, ref);
    CHECK(e < TOL, "layer_norm %lldx%lld affine %d groups %lld in_place %d: rel_l2 %.3g",
          (long long)rows, (long long)d, affine, (long long)groups, in_place, e);
    free(ref);
    if (!in_place)
        free(out.mem);
    free(x.mem), free(w.mem), free(b.mem), free(sh.b.mem), free(sc.b.mem);
}

static void test_layer_norm(void)
{
    test_layer_norm_case(7, 33, 33, false, 0, false, 1e-3f); /* variance near eps */
    test_layer_norm_case(12, 129, 140, true, 0, false, 2.0f);
    test_layer_norm_case(12, 129, 129, false, 1, true, 2.0f);
    test_layer_norm_case(15, 64, 70, true, 3, false, 2.0f); /* [G, D] strided modulation */
    test_layer_norm_case(301, 1536, 1536, false, 1, false, 2.0f);
}

/* Angle of pair p of a head for token (ti, yi, xi), straight from the spec. */
static double rope_angle(int head_dim, int p, int64_t ti, int64_t yi, int64_t xi)
{
    int half = head_dim / 2, nh = half / 3, nt = half - 2 * nh;
    if (p < nt)
        return (double)ti * pow(10000.0, -2.0 * p / (2.0 * nt));
    if (p < nt + nh)
        return (double)yi * pow(10000.0, -2.0 * (p - nt) / (2.0 * nh));
    return (double)xi * pow(10000.0, -2.0 * (p - nt - nh) / (2.0 * nh));
}

/* ref[r, :] rotated in place, row r = token r of grid g. */
static void rope_ref(double *ref, int64_t cols, const rope_grid *g, int head_dim)
{
    int64_t rows = (int64_t)g->f * g->h * g->w;
    for (int64_t r = 0; r < rows; r++) {
        int64_t xi = r % g->w, yi = r / g->w % g->h, ti = r / ((int64_t)g->w * g->h) + g->f0;
        for (int64_t h0 = 0; h0 < cols; h0 += head_dim)
            for (int p = 0; p < head_dim / 2; p++) {
                double ang = rope_angle(head_dim, p, ti, yi, xi);
                double *v = ref + r * cols + h0 + 2 * p;
                double a = v[0], b = v[1];
                v[0] = a * cos(ang) - b * sin(ang);
                v[1] = a * sin(ang) + b * cos(ang);
            }
    }
}

static void test_rms_norm_case(rope_grid g, int heads, int head_dim, int64_t ld, bool rope,
                               bool in_place, float sd)
{
    int64_t rows = (int64_t)g.f * g.h * g.w, d = (int64_t)heads * head_dim;
    buf x = make_rows(rows, d, ld, 0.25f * sd, sd);
    buf out = in_place ? x : make_rows(rows, d, d, NAN, 0);
    buf w = make_vec(d, 1, 0.3f);
    tensor wt = as_1d(&w);
    double *ref = malloc((size_t)(rows * d) * sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int64_t c = 0; c < d; c++)
            ss += (double)at(&x.t, r, c) * at(&x.t, r, c);
        double rs = 1.0 / sqrt(ss / d + 1e-6);
        for (int64_t c = 0; c < d; c++)
            ref[r * d + c] = at(&x.t, r, c) * rs * w.mem[c];
    }
    if (rope)
        rope_ref(ref, d, &g, head_dim);
    CHECK_OK(be->ops->rms_norm(be, &x.t, &wt, 1e-6f, rope ? &g : NULL, head_dim, &out.t));
    double e = compare(&out.t, ref);
    CHECK(e < TOL, "rms_norm grid %dx%dx%d+%d heads %d x %d rope %d in_place %d: rel_l2 %.3g",
          g.f, g.h, g.w, g.f0, heads, head_dim, rope, in_place, e);
    free(ref);
    if (!in_place)
        free(out.mem);
    free(x.mem), free(w.mem);
}

static void test_rope_case(rope_grid g, int heads, int head_dim, int64_t ld)
{
    int64_t rows = (int64_t)g.f * g.h * g.w, d = (int64_t)heads * head_dim;
    buf x = make_rows(rows, d, ld, 0, 1);
    buf out = make_rows(rows, d, d + 2, NAN, 0);
    double *ref = malloc((size_t)(rows * d) * sizeof(double));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < d; c++)
            ref[r * d + c] = at(&x.t, r, c);
    rope_ref(ref, d, &g, head_dim);
    CHECK_OK(be->ops->rope3d(be, &x.t, &g, head_dim, &out.t));
    double e = compare(&out.t, ref);
    CHECK(e < TOL, "rope3d grid %dx%dx%d+%d heads %d x %d: rel_l2 %.3g", g.f, g.h, g.w, g.f0,
          heads, head_dim, e);
    CHECK_OK(be->ops->rope3d(be, &x.t, &g, head_dim, &x.t)); /* in place */
    e = compare(&x.t, ref);
    CHECK(e < TOL, "rope3d in place: rel_l2 %.3g", e);
    free(ref), free(x.mem), free(out.mem);
}

static void test_rope(void)
{
    test_rms_norm_case((rope_grid){1, 1, 9, 0}, 1, 40, 40, false, false, 1e-3f); /* eps counts */
    test_rms_norm_case((rope_grid){2, 3, 5, 0}, 3, 128, 400, true, false, 2.0f);
    test_rms_norm_case((rope_grid){3, 4, 2, 7}, 2, 12, 24, true, true, 2.0f);
    test_rope_case((rope_grid){3, 5, 7, 0}, 2, 128, 256);
    test_rope_case((rope_grid){2, 2, 3, 900}, 3, 18, 60); /* late frames: large angles */
    test_rope_case((rope_grid){1, 40, 60, 0}, 1, 6, 6);
}

/* -------------------------------------------------------------------------- element-wise */

static void test_modulate_case(int64_t rows, int64_t d, int64_t groups, bool shift, bool scale)
{
    buf x = make_rows(rows, d, d + 1, 0, 1), out = make_rows(rows, d, d, NAN, 0);
    mod sh = make_mod(groups, d, d + 3), sc = make_mod(groups, d, d);
    double *ref = malloc((size_t)(rows * d) * sizeof(double));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < d; c++)
            ref[r * d + c] = at(&x.t, r, c) * (1 + (scale ? mod_at(&sc, rows, r, c) : 0)) +
                             (shift ? mod_at(&sh, rows, r, c) : 0);
    CHECK_OK(be->ops->modulate(be, &x.t, shift ? &sh.b.t : NULL, scale ? &sc.b.t : NULL, &out.t));
    double e = compare(&out.t, ref);
    CHECK(e < TOL, "modulate %lldx%lld groups %lld shift %d scale %d: rel_l2 %.3g",
          (long long)rows, (long long)d, (long long)groups, shift, scale, e);
    free(ref), free(x.mem), free(out.mem), free(sh.b.mem), free(sc.b.mem);
}

static void test_add_gated_case(int64_t rows, int64_t d, int64_t groups)
{
    buf x = make_rows(rows, d, d, 0, 1), y = make_rows(rows, d, d + 4, 0, 1);
    mod gate = make_mod(groups ? groups : 1, d, d + 2);
    double *ref = malloc((size_t)(rows * d) * sizeof(double));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < d; c++)
            ref[r * d + c] = at(&x.t, r, c) +
                             at(&y.t, r, c) * (groups ? mod_at(&gate, rows, r, c) : 1.0);
    CHECK_OK(be->ops->add_gated(be, &x.t, &y.t, groups ? &gate.b.t : NULL));
    double e = compare(&x.t, ref);
    CHECK(e < TOL, "add_gated %lldx%lld groups %lld: rel_l2 %.3g", (long long)rows,
          (long long)d, (long long)groups, e);
    free(ref), free(x.mem), free(y.mem), free(gate.b.mem);
}

enum unary { U_GELU, U_SILU, U_SOFTMAX };

static void test_unary_case(enum unary op, int64_t rows, int64_t d, float sd)
{
    buf x = make_rows(rows, d, d + 3, 0, sd), out = make_rows(rows, d, d, NAN, 0);
    double *ref = malloc((size_t)(rows * d) * sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t c = 0; c < d; c++)
            mx = fmax(mx, at(&x.t, r, c));
        for (int64_t c = 0; c < d; c++)
            sum += exp(at(&x.t, r, c) - mx);
        for (int64_t c = 0; c < d; c++) {
            double v = at(&x.t, r, c);
            ref[r * d + c] = op == U_GELU ? gelu_d(v)
                             : op == U_SILU ? v / (1 + exp(-v))
                                            : exp(v - mx) / sum;
        }
    }
    const char *name = op == U_GELU ? "gelu_tanh" : op == U_SILU ? "silu" : "softmax";
    int st = op == U_GELU   ? be->ops->gelu_tanh(be, &x.t, &out.t)
             : op == U_SILU ? be->ops->silu(be, &x.t, &out.t)
                            : be->ops->softmax(be, &x.t, &out.t);
    CHECK(st == REEL_OK, "%s: %s", name, err_msg());
    double e = compare(&out.t, ref);
    CHECK(e < TOL, "%s %lldx%lld: rel_l2 %.3g", name, (long long)rows, (long long)d, e);
    st = op == U_GELU   ? be->ops->gelu_tanh(be, &x.t, &x.t)
         : op == U_SILU ? be->ops->silu(be, &x.t, &x.t)
                        : be->ops->softmax(be, &x.t, &x.t);
    CHECK(st == REEL_OK && compare(&x.t, ref) < TOL, "%s in place", name);
    free(ref), free(x.mem), free(out.mem);
}

static void test_elementwise(void)
{
    test_modulate_case(9, 31, 1, true, true);
    test_modulate_case(12, 64, 4, true, true);
    test_modulate_case(6, 20, 6, true, false); /* out = x + shift, one group per row */
    test_modulate_case(8, 17, 2, false, true);
    test_add_gated_case(10, 45, 0);
    test_add_gated_case(10, 45, 1);
    test_add_gated_case(12, 33, 3);
    test_unary_case(U_GELU, 13, 77, 3);
    test_unary_case(U_SILU, 13, 77, 4);
    test_unary_case(U_SOFTMAX, 9, 513, 5);
}

/* ------------------------------------------------------------------------------ lincomb */

/* n inputs of len values with random coefficients, out poisoned; against sum_j c_j x_j in
 * double (rel L2 within f32 rounding, 2^-24 per element), and bit for bit against that sum
 * taken in the documented order and rounded once; then out as one of the inputs. */
static void test_lincomb_case(int n, int64_t len)
{
    buf in[BACKEND_LINCOMB_MAX], out = make_rows(1, len, len, NAN, 0);
    const tensor *inp[BACKEND_LINCOMB_MAX];
    tensor t[BACKEND_LINCOMB_MAX], o = as_1d(&out);
    double coef[BACKEND_LINCOMB_MAX];
    for (int j = 0; j < n; j++) {
        in[j] = make_rows(1, len, len, 0, 1);
        t[j] = as_1d(&in[j]);
        inp[j] = &t[j];
        coef[j] = check_rand_normal() * 3;
    }
    double *ref = malloc((size_t)len * sizeof(double));
    int64_t bits = 0;
    for (int64_t i = 0; i < len; i++) {
        double acc = coef[0] * in[0].mem[i];
        for (int j = 1; j < n; j++) {
            double term = coef[j] * in[j].mem[i];
            acc += term;
        }
        ref[i] = acc;
    }
    CHECK_OK(be->ops->lincomb(be, n, inp, coef, &o));
    for (int64_t i = 0; i < len; i++)
        bits += out.mem[i] != (float)ref[i];
    double e = check_rel_l2_d(out.mem, ref, (size_t)len);
    CHECK(e < 1e-7 && bits == 0, "lincomb of %d x %lld: rel_l2 %.3g, %lld values off the "
          "double sum rounded once", n, (long long)len, e, (long long)bits);
    /* in place over the last input */
    CHECK_OK(be->ops->lincomb(be, n, inp, coef, &t[n - 1]));
    CHECK(memcmp(in[n - 1].mem, out.mem, (size_t)len * sizeof(float)) == 0,
          "lincomb of %d in place differs from out of place", n);
    free(ref), free(out.mem);
    for (int j = 0; j < n; j++)
        free(in[j].mem);
}

static void test_lincomb(void)
{
    test_lincomb_case(1, 1);
    test_lincomb_case(2, 1000);
    test_lincomb_case(3, 70001); /* past the inline size: split over the pool */
    test_lincomb_case(4, 257);

    /* a [2, n] prediction's two slices and a latent of another shape with n values */
    float mem[3 * 24];
    check_fill_normal(mem, 3 * 24, 1);
    tensor pair = tensor_2d(mem, DT_F32, DEV_CPU, 2, 24);
    tensor x = tensor_2d(mem + 48, DT_F32, DEV_CPU, 4, 6);
    tensor c = tensor_slice(&pair, 0, 0, 1), u = tensor_slice(&pair, 0, 1, 1);
    float want[24];
    for (int i = 0; i < 24; i++)
        want[i] = (float)(mem[48 + i] - 0.5 * mem[i] + 2.0 * mem[24 + i]);
    CHECK_OK(be->ops->lincomb(be, 3, (const tensor *[]){&x, &c, &u}, (double[]){1, -0.5, 2}, &x));
    CHECK(memcmp(mem + 48, want, sizeof want) == 0, "lincomb over slices of a [2, 24] tensor");
}

/* ------------------------------------------------------------------------------ patches */

static void test_patch_embed_case(int64_t C, int64_t D, int pt, int ph, int pw, int f, int h,
                                  int w, bool with_bias)
{
    int64_t F = (int64_t)f * pt, H = (int64_t)h * ph, W = (int64_t)w * pw;
    int64_t L = (int64_t)f * h * w, K = C * pt * ph * pw;
    float *lat = malloc((size_t)(C * F * H * W) * sizeof(float));
    check_fill_normal(lat, (size_t)(C * F * H * W), 1);
    buf wt = make_rows(D, K, K, 0, 1), bias = make_vec(D, 0, 1), out = make_rows(L, D, D + 1, NAN, 0);
    int64_t ls[4] = {C, F, H, W}, ws[5] = {D, C, pt, ph, pw};
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls);
    tensor w5 = tensor_make(wt.mem, DT_F32, DEV_CPU, 5, ws), bt = as_1d(&bias);
    double *ref = malloc((size_t)(L * D) * sizeof(double));
    for (int fi = 0; fi < f; fi++)
        for (int yi = 0; yi < h; yi++)
            for (int xi = 0; xi < w; xi++)
                for (int64_t o = 0; o < D; o++) {
                    double s = with_bias ? bias.mem[o] : 0;
                    for (int64_t c = 0; c < C; c++)
                        for (int t = 0; t < pt; t++)
                            for (int y = 0; y < ph; y++)
                                for (int x = 0; x < pw; x++)
                                    s += (double)lat[((c * F + fi * pt + t) * H + yi * ph + y) * W +
                                                     xi * pw + x] *
                                         wt.mem[(((o * C + c) * pt + t) * ph + y) * pw + x];
                    ref[((int64_t)(fi * h + yi) * w + xi) * D + o] = s;
                }
    CHECK_OK(be->ops->patch_embed(be, &lt, &w5, with_bias ? &bt : NULL, &out.t));
    double e = compare(&out.t, ref);
    CHECK(e < TOL, "patch_embed C %lld D %lld patch %dx%dx%d grid %dx%dx%d: rel_l2 %.3g",
          (long long)C, (long long)D, pt, ph, pw, f, h, w, e);
    free(ref), free(lat), free(wt.mem), free(bias.mem), free(out.mem);
}

static void test_unpatchify_case(int64_t C, patch_geom g)
{
    int64_t L = (int64_t)g.f * g.h * g.w, P = (int64_t)g.pt * g.ph * g.pw;
    int64_t F = (int64_t)g.f * g.pt, H = (int64_t)g.h * g.ph, W = (int64_t)g.w * g.pw;
    buf x = make_rows(L, P * C, P * C + 2, 0, 1);
    int64_t os[4] = {C, F, H, W};
    float *o = malloc((size_t)(C * F * H * W) * sizeof(float));
    for (int64_t i = 0; i < C * F * H * W; i++)
        o[i] = NAN;
    tensor ot = tensor_make(o, DT_F32, DEV_CPU, 4, os);
    CHECK_OK(be->ops->unpatchify(be, &x.t, &g, &ot));
    double *ref = malloc((size_t)(C * F * H * W) * sizeof(double));
    for (int64_t c = 0; c < C; c++)
        for (int64_t t = 0; t < F; t++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t xx = 0; xx < W; xx++) {
                    int64_t n = (t / g.pt * g.h + y / g.ph) * g.w + xx / g.pw;
                    int64_t e = (((t % g.pt) * g.ph + y % g.ph) * g.pw + xx % g.pw) * C + c;
                    ref[((c * F + t) * H + y) * W + xx] = at(&x.t, n, e);
                }
    double e = check_rel_l2_d(o, ref, (size_t)(C * F * H * W));
    CHECK(e == 0, "unpatchify C %lld patch %dx%dx%d grid %dx%dx%d: rel_l2 %.3g", (long long)C,
          g.pt, g.ph, g.pw, g.f, g.h, g.w, e);
    free(ref), free(o), free(x.mem);
}

static void test_patches(void)
{
    test_patch_embed_case(16, 24, 1, 2, 2, 3, 5, 4, true); /* Wan's 1x2x2 */
    test_patch_embed_case(5, 7, 2, 3, 2, 2, 3, 5, false);
    test_unpatchify_case(16, (patch_geom){1, 2, 2, 3, 5, 4});
    test_unpatchify_case(3, (patch_geom){2, 1, 3, 2, 4, 3});
}

/* ------------------------------------------------------------------------- copy and fill */

static void test_copy_fill(void)
{
    float src[6] = {1.0f, -2.5f, 3.14159f, 65504.0f, 1e-8f, -0.0f};
    uint16_t b16[6], h16[6];
    float back[6];
    tensor ts = tensor_1d(src, DT_F32, DEV_CPU, 6), tb = tensor_1d(b16, DT_BF16, DEV_CPU, 6);
    tensor th = tensor_1d(h16, DT_F16, DEV_CPU, 6), tf = tensor_1d(back, DT_F32, DEV_CPU, 6);
    CHECK_OK(be->ops->copy(be, &ts, &tb));
    CHECK_OK(be->ops->copy(be, &tb, &tf));
    for (int i = 0; i < 6; i++)
        CHECK(back[i] == bf16_to_f32(f32_to_bf16(src[i])), "bf16 round trip of %g gave %g",
              src[i], back[i]);
    CHECK(back[2] == 3.140625f, "bf16(3.14159) = %g, expected 3.140625", back[2]);
    CHECK_OK(be->ops->copy(be, &ts, &th));
    CHECK_OK(be->ops->copy(be, &th, &tf));
    CHECK(back[3] == 65504.0f && back[2] == 3.140625f, "f16 round trip: %g %g", back[3], back[2]);
    uint8_t e4[3] = {0x38, 0xb0, 0x7e}; /* 1.0, -0.5, 448 */
    tensor t8 = tensor_1d(e4, DT_F8_E4M3, DEV_CPU, 3), t3 = tensor_1d(back, DT_F32, DEV_CPU, 3);
    CHECK_OK(be->ops->copy(be, &t8, &t3));
    CHECK(back[0] == 1.0f && back[1] == -0.5f && back[2] == 448.0f, "f8_e4m3: %g %g %g",
          back[0], back[1], back[2]);
    double d64[2] = {0.1, -7.0};
    tensor td = tensor_1d(d64, DT_F64, DEV_CPU, 2), t2 = tensor_1d(back, DT_F32, DEV_CPU, 2);
    CHECK_OK(be->ops->copy(be, &td, &t2));
    CHECK(back[0] == 0.1f && back[1] == -7.0f, "f64: %g %g", back[0], back[1]);
    int32_t ints[2] = {1, 2};
    tensor ti = tensor_1d(ints, DT_I32, DEV_CPU, 2);
    CHECK(be->ops->copy(be, &ti, &t2) == REEL_E_UNSUPPORTED, "i32 -> f32 must be refused");

    CHECK_OK(be->ops->fill(be, &tb, NAN));
    CHECK_OK(be->ops->copy(be, &tb, &tf));
    for (int i = 0; i < 6; i++)
        CHECK(isnan(back[i]), "fill NaN (bf16) left %g at %d", back[i], i);
    CHECK_OK(be->ops->fill(be, &tf, 2.5f));
    CHECK(back[0] == 2.5f && back[5] == 2.5f, "fill 2.5 gave %g", back[5]);
}

/* ------------------------------------------------------------------------------- refusals */

static void test_refusals(void)
{
    float mem[4096];
    for (int i = 0; i < 4096; i++)
        mem[i] = 1.0f;
    tensor a = tensor_2d(mem, DT_F32, DEV_CPU, 8, 16);
    tensor w = tensor_2d(mem, DT_F32, DEV_CPU, 4, 15); /* K mismatch */
    tensor o = tensor_2d(mem + 1024, DT_F32, DEV_CPU, 8, 4);
    CHECK(be->ops->gemm(be, &a, &w, NULL, ACT_NONE, &o) == REEL_E_INVALID, "gemm K mismatch");
    tensor a0 = tensor_2d(mem, DT_F32, DEV_CPU, 8, 0), w0 = tensor_2d(mem, DT_F32, DEV_CPU, 4, 0);
    CHECK(be->ops->gemm(be, &a0, &w0, NULL, ACT_NONE, &o) == REEL_E_INVALID, "gemm K = 0");
    CHECK(strstr(err_msg(), "gemm") != NULL, "message names the op: %s", err_msg());
    tensor ab = a;
    ab.dtype = DT_BF16;
    w = tensor_2d(mem, DT_F32, DEV_CPU, 4, 16);
    CHECK(be->ops->gemm(be, &ab, &w, NULL, ACT_NONE, &o) == REEL_E_INVALID, "gemm bf16 on cpu");
    tensor ac = a;
    ac.dev = DEV_CUDA;
    CHECK(be->ops->gemm(be, &ac, &w, NULL, ACT_NONE, &o) == REEL_E_INVALID, "gemm cuda tensor");
    CHECK(strstr(err_msg(), "cuda") != NULL, "message names the device: %s", err_msg());

    tensor x = tensor_2d(mem, DT_F32, DEV_CPU, 6, 10), bad = tensor_2d(mem + 2048, DT_F32, DEV_CPU, 6, 9);
    CHECK(be->ops->layer_norm(be, &x, NULL, NULL, NULL, NULL, 1e-6f, &bad) == REEL_E_INVALID,
          "layer_norm out shape");
    CHECK(strstr(err_msg(), "[6, 9]") != NULL, "message names the shape: %s", err_msg());
    tensor g4 = tensor_2d(mem + 3000, DT_F32, DEV_CPU, 4, 10); /* 4 groups over 6 rows */
    tensor o6 = tensor_2d(mem + 2048, DT_F32, DEV_CPU, 6, 10);
    CHECK(be->ops->modulate(be, &x, &g4, NULL, &o6) == REEL_E_INVALID, "modulate 4 groups / 6 rows");
    tensor w9 = tensor_1d(mem, DT_F32, DEV_CPU, 9);
    CHECK(be->ops->rms_norm(be, &x, &w9, 1e-6f, NULL, 0, &o6) == REEL_E_INVALID, "rms_norm weight");
    tensor w10 = tensor_1d(mem, DT_F32, DEV_CPU, 10);
    rope_grid g = {1, 2, 2, 0}; /* 4 tokens for 6 rows */
    CHECK(be->ops->rms_norm(be, &x, &w10, 1e-6f, &g, 10, &o6) == REEL_E_INVALID, "rope grid");
    g = (rope_grid){1, 2, 3, 0};
    CHECK(be->ops->rope3d(be, &x, &g, 4, &o6) == REEL_E_INVALID, "head_dim 4 does not divide 10");
    CHECK(be->ops->rope3d(be, &x, &g, 5, &o6) == REEL_E_INVALID, "odd head_dim");
    tensor xs = tensor_slice(&(tensor){.data = mem, .dtype = DT_F32, .dev = DEV_CPU, .ndim = 2,
                                       .shape = {6, 10}, .stride = {10, 2}},
                             1, 0, 5); /* innermost not contiguous */
    tensor o5 = tensor_2d(mem + 2048, DT_F32, DEV_CPU, 6, 5);
    CHECK(be->ops->silu(be, &xs, &o5) == REEL_E_INVALID, "non-contiguous rows");

    int64_t ls[4] = {16, 2, 7, 8}, ws[5] = {8, 16, 1, 2, 2};
    tensor lat = tensor_make(mem, DT_F32, DEV_CPU, 4, ls), w5 = tensor_make(mem, DT_F32, DEV_CPU, 5, ws);
    tensor pe = tensor_2d(mem + 2048, DT_F32, DEV_CPU, 2 * 3 * 4, 8);
    CHECK(be->ops->patch_embed(be, &lat, &w5, NULL, &pe) == REEL_E_INVALID, "H = 7 not divisible");
    CHECK(strstr(err_msg(), "[16, 2, 7, 8]") != NULL, "message names the latent: %s", err_msg());
    patch_geom pg = {1, 2, 2, 1, 2, 2};
    tensor tok = tensor_2d(mem, DT_F32, DEV_CPU, 4, 64), lat2 = tensor_make(mem + 2048, DT_F32, DEV_CPU, 4, ls);
    CHECK(be->ops->unpatchify(be, &tok, &pg, &lat2) == REEL_E_INVALID, "unpatchify out shape");
    tensor c3 = tensor_1d(mem, DT_F32, DEV_CPU, 3);
    CHECK(be->ops->copy(be, &c3, &w10) == REEL_E_INVALID, "copy count mismatch");

    const tensor *five[5] = {&w10, &w10, &w10, &w10, &w10};
    double k5[5] = {1, 1, 1, 1, 1};
    tensor l10 = tensor_1d(mem + 2048, DT_F32, DEV_CPU, 10);
    CHECK(be->ops->lincomb(be, 5, five, k5, &l10) == REEL_E_INVALID, "lincomb of 5 inputs");
    CHECK(be->ops->lincomb(be, 0, five, k5, &l10) == REEL_E_INVALID, "lincomb of no input");
    CHECK(be->ops->lincomb(be, 2, (const tensor *[]){&w10, &c3}, k5, &l10) == REEL_E_INVALID &&
              strstr(err_msg(), "in[1]") && strstr(err_msg(), "[3]"),
          "lincomb count mismatch: %s", err_msg());
    tensor b10 = w10;
    b10.dtype = DT_BF16;
    CHECK(be->ops->lincomb(be, 1, (const tensor *[]){&b10}, k5, &l10) == REEL_E_INVALID &&
              strstr(err_msg(), "bf16"), "lincomb bf16 input: %s", err_msg());
    CHECK(be->ops->lincomb(be, 1, (const tensor *[]){&x}, k5, &l10) == REEL_E_INVALID,
          "lincomb [6, 10] into 10 values");
    tensor shifted = tensor_1d(mem + 2049, DT_F32, DEV_CPU, 10);
    CHECK(be->ops->lincomb(be, 1, (const tensor *[]){&shifted}, k5, &l10) == REEL_E_INVALID &&
              strstr(err_msg(), "overlap"), "lincomb partial overlap: %s", err_msg());
    CHECK(be->ops->lincomb(be, 1, (const tensor *[]){&w10}, (double[]){NAN}, &l10) ==
              REEL_E_INVALID, "lincomb NaN coefficient");
    CHECK(be->ops->lincomb(be, 1, (const tensor *[]){&w10}, k5, &ac) == REEL_E_INVALID,
          "lincomb cuda out");
}

int main(void)
{
    check_seed("test_ops_cpu");
    CHECK_OK(backend_cpu_create(3, &be)); /* more workers than CI cores: exercises the pool */
    if (!be)
        return check_done();
    test_gemm();
    bench_gemm();
    test_layer_norm();
    test_rope();
    test_elementwise();
    test_lincomb();
    test_patches();
    test_copy_fill();
    test_refusals();
    backend_free(be);
    return check_done();
}
