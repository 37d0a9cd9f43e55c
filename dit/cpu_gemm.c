/* CPU GEMM: out[M,N] = act(a[M,K] · w[N,K]^T + bias), fp32 accumulation.
 *
 * Blocked as BLIS does: a task owns an MC x NC tile of out. For each KC slice of K it packs the
 * matching KC x NC block of w into its worker's buffer as NR-wide panels ([k][NR], so the inner
 * loop reads NR consecutive floats), then runs an MR x NR register tile for each MR rows of a
 * and each panel. The tile's accumulators stay in registers over the whole KC slice; a's rows
 * are read in place (they are K-contiguous already). Tasks are spread over the worker pool; M = 1
 * (the time-embedding MLP) still splits over N. Reference test: tests/test_ops_cpu.c. */
#include "cpu_ops.h"

#include "error.h"

#include <math.h>
#include <string.h>

enum { MR = CPU_GEMM_MR, NR = CPU_GEMM_NR, KC = CPU_GEMM_KC, NC = CPU_GEMM_NC, MC = CPU_GEMM_MC };

typedef void (*micro_fn)(int64_t kc, const float *const *a, const float *b, float *tile);

/* Portable register tile: the compiler vectorises the j loop. */
static void micro_generic(int64_t kc, const float *const *a, const float *restrict b,
                          float *restrict tile)
{
    float c[MR][NR];
    memset(c, 0, sizeof c);
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * NR;
        for (int i = 0; i < MR; i++) {
            float av = a[i][k];
            for (int j = 0; j < NR; j++)
                c[i][j] += av * bk[j];
        }
    }
    memcpy(tile, c, sizeof c);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* The same tile with AVX2 + FMA: 12 accumulators of 8 floats, two w vectors and one broadcast
 * fit the 16 ymm registers. 512^3 on 2 cores (Xeon, AVX-512 capable): 108 GFLOP/s, against
 * 15 for the generic tile. */
__attribute__((target("avx2,fma"))) static void micro_avx2(int64_t kc, const float *const *a,
                                                           const float *restrict b,
                                                           float *restrict tile)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b + k * NR), b1 = _mm256_loadu_ps(b + k * NR + 8);
        __m256 av = _mm256_broadcast_ss(a0 + k);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a1 + k);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a2 + k);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a3 + k);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a4 + k);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a5 + k);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
    }
    __m256 c[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(tile + i * NR, c[i][0]);
        _mm256_storeu_ps(tile + i * NR + 8, c[i][1]);
    }
}
_Static_assert(MR == 6 && NR == 16, "micro_avx2 is written for a 6 x 16 tile");

static micro_fn pick_micro(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? micro_avx2
                                                                          : micro_generic;
}
#else
static micro_fn pick_micro(void) { return micro_generic; }
#endif

typedef struct gemm_job {
    const gemm_args *g;
    enum act act;
    float *pack; /* per worker */
    micro_fn micro;
    int64_t n_tiles; /* tiles along N */
} gemm_job;

static float gelu_tanh_f(float x)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

/* w[n0 .. n0+nc) x [k0 .. k0+kc) into NR-wide panels, zero past N. */
static void pack_w(const float *w, int64_t K, int64_t N, int64_t n0, int64_t nc, int64_t k0,
                   int64_t kc, float *pack)
{
    for (int64_t p = 0; p < nc; p += NR) {
        float *dst = pack + p * kc;
        for (int j = 0; j < NR; j++) {
            int64_t n = n0 + p + j;
            if (n < N) {
                const float *src = w + n * K + k0;
                for (int64_t k = 0; k < kc; k++)
                    dst[k * NR + j] = src[k];
            } else {
                for (int64_t k = 0; k < kc; k++)
                    dst[k * NR + j] = 0.0f;
            }
        }
    }
}

static void gemm_tile(const gemm_job *job, int64_t tile, int worker)
{
    const gemm_args *g = job->g;
    const float *a = g->a.data, *w = g->w.data, *bias = g->bias.data;
    float *out = g->out.data;
    int64_t m0 = (tile / job->n_tiles) * MC, n0 = (tile % job->n_tiles) * NC;
    int64_t mc = g->m - m0 < MC ? g->m - m0 : MC;
    int64_t nc = g->n - n0 < NC ? g->n - n0 : NC;
    float *pack = job->pack + (size_t)worker * KC * NC;

    for (int64_t k0 = 0; k0 < g->k; k0 += KC) {
        int64_t kc = g->k - k0 < KC ? g->k - k0 : KC;
        pack_w(w, g->k, g->n, n0, nc, k0, kc, pack);
        for (int64_t i0 = 0; i0 < mc; i0 += MR) {
            const float *rows[MR];
            int mr = mc - i0 < MR ? (int)(mc - i0) : MR;
            for (int i = 0; i < MR; i++) /* rows past M repeat the last one; results dropped */
                rows[i] = a + (m0 + i0 + (i < mr ? i : mr - 1)) * g->a.stride + k0;
            for (int64_t p = 0; p < nc; p += NR) {
                float t[MR * NR];
                job->micro(kc, rows, pack + p * kc, t);
                int nr = nc - p < NR ? (int)(nc - p) : NR;
                for (int i = 0; i < mr; i++) {
                    float *o = out + (m0 + i0 + i) * g->out.stride + n0 + p;
                    if (k0 == 0)
                        memcpy(o, t + i * NR, (size_t)nr * sizeof(float));
                    else
                        for (int j = 0; j < nr; j++)
                            o[j] += t[i * NR + j];
                }
            }
        }
    }
    if (!bias && job->act == ACT_NONE)
        return;
    for (int64_t i = 0; i < mc; i++) {
        float *o = out + (m0 + i) * g->out.stride + n0;
        for (int64_t j = 0; j < nc; j++) {
            float v = o[j] + (bias ? bias[n0 + j] : 0.0f);
            o[j] = job->act == ACT_GELU_TANH ? gelu_tanh_f(v) : v;
        }
    }
}

static void gemm_tiles(void *ctx, int64_t begin, int64_t end, int worker)
{
    for (int64_t t = begin; t < end; t++)
        gemm_tile(ctx, t, worker);
}

int cpu_gemm(backend *be, const tensor *a, const tensor *w, const tensor *bias, enum act act,
             tensor *out)
{
    gemm_args g;
    unsigned f32 = DTM(DT_F32);
    TRY(barg_gemm("gemm", a, w, bias, out, DEV_CPU, f32, f32, f32, &g));
    if (act != ACT_NONE && act != ACT_GELU_TANH)
        return err_set(REEL_E_INVALID, "gemm: unknown activation %d", (int)act);
    gemm_job job = {&g, act, cpu_impl_of(be)->pack, pick_micro(), (g.n + NC - 1) / NC};
    int64_t tiles = (g.m + MC - 1) / MC * job.n_tiles;
    /* one tile is MC*NC*K multiply-adds: enough to be worth a thread unless K is tiny */
    cpu_pool_for(cpu_impl_of(be)->pool, tiles, g.k >= 16 ? 1 : 64, gemm_tiles, &job);
    return REEL_OK;
}
