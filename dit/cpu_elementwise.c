/* CPU element-wise row ops: AdaLN modulation, gated residual add, GELU (tanh), SiLU; and the
 * sampler's linear combination of latents in double (lincomb).
 * Reference test: tests/test_ops_cpu.c. */
#include "cpu_ops.h"

#include "error.h"

#include <math.h>

enum ew_kind { EW_MODULATE, EW_ADD_GATED, EW_GELU, EW_SILU };

typedef struct ew_job {
    enum ew_kind kind;
    row_view x, y, out; /* y: the residual branch of add_gated */
    row_view shift, scale, gate;
} ew_job;

static const float *group_row(const row_view *m, int64_t r, int64_t rows)
{
    return m->data ? (const float *)m->data + barg_group(m, r, rows) * m->stride : NULL;
}

static void ew_rows(void *ctx, int64_t begin, int64_t end, int worker)
{
    const ew_job *j = ctx;
    int64_t d = j->x.cols;
    for (int64_t r = begin; r < end; r++) {
        const float *x = (const float *)j->x.data + r * j->x.stride;
        float *o = (float *)j->out.data + r * j->out.stride;
        switch (j->kind) {
        case EW_MODULATE: {
            const float *sh = group_row(&j->shift, r, j->x.rows);
            const float *sc = group_row(&j->scale, r, j->x.rows);
            for (int64_t c = 0; c < d; c++)
                o[c] = x[c] * (sc ? 1.0f + sc[c] : 1.0f) + (sh ? sh[c] : 0.0f);
            break;
        }
        case EW_ADD_GATED: {
            const float *y = (const float *)j->y.data + r * j->y.stride;
            const float *g = group_row(&j->gate, r, j->x.rows);
            for (int64_t c = 0; c < d; c++)
                o[c] = x[c] + (g ? y[c] * g[c] : y[c]);
            break;
        }
        case EW_GELU:
            for (int64_t c = 0; c < d; c++) {
                float v = x[c];
                o[c] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
            }
            break;
        case EW_SILU:
            for (int64_t c = 0; c < d; c++)
                o[c] = x[c] / (1.0f + expf(-x[c]));
            break;
        }
    }
}

/* x and out: same shape, f32. */
static int ew_check(backend *be, const char *op, ew_job *j, const tensor *x, const tensor *out)
{
    TRY(barg_rows(op, "x", x, DEV_CPU, DTM(DT_F32), &j->x));
    TRY(barg_rows_like(op, "out", out, x, DEV_CPU, DTM(DT_F32), &j->out));
    return REEL_OK;
}

int cpu_modulate(backend *be, const tensor *x, const tensor *shift, const tensor *scale,
                 tensor *out)
{
    ew_job j = {.kind = EW_MODULATE};
    TRY(ew_check(be, "modulate", &j, x, out));
    TRY(barg_mod("modulate", "shift", shift, j.x.rows, j.x.cols, DEV_CPU, DTM(DT_F32), &j.shift));
    TRY(barg_mod("modulate", "scale", scale, j.x.rows, j.x.cols, DEV_CPU, DTM(DT_F32), &j.scale));
    cpu_for_rows(be, j.x.rows, j.x.cols, ew_rows, &j);
    return REEL_OK;
}

int cpu_add_gated(backend *be, tensor *x, const tensor *y, const tensor *gate)
{
    ew_job j = {.kind = EW_ADD_GATED};
    TRY(ew_check(be, "add_gated", &j, x, x));
    TRY(barg_rows_like("add_gated", "y", y, x, DEV_CPU, DTM(DT_F32), &j.y));
    TRY(barg_mod("add_gated", "gate", gate, j.x.rows, j.x.cols, DEV_CPU, DTM(DT_F32), &j.gate));
    cpu_for_rows(be, j.x.rows, j.x.cols, ew_rows, &j);
    return REEL_OK;
}

int cpu_gelu_tanh(backend *be, const tensor *x, tensor *out)
{
    ew_job j = {.kind = EW_GELU};
    TRY(ew_check(be, "gelu_tanh", &j, x, out));
    cpu_for_rows(be, j.x.rows, j.x.cols, ew_rows, &j);
    return REEL_OK;
}

int cpu_silu(backend *be, const tensor *x, tensor *out)
{
    ew_job j = {.kind = EW_SILU};
    TRY(ew_check(be, "silu", &j, x, out));
    cpu_for_rows(be, j.x.rows, j.x.cols, ew_rows, &j);
    return REEL_OK;
}

/* lincomb: the latent seen as rows of one value, so the pool splits it like any row op. */
typedef struct lincomb_job {
    int n;
    const float *in[BACKEND_LINCOMB_MAX];
    double coef[BACKEND_LINCOMB_MAX];
    float *out;
} lincomb_job;

static void lincomb_range(void *ctx, int64_t begin, int64_t end, int worker)
{
    const lincomb_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        /* one statement per operation: C may contract a*b + c within an expression into a fused
         * multiply-add (clang does by default), which the CUDA kernel does not do */
        double acc = j->coef[0] * (double)j->in[0][i];
        for (int k = 1; k < j->n; k++) {
            double term = j->coef[k] * (double)j->in[k][i];
            acc += term;
        }
        j->out[i] = (float)acc;
    }
}

int cpu_lincomb(backend *be, int n, const tensor *const *in, const double *coef, tensor *out)
{
    TRY(barg_lincomb("lincomb", n, in, coef, out, DEV_CPU));
    lincomb_job j = {.n = n, .out = out->data};
    for (int k = 0; k < n; k++) {
        j.in[k] = in[k]->data;
        j.coef[k] = coef[k];
    }
    cpu_for_rows(be, tensor_numel(out), 1, lincomb_range, &j);
    return REEL_OK;
}
