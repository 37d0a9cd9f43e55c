#include "synth_fill.h"

#include "numeric.h"

void synth_fill_bf16(uint16_t *x, size_t n, float amp, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = f32_to_bf16(amp * ((float)(s >> 40) / 8388608.0f - 1.0f));
    }
}
