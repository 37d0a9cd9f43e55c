/* The one table that maps Wan DiT tensor names between the published layouts. Canonical names
 * are the original Wan release's (`blocks.3.self_attn.q.weight`); ComfyUI files use the same
 * names (sometimes under a prefix such as `model.diffusion_model.`), Self-Forcing nests them
 * under `generator_ema.model.`, diffusers renames them (spec: wan_dit_detail.md §2.4). */
#ifndef REEL_WAN_KEYS_H
#define REEL_WAN_KEYS_H

#include <stddef.h>

#include "model_detect.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stored key for a canonical name under mi's layout and prefix; REEL_E_INVALID when buf is too
 * small or the name has no mapping. */
int wan_key(const model_info *mi, const char *canonical, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
