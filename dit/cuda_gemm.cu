/* GEMM through cuBLASLt: out[M,N] = act(a[M,K] · w[N,K]^T + bias).
 *
 * Row-major out is column-major out^T [N, M] = w · a^T, so cuBLASLt sees A = w (transposed,
 * ld K), B = a (ld = a's row stride), D = out (ld = out's row stride): strided row views (QKV
 * slices) need no copy. bf16 inputs run on the tensor cores with fp32 accumulation and bf16 or
 * f32 output; f32 inputs use CUBLAS_COMPUTE_32F, true fp32 (no TF32), for the time MLP and the
 * head. Bias and GELU go into the epilogue (CUBLASLT_EPILOGUE_BIAS / GELU_BIAS: cuBLASLt's GELU
 * is the tanh form, checked by tests/gpu/test_ops_cuda.c); when the heuristic offers no fused
 * algorithm the product runs plain and cuda_bias_act applies the epilogue.
 *
 * Heuristic results are cached per (M, N, K, strides, dtypes, epilogue, pointer alignments) in
 * CUDA_GEMM_PLANS slots, least recently used evicted, so a DiT forward queries each shape once.
 * Reference: cpu_gemm (dit/cpu_gemm.c); test: tests/gpu/test_ops_cuda.c. */
#include "cuda_ops.h"

#include <stdlib.h>
#include <string.h>

struct gemm_key {
    int64_t m, n, k, lda, ldc;
    int in_dt, out_dt, bias_dt; /* bias_dt -1: no bias */
    int act;
    uint32_t align_a, align_w, align_out, align_bias;
};

struct gemm_plan {
    gemm_key key;
    bool used, fused;
    uint64_t last_use;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t lw, la, lo;
    cublasLtMatmulAlgo_t algo;
};

/* Largest power of two dividing the address, up to the 256 bytes cuBLASLt assumes by default. */
static uint32_t align_of(const void *p)
{
    uintptr_t u = (uintptr_t)p;
    uint32_t a = 256;
    while (a > 1 && u % a)
        a >>= 1;
    return a;
}

static void plan_destroy(gemm_plan *p)
{
    if (p->desc)
        cublasLtMatmulDescDestroy(p->desc);
    if (p->lw)
        cublasLtMatrixLayoutDestroy(p->lw);
    if (p->la)
        cublasLtMatrixLayoutDestroy(p->la);
    if (p->lo)
        cublasLtMatrixLayoutDestroy(p->lo);
    memset(p, 0, sizeof *p);
}

void cuda_gemm_plans_release(cuda_impl *impl)
{
    if (!impl->plans)
        return;
    for (int i = 0; i < CUDA_GEMM_PLANS; i++)
        plan_destroy(&impl->plans[i]);
    free(impl->plans);
    impl->plans = NULL;
}

static cudaDataType_t lt_type(int dt) { return dt == DT_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

/* Asks the heuristic for one algorithm with the descriptor's current epilogue; *found = false
 * when it offers none. With `tolerant`, a rejected parameter is "none" too (the caller then
 * tries without the epilogue). */
static int plan_query(cuda_impl *impl, gemm_plan *p, bool tolerant, bool *found)
{
    cublasLtMatmulPreference_t pref;
    CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = CUDA_GEMM_WORKSPACE;
    const gemm_key *k = &p->key;
    cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    /* cuBLASLt's A is our w, B our a, C and D our out */
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                 &k->align_w, sizeof k->align_w);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                 &k->align_a, sizeof k->align_a);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                 &k->align_out, sizeof k->align_out);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                 &k->align_out, sizeof k->align_out);
    cublasLtMatmulHeuristicResult_t res;
    int count = 0;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic(impl->lt, p->desc, p->lw, p->la, p->lo, p->lo, pref, 1,
                                           &res, &count);
    cublasLtMatmulPreferenceDestroy(pref);
    *found = s == CUBLAS_STATUS_SUCCESS && count > 0;
    if (*found)
        p->algo = res.algo;
    else if (s != CUBLAS_STATUS_SUCCESS && s != CUBLAS_STATUS_NOT_SUPPORTED &&
             !(tolerant && s == CUBLAS_STATUS_INVALID_VALUE))
        return err_set(REEL_E_DEVICE, "gemm: cuBLASLt heuristic for [%lld, %lld] x [%lld, %lld]^T "
                       "(%s in, %s out): %s", (long long)k->m, (long long)k->k, (long long)k->n,
                       (long long)k->k, dtype_name((enum dtype)k->in_dt),
                       dtype_name((enum dtype)k->out_dt), cublasGetStatusString(s));
    return REEL_OK;
}

static int plan_build(cuda_impl *impl, gemm_plan *p, const void *bias)
{
    const gemm_key *k = &p->key;
    cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
    CUBLAS_TRY(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof op_t));
    CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof op_n));
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->lw, lt_type(k->in_dt), k->k, k->n, k->k));
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->la, lt_type(k->in_dt), k->k, k->m, k->lda));
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->lo, lt_type(k->out_dt), k->n, k->m, k->ldc));

    bool found = false;
    if (k->bias_dt >= 0 || k->act != ACT_NONE) {
        cublasLtEpilogue_t epi = k->act == ACT_GELU_TANH
                                     ? (k->bias_dt >= 0 ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                     : CUBLASLT_EPILOGUE_BIAS;
        CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        if (k->bias_dt >= 0) {
            int32_t bt = lt_type(k->bias_dt);
            CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                      &bt, sizeof bt));
            /* the heuristic reads the pointer's alignment */
            CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &bias, sizeof bias));
        }
        TRY(plan_query(impl, p, true, &found));
        p->fused = found;
        if (!found) {
            cublasLtEpilogue_t none = CUBLASLT_EPILOGUE_DEFAULT;
            CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &none,
                                                      sizeof none));
        }
    }
    if (!found)
        TRY(plan_query(impl, p, false, &found));
    if (!found)
        return err_set(REEL_E_DEVICE,
                       "gemm: cuBLASLt offers no algorithm for [%lld, %lld] x [%lld, %lld]^T (%s in, "
                       "%s out, lda %lld, ldc %lld, alignments %u/%u/%u bytes)",
                       (long long)k->m, (long long)k->k, (long long)k->n, (long long)k->k,
                       dtype_name((enum dtype)k->in_dt), dtype_name((enum dtype)k->out_dt),
                       (long long)k->lda, (long long)k->ldc, k->align_a, k->align_w, k->align_out);
    return REEL_OK;
}

/* The cached plan for key, building it (and evicting the least recently used) when missing. */
static int plan_get(cuda_impl *impl, const gemm_key *key, const void *bias, gemm_plan **out)
{
    if (!impl->plans) {
        impl->plans = (gemm_plan *)calloc(CUDA_GEMM_PLANS, sizeof(gemm_plan));
        if (!impl->plans)
            return err_set(REEL_E_NOMEM, "gemm: out of host memory for the plan cache");
    }
    gemm_plan *victim = &impl->plans[0];
    for (int i = 0; i < CUDA_GEMM_PLANS; i++) {
        gemm_plan *p = &impl->plans[i];
        if (p->used && memcmp(&p->key, key, sizeof *key) == 0) {
            p->last_use = ++impl->tick;
            *out = p;
            return REEL_OK;
        }
        if (victim->used && (!p->used || p->last_use < victim->last_use))
            victim = p;
    }
    plan_destroy(victim);
    victim->key = *key;
    int st = plan_build(impl, victim, bias);
    if (st < 0) {
        plan_destroy(victim);
        return st;
    }
    victim->used = true;
    victim->last_use = ++impl->tick;
    *out = victim;
    return REEL_OK;
}

/* The product with a bias (or none) of the output's dtype. */
static int gemm_run(backend *be, const gemm_args *ga, const row_view *bias, enum act act)
{
    const gemm_args &g = *ga;
    cuda_impl *impl = cuda_impl_of(be);
    gemm_key key;
    memset(&key, 0, sizeof key); /* padding takes part in the memcmp */
    key.m = g.m, key.n = g.n, key.k = g.k;
    key.lda = g.m > 1 ? g.a.stride : g.k;
    key.ldc = g.m > 1 ? g.out.stride : g.n;
    key.in_dt = g.a.dtype, key.out_dt = g.out.dtype;
    key.bias_dt = bias->data ? (int)bias->dtype : -1;
    key.act = act;
    key.align_a = align_of(g.a.data), key.align_w = align_of(g.w.data);
    key.align_out = align_of(g.out.data), key.align_bias = bias->data ? align_of(bias->data) : 0;
    gemm_plan *p;
    TRY(plan_get(impl, &key, bias->data, &p));

    if (p->fused && bias->data)
        CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                  &bias->data, sizeof bias->data));
    float alpha = 1.0f, beta = 0.0f;
    CUBLAS_TRY(cublasLtMatmul(impl->lt, p->desc, &alpha, g.w.data, p->lw, g.a.data, p->la, &beta,
                              g.out.data, p->lo, g.out.data, p->lo, &p->algo, impl->workspace,
                              CUDA_GEMM_WORKSPACE, impl->stream));
    if (!p->fused && (bias->data || act != ACT_NONE))
        TRY(cuda_bias_act(be, &g.out, bias, act));
    return REEL_OK;
}

int cuda_gemm(backend *be, const tensor *a, const tensor *w, const tensor *bias, enum act act,
              tensor *out)
{
    gemm_args g;
    TRY(barg_gemm("gemm", a, w, bias, out, DEV_CUDA, CUDA_FLOATS, CUDA_FLOATS, CUDA_FLOATS, &g));
    if (act != ACT_NONE && act != ACT_GELU_TANH)
        return err_set(REEL_E_INVALID, "gemm: unknown activation %d", (int)act);
    if (a->dtype == DT_F32 && (out->dtype != DT_F32 || (bias && bias->dtype != DT_F32)))
        return err_set(REEL_E_INVALID, "gemm: f32 inputs take an f32 bias and give f32 out, got "
                       "bias %s and out %s", bias ? dtype_name(bias->dtype) : "none",
                       dtype_name(out->dtype));
    if (g.m == 0 || g.n == 0)
        return REEL_OK;
    TRY(cuda_enter(be));

    /* cuBLASLt fuses a bias of the output's dtype only (others: INVALID_VALUE), so a bias of
     * another dtype is converted first. PyTorch autocast rounds a Linear's bias to bf16 as
     * well, so a bf16 output sees the bias the reference sees. */
    row_view bv = g.bias;
    void *converted = NULL;
    if (bv.data && bv.dtype != out->dtype) {
        TRY(cuda_scratch_alloc(be, (size_t)g.n * dtype_size(out->dtype), &converted, "gemm bias"));
        tensor from = tensor_1d(bv.data, bv.dtype, DEV_CUDA, g.n);
        tensor to = tensor_1d(converted, out->dtype, DEV_CUDA, g.n);
        bv.data = converted;
        bv.dtype = out->dtype;
        int st = cuda_copy(be, &from, &to);
        if (st == REEL_OK)
            st = gemm_run(be, &g, &bv, act);
        int fst = cuda_scratch_free(be, converted);
        return st < 0 ? st : fst;
    }
    return gemm_run(be, &g, &bv, act);
}
