/* Radial mask construction, following radial_attn/attn_mask.py (gen_log_mask_shrinked,
 * get_window_width, get_diagonal_split_mask, shrinkMaskStrict) with model_type "wan".
 *
 * Per frame pair (i, j) the reference builds the P x P element tile, pads it so that it sits
 * at its true token offset inside whole blocks (i*P mod 128 rows and j*P mod 128 columns of
 * zeros in front), and shrinks it to blocks: a block is kept when, among its key columns that
 * hold any kept element, more than 60 % hold more than 128/3 of them (column density = kept
 * rows / 128, ragged blocks included). Blocks of different pairs are OR-ed.
 * Details of the code that the spec page does not spell out, reproduced here:
 *   - shrinkMaskStrict keeps only the first ceil(P/128) block rows and columns of the padded
 *     tile: when a frame does not start on a block boundary, the block that holds its last
 *     rows (or columns) is judged only by the next frame's tiles;
 *   - the split rule also applies at d = 1 (it only bites when P < 128).
 * Where reel goes beyond the code: tokens past the last whole block of video tokens are dense
 * rows and columns. The code marks blocks from video_tokens // 128 on as dense (meant for text
 * tokens) but sizes its mask to whole blocks, so a ragged video tail (Wan 480p: 32760 tokens)
 * has no block there; reel keeps that tail block dense, which is what the code's own rule
 * gives once the mask covers it.
 * Instead of materialising tiles, each block's column counts come from interval arithmetic
 * (a band |a - b| <= w intersected with the block's rows), which gives the same integers. */
#include "attn_radial_mask.h"

#include "../dit/error.h"

#include <math.h>
#include <stdlib.h>

static int bit_length(int64_t v)
{
    int n = 0;
    while (v > 0) {
        n++;
        v >>= 1;
    }
    return n;
}

double attn_radial_window(const attn_radial_geom *g, int d)
{
    int64_t P = g->frame_tokens;
    if (d == 0)
        return (double)P;
    if (d == 1)
        return (double)(P / 2);
    double len = ldexp(1.0, bit_length(P) - bit_length(d)) * g->decay_factor;
    return len >= ATTN_BLOCK ? len : ATTN_BLOCK;
}

bool attn_radial_pair_kept(const attn_radial_geom *g, int d)
{
    int e = bit_length(g->frame_tokens) - bit_length(d); /* decay length = 2^e, no decay factor */
    if (e >= 7)                                          /* 2^e >= 128 = the block */
        return true;
    int shift = 7 - e; /* split factor int(128 / 2^e) = 2^shift */
    if (shift >= 31)
        return d == 0;
    return d % (1 << shift) == 0;
}

bool attn_radial_keep(const attn_radial_geom *g, int64_t qi, int64_t ki)
{
    int64_t P = g->frame_tokens, video = (int64_t)g->frames * P;
    if (qi >= video || ki >= video)
        return true;
    int64_t i = qi / P, j = ki / P, a = qi % P, b = ki % P;
    if (j == 0)
        return true;
    int d = (int)(i > j ? i - j : j - i);
    if (!attn_radial_pair_kept(g, d))
        return false;
    return (double)llabs(a - b) <= attn_radial_window(g, d);
}

/* Kept rows of column b within rows [alo, ahi) of a band |a - b| <= w. */
static int64_t band_count(int64_t alo, int64_t ahi, int64_t b, double w)
{
    if (isinf(w))
        return ahi - alo;
    int64_t lo = (int64_t)ceil((double)b - w), hi = (int64_t)floor((double)b + w);
    if (lo < alo)
        lo = alo;
    if (hi > ahi - 1)
        hi = ahi - 1;
    return hi >= lo ? hi - lo + 1 : 0;
}

/* shrinkMaskStrict for one block of one tile: rows [alo, ahi) and columns [blo, bhi) of the
 * tile fall in the block; the band has half-width w (infinite for a whole tile). */
static bool block_kept(int64_t alo, int64_t ahi, int64_t blo, int64_t bhi, double w)
{
    int64_t nonzero = 0, high = 0;
    for (int64_t b = blo; b < bhi; b++) {
        int64_t n = band_count(alo, ahi, b, w);
        nonzero += n > 0;
        high += 3 * n > ATTN_BLOCK; /* density n/128 > 1/3 */
    }
    return 5 * high > 3 * nonzero; /* fraction > 0.6 (and false when the block is empty) */
}

int attn_radial_block_mask(const attn_radial_geom *g, attn_block_mask *m)
{
    const int64_t P = g->frame_tokens, F = g->frames;
    if (F <= 0 || P <= 0 || g->extra_tokens < 0 || !(g->decay_factor > 0))
        return err_set(REEL_E_INVALID,
                       "radial mask: %lld frames of %lld tokens, %lld extra, decay %g: each must be "
                       "positive (extra may be 0)",
                       (long long)F, (long long)P, (long long)g->extra_tokens, g->decay_factor);
    const int64_t video = F * P, total = video + g->extra_tokens;
    TRY(attn_block_mask_init(m, total, total));
    const int nb = m->q_blocks;
    const int border = (int)(video / ATTN_BLOCK);
    for (int r = 0; r < nb; r++)
        for (int c = 0; c < nb; c++)
            if (r >= border || c >= border)
                m->keep[(size_t)r * nb + c] = 1;

    const int64_t k = (P - 1) / ATTN_BLOCK + 1; /* blocks per tile side after the shrink */
    for (int64_t i = 0; i < F; i++)
        for (int64_t j = 0; j < F; j++) {
            int d = (int)(i > j ? i - j : j - i);
            double w = INFINITY;
            if (j != 0) {
                if (!attn_radial_pair_kept(g, d))
                    continue;
                w = attn_radial_window(g, d);
            }
            const int64_t r0 = i * P, c0 = j * P;
            const int64_t pad_r = r0 % ATTN_BLOCK, pad_c = c0 % ATTN_BLOCK;
            for (int64_t bi = 0; bi < k; bi++) {
                int64_t alo = bi * ATTN_BLOCK - pad_r, ahi = alo + ATTN_BLOCK;
                alo = alo < 0 ? 0 : alo;
                ahi = ahi > P ? P : ahi;
                int64_t row = r0 / ATTN_BLOCK + bi;
                if (alo >= ahi || row >= nb)
                    continue;
                for (int64_t bj = 0; bj < k; bj++) {
                    int64_t blo = bj * ATTN_BLOCK - pad_c, bhi = blo + ATTN_BLOCK;
                    blo = blo < 0 ? 0 : blo;
                    bhi = bhi > P ? P : bhi;
                    int64_t col = c0 / ATTN_BLOCK + bj;
                    if (blo >= bhi || col >= nb)
                        continue;
                    uint8_t *cell = &m->keep[(size_t)row * nb + col];
                    if (!*cell && block_kept(alo, ahi, blo, bhi, w))
                        *cell = 1;
                }
            }
        }
    int st = attn_block_mask_finish(m);
    if (st < 0)
        attn_block_mask_release(m);
    return st;
}
