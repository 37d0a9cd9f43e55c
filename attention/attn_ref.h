/* CPU reference attention: what every attention kernel and plugin is checked against, and the
 * CPU path of the built-in plugins.
 *
 *   out[i, h, :] = sum_j p_ij v[j, h, :],  p_ij = exp(s_ij - lse_i),  s_ij = scale q_i . k_j
 *   lse[h, i] = log sum_j exp(s_ij)   (natural log of scaled scores, the ABI's LSE)
 *
 * over the keys j that the block mask and the element rule both keep; with last_key_copies
 * = c > 1 the last key counts c times (exp(s_ij) c in both sums). fp32 inputs and outputs,
 * scores, softmax and sums in double. A query with no key kept gets out = 0 and
 * lse = -inf (the CUDA kernel's convention, so partial attentions still merge by LSE).
 * Threaded over (head, query) rows. */
#ifndef REEL_ATTN_REF_H
#define REEL_ATTN_REF_H

#include "attn_mask.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element rule: nonzero when query qi may attend key ki (indices within this call). */
typedef int (*attn_keep_fn)(const void *ctx, int64_t qi, int64_t ki);

typedef struct attn_ref_args {
    const float *q, *k, *v; /* [tokens, heads, head_dim], rows *_stride floats apart */
    float *out;             /* [q_tokens, heads, head_dim] packed */
    float *lse;             /* [heads, q_tokens] or NULL */
    int64_t q_tokens, kv_tokens, q_stride, kv_stride;
    int heads, head_dim;
    float scale;
    const attn_block_mask *mask; /* NULL: every block */
    attn_keep_fn keep;           /* NULL: every element of a kept block */
    const void *keep_ctx;
    int threads; /* <= 0: one per online core */
    int64_t last_key_copies;     /* > 1: the last key and value stand for this many identical
                                    rows (a zero-padded text context), weighted so */
} attn_ref_args;

int attn_ref_forward(const attn_ref_args *a);

#ifdef __cplusplus
}
#endif
#endif
