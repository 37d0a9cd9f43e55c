/* CPU row reductions: LayerNorm (+ affine, + AdaLN modulation), RMSNorm (+ 3D RoPE), softmax.
 * One row at a time, rows split over the pool; statistics accumulate in double so the
 * reference stays well below the fp32 tolerance of the CUDA tests even for wide rows.
 * Reference test: tests/test_ops_cpu.c. */
#include "cpu_ops.h"

#include "error.h"

#include <math.h>
#include <stdlib.h>

typedef struct ln_job {
    row_view x, out, weight, bias, shift, scale;
    float eps;
} ln_job;

static void ln_rows(void *ctx, int64_t begin, int64_t end, int worker)
{
    const ln_job *j = ctx;
    int64_t d = j->x.cols;
    const float *wt = j->weight.data, *bs = j->bias.data;
    for (int64_t r = begin; r < end; r++) {
        const float *x = (const float *)j->x.data + r * j->x.stride;
        float *o = (float *)j->out.data + r * j->out.stride;
        const float *sh = j->shift.data, *sc = j->scale.data;
        if (sh)
            sh += barg_group(&j->shift, r, j->x.rows) * j->shift.stride;
        if (sc)
            sc += barg_group(&j->scale, r, j->x.rows) * j->scale.stride;
        double sum = 0, sq = 0;
        for (int64_t c = 0; c < d; c++)
            sum += x[c];
        float mean = (float)(sum / d);
        for (int64_t c = 0; c < d; c++) {
            double v = (double)x[c] - mean;
            sq += v * v;
        }
        float rstd = (float)(1.0 / sqrt(sq / d + j->eps));
        for (int64_t c = 0; c < d; c++) {
            float v = (x[c] - mean) * rstd;
            if (wt)
                v *= wt[c];
            if (bs)
                v += bs[c];
            if (sc)
                v *= 1.0f + sc[c];
            if (sh)
                v += sh[c];
            o[c] = v;
        }
    }
}

int cpu_layer_norm(backend *be, const tensor *x, const tensor *weight, const tensor *bias,
                   const tensor *shift, const tensor *scale, float eps, tensor *out)
{
    const char *op = "layer_norm";
    unsigned f32 = DTM(DT_F32);
    ln_job j = {.eps = eps};
    TRY(barg_rows(op, "x", x, DEV_CPU, f32, &j.x));
    TRY(barg_rows_like(op, "out", out, x, DEV_CPU, f32, &j.out));
    TRY(barg_vec(op, "weight", weight, j.x.cols, DEV_CPU, f32, &j.weight));
    TRY(barg_vec(op, "bias", bias, j.x.cols, DEV_CPU, f32, &j.bias));
    TRY(barg_mod(op, "shift", shift, j.x.rows, j.x.cols, DEV_CPU, f32, &j.shift));
    TRY(barg_mod(op, "scale", scale, j.x.rows, j.x.cols, DEV_CPU, f32, &j.scale));
    cpu_for_rows(be, j.x.rows, j.x.cols, ln_rows, &j);
    return REEL_OK;
}

/* The reference is the two ops in turn. */
int cpu_add_gated_norm(backend *be, tensor *x, const tensor *y, const tensor *gate,
                       const tensor *weight, const tensor *bias, const tensor *shift,
                       const tensor *scale, float eps, tensor *out)
{
    TRY(cpu_add_gated(be, x, y, gate));
    return cpu_layer_norm(be, x, weight, bias, shift, scale, eps, out);
}

typedef struct rms_job {
    row_view x, out, weight;
    float eps;
    const rope_grid *rope;
    int head_dim;
    const float *table;
} rms_job;

static void rms_rows(void *ctx, int64_t begin, int64_t end, int worker)
{
    const rms_job *j = ctx;
    int64_t d = j->x.cols;
    const float *wt = j->weight.data;
    for (int64_t r = begin; r < end; r++) {
        const float *x = (const float *)j->x.data + r * j->x.stride;
        float *o = (float *)j->out.data + r * j->out.stride;
        double sq = 0;
        for (int64_t c = 0; c < d; c++)
            sq += (double)x[c] * x[c];
        float rs = (float)(1.0 / sqrt(sq / d + j->eps));
        for (int64_t c = 0; c < d; c++)
            o[c] = x[c] * rs * wt[c];
        if (j->rope) {
            const float *ct, *ch, *cw;
            cpu_rope_token(j->table, j->rope, j->head_dim, r, &ct, &ch, &cw);
            cpu_rope_row(o, o, d, j->head_dim, ct, ch, cw);
        }
    }
}

int cpu_rms_norm(backend *be, const tensor *x, const tensor *weight, float eps,
                 const rope_grid *rope, int head_dim, tensor *out)
{
    const char *op = "rms_norm";
    unsigned f32 = DTM(DT_F32);
    rms_job j = {.eps = eps, .rope = rope, .head_dim = head_dim};
    TRY(barg_rows(op, "x", x, DEV_CPU, f32, &j.x));
    TRY(barg_rows_like(op, "out", out, x, DEV_CPU, f32, &j.out));
    if (!weight)
        return err_set(REEL_E_INVALID, "%s: weight is NULL", op);
    TRY(barg_vec(op, "weight", weight, j.x.cols, DEV_CPU, f32, &j.weight));
    float *table = NULL;
    if (rope) {
        TRY(barg_rope(op, rope, head_dim, j.x.rows, j.x.cols));
        TRY(cpu_rope_table(rope, head_dim, &table));
    }
    j.table = table;
    cpu_for_rows(be, j.x.rows, j.x.cols, rms_rows, &j);
    free(table);
    return REEL_OK;
}

typedef struct softmax_job {
    row_view x, out;
} softmax_job;

static void softmax_rows(void *ctx, int64_t begin, int64_t end, int worker)
{
    const softmax_job *j = ctx;
    int64_t d = j->x.cols;
    for (int64_t r = begin; r < end; r++) {
        const float *x = (const float *)j->x.data + r * j->x.stride;
        float *o = (float *)j->out.data + r * j->out.stride;
        float mx = -INFINITY;
        for (int64_t c = 0; c < d; c++)
            mx = x[c] > mx ? x[c] : mx;
        double sum = 0;
        for (int64_t c = 0; c < d; c++) {
            o[c] = expf(x[c] - mx);
            sum += o[c];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t c = 0; c < d; c++)
            o[c] *= inv;
    }
}

int cpu_softmax(backend *be, const tensor *x, tensor *out)
{
    softmax_job j;
    TRY(barg_rows("softmax", "x", x, DEV_CPU, DTM(DT_F32), &j.x));
    TRY(barg_rows_like("softmax", "out", out, x, DEV_CPU, DTM(DT_F32), &j.out));
    cpu_for_rows(be, j.x.rows, j.x.cols, softmax_rows, &j);
    return REEL_OK;
}
