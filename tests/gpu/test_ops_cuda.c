/* Every CUDA backend op against the CPU backend, at small odd shapes and at Wan2.1-1.3B shapes
 * (L = 32760 tokens of 480p x 81 frames, D = 1536, FFN 8960), on fresh random inputs with the
 * device output poisoned (NaN) first. Inputs that the device stores in bf16 are rounded to
 * bf16 on the host too, so the CPU computes on the same values; the error left is the
 * device's arithmetic order and its output rounding. Tolerances (relative L2):
 *   f32 output                      1e-5 (fp32 math on both sides, f32 GEMMs included: no TF32)
 *   bf16 GEMM with f32 output       1e-4 (sums of K products in another order)
 *   bf16 output                     4e-3 (bf16 rounding alone gives ~1.1e-3)
 *   rms_norm with bf16 input        6e-3 (the reference's extra rounding before the gain)
 *   copies and unpatchify           0    (exact)
 *   lincomb                         0    (the CPU's double operations in its order: bit-equal)
 * Prints one row per case: | op | shape | rel_l2 | tol | ms | rate |, times the median of 7
 * runs (cudaEvent on the backend's stream) after 2 warm-ups; rates count the bytes each op must
 * read and write once, or 2MNK for GEMMs, and GEMMs are also given as a share of the 8192^3
 * bf16 product measured in the same run. Large GEMMs are checked on 64 sampled rows (the CPU
 * would take minutes), with every output element checked for NaN. */
#include "check.h"

#include "dit/error.h"
#include "dit/numeric.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef REEL_HAVE_CUDA
#include <cuda_runtime_api.h>

#define TOL_F32 1e-5
#define TOL_GEMM_F32 1e-4
#define TOL_BF16 4e-3
#define TOL_RMS_BF16 6e-3

static backend *gpu, *cpu;
static double peak_tflops; /* 8192^3 bf16 GEMM, measured first */
/* REEL_GPU_SMALL=1 runs the small cases only (for compute-sanitizer, which is slow) */
static bool small_only;

/* ------------------------------------------------------------------------ test tensors */

/* A [rows, cols] view with row stride ld, on the device (dtype dt) and mirrored on the host
 * (f32, holding exactly the values the device holds). Host-only when d is NULL. */
typedef struct pair {
    enum dtype dt;
    int64_t rows, cols, ld;
    float *h;
    void *d;
    tensor hv, dv;
} pair;

static float round_to(enum dtype dt, float v)
{
    return dt == DT_BF16 ? bf16_to_f32(f32_to_bf16(v)) : v;
}

static void views(pair *p)
{
    tensor hf = tensor_2d(p->h, DT_F32, DEV_CPU, p->rows, p->ld);
    p->hv = tensor_slice(&hf, 1, 0, p->cols);
    tensor df = tensor_2d(p->d, p->dt, DEV_CUDA, p->rows, p->ld);
    p->dv = tensor_slice(&df, 1, 0, p->cols);
}

static pair alloc_pair(int64_t rows, int64_t cols, int64_t ld, enum dtype dt, bool on_device)
{
    pair p = {dt, rows, cols, ld, NULL, NULL, {0}, {0}};
    size_t n = (size_t)(rows * ld > 0 ? rows * ld : 1);
    p.h = malloc(n * sizeof(float));
    if (!p.h) {
        fprintf(stderr, "out of host memory for %zu floats\n", n);
        exit(1);
    }
    if (on_device) {
        int64_t shape[2] = {rows, ld};
        tensor t;
        int st = backend_tensor_alloc(gpu, dt, 2, shape, &t);
        CHECK(st == REEL_OK, "alloc [%lld, %lld] %s: %s", (long long)rows, (long long)ld,
              dtype_name(dt), err_msg());
        if (st != REEL_OK)
            exit(1);
        p.d = t.data;
    }
    views(&p);
    return p;
}

static tensor full_host(const pair *p) { return tensor_2d(p->h, DT_F32, DEV_CPU, p->rows, p->ld); }
static tensor full_dev(const pair *p) { return tensor_2d(p->d, p->dt, DEV_CUDA, p->rows, p->ld); }

/* Random input: normal(mean, sd), rounded to dt, uploaded. */
static pair input(int64_t rows, int64_t cols, int64_t ld, enum dtype dt, float mean, float sd)
{
    pair p = alloc_pair(rows, cols, ld, dt, true);
    size_t n = (size_t)(rows * ld);
    check_fill_normal(p.h, n, sd);
    for (size_t i = 0; i < n; i++)
        p.h[i] = round_to(dt, p.h[i] + mean);
    tensor hf = full_host(&p), df = full_dev(&p);
    CHECK_OK(gpu->ops->copy(gpu, &hf, &df));
    return p;
}

/* Device output, NaN everywhere (padding too, so a stray write shows). */
static pair output(int64_t rows, int64_t cols, int64_t ld, enum dtype dt)
{
    pair p = alloc_pair(rows, cols, ld, dt, true);
    tensor df = full_dev(&p);
    CHECK_OK(gpu->ops->fill(gpu, &df, NAN));
    return p;
}

/* Host-only output for the CPU reference. */
static pair ref_out(int64_t rows, int64_t cols)
{
    pair p = alloc_pair(rows, cols, cols, DT_F32, false);
    for (int64_t i = 0; i < rows * cols; i++)
        p.h[i] = NAN;
    return p;
}

/* Views as a contiguous tensor of another shape (weights [D], latents [C, F, H, W]). */
static void reshape(pair *p, int ndim, const int64_t *shape)
{
    p->hv = tensor_make(p->h, DT_F32, DEV_CPU, ndim, shape);
    p->dv = tensor_make(p->d, p->dt, DEV_CUDA, ndim, shape);
}

static void vec1(pair *p) { reshape(p, 1, &p->cols); }

static void fetch(pair *p)
{
    tensor hf = full_host(p), df = full_dev(p);
    CHECK_OK(gpu->ops->copy(gpu, &df, &hf));
}

static void drop(pair *p)
{
    if (p->d) {
        tensor df = full_dev(p);
        backend_tensor_free(gpu, &df);
    }
    free(p->h);
    p->h = NULL;
    p->d = NULL;
}

/* Downloads the device result and compares its [rows, cols] view with the reference's. */
static double compare(pair *got, const pair *ref)
{
    fetch(got);
    double num = 0, den = 0;
    for (int64_t r = 0; r < got->rows; r++)
        for (int64_t c = 0; c < got->cols; c++) {
            double a = got->h[r * got->ld + c], b = ref->h[r * ref->ld + c];
            num += (a - b) * (a - b);
            den += b * b;
        }
    if (isnan(num) || isnan(den))
        return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* ------------------------------------------------------------------------------ timing */

static cudaEvent_t ev0, ev1;

static float elapsed_ms(void)
{
    float ms = 0;
    cudaEventSynchronize(ev1);
    cudaEventElapsedTime(&ms, ev0, ev1);
    return ms;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* ms = median of 7 timed runs of expr after 2 warm-ups, or NaN when a run failed. */
#define TIME_MS(ms, expr)                                                             \
    do {                                                                              \
        float t_[7];                                                                  \
        int st_ = REEL_OK;                                                            \
        for (int w_ = 0; w_ < 2 && st_ == REEL_OK; w_++)                              \
            st_ = (expr);                                                             \
        for (int r_ = 0; r_ < 7 && st_ == REEL_OK; r_++) {                            \
            cudaEventRecord(ev0, (cudaStream_t)gpu->stream);                          \
            st_ = (expr);                                                             \
            cudaEventRecord(ev1, (cudaStream_t)gpu->stream);                          \
            t_[r_] = elapsed_ms();                                                    \
        }                                                                             \
        CHECK(st_ == REEL_OK, "timed run of %s: %s", #expr, err_msg());               \
        qsort(t_, 7, sizeof t_[0], cmp_float);                                        \
        ms = st_ == REEL_OK ? t_[3] : NAN;                                            \
    } while (0)

/* One table row. ms < 0: not timed. gb: bytes moved (GB/s) or, with flop > 0, a GEMM. */
static void row(const char *op, const char *shape, double err, double tol, double ms,
                double bytes, double flop)
{
    char rate[64] = "-", tms[32] = "-";
    if (ms > 0) {
        snprintf(tms, sizeof tms, "%.3f", ms);
        if (flop > 0)
            snprintf(rate, sizeof rate, "%.0f TFLOP/s (%.0f%% of peak)", flop / ms / 1e9,
                     peak_tflops > 0 ? 100.0 * flop / ms / 1e9 / peak_tflops : 0.0);
        else
            snprintf(rate, sizeof rate, "%.0f GB/s", bytes / ms / 1e6);
    }
    printf("| %s | %s | %.2e | %.0e | %s | %s |\n", op, shape, err, tol, tms, rate);
    CHECK(err <= tol, "%s %s: rel_l2 %.3g over tolerance %.0e", op, shape, err, tol);
}

static double bytes_of(const pair *p) { return (double)p->rows * p->cols * dtype_size(p->dt); }

/* ------------------------------------------------------------------------------- GEMM */

/* Rows of a to check against the CPU: all when M is small, else 64 spread over M. */
static int64_t sample_rows(int64_t m, int64_t *rows)
{
    if (m <= 256) {
        for (int64_t i = 0; i < m; i++)
            rows[i] = i;
        return m;
    }
    for (int64_t i = 0; i < 64; i++)
        rows[i] = i == 63 ? m - 1 : (int64_t)(check_rand_u64() % (uint64_t)m);
    return 64;
}

static void gemm_case(const char *label, int64_t m, int64_t n, int64_t k, int64_t lda,
                      int64_t ldc, enum dtype in, enum dtype bias_dt, enum dtype out_dt,
                      enum act act, bool timed)
{
    if (timed && small_only)
        return;
    pair a = input(m, k, lda, in, 0, 1), w = input(n, k, k, in, 0, 0.05f);
    pair b = input(1, n, n, bias_dt == DT_COUNT ? DT_F32 : bias_dt, 0, 0.5f);
    pair o = output(m, n, ldc, out_dt);
    vec1(&b);
    const tensor *bias = bias_dt == DT_COUNT ? NULL : &b.dv;
    CHECK_OK(gpu->ops->gemm(gpu, &a.dv, &w.dv, bias, act, &o.dv));
    fetch(&o);
    bool any_nan = false;
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < n; c++)
            any_nan |= isnan(o.h[r * ldc + c]);
    CHECK(!any_nan, "gemm %s: unwritten (NaN) output elements", label);

    int64_t *rows = malloc((size_t)(m < 256 ? m : 256) * sizeof(int64_t));
    int64_t s = sample_rows(m, rows);
    pair as = ref_out(s, k), got = ref_out(s, n), ref = ref_out(s, n);
    for (int64_t i = 0; i < s; i++) {
        memcpy(as.h + i * k, a.h + rows[i] * lda, (size_t)k * sizeof(float));
        memcpy(got.h + i * n, o.h + rows[i] * ldc, (size_t)n * sizeof(float));
    }
    CHECK_OK(cpu->ops->gemm(cpu, &as.hv, &w.hv, bias ? &b.hv : NULL, act, &ref.hv));
    double err = check_rel_l2(got.h, ref.h, (size_t)(s * n));
    double ms = -1;
    if (timed)
        TIME_MS(ms, gpu->ops->gemm(gpu, &a.dv, &w.dv, bias, act, &o.dv));
    char shape[160];
    snprintf(shape, sizeof shape, "%s %lldx%lldx%lld %s->%s%s%s%s", label, (long long)m,
             (long long)n, (long long)k, dtype_name(in), dtype_name(out_dt),
             bias ? " +bias" : "", act == ACT_GELU_TANH ? " gelu" : "",
             lda > k || ldc > n ? " strided" : "");
    /* f32 inputs must stay true fp32 (TF32 would give ~3e-4) */
    double tol = out_dt == DT_BF16 ? TOL_BF16 : in == DT_F32 ? TOL_F32 : TOL_GEMM_F32;
    row("gemm", shape, err, tol, ms, 0,
        2.0 * m * n * k);
    free(rows);
    drop(&a), drop(&w), drop(&b), drop(&o), drop(&as), drop(&got), drop(&ref);
}

/* The 8192^3 bf16 product: the rate the other GEMMs are quoted against. */
static void gemm_peak(void)
{
    if (small_only)
        return;
    int64_t n = 8192;
    pair a = input(n, n, n, DT_BF16, 0, 1), w = input(n, n, n, DT_BF16, 0, 0.02f);
    pair o = output(n, n, n, DT_BF16);
    CHECK_OK(gpu->ops->gemm(gpu, &a.dv, &w.dv, NULL, ACT_NONE, &o.dv));
    fetch(&o);
    pair as = ref_out(8, n), ref = ref_out(8, n), got = ref_out(8, n);
    for (int i = 0; i < 8; i++) {
        int64_t r = (int64_t)(check_rand_u64() % (uint64_t)n);
        memcpy(as.h + i * n, a.h + r * n, (size_t)n * sizeof(float));
        memcpy(got.h + i * n, o.h + r * n, (size_t)n * sizeof(float));
    }
    CHECK_OK(cpu->ops->gemm(cpu, &as.hv, &w.hv, NULL, ACT_NONE, &ref.hv));
    double err = check_rel_l2(got.h, ref.h, (size_t)(8 * n));
    double ms;
    TIME_MS(ms, gpu->ops->gemm(gpu, &a.dv, &w.dv, NULL, ACT_NONE, &o.dv));
    peak_tflops = 2.0 * n * n * n / ms / 1e9;
    row("gemm", "peak 8192^3 bf16->bf16", err, TOL_BF16, ms, 0, 2.0 * n * n * n);
    drop(&a), drop(&w), drop(&o), drop(&as), drop(&ref), drop(&got);
}

static double gelu_tanh_d(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

/* Which GELU the cuBLASLt epilogue computes: a[:, 0] = x, w = e_0 rows, so out = gelu(x + b)
 * directly; compare with the tanh form (required) and the erf form (must be farther away). */
static void gemm_gelu_form(void)
{
    int64_t m = 512, n = 8, k = 8;
    pair a = input(m, k, k, DT_BF16, 0, 0), w = input(n, k, k, DT_BF16, 0, 0);
    pair b = input(1, n, n, DT_F32, 0, 0.3f), o = output(m, n, n, DT_F32);
    vec1(&b);
    for (int64_t i = 0; i < m; i++) {
        memset(a.h + i * k, 0, (size_t)k * sizeof(float));
        a.h[i * k] = round_to(DT_BF16, (float)(-6.0 + 12.0 * i / (m - 1)));
    }
    for (int64_t j = 0; j < n; j++)
        for (int64_t q = 0; q < k; q++)
            w.h[j * k + q] = q == 0 ? 1.0f : 0.0f;
    tensor ah = full_host(&a), ad = full_dev(&a), wh = full_host(&w), wd = full_dev(&w);
    CHECK_OK(gpu->ops->copy(gpu, &ah, &ad));
    CHECK_OK(gpu->ops->copy(gpu, &wh, &wd));
    CHECK_OK(gpu->ops->gemm(gpu, &a.dv, &w.dv, &b.dv, ACT_GELU_TANH, &o.dv));
    fetch(&o);
    double nt = 0, ne = 0, den = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double x = (double)a.h[i * k] + b.h[j], g = o.h[i * n + j];
            double gt = gelu_tanh_d(x), ge = 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
            nt += (g - gt) * (g - gt), ne += (g - ge) * (g - ge), den += gt * gt;
        }
    double et = isnan(nt) ? INFINITY : sqrt(nt / den), ee = isnan(ne) ? INFINITY : sqrt(ne / den);
    char shape[96];
    snprintf(shape, sizeof shape, "epilogue GELU vs tanh form (vs erf form: %.2e)", ee);
    row("gemm", shape, et, TOL_GEMM_F32, -1, 0, 0);
    CHECK(et < ee / 4, "cuBLASLt GELU is not the tanh form: %.3g from tanh, %.3g from erf", et, ee);
    drop(&a), drop(&w), drop(&b), drop(&o);
}

/* A bias at an odd element offset (2-byte aligned): cuBLASLt may refuse to fuse it and the
 * separate epilogue kernel runs instead; either way the result must match. */
static void gemm_bias_offset(void)
{
    int64_t m = 40, n = 24, k = 64;
    pair a = input(m, k, k, DT_BF16, 0, 1), w = input(n, k, k, DT_BF16, 0, 0.1f);
    pair b = input(1, n + 1, n + 1, DT_BF16, 0, 0.5f), o = output(m, n, n, DT_BF16);
    pair ref = ref_out(m, n);
    tensor bh = tensor_1d(b.h + 1, DT_F32, DEV_CPU, n);
    tensor bd = tensor_1d((uint16_t *)b.d + 1, DT_BF16, DEV_CUDA, n);
    CHECK_OK(cpu->ops->gemm(cpu, &a.hv, &w.hv, &bh, ACT_GELU_TANH, &ref.hv));
    CHECK_OK(gpu->ops->gemm(gpu, &a.dv, &w.dv, &bd, ACT_GELU_TANH, &o.dv));
    row("gemm", "odd 40x24x64 bf16->bf16 +bias at a 2-byte offset gelu", compare(&o, &ref),
        TOL_BF16, -1, 0, 0);
    drop(&a), drop(&w), drop(&b), drop(&o), drop(&ref);
}

static void test_gemm(void)
{
    gemm_peak();
    gemm_gelu_form();
    gemm_bias_offset();
    gemm_case("time mlp", 1, 1536, 256, 256, 1536, DT_F32, DT_F32, DT_F32, ACT_NONE, false);
    gemm_case("odd", 67, 45, 300, 310, 50, DT_BF16, DT_BF16, DT_F32, ACT_GELU_TANH, false);
    gemm_case("odd", 33, 19, 40, 40, 19, DT_BF16, DT_F32, DT_BF16, ACT_NONE, false);
    gemm_case("odd", 5, 24, 64, 64, 24, DT_F32, DT_F32, DT_F32, ACT_GELU_TANH, false);
    gemm_case("qkv", 32760, 4608, 1536, 1536, 4608, DT_BF16, DT_F32, DT_BF16, ACT_NONE, true);
    gemm_case("q slice", 32760, 1536, 1536, 4608, 4608, DT_BF16, DT_BF16, DT_BF16, ACT_NONE, true);
    gemm_case("ffn.0", 32760, 8960, 1536, 1536, 8960, DT_BF16, DT_F32, DT_BF16, ACT_GELU_TANH, true);
    gemm_case("ffn.2", 32760, 1536, 8960, 8960, 1536, DT_BF16, DT_F32, DT_BF16, ACT_NONE, true);
    gemm_case("o f32 out", 32760, 1536, 1536, 1536, 1536, DT_BF16, DT_F32, DT_F32, ACT_NONE, true);
    gemm_case("head f32", 32760, 64, 1536, 1536, 64, DT_F32, DT_F32, DT_F32, ACT_NONE, true);
}

/* ------------------------------------------------------------------------------ norms */

/* A modulation vector [D] (groups 1) or [G, D] with row stride ld. */
static pair mod_vec(int64_t groups, int64_t d, int64_t ld, enum dtype dt)
{
    pair p = input(groups, d, ld, dt, 0, 0.5f);
    if (groups == 1)
        vec1(&p);
    return p;
}

static void layer_norm_case(int64_t rows, int64_t d, int64_t ld, enum dtype xt, enum dtype ot,
                            bool affine, int64_t groups, enum dtype mt, bool timed)
{
    if (timed && small_only)
        return;
    pair x = input(rows, d, ld, xt, 1.0f, 2.0f), o = output(rows, d, d, ot);
    pair w = input(1, d, d, mt, 1, 0.3f), b = input(1, d, d, mt, 0, 0.3f);
    pair sh = mod_vec(groups ? groups : 1, d, d + 8, mt), sc = mod_vec(groups ? groups : 1, d, d, mt);
    vec1(&w), vec1(&b);
    pair ref = ref_out(rows, d);
    CHECK_OK(cpu->ops->layer_norm(cpu, &x.hv, affine ? &w.hv : NULL, affine ? &b.hv : NULL,
                                  groups ? &sh.hv : NULL, groups ? &sc.hv : NULL, 1e-6f, &ref.hv));
#define LN_GPU                                                                                  \
    gpu->ops->layer_norm(gpu, &x.dv, affine ? &w.dv : NULL, affine ? &b.dv : NULL,             \
                         groups ? &sh.dv : NULL, groups ? &sc.dv : NULL, 1e-6f, &o.dv)
    CHECK_OK(LN_GPU);
    double err = compare(&o, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, LN_GPU);
#undef LN_GPU
    char shape[128];
    snprintf(shape, sizeof shape, "[%lld, %lld]%s %s->%s%s%s", (long long)rows, (long long)d,
             ld > d ? " strided" : "", dtype_name(xt), dtype_name(ot), affine ? " affine" : "",
             groups > 1 ? " [G,D] mod" : groups ? " mod" : "");
    row("layer_norm", shape, err, ot == DT_BF16 ? TOL_BF16 : TOL_F32, ms,
        bytes_of(&x) + bytes_of(&o), 0);
    drop(&x), drop(&o), drop(&w), drop(&b), drop(&sh), drop(&sc), drop(&ref);
}

static void rms_norm_case(rope_grid g, int heads, int head_dim, int64_t ld, enum dtype xt,
                          enum dtype ot, bool rope, bool timed)
{
    if (timed && small_only)
        return;
    int64_t rows = (int64_t)g.f * g.h * g.w, d = (int64_t)heads * head_dim;
    pair x = input(rows, d, ld, xt, 0.2f, 1.5f), o = output(rows, d, d, ot);
    pair w = input(1, d, d, DT_F32, 1, 0.3f), ref = ref_out(rows, d);
    vec1(&w);
    CHECK_OK(cpu->ops->rms_norm(cpu, &x.hv, &w.hv, 1e-6f, rope ? &g : NULL, head_dim, &ref.hv));
    CHECK_OK(gpu->ops->rms_norm(gpu, &x.dv, &w.dv, 1e-6f, rope ? &g : NULL, head_dim, &o.dv));
    double err = compare(&o, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, gpu->ops->rms_norm(gpu, &x.dv, &w.dv, 1e-6f, rope ? &g : NULL, head_dim, &o.dv));
    char shape[128];
    snprintf(shape, sizeof shape, "[%lld, %lld]%s %s->%s%s", (long long)rows, (long long)d,
             ld > d ? " strided" : "", dtype_name(xt), dtype_name(ot), rope ? " +rope" : "");
    double tol = xt == DT_BF16 ? TOL_RMS_BF16 : ot == DT_BF16 ? TOL_BF16 : TOL_F32;
    row("rms_norm", shape, err, tol, ms, bytes_of(&x) + bytes_of(&o), 0);
    drop(&x), drop(&o), drop(&w), drop(&ref);
}

static void rope_case(rope_grid g, int heads, int head_dim, int64_t ld, enum dtype xt,
                      enum dtype ot, bool timed)
{
    if (timed && small_only)
        return;
    int64_t rows = (int64_t)g.f * g.h * g.w, d = (int64_t)heads * head_dim;
    pair x = input(rows, d, ld, xt, 0, 1), o = output(rows, d, d, ot), ref = ref_out(rows, d);
    CHECK_OK(cpu->ops->rope3d(cpu, &x.hv, &g, head_dim, &ref.hv));
    CHECK_OK(gpu->ops->rope3d(gpu, &x.dv, &g, head_dim, &o.dv));
    double err = compare(&o, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, gpu->ops->rope3d(gpu, &x.dv, &g, head_dim, &o.dv));
    char shape[128];
    snprintf(shape, sizeof shape, "grid %dx%dx%d f0 %d, %d x %d%s %s->%s", g.f, g.h, g.w, g.f0,
             heads, head_dim, ld > d ? " strided" : "", dtype_name(xt), dtype_name(ot));
    row("rope3d", shape, err, ot == DT_BF16 ? TOL_BF16 : TOL_F32, ms,
        bytes_of(&x) + bytes_of(&o), 0);
    drop(&x), drop(&o), drop(&ref);
}

static void softmax_case(int64_t rows, int64_t d, enum dtype xt, enum dtype ot, bool timed)
{
    if (timed && small_only)
        return;
    pair x = input(rows, d, d, xt, 0, 3), o = output(rows, d, d, ot), ref = ref_out(rows, d);
    CHECK_OK(cpu->ops->softmax(cpu, &x.hv, &ref.hv));
    CHECK_OK(gpu->ops->softmax(gpu, &x.dv, &o.dv));
    double err = compare(&o, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, gpu->ops->softmax(gpu, &x.dv, &o.dv));
    char shape[96];
    snprintf(shape, sizeof shape, "[%lld, %lld] %s->%s", (long long)rows, (long long)d,
             dtype_name(xt), dtype_name(ot));
    row("softmax", shape, err, ot == DT_BF16 ? TOL_BF16 : TOL_F32, ms,
        bytes_of(&x) + bytes_of(&o), 0);
    drop(&x), drop(&o), drop(&ref);
}

static void test_norms(void)
{
    layer_norm_case(7, 33, 37, DT_F32, DT_F32, false, 0, DT_F32, false);
    layer_norm_case(12, 136, 144, DT_BF16, DT_F32, true, 3, DT_BF16, false);
    layer_norm_case(9, 64, 64, DT_F32, DT_BF16, true, 1, DT_F32, false);
    layer_norm_case(32760, 1536, 1536, DT_F32, DT_BF16, false, 1, DT_F32, true); /* norm1 + AdaLN */
    layer_norm_case(32760, 1536, 1536, DT_F32, DT_BF16, true, 0, DT_F32, true);  /* norm3 */
    layer_norm_case(32760, 1536, 1536, DT_F32, DT_F32, false, 3, DT_F32, true);  /* per-frame mod */

    rms_norm_case((rope_grid){1, 1, 7, 0}, 1, 34, 34, DT_F32, DT_F32, false, false);
    rms_norm_case((rope_grid){2, 3, 5, 1}, 2, 18, 40, DT_BF16, DT_F32, true, false);
    rms_norm_case((rope_grid){2, 3, 4, 0}, 3, 128, 400, DT_F32, DT_BF16, true, false);
    /* the one-chunk-per-thread kernel with a partly idle block and head_dim 64, then the loop
     * kernel's 8-wide paths: chunks across heads (head_dim 20), rows wider than 1024 chunks */
    rms_norm_case((rope_grid){3, 2, 5, 0}, 2, 64, 136, DT_BF16, DT_BF16, true, false);
    rms_norm_case((rope_grid){2, 2, 3, 0}, 2, 20, 40, DT_F32, DT_F32, true, false);
    rms_norm_case((rope_grid){1, 2, 2, 0}, 72, 128, 9216, DT_BF16, DT_F32, true, false);
    rms_norm_case((rope_grid){1, 3, 3, 0}, 1, 8200, 8200, DT_F32, DT_F32, false, false);
    rms_norm_case((rope_grid){21, 30, 52, 0}, 12, 128, 4608, DT_BF16, DT_BF16, true, true); /* q */
    rms_norm_case((rope_grid){21, 30, 52, 0}, 12, 128, 1536, DT_BF16, DT_BF16, false, true);

    rope_case((rope_grid){3, 5, 7, 2}, 2, 18, 38, DT_F32, DT_F32, false);
    rope_case((rope_grid){2, 2, 3, 900}, 3, 128, 384, DT_BF16, DT_F32, false); /* large angles */
    rope_case((rope_grid){21, 30, 52, 3}, 12, 128, 4608, DT_BF16, DT_BF16, true);

    softmax_case(5, 77, DT_F32, DT_F32, false);
    softmax_case(3, 1000, DT_BF16, DT_F32, false);
    softmax_case(8192, 1024, DT_F32, DT_F32, true);
    softmax_case(8192, 1024, DT_BF16, DT_BF16, true);
}

/* ------------------------------------------------------------------------ element-wise */

static void modulate_case(int64_t rows, int64_t d, int64_t ld, enum dtype xt, enum dtype ot,
                          int64_t groups, enum dtype mt, bool shift, bool scale, bool timed)
{
    if (timed && small_only)
        return;
    pair x = input(rows, d, ld, xt, 0, 1), o = output(rows, d, d, ot), ref = ref_out(rows, d);
    pair sh = mod_vec(groups, d, d + 8, mt), sc = mod_vec(groups, d, d, mt);
    CHECK_OK(cpu->ops->modulate(cpu, &x.hv, shift ? &sh.hv : NULL, scale ? &sc.hv : NULL, &ref.hv));
    CHECK_OK(gpu->ops->modulate(gpu, &x.dv, shift ? &sh.dv : NULL, scale ? &sc.dv : NULL, &o.dv));
    double err = compare(&o, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, gpu->ops->modulate(gpu, &x.dv, shift ? &sh.dv : NULL, scale ? &sc.dv : NULL, &o.dv));
    char shape[128];
    snprintf(shape, sizeof shape, "[%lld, %lld]%s %s->%s G %lld %s%s%s", (long long)rows,
             (long long)d, ld > d ? " strided" : "", dtype_name(xt), dtype_name(ot),
             (long long)groups, dtype_name(mt), shift ? " shift" : "", scale ? " scale" : "");
    row("modulate", shape, err, ot == DT_BF16 ? TOL_BF16 : TOL_F32, ms,
        bytes_of(&x) + bytes_of(&o), 0);
    drop(&x), drop(&o), drop(&ref), drop(&sh), drop(&sc);
}

static void add_gated_case(int64_t rows, int64_t d, enum dtype yt, int64_t groups, enum dtype gt,
                           bool timed)
{
    if (timed && small_only)
        return;
    pair x = input(rows, d, d, DT_F32, 0, 1), y = input(rows, d, d + 8, yt, 0, 1);
    pair g = mod_vec(groups ? groups : 1, d, d, gt);
    /* the reference: x + y*gate computed on a host copy of x */
    pair ref = ref_out(rows, d);
    memcpy(ref.h, x.h, (size_t)(rows * d) * sizeof(float));
    CHECK_OK(cpu->ops->add_gated(cpu, &ref.hv, &y.hv, groups ? &g.hv : NULL));
    CHECK_OK(gpu->ops->add_gated(gpu, &x.dv, &y.dv, groups ? &g.dv : NULL));
    double err = compare(&x, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, gpu->ops->add_gated(gpu, &x.dv, &y.dv, groups ? &g.dv : NULL));
    char shape[128];
    snprintf(shape, sizeof shape, "[%lld, %lld] f32 += %s * %s gate G %lld", (long long)rows,
             (long long)d, dtype_name(yt), groups ? dtype_name(gt) : "no", (long long)groups);
    row("add_gated", shape, err, TOL_F32, ms, 2 * bytes_of(&x) + bytes_of(&y), 0);
    drop(&x), drop(&y), drop(&g), drop(&ref);
}

/* The residual update fused with the next norm, against the CPU's add_gated then layer_norm:
 * both the updated stream and the norm's output. groups 0: no modulation; affine: weight and
 * bias (the cross-attention norm); d not a multiple of 8 or over 8192 takes the two-op path. */
static void add_gated_norm_case(int64_t rows, int64_t d, enum dtype yt, bool gated, int64_t groups,
                                bool affine, enum dtype ot, bool timed)
{
    if (timed && small_only)
        return;
    const int64_t gg = groups ? groups : 1;
    pair x = input(rows, d, d, DT_F32, 0, 1), y = input(rows, d, d + 8, yt, 0, 1);
    pair g = mod_vec(gg, d, 6 * d, DT_F32), sh = mod_vec(gg, d, 6 * d, DT_F32);
    pair sc = mod_vec(gg, d, 6 * d, DT_F32);
    pair w = input(1, d, d, DT_F32, 1, 0.3f), b = input(1, d, d, DT_F32, 0, 0.3f);
    vec1(&w), vec1(&b);
    pair o = output(rows, d, d, ot), xr = ref_out(rows, d), ref = ref_out(rows, d);
    memcpy(xr.h, x.h, (size_t)(rows * d) * sizeof(float));
    CHECK_OK(cpu->ops->add_gated_norm(cpu, &xr.hv, &y.hv, gated ? &g.hv : NULL,
                                      affine ? &w.hv : NULL, affine ? &b.hv : NULL,
                                      groups ? &sh.hv : NULL, groups ? &sc.hv : NULL, 1e-6f,
                                      &ref.hv));
#define AGN_GPU                                                                                 \
    gpu->ops->add_gated_norm(gpu, &x.dv, &y.dv, gated ? &g.dv : NULL, affine ? &w.dv : NULL,     \
                             affine ? &b.dv : NULL, groups ? &sh.dv : NULL,                     \
                             groups ? &sc.dv : NULL, 1e-6f, &o.dv)
    CHECK_OK(AGN_GPU);
    double ex = compare(&x, &xr), eo = compare(&o, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, AGN_GPU);
#undef AGN_GPU
    char shape[160];
    snprintf(shape, sizeof shape, "[%lld, %lld] f32 += %s%s, ->%s%s%s", (long long)rows,
             (long long)d, dtype_name(yt), gated ? " * gate" : "", dtype_name(ot),
             affine ? " affine" : "", groups > 1 ? " [G,D] mod" : groups ? " mod" : "");
    row("add_gated_norm x", shape, ex, TOL_F32, -1, 0, 0);
    row("add_gated_norm out", shape, eo, ot == DT_BF16 ? TOL_BF16 : TOL_F32, ms,
        2 * bytes_of(&x) + bytes_of(&y) + bytes_of(&o), 0);
    drop(&x), drop(&y), drop(&g), drop(&sh), drop(&sc), drop(&w), drop(&b), drop(&o), drop(&xr),
        drop(&ref);
}

enum unary { U_GELU, U_SILU };

static void unary_case(enum unary op, int64_t rows, int64_t d, int64_t ld, enum dtype xt,
                       enum dtype ot, bool timed)
{
    if (timed && small_only)
        return;
    pair x = input(rows, d, ld, xt, 0, 3), o = output(rows, d, d, ot), ref = ref_out(rows, d);
    int (*cf)(backend *, const tensor *, tensor *) = op == U_GELU ? cpu->ops->gelu_tanh : cpu->ops->silu;
    int (*gf)(backend *, const tensor *, tensor *) = op == U_GELU ? gpu->ops->gelu_tanh : gpu->ops->silu;
    CHECK_OK(cf(cpu, &x.hv, &ref.hv));
    CHECK_OK(gf(gpu, &x.dv, &o.dv));
    double err = compare(&o, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, gf(gpu, &x.dv, &o.dv));
    char shape[96];
    snprintf(shape, sizeof shape, "[%lld, %lld]%s %s->%s", (long long)rows, (long long)d,
             ld > d ? " strided" : "", dtype_name(xt), dtype_name(ot));
    row(op == U_GELU ? "gelu_tanh" : "silu", shape, err, ot == DT_BF16 ? TOL_BF16 : TOL_F32, ms,
        bytes_of(&x) + bytes_of(&o), 0);
    drop(&x), drop(&o), drop(&ref);
}

static void test_elementwise(void)
{
    modulate_case(9, 31, 33, DT_F32, DT_F32, 1, DT_F32, true, true, false);
    modulate_case(12, 64, 72, DT_BF16, DT_F32, 4, DT_BF16, true, true, false);
    modulate_case(6, 40, 40, DT_F32, DT_F32, 6, DT_F32, true, false, false); /* e0 + modulation */
    modulate_case(32760, 1536, 1536, DT_F32, DT_BF16, 1, DT_F32, true, true, true);
    modulate_case(32760, 1536, 1536, DT_F32, DT_BF16, 21, DT_F32, true, true, true);

    add_gated_case(10, 45, DT_F32, 0, DT_F32, false);
    add_gated_case(12, 40, DT_BF16, 3, DT_BF16, false);
    add_gated_case(32760, 1536, DT_BF16, 1, DT_F32, true);
    add_gated_norm_case(7, 40, DT_F32, false, 0, false, DT_F32, false);
    add_gated_norm_case(12, 136, DT_BF16, true, 3, false, DT_BF16, false); /* per-frame mod */
    add_gated_norm_case(5, 33, DT_BF16, true, 1, true, DT_F32, false);     /* two-op path */
    add_gated_norm_case(3, 8200, DT_BF16, true, 1, false, DT_BF16, false); /* two-op path */
    add_gated_norm_case(9, 5120, DT_BF16, true, 1, false, DT_BF16, false); /* 14B width */
    add_gated_norm_case(32760, 1536, DT_BF16, true, 0, true, DT_BF16, true);  /* -> norm3 */
    add_gated_norm_case(32760, 1536, DT_BF16, false, 1, false, DT_BF16, true); /* -> norm2 */
    add_gated_norm_case(65520, 1536, DT_BF16, true, 1, false, DT_BF16, true);  /* batched */

    unary_case(U_GELU, 13, 77, 80, DT_F32, DT_F32, false);
    unary_case(U_SILU, 1, 1536, 1536, DT_F32, DT_F32, false); /* time embedding */
    unary_case(U_SILU, 7, 45, 45, DT_BF16, DT_BF16, false);
    unary_case(U_GELU, 32760, 8960, 8960, DT_BF16, DT_BF16, true);
}

/* ---------------------------------------------------------------------------- lincomb */

/* n f32 inputs of len values with random coefficients; out poisoned, or (in_place) the first
 * input itself, as the sampler's x = a x + b m updates run. */
static void lincomb_case(int n, int64_t len, bool in_place, bool timed)
{
    if (timed && small_only)
        return;
    pair x[BACKEND_LINCOMB_MAX], o = {0}, ref = ref_out(1, len);
    const tensor *hin[BACKEND_LINCOMB_MAX], *din[BACKEND_LINCOMB_MAX];
    double coef[BACKEND_LINCOMB_MAX];
    for (int j = 0; j < n; j++) {
        x[j] = input(1, len, len, DT_F32, 0, 1);
        vec1(&x[j]);
        hin[j] = &x[j].hv;
        din[j] = &x[j].dv;
        coef[j] = 3 * check_rand_normal();
    }
    vec1(&ref);
    CHECK_OK(cpu->ops->lincomb(cpu, n, hin, coef, &ref.hv));
    if (!in_place) {
        o = output(1, len, len, DT_F32);
        vec1(&o);
    }
    pair *got = in_place ? &x[0] : &o;
    CHECK_OK(gpu->ops->lincomb(gpu, n, din, coef, &got->dv));
    double err = compare(got, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, gpu->ops->lincomb(gpu, n, din, coef, &o.dv));
    char shape[96];
    snprintf(shape, sizeof shape, "%d x [%lld] f32%s", n, (long long)len,
             in_place ? ", out = in[0]" : "");
    row("lincomb", shape, err, 0, ms, (n + 1) * bytes_of(&ref), 0);
    for (int j = 0; j < n; j++)
        drop(&x[j]);
    drop(&o), drop(&ref);
}

static void test_lincomb(void)
{
    lincomb_case(1, 77, false, false);
    lincomb_case(2, 589, false, false);       /* 2 x 256 + 77: a partial last block */
    lincomb_case(3, 100003, true, false);     /* in place, prime length */
    lincomb_case(4, 70001, false, false);     /* the UniPC corrector's four terms */
    lincomb_case(4, 4099, true, false);
    /* a Wan 480p x 81-frame latent: the guided m = x - s (g c + (1 - g) u), and a corrector */
    lincomb_case(3, 2096640, false, true);
    lincomb_case(4, 2096640, false, true);
}

/* ---------------------------------------------------------------------------- patches */

static void patch_embed_case(int64_t C, int64_t D, int pt, int ph, int pw, int f, int h, int w,
                             enum dtype lt, enum dtype wt, enum dtype ot, bool timed)
{
    if (timed && small_only)
        return;
    int64_t F = (int64_t)f * pt, H = (int64_t)h * ph, W = (int64_t)w * pw;
    int64_t L = (int64_t)f * h * w, K = C * pt * ph * pw;
    pair lat = input(C * F, H * W, H * W, lt, 0, 1), wp = input(D, K, K, wt, 0, 0.1f);
    pair b = input(1, D, D, DT_F32, 0, 0.5f), o = output(L, D, D, ot), ref = ref_out(L, D);
    int64_t ls[4] = {C, F, H, W}, ws[5] = {D, C, pt, ph, pw};
    reshape(&lat, 4, ls);
    reshape(&wp, 5, ws);
    vec1(&b);
    CHECK_OK(cpu->ops->patch_embed(cpu, &lat.hv, &wp.hv, &b.hv, &ref.hv));
    CHECK_OK(gpu->ops->patch_embed(gpu, &lat.dv, &wp.dv, &b.dv, &o.dv));
    double err = compare(&o, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, gpu->ops->patch_embed(gpu, &lat.dv, &wp.dv, &b.dv, &o.dv));
    char shape[128];
    snprintf(shape, sizeof shape, "[%lld, %lld, %lld, %lld] -> [%lld, %lld] %s/%s->%s",
             (long long)C, (long long)F, (long long)H, (long long)W, (long long)L, (long long)D,
             dtype_name(lt), dtype_name(wt), dtype_name(ot));
    double tol = ot == DT_BF16 ? TOL_BF16 : wt == DT_BF16 ? TOL_GEMM_F32 : TOL_F32;
    row("patch_embed", shape, err, tol, ms,
        (double)C * F * H * W * dtype_size(lt) + bytes_of(&o), 0);
    drop(&lat), drop(&wp), drop(&b), drop(&o), drop(&ref);
}

static void unpatchify_case(int64_t C, patch_geom g, enum dtype xt, enum dtype ot, bool timed)
{
    if (timed && small_only)
        return;
    int64_t L = (int64_t)g.f * g.h * g.w, P = (int64_t)g.pt * g.ph * g.pw;
    int64_t F = (int64_t)g.f * g.pt, H = (int64_t)g.h * g.ph, W = (int64_t)g.w * g.pw;
    pair x = input(L, P * C, P * C + 8, xt, 0, 1);
    pair o = output(C * F, H * W, H * W, ot), ref = ref_out(C * F, H * W);
    int64_t os[4] = {C, F, H, W};
    reshape(&o, 4, os);
    tensor rv = tensor_make(ref.h, DT_F32, DEV_CPU, 4, os);
    CHECK_OK(cpu->ops->unpatchify(cpu, &x.hv, &g, &rv));
    CHECK_OK(gpu->ops->unpatchify(gpu, &x.dv, &g, &o.dv));
    double err = compare(&o, &ref);
    double ms = -1;
    if (timed)
        TIME_MS(ms, gpu->ops->unpatchify(gpu, &x.dv, &g, &o.dv));
    char shape[128];
    snprintf(shape, sizeof shape, "[%lld, %lld] -> [%lld, %lld, %lld, %lld] %s->%s",
             (long long)L, (long long)(P * C), (long long)C, (long long)F, (long long)H,
             (long long)W, dtype_name(xt), dtype_name(ot));
    row("unpatchify", shape, err, ot == DT_BF16 && xt != DT_BF16 ? TOL_BF16 : 0, ms,
        bytes_of(&x) + bytes_of(&o), 0);
    drop(&x), drop(&o), drop(&ref);
}

static void test_patches(void)
{
    patch_embed_case(5, 24, 2, 3, 2, 2, 3, 5, DT_F32, DT_F32, DT_F32, false);
    patch_embed_case(16, 40, 1, 2, 2, 3, 5, 4, DT_BF16, DT_BF16, DT_F32, false);
    patch_embed_case(16, 1536, 1, 2, 2, 21, 30, 52, DT_F32, DT_BF16, DT_BF16, true);
    unpatchify_case(3, (patch_geom){2, 1, 3, 2, 4, 3}, DT_F32, DT_F32, false);
    unpatchify_case(16, (patch_geom){1, 2, 2, 21, 30, 52}, DT_F32, DT_F32, true);
    unpatchify_case(16, (patch_geom){1, 2, 2, 3, 4, 5}, DT_BF16, DT_F32, false);
}

/* ------------------------------------------------------------------------ copy and fill */

static bool same_float(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

/* Every f8 code, uploaded and converted on the device, against numeric.h. */
static void copy_f8(enum dtype dt)
{
    uint8_t codes[256];
    float got[256];
    for (int i = 0; i < 256; i++)
        codes[i] = (uint8_t)i;
    tensor hs = tensor_1d(codes, dt, DEV_CPU, 256), hg = tensor_1d(got, DT_F32, DEV_CPU, 256);
    tensor d;
    int64_t n = 256;
    CHECK_OK(backend_tensor_alloc(gpu, DT_F32, 1, &n, &d));
    CHECK_OK(gpu->ops->copy(gpu, &hs, &d));
    CHECK_OK(gpu->ops->copy(gpu, &d, &hg));
    int bad = 0;
    for (int i = 0; i < 256; i++) {
        float want = dt == DT_F8_E4M3 ? f8e4m3_to_f32(codes[i]) : f8e5m2_to_f32(codes[i]);
        bad += !same_float(got[i], want);
    }
    row("copy", dt == DT_F8_E4M3 ? "all 256 f8_e4m3 -> f32 (h2d, d2h)" : "all 256 f8_e5m2 -> f32",
        bad, 0, -1, 0, 0);
    backend_tensor_free(gpu, &d);
}

static void test_copy(void)
{
    copy_f8(DT_F8_E4M3);
    copy_f8(DT_F8_E5M2);
    if (small_only)
        return;
    /* > 64 MiB of f32 source: several staging chunks each way */
    int64_t rows = 32760, cols = 1536, n = rows * cols;
    float *src = malloc((size_t)n * sizeof(float)), *back = malloc((size_t)n * sizeof(float));
    uint16_t *bits = malloc((size_t)n * sizeof(uint16_t));
    check_fill_normal(src, (size_t)n, 10);
    src[0] = NAN, src[1] = INFINITY, src[2] = -0.0f, src[3] = 1e-40f;
    tensor hs = tensor_2d(src, DT_F32, DEV_CPU, rows, cols);
    tensor hb = tensor_2d(back, DT_F32, DEV_CPU, rows, cols);
    tensor hbits = tensor_2d(bits, DT_BF16, DEV_CPU, rows, cols);
    int64_t shape[2] = {rows, cols};
    tensor db, dh, df;
    CHECK_OK(backend_tensor_alloc(gpu, DT_BF16, 2, shape, &db));
    CHECK_OK(backend_tensor_alloc(gpu, DT_F16, 2, shape, &dh));
    CHECK_OK(backend_tensor_alloc(gpu, DT_F32, 2, shape, &df));

    struct timespec t0, t1;
    CHECK_OK(gpu->ops->copy(gpu, &hs, &db));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(gpu->ops->copy(gpu, &hs, &db)); /* f32 host -> bf16 device, converted on the GPU */
    CHECK_OK(gpu->ops->sync(gpu));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms_up = 1e3 * (double)(t1.tv_sec - t0.tv_sec) + 1e-6 * (double)(t1.tv_nsec - t0.tv_nsec);
    CHECK_OK(gpu->ops->copy(gpu, &db, &hbits)); /* raw bf16 back */
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t want = f32_to_bf16(src[i]);
        bad += isnan(src[i]) ? (bits[i] & 0x7fff) <= 0x7f80 : bits[i] != want;
    }
    row("copy", "[32760, 1536] f32 host -> bf16 device (host clock)", (double)bad, 0, ms_up,
        (double)n * 4, 0);

    CHECK_OK(gpu->ops->copy(gpu, &db, &hb)); /* first touch of hb's pages stays untimed */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(gpu->ops->copy(gpu, &db, &hb)); /* bf16 device -> f32 host */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms_down = 1e3 * (double)(t1.tv_sec - t0.tv_sec) + 1e-6 * (double)(t1.tv_nsec - t0.tv_nsec);
    bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += !same_float(back[i], bf16_to_f32(bits[i]));
    row("copy", "[32760, 1536] bf16 device -> f32 host (host clock)", (double)bad, 0, ms_down,
        (double)n * 4, 0);

    CHECK_OK(gpu->ops->copy(gpu, &hs, &dh));
    CHECK_OK(gpu->ops->copy(gpu, &dh, &df)); /* device f16 -> device f32 */
    CHECK_OK(gpu->ops->copy(gpu, &df, &hb));
    bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += !same_float(back[i], f16_to_f32(f32_to_f16(src[i])));
    row("copy", "[32760, 1536] f32 -> f16 -> f32 (h2d, d2d, d2h)", (double)bad, 0, -1, 0, 0);

    double d64[3] = {0.1, -1e10, 3.0};
    uint16_t b3[3];
    tensor h64 = tensor_1d(d64, DT_F64, DEV_CPU, 3), hb3 = tensor_1d(b3, DT_BF16, DEV_CPU, 3);
    tensor d3 = tensor_1d(db.data, DT_BF16, DEV_CUDA, 3);
    CHECK_OK(gpu->ops->copy(gpu, &h64, &d3));
    CHECK_OK(gpu->ops->copy(gpu, &d3, &hb3));
    bad = 0;
    for (int i = 0; i < 3; i++)
        bad += b3[i] != f32_to_bf16((float)d64[i]);
    row("copy", "f64 host -> bf16 device", (double)bad, 0, -1, 0, 0);

    backend_tensor_free(gpu, &db), backend_tensor_free(gpu, &dh), backend_tensor_free(gpu, &df);
    free(src), free(back), free(bits);
}

/* ----------------------------------------------------------------------------- refusals */

static void test_refusals(void)
{
    pair x = input(4, 16, 16, DT_F32, 0, 1), o = output(4, 16, 16, DT_BF16);
    CHECK(gpu->ops->silu(gpu, &x.hv, &o.dv) == REEL_E_INVALID, "host tensor given to a CUDA op");
    CHECK(strstr(err_msg(), "cpu") != NULL, "message names the device: %s", err_msg());
    pair w = input(8, 16, 16, DT_F32, 0, 1), g = output(4, 8, 8, DT_BF16);
    CHECK(gpu->ops->gemm(gpu, &x.dv, &w.dv, NULL, ACT_NONE, &g.dv) == REEL_E_INVALID,
          "f32 GEMM with bf16 output");
    tensor bad = o.dv;
    bad.dtype = DT_F16;
    CHECK(gpu->ops->gelu_tanh(gpu, &x.dv, &bad) == REEL_E_INVALID, "f16 output");
    CHECK(gpu->ops->add_gated(gpu, &o.dv, &x.dv, NULL) == REEL_E_INVALID, "bf16 residual");
    rope_grid rg = {1, 2, 3, 0};
    CHECK(gpu->ops->rope3d(gpu, &x.dv, &rg, 16, &x.dv) == REEL_E_INVALID, "grid of 6 for 4 rows");
    double one = 1;
    CHECK(gpu->ops->lincomb(gpu, 1, (const tensor *[]){&x.hv}, &one, &x.dv) == REEL_E_INVALID,
          "host tensor given to lincomb");
    CHECK(gpu->ops->lincomb(gpu, 1, (const tensor *[]){&o.dv}, &one, &x.dv) == REEL_E_INVALID,
          "bf16 lincomb input");
    drop(&x), drop(&o), drop(&w), drop(&g);
}

int main(void)
{
    check_seed("test_ops_cuda");
    const char *small = getenv("REEL_GPU_SMALL");
    small_only = small && *small && *small != '0';
    gpu = check_cuda_backend();
    if (!gpu)
        return 77;
    CHECK_OK(backend_cpu_create(0, &cpu));
    if (!cpu)
        return check_done();
    cudaEventCreate(&ev0);
    cudaEventCreate(&ev1);
    struct cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, gpu->device_index);
    printf("device: %s, %d SMs; CPU reference on %d threads\n", prop.name,
           prop.multiProcessorCount, cpu->threads);
    printf("| op | shape | rel_l2 | tol | ms | rate |\n| --- | --- | --- | --- | --- | --- |\n");
    test_copy();
    test_gemm();
    test_norms();
    test_elementwise();
    test_lincomb();
    test_patches();
    test_refusals();
    cudaEventDestroy(ev0);
    cudaEventDestroy(ev1);
    backend_free(gpu);
    backend_free(cpu);
    return check_done();
}

#else
int main(void)
{
    check_seed("test_ops_cuda");
    return check_skip("reel was built without CUDA");
}
#endif
