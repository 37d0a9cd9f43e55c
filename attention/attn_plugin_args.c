/* One plugin call's arguments as reel's kernels and CPU reference take them, for the built-in
 * plugins (attn_plugins.h): the same fields, renamed, the head geometry from the config. */
#include "attn_plugins.h"

attn_flash_args attn_flash_args_of(const reel_attn_args *a, const reel_attn_config *cfg)
{
    attn_flash_args f = {.q = a->q, .k = a->k, .v = a->v, .out = a->out, .lse = a->lse,
                         .q_tokens = a->q_tokens, .kv_tokens = a->kv_tokens,
                         .q_stride = a->q_row_stride, .kv_stride = a->kv_row_stride,
                         .heads = cfg->heads, .head_dim = cfg->head_dim, .scale = a->scale,
                         .stream = a->cuda_stream, .last_key_copies = a->last_key_copies};
    return f;
}

attn_ref_args attn_ref_args_of(const reel_attn_args *a, const reel_attn_config *cfg, int threads)
{
    attn_ref_args r = {.q = a->q, .k = a->k, .v = a->v, .out = a->out, .lse = a->lse,
                       .q_tokens = a->q_tokens, .kv_tokens = a->kv_tokens,
                       .q_stride = a->q_row_stride, .kv_stride = a->kv_row_stride,
                       .heads = cfg->heads, .head_dim = cfg->head_dim, .scale = a->scale,
                       .threads = threads, .last_key_copies = a->last_key_copies};
    return r;
}
