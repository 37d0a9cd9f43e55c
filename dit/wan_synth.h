/* Synthetic Wan DiT checkpoints in the original release's layout (config.json and
 * diffusion_pytorch_model.safetensors, bf16) at any configuration, for benchmarks of the whole
 * pipeline from files: no download needed. */
#ifndef REEL_WAN_SYNTH_H
#define REEL_WAN_SYNTH_H

#include "wan_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes dir/config.json and dir/diffusion_pytorch_model.safetensors (dir must exist). */
int wan_synth_write(const char *dir, const wan_config *c);

#ifdef __cplusplus
}
#endif
#endif
