/* The CPU backend's private interface: its state, and the ops that live in the cpu_*.c files
 * (one per op family). Every op checks its arguments with backend_args.h first, then splits
 * rows over the worker pool. */
#ifndef REEL_CPU_OPS_H
#define REEL_CPU_OPS_H

#include "backend.h"
#include "backend_args.h"
#include "cpu_pool.h"

/* GEMM blocking: a task packs a KC x NC block of w into its worker's buffer and runs MR x NR
 * register tiles over MC rows of a (see cpu_gemm.c). */
#define CPU_GEMM_MR 6
#define CPU_GEMM_NR 16
#define CPU_GEMM_KC 256
#define CPU_GEMM_NC 128
#define CPU_GEMM_MC 48

typedef struct cpu_impl {
    cpu_pool *pool;
    float *pack; /* CPU_GEMM_KC * CPU_GEMM_NC floats per worker */
} cpu_impl;

static inline cpu_impl *cpu_impl_of(backend *be) { return (cpu_impl *)be->impl; }

/* Runs fn over `rows` rows of `cols` values each; small jobs stay on the calling thread. */
void cpu_for_rows(backend *be, int64_t rows, int64_t cols, cpu_task_fn fn, void *ctx);

/* Converts n values between float formats on the host (f32/f16/bf16/f8/f64 -> f32/f16/bf16);
 * equal dtypes copy bytes. The CUDA backend uses it for host-to-host copies too. */
int cpu_convert(const void *src, enum dtype sdt, void *dst, enum dtype ddt, int64_t n);

/* Rotates the pairs of one token row of heads x head_dim values (in may equal out). cs_t,
 * cs_h, cs_w: this token's (cos, sin) entries of rope_table.h for its frame, row and column. */
void cpu_rope_row(const float *in, float *out, int64_t cols, int head_dim, const float *cs_t,
                  const float *cs_h, const float *cs_w);

/* The table of rope_table.h for grid g on the heap (REEL_E_NOMEM), and the entries of token n. */
int cpu_rope_table(const rope_grid *g, int head_dim, float **cs);
void cpu_rope_token(const float *cs, const rope_grid *g, int head_dim, int64_t n,
                    const float **cs_t, const float **cs_h, const float **cs_w);

int cpu_gemm(backend *be, const tensor *a, const tensor *w, const tensor *bias, enum act act,
             tensor *out);
int cpu_layer_norm(backend *be, const tensor *x, const tensor *weight, const tensor *bias,
                   const tensor *shift, const tensor *scale, float eps, tensor *out);
int cpu_rms_norm(backend *be, const tensor *x, const tensor *weight, float eps,
                 const rope_grid *rope, int head_dim, tensor *out);
int cpu_softmax(backend *be, const tensor *x, tensor *out);
int cpu_rope3d(backend *be, const tensor *x, const rope_grid *g, int head_dim, tensor *out);
int cpu_add_gated(backend *be, tensor *x, const tensor *y, const tensor *gate);
int cpu_add_gated_norm(backend *be, tensor *x, const tensor *y, const tensor *gate,
                       const tensor *weight, const tensor *bias, const tensor *shift,
                       const tensor *scale, float eps, tensor *out);
int cpu_modulate(backend *be, const tensor *x, const tensor *shift, const tensor *scale,
                 tensor *out);
int cpu_gelu_tanh(backend *be, const tensor *x, tensor *out);
int cpu_silu(backend *be, const tensor *x, tensor *out);
int cpu_lincomb(backend *be, int n, const tensor *const *in, const double *coef, tensor *out);
int cpu_patch_embed(backend *be, const tensor *latent, const tensor *w, const tensor *bias,
                    tensor *out);
int cpu_unpatchify(backend *be, const tensor *x, const patch_geom *g, tensor *out);

#endif
