/* The Radial Attention static mask (Li et al. 2025, mit-han-lab/radial-attention
 * radial_attn/attn_mask.py; spec: shared/specs/radial.md). Tokens are grouped by latent frame,
 * P tokens per frame. For query frame i and key frame j, d = |i - j|:
 *   - key frame 0 is an attention sink: always kept;
 *   - otherwise the pair survives the split rule (far pairs are thinned once the window would
 *     fall below a block) and, within it, query a and key b (positions inside their frames)
 *     attend when |a - b| <= w(d): w(0) = P, w(1) = P/2, w(d>=2) = max(2^bl(P) / 2^bl(d) *
 *     decay_factor, 128), bl = bit length.
 * attn_radial_keep is that element rule; attn_radial_block_mask converts it to 128x128 tiles
 * exactly as the reference code does (see attn_radial_mask.c for the details and the one place
 * where reel goes beyond it: a token count that is not a multiple of the block). */
#ifndef REEL_ATTN_RADIAL_MASK_H
#define REEL_ATTN_RADIAL_MASK_H

#include "attn_mask.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_radial_geom {
    int frames;           /* latent frames */
    int64_t frame_tokens; /* tokens per frame (h*w of the token grid) */
    int64_t extra_tokens; /* tokens after the video (text in joint attention): dense */
    double decay_factor;  /* scales the window of far frames (Wan scripts: 0.2) */
} attn_radial_geom;

/* Window half-width for frame distance d, in tokens. */
double attn_radial_window(const attn_radial_geom *g, int d);
/* Whether frame pairs at distance d survive the split rule. */
bool attn_radial_pair_kept(const attn_radial_geom *g, int d);
/* The element rule for token indices (video tokens first, frame-major). */
bool attn_radial_keep(const attn_radial_geom *g, int64_t qi, int64_t ki);

/* The block mask over frames*frame_tokens + extra_tokens tokens, list form built. */
int attn_radial_block_mask(const attn_radial_geom *g, attn_block_mask *m);

#ifdef __cplusplus
}
#endif
#endif
