/* Device helpers shared by the CUDA kernels: fp32 math over f32 or bf16 storage, V values at a
 * time. V = 8 moves 16 bytes per bf16 access (two 16-byte accesses for f32); the launchers use
 * it only when every pointer is 16-byte aligned, every row stride and the width are multiples
 * of 8 (cuda_vec_ok), and fall back to V = 1 (or 2 for RoPE pairs) otherwise. */
#ifndef REEL_CUDA_VEC_CUH
#define REEL_CUDA_VEC_CUH

#include "backend_args.h"
#include "cuda_check.h"

#include <cuda_bf16.h>
#include <stdint.h>
#include <type_traits>

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(bf16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_f32<bf16>(float v) { return __float2bfloat16_rn(v); }

/* bf16 -> f32 is a shift: the two halves of a 32-bit word. */
__device__ __forceinline__ void unpack_bf16x2(uint32_t u, float &lo, float &hi)
{
    lo = __uint_as_float(u << 16);
    hi = __uint_as_float(u & 0xffff0000u);
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi)
{
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}

template <int V, typename T> __device__ __forceinline__ void load_v(const T *p, float (&v)[V])
{
    if constexpr (V == 8 && std::is_same<T, float>::value) {
        float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else if constexpr (V == 8) {
        uint4 u = *reinterpret_cast<const uint4 *>(p);
        unpack_bf16x2(u.x, v[0], v[1]);
        unpack_bf16x2(u.y, v[2], v[3]);
        unpack_bf16x2(u.z, v[4], v[5]);
        unpack_bf16x2(u.w, v[6], v[7]);
    } else {
#pragma unroll
        for (int i = 0; i < V; i++)
            v[i] = to_f32(p[i]);
    }
}

template <int V, typename T> __device__ __forceinline__ void store_v(T *p, const float (&v)[V])
{
    if constexpr (V == 8 && std::is_same<T, float>::value) {
        reinterpret_cast<float4 *>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
        reinterpret_cast<float4 *>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else if constexpr (V == 8) {
        uint4 u;
        u.x = pack_bf16x2(v[0], v[1]);
        u.y = pack_bf16x2(v[2], v[3]);
        u.z = pack_bf16x2(v[4], v[5]);
        u.w = pack_bf16x2(v[6], v[7]);
        *reinterpret_cast<uint4 *>(p) = u;
    } else {
#pragma unroll
        for (int i = 0; i < V; i++)
            p[i] = from_f32<T>(v[i]);
    }
}

/* A [D] or [G, D] vector (weight, bias, shift, scale, gate) of f32 or bf16, chosen at run time:
 * the branch is the same for every thread. p == NULL means absent. */
struct aux_vec {
    const void *p;
    int64_t stride;         /* between groups */
    int64_t rows_per_group; /* rows of the input per group (>= 1) */
    bool bf16;
};

static inline aux_vec make_aux(const row_view &v, int64_t rows)
{
    aux_vec a;
    a.p = v.data;
    a.stride = v.stride;
    a.rows_per_group = v.rows > 0 && rows / v.rows > 0 ? rows / v.rows : 1;
    a.bf16 = v.dtype == DT_BF16;
    return a;
}

template <int V>
__device__ __forceinline__ void load_aux(const aux_vec &a, int64_t row, int64_t c, float (&v)[V])
{
    int64_t off = row / a.rows_per_group * a.stride + c;
    if (a.bf16)
        load_v<V>(static_cast<const bf16 *>(a.p) + off, v);
    else
        load_v<V>(static_cast<const float *>(a.p) + off, v);
}

/* Sum (or max) over the block; every thread gets the result. blockDim.x a multiple of 32,
 * at most 1024; shm holds 32 floats. */
template <bool MAX> __device__ __forceinline__ float block_reduce(float v, float *shm)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = MAX ? fmaxf(v, u) : v + u;
    }
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    __syncthreads(); /* shm may still be read by an earlier reduction */
    if (lane == 0)
        shm[warp] = v;
    __syncthreads();
    v = lane < warps ? shm[lane] : (MAX ? -INFINITY : 0.0f);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = MAX ? fmaxf(v, u) : v + u;
    }
    return v;
}

/* True when the 8-wide path may run over these pointers and row strides (elements). */
static inline bool cuda_vec_ok(const void *p, int64_t stride, size_t esize)
{
    return p == nullptr || ((uintptr_t)p % 16 == 0 && (stride * (int64_t)esize) % 16 == 0);
}

/* Calls f(x_tag, out_tag) with value-initialised float or bf16 tags for the two dtypes, so a
 * launcher instantiates one kernel per storage combination. */
template <typename F> int dispatch_xo(enum dtype x, enum dtype out, F f)
{
    if (x == DT_F32)
        return out == DT_F32 ? f(float(), float()) : f(float(), bf16());
    return out == DT_F32 ? f(bf16(), float()) : f(bf16(), bf16());
}

#endif
