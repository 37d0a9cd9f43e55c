/* Row reductions on CUDA: LayerNorm (+ affine, + AdaLN modulation), RMSNorm (+ 3D RoPE),
 * softmax; statistics and math in fp32 whatever the storage.
 *
 * Launch: one block per row (32..256 threads), each thread walking the row in chunks of 8
 * values (16-byte accesses; 1 or 2 values when alignment forbids), block reductions by warp
 * shuffles. LayerNorm takes the mean, then the centred variance (two passes: no cancellation
 * when |mean| >> std, as in the residual stream), then writes; the later passes re-read the row
 * from L1/L2, so DRAM sees one read and one write: [32760, 1536] f32 -> bf16 moves 201 + 101 MB.
 * RMSNorm with bf16 input rounds the normalised value to bf16 before the gain, as the Wan
 * reference does (WanRMSNorm: self._norm(x.float()).type_as(x) * self.weight); the CPU
 * reference stays fp32, the difference is inside the bf16 tolerance.
 * CPU reference: dit/cpu_norm.c; test: tests/gpu/test_ops_cuda.c. */
#include "cuda_ops.h"
#include "cuda_rope.cuh"

struct norm_params {
    const void *x;
    int64_t xs;
    void *out;
    int64_t os;
    int64_t rows, cols;
    float eps;
    aux_vec weight, bias, shift, scale; /* layer_norm; rms_norm uses weight */
    rope_ctx rope;                      /* rms_norm with RoPE */
};

template <int V, typename TX, typename TO> __global__ void layer_norm_kernel(norm_params p)
{
    __shared__ float shm[32];
    int64_t r = blockIdx.x;
    const TX *x = static_cast<const TX *>(p.x) + r * p.xs;
    TO *out = static_cast<TO *>(p.out) + r * p.os;
    int64_t step = (int64_t)blockDim.x * V;
    float v[V], sum = 0.0f;
    for (int64_t c = threadIdx.x * V; c < p.cols; c += step) {
        load_v<V>(x + c, v);
#pragma unroll
        for (int k = 0; k < V; k++)
            sum += v[k];
    }
    float mean = block_reduce<false>(sum, shm) / (float)p.cols;
    float sq = 0.0f;
    for (int64_t c = threadIdx.x * V; c < p.cols; c += step) {
        load_v<V>(x + c, v);
#pragma unroll
        for (int k = 0; k < V; k++)
            sq += (v[k] - mean) * (v[k] - mean);
    }
    float rstd = rsqrtf(block_reduce<false>(sq, shm) / (float)p.cols + p.eps);
    for (int64_t c = threadIdx.x * V; c < p.cols; c += step) {
        float w[V], b[V], sh[V], sc[V];
        load_v<V>(x + c, v);
        if (p.weight.p)
            load_aux<V>(p.weight, 0, c, w);
        if (p.bias.p)
            load_aux<V>(p.bias, 0, c, b);
        if (p.shift.p)
            load_aux<V>(p.shift, r, c, sh);
        if (p.scale.p)
            load_aux<V>(p.scale, r, c, sc);
#pragma unroll
        for (int k = 0; k < V; k++) {
            float y = (v[k] - mean) * rstd;
            y = p.weight.p ? y * w[k] : y;
            y = p.bias.p ? y + b[k] : y;
            y = p.scale.p ? y * (1.0f + sc[k]) : y;
            v[k] = p.shift.p ? y + sh[k] : y;
        }
        store_v<V>(out + c, v);
    }
}

template <int V, typename TX, typename TO, bool ROPE> __global__ void rms_norm_kernel(norm_params p)
{
    __shared__ float shm[32];
    int64_t r = blockIdx.x;
    const TX *x = static_cast<const TX *>(p.x) + r * p.xs;
    TO *out = static_cast<TO *>(p.out) + r * p.os;
    int64_t step = (int64_t)blockDim.x * V;
    float v[V], sq = 0.0f;
    for (int64_t c = threadIdx.x * V; c < p.cols; c += step) {
        load_v<V>(x + c, v);
#pragma unroll
        for (int k = 0; k < V; k++)
            sq += v[k] * v[k];
    }
    float rs = rsqrtf(block_reduce<false>(sq, shm) / (float)p.cols + p.eps);
    rope_token tk;
    if constexpr (ROPE)
        tk = rope_token_of(p.rope, r);
    for (int64_t c = threadIdx.x * V; c < p.cols; c += step) {
        float w[V];
        load_v<V>(x + c, v);
        load_aux<V>(p.weight, 0, c, w);
#pragma unroll
        for (int k = 0; k < V; k++) {
            float y = v[k] * rs;
            if constexpr (std::is_same<TX, bf16>::value)
                y = __bfloat162float(__float2bfloat16_rn(y));
            v[k] = y * w[k];
        }
        if constexpr (ROPE)
            rope_rotate<V>(p.rope, tk, c, v);
        store_v<V>(out + c, v);
    }
}

/* RMSNorm (+ RoPE) of rows that one block covers in 8-value chunks, one per thread: the row is
 * read once and kept in registers (the loop kernel above reads it twice), and the token's
 * (cos, sin) pairs are staged in shared memory first, so each chunk's 4 rotations take two
 * 16-byte reads instead of 4 gathers that pick the time, height or width table per pair.
 * Needs head_dim % 8 == 0 (a chunk stays in one head) and head_dim <= 2 * ROPE_PAIRS_MAX. */
constexpr int ROPE_PAIRS_MAX = 128;

template <typename TX, typename TO, bool ROPE> __global__ void rms_norm_row_kernel(norm_params p)
{
    __shared__ float shm[32];
    __shared__ __align__(16) float2 pairs[ROPE ? ROPE_PAIRS_MAX : 1];
    const int64_t r = blockIdx.x, c = (int64_t)threadIdx.x * 8;
    const bool on = c < p.cols;
    if constexpr (ROPE) {
        /* published to the block by the barriers inside block_reduce below */
        const rope_token tk = rope_token_of(p.rope, r);
        const int nt = p.rope.nt, nth = p.rope.nt + p.rope.nh;
        for (int i = threadIdx.x; i < p.rope.head_dim / 2; i += blockDim.x)
            pairs[i] = i < nt ? tk.t[i] : i < nth ? tk.h[i - nt] : tk.w[i - nth];
    }
    float v[8] = {}, sq = 0.0f;
    if (on)
        load_v<8>(static_cast<const TX *>(p.x) + r * p.xs + c, v);
#pragma unroll
    for (int k = 0; k < 8; k++)
        sq += v[k] * v[k];
    const float rs = rsqrtf(block_reduce<false>(sq, shm) / (float)p.cols + p.eps);
    if (!on)
        return;
    float w[8];
    load_aux<8>(p.weight, 0, c, w);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        float y = v[k] * rs;
        if constexpr (std::is_same<TX, bf16>::value)
            y = __bfloat162float(__float2bfloat16_rn(y));
        v[k] = y * w[k];
    }
    if constexpr (ROPE) {
        const float4 *cs = reinterpret_cast<const float4 *>(pairs) + (int)(c % p.rope.head_dim) / 4;
#pragma unroll
        for (int k = 0; k < 8; k += 4) {
            const float4 two = cs[k / 4]; /* pairs (x: cos, y: sin), (z: cos, w: sin) */
            float a = v[k], b = v[k + 1];
            v[k] = a * two.x - b * two.y;
            v[k + 1] = a * two.y + b * two.x;
            a = v[k + 2], b = v[k + 3];
            v[k + 2] = a * two.z - b * two.w;
            v[k + 3] = a * two.w + b * two.z;
        }
    }
    store_v<8>(static_cast<TO *>(p.out) + r * p.os + c, v);
}

template <int V, typename TX, typename TO> __global__ void softmax_kernel(norm_params p)
{
    __shared__ float shm[32];
    int64_t r = blockIdx.x;
    const TX *x = static_cast<const TX *>(p.x) + r * p.xs;
    TO *out = static_cast<TO *>(p.out) + r * p.os;
    int64_t step = (int64_t)blockDim.x * V;
    float v[V], mx = -INFINITY;
    for (int64_t c = threadIdx.x * V; c < p.cols; c += step) {
        load_v<V>(x + c, v);
#pragma unroll
        for (int k = 0; k < V; k++)
            mx = fmaxf(mx, v[k]);
    }
    mx = block_reduce<true>(mx, shm);
    float sum = 0.0f;
    for (int64_t c = threadIdx.x * V; c < p.cols; c += step) {
        load_v<V>(x + c, v);
#pragma unroll
        for (int k = 0; k < V; k++)
            sum += expf(v[k] - mx);
    }
    float inv = 1.0f / block_reduce<false>(sum, shm);
    for (int64_t c = threadIdx.x * V; c < p.cols; c += step) {
        load_v<V>(x + c, v);
#pragma unroll
        for (int k = 0; k < V; k++)
            v[k] = expf(v[k] - mx) * inv;
        store_v<V>(out + c, v);
    }
}

/* x += y * gate, then LayerNorm of the new x as layer_norm_kernel: one thread per 8 columns,
 * the row held in registers (blockDim.x * 8 >= cols), so x and y are read once and x and out
 * written once, with no second or third pass over the row. */
struct add_norm_params {
    float *x;
    int64_t xs;
    const void *y;
    int64_t ys;
    aux_vec gate;
    norm_params n; /* out, weight, bias, shift, scale, rows, cols, eps */
};

template <typename TY, typename TO> __global__ void add_norm_kernel(add_norm_params a)
{
    __shared__ float shm[32];
    const norm_params &p = a.n;
    const int64_t r = blockIdx.x, c = (int64_t)threadIdx.x * 8;
    const bool on = c < p.cols;
    float v[8] = {};
    if (on) {
        float y[8], g[8];
        float *x = a.x + r * a.xs + c;
        load_v<8>(x, v);
        load_v<8>(static_cast<const TY *>(a.y) + r * a.ys + c, y);
        if (a.gate.p)
            load_aux<8>(a.gate, r, c, g);
#pragma unroll
        for (int k = 0; k < 8; k++)
            v[k] += a.gate.p ? y[k] * g[k] : y[k];
        store_v<8>(x, v);
    }
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < 8; k++)
        sum += v[k];
    float mean = block_reduce<false>(sum, shm) / (float)p.cols, sq = 0.0f;
    if (on) {
#pragma unroll
        for (int k = 0; k < 8; k++)
            sq += (v[k] - mean) * (v[k] - mean);
    }
    float rstd = rsqrtf(block_reduce<false>(sq, shm) / (float)p.cols + p.eps);
    if (!on)
        return;
    float w[8], b[8], sh[8], sc[8];
    if (p.weight.p)
        load_aux<8>(p.weight, 0, c, w);
    if (p.bias.p)
        load_aux<8>(p.bias, 0, c, b);
    if (p.shift.p)
        load_aux<8>(p.shift, r, c, sh);
    if (p.scale.p)
        load_aux<8>(p.scale, r, c, sc);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        float y = (v[k] - mean) * rstd;
        y = p.weight.p ? y * w[k] : y;
        y = p.bias.p ? y + b[k] : y;
        y = p.scale.p ? y * (1.0f + sc[k]) : y;
        v[k] = p.shift.p ? y + sh[k] : y;
    }
    store_v<8>(static_cast<TO *>(p.out) + r * p.os + c, v);
}

enum norm_kind { NK_LAYER, NK_RMS, NK_RMS_ROPE, NK_SOFTMAX };

/* Launches the kernel of `kind` with 8-wide chunks when every pointer allows, else 1-wide
 * (2-wide with RoPE, which rotates whole pairs). */
static int norm_launch(backend *be, const char *op, norm_kind kind, const norm_params &p,
                       enum dtype tx, enum dtype to, bool vec)
{
    if (p.rows == 0 || p.cols == 0)
        return REEL_OK;
    unsigned grid;
    TRY(cuda_row_grid(op, p.rows, &grid));
    TRY(cuda_enter(be));
    int narrow = kind == NK_RMS_ROPE ? 2 : 1;
    int block = cuda_row_block(p.cols / (vec ? 8 : narrow));
    cudaStream_t s = cuda_stream(be);
    return dispatch_xo(tx, to, [&](auto xt, auto ot) -> int {
        using TX = decltype(xt);
        using TO = decltype(ot);
        switch (kind) {
        case NK_LAYER:
            if (vec)
                layer_norm_kernel<8, TX, TO><<<grid, block, 0, s>>>(p);
            else
                layer_norm_kernel<1, TX, TO><<<grid, block, 0, s>>>(p);
            break;
        case NK_RMS:
            if (vec)
                rms_norm_kernel<8, TX, TO, false><<<grid, block, 0, s>>>(p);
            else
                rms_norm_kernel<1, TX, TO, false><<<grid, block, 0, s>>>(p);
            break;
        case NK_RMS_ROPE:
            if (vec)
                rms_norm_kernel<8, TX, TO, true><<<grid, block, 0, s>>>(p);
            else
                rms_norm_kernel<2, TX, TO, true><<<grid, block, 0, s>>>(p);
            break;
        case NK_SOFTMAX:
            if (vec)
                softmax_kernel<8, TX, TO><<<grid, block, 0, s>>>(p);
            else
                softmax_kernel<1, TX, TO><<<grid, block, 0, s>>>(p);
            break;
        }
        CUDA_TRY_LAUNCH(op);
        return REEL_OK;
    });
}

/* Grid and block of the kernels that give each thread one 8-column chunk of a row
 * (add_norm_kernel, rms_norm_row_kernel): one block per row, whole warps. */
static int chunk_per_thread_launch(backend *be, const char *op, int64_t rows, int64_t cols,
                                   unsigned *grid, int *block)
{
    TRY(cuda_row_grid(op, rows, grid));
    TRY(cuda_enter(be));
    *block = (int)((cols / 8 + 31) / 32 * 32);
    return REEL_OK;
}

static bool vec_ok(const row_view &x, const row_view &out, std::initializer_list<const row_view *> aux)
{
    bool ok = x.cols % 8 == 0 && cuda_vec_ok(x.data, x.stride, dtype_size(x.dtype)) &&
              cuda_vec_ok(out.data, out.stride, dtype_size(out.dtype));
    for (const row_view *v : aux)
        ok = ok && cuda_vec_ok(v->data, v->stride, dtype_size(v->dtype));
    return ok;
}

int cuda_layer_norm(backend *be, const tensor *x, const tensor *weight, const tensor *bias,
                    const tensor *shift, const tensor *scale, float eps, tensor *out)
{
    const char *op = "layer_norm";
    row_view xv, ov, wv, bv, shv, scv;
    TRY(barg_rows(op, "x", x, DEV_CUDA, CUDA_FLOATS, &xv));
    TRY(barg_rows_like(op, "out", out, x, DEV_CUDA, CUDA_FLOATS, &ov));
    TRY(barg_vec(op, "weight", weight, xv.cols, DEV_CUDA, CUDA_FLOATS, &wv));
    TRY(barg_vec(op, "bias", bias, xv.cols, DEV_CUDA, CUDA_FLOATS, &bv));
    TRY(barg_mod(op, "shift", shift, xv.rows, xv.cols, DEV_CUDA, CUDA_FLOATS, &shv));
    TRY(barg_mod(op, "scale", scale, xv.rows, xv.cols, DEV_CUDA, CUDA_FLOATS, &scv));
    norm_params p = {};
    p.x = xv.data, p.xs = xv.stride, p.out = ov.data, p.os = ov.stride;
    p.rows = xv.rows, p.cols = xv.cols, p.eps = eps;
    p.weight = make_aux(wv, xv.rows), p.bias = make_aux(bv, xv.rows);
    p.shift = make_aux(shv, xv.rows), p.scale = make_aux(scv, xv.rows);
    return norm_launch(be, op, NK_LAYER, p, xv.dtype, ov.dtype,
                       vec_ok(xv, ov, {&wv, &bv, &shv, &scv}));
}

int cuda_add_gated_norm(backend *be, tensor *x, const tensor *y, const tensor *gate,
                        const tensor *weight, const tensor *bias, const tensor *shift,
                        const tensor *scale, float eps, tensor *out)
{
    const char *op = "add_gated_norm";
    row_view xv, yv, gv, ov, wv, bv, shv, scv;
    TRY(barg_rows(op, "x", x, DEV_CUDA, DTM(DT_F32), &xv));
    TRY(barg_rows_like(op, "y", y, x, DEV_CUDA, CUDA_FLOATS, &yv));
    TRY(barg_mod(op, "gate", gate, xv.rows, xv.cols, DEV_CUDA, CUDA_FLOATS, &gv));
    TRY(barg_rows_like(op, "out", out, x, DEV_CUDA, CUDA_FLOATS, &ov));
    TRY(barg_vec(op, "weight", weight, xv.cols, DEV_CUDA, CUDA_FLOATS, &wv));
    TRY(barg_vec(op, "bias", bias, xv.cols, DEV_CUDA, CUDA_FLOATS, &bv));
    TRY(barg_mod(op, "shift", shift, xv.rows, xv.cols, DEV_CUDA, CUDA_FLOATS, &shv));
    TRY(barg_mod(op, "scale", scale, xv.rows, xv.cols, DEV_CUDA, CUDA_FLOATS, &scv));
    /* rows wider than one block of 8-column threads, or unaligned views: the two ops in turn */
    if (xv.cols / 8 > 1024 || !vec_ok(xv, ov, {&yv, &gv, &wv, &bv, &shv, &scv})) {
        TRY(cuda_add_gated(be, x, y, gate));
        return cuda_layer_norm(be, x, weight, bias, shift, scale, eps, out);
    }
    if (xv.rows == 0 || xv.cols == 0)
        return REEL_OK;
    add_norm_params a = {};
    a.x = (float *)xv.data, a.xs = xv.stride, a.y = yv.data, a.ys = yv.stride;
    a.gate = make_aux(gv, xv.rows);
    norm_params &p = a.n;
    p.out = ov.data, p.os = ov.stride, p.rows = xv.rows, p.cols = xv.cols, p.eps = eps;
    p.weight = make_aux(wv, xv.rows), p.bias = make_aux(bv, xv.rows);
    p.shift = make_aux(shv, xv.rows), p.scale = make_aux(scv, xv.rows);
    unsigned grid;
    int block;
    TRY(chunk_per_thread_launch(be, op, xv.rows, xv.cols, &grid, &block));
    cudaStream_t s = cuda_stream(be);
    return dispatch_xo(yv.dtype, ov.dtype, [&](auto yt, auto ot) -> int {
        add_norm_kernel<decltype(yt), decltype(ot)><<<grid, block, 0, s>>>(a);
        CUDA_TRY_LAUNCH(op);
        return REEL_OK;
    });
}

int cuda_rms_norm(backend *be, const tensor *x, const tensor *weight, float eps,
                  const rope_grid *rope, int head_dim, tensor *out)
{
    const char *op = "rms_norm";
    row_view xv, ov, wv;
    TRY(barg_rows(op, "x", x, DEV_CUDA, CUDA_FLOATS, &xv));
    TRY(barg_rows_like(op, "out", out, x, DEV_CUDA, CUDA_FLOATS, &ov));
    if (!weight)
        return err_set(REEL_E_INVALID, "%s: weight is NULL", op);
    TRY(barg_vec(op, "weight", weight, xv.cols, DEV_CUDA, CUDA_FLOATS, &wv));
    norm_params p = {};
    p.x = xv.data, p.xs = xv.stride, p.out = ov.data, p.os = ov.stride;
    p.rows = xv.rows, p.cols = xv.cols, p.eps = eps;
    p.weight = make_aux(wv, xv.rows);
    if (rope) {
        TRY(barg_rope(op, rope, head_dim, xv.rows, xv.cols));
        if (xv.rows == 0)
            return REEL_OK;
        TRY(cuda_enter(be));
        const float2 *table;
        TRY(cuda_rope_table(be, rope, head_dim, &table));
        p.rope = make_rope_ctx(rope, head_dim, table);
    }
    const bool vec = vec_ok(xv, ov, {&wv});
    if (vec && xv.cols / 8 <= 1024 && xv.rows > 0 &&
        (!rope || (head_dim % 8 == 0 && head_dim <= 2 * ROPE_PAIRS_MAX))) {
        unsigned grid;
        int block;
        TRY(chunk_per_thread_launch(be, op, xv.rows, xv.cols, &grid, &block));
        cudaStream_t s = cuda_stream(be);
        return dispatch_xo(xv.dtype, ov.dtype, [&](auto xt, auto ot) -> int {
            using TX = decltype(xt);
            using TO = decltype(ot);
            if (rope)
                rms_norm_row_kernel<TX, TO, true><<<grid, block, 0, s>>>(p);
            else
                rms_norm_row_kernel<TX, TO, false><<<grid, block, 0, s>>>(p);
            CUDA_TRY_LAUNCH(op);
            return REEL_OK;
        });
    }
    return norm_launch(be, op, rope ? NK_RMS_ROPE : NK_RMS, p, xv.dtype, ov.dtype, vec);
}

int cuda_softmax(backend *be, const tensor *x, tensor *out)
{
    const char *op = "softmax";
    row_view xv, ov;
    TRY(barg_rows(op, "x", x, DEV_CUDA, CUDA_FLOATS, &xv));
    TRY(barg_rows_like(op, "out", out, x, DEV_CUDA, CUDA_FLOATS, &ov));
    norm_params p = {};
    p.x = xv.data, p.xs = xv.stride, p.out = ov.data, p.os = ov.stride;
    p.rows = xv.rows, p.cols = xv.cols;
    return norm_launch(be, op, NK_SOFTMAX, p, xv.dtype, ov.dtype, vec_ok(xv, ov, {}));
}
