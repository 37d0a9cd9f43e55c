/* Device helpers both flash kernels share (attn_flash.cu on mma.sync, attn_flash_sm90a.cu on
 * wgmma): the exponential, the bf16 packing of P, and the last key tile's fix-up. */
#ifndef REEL_ATTN_FLASH_UTIL_CUH
#define REEL_ATTN_FLASH_UTIL_CUH

#include "attn_flash.h"

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>

__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* The raw scores of one key in a thread's two rows, `off` keys past the thread's first key of
 * the tile, the last key being `last` past it: a key past the end takes no weight, the last key
 * takes the bias that stands for its copies (last_key_bias). off is a constant of the unrolled
 * loop, so this is compares against one register (a key index per element costs registers that
 * the Hopper kernel has none of). */
__device__ __forceinline__ void last_key_fix(float &row_a, float &row_b, int off, int last,
                                             float bias)
{
    /* selects, not branches: the branches cost the Hopper kernel 90 registers of spills */
    const float add = off == last ? bias : 0.f;
    row_a = off > last ? -INFINITY : row_a + add;
    row_b = off > last ? -INFINITY : row_b + add;
}

/* c copies of the last key weigh exp(scale s) c = exp(scale (s + ln(c) / scale)): a bias on its
 * raw score, which then also takes part in the running maximum. */
static inline float last_key_bias(const attn_flash_args *a)
{
    return a->last_key_copies > 1 ? logf((float)a->last_key_copies) / a->scale : 0.f;
}

#endif
