#include "attn_mask.h"

#include "../dit/error.h"

#include <stdlib.h>
#include <string.h>

int attn_block_mask_init(attn_block_mask *m, int64_t q_tokens, int64_t kv_tokens)
{
    memset(m, 0, sizeof *m);
    if (q_tokens <= 0 || kv_tokens <= 0 || q_tokens > INT32_MAX || kv_tokens > INT32_MAX)
        return err_set(REEL_E_INVALID, "block mask: %lld x %lld tokens out of range",
                       (long long)q_tokens, (long long)kv_tokens);
    m->q_blocks = attn_blocks(q_tokens);
    m->kv_blocks = attn_blocks(kv_tokens);
    m->keep = calloc((size_t)m->q_blocks * m->kv_blocks, 1);
    if (!m->keep)
        return err_set(REEL_E_NOMEM, "block mask: %d x %d blocks: out of memory", m->q_blocks,
                       m->kv_blocks);
    return REEL_OK;
}

int attn_block_mask_finish(attn_block_mask *m)
{
    free(m->row_start);
    free(m->cols);
    m->cols = NULL;
    m->nnz = 0;
    m->row_start = malloc(((size_t)m->q_blocks + 1) * sizeof *m->row_start);
    size_t total = (size_t)m->q_blocks * m->kv_blocks;
    for (size_t i = 0; i < total; i++)
        m->nnz += m->keep[i] != 0;
    m->cols = malloc((m->nnz ? (size_t)m->nnz : 1) * sizeof *m->cols);
    if (!m->row_start || !m->cols)
        return err_set(REEL_E_NOMEM, "block mask: %lld tiles: out of memory", (long long)m->nnz);
    int32_t n = 0;
    for (int i = 0; i < m->q_blocks; i++) {
        m->row_start[i] = n;
        for (int j = 0; j < m->kv_blocks; j++)
            if (m->keep[(size_t)i * m->kv_blocks + j])
                m->cols[n++] = j;
    }
    m->row_start[m->q_blocks] = n;
    return REEL_OK;
}

double attn_block_mask_density(const attn_block_mask *m)
{
    size_t total = (size_t)m->q_blocks * m->kv_blocks, kept = 0;
    for (size_t i = 0; i < total; i++)
        kept += m->keep[i] != 0;
    return total ? (double)kept / (double)total : 0.0;
}

void attn_block_mask_release(attn_block_mask *m)
{
    free(m->keep);
    free(m->row_start);
    free(m->cols);
    memset(m, 0, sizeof *m);
}
