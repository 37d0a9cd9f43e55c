/* Argument checks shared by the CPU and CUDA backends: each op validates its tensors here
 * before any work is queued, so both backends reject the same calls with the same message
 * ("layer_norm: shift: expected [*, 1536] or [1536], got f32 [2, 1024]").
 * A row view is what dit/backend.h calls a tensor whose innermost dim is contiguous and whose
 * rows are evenly spaced; these helpers reduce every accepted tensor to such a view. */
#ifndef REEL_BACKEND_ARGS_H
#define REEL_BACKEND_ARGS_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A tensor seen as rows x cols with a row stride (elements), or a modulation vector seen as
 * groups x cols (groups = 1 for a [D] vector). */
typedef struct row_view {
    void *data;
    enum dtype dtype;
    int64_t rows, cols, stride;
} row_view;

/* Bit set of accepted dtypes: DTM(DT_F32) | DTM(DT_BF16). */
#define DTM(dt) (1u << (dt))

/* Checks device, dtype (mask) and the row layout of t; fills v. */
int barg_rows(const char *op, const char *arg, const tensor *t, enum device dev, unsigned dtypes,
              row_view *v);

/* As barg_rows, and the shape must equal ref's (same ndim and dims): the output of a row op. */
int barg_rows_like(const char *op, const char *arg, const tensor *t, const tensor *ref,
                   enum device dev, unsigned dtypes, row_view *v);

/* A contiguous [cols] vector (weight, bias); NULL is accepted and gives data = NULL. */
int barg_vec(const char *op, const char *arg, const tensor *t, int64_t cols, enum device dev,
             unsigned dtypes, row_view *v);

/* A modulation vector [cols] or [G, cols] (row stride allowed) for an input of `rows` rows:
 * G must divide rows. NULL is accepted and gives data = NULL. */
int barg_mod(const char *op, const char *arg, const tensor *t, int64_t rows, int64_t cols,
             enum device dev, unsigned dtypes, row_view *v);

/* A contiguous tensor of any shape (copy, fill, latents). */
int barg_contig(const char *op, const char *arg, const tensor *t, enum device dev,
                unsigned dtypes);

/* RoPE arguments: head_dim even and positive, cols a multiple of it, one row per grid token. */
int barg_rope(const char *op, const rope_grid *g, int head_dim, int64_t rows, int64_t cols);

/* GEMM: a [M, K] row view (K > 0), w [N, K] contiguous, bias [N] or NULL, out [M, N] row view. */
typedef struct gemm_args {
    row_view a, w, bias, out;
    int64_t m, n, k;
} gemm_args;
int barg_gemm(const char *op, const tensor *a, const tensor *w, const tensor *bias,
              const tensor *out, enum device dev, unsigned in_dtypes, unsigned bias_dtypes,
              unsigned out_dtypes, gemm_args *g);

/* Patch embedding: latent [C, F, H, W] contiguous, w [D, C, pt, ph, pw] contiguous, bias [D] or
 * NULL, out [f*h*w, D] row view; the geometry is read from w and the latent. */
typedef struct patch_args {
    patch_geom g;
    int64_t channels, dim; /* C and D */
    row_view bias, out;
} patch_args;
int barg_patch_embed(const char *op, const tensor *latent, const tensor *w, const tensor *bias,
                     const tensor *out, enum device dev, unsigned in_dtypes,
                     unsigned out_dtypes, patch_args *p);

/* Unpatchify: x [f*h*w, pt*ph*pw*C] row view, out [C, f*pt, h*ph, w*pw] contiguous; sets
 * *channels to C. */
int barg_unpatchify(const char *op, const tensor *x, const patch_geom *g, const tensor *out,
                    enum device dev, unsigned in_dtypes, unsigned out_dtypes, row_view *xv,
                    int64_t *channels);

/* lincomb: n in 1..BACKEND_LINCOMB_MAX, every input and out contiguous f32 with out's element
 * count, finite coefficients, and out either the very memory of an input or apart from it (a
 * shifted overlap would read values another thread has already written). */
int barg_lincomb(const char *op, int n, const tensor *const *in, const double *coef,
                 const tensor *out, enum device dev);

/* Group of row r in a modulation vector of m->rows groups over `rows` rows. */
static inline int64_t barg_group(const row_view *m, int64_t r, int64_t rows)
{
    return m->rows == 1 ? 0 : r / (rows / m->rows);
}

#ifdef __cplusplus
}
#endif
#endif
