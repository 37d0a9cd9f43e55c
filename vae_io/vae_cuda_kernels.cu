/* Memory-bound kernels of the CUDA VAE executor, each the device twin of a loop in vae_cpu.c
 * (tests/gpu/test_vae_cuda.c compares whole decodes and encodes against the CPU executor).
 * Activations are bf16 rows of cp channels (see vae_cuda.h); every kernel moves 16-byte
 * vectors of 8 channels and computes in fp32. */
#include "vae_cuda.h"

#include <math.h>

static unsigned grid_for(int64_t items, int block)
{
    int64_t g = (items + block - 1) / block;
    return (unsigned)(g < 65536 * 16 ? (g < 1 ? 1 : g) : 65536 * 16); /* grid-stride beyond */
}

__device__ static inline float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ static inline float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ---- RMS norm (+ SiLU): one warp per row, lane i holds vectors i, i+32, ...
 * Reads and writes each row once: 2 x rows x cp x 2 bytes. CPU twin: rms_norm_cf. */
template <int VPL>
__global__ void k_norm(const bf16 *__restrict__ x, bf16 *__restrict__ y,
                       const float *__restrict__ gamma, int64_t rows, int cp, float scale, int silu)
{
    int lane = threadIdx.x & 31;
    int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows)
        return;
    int nv = cp >> 3;
    const uint4 *xr = reinterpret_cast<const uint4 *>(x + row * cp);
    uint4 *yr = reinterpret_cast<uint4 *>(y + row * cp);
    uint4 v[VPL];
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < VPL; i++) {
        int vi = lane + 32 * i;
        if (vi < nv) {
            v[i] = xr[vi];
            const bf16 *e = reinterpret_cast<const bf16 *>(&v[i]);
#pragma unroll
            for (int k = 0; k < 8; k++) {
                float f = __bfloat162float(e[k]);
                ss += f * f;
            }
        }
    }
    ss = warp_sum(ss);
    float inv = scale / fmaxf(sqrtf(ss), 1e-12f);
#pragma unroll
    for (int i = 0; i < VPL; i++) {
        int vi = lane + 32 * i;
        if (vi < nv) {
            const bf16 *e = reinterpret_cast<const bf16 *>(&v[i]);
            uint4 o;
            bf16 *oe = reinterpret_cast<bf16 *>(&o);
#pragma unroll
            for (int k = 0; k < 8; k++) {
                float f = __bfloat162float(e[k]) * inv * gamma[vi * 8 + k];
                if (silu)
                    f = f / (1.0f + __expf(-f));
                oe[k] = __float2bfloat16(f);
            }
            yr[vi] = o;
        }
    }
}

int vae_k_norm(cuda_vae *cv, const bf16 *x, bf16 *y, const float *gamma, int64_t rows, int c,
               int cp, int silu)
{
    const int block = 256, per_block = block / 32;
    unsigned grid = (unsigned)((rows + per_block - 1) / per_block);
    float scale = sqrtf((float)c);
    int nv = cp / 8;
    if (nv <= 32)
        k_norm<1><<<grid, block, 0, cv->stream>>>(x, y, gamma, rows, cp, scale, silu);
    else if (nv <= 64)
        k_norm<2><<<grid, block, 0, cv->stream>>>(x, y, gamma, rows, cp, scale, silu);
    else if (nv <= 128)
        k_norm<4><<<grid, block, 0, cv->stream>>>(x, y, gamma, rows, cp, scale, silu);
    else
        return err_set(REEL_E_UNSUPPORTED, "vae: RMS norm over %d channels (at most 1024)", c);
    CUDA_TRY_LAUNCH("vae norm");
    return REEL_OK;
}

/* ---- y += bias [+ res], one 16-byte vector per thread: 2 or 3 x bytes of y. */
__global__ void k_bias_res(bf16 *__restrict__ y, const float *__restrict__ bias,
                           const bf16 *__restrict__ res, int64_t nvec, int cpv)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < nvec;
         i += (int64_t)gridDim.x * blockDim.x) {
        int cvec = (int)(i % cpv);
        uint4 yv = reinterpret_cast<uint4 *>(y)[i], rv = make_uint4(0, 0, 0, 0);
        if (res)
            rv = reinterpret_cast<const uint4 *>(res)[i];
        bf16 *ye = reinterpret_cast<bf16 *>(&yv);
        const bf16 *re = reinterpret_cast<const bf16 *>(&rv);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float f = __bfloat162float(ye[k]) + bias[cvec * 8 + k];
            if (res)
                f += __bfloat162float(re[k]);
            ye[k] = __float2bfloat16(f);
        }
        reinterpret_cast<uint4 *>(y)[i] = yv;
    }
}

int vae_k_bias_res(cuda_vae *cv, bf16 *y, const float *bias, const bf16 *res, int64_t rows, int cp)
{
    int64_t nvec = rows * (cp / 8);
    k_bias_res<<<grid_for(nvec, 256), 256, 0, cv->stream>>>(y, bias, res, nvec, cp / 8);
    CUDA_TRY_LAUNCH("vae bias");
    return REEL_OK;
}

/* ---- nearest 2x upsampling: one output vector per thread, read once per output (4x reuse
 * of each input vector through L2). Interleaved: out frame t takes channels
 * [(t & 1) * c, ...) of input frame t / 2. CPU twin: cpu_upsample. */
__global__ void k_upsample(const uint4 *__restrict__ x, uint4 *__restrict__ y, int64_t nvec,
                           int h, int w, int cpv, int interleave)
{
    int W2 = 2 * w, H2 = 2 * h;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < nvec;
         i += (int64_t)gridDim.x * blockDim.x) {
        int v = (int)(i % cpv);
        int64_t p = i / cpv;
        int xo = (int)(p % W2);
        p /= W2;
        int yo = (int)(p % H2);
        int t = (int)(p / H2);
        int ts = interleave ? t >> 1 : t, vs = interleave ? (t & 1) * cpv + v : v;
        int cpv_in = interleave ? 2 * cpv : cpv;
        y[i] = x[(((int64_t)ts * h + (yo >> 1)) * w + (xo >> 1)) * cpv_in + vs];
    }
}

int vae_k_upsample(cuda_vae *cv, const bf16 *x, bf16 *y, int t_out, int h, int w, int cp_out,
                   int interleave)
{
    int64_t nvec = (int64_t)t_out * 4 * h * w * (cp_out / 8);
    k_upsample<<<grid_for(nvec, 256), 256, 0, cv->stream>>>(
        reinterpret_cast<const uint4 *>(x), reinterpret_cast<uint4 *>(y), nvec, h, w, cp_out / 8,
        interleave);
    CUDA_TRY_LAUNCH("vae upsample");
    return REEL_OK;
}

/* ---- layout changes at the host boundary: f32 [c][vox] <-> bf16 [vox][cp] */
__global__ void k_pack(const float *__restrict__ src, uint4 *__restrict__ dst, int c, int cpv,
                       int64_t vox)
{
    int64_t n = vox * cpv;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i % vox; /* consecutive threads: consecutive voxels, coalesced reads */
        int v = (int)(i / vox);
        uint4 o;
        bf16 *oe = reinterpret_cast<bf16 *>(&o);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            int ch = v * 8 + k;
            oe[k] = __float2bfloat16(ch < c ? src[(int64_t)ch * vox + p] : 0.0f);
        }
        dst[p * cpv + v] = o;
    }
}

int vae_k_pack(cuda_vae *cv, const float *src, bf16 *dst, int c, int cp, int64_t vox)
{
    k_pack<<<grid_for(vox * (cp / 8), 256), 256, 0, cv->stream>>>(
        src, reinterpret_cast<uint4 *>(dst), c, cp / 8, vox);
    CUDA_TRY_LAUNCH("vae pack");
    return REEL_OK;
}

__global__ void k_unpack(const bf16 *__restrict__ src, float *__restrict__ dst, int c, int cp,
                         int64_t vox, int clamp)
{
    int64_t n = vox * c;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i % vox;
        int ch = (int)(i / vox);
        float f = __bfloat162float(src[p * cp + ch]);
        dst[i] = clamp ? fminf(fmaxf(f, -1.0f), 1.0f) : f;
    }
}

int vae_k_unpack(cuda_vae *cv, const bf16 *src, float *dst, int c, int cp, int64_t vox, int clamp)
{
    k_unpack<<<grid_for(vox * c, 256), 256, 0, cv->stream>>>(src, dst, c, cp, vox, clamp);
    CUDA_TRY_LAUNCH("vae unpack");
    return REEL_OK;
}

/* ---- softmax over rows of n f32 scores into bf16 probabilities: one block per row, the row
 * read three times (max, sum, write; it stays in L1/L2) and written once. */
__global__ void k_softmax(const float *__restrict__ s, bf16 *__restrict__ p, int n)
{
    __shared__ float red[32];
    const float *r = s + (int64_t)blockIdx.x * n;
    bf16 *o = p + (int64_t)blockIdx.x * n;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        m = fmaxf(m, r[i]);
    m = warp_max(m);
    if (lane == 0)
        red[warp] = m;
    __syncthreads();
    m = lane < nw ? red[lane] : -INFINITY;
    m = warp_max(m);
    __syncthreads();
    float sum = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        sum += __expf(r[i] - m);
    sum = warp_sum(sum);
    if (lane == 0)
        red[warp] = sum;
    __syncthreads();
    sum = lane < nw ? red[lane] : 0.0f;
    sum = warp_sum(sum);
    float inv = 1.0f / sum;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        o[i] = __float2bfloat16(__expf(r[i] - m) * inv);
}

int vae_k_softmax(cuda_vae *cv, const float *s, bf16 *p, int64_t rows, int n)
{
    k_softmax<<<(unsigned)rows, 256, 0, cv->stream>>>(s, p, n);
    CUDA_TRY_LAUNCH("vae softmax");
    return REEL_OK;
}
