/* The CUDA executor of the Wan VAE, shared between its .cu files (C++ only).
 *
 * Activations are bf16 [t][h][w][cp] (channels last, cp = channels rounded up to 8 so every
 * voxel starts on a 16-byte boundary); channels past the real count are kept at zero by every
 * kernel. Convolution weights are bf16 [cout_p][kt][kh][kw][cin_p] (cuDNN's NDHWC filter
 * layout), biases and norm gains f32. Memory comes from a stream-ordered pool of the
 * executor's own, so its high-water mark is the VAE's activation peak. */
#ifndef REEL_VAE_CUDA_H
#define REEL_VAE_CUDA_H

#include "vae_internal.h"

#include "dit/cuda_check.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

typedef __nv_bfloat16 bf16;

enum vae_engine { VAE_ENGINE_AUTO, VAE_ENGINE_CUDNN, VAE_ENGINE_IGEMM };

struct vae_dnn; /* cuDNN plans of one convolution (vae_conv_cudnn.cu) */

/* A convolution's device copy. */
struct vae_dconv {
    bf16 *w;
    float *b;
    int cinp, coutp;
    vae_engine engine; /* chosen at the first run */
    vae_dnn *dnn;
};

struct cuda_vae {
    wan_vae *model; /* whose layers carry this executor's vae_dconv records */
    cudaStream_t stream;
    int device;
    cudaMemPool_t pool;
    cublasHandle_t blas;
    void *blas_ws;
    void *dnn;       /* cudnnHandle_t when built with cuDNN */
    void *dnn_ws;    /* cuDNN workspace (VAE_DNN_WS bytes), taken at the first cuDNN call */
    vae_engine force; /* REEL_VAE_CONV=cudnn|igemm, for tests and benchmarks */
    /* host staging: upload buffer and two download slots (pinned) */
    float *up_host;
    size_t up_cap;
    cudaEvent_t up_done;
    float *down_host[2];
    size_t down_cap[2];
    cudaEvent_t down_done[2];
    /* device weights, freed with the executor */
    void **weights;
    int nweights, weights_cap;
    size_t weight_bytes;
};

#define VAE_DNN_WS ((size_t)256 << 20)
#define VAE_BLAS_WS ((size_t)32 << 20)

static inline int vae_cp8(int c) { return (c + 7) & ~7; }

int vae_pool_alloc(cuda_vae *cv, size_t bytes, void **p, const char *what);
void vae_pool_free(cuda_vae *cv, void *p);

/* Kernels (vae_cuda_kernels.cu). rows = voxels; cp = padded channels of a row. */
/* y = RMS_norm(x) * gamma [then SiLU], over the c real channels of each row. */
int vae_k_norm(cuda_vae *cv, const bf16 *x, bf16 *y, const float *gamma, int64_t rows, int c,
               int cp, int silu);
/* y += bias [+ res] */
int vae_k_bias_res(cuda_vae *cv, bf16 *y, const float *bias, const bf16 *res, int64_t rows, int cp);
/* nearest 2x upsampling, interleaving channel halves into frame pairs when asked */
int vae_k_upsample(cuda_vae *cv, const bf16 *x, bf16 *y, int t_out, int h, int w, int cp_out,
                   int interleave);
/* f32 [c][t*h*w] -> bf16 [t*h*w][cp] and back (clamped to [-1, 1] when clamp) */
int vae_k_pack(cuda_vae *cv, const float *src, bf16 *dst, int c, int cp, int64_t vox);
int vae_k_unpack(cuda_vae *cv, const bf16 *src, float *dst, int c, int cp, int64_t vox, int clamp);
/* rows of n f32 scores -> softmax as bf16 */
int vae_k_softmax(cuda_vae *cv, const float *s, bf16 *p, int64_t rows, int n);

/* Convolution engines: out = conv(in) over in [tin][h][w][cinp] -> out [to][ho][wo][coutp],
 * bias and residual added by the igemm epilogue; cuDNN leaves them to vae_k_bias_res. */
int vae_igemm_conv(cuda_vae *cv, const vae_conv *L, const vae_dconv *d, const bf16 *in, int tin,
                   int h, int w, bf16 *out, int to, int ho, int wo, const bf16 *res);
#ifdef REEL_HAVE_CUDNN
int vae_cudnn_create(cuda_vae *cv);
void vae_cudnn_destroy(cuda_vae *cv);
void vae_cudnn_conv_free(vae_dconv *d);
/* REEL_E_UNSUPPORTED when cuDNN has no algorithm for this convolution. */
int vae_cudnn_conv(cuda_vae *cv, const vae_conv *L, vae_dconv *d, const bf16 *in, int tin, int h,
                   int w, bf16 *out, int to, int ho, int wo);
#endif

#endif
