/* Block-sparse flash attention forward for Hopper (sm_90a): the same algorithm and interface as
 * attn_flash.cu (which it replaces on sm_90 devices for head_dim 128), with the two products
 * on warpgroup MMA (wgmma), the loads on the tensor memory accelerator (TMA) and the work split
 * between a producer and two consumer warpgroups, as FlashAttention-3 does. CPU reference:
 * attn_ref.c. Test: tests/gpu/test_attn_kernel.cu (both kernels). Bench: reel bench attn.
 *
 * Launch: one CTA per SM for dense attention, each looping over units of (query block of 128,
 * head), one CTA per unit for block masks; 384 threads = 3 warpgroups. Key tiles are BN = 128
 * keys (one mask block) when a block mask is given, else 176 keys (dense: fewer, longer rounds;
 * the register budget of S, O and P in one consumer thread stops there, as in FlashAttention-3).
 *   producer (warpgroup 0, one thread): per unit Q, then K and V of every key tile into a ring
 *     of STAGES stages, each copy completing on an mbarrier ("full"). K runs one tile ahead of
 *     V, and a K (V) buffer is refilled as soon as both consumers arrive on its "empty" mbarrier
 *     after their Q K^T (P V) product on it, so a load waits for the product that last read that
 *     buffer, not for a whole round. The next unit's Q loads once both consumers are past their
 *     last Q K^T, while they finish the unit's last P V and write its output. TMA writes the
 *     128-byte-swizzled layout wgmma reads and zero-fills rows past the tensor's end, so ragged
 *     tiles need no code here. setmaxnreg moves its registers to the consumers (24 -> 240).
 *   consumers (warpgroups 1, 2: 64 query rows each). Per key tile t:
 *     S_t = Q K_t^T       wgmma m64nBNk16 x 8, both operands from shared memory
 *     O += P_{t-1} V_{t-1} wgmma m64n128k16 x BN/16, P from registers, V transposed by its
 *                        descriptor
 *     softmax of S_t     online, fp32, exp2 with the scale folded in; runs while the P V product
 *                        is still on the tensor cores (intra-warpgroup overlap: S and P are
 *                        separate registers), then O is rescaled and S_t packed into P_t
 *   The two consumers take turns issuing their MMAs (named barriers: ping-pong), so one's
 *   softmax runs under the other's MMAs as well.
 * Memory traffic as attn_flash.cu: K/V read once per query block (L2 keeps a head's K/V). */
#include "attn_flash.h"
#include "attn_flash_util.cuh"

#include "../dit/cuda_check.h"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <stdint.h>

namespace {

constexpr int D = 128;
constexpr int BM = 128;
constexpr int BLOCK = 128; /* key tile of the block-sparse path: one mask block */
constexpr int DENSE_BN = 176;
constexpr int THREADS = 384;
constexpr uint32_t QPANEL = BM * 128; /* bytes of one 64-column panel of the Q tile */
constexpr uint32_t QTILE = 2 * QPANEL;

/* Sizes that follow from the key tile: BN keys x 128 channels, stored as two 64-column panels
 * of BN rows (128 bytes each); as many stages as fit next to Q in 227 KB. */
template <int BN> struct tiles_of {
    static constexpr int STAGES = BN <= 128 ? 3 : 2;
    static constexpr uint32_t PANEL = BN * 128;
    static constexpr uint32_t TILE = 2 * PANEL;
    static constexpr uint32_t BARS = 8 * (2 + 4 * STAGES);
    static constexpr uint32_t SMEM = QTILE + 2 * STAGES * TILE + BARS + 1024; /* + alignment */
    static_assert(SMEM <= 227 * 1024, "shared memory of one CTA");
    static_assert(BN % 16 == 0 && PANEL % 1024 == 0, "whole 8-row swizzle atoms per panel");
};
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;
constexpr float MAX_SLACK = 8.f; /* log2 of how far p may exceed 1 before O is rescaled */

/* ---- mbarriers and TMA ---------------------------------------------------------------------- */

__device__ __forceinline__ void mbar_init(uint32_t bar, int count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
/* Returns once the phase of the given parity has completed. */
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity)
{
    asm volatile("{\n.reg .pred p;\nWAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@p bra DONE;\nbra WAIT;\nDONE:\n}\n" ::"r"(bar),
                 "r"(parity)
                 : "memory");
}
/* One 64-column panel of a tile (rows as the map's box): coordinates (column, head, token). */
__device__ __forceinline__ void tma_panel(uint32_t dst, const CUtensorMap *map, int col, int head,
                                          int token, uint32_t bar)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
                 "l"(reinterpret_cast<uint64_t>(map)), "r"(col), "r"(head), "r"(token), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void tma_tile(uint32_t dst, uint32_t panel, const CUtensorMap *map,
                                         int head, int token, uint32_t bar)
{
    tma_panel(dst, map, 0, head, token, bar);
    tma_panel(dst + panel, map, 64, head, token, bar);
}

/* Consumer turns: warpgroup c waits on barrier 1 + c for the other to have issued its MMAs. */
__device__ __forceinline__ void turn_wait(int c)
{
    asm volatile("bar.sync %0, 256;\n" ::"r"(1 + c) : "memory");
}
__device__ __forceinline__ void turn_pass(int c)
{
    asm volatile("bar.arrive %0, 256;\n" ::"r"(2 - c) : "memory");
}

/* ---- wgmma -------------------------------------------------------------------------------- */

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit()
{
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N> __device__ __forceinline__ void wgmma_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* Ties accumulator registers to the point after a wait, so the compiler cannot move their uses
 * (or other writes) across the asynchronous MMA. */
template <int N> __device__ __forceinline__ void fence_regs(float *d)
{
#pragma unroll
    for (int i = 0; i < N; i++)
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
#define ACC88 ACC64, ACC8(64), ACC8(72), ACC8(80)
#define REGS64                                                                                 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, "  \
    "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, "    \
    "%36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, "    \
    "%53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

#define REGS88                                                                                 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
    "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, " \
    "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, " \
    "%56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, " \
    "%74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87}"

/* d (64xN fp32) (+)= A (64x16, K-major in smem) * B (16xN, K-major in smem); N = 128 or 176 */
template <int N> __device__ __forceinline__ void wgmma_ss(float *d, uint64_t a, uint64_t b, int accumulate);
template <> __device__ __forceinline__ void wgmma_ss<128>(float *d, uint64_t a, uint64_t b, int accumulate)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " REGS64
                 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : ACC64
                 : "l"(a), "l"(b), "r"(accumulate));
}
template <> __device__ __forceinline__ void wgmma_ss<176>(float *d, uint64_t a, uint64_t b, int accumulate)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %90, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n176k16.f32.bf16.bf16 " REGS88
                 ", %88, %89, p, 1, 1, 0, 0;\n}\n"
                 : ACC88
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

/* ---- the kernel ----------------------------------------------------------------------------- */

template <int BN> struct smem_layout {
    using T = tiles_of<BN>;
    uint32_t q, k, v; /* tiles */
    /* mbarriers; all but q_full and q_empty are arrays of STAGES */
    uint32_t q_full, q_empty, full_k, full_v, empty_k, empty_v;
    __device__ uint32_t kt(int st) const { return k + st * T::TILE; }
    __device__ uint32_t vt(int st) const { return v + st * T::TILE; }
    __device__ uint32_t bar(uint32_t first, int st) const { return first + 8 * st; }
};

/* First key of tile t: the row's t-th mask block (block-sparse, BN == BLOCK) or dense tile t.
 * The key tile says which (launch), so the dense kernel holds no mask registers. */
template <int BN> __device__ __forceinline__ int tile_key(const int32_t *cols, int first, int t)
{
    static_assert(BN == BLOCK || BN == DENSE_BN, "key tile");
    return BN == DENSE_BN ? t * BN : cols[first + t] * BLOCK;
}

/* A CTA's share of the work: units u = blockIdx.x, + gridDim.x, ... of (query block, head),
 * query blocks fastest, so the CTAs running at one time share a head's K/V in L2. */
struct unit_of {
    int qb, h, first, tiles;
    __device__ unit_of(int u, int q_blocks, int kv_tokens, int bn, const int32_t *row_start)
    {
        qb = u % q_blocks;
        h = u / q_blocks;
        first = row_start ? row_start[qb] : 0;
        tiles = row_start ? row_start[qb + 1] - first : (kv_tokens + bn - 1) / bn;
    }
};

/* Producer: per unit Q (once the consumers are done with the previous unit's), K_0, then K_t
 * and V_{t-1} for t = 1.., then the last V. Key tiles are counted across the CTA's units (n):
 * tile n goes to stage n % STAGES of its ring once the product that read the buffer's previous
 * tile is done, so the next unit's loads start while the consumers finish this one. */
template <int BN>
__device__ __forceinline__ void produce(const smem_layout<BN> &L, const CUtensorMap *mq,
                                        const CUtensorMap *mk, const CUtensorMap *mv, int units,
                                        int q_blocks, int kv_tokens, const int32_t *row_start,
                                        const int32_t *cols)
{
    using T = tiles_of<BN>;
    constexpr int S = T::STAGES;
    int n0 = 0, nq = 0;
    for (int u = blockIdx.x; u < units; u += gridDim.x) {
        const unit_of w(u, q_blocks, kv_tokens, BN, row_start);
        if (w.tiles == 0)
            continue;
        if (nq > 0)
            mbar_wait(L.q_empty, (uint32_t)(nq - 1) & 1);
        mbar_expect_tx(L.q_full, QTILE);
        tma_tile(L.q, QPANEL, mq, w.h, w.qb * BM, L.q_full);
        nq++;
        for (int t = 0; t <= w.tiles; t++) {
            if (t < w.tiles) {
                const int n = n0 + t, st = n % S;
                if (n >= S)
                    mbar_wait(L.bar(L.empty_k, st), (uint32_t)(n / S - 1) & 1);
                mbar_expect_tx(L.bar(L.full_k, st), T::TILE);
                tma_tile(L.kt(st), T::PANEL, mk, w.h, tile_key<BN>(cols, w.first, t),
                         L.bar(L.full_k, st));
            }
            if (t > 0) {
                const int n = n0 + t - 1, st = n % S;
                if (n >= S)
                    mbar_wait(L.bar(L.empty_v, st), (uint32_t)(n / S - 1) & 1);
                mbar_expect_tx(L.bar(L.full_v, st), T::TILE);
                tma_tile(L.vt(st), T::PANEL, mv, w.h, tile_key<BN>(cols, w.first, t - 1),
                         L.bar(L.full_v, st));
            }
        }
        n0 += w.tiles;
    }
}

/* One consumer warpgroup's state and steps. S holds BN/8 groups of 8 key columns, 4 values per
 * thread each: (row g, 2 keys) and (row g+8, the same 2 keys). */
template <int BN> struct consumer {
    static constexpr int G = BN / 8;
    static_assert(G % 2 == 0, "two max chains over pairs of column groups");
    float o[64], s[BN / 2];
    uint32_t p[BN / 4];
    float row_max[2], row_sum[2], alpha[2];
    uint32_t qbase;
    int lane;

    /* S = Q K^T: 8 steps of 16 along head_dim; step ks is 32 bytes into panel ks/4 */
    __device__ __forceinline__ void issue_qk(uint32_t kt)
    {
#pragma unroll
        for (int ks = 0; ks < D / 16; ks++) {
            uint32_t qo = (ks >> 2) * QPANEL + (ks & 3) * 32;
            uint32_t ko = (ks >> 2) * tiles_of<BN>::PANEL + (ks & 3) * 32;
            wgmma_ss<BN>(s, smem_desc(qbase + qo, 16, 1024), smem_desc(kt + ko, 16, 1024), ks > 0);
        }
    }
    /* O += P V: BN/16 steps of 16 keys; step kk starts 16 rows (2 KB) into the V tile; the two
     * 64-column panels are the two halves of N (leading byte offset = one panel) */
    __device__ __forceinline__ void issue_pv(uint32_t vt)
    {
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++)
            wgmma_rs(o, &p[4 * kk], smem_desc(vt + kk * 2048, tiles_of<BN>::PANEL, 1024));
    }

    /* S -> exp2(S * scale - max) in place; running max and sum updated, alpha = the factor O
     * must be rescaled by (applied later, once the P V product reading O has completed) */
    float last_bias; /* on the last key's raw score (last_key_bias) */
    __device__ __forceinline__ void softmax(int key0, int kv_tokens, float scale_log2)
    {
        /* keys past the end of a ragged last tile take no weight; the last key, its bias */
        if (key0 + BN >= kv_tokens) {
            const int last = kv_tokens - 1 - key0 - 2 * (lane & 3);
#pragma unroll
            for (int i = 0; i < G; i++) {
                last_key_fix(s[4 * i], s[4 * i + 2], i * 8, last, last_bias);
                last_key_fix(s[4 * i + 1], s[4 * i + 3], i * 8 + 1, last, last_bias);
            }
        }
        /* this thread's rows g (s[4i], s[4i+1]) and g+8 (s[4i+2], s[4i+3]) */
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float m0 = -INFINITY, m1 = -INFINITY; /* two chains: shorter dependency */
#pragma unroll
            for (int i = 0; i < G; i += 2) {
                m0 = fmaxf(m0, fmaxf(s[4 * i + 2 * hr], s[4 * i + 2 * hr + 1]));
                m1 = fmaxf(m1, fmaxf(s[4 * i + 4 + 2 * hr], s[4 * i + 5 + 2 * hr]));
            }
            float mx = fmaxf(m0, m1);
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            float m_new = fmaxf(row_max[hr], mx * scale_log2);
            /* the old maximum stays while the new one exceeds it by at most MAX_SLACK (p <= 256):
             * sums and O share one maximum either way, so only rounding changes, and O is
             * rescaled far less often (FlashAttention-4's rule). -inf - -inf is NaN: kept. */
            if (m_new - row_max[hr] <= MAX_SLACK)
                m_new = row_max[hr];
            float m_use = m_new == -INFINITY ? 0.f : m_new;
            alpha[hr] = fast_exp2(row_max[hr] - m_use);
            row_max[hr] = m_new;
            float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
            for (int i = 0; i < G; i++) {
                float p0 = fast_exp2(fmaf(s[4 * i + 2 * hr], scale_log2, -m_use));
                float p1 = fast_exp2(fmaf(s[4 * i + 2 * hr + 1], scale_log2, -m_use));
                s[4 * i + 2 * hr] = p0;
                s[4 * i + 2 * hr + 1] = p1;
                if (i & 1)
                    sum1 += p0 + p1;
                else
                    sum0 += p0 + p1;
            }
            row_sum[hr] = row_sum[hr] * alpha[hr] + (sum0 + sum1);
        }
    }

    /* O *= alpha (skipped when no row maximum of the warp moved), then P = bf16(S) in the A
     * fragment layout: k-step i/2 takes a0 row g lo, a1 row g+8 lo, a2 row g hi, a3 g+8 hi */
    __device__ __forceinline__ void rescale_and_pack()
    {
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            if (__any_sync(0xffffffffu, alpha[hr] != 1.f)) {
#pragma unroll
                for (int i = 0; i < 16; i++) {
                    o[4 * i + 2 * hr] *= alpha[hr];
                    o[4 * i + 2 * hr + 1] *= alpha[hr];
                }
            }
#pragma unroll
            for (int i = 0; i < G; i++)
                p[(i >> 1) * 4 + (i & 1) * 2 + hr] = pack_bf16(s[4 * i + 2 * hr], s[4 * i + 2 * hr + 1]);
        }
    }
};

/* A consumer warpgroup over one unit's tiles, in rounds: round t issues S_t = Q K_t^T
 * (t < tiles) and O += P_{t-1} V_{t-1} (t > 0) in this warpgroup's turn; turns alternate
 * between the two consumers, warpgroup 0 first. Over a CTA's units the rounds form one
 * sequence: warpgroup 1 passes the first turn before its first unit and skips the last pass of
 * its last unit, so every barrier use sees 128 arrivals and 128 waiters, and warpgroup 0 starts
 * the next unit while warpgroup 1 finishes this one. n0: the unit's first tile in the CTA's
 * count; nq: the unit's index among the CTA's units with tiles. The first and last rounds are
 * written out: a conditional MMA inside the loop makes ptxas serialise every wgmma. */
template <int BN>
__device__ __forceinline__ void consume(consumer<BN> &c, const smem_layout<BN> &L, int cw,
                                        int kv_tokens, float scale_log2, const int32_t *cols,
                                        int first, int tiles, int n0, int nq, bool last)
{
    constexpr int S = tiles_of<BN>::STAGES;
    if (cw == 1 && nq == 0)
        turn_pass(cw);
    mbar_wait(L.q_full, (uint32_t)nq & 1);
    {
        const int st = n0 % S;
        mbar_wait(L.bar(L.full_k, st), (uint32_t)(n0 / S) & 1);
        turn_wait(cw);
        wgmma_fence();
        c.issue_qk(L.kt(st));
        wgmma_commit();
        turn_pass(cw);
        wgmma_wait<0>();
        fence_regs<BN / 2>(c.s);
        mbar_arrive(L.bar(L.empty_k, st));
        if (tiles == 1) /* the unit's Q K^T products are done: the next unit's Q may load */
            mbar_arrive(L.q_empty);
    }
    c.softmax(tile_key<BN>(cols, first, 0), kv_tokens, scale_log2);
    c.rescale_and_pack();

    for (int t = 1; t < tiles; t++) {
        const int n = n0 + t, st = n % S, pst = (n - 1) % S;
        mbar_wait(L.bar(L.full_k, st), (uint32_t)(n / S) & 1);
        mbar_wait(L.bar(L.full_v, pst), (uint32_t)((n - 1) / S) & 1);
        turn_wait(cw);
        wgmma_fence();
        c.issue_qk(L.kt(st));
        wgmma_commit();
        c.issue_pv(L.vt(pst));
        wgmma_commit();
        turn_pass(cw);
        wgmma_wait<1>(); /* S_t is in, P V may still run */
        fence_regs<BN / 2>(c.s);
        mbar_arrive(L.bar(L.empty_k, st));
        if (t == tiles - 1)
            mbar_arrive(L.q_empty);
        c.softmax(tile_key<BN>(cols, first, t), kv_tokens, scale_log2);
        wgmma_wait<0>();
        fence_regs<64>(c.o);
        mbar_arrive(L.bar(L.empty_v, pst));
        c.rescale_and_pack();
    }

    const int n = n0 + tiles - 1, pst = n % S;
    mbar_wait(L.bar(L.full_v, pst), (uint32_t)(n / S) & 1);
    turn_wait(cw);
    wgmma_fence();
    c.issue_pv(L.vt(pst));
    wgmma_commit();
    if (cw == 0 || !last)
        turn_pass(cw);
    wgmma_wait<0>();
    fence_regs<64>(c.o);
    mbar_arrive(L.bar(L.empty_v, pst));
}

/* Launch: a 1-D grid of CTAs, each looping over its units (see unit_of); dense launches as
 * many CTAs as fit on the device at once (one per SM), block-sparse one per unit (units then
 * differ in length, and the hardware's CTA scheduler balances them; every unit of a CTA that
 * loops must have tiles, which dense units do). */
template <int BN>
__global__ void __launch_bounds__(THREADS, 1)
    flash_fwd_sm90(const __grid_constant__ CUtensorMap map_q, const __grid_constant__ CUtensorMap map_k,
                   const __grid_constant__ CUtensorMap map_v, __nv_bfloat16 *__restrict__ out,
                   float *__restrict__ lse, int q_tokens, int kv_tokens, int heads,
                   float scale_log2, const int32_t *__restrict__ row_start,
                   const int32_t *__restrict__ cols, float last_bias)
{
    using T = tiles_of<BN>;
    constexpr int S = T::STAGES;
    extern __shared__ unsigned char smem_raw[];
    const uint32_t base = ((uint32_t)__cvta_generic_to_shared(smem_raw) + 1023u) & ~1023u;
    smem_layout<BN> L;
    L.q = base;
    L.k = base + QTILE;
    L.v = L.k + S * T::TILE;
    L.q_full = L.v + S * T::TILE;
    L.q_empty = L.q_full + 8;
    L.full_k = L.q_empty + 8;
    L.full_v = L.full_k + 8 * S;
    L.empty_k = L.full_v + 8 * S;
    L.empty_v = L.empty_k + 8 * S;

    if (BN == DENSE_BN)
        row_start = cols = nullptr;
    const int q_blocks = (q_tokens + BM - 1) / BM, units = q_blocks * heads;
    const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;

    if (threadIdx.x == 0) {
        mbar_init(L.q_full, 1);
        mbar_init(L.q_empty, 256);
        for (int st = 0; st < S; st++) {
            mbar_init(L.bar(L.full_k, st), 1);
            mbar_init(L.bar(L.full_v, st), 1);
            mbar_init(L.bar(L.empty_k, st), 256);
            mbar_init(L.bar(L.empty_v, st), 256);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
        if (threadIdx.x == 0)
            produce<BN>(L, &map_q, &map_k, &map_v, units, q_blocks, kv_tokens, row_start, cols);
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
    const int cw = wg - 1;
    consumer<BN> c;
    c.qbase = L.q + cw * (64 * 128); /* this warpgroup's 64 rows of Q: 8 KB into each panel */
    c.lane = lane;
    c.last_bias = last_bias;
    int n0 = 0, nq = 0;
    for (int u = blockIdx.x; u < units; u += gridDim.x) {
        const unit_of w(u, q_blocks, kv_tokens, BN, row_start);
#pragma unroll
        for (int i = 0; i < 64; i++)
            c.o[i] = 0.f;
        c.row_max[0] = c.row_max[1] = -INFINITY;
        c.row_sum[0] = c.row_sum[1] = 0.f;
        if (w.tiles > 0) {
            consume<BN>(c, L, cw, kv_tokens, scale_log2, cols, w.first, w.tiles, n0, nq,
                        u + (int)gridDim.x >= units);
            n0 += w.tiles;
            nq++;
        }

#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float l = c.row_sum[hr];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            float inv = l > 0.f ? 1.f / l : 0.f;
            int row = w.qb * BM + cw * 64 + warp * 16 + (lane >> 2) + hr * 8;
            if (row >= q_tokens)
                continue;
            __nv_bfloat16 *orow = out + ((int64_t)row * heads + w.h) * D;
#pragma unroll
            for (int i = 0; i < 16; i++)
                *reinterpret_cast<__nv_bfloat162 *>(orow + i * 8 + 2 * (lane & 3)) =
                    __floats2bfloat162_rn(c.o[4 * i + 2 * hr] * inv, c.o[4 * i + 2 * hr + 1] * inv);
            if (lse && (lane & 3) == 0)
                lse[(int64_t)w.h * q_tokens + row] =
                    l > 0.f ? (c.row_max[hr] + __log2f(l)) * LN2 : -INFINITY;
        }
    }
}

/* ---- host side ------------------------------------------------------------------------------ */

/* The driver's tensor-map encoder, found through the runtime (no link against libcuda). */
int get_encoder(PFN_cuTensorMapEncodeTiled_v12000 *out)
{
    static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
    if (!fn) {
        void *p = nullptr;
        cudaDriverEntryPointQueryResult q;
        CUDA_TRY(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000,
                                                  cudaEnableDefault, &q));
        if (q != cudaDriverEntryPointSuccess || !p)
            return err_set(REEL_E_DEVICE, "flash attention: the driver has no cuTensorMapEncodeTiled");
        fn = (PFN_cuTensorMapEncodeTiled_v12000)p;
    }
    *out = fn;
    return REEL_OK;
}

/* [tokens, heads, 128] bf16 with a token stride, read in boxes of `rows` tokens x 64 channels
 * of one head, 128-byte swizzle (the layout the wgmma descriptors read), zeros past the end. */
int tensor_map(PFN_cuTensorMapEncodeTiled_v12000 enc, const void *ptr, int64_t tokens,
               int64_t stride, int heads, int rows, const char *what, CUtensorMap *map)
{
    cuuint64_t dims[3] = {(cuuint64_t)D, (cuuint64_t)heads, (cuuint64_t)tokens};
    cuuint64_t strides[2] = {(cuuint64_t)D * 2, (cuuint64_t)stride * 2};
    cuuint32_t box[3] = {64, 1, (cuuint32_t)rows}, unit[3] = {1, 1, 1};
    CUresult r = enc(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void *>(ptr), dims,
                     strides, box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                     CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return err_set(REEL_E_DEVICE,
                       "flash attention: tensor map for %s (%lld tokens, stride %lld, %d heads): "
                       "driver error %d",
                       what, (long long)tokens, (long long)stride, heads, (int)r);
    return REEL_OK;
}

template <int BN> int launch(const attn_flash_args *a, PFN_cuTensorMapEncodeTiled_v12000 enc)
{
    constexpr uint32_t smem = tiles_of<BN>::SMEM;
    CUtensorMap mq, mk, mv;
    TRY(tensor_map(enc, a->q, a->q_tokens, a->q_stride, a->heads, BM, "q", &mq));
    TRY(tensor_map(enc, a->k, a->kv_tokens, a->kv_stride, a->heads, BN, "k", &mk));
    TRY(tensor_map(enc, a->v, a->kv_tokens, a->kv_stride, a->heads, BN, "v", &mv));
    CUDA_TRY(cudaFuncSetAttribute(flash_fwd_sm90<BN>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)smem));
    const int64_t units = (a->q_tokens + BM - 1) / BM * a->heads;
    if (units > INT32_MAX)
        return err_set(REEL_E_UNSUPPORTED, "flash attention (sm90a): %lld query blocks x heads",
                       (long long)units);
    int dev = 0, sms = 0;
    CUDA_TRY(cudaGetDevice(&dev));
    CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int64_t grid = a->row_start || units < sms ? units : sms;
    flash_fwd_sm90<BN><<<(unsigned)grid, THREADS, smem, (cudaStream_t)a->stream>>>(
        mq, mk, mv, (__nv_bfloat16 *)a->out, a->lse, (int)a->q_tokens, (int)a->kv_tokens,
        a->heads, a->scale * LOG2E, a->row_start, a->cols, last_key_bias(a));
    CUDA_TRY_LAUNCH("flash attention (sm90a)");
    return REEL_OK;
}

} /* namespace */

/* Called by attn_flash_forward after its argument checks (16-byte aligned pointers, strides a
 * multiple of 8: what TMA needs too), on sm_90 devices, head_dim 128. */
extern "C" int attn_flash_sm90a_forward(const attn_flash_args *a)
{
    PFN_cuTensorMapEncodeTiled_v12000 enc;
    TRY(get_encoder(&enc));
    return a->row_start ? launch<BLOCK>(a, enc) : launch<DENSE_BN>(a, enc);
}
