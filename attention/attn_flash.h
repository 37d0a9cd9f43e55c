/* Block-sparse flash attention on CUDA (attn_flash.cu; reference: attn_ref.c; test:
 * tests/gpu/test_attn_kernel.c). bf16 q, k, v and out, head_dim 128 or 64, fp32 scores and
 * online softmax. Each CTA owns one 128-query block of one head and walks the key blocks its
 * row of the block mask lists (all of them when the mask is NULL), so empty tiles cost nothing.
 * Any token counts (ragged last blocks are masked inside the kernel). */
#ifndef REEL_ATTN_FLASH_H
#define REEL_ATTN_FLASH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which implementation runs: AUTO takes the Hopper wgmma kernel (attn_flash_sm90a.cu) on
 * sm_90 devices for head_dim 128 when the build has it, else the mma.sync kernel
 * (attn_flash.cu, sm_80 and later). The others force one (tests and benchmarks). */
enum attn_flash_kernel { ATTN_FLASH_AUTO = 0, ATTN_FLASH_MMA = 1, ATTN_FLASH_WGMMA = 2 };

typedef struct attn_flash_args {
    const void *q, *k, *v; /* bf16 [tokens, heads, head_dim], rows *_stride elements apart */
    void *out;             /* bf16 [q_tokens, heads, head_dim] packed */
    float *lse;            /* [heads, q_tokens] natural-log LSE of scaled scores, or NULL */
    int64_t q_tokens, kv_tokens, q_stride, kv_stride;
    int heads, head_dim;
    float scale;
    const int32_t *row_start, *cols; /* device copy of an attn_block_mask's lists; NULL: dense */
    void *stream;                    /* cudaStream_t */
    int kernel;                      /* enum attn_flash_kernel; 0 = AUTO */
    int64_t last_key_copies; /* > 1: the last key/value row stands for this many identical rows
                                (attn_ref.h); 0 or 1: for itself */
} attn_flash_args;

/* REEL_E_UNSUPPORTED for a head_dim other than 64/128, pointers/strides that are not 16-byte
 * aligned (8 elements), or ATTN_FLASH_WGMMA where it cannot run; REEL_E_DEVICE when the launch
 * fails. */
int attn_flash_forward(const attn_flash_args *a);

/* *yes = 1 when AUTO runs the wgmma kernel for this head_dim on the current device. */
int attn_flash_has_wgmma(int head_dim, int *yes);

#ifdef __cplusplus
}
#endif
#endif
