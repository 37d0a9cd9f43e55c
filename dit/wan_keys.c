#include "wan_keys.h"

#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Canonical -> diffusers, matched on the name's start (after `blocks.N.` for block tensors).
 * Note the swap: the original's affine `norm3` (before cross-attention) is diffusers' `norm2`. */
typedef struct key_pair {
    const char *canonical, *diffusers;
} key_pair;

static const key_pair top_map[] = {
    {"patch_embedding.", "patch_embedding."},
    {"text_embedding.0.", "condition_embedder.text_embedder.linear_1."},
    {"text_embedding.2.", "condition_embedder.text_embedder.linear_2."},
    {"time_embedding.0.", "condition_embedder.time_embedder.linear_1."},
    {"time_embedding.2.", "condition_embedder.time_embedder.linear_2."},
    {"time_projection.1.", "condition_embedder.time_proj."},
    {"head.head.", "proj_out."},
    {"head.modulation", "scale_shift_table"},
};

static const key_pair block_map[] = {
    {"modulation", "scale_shift_table"},
    {"self_attn.q.", "attn1.to_q."},
    {"self_attn.k.", "attn1.to_k."},
    {"self_attn.v.", "attn1.to_v."},
    {"self_attn.o.", "attn1.to_out.0."},
    {"self_attn.norm_q.", "attn1.norm_q."},
    {"self_attn.norm_k.", "attn1.norm_k."},
    {"cross_attn.q.", "attn2.to_q."},
    {"cross_attn.k.", "attn2.to_k."},
    {"cross_attn.v.", "attn2.to_v."},
    {"cross_attn.o.", "attn2.to_out.0."},
    {"cross_attn.norm_q.", "attn2.norm_q."},
    {"cross_attn.norm_k.", "attn2.norm_k."},
    {"norm3.", "norm2."},
    {"ffn.0.", "ffn.net.0.proj."},
    {"ffn.2.", "ffn.net.2."},
};

static int map_one(const char *name, const char *block_prefix, const key_pair *map, size_t count,
                   char *buf, size_t n, const char *canonical)
{
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(map[i].canonical);
        if (strncmp(name, map[i].canonical, len) == 0) {
            int w = snprintf(buf, n, "%s%s%s", block_prefix, map[i].diffusers, name + len);
            if (w < 0 || (size_t)w >= n)
                return err_set(REEL_E_INVALID, "key for '%s' too long", canonical);
            return REEL_OK;
        }
    }
    return err_set(REEL_E_INVALID, "no diffusers name for Wan tensor '%s'", canonical);
}

static int to_diffusers(const char *canonical, char *buf, size_t n)
{
    if (strncmp(canonical, "blocks.", 7) == 0) {
        char *end;
        long idx = strtol(canonical + 7, &end, 10);
        if (end == canonical + 7 || *end != '.')
            return err_set(REEL_E_INVALID, "malformed block tensor name '%s'", canonical);
        char block_prefix[32];
        snprintf(block_prefix, sizeof block_prefix, "blocks.%ld.", idx);
        return map_one(end + 1, block_prefix, block_map, sizeof block_map / sizeof block_map[0],
                       buf, n, canonical);
    }
    return map_one(canonical, "", top_map, sizeof top_map / sizeof top_map[0], buf, n, canonical);
}

int wan_key(const model_info *mi, const char *canonical, char *buf, size_t n)
{
    char mapped[256];
    if (mi->layout == LAYOUT_DIFFUSERS)
        TRY(to_diffusers(canonical, mapped, sizeof mapped));
    else if (snprintf(mapped, sizeof mapped, "%s", canonical) >= (int)sizeof mapped)
        return err_set(REEL_E_INVALID, "key for '%s' too long", canonical);
    int w = snprintf(buf, n, "%s%s", mi->prefix, mapped);
    if (w < 0 || (size_t)w >= n)
        return err_set(REEL_E_INVALID, "key for '%s' too long", canonical);
    return REEL_OK;
}
