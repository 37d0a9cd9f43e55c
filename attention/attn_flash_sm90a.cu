/* Block-sparse flash attention forward for Hopper (sm_90a): the same algorithm and interface as
 * attn_flash.cu (which it replaces on sm_90 devices for head_dim 128), with the two products
 * on warpgroup MMA (wgmma) instead of mma.sync. CPU reference: attn_ref.c. Test:
 * tests/gpu/test_attn_kernel.cu (both kernels). Bench: reel bench attn.
 *
 * Launch: grid (query blocks of 128, heads), 256 threads = 2 warpgroups, each owning 64 query
 * rows. Per key tile of 128 (= one mask block):
 *     S = Q K^T   wgmma m64n128k16 x 8, both operands read by the tensor cores straight from
 *                 shared memory (descriptors), S (64 x 128 fp32) lands in 64 registers/thread
 *     softmax     online, fp32, as in attn_flash.cu (exp2 with the scale folded in)
 *     O += P V    wgmma m64n128k16 x 8 with P as the register A operand (the S accumulator
 *                 layout is the A fragment layout) and V from shared memory, transposed by the
 *                 descriptor (V is stored key-major, d contiguous)
 * Software-pipelined: one batch of wgmma does P V of tile t and Q K^T of tile t+1 back to
 * back (16 MMAs in a row per warpgroup), and the two warpgroups run half an iteration apart
 * (ping-pong), one's softmax under the other's MMAs.
 * Shared memory: Q 128x128 and K, V 128x128 in three stages (224 KB), every tile stored as two
 * panels of 64 columns (128-byte rows) in the 128-byte-swizzled layout that wgmma reads
 * (16-byte chunk c of row r at chunk c ^ (r % 8); panels 1024-byte aligned). Loads: cp.async by
 * all threads, one tile ahead. Memory traffic as attn_flash.cu: K/V read once per query block. */
#include "attn_flash.h"

#include "../dit/cuda_check.h"

#include <cuda_bf16.h>
#include <stdint.h>

namespace {

constexpr int D = 128;
constexpr int BM = 128, BN = 128;
constexpr int THREADS = 256;
constexpr int STAGES = 3;
constexpr uint32_t PANEL = 128 * 128;     /* bytes of one 64-column panel of a 128-row tile */
constexpr uint32_t TILE = 2 * PANEL;      /* a 128 x 128 bf16 tile */
constexpr uint32_t SMEM = TILE + 2 * STAGES * TILE + 1024; /* Q, K and V stages, alignment */
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }
/* cp.async writes are generic-proxy writes; wgmma reads through the async proxy */
__device__ __forceinline__ void fence_proxy_async()
{
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit()
{
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_wait_all()
{
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
/* Ties accumulator registers to the point after a wait, so the compiler cannot move their uses
 * (or other writes) across the asynchronous MMA. */
__device__ __forceinline__ void fence_regs(float *d)
{
#pragma unroll
    for (int i = 0; i < 64; i++)
        asm volatile("" : "+f"(d[i])::"memory");
}

/* Shared memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte
 * offsets (all >> 4), layout type 1 in bits 62-63. */
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t lbo, uint32_t sbo)
{
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) |
           ((uint64_t)(sbo >> 4) << 32) | (1ull << 62);
}

#define ACC8(i)                                                                                \
    "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
        "+f"(d[i + 6]), "+f"(d[i + 7])
#define ACC64 ACC8(0), ACC8(8), ACC8(16), ACC8(24), ACC8(32), ACC8(40), ACC8(48), ACC8(56)
#define REGS64                                                                                 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, "  \
    "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, "    \
    "%36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, "    \
    "%53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

/* d (64x128 fp32) (+)= A (64x16, K-major in smem) * B (16x128, K-major in smem) */
__device__ __forceinline__ void wgmma_ss(float *d, uint64_t a, uint64_t b, int accumulate)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " REGS64
                 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : ACC64
                 : "l"(a), "l"(b), "r"(accumulate));
}

/* d (64x128 fp32) += A (64x16 bf16 in registers) * B (16x128, N-major in smem) */
__device__ __forceinline__ void wgmma_rs(float *d, const uint32_t *a, uint64_t b)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " REGS64
                 ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : ACC64
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* 128 rows x 128 bf16 from global into the swizzled two-panel layout; rows at or past valid are
 * zero-filled. */
__device__ __forceinline__ void load_tile(uint32_t dst, const __nv_bfloat16 *src, int64_t stride,
                                          int valid)
{
#pragma unroll
    for (int i = 0; i < 128 * 16 / THREADS; i++) {
        int id = threadIdx.x + i * THREADS;
        int r = id >> 4, c = id & 15; /* row, 16-byte chunk of the 256-byte row */
        bool ok = r < valid;
        const __nv_bfloat16 *g = src + (ok ? (int64_t)r * stride + c * 8 : 0);
        uint32_t off = (uint32_t)(c >> 3) * PANEL + r * 128 + (((c & 7) ^ (r & 7)) << 4);
        cp_async16(dst + off, g, ok ? 16 : 0);
    }
}

__global__ void __launch_bounds__(THREADS, 1)
    flash_fwd_sm90(const __nv_bfloat16 *__restrict__ q, const __nv_bfloat16 *__restrict__ k,
                   const __nv_bfloat16 *__restrict__ v, __nv_bfloat16 *__restrict__ out,
                   float *__restrict__ lse, int q_tokens, int kv_tokens, int64_t q_stride,
                   int64_t kv_stride, int heads, float scale_log2,
                   const int32_t *__restrict__ row_start, const int32_t *__restrict__ cols)
{
    extern __shared__ unsigned char smem_raw[];
    const uint32_t base = ((uint32_t)__cvta_generic_to_shared(smem_raw) + 1023u) & ~1023u;
    const uint32_t sQ = base, sK = base + TILE, sV = base + TILE + STAGES * TILE;

    const int qb = blockIdx.x, h = blockIdx.y;
    const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
    const int q0 = qb * BM;

    int first = 0, tiles;
    if (row_start) {
        first = row_start[qb];
        tiles = row_start[qb + 1] - first;
    } else {
        tiles = (kv_tokens + BN - 1) / BN;
    }

    const __nv_bfloat16 *kh = k + (int64_t)h * D, *vh = v + (int64_t)h * D;
    auto tile_key = [&](int t) -> int { return row_start ? cols[first + t] * BN : t * BN; };
    auto load_kv = [&](int t) {
        const int key = tile_key(t), st = t % STAGES;
        load_tile(sK + st * TILE, kh + (int64_t)key * kv_stride, kv_stride, kv_tokens - key);
        load_tile(sV + st * TILE, vh + (int64_t)key * kv_stride, kv_stride, kv_tokens - key);
    };
    /* every cp.async of this thread has landed, is visible to wgmma, and so are everyone's */
    auto ready = [&]() {
        cp_async_wait_all();
        fence_proxy_async();
        __syncthreads();
    };

    float o[64], s[64];
#pragma unroll
    for (int i = 0; i < 64; i++)
        o[i] = 0.f;
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};
    /* this warpgroup's 64 rows of Q: 8 KB into each panel */
    const uint32_t qbase = sQ + wg * (64 * 128);
    /* S = Q K^T for tile t: 8 steps of 16 along head_dim; step ks is 32 bytes into panel ks/4 */
    auto issue_qk = [&](int t) {
        const uint32_t kt = sK + (t % STAGES) * TILE;
#pragma unroll
        for (int ks = 0; ks < D / 16; ks++) {
            uint32_t off = (ks >> 2) * PANEL + (ks & 3) * 32;
            wgmma_ss(s, smem_desc(qbase + off, 16, 1024), smem_desc(kt + off, 16, 1024), ks > 0);
        }
    };

    load_tile(sQ, q + (int64_t)q0 * q_stride + (int64_t)h * D, q_stride, q_tokens - q0);
    if (tiles > 0)
        load_kv(0);
    cp_async_commit();
    if (tiles > 0) {
        ready();
        if (tiles > 1)
            load_kv(1);
        cp_async_commit();
        wgmma_fence();
        issue_qk(0);
        wgmma_commit();
        wgmma_wait_all();
        fence_regs(s);
    }

    /* S_t -> P_t (registers p), running max/sum updated, O rescaled */
    uint32_t p[32];
    auto softmax = [&](int t) {
        const int key0 = tile_key(t);
        /* keys past the end of a ragged last tile take no weight */
        if (key0 + BN > kv_tokens) {
#pragma unroll
            for (int i = 0; i < 16; i++) {
                int key = key0 + i * 8 + 2 * (lane & 3);
                if (key >= kv_tokens)
                    s[4 * i] = s[4 * i + 2] = -INFINITY;
                if (key + 1 >= kv_tokens)
                    s[4 * i + 1] = s[4 * i + 3] = -INFINITY;
            }
        }

        /* online softmax over this thread's rows g (s[4i], s[4i+1]) and g+8 (s[4i+2], s[4i+3]) */
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float m0 = -INFINITY, m1 = -INFINITY; /* two chains: shorter dependency */
#pragma unroll
            for (int i = 0; i < 16; i += 2) {
                m0 = fmaxf(m0, fmaxf(s[4 * i + 2 * hr], s[4 * i + 2 * hr + 1]));
                m1 = fmaxf(m1, fmaxf(s[4 * i + 4 + 2 * hr], s[4 * i + 5 + 2 * hr]));
            }
            float mx = fmaxf(m0, m1);
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            float m_new = fmaxf(row_max[hr], mx * scale_log2);
            float m_use = m_new == -INFINITY ? 0.f : m_new;
            float alpha = fast_exp2(row_max[hr] - m_use);
            row_max[hr] = m_new;
            float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
            for (int i = 0; i < 16; i++) {
                float p0 = fast_exp2(fmaf(s[4 * i + 2 * hr], scale_log2, -m_use));
                float p1 = fast_exp2(fmaf(s[4 * i + 2 * hr + 1], scale_log2, -m_use));
                if (i & 1)
                    sum1 += p0 + p1;
                else
                    sum0 += p0 + p1;
                /* A fragment of k-step i/2: a0 row g lo, a1 row g+8 lo, a2 row g hi, a3 g+8 hi */
                p[(i >> 1) * 4 + (i & 1) * 2 + hr] = pack_bf16(p0, p1);
            }
            row_sum[hr] = row_sum[hr] * alpha + (sum0 + sum1);
            if (__any_sync(0xffffffffu, alpha != 1.f)) {
#pragma unroll
                for (int i = 0; i < 16; i++) {
                    o[4 * i + 2 * hr] *= alpha;
                    o[4 * i + 2 * hr + 1] *= alpha;
                }
            }
        }

    };

    /* Software pipeline with the two warpgroups half an iteration apart (ping-pong): after
     * barrier t, warpgroup 0 runs its MMA batch t (O += P_t V_t, S_{t+1} = Q K_{t+1}^T) while
     * warpgroup 1 runs softmax t, then warpgroup 1 runs its batch t while warpgroup 0 runs
     * softmax t+1; so one warpgroup's exponentials hide under the other's MMAs. Barrier t
     * (every thread, every iteration) publishes tile t+1 and frees stage (t+2)%3: its last
     * reader, batch t-1, has completed in both warpgroups before either reaches barrier t. */
    if (tiles > 0 && wg == 0)
        softmax(0);
    for (int t = 0; t < tiles; t++) {
        const bool next = t + 1 < tiles;
        ready(); /* barrier t: tile t+1 landed */
        if (t + 2 < tiles)
            load_kv(t + 2);
        cp_async_commit();
        if (wg == 1)
            softmax(t);
        /* O += P V: 8 steps of 16 keys; step kk starts 16 rows (2 KB) into the V tile; the two
         * 64-column panels are the two halves of N (leading byte offset = one panel) */
        const uint32_t vt = sV + (t % STAGES) * TILE;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++)
            wgmma_rs(o, &p[4 * kk], smem_desc(vt + kk * 2048, PANEL, 1024));
        /* unconditionally, so that s is written by wgmma on every path (a conditional write
         * makes ptxas serialise the batch); the last tile recomputes its own S, unused */
        issue_qk(next ? t + 1 : t);
        wgmma_commit();
        wgmma_wait_all();
        fence_regs(o);
        fence_regs(s);
        if (wg == 0 && next)
            softmax(t + 1);
    }
    cp_async_wait_all();

#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        float l = row_sum[hr];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        float inv = l > 0.f ? 1.f / l : 0.f;
        int row = q0 + wg * 64 + warp * 16 + (lane >> 2) + hr * 8;
        if (row >= q_tokens)
            continue;
        __nv_bfloat16 *orow = out + ((int64_t)row * heads + h) * D;
#pragma unroll
        for (int i = 0; i < 16; i++)
            *reinterpret_cast<__nv_bfloat162 *>(orow + i * 8 + 2 * (lane & 3)) =
                __floats2bfloat162_rn(o[4 * i + 2 * hr] * inv, o[4 * i + 2 * hr + 1] * inv);
        if (lse && (lane & 3) == 0)
            lse[(int64_t)h * q_tokens + row] =
                l > 0.f ? (row_max[hr] + __log2f(l)) * LN2 : -INFINITY;
    }
}

} /* namespace */

/* Called by attn_flash_forward after its argument checks, on sm_90 devices, head_dim 128. */
extern "C" int attn_flash_sm90a_forward(const attn_flash_args *a)
{
    CUDA_TRY(cudaFuncSetAttribute(flash_fwd_sm90, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)SMEM));
    dim3 grid((unsigned)((a->q_tokens + BM - 1) / BM), (unsigned)a->heads);
    flash_fwd_sm90<<<grid, THREADS, SMEM, (cudaStream_t)a->stream>>>(
        (const __nv_bfloat16 *)a->q, (const __nv_bfloat16 *)a->k, (const __nv_bfloat16 *)a->v,
        (__nv_bfloat16 *)a->out, a->lse, (int)a->q_tokens, (int)a->kv_tokens, a->q_stride,
        a->kv_stride, a->heads, a->scale * LOG2E, a->row_start, a->cols);
    CUDA_TRY_LAUNCH("flash attention (sm90a)");
    return REEL_OK;
}
