/* Implicit-GEMM 3D convolution for the VAE, channels last, bf16 tensor cores (WMMA) with fp32
 * accumulation: the engine for convolutions cuDNN cannot take (Resample's asymmetric zero
 * padding) and for builds without cuDNN. CPU twin: conv_task in vae_cpu.c.
 *
 * GEMM view: M = output voxels (to*ho*wo), N = cout_p, K = taps x cin_p. A block computes a
 * 128 x 64 tile of the output with 8 warps (4 along M x 2 along N, 32 x 32 each); K advances
 * 32 input channels of one tap at a time. The A tile is gathered straight from the input: row m
 * is output voxel m's input voxel for this tap, 64 contiguous bytes, zero-filled by cp.async
 * when it falls in the padding. A and B (the weights [cout_p][tap][cin_p]) are double-buffered
 * in shared memory so the next step's loads overlap this step's MMAs. The epilogue adds bias
 * and the residual in fp32 and writes bf16 vectors. Memory traffic: the input is re-read once
 * per tap and N tile (mostly from L2), the output written once. */
#include "vae_cuda.h"

#include <mma.h>

using namespace nvcuda;

#define IG_BM 128
#define IG_BN 64
#define IG_BK 32
#define IG_LDS (IG_BK + 8) /* 80-byte rows: 16-byte aligned, rows spread over banks */
#define IG_LDC (IG_BN + 4)
#define IG_THREADS 256

struct igemm_args {
    const bf16 *in, *w, *res;
    const float *bias;
    bf16 *out;
    int tin, h, w_, cinp;
    int to, ho, wo, coutp;
    int kt, kh, kw, st, sh, sw, pt, pl;
    int M;
};

__device__ static inline void cp_async16(void *smem, const void *gmem, bool valid)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    int bytes = valid ? 16 : 0; /* 0: the 16 bytes are zero-filled, nothing is read */
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}

__device__ static inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ static inline void cp_async_wait1() { asm volatile("cp.async.wait_group 1;\n" ::); }
__device__ static inline void cp_async_wait0() { asm volatile("cp.async.wait_group 0;\n" ::); }

__global__ void __launch_bounds__(IG_THREADS) k_igemm(igemm_args a)
{
    const int pipe_bytes = 2 * (IG_BM + IG_BN) * IG_LDS * 2, c_bytes = IG_BM * IG_LDC * 4;
    __shared__ __align__(128) unsigned char smem[pipe_bytes > c_bytes ? pipe_bytes : c_bytes];
    bf16(*sA)[IG_BM][IG_LDS] = reinterpret_cast<bf16(*)[IG_BM][IG_LDS]>(smem);
    bf16(*sB)[IG_BN][IG_LDS] = reinterpret_cast<bf16(*)[IG_BN][IG_LDS]>(smem + 2 * IG_BM * IG_LDS * 2);
    float *sC = reinterpret_cast<float *>(smem);

    int tid = threadIdx.x, vec = tid & 3, r0 = tid >> 2;
    int m0 = blockIdx.x * IG_BM, n0 = blockIdx.y * IG_BN;
    int taps = a.kt * a.kh * a.kw, chunks = (a.cinp + IG_BK - 1) / IG_BK, steps = taps * chunks;

    /* the two A rows this thread loads: where their receptive field starts */
    int tb[2], yb[2], xb[2];
    bool mv[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        int m = m0 + r0 + 64 * i;
        mv[i] = m < a.M;
        int mm = mv[i] ? m : 0;
        int x = mm % a.wo, q = mm / a.wo, y = q % a.ho, t = q / a.ho;
        tb[i] = t * a.st, yb[i] = y * a.sh - a.pt, xb[i] = x * a.sw - a.pl;
    }
    bool nv = n0 + r0 < a.coutp;
    const bf16 *wrow = a.w + (int64_t)(nv ? n0 + r0 : 0) * taps * a.cinp;

    auto load = [&](int step, int buf) {
        int tap = step / chunks, c = (step % chunks) * IG_BK + vec * 8;
        int ka = tap / (a.kh * a.kw), rem = tap % (a.kh * a.kw), kb = rem / a.kw, kd = rem % a.kw;
#pragma unroll
        for (int i = 0; i < 2; i++) {
            int ti = tb[i] + ka, yi = yb[i] + kb, xi = xb[i] + kd;
            bool ok = mv[i] && c < a.cinp && yi >= 0 && yi < a.h && xi >= 0 && xi < a.w_;
            const bf16 *src = ok ? a.in + (((int64_t)ti * a.h + yi) * a.w_ + xi) * a.cinp + c : a.in;
            cp_async16(&sA[buf][r0 + 64 * i][vec * 8], src, ok);
        }
        bool okb = nv && c < a.cinp;
        cp_async16(&sB[buf][r0][vec * 8], okb ? wrow + (int64_t)tap * a.cinp + c : a.w, okb);
        cp_async_commit();
    };

    int warp = tid >> 5, wm = warp & 3, wn = warp >> 2;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::fill_fragment(acc[i][j], 0.0f);

    load(0, 0);
    for (int s = 0; s < steps; s++) {
        int buf = s & 1;
        if (s + 1 < steps) {
            load(s + 1, buf ^ 1);
            cp_async_wait1();
        } else {
            cp_async_wait0();
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < IG_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; i++)
                wmma::load_matrix_sync(fa[i], &sA[buf][wm * 32 + i * 16][kk], IG_LDS);
#pragma unroll
            for (int j = 0; j < 2; j++)
                wmma::load_matrix_sync(fb[j], &sB[buf][wn * 32 + j * 16][kk], IG_LDS);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++)
                    wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads(); /* this buffer is refilled by the next iteration's load */
    }

    /* epilogue through shared memory (the pipeline buffers are free now) */
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(&sC[(wm * 32 + i * 16) * IG_LDC + wn * 32 + j * 16], acc[i][j],
                                    IG_LDC, wmma::mem_row_major);
    __syncthreads();
    for (int it = tid; it < IG_BM * (IG_BN / 8); it += IG_THREADS) {
        int r = it / (IG_BN / 8), v = it % (IG_BN / 8);
        int m = m0 + r, n = n0 + v * 8;
        if (m >= a.M || n >= a.coutp)
            continue;
        uint4 rv = make_uint4(0, 0, 0, 0), o;
        if (a.res)
            rv = *reinterpret_cast<const uint4 *>(a.res + (int64_t)m * a.coutp + n);
        const bf16 *re = reinterpret_cast<const bf16 *>(&rv);
        bf16 *oe = reinterpret_cast<bf16 *>(&o);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float f = sC[r * IG_LDC + v * 8 + k] + a.bias[n + k];
            if (a.res)
                f += __bfloat162float(re[k]);
            oe[k] = __float2bfloat16(f);
        }
        *reinterpret_cast<uint4 *>(a.out + (int64_t)m * a.coutp + n) = o;
    }
}

int vae_igemm_conv(cuda_vae *cv, const vae_conv *L, const vae_dconv *d, const bf16 *in, int tin,
                   int h, int w, bf16 *out, int to, int ho, int wo, const bf16 *res)
{
    int64_t M = (int64_t)to * ho * wo;
    if (M > 0x7fffffff / 2)
        return err_set(REEL_E_UNSUPPORTED, "vae: %s over %lld output voxels", L->name, (long long)M);
    igemm_args a = {in, d->w, res, d->b, out, tin, h, w, d->cinp, to, ho, wo, d->coutp,
                    L->kt, L->kh, L->kw, L->st, L->sh, L->sw, L->pad_top, L->pad_left, (int)M};
    dim3 grid((unsigned)((M + IG_BM - 1) / IG_BM), (unsigned)((d->coutp + IG_BN - 1) / IG_BN));
    k_igemm<<<grid, IG_THREADS, 0, cv->stream>>>(a);
    CUDA_TRY_LAUNCH("vae implicit-GEMM convolution");
    return REEL_OK;
}
