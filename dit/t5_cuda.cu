/* CUDA versions of the umT5 encoder's own ops (CPU reference: t5_cpu.c; test:
 * tests/gpu/test_t5_cuda.c).
 *
 * Attention, for n tokens, H heads of d channels, n_valid unmasked keys (XXL: n 512, H 64,
 * d 64), in three launches on the backend's stream:
 *   1. scores[h] = Q_h K_h^T           cuBLAS strided-batched GEMM over heads, bf16 in, f32 out
 *                                      ([H, n, n_valid]: masked keys are never computed)
 *   2. probs = softmax(scores + bias)  t5_softmax_bias: one warp per (head, query) row, the row
 *                                      in registers (n_valid <= 512: 16 values a lane), the
 *                                      bias read from the layer's [H, 2*512-1] table by offset
 *                                      key - query; fp32 math, bf16 out (as Wan's
 *                                      softmax(...).type_as(attn) rounds it)
 *   3. out_h = probs_h V_h             cuBLAS strided-batched GEMM, bf16 in and out, written
 *                                      straight into head h's columns of out
 * Q, K and V are read in place from the fused [n, 3*H*d] projection (row stride 3*H*d), so no
 * transpose or copy is made. Traffic at XXL: scores 64 MiB written + read, probs 32 MiB written
 * + read, about 0.06 ms of HBM per layer; the GEMMs do 2 x 2 x 64 x 512^2 x 64 = 4.3 GFLOP.
 *
 * Gated GELU: out[r, c] = gelu_tanh(g[r, c]) * g[r, F + c] over the [n, 2F] output of the fused
 * gate/up GEMM, 8 bf16 (16 bytes) a thread where alignment allows; reads 2F and writes F values
 * a row (XXL, 512 tokens: 21 MB in, 10.5 MB out). */
#include "t5_internal.h"

#include "cuda_ops.h"
#include "cuda_vec.cuh"

#include <cublas_v2.h>
#include <stdlib.h>

#define T5_ROW_SLOTS (T5_MAX_TOKENS / 32) /* values of a softmax row per lane */

struct t5_cuda {
    cublasHandle_t blas;
};

extern "C" int t5_cuda_open(backend *be, void **state)
{
    *state = NULL;
    TRY(cuda_enter(be));
    t5_cuda *s = static_cast<t5_cuda *>(calloc(1, sizeof *s));
    if (!s)
        return err_set(REEL_E_NOMEM, "t5_cuda_open: out of memory");
    cublasStatus_t st = cublasCreate(&s->blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        free(s);
        return err_set(REEL_E_DEVICE, "umT5: cublasCreate: %s", cublasGetStatusString(st));
    }
    st = cublasSetStream(s->blas, cuda_stream(be));
    if (st != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(s->blas);
        free(s);
        return err_set(REEL_E_DEVICE, "umT5: cublasSetStream: %s", cublasGetStatusString(st));
    }
    *state = s;
    return REEL_OK;
}

extern "C" void t5_cuda_close(void *state)
{
    t5_cuda *s = static_cast<t5_cuda *>(state);
    if (!s)
        return;
    cublasDestroy(s->blas);
    free(s);
}

/* Row r = h * n + i of scores [H, n, nv]. */
__global__ void t5_softmax_bias(const float *scores, const float *bias, bf16 *probs, int n, int nv,
                                int rows)
{
    int row = (int)((blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32);
    int lane = threadIdx.x % 32;
    if (row >= rows)
        return;
    int h = row / n, i = row % n;
    const float *s = scores + (int64_t)row * nv;
    const float *b = bias + (int64_t)h * T5_BIAS_SPAN + (T5_MAX_TOKENS - 1) - i;
    float v[T5_ROW_SLOTS];
    float mx = -INFINITY;
#pragma unroll
    for (int t = 0; t < T5_ROW_SLOTS; t++) {
        int j = lane + 32 * t;
        v[t] = j < nv ? s[j] + b[j] : -INFINITY;
        mx = fmaxf(mx, v[t]);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0;
#pragma unroll
    for (int t = 0; t < T5_ROW_SLOTS; t++) {
        v[t] = lane + 32 * t < nv ? expf(v[t] - mx) : 0.0f;
        sum += v[t];
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    float inv = 1.0f / sum;
    bf16 *p = probs + (int64_t)row * nv;
#pragma unroll
    for (int t = 0; t < T5_ROW_SLOTS; t++) {
        int j = lane + 32 * t;
        if (j < nv)
            p[j] = __float2bfloat16_rn(v[t] * inv);
    }
}

extern "C" int t5_cuda_attention(void *state, backend *be, const tensor *qkv, const tensor *bias,
                                 int heads, int n_valid, tensor *scores, tensor *probs, tensor *out)
{
    const char *op = "t5_attention";
    t5_cuda *s = static_cast<t5_cuda *>(state);
    row_view q, o, bv;
    TRY(cuda_enter(be));
    TRY(barg_rows(op, "qkv", qkv, DEV_CUDA, DTM(DT_BF16), &q));
    TRY(barg_rows(op, "out", out, DEV_CUDA, DTM(DT_BF16), &o));
    TRY(barg_contig(op, "bias", bias, DEV_CUDA, DTM(DT_F32)));
    TRY(barg_rows(op, "bias", bias, DEV_CUDA, DTM(DT_F32), &bv));
    TRY(barg_contig(op, "scores", scores, DEV_CUDA, DTM(DT_F32)));
    TRY(barg_contig(op, "probs", probs, DEV_CUDA, DTM(DT_BF16)));
    if (heads <= 0 || o.cols % heads || q.cols != 3 * o.cols || q.rows != o.rows)
        return err_set(
            REEL_E_INVALID,
            "%s: qkv [%lld, %lld] and out [%lld, %lld] do not fit %d heads (qkv must be 3x out)",
            op, (long long)q.rows, (long long)q.cols, (long long)o.rows, (long long)o.cols, heads);
    if (bv.rows != heads || bv.cols != T5_BIAS_SPAN)
        return err_set(REEL_E_INVALID, "%s: bias: expected [%d, %d], got [%lld, %lld]", op, heads,
                       T5_BIAS_SPAN, (long long)bv.rows, (long long)bv.cols);
    int n = (int)q.rows;
    if (q.rows > T5_MAX_TOKENS || n_valid < 1 || n_valid > n)
        return err_set(REEL_E_INVALID,
                       "%s: %lld tokens with %d unmasked: need 1 <= unmasked <= tokens <= %d", op,
                       (long long)q.rows, n_valid, T5_MAX_TOKENS);
    int64_t need = (int64_t)heads * n * n_valid;
    if (tensor_numel(scores) < need || tensor_numel(probs) < need)
        return err_set(REEL_E_INVALID, "%s: scratch of %lld/%lld elements, need %lld", op,
                       (long long)tensor_numel(scores), (long long)tensor_numel(probs),
                       (long long)need);
    int d = (int)(o.cols / heads);
    int64_t da = o.cols;
    const bf16 *qp = static_cast<const bf16 *>(q.data);
    float one = 1.0f, zero = 0.0f;
    /* column-major view: scores_h^T [nv, n] = (K_h as stored [d, nv])^T . (Q_h as stored [d, n]) */
    CUBLAS_TRY(cublasGemmStridedBatchedEx(
        s->blas, CUBLAS_OP_T, CUBLAS_OP_N, n_valid, n, d, &one, qp + da, CUDA_R_16BF, (int)q.stride,
        d, qp, CUDA_R_16BF, (int)q.stride, d, &zero, scores->data, CUDA_R_32F, n_valid,
        (int64_t)n * n_valid, heads, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    int rows = heads * n, block = 256;
    unsigned grid = (unsigned)(((int64_t)rows * 32 + block - 1) / block);
    t5_softmax_bias<<<grid, block, 0, cuda_stream(be)>>>(
        static_cast<const float *>(scores->data), static_cast<const float *>(bv.data),
        static_cast<bf16 *>(probs->data), n, n_valid, rows);
    CUDA_TRY_LAUNCH("t5_softmax_bias");
    /* out_h^T [d, n] = (V_h as stored [d, nv]) . (probs_h as stored [nv, n]) */
    CUBLAS_TRY(cublasGemmStridedBatchedEx(
        s->blas, CUBLAS_OP_N, CUBLAS_OP_N, d, n, n_valid, &one, qp + 2 * da, CUDA_R_16BF,
        (int)q.stride, d, probs->data, CUDA_R_16BF, n_valid, (int64_t)n * n_valid, &zero, o.data,
        CUDA_R_16BF, (int)o.stride, d, heads, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return REEL_OK;
}

__device__ __forceinline__ float t5_gelu_tanh(float x)
{
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

template <int V>
__global__ void t5_gated_gelu_kernel(const bf16 *g, int64_t gs, bf16 *out, int64_t os, int64_t rows,
                                     int64_t f)
{
    int64_t per_row = f / V, n = rows * per_row;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / per_row, c = i % per_row * V;
        float gate[V], up[V], o[V];
        load_v<V>(g + r * gs + c, gate);
        load_v<V>(g + r * gs + f + c, up);
#pragma unroll
        for (int k = 0; k < V; k++)
            o[k] = t5_gelu_tanh(gate[k]) * up[k];
        store_v<V>(out + r * os + c, o);
    }
}

extern "C" int t5_cuda_gated_gelu(backend *be, const tensor *g, tensor *out)
{
    const char *op = "t5_gated_gelu";
    row_view gv, ov;
    TRY(cuda_enter(be));
    TRY(barg_rows(op, "g", g, DEV_CUDA, DTM(DT_BF16), &gv));
    TRY(barg_rows(op, "out", out, DEV_CUDA, DTM(DT_BF16), &ov));
    if (gv.cols != 2 * ov.cols || gv.rows != ov.rows)
        return err_set(REEL_E_INVALID,
                       "%s: g [%lld, %lld] must be [rows, 2 x %lld] for out [%lld, %lld]", op,
                       (long long)gv.rows, (long long)gv.cols, (long long)ov.cols,
                       (long long)ov.rows, (long long)ov.cols);
    int64_t f = ov.cols;
    if (gv.rows == 0 || f == 0)
        return REEL_OK;
    const bf16 *gp = static_cast<const bf16 *>(gv.data);
    bf16 *op_ = static_cast<bf16 *>(ov.data);
    int block = 256;
    bool vec = f % 8 == 0 && cuda_vec_ok(gp, gv.stride, 2) && cuda_vec_ok(op_, ov.stride, 2);
    if (vec)
        t5_gated_gelu_kernel<8>
            <<<cuda_grid(be, gv.rows * f / 8, block), block, 0, cuda_stream(be)>>>(
                gp, gv.stride, op_, ov.stride, gv.rows, f);
    else
        t5_gated_gelu_kernel<1><<<cuda_grid(be, gv.rows * f, block), block, 0, cuda_stream(be)>>>(
            gp, gv.stride, op_, ov.stride, gv.rows, f);
    CUDA_TRY_LAUNCH("t5_gated_gelu");
    return REEL_OK;
}
