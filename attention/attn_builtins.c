#include "attn_plugins.h"

const reel_attn_plugin *const attn_builtin_plugins[] = {
    &attn_dense_plugin,
    &attn_radial_plugin,
    NULL,
};
