/* Wan 3D RoPE on CUDA over rows of heads x head_dim values (row n = token n of the grid).
 *
 * Launch: one block per token row, each thread rotating chunks of 8 values (4 pairs; 2 values
 * when alignment forbids 16-byte access). Memory-bound: one read and one write of the rows;
 * the (cos, sin) table is a few KB per grid and stays in L1/L2. The table is built on the host
 * in double (rope_table.h), uploaded once per grid and cached per backend (CUDA_ROPE_TABLES
 * grids, least recently used evicted): the causal model cycles through a few f0 offsets.
 * CPU reference: dit/cpu_rope.c; test: tests/gpu/test_ops_cuda.c. */
#include "cuda_ops.h"
#include "cuda_rope.cuh"

#include <stdlib.h>

int cuda_rope_table(backend *be, const rope_grid *g, int head_dim, const float2 **table)
{
    cuda_impl *impl = cuda_impl_of(be);
    rope_table_entry *victim = &impl->rope[0];
    for (int i = 0; i < CUDA_ROPE_TABLES; i++) {
        rope_table_entry *e = &impl->rope[i];
        if (e->table && e->head_dim == head_dim && e->g.f == g->f && e->g.h == g->h &&
            e->g.w == g->w && e->g.f0 == g->f0) {
            e->last_use = ++impl->tick;
            *table = e->table;
            return REEL_OK;
        }
        if (victim->table && (!e->table || e->last_use < victim->last_use))
            victim = e;
    }
    int64_t n = rope_table_entries(g, head_dim);
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float2);
    float *host = (float *)malloc(bytes);
    if (!host)
        return err_set(REEL_E_NOMEM, "rope: cannot allocate a table of %lld entries", (long long)n);
    rope_table_fill(g, head_dim, host);
    /* stream-ordered: kernels still reading the evicted table finish before it is reused */
    int st = cuda_scratch_free(be, victim->table);
    victim->table = NULL;
    void *dev = NULL;
    if (st == REEL_OK)
        st = cuda_scratch_alloc(be, bytes, &dev, "rope table");
    if (st == REEL_OK) {
        /* from pageable memory: returns once the bytes are staged, so host can go */
        cudaError_t e = cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, impl->stream);
        if (e != cudaSuccess) {
            cuda_scratch_free(be, dev);
            st = err_set(REEL_E_DEVICE, "rope: uploading the table: %s", cudaGetErrorString(e));
        }
    }
    free(host);
    TRY(st);
    victim->table = (float2 *)dev;
    victim->g = *g;
    victim->head_dim = head_dim;
    victim->last_use = ++impl->tick;
    *table = victim->table;
    return REEL_OK;
}

void cuda_rope_tables_release(cuda_impl *impl)
{
    for (int i = 0; i < CUDA_ROPE_TABLES; i++)
        if (impl->rope[i].table)
            cudaFreeAsync(impl->rope[i].table, impl->stream);
}

template <int V, typename TX, typename TO>
__global__ void rope_kernel(const TX *__restrict__ x, int64_t xs, TO *__restrict__ out, int64_t os,
                            int64_t cols, rope_ctx g)
{
    int64_t r = blockIdx.x;
    rope_token tk = rope_token_of(g, r);
    for (int64_t c = threadIdx.x * V; c < cols; c += blockDim.x * V) {
        float v[V];
        load_v<V>(x + r * xs + c, v);
        rope_rotate<V>(g, tk, c, v);
        store_v<V>(out + r * os + c, v);
    }
}

int cuda_rope3d(backend *be, const tensor *x, const rope_grid *g, int head_dim, tensor *out)
{
    const char *op = "rope3d";
    row_view xv, ov;
    TRY(barg_rows(op, "x", x, DEV_CUDA, CUDA_FLOATS, &xv));
    TRY(barg_rows_like(op, "out", out, x, DEV_CUDA, CUDA_FLOATS, &ov));
    TRY(barg_rope(op, g, head_dim, xv.rows, xv.cols));
    if (xv.rows == 0)
        return REEL_OK;
    TRY(cuda_enter(be));
    const float2 *table;
    TRY(cuda_rope_table(be, g, head_dim, &table));
    rope_ctx ctx = make_rope_ctx(g, head_dim, table);
    bool vec = xv.cols % 8 == 0 && cuda_vec_ok(xv.data, xv.stride, dtype_size(xv.dtype)) &&
               cuda_vec_ok(ov.data, ov.stride, dtype_size(ov.dtype));
    int block = cuda_row_block(xv.cols / (vec ? 8 : 2));
    unsigned grid;
    TRY(cuda_row_grid(op, xv.rows, &grid));
    cudaStream_t s = cuda_stream(be);
    return dispatch_xo(xv.dtype, ov.dtype, [&](auto xt, auto ot) -> int {
        using TX = decltype(xt);
        using TO = decltype(ot);
        const TX *xp = static_cast<const TX *>(xv.data);
        TO *op_ = static_cast<TO *>(ov.data);
        if (vec)
            rope_kernel<8><<<grid, block, 0, s>>>(xp, xv.stride, op_, ov.stride, xv.cols, ctx);
        else
            rope_kernel<2><<<grid, block, 0, s>>>(xp, xv.stride, op_, ov.stride, xv.cols, ctx);
        CUDA_TRY_LAUNCH("rope_kernel");
        return REEL_OK;
    });
}
