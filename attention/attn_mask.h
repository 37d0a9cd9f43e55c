/* Block masks: which (query block, key block) tiles of the attention matrix are computed.
 * Blocks are ATTN_BLOCK tokens on both sides; the last block of each side may be ragged.
 * The flash kernel reads the list form (per query block, its key blocks in ascending order),
 * so an empty tile costs nothing, not even a read of the mask. */
#ifndef REEL_ATTN_MASK_H
#define REEL_ATTN_MASK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTN_BLOCK 128

typedef struct attn_block_mask {
    int q_blocks, kv_blocks;
    uint8_t *keep;      /* [q_blocks][kv_blocks], 1 = computed */
    int32_t *row_start; /* [q_blocks + 1], from attn_block_mask_finish */
    int32_t *cols;      /* [nnz]: row i's key blocks are cols[row_start[i] .. row_start[i+1]) */
    int64_t nnz;
} attn_block_mask;

static inline int attn_blocks(int64_t tokens) { return (int)((tokens + ATTN_BLOCK - 1) / ATTN_BLOCK); }

/* An all-zero mask for q_tokens x kv_tokens. */
int attn_block_mask_init(attn_block_mask *m, int64_t q_tokens, int64_t kv_tokens);
/* Builds the list form from keep (call after the last change to keep). */
int attn_block_mask_finish(attn_block_mask *m);
/* Fraction of tiles computed: the kernel's time scales with it. */
double attn_block_mask_density(const attn_block_mask *m);
void attn_block_mask_release(attn_block_mask *m);

#ifdef __cplusplus
}
#endif
#endif
