/* T5's relative position buckets and the per-layer bias table built from them.
 * Half the buckets hold keys after the query, half the others; in each half the first
 * max_exact = buckets/4 distances get a bucket each, and the rest share log-spaced buckets up to
 * max_distance, beyond which everything lands in the last one. The log is taken in float32 and
 * truncated, exactly as the PyTorch reference does, so that distances near a bucket edge fall on
 * the same side. Test: tests/test_t5_cpu.c. */
#include "t5_internal.h"

#include <math.h>

int t5_rel_bucket(int rel, int buckets, int max_distance)
{
    int half = buckets / 2;
    int base = rel > 0 ? half : 0;
    int dist = rel < 0 ? -rel : rel;
    int max_exact = half / 2;
    if (dist < max_exact)
        return base + dist;
    float scaled = logf((float)dist / (float)max_exact) /
                   (float)log((double)max_distance / (double)max_exact) * (float)(half - max_exact);
    int large = max_exact + (int)scaled;
    return base + (large < half - 1 ? large : half - 1);
}

void t5_bias_table(const float *emb, int buckets, int heads, int max_distance, float *table)
{
    for (int rel = -(T5_MAX_TOKENS - 1); rel <= T5_MAX_TOKENS - 1; rel++) {
        int b = t5_rel_bucket(rel, buckets, max_distance);
        for (int h = 0; h < heads; h++)
            table[(size_t)h * T5_BIAS_SPAN + rel + T5_MAX_TOKENS - 1] = emb[(size_t)b * heads + h];
    }
}
