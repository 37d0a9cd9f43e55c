#include "rope_table.h"

#include <math.h>

void rope_axis_pairs(int head_dim, int n[3])
{
    int pairs = head_dim / 2;
    n[1] = n[2] = pairs / 3;
    n[0] = pairs - 2 * n[1];
}

int64_t rope_table_entries(const rope_grid *g, int head_dim)
{
    int n[3];
    rope_axis_pairs(head_dim, n);
    return (int64_t)g->f * n[0] + (int64_t)g->h * n[1] + (int64_t)g->w * n[2];
}

/* One axis: rows positions starting at first, n pairs each. */
static float *fill_axis(float *cs, int rows, int first, int n)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < n; j++) {
            double angle = (double)(first + i) * pow(10000.0, -(double)j / n);
            *cs++ = (float)cos(angle);
            *cs++ = (float)sin(angle);
        }
    return cs;
}

void rope_table_fill(const rope_grid *g, int head_dim, float *cs)
{
    int n[3];
    rope_axis_pairs(head_dim, n);
    cs = fill_axis(cs, g->f, g->f0, n[0]);
    cs = fill_axis(cs, g->h, 0, n[1]);
    fill_axis(cs, g->w, 0, n[2]);
}
