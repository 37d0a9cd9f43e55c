/* Device side of the Wan 3D RoPE, shared by the RMSNorm+RoPE kernel (cuda_norm.cu) and the
 * plain RoPE kernel (cuda_rope.cu): the rotation of the pairs in a chunk of V values of one
 * token row, with (cos, sin) read from the per-grid table of rope_table.h. */
#ifndef REEL_CUDA_ROPE_CUH
#define REEL_CUDA_ROPE_CUH

#include "cuda_vec.cuh"
#include "rope_table.h"

struct rope_ctx {
    const float2 *table; /* time [f][nt], then height [h][nh], then width [w][nw] */
    int head_dim, nt, nh, nw;
    int f, h, w;
};

/* The table rows of token n: its frame, row and column entries. */
struct rope_token {
    const float2 *t, *h, *w;
};

__device__ __forceinline__ rope_token rope_token_of(const rope_ctx &g, int64_t n)
{
    int64_t xi = n % g.w, yi = n / g.w % g.h, ti = n / ((int64_t)g.w * g.h);
    rope_token tk;
    tk.t = g.table + ti * g.nt;
    tk.h = g.table + (int64_t)g.f * g.nt + yi * g.nh;
    tk.w = g.table + (int64_t)g.f * g.nt + (int64_t)g.h * g.nh + xi * g.nw;
    return tk;
}

/* v holds channels c .. c+V-1 of the row (c even, V even): rotate each pair in place. */
template <int V>
__device__ __forceinline__ void rope_rotate(const rope_ctx &g, const rope_token &tk, int64_t c,
                                            float (&v)[V])
{
    int q = (int)c % g.head_dim; /* channel within its head; rows are < 2^31 wide */
#pragma unroll
    for (int k = 0; k < V; k += 2, q += 2) {
        while (q >= g.head_dim) /* the chunk ran into the next head */
            q -= g.head_dim;
        int p = q / 2;
        float2 cs = p < g.nt ? tk.t[p] : p < g.nt + g.nh ? tk.h[p - g.nt] : tk.w[p - g.nt - g.nh];
        float a = v[k], b = v[k + 1];
        v[k] = a * cs.x - b * cs.y;
        v[k + 1] = a * cs.y + b * cs.x;
    }
}

/* Host: the context for a grid whose device table is `table`. */
static inline rope_ctx make_rope_ctx(const rope_grid *g, int head_dim, const float2 *table)
{
    int n[3];
    rope_axis_pairs(head_dim, n);
    rope_ctx r = {table, head_dim, n[0], n[1], n[2], g->f, g->h, g->w};
    return r;
}

#endif
