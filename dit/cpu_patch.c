/* CPU patch embedding (Conv3d with kernel = stride) and its inverse layout, unpatchify.
 * Patch embedding gathers each token's patch into a row (im2col, (c, pt, ph, pw) order, c
 * slowest, matching w[D, C, pt, ph, pw]) and runs the GEMM; the CUDA backend does the same.
 * Reference test: tests/test_ops_cpu.c (a naive convolution loop). */
#include "cpu_ops.h"

#include "error.h"

#include <stdlib.h>

typedef struct im2col_job {
    const float *latent;
    float *cols;
    patch_geom g;
    int64_t channels;
} im2col_job;

/* Rows of the im2col matrix: token (fi, yi, xi) -> C*pt*ph*pw values. */
static void im2col_rows(void *ctx, int64_t begin, int64_t end, int worker)
{
    const im2col_job *j = ctx;
    const patch_geom *g = &j->g;
    int64_t H = (int64_t)g->h * g->ph, W = (int64_t)g->w * g->pw;
    int64_t F = (int64_t)g->f * g->pt;
    int64_t k = j->channels * g->pt * g->ph * g->pw;
    for (int64_t n = begin; n < end; n++) {
        int64_t xi = n % g->w, yi = n / g->w % g->h, fi = n / ((int64_t)g->w * g->h);
        float *row = j->cols + n * k;
        for (int64_t c = 0; c < j->channels; c++)
            for (int t = 0; t < g->pt; t++)
                for (int y = 0; y < g->ph; y++) {
                    const float *src = j->latent + ((c * F + fi * g->pt + t) * H +
                                                    yi * g->ph + y) * W + xi * g->pw;
                    for (int x = 0; x < g->pw; x++)
                        *row++ = src[x];
                }
    }
}

int cpu_patch_embed(backend *be, const tensor *latent, const tensor *w, const tensor *bias,
                    tensor *out)
{
    patch_args p;
    unsigned f32 = DTM(DT_F32);
    TRY(barg_patch_embed("patch_embed", latent, w, bias, out, DEV_CPU, f32, f32, &p));
    int64_t tokens = p.out.rows, k = p.channels * p.g.pt * p.g.ph * p.g.pw;
    float *cols = malloc((size_t)(tokens * k > 0 ? tokens * k : 1) * sizeof(float));
    if (!cols)
        return err_set(REEL_E_NOMEM, "patch_embed: cannot allocate %lld x %lld patch rows",
                       (long long)tokens, (long long)k);
    im2col_job j = {latent->data, cols, p.g, p.channels};
    cpu_for_rows(be, tokens, k, im2col_rows, &j);
    tensor a = tensor_2d(cols, DT_F32, DEV_CPU, tokens, k);
    tensor w2 = tensor_2d(w->data, DT_F32, DEV_CPU, p.dim, k);
    int st = cpu_gemm(be, &a, &w2, bias, ACT_NONE, out);
    free(cols);
    return st;
}

typedef struct unpatch_job {
    row_view x;
    float *out;
    patch_geom g;
    int64_t channels;
} unpatch_job;

/* Token n's row, element ((pt*ph + py)*pw + px)*C + c -> out[c, fi*pt+t, yi*ph+py, xi*pw+px]. */
static void unpatch_rows(void *ctx, int64_t begin, int64_t end, int worker)
{
    const unpatch_job *j = ctx;
    const patch_geom *g = &j->g;
    int64_t H = (int64_t)g->h * g->ph, W = (int64_t)g->w * g->pw;
    int64_t F = (int64_t)g->f * g->pt, C = j->channels;
    for (int64_t n = begin; n < end; n++) {
        int64_t xi = n % g->w, yi = n / g->w % g->h, fi = n / ((int64_t)g->w * g->h);
        const float *row = (const float *)j->x.data + n * j->x.stride;
        for (int t = 0; t < g->pt; t++)
            for (int y = 0; y < g->ph; y++)
                for (int x = 0; x < g->pw; x++)
                    for (int64_t c = 0; c < C; c++)
                        j->out[((c * F + fi * g->pt + t) * H + yi * g->ph + y) * W +
                               xi * g->pw + x] = *row++;
    }
}

int cpu_unpatchify(backend *be, const tensor *x, const patch_geom *g, tensor *out)
{
    unpatch_job j = {.out = out->data, .g = *g};
    unsigned f32 = DTM(DT_F32);
    TRY(barg_unpatchify("unpatchify", x, g, out, DEV_CPU, f32, f32, &j.x, &j.channels));
    cpu_for_rows(be, j.x.rows, j.x.cols, unpatch_rows, &j);
    return REEL_OK;
}
