/* Random values for synthetic checkpoints (benchmarks at real shapes without downloads):
 * xorshift64, uniform in [-amp, amp), stored as bf16. The same seed gives the same file. */
#ifndef REEL_SYNTH_FILL_H
#define REEL_SYNTH_FILL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void synth_fill_bf16(uint16_t *x, size_t n, float amp, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
