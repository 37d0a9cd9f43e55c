/* The built-in attention plugins: each file defines one table (and a CPU path and a CUDA path
 * behind it). attn_builtins.c lists them for the registry. */
#ifndef REEL_ATTN_PLUGINS_H
#define REEL_ATTN_PLUGINS_H

#include "attn_flash.h"
#include "attn_ref.h"

#include "../dit/error.h"
#include "../plugin/reel_attention.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

extern const reel_attn_plugin attn_dense_plugin;  /* attn_dense.c */
extern const reel_attn_plugin attn_radial_plugin; /* attn_radial.c */

/* NULL-terminated list, in the order `reel attn list` prints them. */
extern const reel_attn_plugin *const attn_builtin_plugins[];

/* A plugin entry point reports through its err buffer: copies the message of the failure that
 * reel's internals recorded (err_set) and returns the status. */
static inline int attn_plugin_fail(int status, char *err, size_t err_size)
{
    snprintf(err, err_size, "%s", err_msg());
    return status;
}

/* A call's arguments for the flash kernels (no mask) and for the CPU reference (no mask, the
 * plugin's thread count): attn_plugin_args.c. */
attn_flash_args attn_flash_args_of(const reel_attn_args *a, const reel_attn_config *cfg);
attn_ref_args attn_ref_args_of(const reel_attn_args *a, const reel_attn_config *cfg, int threads);

#ifdef __cplusplus
}
#endif
#endif
