/* Block-sparse flash attention forward, bf16 in/out, fp32 softmax: the FlashAttention-2
 * algorithm on mma.sync tensor cores (m16n8k16 bf16, fp32 accumulate), sm_80 and later.
 * CPU reference: attn_ref.c. Test: tests/gpu/test_attn_kernel.c. Bench: reel bench attn.
 *
 * Launch: grid (query blocks of 128, heads), 128 threads = 4 warps, each warp owns 32 query
 * rows (two m16 tiles) for the whole key loop, so its S tile (32x64) and O accumulator
 * (32 x head_dim) live in registers and every K/V fragment read from shared memory feeds two
 * MMAs. Per key tile of 64:
 *     S = Q K^T           Q (128 x D) stays in shared memory, ldmatrix per 16-wide k-step
 *     online softmax      row max/sum in fp32 across the 4 lanes of a quad, exp2 with the
 *                         softmax scale and log2(e) folded into one FFMA
 *     O = O * alpha + P V P converted in registers to the A operand (no shared-memory trip),
 *                         V read with ldmatrix.trans
 * Key tiles come from the block mask's list for this query block (two 64-key tiles per
 * 128-key mask block), or every tile when dense; empty mask blocks are never touched.
 * Memory: Q read once, K and V read once per query block (from L2 mostly: concurrent CTAs
 * share a head), O written once: for dense attention the traffic is O(L * D * L/128) and the
 * kernel is bound by the tensor cores.
 * Shared memory: Q 128xD, K and V 64xD double-buffered by cp.async (96 KB at D = 128), rows
 * stored with 16-byte chunks XOR-swizzled by row so that ldmatrix reads are conflict-free.
 * Ragged edges: rows past q_tokens and keys past kv_tokens are zero-filled by cp.async; keys
 * past the end get score -inf; rows past the end are not stored.
 * On sm_90 devices with head_dim 128, attn_flash_forward hands over to the wgmma kernel of
 * attn_flash_sm90a.cu (same interface and results); this one stays the path for sm_80/sm_89
 * and head_dim 64. */
#include "attn_flash.h"
#include "attn_flash_util.cuh"

#include "../dit/cuda_check.h"

#include <cuda_bf16.h>
#include <stdint.h>

namespace {

constexpr int BM = 128;     /* query rows per CTA (= the mask block) */
constexpr int BN = 64;      /* keys per inner tile: a mask block is two tiles */
constexpr int WARPS = 4;
constexpr int THREADS = WARPS * 32;
constexpr int MT = BM / WARPS / 16; /* m16 tiles per warp: 2 */
constexpr int NH = BN / 2 / 8;      /* n8 tiles of S per warp and half tile: 4 */
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

__device__ __forceinline__ uint32_t smem_u32(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* 16-byte global->shared copy; src_bytes 0 fills the destination with zeros. */
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t &r0, uint32_t &r1,
                                            uint32_t &r2, uint32_t &r3)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t addr, uint32_t &r0, uint32_t &r1,
                                                  uint32_t &r2, uint32_t &r3)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

/* d += a(16x16, row) * b(16x8, col), bf16 inputs, fp32 accumulators */
__device__ __forceinline__ void mma_bf16(float *d, uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* Byte offset of 16-byte chunk c of row r in a tile whose rows are D bf16 long. */
template <int D> __device__ __forceinline__ uint32_t swz(int r, int c)
{
    return (uint32_t)(r * (D * 2) + ((c ^ (r & 7)) << 4));
}

/* rows x D tile from global (row stride in elements) into swizzled shared memory; rows at or
 * past valid are zero-filled. */
template <int D, int ROWS>
__device__ __forceinline__ void load_tile(uint32_t dst, const __nv_bfloat16 *src, int64_t stride,
                                          int valid)
{
    constexpr int CHUNKS = D / 8; /* per row */
#pragma unroll
    for (int i = 0; i < ROWS * CHUNKS / THREADS; i++) {
        int id = threadIdx.x + i * THREADS;
        int r = id / CHUNKS, c = id % CHUNKS;
        bool ok = r < valid;
        const __nv_bfloat16 *g = src + (ok ? (int64_t)r * stride + c * 8 : 0);
        cp_async16(dst + swz<D>(r, c), g, ok ? 16 : 0);
    }
}

template <int D>
__global__ void __launch_bounds__(THREADS, 2)
    flash_fwd(const __nv_bfloat16 *__restrict__ q, const __nv_bfloat16 *__restrict__ k,
              const __nv_bfloat16 *__restrict__ v, __nv_bfloat16 *__restrict__ out,
              float *__restrict__ lse, int q_tokens, int kv_tokens, int64_t q_stride,
              int64_t kv_stride, int heads, float scale_log2, const int32_t *__restrict__ row_start,
              const int32_t *__restrict__ cols, float last_bias)
{
    constexpr int KT = D / 16; /* k-steps of Q K^T */
    constexpr int DT = D / 8;  /* n8 tiles of O */
    extern __shared__ __align__(128) unsigned char smem[];
    const uint32_t sQ = smem_u32(smem);
    const uint32_t sK0 = sQ + BM * D * 2;
    const uint32_t sV0 = sK0 + 2 * BN * D * 2;
    constexpr uint32_t KV_BYTES = BN * D * 2;

    const int qb = blockIdx.x, h = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int q0 = qb * BM;

    /* key tiles of this query block: dense, or two per listed mask block */
    int first = 0, tiles;
    if (row_start) {
        first = row_start[qb];
        tiles = 2 * (row_start[qb + 1] - first);
    } else {
        tiles = (kv_tokens + BN - 1) / BN;
    }
    auto tile_key0 = [&](int t) -> int {
        return row_start ? cols[first + t / 2] * (2 * BN) + (t % 2) * BN : t * BN;
    };

    const __nv_bfloat16 *kh = k + (int64_t)h * D, *vh = v + (int64_t)h * D;
    load_tile<D, BM>(sQ, q + (int64_t)q0 * q_stride + (int64_t)h * D, q_stride, q_tokens - q0);
    cp_async_commit();

    /* the next tile to load skips tiles that start past the keys (second half of a ragged
     * last mask block) */
    int t_load = 0;
    auto next_valid = [&](int t) -> int {
        while (t < tiles && tile_key0(t) >= kv_tokens)
            t++;
        return t;
    };
    t_load = next_valid(0);
    int buf_load = 0;
    if (t_load < tiles) {
        int key0 = tile_key0(t_load);
        load_tile<D, BN>(sK0, kh + (int64_t)key0 * kv_stride, kv_stride, kv_tokens - key0);
        load_tile<D, BN>(sV0, vh + (int64_t)key0 * kv_stride, kv_stride, kv_tokens - key0);
    }
    cp_async_commit();

    float o[MT][DT][4];
#pragma unroll
    for (int mi = 0; mi < MT; mi++)
#pragma unroll
        for (int j = 0; j < DT; j++)
            o[mi][j][0] = o[mi][j][1] = o[mi][j][2] = o[mi][j][3] = 0.f;
    float row_max[MT][2], row_sum[MT][2];
#pragma unroll
    for (int mi = 0; mi < MT; mi++)
        row_max[mi][0] = row_max[mi][1] = -INFINITY, row_sum[mi][0] = row_sum[mi][1] = 0.f;

    while (t_load < tiles) {
        const int t = t_load, buf = buf_load, key0 = tile_key0(t);
        t_load = next_valid(t + 1);
        buf_load ^= 1;
        if (t_load < tiles) {
            int nk = tile_key0(t_load);
            load_tile<D, BN>(sK0 + buf_load * KV_BYTES, kh + (int64_t)nk * kv_stride, kv_stride,
                             kv_tokens - nk);
            load_tile<D, BN>(sV0 + buf_load * KV_BYTES, vh + (int64_t)nk * kv_stride, kv_stride,
                             kv_tokens - nk);
        }
        cp_async_commit();
        cp_async_wait<1>(); /* everything but the tile just issued has landed */
        __syncthreads();

        const uint32_t sK = sK0 + buf * KV_BYTES, sV = sV0 + buf * KV_BYTES;
        /* The 64-key tile is processed as two halves of 32 keys: S for 32 rows x 32 keys is
         * 32 registers instead of 64, which keeps the kernel under 255 registers without
         * spills next to the 32 x D accumulator, at the price of one more rescale of O (skipped
         * when no row maximum moved). */
#pragma unroll 1
        for (int half = 0; half < 2; half++) {
            const int kh0 = half * (BN / 2); /* first key of the half within the tile */
            float s[MT][NH][4];
#pragma unroll
            for (int mi = 0; mi < MT; mi++)
#pragma unroll
                for (int j = 0; j < NH; j++)
                    s[mi][j][0] = s[mi][j][1] = s[mi][j][2] = s[mi][j][3] = 0.f;
            /* S = Q K^T for this warp's 32 rows x 32 keys */
#pragma unroll
            for (int ks = 0; ks < KT; ks++) {
                uint32_t a[MT][4];
#pragma unroll
                for (int mi = 0; mi < MT; mi++) {
                    int r = warp * (MT * 16) + mi * 16 + (lane & 15);
                    ldmatrix_x4(sQ + swz<D>(r, ks * 2 + (lane >> 4)), a[mi][0], a[mi][1],
                                a[mi][2], a[mi][3]);
                }
#pragma unroll
                for (int np = 0; np < NH / 2; np++) {
                    uint32_t b0, b1, b2, b3;
                    int r = kh0 + np * 16 + (lane & 7) + ((lane >> 4) << 3);
                    ldmatrix_x4(sK + swz<D>(r, ks * 2 + ((lane >> 3) & 1)), b0, b1, b2, b3);
#pragma unroll
                    for (int mi = 0; mi < MT; mi++) {
                        mma_bf16(s[mi][2 * np], a[mi][0], a[mi][1], a[mi][2], a[mi][3], b0, b1);
                        mma_bf16(s[mi][2 * np + 1], a[mi][0], a[mi][1], a[mi][2], a[mi][3], b2,
                                 b3);
                    }
                }
            }

            /* keys past the end of a ragged last tile take no weight; the last key, its bias */
            if (key0 + kh0 + BN / 2 >= kv_tokens) {
                const int last = kv_tokens - 1 - key0 - kh0 - 2 * (lane & 3);
#pragma unroll
                for (int j = 0; j < NH; j++) {
#pragma unroll
                    for (int mi = 0; mi < MT; mi++) {
                        last_key_fix(s[mi][j][0], s[mi][j][2], j * 8, last, last_bias);
                        last_key_fix(s[mi][j][1], s[mi][j][3], j * 8 + 1, last, last_bias);
                    }
                }
            }

            /* online softmax: rows g = lane/4 (elements 0,1) and g + 8 (elements 2,3) */
            uint32_t p[MT][NH][2];
#pragma unroll
            for (int mi = 0; mi < MT; mi++)
#pragma unroll
                for (int hr = 0; hr < 2; hr++) {
                    float m0 = -INFINITY, m1 = -INFINITY; /* two chains: shorter latency */
#pragma unroll
                    for (int j = 0; j < NH; j += 2) {
                        m0 = fmaxf(m0, fmaxf(s[mi][j][2 * hr], s[mi][j][2 * hr + 1]));
                        m1 = fmaxf(m1, fmaxf(s[mi][j + 1][2 * hr], s[mi][j + 1][2 * hr + 1]));
                    }
                    float mx = fmaxf(m0, m1);
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                    float m_new = fmaxf(row_max[mi][hr], mx * scale_log2);
                    float m_use = m_new == -INFINITY ? 0.f : m_new;
                    float alpha = fast_exp2(row_max[mi][hr] - m_use);
                    row_max[mi][hr] = m_new;
                    float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
                    for (int j = 0; j < NH; j++) {
                        float p0 = fast_exp2(fmaf(s[mi][j][2 * hr], scale_log2, -m_use));
                        float p1 = fast_exp2(fmaf(s[mi][j][2 * hr + 1], scale_log2, -m_use));
                        if (j & 1)
                            sum1 += p0 + p1;
                        else
                            sum0 += p0 + p1;
                        p[mi][j][hr] = pack_bf16(p0, p1);
                    }
                    row_sum[mi][hr] = row_sum[mi][hr] * alpha + (sum0 + sum1);
                    if (__any_sync(0xffffffffu, alpha != 1.f)) {
#pragma unroll
                        for (int j = 0; j < DT; j++) {
                            o[mi][j][2 * hr] *= alpha;
                            o[mi][j][2 * hr + 1] *= alpha;
                        }
                    }
                }

            /* O += P V: 16 keys per k-step; P's accumulator layout is the A operand's layout */
#pragma unroll
            for (int ks = 0; ks < NH / 2; ks++) {
#pragma unroll
                for (int dp = 0; dp < DT / 2; dp++) {
                    uint32_t b0, b1, b2, b3;
                    int r = kh0 + ks * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
                    ldmatrix_x4_trans(sV + swz<D>(r, dp * 2 + (lane >> 4)), b0, b1, b2, b3);
#pragma unroll
                    for (int mi = 0; mi < MT; mi++) {
                        mma_bf16(o[mi][2 * dp], p[mi][2 * ks][0], p[mi][2 * ks][1],
                                 p[mi][2 * ks + 1][0], p[mi][2 * ks + 1][1], b0, b1);
                        mma_bf16(o[mi][2 * dp + 1], p[mi][2 * ks][0], p[mi][2 * ks][1],
                                 p[mi][2 * ks + 1][0], p[mi][2 * ks + 1][1], b2, b3);
                    }
                }
            }
        }
        __syncthreads(); /* the next iteration's loads overwrite the buffer just read */
    }
    cp_async_wait<0>();

    /* finish: full row sums across the quad, normalise, store */
#pragma unroll
    for (int mi = 0; mi < MT; mi++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float l = row_sum[mi][hr];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            float inv = l > 0.f ? 1.f / l : 0.f;
            int row = q0 + warp * (MT * 16) + mi * 16 + (lane >> 2) + hr * 8;
            if (row >= q_tokens)
                continue;
            __nv_bfloat16 *orow = out + ((int64_t)row * heads + h) * D;
#pragma unroll
            for (int j = 0; j < DT; j++) {
                int c = j * 8 + 2 * (lane & 3);
                *reinterpret_cast<__nv_bfloat162 *>(orow + c) =
                    __floats2bfloat162_rn(o[mi][j][2 * hr] * inv, o[mi][j][2 * hr + 1] * inv);
            }
            if (lse && (lane & 3) == 0)
                lse[(int64_t)h * q_tokens + row] =
                    l > 0.f ? (row_max[mi][hr] + __log2f(l)) * LN2 : -INFINITY;
        }
}

template <int D> int launch(const attn_flash_args *a)
{
    const size_t smem = (size_t)BM * D * 2 + 4 * (size_t)BN * D * 2;
    CUDA_TRY(cudaFuncSetAttribute(flash_fwd<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)smem));
    dim3 grid((unsigned)((a->q_tokens + BM - 1) / BM), (unsigned)a->heads);
    flash_fwd<D><<<grid, THREADS, smem, (cudaStream_t)a->stream>>>(
        (const __nv_bfloat16 *)a->q, (const __nv_bfloat16 *)a->k, (const __nv_bfloat16 *)a->v,
        (__nv_bfloat16 *)a->out, a->lse, (int)a->q_tokens, (int)a->kv_tokens, a->q_stride,
        a->kv_stride, a->heads, a->scale * LOG2E, a->row_start, a->cols, last_key_bias(a));
    CUDA_TRY_LAUNCH("flash attention");
    return REEL_OK;
}

/* Compute capability major of the current device, cached per device index. */
int device_major(int *major)
{
    static int cached[64];
    int dev;
    CUDA_TRY(cudaGetDevice(&dev));
    if (dev >= 0 && dev < 64 && cached[dev]) {
        *major = cached[dev];
        return REEL_OK;
    }
    CUDA_TRY(cudaDeviceGetAttribute(major, cudaDevAttrComputeCapabilityMajor, dev));
    if (dev >= 0 && dev < 64)
        cached[dev] = *major;
    return REEL_OK;
}

} /* namespace */

#ifdef REEL_HAVE_SM90A
extern "C" int attn_flash_sm90a_forward(const attn_flash_args *a);
#endif

extern "C" int attn_flash_has_wgmma(int head_dim, int *yes)
{
    int major = 0;
    TRY(device_major(&major));
#ifdef REEL_HAVE_SM90A
    *yes = major == 9 && head_dim == 128;
#else
    *yes = 0;
    (void)head_dim;
#endif
    return REEL_OK;
}

extern "C" int attn_flash_forward(const attn_flash_args *a)
{
    if (a->head_dim != 64 && a->head_dim != 128)
        return err_set(REEL_E_UNSUPPORTED, "flash attention: head_dim %d (supported: 64, 128)",
                       a->head_dim);
    if (a->q_tokens <= 0 || a->kv_tokens <= 0 || a->heads <= 0 || a->q_tokens > INT32_MAX / 2 ||
        a->kv_tokens > INT32_MAX / 2 || a->heads > 65535)
        return err_set(REEL_E_INVALID, "flash attention: %lld queries, %lld keys, %d heads",
                       (long long)a->q_tokens, (long long)a->kv_tokens, a->heads);
    if (((uintptr_t)a->q | (uintptr_t)a->k | (uintptr_t)a->v | (uintptr_t)a->out) % 16 ||
        a->q_stride % 8 || a->kv_stride % 8)
        return err_set(REEL_E_UNSUPPORTED,
                       "flash attention: q/k/v/out must be 16-byte aligned with row strides a "
                       "multiple of 8 elements (strides %lld, %lld)",
                       (long long)a->q_stride, (long long)a->kv_stride);
    if (a->last_key_copies < 0)
        return err_set(REEL_E_INVALID, "flash attention: last key copies %lld",
                       (long long)a->last_key_copies);
    if ((a->row_start == NULL) != (a->cols == NULL))
        return err_set(REEL_E_INVALID, "flash attention: block mask lists half given");
    if (a->kernel != ATTN_FLASH_MMA) {
        int wgmma = 0, major = 0;
        TRY(attn_flash_has_wgmma(a->head_dim, &wgmma));
#ifdef REEL_HAVE_SM90A
        if (wgmma)
            return attn_flash_sm90a_forward(a);
#endif
        TRY(device_major(&major));
        if (a->kernel == ATTN_FLASH_WGMMA)
            return err_set(REEL_E_UNSUPPORTED,
                           "flash attention: the wgmma kernel needs an sm_90 device, head_dim 128 "
                           "and a build with sm_90a (device sm_%d, head_dim %d)",
                           major * 10, a->head_dim);
    }
    return a->head_dim == 128 ? launch<128>(a) : launch<64>(a);
}
