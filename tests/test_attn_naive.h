/* Attention written the plainest way, for the attention tests to check reel's reference and
 * plugins against: one (head, query) at a time, all scores in double, two passes.
 * out [Lq, H, D] and lse [H, Lq] in double; keep == NULL keeps every key. */
#ifndef REEL_TEST_ATTN_NAIVE_H
#define REEL_TEST_ATTN_NAIVE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef int (*naive_keep_fn)(const void *ctx, int64_t qi, int64_t ki);

static void naive_attention(const float *q, const float *k, const float *v, int64_t Lq, int64_t Lk,
                            int H, int D, int64_t q_stride, int64_t kv_stride, double scale,
                            naive_keep_fn keep, const void *ctx, double *out, double *lse)
{
    double *s = malloc(sizeof(double) * (size_t)Lk);
    for (int h = 0; h < H; h++)
        for (int64_t i = 0; i < Lq; i++) {
            double m = -INFINITY;
            for (int64_t j = 0; j < Lk; j++) {
                s[j] = NAN;
                if (keep && !keep(ctx, i, j))
                    continue;
                double dot = 0;
                for (int c = 0; c < D; c++)
                    dot += (double)q[i * q_stride + h * D + c] * k[j * kv_stride + h * D + c];
                s[j] = dot * scale;
                m = fmax(m, s[j]);
            }
            double sum = 0;
            for (int64_t j = 0; j < Lk; j++)
                if (!isnan(s[j]))
                    sum += exp(s[j] - m);
            for (int c = 0; c < D; c++) {
                double acc = 0;
                for (int64_t j = 0; j < Lk; j++)
                    if (!isnan(s[j]))
                        acc += exp(s[j] - m) / sum * v[j * kv_stride + h * D + c];
                out[(i * H + h) * D + c] = sum > 0 ? acc : 0;
            }
            if (lse)
                lse[(int64_t)h * Lq + i] = sum > 0 ? m + log(sum) : -INFINITY;
        }
    free(s);
}

#endif
