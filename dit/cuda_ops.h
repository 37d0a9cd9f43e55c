/* The CUDA backend's private interface (C++, .cu files only): its state, and the ops that live
 * in the cuda_*.cu files, one file per kernel family. Every op checks its arguments with
 * backend_args.h, then queues kernels on the backend's stream. */
#ifndef REEL_CUDA_OPS_H
#define REEL_CUDA_OPS_H

#include "backend.h"
#include "backend_args.h"
#include "cuda_check.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#define CUDA_STAGE_BYTES ((size_t)64 << 20)    /* per pinned staging buffer (two of them) */
#define CUDA_GEMM_WORKSPACE ((size_t)32 << 20) /* cuBLASLt workspace */
#define CUDA_GEMM_PLANS 64                     /* cached cuBLASLt heuristics */
#define CUDA_ROPE_TABLES 8                     /* cached RoPE tables (grids) */

/* Storage the CUDA ops accept for activations, weights and modulation vectors. */
#define CUDA_FLOATS (DTM(DT_F32) | DTM(DT_BF16))

struct gemm_plan; /* cuda_gemm.cu */

struct rope_table_entry {
    rope_grid g;
    int head_dim;
    float2 *table; /* device (cos, sin), rope_table.h layout */
    uint64_t last_use;
};

struct cuda_impl {
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace;
    gemm_plan *plans; /* CUDA_GEMM_PLANS */
    uint64_t tick;    /* use counter for least-recently-used eviction of plans and tables */
    rope_table_entry rope[CUDA_ROPE_TABLES];
    /* host<->device staging, allocated at the first copy that needs it */
    void *pinned[2], *raw[2];
    cudaEvent_t staged[2];
    int sm_count;
};

static inline cuda_impl *cuda_impl_of(backend *be) { return static_cast<cuda_impl *>(be->impl); }
static inline cudaStream_t cuda_stream(backend *be) { return cuda_impl_of(be)->stream; }

/* Makes the backend's device current for this thread (every entry point calls it). */
int cuda_enter(backend *be);

/* Stream-ordered scratch memory: REEL_E_DEVICE naming the request on failure. */
int cuda_scratch_alloc(backend *be, size_t bytes, void **ptr, const char *what);
int cuda_scratch_free(backend *be, void *ptr);

/* Grid for n independent items of `block` threads, capped to a few waves of the device. */
unsigned cuda_grid(backend *be, int64_t n, int block);

/* Kernels with one block per row: the grid (REEL_E_INVALID past 2^31 - 1 rows), and a block of
 * 32..256 threads for rows of `chunks` vector chunks. */
int cuda_row_grid(const char *op, int64_t rows, unsigned *grid);
static inline int cuda_row_block(int64_t chunks)
{
    return chunks >= 256 ? 256 : chunks <= 32 ? 32 : (int)(chunks + 31) / 32 * 32;
}

int cuda_copy(backend *be, const tensor *src, tensor *dst);
int cuda_fill(backend *be, tensor *t, float value);
void cuda_staging_release(cuda_impl *impl);

int cuda_gemm(backend *be, const tensor *a, const tensor *w, const tensor *bias, enum act act,
              tensor *out);
void cuda_gemm_plans_release(cuda_impl *impl);

int cuda_layer_norm(backend *be, const tensor *x, const tensor *weight, const tensor *bias,
                    const tensor *shift, const tensor *scale, float eps, tensor *out);
int cuda_rms_norm(backend *be, const tensor *x, const tensor *weight, float eps,
                  const rope_grid *rope, int head_dim, tensor *out);
int cuda_softmax(backend *be, const tensor *x, tensor *out);

int cuda_rope3d(backend *be, const tensor *x, const rope_grid *g, int head_dim, tensor *out);
/* The device table for (g, head_dim), built on first use and cached per backend. */
int cuda_rope_table(backend *be, const rope_grid *g, int head_dim, const float2 **table);
/* Queues the frees on the stream: synchronise it afterwards. */
void cuda_rope_tables_release(cuda_impl *impl);

int cuda_add_gated(backend *be, tensor *x, const tensor *y, const tensor *gate);
int cuda_add_gated_norm(backend *be, tensor *x, const tensor *y, const tensor *gate,
                        const tensor *weight, const tensor *bias, const tensor *shift,
                        const tensor *scale, float eps, tensor *out);
int cuda_modulate(backend *be, const tensor *x, const tensor *shift, const tensor *scale,
                  tensor *out);
int cuda_gelu_tanh(backend *be, const tensor *x, tensor *out);
int cuda_silu(backend *be, const tensor *x, tensor *out);
int cuda_lincomb(backend *be, int n, const tensor *const *in, const double *coef, tensor *out);
/* out = act(out + bias) over a row view: the GEMM epilogue when cuBLASLt cannot fuse it. */
int cuda_bias_act(backend *be, const row_view *out, const row_view *bias, enum act act);

int cuda_patch_embed(backend *be, const tensor *latent, const tensor *w, const tensor *bias,
                     tensor *out);
int cuda_unpatchify(backend *be, const tensor *x, const patch_geom *g, tensor *out);

#endif
