/* Scalar conversions between fp32 and the narrow float formats checkpoints use.
 * Rounding is to nearest even, as PyTorch's .to(bfloat16)/.half() do, so weights converted here
 * match weights converted there bit for bit. */
#ifndef REEL_NUMERIC_H
#define REEL_NUMERIC_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

static inline uint16_t f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a (quiet) NaN */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0) {
        if (man == 0)
            return f32_from_bits(sign);
        float v = ldexpf((float)man, -24); /* subnormal */
        return sign ? -v : v;
    }
    if (exp == 31)
        return f32_from_bits(sign | 0x7f800000u | (man << 13));
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t absu = u & 0x7fffffffu;
    if (absu > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (absu >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (absu < 0x38800000u) { /* below the smallest normal half: round in the subnormal grid */
        float a = f32_from_bits(absu);
        float q = a * 16777216.0f; /* units of 2^-24 */
        uint32_t r = (uint32_t)nearbyintf(q);
        return (uint16_t)(sign | r);
    }
    uint32_t e = (absu >> 23) - 112;
    uint32_t m = absu & 0x7fffffu;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

/* OCP float8 e4m3fn: no infinities, 0x7f/0xff are NaN, max 448. */
static inline float f8e4m3_to_f32(uint8_t v)
{
    uint32_t sign = v >> 7, exp = (v >> 3) & 0xfu, man = v & 0x7u;
    float r;
    if (exp == 0xf && man == 0x7)
        r = NAN;
    else if (exp == 0)
        r = ldexpf((float)man, -9);
    else
        r = ldexpf(1.0f + (float)man / 8.0f, (int)exp - 7);
    return sign ? -r : r;
}

/* float8 e5m2: IEEE-like, the top byte of an f16. */
static inline float f8e5m2_to_f32(uint8_t v) { return f16_to_f32((uint16_t)((uint16_t)v << 8)); }

#endif
