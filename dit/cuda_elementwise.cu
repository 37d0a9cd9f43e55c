/* Element-wise row ops on CUDA: AdaLN modulation x*(1+scale)+shift, gated residual x += y*gate,
 * GELU (tanh form), SiLU, and the bias/GELU epilogue for GEMMs cuBLASLt cannot fuse; and the
 * sampler's linear combination of latents in double (lincomb, at the end of the file).
 *
 * The row ops are one kernel, specialised per op and storage: a grid-stride loop over chunks of
 * V values of a row view (V = 8: 16-byte bf16 or 2 x 16-byte f32 accesses; V = 1 when alignment
 * forbids), modulation vectors [D] or [G, D] read per chunk (they stay in L1/L2). Memory-bound:
 * each op reads its inputs and writes its output once, e.g. modulate on [32760, 1536] f32 moves
 * 2 x 201 MB. CPU reference: dit/cpu_elementwise.c, dit/cpu_gemm.c (epilogue);
 * test: tests/gpu/test_ops_cuda.c. */
#include "cuda_ops.h"
#include "cuda_vec.cuh"

enum ew_op { EW_MODULATE, EW_ADD_GATED, EW_GELU, EW_SILU, EW_BIAS_ACT };

struct ew_params {
    const void *x; /* the input; for add_gated the branch y, for bias_act out itself */
    int64_t x_stride;
    void *out;     /* for add_gated the residual stream, read and written */
    int64_t out_stride;
    aux_vec a, b;  /* modulate: shift, scale; add_gated: gate; bias_act: bias */
    int64_t rows, cols;
    int act;       /* bias_act */
};

__device__ __forceinline__ float gelu_tanh_f(float x)
{
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

template <int OP, int V, typename TX, typename TO> __global__ void ew_kernel(ew_params p)
{
    int64_t per_row = p.cols / V, n = p.rows * per_row;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / per_row, c = i % per_row * V;
        float x[V], o[V], a[V], b[V];
        load_v<V>(static_cast<const TX *>(p.x) + r * p.x_stride + c, x);
        TO *out = static_cast<TO *>(p.out) + r * p.out_stride + c;
        if constexpr (OP == EW_MODULATE) {
            if (p.a.p)
                load_aux<V>(p.a, r, c, a);
            if (p.b.p)
                load_aux<V>(p.b, r, c, b);
#pragma unroll
            for (int k = 0; k < V; k++)
                o[k] = x[k] * (p.b.p ? 1.0f + b[k] : 1.0f) + (p.a.p ? a[k] : 0.0f);
        } else if constexpr (OP == EW_ADD_GATED) {
            load_v<V>(out, o);
            if (p.a.p)
                load_aux<V>(p.a, r, c, a);
#pragma unroll
            for (int k = 0; k < V; k++)
                o[k] += p.a.p ? x[k] * a[k] : x[k];
        } else if constexpr (OP == EW_GELU) {
#pragma unroll
            for (int k = 0; k < V; k++)
                o[k] = gelu_tanh_f(x[k]);
        } else if constexpr (OP == EW_SILU) {
#pragma unroll
            for (int k = 0; k < V; k++)
                o[k] = x[k] / (1.0f + expf(-x[k]));
        } else {
            if (p.a.p)
                load_aux<V>(p.a, 0, c, a);
#pragma unroll
            for (int k = 0; k < V; k++) {
                float v = p.a.p ? x[k] + a[k] : x[k];
                o[k] = p.act == ACT_GELU_TANH ? gelu_tanh_f(v) : v;
            }
        }
        store_v<V>(out, o);
    }
}

template <int OP>
static int ew_launch(backend *be, const char *name, const ew_params &p, enum dtype tx,
                     enum dtype to, bool vec)
{
    if (p.rows == 0 || p.cols == 0)
        return REEL_OK;
    TRY(cuda_enter(be));
    cudaStream_t s = cuda_stream(be);
    return dispatch_xo(tx, to, [&](auto xt, auto ot) -> int {
        using TX = decltype(xt);
        using TO = decltype(ot);
        if (vec)
            ew_kernel<OP, 8, TX, TO><<<cuda_grid(be, p.rows * p.cols / 8, 256), 256, 0, s>>>(p);
        else
            ew_kernel<OP, 1, TX, TO><<<cuda_grid(be, p.rows * p.cols, 256), 256, 0, s>>>(p);
        CUDA_TRY_LAUNCH(name);
        return REEL_OK;
    });
}

/* The 8-wide path needs the width, both row strides and every vector 16-byte aligned. */
static bool vec_ok(const row_view &x, const row_view &out, const row_view *a, const row_view *b)
{
    bool ok = x.cols % 8 == 0 && cuda_vec_ok(x.data, x.stride, dtype_size(x.dtype)) &&
              cuda_vec_ok(out.data, out.stride, dtype_size(out.dtype));
    for (const row_view *v : {a, b})
        if (v && v->data)
            ok = ok && cuda_vec_ok(v->data, v->stride, dtype_size(v->dtype));
    return ok;
}

int cuda_modulate(backend *be, const tensor *x, const tensor *shift, const tensor *scale,
                  tensor *out)
{
    const char *op = "modulate";
    row_view xv, ov, sh, sc;
    TRY(barg_rows(op, "x", x, DEV_CUDA, CUDA_FLOATS, &xv));
    TRY(barg_rows_like(op, "out", out, x, DEV_CUDA, CUDA_FLOATS, &ov));
    TRY(barg_mod(op, "shift", shift, xv.rows, xv.cols, DEV_CUDA, CUDA_FLOATS, &sh));
    TRY(barg_mod(op, "scale", scale, xv.rows, xv.cols, DEV_CUDA, CUDA_FLOATS, &sc));
    ew_params p = {xv.data, xv.stride, ov.data, ov.stride, make_aux(sh, xv.rows),
                   make_aux(sc, xv.rows), xv.rows, xv.cols, ACT_NONE};
    return ew_launch<EW_MODULATE>(be, op, p, xv.dtype, ov.dtype, vec_ok(xv, ov, &sh, &sc));
}

int cuda_add_gated(backend *be, tensor *x, const tensor *y, const tensor *gate)
{
    const char *op = "add_gated";
    row_view xv, yv, gv;
    TRY(barg_rows(op, "x", x, DEV_CUDA, DTM(DT_F32), &xv));
    TRY(barg_rows_like(op, "y", y, x, DEV_CUDA, CUDA_FLOATS, &yv));
    TRY(barg_mod(op, "gate", gate, xv.rows, xv.cols, DEV_CUDA, CUDA_FLOATS, &gv));
    aux_vec none = {};
    ew_params p = {yv.data, yv.stride, xv.data, xv.stride, make_aux(gv, xv.rows), none,
                   xv.rows, xv.cols, ACT_NONE};
    return ew_launch<EW_ADD_GATED>(be, op, p, yv.dtype, DT_F32, vec_ok(yv, xv, &gv, NULL));
}

template <int OP> static int unary(backend *be, const char *op, const tensor *x, tensor *out)
{
    row_view xv, ov;
    TRY(barg_rows(op, "x", x, DEV_CUDA, CUDA_FLOATS, &xv));
    TRY(barg_rows_like(op, "out", out, x, DEV_CUDA, CUDA_FLOATS, &ov));
    aux_vec none = {};
    ew_params p = {xv.data, xv.stride, ov.data, ov.stride, none, none, xv.rows, xv.cols, ACT_NONE};
    return ew_launch<OP>(be, op, p, xv.dtype, ov.dtype, vec_ok(xv, ov, NULL, NULL));
}

int cuda_gelu_tanh(backend *be, const tensor *x, tensor *out)
{
    return unary<EW_GELU>(be, "gelu_tanh", x, out);
}

int cuda_silu(backend *be, const tensor *x, tensor *out) { return unary<EW_SILU>(be, "silu", x, out); }

int cuda_bias_act(backend *be, const row_view *out, const row_view *bias, enum act act)
{
    aux_vec none = {};
    ew_params p = {out->data, out->stride, out->data, out->stride,
                   bias->data ? make_aux(*bias, out->rows) : none, none, out->rows, out->cols, act};
    return ew_launch<EW_BIAS_ACT>(be, "gemm epilogue", p, out->dtype, out->dtype,
                                  vec_ok(*out, *out, bias, NULL));
}

/* lincomb: out[i] = (float)(c_0 x_0[i] + ... + c_{N-1} x_{N-1}[i]) in double. __dmul_rn and
 * __dadd_rn are never contracted into an FMA, so these are the operations of cpu_lincomb in its
 * order and the two backends agree bit for bit (IEEE double, round to nearest, no flush to
 * zero; f32 -> f64 is exact). Grid-stride, one element per thread per step: memory-bound,
 * reading 4 bytes of each input and writing 4 per element (a 2.1M-value latent with four inputs
 * moves 42 MB); the double arithmetic is far below the FP64 rate of sm_80/sm_90. out may be one
 * of the inputs: each thread reads its element of every input before it writes it. */
struct lincomb_params {
    const float *in[BACKEND_LINCOMB_MAX];
    double coef[BACKEND_LINCOMB_MAX];
    float *out;
    int64_t count;
};

template <int N> __global__ void lincomb_kernel(lincomb_params p)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.count;
         i += (int64_t)gridDim.x * blockDim.x) {
        double acc = __dmul_rn(p.coef[0], (double)p.in[0][i]);
#pragma unroll
        for (int k = 1; k < N; k++)
            acc = __dadd_rn(acc, __dmul_rn(p.coef[k], (double)p.in[k][i]));
        p.out[i] = __double2float_rn(acc);
    }
}

int cuda_lincomb(backend *be, int n, const tensor *const *in, const double *coef, tensor *out)
{
    TRY(barg_lincomb("lincomb", n, in, coef, out, DEV_CUDA));
    lincomb_params p = {};
    for (int k = 0; k < n; k++) {
        p.in[k] = static_cast<const float *>(in[k]->data);
        p.coef[k] = coef[k];
    }
    p.out = static_cast<float *>(out->data);
    p.count = tensor_numel(out);
    if (p.count == 0)
        return REEL_OK;
    TRY(cuda_enter(be));
    unsigned grid = cuda_grid(be, p.count, 256);
    cudaStream_t s = cuda_stream(be);
    if (n == 1)
        lincomb_kernel<1><<<grid, 256, 0, s>>>(p);
    else if (n == 2)
        lincomb_kernel<2><<<grid, 256, 0, s>>>(p);
    else if (n == 3)
        lincomb_kernel<3><<<grid, 256, 0, s>>>(p);
    else
        lincomb_kernel<4><<<grid, 256, 0, s>>>(p);
    CUDA_TRY_LAUNCH("lincomb_kernel");
    return REEL_OK;
}
