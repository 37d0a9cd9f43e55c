/* Attention as the DiT sees it: an instance of a plugin, chosen by a spec string, that runs
 * every self-attention call of a generation (and the dense plugin, cross-attention too).
 *
 *   reel_attn_config cfg = attn_config_default();   fill device, dtype, dims, grid, steps
 *   attn_instance *a;  TRY(attn_instance_create("radial:dense_steps=12", &cfg, &a));
 *   per layer:  reel_attn_args args = attn_args_default();  fill q,k,v,out...; attn_instance_forward
 *   per step:   attn_instance_end_step(a, step)
 *   attn_instance_free(a);
 *
 * Plugins are found by name in the process-wide registry (plugin/attn_registry.c, the public
 * reel_attn_* functions); the built-in ones (attn_builtins.c) are registered on first use. */
#ifndef REEL_ATTN_H
#define REEL_ATTN_H

#include "../plugin/reel_attention.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_instance attn_instance;

/* Registers the built-in plugins (dense, radial). Idempotent and thread-safe; every registry
 * function calls it first, so callers need it only to be explicit. */
void attn_register_builtins(void);

/* Config with struct_size set, CPU/f32, head_dim 128 and everything else zero. */
reel_attn_config attn_config_default(void);
/* Args with struct_size set and everything else zero: the caller sets pointers, token counts,
 * strides and scale (which must be > 0). */
reel_attn_args attn_args_default(void);

/* spec: "name" or "name:key=value,key=value". An unknown name gives REEL_E_NOT_FOUND and an
 * unknown option REEL_E_INVALID, each with a message listing what exists. */
int attn_instance_create(const char *spec, const reel_attn_config *cfg, attn_instance **out);
int attn_instance_forward(attn_instance *a, const reel_attn_args *args);
int attn_instance_end_step(attn_instance *a, int step);
void attn_instance_free(attn_instance *a);

const reel_attn_plugin *attn_instance_plugin(const attn_instance *a);

#ifdef __cplusplus
}
#endif
#endif
