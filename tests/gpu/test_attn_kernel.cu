/* The block-sparse flash attention kernels (attention/attn_flash.cu, mma.sync, and
 * attention/attn_flash_sm90a.cu, wgmma, each forced in turn), cuDNN SDPA and the
 * attention plugins on CUDA, against the CPU reference (attention/attn_ref.c) on the same bf16
 * inputs: token counts that are not multiples of the block, 1 to 40 heads, head_dim 128 and
 * 64, q/k/v as slices of a fused QKV buffer, cross-attention, random block masks (with empty
 * rows), and the radial and dense plugins end to end. Outputs and LSE are poisoned with NaN
 * before each run. Tolerance: 2e-2 relative L2 on the output (bf16 inputs, P rounded to bf16
 * for the second product, bf16 output), 1e-2 absolute on the LSE (fp32 throughout). */
extern "C" {
#include "check.h"
}
#include "attention/attn.h"
#include "attention/attn_flash.h"
#include "attention/attn_mask.h"
#include "attention/attn_ref.h"
#include "dit/error.h"
#include "dit/numeric.h"

#include <cuda_runtime.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL_OUT 2e-2
#define TOL_LSE 1e-2

#define CUDA_OK(call)                                                                      \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        if (e_ != cudaSuccess) {                                                           \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                  \
                    cudaGetErrorString(e_));                                               \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* One problem: host inputs (bf16-rounded floats) and their device copies. */
typedef struct problem {
    int64_t lq, lk, q_stride, kv_stride;
    int64_t copies; /* the last key's copies (attn_flash_args.last_key_copies) */
    int heads, dim;
    float *hq, *hk, *hv; /* host, f32 holding bf16 values; q rows q_stride, k/v kv_stride apart */
    uint16_t *dq, *dk, *dv, *dout;
    float *dlse;
} problem;

static void *dev_alloc(size_t bytes)
{
    void *p;
    CUDA_OK(cudaMalloc(&p, bytes));
    return p;
}

static void upload_bf16(uint16_t *dev, const float *host, size_t n)
{
    uint16_t *tmp = (uint16_t *)malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        tmp[i] = f32_to_bf16(host[i]);
    CUDA_OK(cudaMemcpy(dev, tmp, n * 2, cudaMemcpyHostToDevice));
    free(tmp);
}

static void fill_bf16_values(float *x, size_t n, float stddev)
{
    check_fill_normal(x, n, stddev);
    for (size_t i = 0; i < n; i++)
        x[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

/* fused: q, k, v are thirds of one [L, 3*H*D] buffer (self-attention only) */
static problem make_problem(int64_t lq, int64_t lk, int heads, int dim, int fused, float stddev)
{
    problem p;
    memset(&p, 0, sizeof p);
    p.lq = lq, p.lk = lk, p.heads = heads, p.dim = dim;
    int64_t row = (int64_t)heads * dim;
    if (fused && lq != lk) {
        fprintf(stderr, "make_problem: a fused QKV buffer needs lq == lk (%lld, %lld)\n",
                (long long)lq, (long long)lk);
        exit(1);
    }
    if (fused) {
        p.q_stride = p.kv_stride = 3 * row;
        size_t n = (size_t)(lq * 3 * row);
        float *all = (float *)malloc(n * sizeof(float));
        fill_bf16_values(all, n, stddev);
        p.hq = all, p.hk = all + row, p.hv = all + 2 * row;
        uint16_t *d = (uint16_t *)dev_alloc(n * 2);
        upload_bf16(d, all, n);
        p.dq = d, p.dk = d + row, p.dv = d + 2 * row;
    } else {
        p.q_stride = p.kv_stride = row;
        p.hq = (float *)malloc(sizeof(float) * lq * row);
        p.hk = (float *)malloc(sizeof(float) * lk * row);
        p.hv = (float *)malloc(sizeof(float) * lk * row);
        fill_bf16_values(p.hq, lq * row, stddev);
        fill_bf16_values(p.hk, lk * row, stddev);
        fill_bf16_values(p.hv, lk * row, 1.0f);
        p.dq = (uint16_t *)dev_alloc(lq * row * 2);
        p.dk = (uint16_t *)dev_alloc(lk * row * 2);
        p.dv = (uint16_t *)dev_alloc(lk * row * 2);
        upload_bf16(p.dq, p.hq, lq * row);
        upload_bf16(p.dk, p.hk, lk * row);
        upload_bf16(p.dv, p.hv, lk * row);
    }
    p.dout = (uint16_t *)dev_alloc(lq * row * 2);
    p.dlse = (float *)dev_alloc(sizeof(float) * heads * lq);
    return p;
}

static void free_problem(problem *p)
{
    if (p->q_stride == 3 * (int64_t)p->heads * p->dim) {
        free(p->hq);
        cudaFree(p->dq);
    } else {
        free(p->hq), free(p->hk), free(p->hv);
        cudaFree(p->dq), cudaFree(p->dk), cudaFree(p->dv);
    }
    cudaFree(p->dout);
    cudaFree(p->dlse);
}

static void poison(problem *p)
{
    CUDA_OK(cudaMemset(p->dout, 0xff, p->lq * p->heads * p->dim * 2)); /* bf16 0xffff: NaN */
    CUDA_OK(cudaMemset(p->dlse, 0xff, sizeof(float) * p->heads * p->lq)); /* f32 NaN */
}

/* Compares the device result with the reference under mask; prints the table row. */
static void compare(problem *p, const attn_block_mask *mask, const char *op, float ms)
{
    int64_t n = p->lq * p->heads * p->dim;
    float *ref = (float *)malloc(sizeof(float) * n), *rlse = (float *)malloc(sizeof(float) * p->heads * p->lq);
    attn_ref_args r;
    memset(&r, 0, sizeof r);
    r.q = p->hq, r.k = p->hk, r.v = p->hv, r.out = ref, r.lse = rlse;
    r.q_tokens = p->lq, r.kv_tokens = p->lk, r.q_stride = p->q_stride, r.kv_stride = p->kv_stride;
    r.heads = p->heads, r.head_dim = p->dim, r.scale = 1.0f / sqrtf((float)p->dim), r.mask = mask;
    r.last_key_copies = p->copies;
    CHECK_OK(attn_ref_forward(&r));

    uint16_t *raw = (uint16_t *)malloc(n * 2);
    float *got = (float *)malloc(sizeof(float) * n), *glse = (float *)malloc(sizeof(float) * p->heads * p->lq);
    CUDA_OK(cudaMemcpy(raw, p->dout, n * 2, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(glse, p->dlse, sizeof(float) * p->heads * p->lq, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < n; i++)
        got[i] = bf16_to_f32(raw[i]);
    double e = check_rel_l2(got, ref, n), lse_err = 0;
    for (int64_t i = 0; i < p->heads * p->lq; i++) {
        double d = isinf(rlse[i]) ? (isinf(glse[i]) && glse[i] < 0 ? 0 : INFINITY)
                                  : fabs((double)glse[i] - rlse[i]);
        lse_err = isnan(d) || d > lse_err ? (isnan(d) ? INFINITY : d) : lse_err;
    }
    char shape[96];
    char copies[32] = "";
    if (p->copies > 1)
        snprintf(copies, sizeof copies, " last x%lld", (long long)p->copies);
    snprintf(shape, sizeof shape, "%dx%lldx%lld d%d%s%s", p->heads, (long long)p->lq,
             (long long)p->lk, p->dim, p->q_stride > (int64_t)p->heads * p->dim ? " strided" : "",
             copies);
    printf("| %-26s | %-28s | %.2e | %.0e | %8.3f ms | lse err %.1e\n", op, shape, e, TOL_OUT,
           ms, lse_err);
    CHECK(e < TOL_OUT, "%s %s: rel_l2 %g", op, shape, e);
    CHECK(lse_err < TOL_LSE, "%s %s: lse error %g", op, shape, lse_err);
    free(ref), free(rlse), free(raw), free(got), free(glse);
}

static attn_flash_args flash_args(problem *p, const int32_t *rows, const int32_t *cols)
{
    attn_flash_args a;
    memset(&a, 0, sizeof a);
    a.q = p->dq, a.k = p->dk, a.v = p->dv, a.out = p->dout, a.lse = p->dlse;
    a.q_tokens = p->lq, a.kv_tokens = p->lk, a.q_stride = p->q_stride, a.kv_stride = p->kv_stride;
    a.heads = p->heads, a.head_dim = p->dim, a.scale = 1.0f / sqrtf((float)p->dim);
    a.row_start = rows, a.cols = cols;
    a.last_key_copies = p->copies;
    return a;
}

static const char *const kernel_names[] = {"auto", "mma", "wgmma"};

/* Runs one kernel on poisoned outputs; returns 0 when it ran, 1 when it does not exist here
 * (the wgmma kernel off sm_90, or for head_dim 64). */
static int run_flash_timed(problem *p, attn_flash_args *a, float *ms)
{
    poison(p);
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    CUDA_OK(cudaEventRecord(e0, 0));
    int st = attn_flash_forward(a);
    CUDA_OK(cudaEventRecord(e1, 0));
    CUDA_OK(cudaEventSynchronize(e1));
    CUDA_OK(cudaEventElapsedTime(ms, e0, e1));
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    if (st == REEL_E_UNSUPPORTED && a->kernel == ATTN_FLASH_WGMMA) {
        printf("| flash %-20s | not run: %s\n", kernel_names[a->kernel], err_msg());
        return 1;
    }
    CHECK(st == REEL_OK, "attn_flash_forward (%s): %s", kernel_names[a->kernel], err_msg());
    return st != REEL_OK;
}

static void test_dense(int64_t lq, int64_t lk, int heads, int dim, int fused, float stddev,
                       int64_t copies = 0)
{
    problem p = make_problem(lq, lk, heads, dim, fused, stddev);
    p.copies = copies;
    for (int kernel = ATTN_FLASH_MMA; kernel <= ATTN_FLASH_WGMMA; kernel++) {
        attn_flash_args a = flash_args(&p, NULL, NULL);
        a.kernel = kernel;
        float ms;
        char op[64];
        snprintf(op, sizeof op, "flash %s dense", kernel_names[kernel]);
        if (run_flash_timed(&p, &a, &ms) == 0)
            compare(&p, NULL, op, ms);
    }
    free_problem(&p);
}

/* random block mask of the given density; query block 1 (when present) gets no key at all */
static void test_sparse(int64_t l, int heads, double density)
{
    problem p = make_problem(l, l, heads, 128, 0, 1.0f);
    attn_block_mask m;
    CHECK_OK(attn_block_mask_init(&m, l, l));
    for (int i = 0; i < m.q_blocks * m.kv_blocks; i++)
        m.keep[i] = check_rand_uniform(0, 1) < density;
    if (m.q_blocks > 1)
        memset(m.keep + m.kv_blocks, 0, m.kv_blocks);
    m.keep[(size_t)(m.q_blocks - 1) * m.kv_blocks + m.kv_blocks - 1] = 1; /* the ragged corner */
    CHECK_OK(attn_block_mask_finish(&m));
    int32_t *rows, *cols;
    rows = (int32_t *)dev_alloc(sizeof(int32_t) * (m.q_blocks + 1));
    cols = (int32_t *)dev_alloc(sizeof(int32_t) * (m.nnz ? m.nnz : 1));
    CUDA_OK(cudaMemcpy(rows, m.row_start, sizeof(int32_t) * (m.q_blocks + 1), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(cols, m.cols, sizeof(int32_t) * m.nnz, cudaMemcpyHostToDevice));
    for (int kernel = ATTN_FLASH_MMA; kernel <= ATTN_FLASH_WGMMA; kernel++) {
        attn_flash_args a = flash_args(&p, rows, cols);
        a.kernel = kernel;
        float ms;
        char op[64];
        snprintf(op, sizeof op, "flash %s sparse %.2f", kernel_names[kernel],
                 attn_block_mask_density(&m));
        if (run_flash_timed(&p, &a, &ms) == 0)
            compare(&p, &m, op, ms);
    }
    cudaFree(rows), cudaFree(cols);
    attn_block_mask_release(&m);
    free_problem(&p);
}

/* A plugin through attn_instance on CUDA against the same plugin on the CPU. */
static void test_plugin(const char *spec, int f, int h, int w, int heads, int step, int layer)
{
    int64_t l = (int64_t)f * h * w;
    problem p = make_problem(l, l, heads, 128, 1, 1.0f);
    reel_attn_config cfg = attn_config_default();
    cfg.heads = heads, cfg.head_dim = 128, cfg.model_dim = heads * 128;
    cfg.grid_f = f, cfg.grid_h = h, cfg.grid_w = w;
    cfg.num_steps = 50, cfg.num_layers = 30;
    attn_instance *cpu, *gpu;
    CHECK_OK(attn_instance_create(spec, &cfg, &cpu));
    cfg.device = REEL_ATTN_CUDA, cfg.dtype = REEL_ATTN_BF16;
    CHECK_OK(attn_instance_create(spec, &cfg, &gpu));
    int64_t n = l * heads * 128;
    float *ref = (float *)malloc(sizeof(float) * n), *rlse = (float *)malloc(sizeof(float) * heads * l);
    reel_attn_args a = attn_args_default();
    a.q = p.hq, a.k = p.hk, a.v = p.hv, a.out = ref, a.lse = rlse;
    a.q_tokens = a.kv_tokens = l, a.q_row_stride = a.kv_row_stride = p.q_stride;
    a.scale = 1.0f / sqrtf(128.f), a.step = step, a.layer = layer;
    CHECK_OK(attn_instance_forward(cpu, &a));
    a.q = p.dq, a.k = p.dk, a.v = p.dv, a.out = p.dout, a.lse = p.dlse;
    CHECK_OK(attn_instance_forward(gpu, &a)); /* first call: a dense plugin times its kernels */
    poison(&p);
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    CUDA_OK(cudaEventRecord(e0, 0));
    CHECK_OK(attn_instance_forward(gpu, &a));
    CUDA_OK(cudaEventRecord(e1, 0));
    CUDA_OK(cudaEventSynchronize(e1));
    float ms;
    CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));

    uint16_t *raw = (uint16_t *)malloc(n * 2);
    float *got = (float *)malloc(sizeof(float) * n), *glse = (float *)malloc(sizeof(float) * heads * l);
    CUDA_OK(cudaMemcpy(raw, p.dout, n * 2, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(glse, p.dlse, sizeof(float) * heads * l, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < n; i++)
        got[i] = bf16_to_f32(raw[i]);
    double e = check_rel_l2(got, ref, n), lse_err = 0;
    for (int64_t i = 0; i < heads * l; i++)
        lse_err = fmax(lse_err, isnan(glse[i]) ? INFINITY : fabs((double)glse[i] - rlse[i]));
    char op[64], shape[64];
    snprintf(op, sizeof op, "plugin %s s%d l%d", spec, step, layer);
    snprintf(shape, sizeof shape, "%dx(%dx%dx%d) d128 fused", heads, f, h, w);
    printf("| %-26s | %-28s | %.2e | %.0e | %8.3f ms | lse err %.1e\n", op, shape, e, TOL_OUT, ms,
           lse_err);
    CHECK(e < TOL_OUT, "%s: rel_l2 %g", op, e);
    CHECK(lse_err < TOL_LSE, "%s: lse error %g", op, lse_err);
    attn_instance_free(cpu);
    attn_instance_free(gpu);
    free(ref), free(rlse), free(raw), free(got), free(glse);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    free_problem(&p);
}

/* Cross-attention over a compacted context through the dense plugin on CUDA (spec picks the
 * kernel; cuDNN has no weight for the repeated key, so the flash kernel runs) against the CPU
 * reference over the same rows and copies. */
static void test_plugin_copies(const char *spec)
{
    problem p = make_problem(900, 40, 4, 128, 0, 1.0f);
    p.copies = 473;
    reel_attn_config cfg = attn_config_default();
    cfg.heads = 4, cfg.head_dim = 128, cfg.model_dim = 512;
    cfg.grid_f = 1, cfg.grid_h = 30, cfg.grid_w = 30;
    cfg.device = REEL_ATTN_CUDA, cfg.dtype = REEL_ATTN_BF16;
    attn_instance *gpu;
    CHECK_OK(attn_instance_create(spec, &cfg, &gpu));
    reel_attn_args a = attn_args_default();
    a.q = p.dq, a.k = p.dk, a.v = p.dv, a.out = p.dout, a.lse = p.dlse;
    a.q_tokens = p.lq, a.kv_tokens = p.lk, a.q_row_stride = a.kv_row_stride = p.q_stride;
    a.scale = 1.0f / sqrtf(128.f), a.last_key_copies = p.copies;
    poison(&p);
    CHECK_OK(attn_instance_forward(gpu, &a));
    CUDA_OK(cudaDeviceSynchronize());
    char op[64];
    snprintf(op, sizeof op, "plugin %s cross", spec);
    compare(&p, NULL, op, 0.f);
    attn_instance_free(gpu);
    free_problem(&p);
}

static void test_refusals(void)
{
    problem p = make_problem(130, 130, 1, 128, 0, 1.0f);
    attn_flash_args a = flash_args(&p, NULL, NULL);
    a.head_dim = 96;
    CHECK(attn_flash_forward(&a) == REEL_E_UNSUPPORTED, "head_dim 96");
    a = flash_args(&p, NULL, NULL);
    a.q_stride = 132;
    CHECK(attn_flash_forward(&a) == REEL_E_UNSUPPORTED, "stride not a multiple of 8");
    a = flash_args(&p, NULL, NULL);
    a.q = (const char *)a.q + 2;
    CHECK(attn_flash_forward(&a) == REEL_E_UNSUPPORTED, "misaligned q");
    a = flash_args(&p, NULL, NULL);
    a.head_dim = 64;
    a.kernel = ATTN_FLASH_WGMMA;
    CHECK(attn_flash_forward(&a) == REEL_E_UNSUPPORTED, "wgmma kernel with head_dim 64");
    free_problem(&p);
}

int main(void)
{
    check_seed("gpu_test_attn_kernel");
    backend *be = check_cuda_backend();
    if (!be)
        return 77;
    backend_free(be);
    printf("| op                         | shape                        | rel_l2   | tol   |"
           "    time     |\n");
    test_dense(300, 300, 1, 128, 0, 1.0f);
    test_dense(1000, 1000, 3, 128, 1, 1.0f);
    test_dense(1560 * 2 + 17, 1560 * 2 + 17, 2, 128, 1, 1.0f);
    test_dense(777, 777, 40, 128, 0, 1.0f);
    test_dense(1000, 512, 12, 128, 0, 1.0f); /* cross-attention shape */
    test_dense(45, 1300, 5, 128, 0, 1.0f);
    test_dense(352, 352, 3, 128, 1, 1.0f); /* keys a whole number of the dense key tile (176) */
    test_dense(130, 100, 2, 128, 0, 1.0f); /* fewer keys than one dense key tile */
    test_dense(1000, 100, 40, 128, 0, 1.0f); /* one key tile a unit, CTAs loop over units */
    test_dense(2100, 530, 24, 128, 0, 4.0f);  /* looping CTAs, ragged tiles, peaky softmax */
    /* compacted text contexts: the last key stands for the padding rows (a prompt of 29, 176
     * and 175 rows out of 512; the last key in a tile of its own, at a tile's end, in a
     * ragged tile), and cuDNN (which has no such weight) handing over to the flash kernel */
    test_dense(1000, 30, 12, 128, 0, 1.0f, 483);
    test_dense(2100, 177, 24, 128, 0, 1.0f, 336);
    test_dense(700, 176, 4, 128, 0, 4.0f, 337);
    test_dense(300, 60, 2, 64, 0, 1.0f, 453);
    test_dense(500, 500, 4, 64, 1, 1.0f);
    test_dense(1000, 1000, 2, 128, 0, 4.0f); /* peaky softmax: large score range */
    test_sparse(1000, 3, 0.5);
    test_sparse(1560 * 2 + 17, 2, 0.3);
    test_sparse(2000, 7, 0.9);
    test_plugin("radial", 8, 16, 20, 2, 30, 5);                /* sparse step */
    test_plugin("radial:decay_factor=1", 6, 12, 25, 3, 40, 2); /* frames straddle blocks */
    test_plugin("radial", 8, 16, 20, 2, 0, 5);                 /* dense step */
    test_plugin("dense:kernel=flash", 5, 10, 21, 4, 0, 0);
    test_plugin("dense:kernel=auto", 5, 10, 21, 4, 0, 0);
#ifdef REEL_HAVE_CUDNN
    test_plugin("dense:kernel=cudnn", 5, 10, 21, 4, 0, 0);
    test_plugin_copies("dense:kernel=cudnn");
#endif
    test_plugin_copies("dense");
    test_refusals();
    CUDA_OK(cudaDeviceSynchronize());
    return check_done();
}
