/* A backend is one table of operations over tensor views (the ggml-backend idea): the CPU
 * backend computes in fp32 and is the reference; the CUDA backend stores activations in bf16,
 * accumulates in fp32, and keeps norms, softmax and modulation in fp32.
 *
 * Every op returns REEL_OK or a negative status with a message naming the op and the tensor
 * at fault (dtype, device or shape). Ops that work row by row take any view whose innermost
 * dim is contiguous and whose rows are evenly spaced (tensor_row_stride), so slices of a fused
 * QKV projection can be passed directly. Ops queue work on the backend's stream; results are
 * visible to the host after sync (the CPU backend is synchronous).
 *
 * Modulation vectors (shift, scale, gate) are [D] or [G, D]: with G groups, row r of an
 * [R, D] input uses group r / (R / G); this is how per-frame timesteps of the causal model
 * modulate each frame's tokens. A [G, D] modulation view may have a row stride larger than D
 * (the DiT slices shift/scale/gate out of one [G, 6D] buffer).
 *
 * Row ops (layer_norm, rms_norm, rope3d, modulate, gelu_tanh, silu, softmax) may run in place:
 * out may be the same view as x. */
#ifndef REEL_BACKEND_H
#define REEL_BACKEND_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct backend backend;

enum act { ACT_NONE, ACT_GELU_TANH };

/* Token grid of a video and where its first frame sits in time (RoPE positions are absolute:
 * the causal model rotates chunk j's frames at f0 = first latent frame of the chunk). */
typedef struct rope_grid {
    int f, h, w;
    int f0;
} rope_grid;

/* Patch layout: a latent [C, f*pt, h*ph, w*pw] and its tokens [f*h*w, pt*ph*pw*C]. */
typedef struct patch_geom {
    int pt, ph, pw;
    int f, h, w;
} patch_geom;

/* Most inputs one lincomb call takes (the UniPC corrector's four terms). */
#define BACKEND_LINCOMB_MAX 4

struct backend_ops {
    const char *name;
    void (*destroy)(backend *be); /* frees impl and be itself */

    /* Memory on this backend's device. alloc of 0 bytes gives NULL and REEL_OK. */
    int (*alloc)(backend *be, size_t bytes, void **ptr);
    void (*free)(backend *be, void *ptr);
    /* Copies between any two devices (host<->device through pinned staging on CUDA), converting
     * dtype when src and dst differ (float formats f32/f16/bf16/f8 -> f32/f16/bf16). Shapes must
     * have equal element counts; both views contiguous. */
    int (*copy)(backend *be, const tensor *src, tensor *dst);
    /* Sets every element of a contiguous float tensor to value (NaN allowed: used to poison). */
    int (*fill)(backend *be, tensor *t, float value);
    int (*sync)(backend *be);
    /* Free and total memory of the device (cudaMemGetInfo); NULL on backends without a device
     * memory of their own (CPU). */
    int (*mem_info)(backend *be, size_t *free_bytes, size_t *total_bytes);

    /* out[M,N] = act(a[M,K] · w[N,K]^T + bias[N]).  w is a weight in PyTorch [out, in] layout.
     * CUDA: a and w bf16 (tensor cores, fp32 accumulation), bias bf16/f32/NULL, out bf16 or f32;
     * or a and w both f32 with f32 out, computed in true fp32 (no TF32): the time-embedding MLP
     * and the output head run this way because the reference keeps them in fp32. CPU: f32.
     * a and out may be row views with a row stride larger than their width. */
    int (*gemm)(backend *be, const tensor *a, const tensor *w, const tensor *bias, enum act act,
                tensor *out);

    /* out = LN(x) [* weight + bias] [* (1 + scale) + shift] over the innermost dim, eps inside
     * the square root; any of weight, bias, shift, scale may be NULL. Statistics in fp32. */
    int (*layer_norm)(backend *be, const tensor *x, const tensor *weight, const tensor *bias,
                      const tensor *shift, const tensor *scale, float eps, tensor *out);

    /* out = x * rsqrt(mean(x^2) + eps) * weight over the innermost dim (the whole model width,
     * before heads are split), then, when rope is not NULL, 3D RoPE on each head of head_dim
     * channels (the row of token n is [heads * head_dim]). Computed in fp32. */
    int (*rms_norm)(backend *be, const tensor *x, const tensor *weight, float eps,
                    const rope_grid *rope, int head_dim, tensor *out);

    /* Wan 3D RoPE on rows of [heads * head_dim] (row n = token n of the grid, frame-major):
     * adjacent channel pairs rotated, pairs split t/h/w as in the Wan spec. In place allowed. */
    int (*rope3d)(backend *be, const tensor *x, const rope_grid *g, int head_dim, tensor *out);

    /* x += y * gate (gate [D] or [G, D], or NULL for a plain residual add). x is f32. */
    int (*add_gated)(backend *be, tensor *x, const tensor *y, const tensor *gate);
    /* add_gated(x, y, gate), then out = layer_norm(x, weight, bias, shift, scale): the DiT's
     * residual updates are each followed by the norm that reads x next, and one pass over the
     * row saves a read of the f32 stream. */
    int (*add_gated_norm)(backend *be, tensor *x, const tensor *y, const tensor *gate,
                          const tensor *weight, const tensor *bias, const tensor *shift,
                          const tensor *scale, float eps, tensor *out);

    /* out = x * (1 + scale) + shift, modulation vectors as above; shift or scale may be NULL
     * (out = x + shift adds a per-column vector to every row: the DiT adds a block's learned
     * modulation to the shared time projection this way). */
    int (*modulate)(backend *be, const tensor *x, const tensor *shift, const tensor *scale,
                    tensor *out);

    int (*gelu_tanh)(backend *be, const tensor *x, tensor *out);
    int (*silu)(backend *be, const tensor *x, tensor *out);
    /* Softmax over the innermost dim, fp32 inside. */
    int (*softmax)(backend *be, const tensor *x, tensor *out);

    /* latent [C, F, H, W] -> tokens [f*h*w, D] with a Conv3d whose kernel equals its stride:
     * w [D, C, pt, ph, pw], bias [D]. The patch geometry is read from w. */
    int (*patch_embed)(backend *be, const tensor *latent, const tensor *w, const tensor *bias,
                       tensor *out);

    /* tokens [f*h*w, pt*ph*pw*C] (channel fastest, then pw, ph, pt) -> latent [C, F, H, W]. */
    int (*unpatchify)(backend *be, const tensor *x, const patch_geom *g, tensor *out);

    /* out[i] = (float)(coef[0] * in[0][i] + ... + coef[n-1] * in[n-1][i]) for n = 1 ..
     * BACKEND_LINCOMB_MAX contiguous f32 tensors of out's element count (shapes may differ):
     * the sampler's updates and classifier-free guidance. Each product and each partial sum is
     * one IEEE double operation (input 0 first, no fused multiply-add), then one rounding to
     * f32, so every backend gives the same bits. out may be one of the inputs (same data);
     * it must not partly overlap any. */
    int (*lincomb)(backend *be, int n, const tensor *const *in, const double *coef, tensor *out);
};

struct backend {
    const struct backend_ops *ops;
    enum device dev;
    int threads;       /* CPU worker threads */
    int device_index;  /* CUDA device */
    void *stream;      /* cudaStream_t on CUDA */
    void *impl;        /* backend-private state (cuBLASLt handle, workspace, staging, pool) */
};

/* threads <= 0: one per online core. */
int backend_cpu_create(int threads, backend **out);
/* REEL_E_UNSUPPORTED when reel was built without CUDA or no device is present. */
int backend_cuda_create(int device_index, backend **out);
void backend_free(backend *be);

/* "cpu" or "cuda" (or "cuda:N"). */
int backend_create_by_name(const char *name, backend **out);

/* Allocates a contiguous tensor on the backend's device; free with backend_tensor_free. */
int backend_tensor_alloc(backend *be, enum dtype dt, int ndim, const int64_t *shape, tensor *out);
void backend_tensor_free(backend *be, tensor *t);

#ifdef __cplusplus
}
#endif
#endif
