/* CPU Wan 3D RoPE: each token row of heads x head_dim values has its adjacent channel pairs
 * rotated by the angles of its frame, row and column (rope_table.h). The table is built per
 * call in double and rounded to fp32, as on CUDA. Reference test: tests/test_ops_cpu.c. */
#include "cpu_ops.h"

#include "error.h"
#include "rope_table.h"

#include <stdlib.h>

int cpu_rope_table(const rope_grid *g, int head_dim, float **cs)
{
    int64_t n = rope_table_entries(g, head_dim);
    *cs = malloc((size_t)(n > 0 ? n : 1) * 2 * sizeof(float));
    if (!*cs)
        return err_set(REEL_E_NOMEM, "rope: cannot allocate a table of %lld entries",
                       (long long)n);
    rope_table_fill(g, head_dim, *cs);
    return REEL_OK;
}

void cpu_rope_token(const float *cs, const rope_grid *g, int head_dim, int64_t n,
                    const float **cs_t, const float **cs_h, const float **cs_w)
{
    int np[3];
    rope_axis_pairs(head_dim, np);
    int64_t xi = n % g->w, yi = n / g->w % g->h, ti = n / ((int64_t)g->w * g->h);
    *cs_t = cs + 2 * ti * np[0];
    cs += 2 * (int64_t)g->f * np[0];
    *cs_h = cs + 2 * yi * np[1];
    cs += 2 * (int64_t)g->h * np[1];
    *cs_w = cs + 2 * xi * np[2];
}

void cpu_rope_row(const float *in, float *out, int64_t cols, int head_dim, const float *cs_t,
                  const float *cs_h, const float *cs_w)
{
    int np[3];
    rope_axis_pairs(head_dim, np);
    for (int64_t h0 = 0; h0 < cols; h0 += head_dim)
        for (int p = 0; p < head_dim / 2; p++) {
            const float *cs = p < np[0] ? cs_t + 2 * p
                              : p < np[0] + np[1] ? cs_h + 2 * (p - np[0])
                                                  : cs_w + 2 * (p - np[0] - np[1]);
            float a = in[h0 + 2 * p], b = in[h0 + 2 * p + 1];
            out[h0 + 2 * p] = a * cs[0] - b * cs[1];
            out[h0 + 2 * p + 1] = a * cs[1] + b * cs[0];
        }
}

typedef struct rope_job {
    row_view x, out;
    const rope_grid *g;
    int head_dim;
    const float *table;
} rope_job;

static void rope_rows(void *ctx, int64_t begin, int64_t end, int worker)
{
    const rope_job *j = ctx;
    for (int64_t r = begin; r < end; r++) {
        const float *ct, *ch, *cw;
        cpu_rope_token(j->table, j->g, j->head_dim, r, &ct, &ch, &cw);
        cpu_rope_row((const float *)j->x.data + r * j->x.stride,
                     (float *)j->out.data + r * j->out.stride, j->x.cols, j->head_dim, ct, ch, cw);
    }
}

int cpu_rope3d(backend *be, const tensor *x, const rope_grid *g, int head_dim, tensor *out)
{
    rope_job j = {.g = g, .head_dim = head_dim};
    TRY(barg_rows("rope3d", "x", x, DEV_CPU, DTM(DT_F32), &j.x));
    TRY(barg_rows_like("rope3d", "out", out, x, DEV_CPU, DTM(DT_F32), &j.out));
    TRY(barg_rope("rope3d", g, head_dim, j.x.rows, j.x.cols));
    float *table;
    TRY(cpu_rope_table(g, head_dim, &table));
    j.table = table;
    cpu_for_rows(be, j.x.rows, j.x.cols, rope_rows, &j);
    free(table);
    return REEL_OK;
}
