/* The Wan 3D RoPE tables (spec: /work/shared/specs/wan_dit_detail.md §3.7). A head of d channels
 * holds d/2 rotation pairs (2p, 2p+1); the pairs are split into a time part of
 * d/2 - 2*floor(d/6) pairs, then height and width parts of floor(d/6) pairs each (22/21/21 for
 * d = 128). Pair j of an axis with n pairs turns by position * 10000^(-j/n), position being
 * (frame + f0), row or column of the token.
 *
 * Both backends rotate from one table of (cos, sin) per axis position and pair, computed in
 * double and stored as fp32: the angles of late frames are large, and single-precision sin/cos
 * of a large fp32 angle would lose the digits that the reference (float64) keeps. */
#ifndef REEL_ROPE_TABLE_H
#define REEL_ROPE_TABLE_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Pairs per axis: n[0] time, n[1] height, n[2] width. */
void rope_axis_pairs(int head_dim, int n[3]);

/* Entries (cos, sin pairs) of the table: f*n[0] + h*n[1] + w*n[2]. */
int64_t rope_table_entries(const rope_grid *g, int head_dim);

/* Fills cs[2 * rope_table_entries()] with (cos, sin): first the time part [f][n0] (frame
 * index i means position i + f0), then height [h][n1], then width [w][n2]. */
void rope_table_fill(const rope_grid *g, int head_dim, float *cs);

#ifdef __cplusplus
}
#endif
#endif
